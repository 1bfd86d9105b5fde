//! Signals: the main thread waits for them; the `shutdown` command sends one to the process.

/// The `shutdown` command's hook: SIGINT, or SIGUSR1 for `shutdown graceful`, as memcached.
pub fn stop(graceful: bool) {
    raise(if graceful {
        libc::SIGUSR1
    } else {
        libc::SIGINT
    });
}

/// Sends `signal` to this process, as memcached's `shutdown` command does, so that it takes the
/// same path as a signal from outside.
fn raise(signal: libc::c_int) {
    // SAFETY: kill() with our own pid and a valid signal number has no memory-safety
    // preconditions; the signal is handled by the signal-hook handler installed at start.
    let rc = unsafe { libc::kill(libc::getpid(), signal) };
    if rc != 0 {
        log::error!(
            "could not signal ourselves: {}",
            std::io::Error::last_os_error()
        );
    }
}
