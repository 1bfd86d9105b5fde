//! The process itself, as memcached sets it up: `-d` (double fork, new session, stdio on
//! `/dev/null`), `-P` (the pid file, removed at exit), `-k` (`mlockall`), `-r` (unlimited core
//! files) and a descriptor limit large enough for `-c`. The raw calls live here, each with the
//! invariant it relies on.

use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::os::check;

/// Descriptors beyond `-c` the process needs: listeners, epoll and wake-up descriptors, logs.
const FD_HEADROOM: u64 = 64;

/// Detaches from the terminal: fork (the parent exits), new session, fork again (so the daemon
/// can never reacquire a terminal), `/` as working directory, stdio on `/dev/null`.
///
/// Must be called while the process has a single thread: only the calling thread survives a
/// fork.
pub fn daemonize() -> io::Result<()> {
    for round in 0..2 {
        // SAFETY: the process is single-threaded here (the caller's contract), so the child
        // starts with a consistent copy of all state; it only continues to run our own code.
        let pid = check(unsafe { libc::fork() })?;
        if pid > 0 {
            // SAFETY: _exit ends the parent at once, without running destructors or atexit
            // handlers that belong to the process the child carries on.
            unsafe { libc::_exit(0) };
        }
        if round == 0 {
            // SAFETY: setsid has no memory-safety preconditions.
            check(unsafe { libc::setsid() })?;
        }
    }
    std::env::set_current_dir("/")?;
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    for fd in 0..3 {
        // SAFETY: dup2 onto the standard descriptors with a descriptor we own and keep open for
        // the call; the old stdio descriptors are replaced, not freed behind Rust's back (std's
        // handles refer to the numbers, which stay valid).
        check(unsafe { libc::dup2(null.as_raw_fd(), fd) })?;
    }
    Ok(())
}

/// Writes the pid file. memcached warns and goes on when it cannot.
pub fn write_pid_file(path: &Path) {
    if let Err(e) = std::fs::write(path, format!("{}\n", std::process::id())) {
        log::warn!(
            "Could not open the pid file {} for writing: {e}",
            path.display()
        );
    }
}

/// Removes the pid file at exit, if it is still ours.
pub fn remove_pid_file(path: &Path) {
    let ours = std::fs::read_to_string(path)
        .is_ok_and(|text| text.trim() == std::process::id().to_string());
    if ours {
        if let Err(e) = std::fs::remove_file(path) {
            log::warn!("could not remove the pid file {}: {e}", path.display());
        }
    }
}

/// `-k`: locks every page of the process in memory as it is first touched — the item arena
/// included, whose address space is reserved up front but becomes resident only as items fill
/// it (`MCL_ONFAULT`; memcached gets the same effect by allocating slab pages as it needs
/// them). memcached warns and goes on when it cannot.
pub fn lock_memory() {
    let flags = libc::MCL_CURRENT | libc::MCL_FUTURE | libc::MCL_ONFAULT;
    // SAFETY: mlockall takes flags only and has no memory-safety preconditions.
    if let Err(e) = check(unsafe { libc::mlockall(flags) }) {
        log::warn!("warning: -k invalid, mlockall() failed: {e}");
    }
}

fn get_limit(resource: libc::__rlimit_resource_t) -> io::Result<libc::rlimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we pass, which lives for the call.
    check(unsafe { libc::getrlimit(resource, &mut limit) })?;
    Ok(limit)
}

fn set_limit(resource: libc::__rlimit_resource_t, limit: libc::rlimit) -> io::Result<()> {
    // SAFETY: setrlimit reads the struct we pass, which lives for the call.
    check(unsafe { libc::setrlimit(resource, &limit) })?;
    Ok(())
}

/// `-r`: raises the core file limit to unlimited (or at least to the hard limit); fails, as
/// memcached does, if core files stay impossible.
pub fn enable_core_dumps() -> Result<(), String> {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    if set_limit(libc::RLIMIT_CORE, unlimited).is_err() {
        if let Ok(old) = get_limit(libc::RLIMIT_CORE) {
            let _ = set_limit(
                libc::RLIMIT_CORE,
                libc::rlimit {
                    rlim_cur: old.rlim_max,
                    rlim_max: old.rlim_max,
                },
            );
        }
    }
    match get_limit(libc::RLIMIT_CORE) {
        Ok(l) if l.rlim_cur != 0 => Ok(()),
        _ => Err("failed to ensure corefile creation".into()),
    }
}

/// Raises the open-file limit so that `-c` connections fit. Never lowers it (memcached sets
/// it to exactly `-c`, which can starve the listeners); warns when it cannot raise it.
pub fn raise_fd_limit(max_connections: usize) {
    let want = max_connections as u64 + FD_HEADROOM;
    let Ok(limit) = get_limit(libc::RLIMIT_NOFILE) else {
        log::warn!("failed to getrlimit number of files");
        return;
    };
    if limit.rlim_cur >= want {
        return;
    }
    let raised = libc::rlimit {
        rlim_cur: want,
        rlim_max: limit.rlim_max.max(want),
    };
    if set_limit(libc::RLIMIT_NOFILE, raised).is_err() {
        let capped = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        let _ = set_limit(libc::RLIMIT_NOFILE, capped);
        log::warn!(
            "failed to set rlimit for open files to {want} (limit {}): \
             start as root or ask for fewer connections (-c)",
            limit.rlim_max
        );
    }
}

/// Keeps the buffers of large values in the C library's heap instead of a fresh mapping each.
///
/// glibc serves allocations from 128 KB up with a mmap of their own and gives them back with
/// munmap (or mremap when a buffer grows or shrinks), so every reply or request of a large
/// value cost page faults and the zeroing of every page it touched: a quarter of the CPU
/// of 512 KB gets. Up to twice the largest item (a reply holds one value, its header and a
/// little more), buffers come from the heap, whose freed memory the next large value reuses;
/// the trim threshold lets that much stay mapped between requests instead of being returned at
/// once. Only ever raised from glibc's defaults, and at most to the 32 MB glibc accepts, so
/// what an idle heap keeps stays at most one large buffer per thread's arena.
pub fn tune_malloc(item_size_max: usize) {
    const GLIBC_DEFAULT: usize = 128 * 1024;
    const GLIBC_MAX: usize = 32 * 1024 * 1024;
    let threshold = item_size_max
        .saturating_mul(2)
        .clamp(GLIBC_DEFAULT, GLIBC_MAX);
    let threshold = i32::try_from(threshold).unwrap_or(i32::MAX);
    for (name, option) in [
        ("M_MMAP_THRESHOLD", libc::M_MMAP_THRESHOLD),
        ("M_TRIM_THRESHOLD", libc::M_TRIM_THRESHOLD),
    ] {
        // SAFETY: mallopt takes two integers and changes only the allocator's tuning; called
        // before any other thread exists.
        if unsafe { libc::mallopt(option, threshold) } != 1 {
            log::warn!("mallopt({name}, {threshold}) refused; glibc's default stays");
        }
    }
}
