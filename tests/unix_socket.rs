//! `-s`/`-a`: the unix socket listener — its mode, a stale socket from an earlier run replaced,
//! any other file refused as memcached refuses it, and the file removed at a clean exit.

mod common;

use common::{memcached_rs_bin, running_as_root};
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A daemon started on a unix socket; killed if the test ends early.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn socket_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join("memcached-rs-tests");
    std::fs::create_dir_all(&dir).expect("test directory");
    dir.join(format!("{name}-{}.sock", std::process::id()))
}

fn command(path: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(memcached_rs_bin());
    c.arg("-s").arg(path).args(extra);
    if running_as_root() {
        c.args(["-u", "root"]);
    }
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// Starts the daemon and waits until its socket accepts a connection.
fn start(path: &Path, extra: &[&str]) -> Daemon {
    let child = command(path, extra).spawn().expect("spawn memcached-rs");
    let daemon = Daemon(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while UnixStream::connect(path).is_err() {
        assert!(Instant::now() < deadline, "the unix socket never accepted");
        std::thread::sleep(Duration::from_millis(20));
    }
    daemon
}

fn request(path: &Path, req: &[u8], reply_end: &[u8]) -> Vec<u8> {
    let mut s = UnixStream::connect(path).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(req).expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(reply_end) {
        let n = s.read(&mut buf).expect("read");
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    got
}

#[test]
fn serves_on_the_socket_with_its_mode_and_removes_it_at_exit() {
    let path = socket_path("mode");
    let mut daemon = start(&path, &["-a", "640"]);
    let meta = std::fs::metadata(&path).expect("socket file");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o640);
    assert_eq!(
        request(&path, b"set k 0 0 2\r\nhi\r\nget k\r\n", b"END\r\n"),
        b"STORED\r\nVALUE k 0 2\r\nhi\r\nEND\r\n"
    );
    let settings = request(&path, b"stats settings\r\n", b"END\r\n");
    let settings = String::from_utf8_lossy(&settings);
    assert!(settings.contains(&format!("STAT domain_socket {}\r\n", path.display())));
    assert!(settings.contains("STAT umask 640\r\n"));
    let status = Command::new("kill")
        .args(["-TERM", &daemon.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(s) = daemon.0.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit}");
    assert!(!path.exists(), "socket file left behind");
}

#[test]
fn a_stale_socket_is_replaced() {
    let path = socket_path("stale");
    let _ = std::fs::remove_file(&path);
    // A socket file nobody listens on any more, as a crash leaves it.
    drop(UnixListener::bind(&path).expect("bind the stale socket"));
    assert!(path.exists());
    let _daemon = start(&path, &[]);
    assert_eq!(
        request(&path, b"version\r\n", b"\r\n"),
        b"VERSION 1.6.38\r\n"
    );
}

#[test]
fn another_file_in_the_way_is_an_error() {
    let path = socket_path("regular");
    std::fs::write(&path, b"not a socket").expect("write");
    let out = command(&path, &[]).output().expect("run");
    assert_eq!(out.status.code(), Some(71));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "bind(): Address already in use\nfailed to listen on UNIX socket: {}: Invalid argument\n",
            path.display()
        )
    );
    assert_eq!(std::fs::read(&path).expect("still there"), b"not a socket");
    let _ = std::fs::remove_file(&path);
}
