//! The one way this crate makes a raw system call, and the C library's wording of its errors.
//!
//! A call is written `check(unsafe { libc::call(…) })` with its `// SAFETY:` comment at the call
//! site, where the invariant it relies on can be seen; [`check`] turns the `-1` the C library
//! returns on failure into the OS error.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A C return value that can mean failure by being `-1`.
pub trait MinusOne: Copy + PartialEq {
    /// The failure value.
    const MINUS_ONE: Self;
}

impl MinusOne for i32 {
    const MINUS_ONE: Self = -1;
}

impl MinusOne for i64 {
    const MINUS_ONE: Self = -1;
}

impl MinusOne for isize {
    const MINUS_ONE: Self = -1;
}

/// A C call's result: `-1` becomes `io::Error::last_os_error()`.
pub fn check<T: MinusOne>(rc: T) -> io::Result<T> {
    if rc == T::MINUS_ONE {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// An OS error as the C library words it (`strerror`), without Rust's "(os error N)" suffix,
/// so messages match memcached's.
pub fn os_reason(e: &io::Error) -> String {
    let msg = e.to_string();
    match msg.rfind(" (os error ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    }
}

/// Takes an exclusive advisory lock on `file` (`flock`), without waiting: `Ok(false)` when
/// another open file holds one. It lasts while this open file does.
pub fn lock_exclusive(file: &impl AsRawFd) -> io::Result<bool> {
    // SAFETY: flock takes a descriptor and flags; a descriptor that is not open fails EBADF.
    match check(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The most descriptors [`send_with_fds`] passes in one message.
pub const FDS_MAX: usize = 8;
/// Room for one control message carrying `FDS_MAX` descriptors, aligned as `cmsghdr` needs.
type ControlBuffer = [u64; 8 + FDS_MAX / 2];

/// Sends `message` on a connected datagram socket with `fds` attached (`SCM_RIGHTS`): how a
/// service hands descriptors to systemd's file-descriptor store.
pub fn send_with_fds(socket: &impl AsRawFd, message: &[u8], fds: &[RawFd]) -> io::Result<()> {
    if fds.is_empty() || fds.len() > FDS_MAX {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    let data_len = std::mem::size_of_val(fds);
    let mut control: ControlBuffer = [0; 8 + FDS_MAX / 2];
    let mut iov = libc::iovec {
        iov_base: message.as_ptr().cast_mut().cast(),
        iov_len: message.len(),
    };
    // SAFETY: an all-zero msghdr is a valid empty one; its pointers are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE only computes a size.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(data_len as u32) } as usize;
    debug_assert!(msg.msg_controllen <= std::mem::size_of::<ControlBuffer>());
    // SAFETY: msg_control points to `control`, 8-aligned and at least CMSG_SPACE(data_len)
    // bytes (FDS_MAX descriptors fit), so the first header and its data lie inside it.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(data_len as u32) as usize;
        std::ptr::copy_nonoverlapping(fds.as_ptr().cast::<u8>(), libc::CMSG_DATA(cmsg), data_len);
    }
    // SAFETY: `msg` and everything it points to (message, iov, control) outlive the call.
    let sent = check(unsafe { libc::sendmsg(socket.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) })?;
    if sent as usize != message.len() {
        return Err(io::Error::from(io::ErrorKind::WriteZero));
    }
    Ok(())
}

/// Receives one datagram of at most `buf.len()` bytes and the descriptors attached to it (at
/// most `FDS_MAX`; the kernel closes any beyond). The other side of [`send_with_fds`], for
/// tests that play systemd.
pub fn recv_with_fds(socket: &impl AsRawFd, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut control: ControlBuffer = [0; 8 + FDS_MAX / 2];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero msghdr is a valid empty one; its pointers are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of::<ControlBuffer>();
    // SAFETY: `msg` points to `buf` and `control`, which outlive the call and are as long as
    // msg says.
    let n = check(unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) })?;
    let mut fds = Vec::new();
    // SAFETY: the kernel filled `control` with msg_controllen bytes of well-formed control
    // messages; CMSG_FIRSTHDR/NXTHDR stay inside them, and each SCM_RIGHTS message's data is
    // an array of descriptors now open in this process and owned by nobody else.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg);
                let bytes = (*cmsg).cmsg_len - libc::CMSG_LEN(0) as usize;
                for i in 0..bytes / std::mem::size_of::<RawFd>() {
                    let fd = data.cast::<RawFd>().add(i).read_unaligned();
                    fds.push(OwnedFd::from_raw_fd(fd));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((n as usize, fds))
}

/// The monotonic clock as of the kernel's last timer tick (`CLOCK_MONOTONIC_COARSE`): read in
/// the vDSO without a timestamp-counter read, a few nanoseconds, so an event loop can read it
/// on every turn. Same origin as `CLOCK_MONOTONIC` (and [`std::time::Instant`]), at most one
/// tick (1–10 ms) behind it.
pub fn coarse_monotonic() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call's duration; the clock id is a
    // constant Linux has had since 2.6.32, so the call cannot fail (and on failure `ts` stays
    // zero, which every caller treats as the clock's start).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    std::time::Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minus_one_is_the_os_error_and_anything_else_passes() {
        assert_eq!(check(5i32).ok(), Some(5));
        assert_eq!(check(0isize).ok(), Some(0));
        // SAFETY: close of a descriptor that is not open only fails with EBADF.
        let err = check(unsafe { libc::close(-1) }).expect_err("close(-1) fails");
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
        assert_eq!(os_reason(&err), "Bad file descriptor");
    }

    #[test]
    fn descriptors_pass_over_a_datagram_socket() {
        use std::io::{Read, Seek, Write};
        use std::os::unix::net::UnixDatagram;
        let (a, b) = UnixDatagram::pair().expect("socket pair");
        let mut file = crate::cache::arena::memfd("os-test", false).expect("memfd");
        file.write_all(b"passed").expect("write");
        send_with_fds(&a, b"FDSTORE=1\n", &[file.as_raw_fd()]).expect("send");
        let mut buf = [0u8; 64];
        let (n, fds) = recv_with_fds(&b, &mut buf).expect("receive");
        assert_eq!(&buf[..n], b"FDSTORE=1\n");
        assert_eq!(fds.len(), 1);
        let mut received = std::fs::File::from(fds.into_iter().next().expect("one fd"));
        received.rewind().expect("seek");
        let mut text = String::new();
        received.read_to_string(&mut text).expect("read");
        assert_eq!(text, "passed", "the same open file");
        assert!(send_with_fds(&a, b"x", &[]).is_err(), "nothing to pass");
    }
}
