//! Dropping root (`-u`), as memcached: a server started as root must be told whom to become.

use std::ffi::{CStr, CString};

use super::{DaemonError, EX_OSERR, EX_USAGE};
use crate::os::check;

const EX_NOUSER: u8 = 67;

/// When running as root, switches to `user` (required); otherwise does nothing, as memcached
/// ignores `-u` for an unprivileged process.
pub fn drop_root(user: Option<&str>) -> Result<(), DaemonError> {
    // SAFETY: getuid/geteuid have no preconditions.
    let (uid, euid) = unsafe { (libc::getuid(), libc::geteuid()) };
    if uid != 0 && euid != 0 {
        return Ok(());
    }
    let user = match user {
        Some(u) if !u.is_empty() => u,
        _ => {
            return Err(DaemonError {
                message: "can't run as root without the -u switch".into(),
                exit_code: EX_USAGE,
            })
        }
    };
    let no_user = || DaemonError {
        message: format!("can't find the user {user} to switch to"),
        exit_code: EX_NOUSER,
    };
    let name = CString::new(user).map_err(|_| no_user())?;
    let (uid, gid) = lookup_user(&name).ok_or_else(no_user)?;
    let os_err = |what: &str, e: &std::io::Error| DaemonError {
        message: format!("{what}: {e}"),
        exit_code: EX_OSERR,
    };
    // SAFETY: setgroups with a zero count does not read the list pointer.
    check(unsafe { libc::setgroups(0, std::ptr::null()) })
        .map_err(|e| os_err("failed to drop supplementary groups", &e))?;
    let assume =
        |e: std::io::Error| os_err(&format!("failed to assume identity of user {user}"), &e);
    // SAFETY: setgid takes a plain integer.
    check(unsafe { libc::setgid(gid) }).map_err(assume)?;
    // SAFETY: setuid takes a plain integer.
    check(unsafe { libc::setuid(uid) }).map_err(assume)?;
    Ok(())
}

/// Looks a user up in the password database.
fn lookup_user(name: &CStr) -> Option<(libc::uid_t, libc::gid_t)> {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut pwd = std::mem::MaybeUninit::<libc::passwd>::zeroed();
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer refers to live, writable memory of the size passed; getpwnam_r
    // fills `pwd` (with strings inside `buf`) and sets `result` to it on success.
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            pwd.as_mut_ptr(),
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return None;
    }
    // SAFETY: on success getpwnam_r initialised `pwd` (result points to it).
    let pwd = unsafe { pwd.assume_init() };
    Some((pwd.pw_uid, pwd.pw_gid))
}
