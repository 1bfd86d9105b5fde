//! UDP (`-U`), as memcached frames it: every datagram starts with an 8-byte header (request
//! id, sequence number, datagram count, reserved), a request must fit in one datagram, and each
//! reply — each command's, and each value of a multi-get — goes back as its own sequence of
//! datagrams of at most 1400 bytes, numbered from 0.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use socket2::{Domain, Protocol, Socket, Type};

use super::listener::{KeptSockets, ListenError};
use super::sys::{event_buffer, Epoll, Waker};
use crate::config::{Protocol as Accepted, Settings};
use crate::handler::Handler;
use crate::protocol::binary::REQUEST_MAGIC;
use crate::server::Server;
use crate::session::{Session, Step};

/// memcached's `UDP_HEADER_SIZE`.
const UDP_HEADER: usize = 8;
/// memcached's `UDP_MAX_PAYLOAD_SIZE`: a datagram, header included.
const UDP_MAX_DATAGRAM: usize = 1400;
/// The most datagrams one reply can span (the count is 16 bits).
const MAX_DATAGRAMS: usize = u16::MAX as usize;
/// The largest reply those datagrams carry.
const MAX_REPLY: usize = MAX_DATAGRAMS * (UDP_MAX_DATAGRAM - UDP_HEADER);

/// Binds UDP with `-U`'s port on every address `-l` names (skipping as for TCP).
pub fn bind_udp(settings: &Settings, kept: &KeptSockets) -> Result<Vec<UdpSocket>, ListenError> {
    let fail = |source: io::Error| ListenError {
        what: format!("failed to listen on UDP port {}", settings.udp_port),
        source,
        then: None,
    };
    let addrs = super::listener::listen_addrs(settings, settings.udp_port)?;
    super::listener::bind_each(addrs, |addr| bind_one(addr, kept), fail)
}

fn bind_one(addr: SocketAddr, kept: &KeptSockets) -> io::Result<UdpSocket> {
    if let Some(socket) = kept.take(Type::DGRAM, &addr.into()) {
        return Ok(UdpSocket::from(socket));
    }
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    Ok(UdpSocket::from(socket))
}

/// A running UDP thread.
#[derive(Debug)]
pub struct UdpThread {
    waker: Arc<Waker>,
    thread: JoinHandle<()>,
}

impl UdpThread {
    /// Wakes the thread (it then checks the shutdown flag).
    pub fn wake(&self) {
        if let Err(e) = self.waker.wake() {
            log::warn!("could not wake a UDP thread: {e}");
        }
    }

    /// Waits for the thread to finish; `false` if it panicked.
    pub fn join(self) -> bool {
        let finished = self.thread.join().is_ok();
        if !finished {
            log::error!("a UDP thread panicked");
        }
        finished
    }
}

/// How long a reply's datagram waits for room in the socket's send buffer before the rest of
/// the reply is dropped.
const SEND_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Epoll tokens of a UDP thread.
const SOCKET_TOKEN: u64 = 0;
const WAKER_TOKEN: u64 = 1;

/// Starts a thread per UDP socket; they end when `shutdown` is set and they are woken.
pub fn spawn_udp(
    server: &Arc<Server>,
    sockets: Vec<UdpSocket>,
    shutdown: &Arc<AtomicBool>,
) -> io::Result<Vec<UdpThread>> {
    let mut threads = Vec::new();
    for (i, socket) in sockets.into_iter().enumerate() {
        // Idle, the thread sleeps in epoll_wait until a datagram or its waker comes: no
        // timeout to look at the shutdown flag.
        socket.set_nonblocking(true)?;
        let epoll = Epoll::new()?;
        let waker = Arc::new(Waker::new()?);
        epoll.add_readable(socket.as_raw_fd(), SOCKET_TOKEN)?;
        epoll.add_readable(waker.as_raw_fd(), WAKER_TOKEN)?;
        let server = Arc::clone(server);
        let shutdown = Arc::clone(shutdown);
        let thread_waker = Arc::clone(&waker);
        let thread = std::thread::Builder::new()
            .name(format!("udp-{i}"))
            .spawn(move || serve(&server, &socket, &epoll, &thread_waker, &shutdown))?;
        threads.push(UdpThread { waker, thread });
    }
    Ok(threads)
}

