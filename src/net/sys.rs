//! The few raw system calls the event loop needs: epoll, eventfd, and the vectored send of
//! pinned values.
//!
//! Every call goes through [`crate::os::check`], which turns `-1` into the OS error; every
//! descriptor is an `OwnedFd`, so nothing leaks and nothing is closed twice.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::os::check;

/// Readable.
pub const READABLE: u32 = libc::EPOLLIN as u32;
/// Writable.
pub const WRITABLE: u32 = libc::EPOLLOUT as u32;
/// Peer closed or error.
pub const HANGUP: u32 = (libc::EPOLLHUP | libc::EPOLLERR | libc::EPOLLRDHUP) as u32;
const EDGE: u32 = libc::EPOLLET as u32;
const EXCLUSIVE: u32 = libc::EPOLLEXCLUSIVE as u32;

/// An epoll instance.
#[derive(Debug)]
pub struct Epoll {
    fd: OwnedFd,
}

/// One readiness event: the token it was registered with and its flags.
pub type Event = libc::epoll_event;

impl Epoll {
    /// Creates an epoll instance (close-on-exec).
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes a flag word and no pointers.
        let fd = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: epoll_create1 returned a fresh descriptor that nothing else owns.
        Ok(Epoll {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: `ev` is a live epoll_event for the duration of the call; the kernel copies it.
        check(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut ev) })?;
        Ok(())
    }

    /// Watches a connection edge-triggered for input, output and hang-up: the worker drains
    /// each readiness edge until `WouldBlock`.
    pub fn add_connection(&self, fd: RawFd, token: u64) -> io::Result<()> {
        self.ctl(
            libc::EPOLL_CTL_ADD,
            fd,
            READABLE | WRITABLE | HANGUP | EDGE,
            token,
        )
    }

    /// Watches a listening socket shared by every worker: level-triggered and exclusive, so one
    /// incoming connection wakes one worker, not all of them.
    pub fn add_listener(&self, fd: RawFd, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, READABLE | EXCLUSIVE, token)
    }

    /// Watches an eventfd level-triggered.
    pub fn add_waker(&self, fd: RawFd, token: u64) -> io::Result<()> {
        self.add_readable(fd, token)
    }

    /// Watches a descriptor level-triggered for input (a datagram socket, an eventfd).
    pub fn add_readable(&self, fd: RawFd, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, READABLE, token)
    }

    /// Stops watching a descriptor.
    pub fn remove(&self, fd: RawFd) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    /// Waits for events; `None` waits without a time limit. Returns how many were filled in.
    /// An interrupted wait returns 0 events.
    pub fn wait(&self, events: &mut [Event], timeout: Option<Duration>) -> io::Result<usize> {
        let ms = timeout.map_or(-1, |d| d.as_millis().min(i32::MAX as u128) as libc::c_int);
        let max = events.len().min(i32::MAX as usize) as libc::c_int;
        // SAFETY: `events` is writable for `max` entries (max <= events.len()).
        match check(unsafe { libc::epoll_wait(self.fd.as_raw_fd(), events.as_mut_ptr(), max, ms) })
        {
            Ok(n) => Ok(n as usize),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
        }
    }
}

