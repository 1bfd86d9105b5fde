//! Waiting for things, and scratch paths: the helpers every process-level test needs.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A path in the tests' scratch directory, unique to this process, with nothing there yet.
pub fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join("memcached-rs-tests");
    std::fs::create_dir_all(&dir).expect("test directory");
    let path = dir.join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// Polls `done` every 20 ms for at most `limit`; panics naming `what` when it never holds.
pub fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (at most 10 s) until something accepts TCP connections on `addr`.
pub fn wait_for_tcp(addr: SocketAddr) {
    wait_until(
        &format!("a listener on {addr}"),
        Duration::from_secs(10),
        || TcpStream::connect(addr).is_ok(),
    );
}