fn serve(server: &Server, socket: &UdpSocket, epoll: &Epoll, waker: &Waker, shutdown: &AtomicBool) {
    let stats = server.stats.register();
    let handler = Handler::new(server, &stats);
    let beat = server.idle.register();
    let fd = socket.as_raw_fd();
    stats.client_fd.set(fd);
    let mut buf = vec![0u8; 65536];
    let mut events = event_buffer(2);
    while !shutdown.load(Ordering::Acquire) {
        let (n, peer) = match socket.recv_from(&mut buf) {
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if let Err(e) = epoll.wait(&mut events, None) {
                    log::error!("udp: epoll_wait failed: {e}");
                    return;
                }
                waker.drain();
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                log::warn!("udp: {e}");
                continue;
            }
        };
        server.idle.turned(&beat);
        server.cache.clock().tick();
        stats.bytes_read.add(n as u64);
        // memcached drops datagrams without a payload and requests spread over several.
        if n <= UDP_HEADER || buf[4..6] != [0, 1] {
            continue;
        }
        let request_id = [buf[0], buf[1]];
        for reply in replies(&handler, &buf[UDP_HEADER..n], fd) {
            send_reply(socket, peer, request_id, &reply, &stats);
        }
    }
}

/// Executes the requests of one datagram; returns the replies to send, in order: one per
/// request that answered, and one per value of a multi-get (a miss's is empty). `fd` names
/// the socket in logs.
pub fn replies(handler: &Handler<'_>, payload: &[u8], fd: i32) -> Vec<Vec<u8>> {
    let binary = payload.first() == Some(&REQUEST_MAGIC);
    let allowed = match handler.settings().protocol {
        Accepted::Ascii => !binary,
        Accepted::Binary => binary,
        Accepted::Auto => true,
    };
    if payload.is_empty() || !allowed {
        return Vec::new();
    }
    let mut session = Session::datagram(fd);
    let mut out = Vec::new();
    let mut request_ends = Vec::new();
    let mut value_ends = Vec::new();
    let mut pos = 0;
    loop {
        let mut budget = usize::MAX;
        // Every reply so far counts as sent: a datagram's requests are never held back.
        let written = out.len();
        let fed = session.feed(
            handler,
            &payload[pos..],
            &mut out,
            written,
            &mut budget,
            |at| request_ends.push(at),
        );
        pos += fed.consumed;
        value_ends.append(&mut session.take_reply_ends());
        match fed.step {
            Step::OutputFull | Step::OutOfBudget => {
                // A multi-get paused: it goes on, unless its reply could not be sent.
                let start = request_ends.last().copied().unwrap_or(0);
                if out.len() - start >= MAX_REPLY {
                    out.truncate(start);
                    value_ends.retain(|&end| end <= start);
                    out.extend_from_slice(b"SERVER_ERROR out of memory writing get response\r\n");
                    pos += session.abandon_paused(&payload[pos..]);
                    request_ends.push(out.len());
                }
            }
            Step::Watch(_) => {
                // A datagram cannot become a watcher: give the place back.
                crate::watch::release();
                break;
            }
            Step::NeedInput | Step::Close(_) | Step::CloseAfterWrite => break,
        }
    }
    cut_replies(&out, &request_ends, &value_ends)
}

/// Cuts a datagram's output into replies at the ends of requests (a request that wrote
/// nothing sends nothing) and of a multi-get's values (each sent, even empty).
fn cut_replies(out: &[u8], request_ends: &[usize], value_ends: &[usize]) -> Vec<Vec<u8>> {
    let mut replies = Vec::new();
    let mut values = value_ends.iter().copied().peekable();
    let mut start = 0;
    for &end in request_ends {
        let mut split = false;
        while let Some(value_end) = values.next_if(|&v| v < end) {
            replies.push(out[start..value_end].to_vec());
            start = value_end;
            split = true;
        }
        if split || end > start {
            replies.push(out[start..end].to_vec());
        }
        start = end;
    }
    replies
}