/// Reads from a socket into the spare capacity of `buf` (at least `min_room` bytes of it),
/// without zero-filling that space first, and extends `buf` by what arrived.
pub fn read_to_spare(fd: &impl AsRawFd, buf: &mut Vec<u8>, min_room: usize) -> io::Result<usize> {
    buf.reserve(min_room);
    let spare = buf.spare_capacity_mut();
    // SAFETY: the spare capacity is writable for `spare.len()` bytes; read writes at most that.
    let n = check(unsafe { libc::read(fd.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len()) })?
        as usize;
    // SAFETY: read() initialised the first `n` bytes of the spare capacity (n <= spare.len()),
    // so the vector's new length covers only initialised bytes.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// Reads from a socket into `pieces`, in order, and, with `spill`, past them into the spare
/// capacity of its buffer (at least the given room, not zero-filled), with one `readv`;
/// extends the buffer by what arrived past the pieces. Returns the bytes read into the pieces.
pub fn read_pieces(
    fd: &impl AsRawFd,
    pieces: &mut [&mut [u8]],
    mut spill: Option<(&mut Vec<u8>, usize)>,
) -> io::Result<usize> {
    let mut iovecs: Vec<libc::iovec> = pieces
        .iter_mut()
        .map(|piece| libc::iovec {
            iov_base: piece.as_mut_ptr().cast(),
            iov_len: piece.len(),
        })
        .collect();
    if let Some((buf, room)) = spill.as_mut() {
        buf.reserve(*room);
        let spare = buf.spare_capacity_mut();
        iovecs.push(libc::iovec {
            iov_base: spare.as_mut_ptr().cast(),
            iov_len: spare.len(),
        });
    }
    let count = libc::c_int::try_from(iovecs.len())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: every iovec names writable memory for its length: the pieces are exclusive
    // borrows held for the call, the last one (with `spill`) the spare capacity of a buffer we
    // borrow mutably; readv writes at most that much into each.
    let n = check(unsafe { libc::readv(fd.as_raw_fd(), iovecs.as_ptr(), count) })? as usize;
    let in_pieces = pieces.iter().map(|p| p.len()).sum::<usize>().min(n);
    if let Some((buf, _)) = spill {
        // SAFETY: readv fills the iovecs in order and returns at most their total length, so
        // the `n - in_pieces` bytes past the pieces initialised that much of the spare
        // capacity; the new length covers only those.
        unsafe { buf.set_len(buf.len() + (n - in_pieces)) };
    }
    Ok(in_pieces)
}

/// Sends `pieces` in order with one `sendmsg` (`MSG_NOSIGNAL`: a peer that is gone is an
/// `EPIPE`, not a signal); returns the bytes sent.
///
/// # Safety
/// Every piece names memory that stays allocated and readable for its whole length during
/// the call.
// SAFETY: unsafe to call: the caller vouches for the memory the iovecs name (see above).
pub unsafe fn send_pieces(fd: &impl AsRawFd, pieces: &[libc::iovec]) -> io::Result<usize> {
    // SAFETY: an all-zero msghdr is a valid empty message (no name, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = pieces.as_ptr().cast_mut();
    msg.msg_iovlen = pieces.len();
    // SAFETY: `msg` names `pieces`, a live slice of iovecs, for the call; the caller
    // guarantees the memory each names; the kernel only reads it.
    let n = check(unsafe { libc::sendmsg(fd.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) })?;
    Ok(n as usize)
}

/// A zeroed event buffer for [`Epoll::wait`].
pub fn event_buffer(len: usize) -> Vec<Event> {
    vec![libc::epoll_event { events: 0, u64: 0 }; len]
}

/// Waits until `fd` can be written or `timeout` passes; `false` on the timeout.
pub fn wait_writable(fd: &impl AsRawFd, timeout: Duration) -> io::Result<bool> {
    let mut pollfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: `pollfd` is one live, writable pollfd for the duration of the call.
    match check(unsafe { libc::poll(&mut pollfd, 1, ms) }) {
        Ok(n) => Ok(n > 0),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
        Err(e) => Err(e),
    }
}

/// An eventfd used to wake a worker from another thread.
#[derive(Debug)]
pub struct Waker {
    fd: OwnedFd,
}

impl Waker {
    /// Creates a non-blocking eventfd.
    pub fn new() -> io::Result<Waker> {
        // SAFETY: eventfd takes plain integers.
        let fd = check(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
        // SAFETY: eventfd returned a fresh descriptor that nothing else owns.
        Ok(Waker {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Makes the eventfd readable.
    pub fn wake(&self) -> io::Result<()> {
        let one: u64 = 1;
        let len = std::mem::size_of::<u64>();
        // SAFETY: `one` is a live u64, readable for its size.
        check(unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), len) })?;
        Ok(())
    }

    /// Clears the eventfd.
    pub fn drain(&self) {
        let mut value: u64 = 0;
        // A failed read means it was already clear (EAGAIN); nothing to do.
        let len = std::mem::size_of::<u64>();
        // SAFETY: `value` is a live u64, writable for its size.
        let _ =
            check(unsafe { libc::read(self.fd.as_raw_fd(), (&mut value as *mut u64).cast(), len) });
    }
}

impl AsRawFd for Waker {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Takes ownership of a descriptor the service manager passed at start (socket activation:
/// `LISTEN_FDS` descriptors from 3 on), marking it close-on-exec. Fails if it is not open.
pub fn adopt_inherited_fd(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_GETFD and F_SETFD take and return plain integers; a closed fd fails EBADF.
    let flags = check(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    // SAFETY: F_SETFD takes plain integers.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) })?;
    // SAFETY: the descriptor is open (F_GETFD succeeded) and was handed to this process by the
    // service manager for its own use; the caller adopts each passed descriptor exactly once,
    // at start, so no other owner exists and it will be closed only by this OwnedFd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_to_spare_appends_what_arrived() {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut client =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        client.write_all(b"hello").expect("write");
        let mut buf = b"> ".to_vec();
        let n = read_to_spare(&server, &mut buf, 16).expect("read");
        assert_eq!(n, 5);
        assert_eq!(buf, b"> hello");
        drop(client);
        assert_eq!(read_to_spare(&server, &mut buf, 16).expect("eof"), 0);
        assert_eq!(buf, b"> hello");
    }

    #[test]
    fn waker_wakes_epoll() {
        let ep = Epoll::new().expect("epoll");
        let w = Waker::new().expect("eventfd");
        ep.add_waker(w.as_raw_fd(), 7).expect("add");
        let mut evs = event_buffer(4);
        assert_eq!(ep.wait(&mut evs, Some(Duration::ZERO)).expect("wait"), 0);
        w.wake().expect("wake");
        assert_eq!(
            ep.wait(&mut evs, Some(Duration::from_secs(1)))
                .expect("wait"),
            1
        );
        let token = evs[0].u64;
        assert_eq!(token, 7);
        w.drain();
        assert_eq!(ep.wait(&mut evs, Some(Duration::ZERO)).expect("wait"), 0);
    }
}
