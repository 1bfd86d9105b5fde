//! The one way this crate makes a raw system call, and the C library's wording of its errors.
//!
//! A call is written `check(unsafe { libc::call(…) })` with its `// SAFETY:` comment at the call
//! site, where the invariant it relies on can be seen; [`check`] turns the `-1` the C library
//! returns on failure into the OS error.

use std::io;

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
}
