//! UDP (`-U`), as memcached frames it: every datagram starts with an 8-byte header (request
//! id, sequence number, datagram count, reserved), a request must fit in one datagram, and each
//! reply — each command's, and each value of a multi-get — goes back as its own sequence of
//! datagrams of at most 1400 bytes, numbered from 0.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use super::listener::ListenError;
use crate::config::Settings;
use crate::handler::{ConnState, Handler, Next};
use crate::protocol::binary::{self, HEADER_LEN, REQUEST_MAGIC};
use crate::server::Server;

/// memcached's `UDP_HEADER_SIZE`.
const UDP_HEADER: usize = 8;
/// memcached's `UDP_MAX_PAYLOAD_SIZE`: a datagram, header included.
const UDP_MAX_DATAGRAM: usize = 1400;
/// The most datagrams one reply can span (the count is 16 bits).
const MAX_DATAGRAMS: usize = u16::MAX as usize;
/// How often a UDP thread looks at the shutdown flag.
const TICK: Duration = Duration::from_millis(200);

/// Binds UDP with `-U`'s port on every address `-l` names (skipping as for TCP).
pub fn bind_udp(settings: &Settings) -> Result<Vec<UdpSocket>, ListenError> {
    let fail = |source: io::Error| ListenError {
        what: format!("failed to listen on UDP port {}", settings.udp_port),
        source,
        then: None,
    };
    let addrs = super::listener::listen_addrs(settings, settings.udp_port)?;
    super::listener::bind_each(addrs, bind_one, fail)
}

fn bind_one(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    Ok(UdpSocket::from(socket))
}

/// Starts a thread per UDP socket; they end when `shutdown` is set.
pub fn spawn_udp(
    server: &Arc<Server>,
    sockets: Vec<UdpSocket>,
    shutdown: &Arc<AtomicBool>,
) -> io::Result<Vec<JoinHandle<()>>> {
    let mut threads = Vec::new();
    for (i, socket) in sockets.into_iter().enumerate() {
        socket.set_nonblocking(false)?;
        socket.set_read_timeout(Some(TICK))?;
        let server = Arc::clone(server);
        let shutdown = Arc::clone(shutdown);
        threads.push(
            std::thread::Builder::new()
                .name(format!("udp-{i}"))
                .spawn(move || serve(&server, &socket, &shutdown))?,
        );
    }
    Ok(threads)
}

fn serve(server: &Server, socket: &UdpSocket, shutdown: &AtomicBool) {
    let stats = server.stats.register();
    let handler = Handler::new(server, &stats);
    crate::watch::set_client_fd(std::os::fd::AsRawFd::as_raw_fd(socket));
    let mut buf = vec![0u8; 65536];
    while !shutdown.load(Ordering::Acquire) {
        let (n, peer) = match socket.recv_from(&mut buf) {
            Ok(got) => got,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => {
                log::warn!("udp: {e}");
                continue;
            }
        };
        stats.bytes_read.add(n as u64);
        // memcached drops datagrams without a payload and requests spread over several.
        if n <= UDP_HEADER || buf[4..6] != [0, 1] {
            continue;
        }
        let request_id = [buf[0], buf[1]];
        for reply in replies(&handler, &buf[UDP_HEADER..n]) {
            send_reply(socket, peer, request_id, &reply, &stats);
        }
    }
}

/// Executes the requests of one datagram; returns the replies to send, in order.
pub fn replies(handler: &Handler<'_>, payload: &[u8]) -> Vec<Vec<u8>> {
    let binary_allowed = handler.settings().protocol != crate::config::Protocol::Ascii;
    let text_allowed = handler.settings().protocol != crate::config::Protocol::Binary;
    match payload.first() {
        Some(&REQUEST_MAGIC) if binary_allowed => binary_replies(handler, payload),
        Some(_) if text_allowed => text_replies(handler, payload),
        _ => Vec::new(),
    }
}

fn text_replies(handler: &Handler<'_>, payload: &[u8]) -> Vec<Vec<u8>> {
    let mut session = ConnState::default();
    let mut replies = Vec::new();
    let mut pos = 0;
    while let Some(nl) = payload[pos..].iter().position(|&b| b == b'\n') {
        let raw = &payload[pos..pos + nl];
        pos += nl + 1;
        let line = match raw.strip_suffix(b"\r") {
            Some(l) if raw.len() > 1 => l,
            _ => raw,
        };
        let mut out = Vec::new();
        let mut resume = 0;
        let next = loop {
            match handler.handle_line(line, resume, &mut out, &mut session) {
                Next::Paused(at) if out.len() < MAX_DATAGRAMS * (UDP_MAX_DATAGRAM - UDP_HEADER) => {
                    resume = at;
                }
                Next::Paused(_) => {
                    out.clear();
                    out.extend_from_slice(b"SERVER_ERROR out of memory writing get response\r\n");
                    break Next::ReadLine;
                }
                next => break next,
            }
        };
        match next {
            Next::ReadData => {
                let need = session.length + 2;
                let Some(block) = payload.get(pos..pos + need) else {
                    // The rest of the value would be in another datagram: memcached waits for
                    // it in vain too.
                    break;
                };
                pos += need;
                handler.complete_store(&mut session, block, &mut out);
            }
            Next::Swallow(n) => pos = (pos + n).min(payload.len()),
            _ => {}
        }
        if is_get(line) {
            replies.extend(split_get_reply(&out, line));
        } else if !out.is_empty() {
            replies.push(out);
        }
        if let Next::Watch(_) = next {
            // A datagram socket cannot become a log stream: give the place back, say nothing.
            crate::watch::release();
            break;
        }
        if matches!(next, Next::Close | Next::Shutdown | Next::CloseAfterWrite) {
            break;
        }
    }
    replies
}

