//! Passing descriptors to a child as systemd does (`LISTEN_FDS`).

use std::process::Command;

/// Moves `fds` to descriptors 3, 4, … in the child (as systemd passes them), clearing
/// close-on-exec. Runs between fork and exec, so it only makes async-signal-safe calls.
pub fn pass_fds(command: &mut Command, fds: Vec<std::os::fd::RawFd>) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and calls only fcntl and dup2,
    // which are async-signal-safe; it allocates nothing and touches no locks.
    unsafe {
        command.pre_exec(move || {
            // First out of the way (above any target), so a source that is already one of the
            // targets is not overwritten, and dup2 onto itself (which keeps CLOEXEC) never
            // happens. These copies close at exec, so the child holds each descriptor once
            // (a socket it closes is then really closed).
            let mut high = [0; 8];
            for (i, &fd) in fds.iter().enumerate() {
                let moved = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 100);
                if moved < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                high[i] = moved;
            }
            for (i, &fd) in high.iter().take(fds.len()).enumerate() {
                if libc::dup2(fd, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}