/// Sends one reply as numbered datagrams of at most [`UDP_MAX_DATAGRAM`] bytes.
fn send_reply(
    socket: &UdpSocket,
    peer: SocketAddr,
    request_id: [u8; 2],
    reply: &[u8],
    stats: &crate::stats::ThreadStats,
) {
    // An empty reply (a multi-get's miss) still goes out, as a header saying zero datagrams.
    let mut chunks: Vec<&[u8]> = reply.chunks(UDP_MAX_DATAGRAM - UDP_HEADER).collect();
    let total = chunks.len();
    if chunks.is_empty() {
        chunks.push(b"");
    }
    let Ok(total) = u16::try_from(total) else {
        log::warn!("udp: a reply of {} bytes is too large to send", reply.len());
        return;
    };
    let mut datagram = Vec::with_capacity(UDP_MAX_DATAGRAM);
    for (seq, chunk) in chunks.iter().enumerate() {
        datagram.clear();
        datagram.extend_from_slice(&request_id);
        datagram.extend_from_slice(&(seq as u16).to_be_bytes());
        datagram.extend_from_slice(&total.to_be_bytes());
        datagram.extend_from_slice(&[0, 0]);
        datagram.extend_from_slice(chunk);
        if let Err(e) = send_datagram(socket, &datagram, peer, stats) {
            log::debug!("udp: sending to {peer}: {e}");
            return;
        }
    }
}

/// Sends a datagram, waiting (boundedly) while the socket's send buffer is full, as memcached
/// waits for its UDP socket to become writable.
fn send_datagram(
    socket: &UdpSocket,
    datagram: &[u8],
    peer: SocketAddr,
    stats: &crate::stats::ThreadStats,
) -> io::Result<()> {
    loop {
        match socket.send_to(datagram, peer) {
            Ok(n) => {
                stats.bytes_written.add(n as u64);
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if !super::sys::wait_writable(socket, SEND_WAIT)? {
                    return Err(e);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp_replies(payload: &[u8]) -> Vec<Vec<u8>> {
        let server = Server::new(Settings::default()).expect("a server");
        let stats = crate::stats::ThreadStats::default();
        replies(&Handler::new(&server, &stats), payload, -1)
    }

    #[test]
    fn a_multi_get_reply_is_split_per_key() {
        let script = b"set a 0 0 1\r\nx\r\nset b 0 0 2 noreply\r\nyy\r\n\
                       get a b\r\nget a z b c\r\ngat 10 a\r\nget zz\r\nget a\0\r\n";
        let got = udp_replies(script);
        let want: Vec<&[u8]> = vec![
            b"STORED\r\n",
            b"VALUE a 0 1\r\nx\r\n",
            b"VALUE b 0 2\r\nyy\r\nEND\r\n",
            b"VALUE a 0 1\r\nx\r\n",
            b"",
            b"VALUE b 0 2\r\nyy\r\n",
            b"END\r\n",
            b"VALUE a 0 1\r\nx\r\nEND\r\n",
            b"END\r\n",
            // A NUL ends the line, as it ends memcached's C strings.
            b"VALUE a 0 1\r\nx\r\nEND\r\n",
        ];
        assert_eq!(
            got,
            want,
            "{:?}",
            got.iter()
                .map(|r| String::from_utf8_lossy(r))
                .collect::<Vec<_>>()
        );
        let long_key = format!("get a {}\r\n", "k".repeat(300));
        assert_eq!(
            udp_replies(long_key.as_bytes()),
            vec![b"CLIENT_ERROR bad command line format\r\n".to_vec()]
        );
    }

    #[test]
    fn a_store_without_its_data_in_the_datagram_answers_nothing() {
        assert_eq!(
            udp_replies(b"version\r\nset k 0 0 10\r\nshort\r\n").len(),
            1
        );
    }
}