fn binary_replies(handler: &Handler<'_>, payload: &[u8]) -> Vec<Vec<u8>> {
    let mut session = ConnState::default();
    let mut replies = Vec::new();
    let mut pos = 0;
    while let Some(head) = binary::header_bytes(&payload[pos..]) {
        if head[0] != REQUEST_MAGIC {
            break;
        }
        let need = HEADER_LEN + binary::Header::parse(head).prefix_len();
        let Some(frame) = payload.get(pos..pos + need) else {
            break;
        };
        pos += need;
        let mut out = Vec::new();
        let mut next = handler.handle_binary(frame, &mut out, &mut session);
        if next == Next::ReadData {
            let Some(value) = payload.get(pos..pos + session.length) else {
                break;
            };
            pos += session.length;
            next = handler.complete_binary(&mut session, value, &mut out);
        }
        if let Next::Swallow(n) = next {
            pos = (pos + n).min(payload.len());
        }
        if !out.is_empty() {
            replies.push(out);
        }
        if matches!(next, Next::Close | Next::Shutdown | Next::CloseAfterWrite) {
            break;
        }
    }
    replies
}

fn is_get(line: &[u8]) -> bool {
    let first = line.split(|&b| b == b' ').find(|t| !t.is_empty());
    matches!(first, Some(b"get" | b"gets" | b"gat" | b"gats" | b"bget"))
}

/// memcached answers each key of a multi-get in its own reply — a miss with an empty one — and
/// adds `END` to the last key's. `out` is the whole reply; `line` the request, for the keys.
fn split_get_reply(out: &[u8], line: &[u8]) -> Vec<Vec<u8>> {
    let mut tokens = line.split(|&b| b == b' ').filter(|t| !t.is_empty());
    let command = tokens.next().unwrap_or(b"");
    if matches!(command, b"gat" | b"gats") {
        tokens.next(); // the expiry
    }
    let keys: Vec<&[u8]> = tokens.collect();
    let mut blocks: Vec<(&[u8], &[u8])> = Vec::new();
    let mut rest = out;
    while let Some(after) = rest.strip_prefix(b"VALUE ") {
        let Some(eol) = after.iter().position(|&b| b == b'\n') else {
            break;
        };
        let header = after[..eol].strip_suffix(b"\r").unwrap_or(&after[..eol]);
        let fields: Vec<&[u8]> = header.split(|&b| b == b' ').collect();
        let len = fields
            .get(2)
            .and_then(|l| std::str::from_utf8(l).ok())
            .and_then(|l| l.parse::<usize>().ok());
        let Some(len) = len else {
            break;
        };
        let total = 6 + eol + 1 + len + 2;
        if total > rest.len() {
            break;
        }
        blocks.push((fields[0], &rest[..total]));
        rest = &rest[total..];
    }
    if keys.is_empty() || !(rest == b"END\r\n" || rest.is_empty()) {
        // An error replaces the whole reply.
        return vec![out.to_vec()];
    }
    let mut hits = blocks.into_iter().peekable();
    let mut replies: Vec<Vec<u8>> = keys
        .iter()
        .map(|key| match hits.next_if(|(hit, _)| hit == key) {
            Some((_, block)) => block.to_vec(),
            None => Vec::new(),
        })
        .collect();
    if let Some(last) = replies.last_mut() {
        last.extend_from_slice(rest);
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
        match socket.send_to(&datagram, peer) {
            Ok(n) => stats.bytes_written.add(n as u64),
            Err(e) => {
                log::debug!("udp: sending to {peer}: {e}");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_get_reply;

    #[test]
    fn a_multi_get_reply_is_split_per_key() {
        let out = b"VALUE a 0 1\r\nx\r\nVALUE b 0 2\r\nyy\r\nEND\r\n";
        assert_eq!(
            split_get_reply(out, b"get a b"),
            vec![
                b"VALUE a 0 1\r\nx\r\n".to_vec(),
                b"VALUE b 0 2\r\nyy\r\nEND\r\n".to_vec()
            ]
        );
        assert_eq!(
            split_get_reply(out, b"get a z b c"),
            vec![
                b"VALUE a 0 1\r\nx\r\n".to_vec(),
                Vec::new(),
                b"VALUE b 0 2\r\nyy\r\n".to_vec(),
                b"END\r\n".to_vec()
            ]
        );
        assert_eq!(
            split_get_reply(b"VALUE a 0 1\r\nx\r\nEND\r\n", b"gat 10 a"),
            vec![b"VALUE a 0 1\r\nx\r\nEND\r\n".to_vec()]
        );
        assert_eq!(
            split_get_reply(b"END\r\n", b"get a"),
            vec![b"END\r\n".to_vec()]
        );
        let err = b"CLIENT_ERROR bad command line format\r\n";
        assert_eq!(split_get_reply(err, b"get a"), vec![err.to_vec()]);
    }
}
