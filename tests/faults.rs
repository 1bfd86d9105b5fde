//! Faults from outside, with real processes: SIGTERM in the middle of a pipelined load, `kill -9`
//! and a restart on the same unix socket and pid file, a log file deleted under the daemon, and
//! a log on a full file system. In every case the cache must go on answering (or, for SIGTERM,
//! end every reply it started and exit 0).

mod common;

use common::{running_as_root, temp_path, wait_until, Client, Server, ServerKind};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// SplitMix64, for values that differ per client and per version.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `len` pseudo-random bytes from `seed`, `\r\n` included now and then (a value is data, not
/// lines: a server that looked for line ends in it would cut it short).
fn value_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&splitmix64(&mut state).to_le_bytes());
        if out.len() % 4096 == 0 {
            out.extend_from_slice(b"\r\nEND\r\n");
        }
    }
    out.truncate(len);
    out
}

// ---------------------------------------------------------------------------------------------
// 1. SIGTERM under load.

/// Client threads of the SIGTERM test.
const TERM_CLIENTS: usize = 8;
/// Their values: 100 KB each, far more than one `write` or one socket buffer.
const TERM_VALUE_LEN: usize = 100 * 1024;
/// Requests a pipelining client may have sent and not yet seen answered: 20 sets of 100 KB, far
/// more than the socket buffers hold, so the daemon always has unread requests.
const DEEP_PIPELINE: usize = 40;
/// A pipeline the daemon keeps up with: it reads what a client sent long before the next
/// requests come.
const SHALLOW_PIPELINE: usize = 6;
/// Keys per client (each client writes only its own, so every reply is predictable).
const TERM_KEYS: usize = 3;
/// Distinct values per client, cycled through.
const TERM_VERSIONS: u64 = 8;

/// One request in flight and the reply it must get.
enum Expect {
    Stored,
    Value { key: String, version: u64 },
}

/// What one SIGTERM client saw.
#[derive(Debug, Default)]
struct TermOutcome {
    /// Replies received whole and correct.
    replies: usize,
    /// Of which `get` hits with their whole 100 KB value.
    values: usize,
    /// The first wrong byte, or a partial reply at the close, described; `None` if all is well.
    fault: Option<String>,
}

/// In-flight accounting between a client's writer and reader.
struct Window {
    depth: usize,
    in_flight: Mutex<usize>,
    changed: Condvar,
    reader_done: AtomicBool,
}

fn term_value(client: usize, version: u64) -> Vec<u8> {
    value_bytes(((client as u64) << 32) | version, TERM_VALUE_LEN)
}

/// Writes `set`/`get` pairs on `stream` until a write fails (the server went away) or the
/// reader gives up, never more than `window.depth` requests ahead of the replies. Each
/// request's expectation is queued before its bytes leave, so the reader always knows what
/// the next bytes must be.
fn term_writer(
    client: usize,
    mut stream: TcpStream,
    expect: mpsc::Sender<Expect>,
    window: &Window,
) {
    let values: Vec<Vec<u8>> = (0..TERM_VERSIONS).map(|v| term_value(client, v)).collect();
    let mut round: u64 = 0;
    loop {
        let key = format!("term:{client}:{}", round as usize % TERM_KEYS);
        let version = round % TERM_VERSIONS;
        let mut set = format!("set {key} 0 0 {TERM_VALUE_LEN}\r\n").into_bytes();
        set.extend_from_slice(&values[version as usize]);
        set.extend_from_slice(b"\r\n");
        let get = format!("get {key}\r\n").into_bytes();
        for (bytes, exp) in [(set, Expect::Stored), (get, Expect::Value { key, version })] {
            {
                let mut n = window.in_flight.lock().expect("window");
                while *n >= window.depth {
                    if window.reader_done.load(Ordering::Acquire) {
                        return;
                    }
                    n = window
                        .changed
                        .wait_timeout(n, Duration::from_millis(50))
                        .expect("window")
                        .0;
                }
                *n += 1;
            }
            if expect.send(exp).is_err() || stream.write_all(&bytes).is_err() {
                return;
            }
        }
        round += 1;
    }
}

/// Checks every byte from the server against the queued expectations until the server
/// closes, then whether the close fell between two replies.
fn term_reader(
    client: usize,
    mut stream: TcpStream,
    expect: mpsc::Receiver<Expect>,
    window: &Window,
    progress: &AtomicUsize,
) -> TermOutcome {
    let values: Vec<Vec<u8>> = (0..TERM_VERSIONS).map(|v| term_value(client, v)).collect();
    let reply_of = |e: &Expect| -> Vec<u8> {
        match e {
            Expect::Stored => b"STORED\r\n".to_vec(),
            Expect::Value { key, version } => {
                let mut r = format!("VALUE {key} 0 {TERM_VALUE_LEN}\r\n").into_bytes();
                r.extend_from_slice(&values[*version as usize]);
                r.extend_from_slice(b"\r\nEND\r\n");
                r
            }
        }
    };
    let mut outcome = TermOutcome::default();
    let mut pending: VecDeque<Expect> = VecDeque::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 256 * 1024];
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("read timeout");
    let mut last_progress = Instant::now();
    let closed = loop {
        while let Ok(e) = expect.try_recv() {
            pending.push_back(e);
        }
        // Every complete reply at the front of the buffer.
        while let Some(front) = pending.front() {
            let want = reply_of(front);
            let have = want.len().min(buf.len());
            if buf[..have] != want[..have] {
                let at = buf[..have]
                    .iter()
                    .zip(&want)
                    .position(|(a, b)| a != b)
                    .unwrap_or(0);
                outcome.fault = Some(format!(
                    "client {client}, reply {}: wrong byte at offset {at} of {}: got {:?}, want {:?}",
                    outcome.replies,
                    want.len(),
                    common::escape(&buf[at..(at + 40).min(buf.len())]),
                    common::escape(&want[at..(at + 40).min(want.len())]),
                ));
                break;
            }
            if have < want.len() {
                break;
            }
            buf.drain(..want.len());
            if matches!(front, Expect::Value { .. }) {
                outcome.values += 1;
                progress.fetch_add(1, Ordering::Relaxed);
            }
            outcome.replies += 1;
            pending.pop_front();
            *window.in_flight.lock().expect("window") -= 1;
            window.changed.notify_all();
            last_progress = Instant::now();
        }
        if outcome.fault.is_some() {
            break false;
        }
        match stream.read(&mut chunk) {
            Ok(0) => break true,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                last_progress = Instant::now();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if last_progress.elapsed() > Duration::from_secs(15) {
                    outcome.fault = Some(format!(
                        "client {client}: no byte for 15 s with {} requests unanswered",
                        pending.len()
                    ));
                    break false;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // A reset is a close too (the server closed with our requests unread).
            Err(_) => break true,
        }
    };
    window.reader_done.store(true, Ordering::Release);
    // A writer blocked on a full socket (after a fault, the server still up) must not hang.
    let _ = stream.shutdown(std::net::Shutdown::Both);
    window.changed.notify_all();
    if closed && !buf.is_empty() {
        // The connection closed in the middle of a reply: say which and how far in.
        while let Ok(e) = expect.try_recv() {
            pending.push_back(e);
        }
        let what = match pending.front() {
            Some(Expect::Stored) => "a STORED line".to_string(),
            Some(e @ Expect::Value { .. }) => {
                let header = reply_of(e)
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                if buf.len() <= header {
                    "a VALUE line".to_string()
                } else if buf.len() < header + TERM_VALUE_LEN + 2 {
                    format!(
                        "a VALUE's data: {} of its {TERM_VALUE_LEN} bytes",
                        buf.len() - header
                    )
                } else {
                    "the END after a whole value".to_string()
                }
            }
            None => "nothing (bytes nobody asked for)".to_string(),
        };
        outcome.fault = Some(format!(
            "client {client}: the connection closed {} bytes into {what}, after {} whole replies",
            buf.len(),
            outcome.replies
        ));
    }
    outcome
}

/// SIGTERM while eight clients pipeline 100 KB sets and gets, up to [`DEEP_PIPELINE`] requests
/// ahead of their replies, reading the replies as fast as they come: every reply a client
/// receives is whole and right — a value is never cut, the close falls between two replies —
/// and the daemon exits 0.
///
/// At the SIGTERM each worker writes a connection's queued replies, shuts its sending side and
/// reads (and drops) what the client still sends until the client closes, within a bound —
/// a plain close() with the client's later requests unread would make Linux reset the
/// connection and throw away the tail of the replies still in the send queue (values cut
/// inside their data; this test caught that in one run of ten). memcached 1.6.18 itself exits
/// at SIGTERM without finishing any reply.
#[test]
fn sigterm_under_load_ends_every_reply_it_starts() {
    sigterm_under_load(DEEP_PIPELINE, None);
}

/// The same with clients that take their replies in slowly (a 16 KB receive buffer each, as a
/// client far away or on a busy machine), so at the SIGTERM part of what the daemon wrote
/// always waits in its send queue (before the lingering close, every run had cut values).
#[test]
fn sigterm_under_load_ends_every_reply_it_starts_for_slow_readers() {
    sigterm_under_load(DEEP_PIPELINE, Some(16 * 1024));
}

/// With [`SHALLOW_PIPELINE`] requests in flight: every reply a client gets is whole and
/// right, and the daemon exits 0.
#[test]
fn sigterm_under_shallow_pipelined_load_ends_every_reply_and_exits_0() {
    sigterm_under_load(SHALLOW_PIPELINE, None);
}

/// Eight clients pipelining `depth` requests (each with `receive_buffer` bytes of SO_RCVBUF,
/// if given), a SIGTERM once each has had values back, then the checks.
fn sigterm_under_load(depth: usize, receive_buffer: Option<usize>) {
    let mut server = Server::start(ServerKind::MemcachedRs, &[]);
    let progress: Vec<AtomicUsize> = (0..TERM_CLIENTS).map(|_| AtomicUsize::new(0)).collect();
    let (outcomes, at_signal) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..TERM_CLIENTS)
            .map(|client| {
                let stream = connect_with_receive_buffer(server.addr(), receive_buffer);
                let progress = &progress[client];
                scope.spawn(move || {
                    let window = Window {
                        depth,
                        in_flight: Mutex::new(0),
                        changed: Condvar::new(),
                        reader_done: AtomicBool::new(false),
                    };
                    let (tx, rx) = mpsc::channel();
                    let writer_stream = stream.try_clone().expect("clone");
                    std::thread::scope(|inner| {
                        let window = &window;
                        inner.spawn(move || term_writer(client, writer_stream, tx, window));
                        term_reader(client, stream, rx, window, progress)
                    })
                })
            })
            .collect();
        // Mid-load: every client has had a few values back, and all keep sending. The signal
        // goes whatever happens: it is also what ends the clients.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !progress.iter().all(|p| p.load(Ordering::Relaxed) >= 3) && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        let at_signal: Vec<usize> = progress.iter().map(|p| p.load(Ordering::Relaxed)).collect();
        server.signal("TERM");
        let outcomes: Vec<TermOutcome> = handles
            .into_iter()
            .map(|h| h.join().expect("client thread panicked"))
            .collect();
        (outcomes, at_signal)
    });
    let status = server.wait_for_exit(Duration::from_secs(10));
    for (client, o) in outcomes.iter().enumerate() {
        println!(
            "client {client}: {} replies, {} values, {}",
            o.replies,
            o.values,
            o.fault.as_deref().unwrap_or("closed between two replies")
        );
    }
    assert!(
        at_signal.iter().all(|&n| n >= 3),
        "not every client had 3 values back within 20 s (values per client: {at_signal:?})"
    );
    let faults: Vec<&String> = outcomes.iter().filter_map(|o| o.fault.as_ref()).collect();
    let values: usize = outcomes.iter().map(|o| o.values).sum();
    assert!(
        faults.is_empty(),
        "{} of {TERM_CLIENTS} clients saw a damaged reply ({values} whole values in all):\n{}",
        faults.len(),
        faults
            .iter()
            .map(|f| format!("  {f}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "the daemon did not exit 0 within 10 s of SIGTERM: {status:?}; stderr:\n{}",
        server.stderr_output()
    );
}

/// A TCP connection to `addr`, its receive buffer set to `size` (before the connect, so the
/// window it advertises from the start matches) when given.
fn connect_with_receive_buffer(addr: std::net::SocketAddr, size: Option<usize>) -> TcpStream {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    if let Some(size) = size {
        socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
    }
    socket.connect(&addr.into()).expect("connect");
    socket.into()
}

// ---------------------------------------------------------------------------------------------
// 2. kill -9, then a restart with the same -s, -a and -P.

/// A daemon on a unix socket, killed if the test ends early.
struct UnixDaemon(Child);

impl Drop for UnixDaemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_on_unix_socket(kind: ServerKind, socket: &Path, pid_file: &Path) -> UnixDaemon {
    let mut c = kind.command();
    c.arg("-s")
        .arg(socket)
        .args(["-a", "660", "-U", "0"])
        .arg("-P")
        .arg(pid_file)
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if running_as_root() {
        c.args(["-u", "root"]);
    }
    let mut daemon = UnixDaemon(c.spawn().expect("spawn"));
    let pid = daemon.0.id().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = daemon.0.try_wait().expect("poll the daemon") {
            let mut err = String::new();
            if let Some(mut e) = daemon.0.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!(
                "{} -s {} -P {} exited with {status} at start; stderr:\n{err}",
                kind.name(),
                socket.display(),
                pid_file.display()
            );
        }
        let pid_written = std::fs::read_to_string(pid_file).is_ok_and(|t| t.trim() == pid);
        if pid_written && unix_request(socket, b"version\r\n", b"\r\n").is_ok() {
            return daemon;
        }
        assert!(
            Instant::now() < deadline,
            "{} never served on {} with its pid in {} (pid file: {:?})",
            kind.name(),
            socket.display(),
            pid_file.display(),
            std::fs::read_to_string(pid_file)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `req` on a fresh connection to `socket` and reads until the reply ends in `end`.
fn unix_request(socket: &Path, req: &[u8], end: &[u8]) -> io::Result<Vec<u8>> {
    let mut s = UnixStream::connect(socket)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(req)?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(end) {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        got.extend_from_slice(&buf[..n]);
    }
    Ok(got)
}

/// `kill -9` leaves the unix socket and the pid file behind; a restart with the same flags
/// replaces the stale socket, overwrites the pid file, and serves on the socket.
///
/// memcached 1.6.18 restarts the same way (checked here too: it unlinks a stale socket and
/// rewrites the pid file, warning only when the old pid is still running). The differences are
/// at a clean exit: memcached leaves its socket file and — unless it daemonized (-d) — its pid
/// file behind, while memcached-rs removes both (tests/unix_socket.rs, tests/process.rs).
#[test]
fn kill_9_then_restart_on_the_same_socket_and_pid_file() {
    for (name, kind) in [
        ("memcached-rs", ServerKind::MemcachedRs),
        ("memcached", ServerKind::Memcached),
    ] {
        let socket = temp_path(&format!("{name}-k9.sock"));
        let pid_file = temp_path(&format!("{name}-k9.pid"));
        let mut first = start_on_unix_socket(kind, &socket, &pid_file);
        assert_eq!(
            unix_request(&socket, b"set k9 0 0 5\r\nfirst\r\n", b"\r\n").expect("set"),
            b"STORED\r\n",
            "{name}"
        );
        let old_pid = first.0.id();
        first.0.kill().expect("kill -9");
        let status = first.0.wait().expect("reap");
        assert!(!status.success(), "{name}: {status}");
        // What kill -9 leaves: the socket file nobody listens on, the pid file of a dead pid.
        let meta = std::fs::symlink_metadata(&socket).expect("stale socket left behind");
        assert!(meta.file_type().is_socket(), "{name}");
        assert!(
            UnixStream::connect(&socket).is_err(),
            "{name}: the stale socket still accepts"
        );
        assert_eq!(
            std::fs::read_to_string(&pid_file)
                .expect("stale pid file")
                .trim(),
            old_pid.to_string(),
            "{name}"
        );

        let second = start_on_unix_socket(kind, &socket, &pid_file);
        assert_ne!(second.0.id(), old_pid);
        assert_eq!(
            std::fs::read_to_string(&pid_file).expect("pid file").trim(),
            second.0.id().to_string(),
            "{name}: the pid file names the new process"
        );
        let meta = std::fs::metadata(&socket).expect("socket");
        assert!(meta.file_type().is_socket(), "{name}");
        assert_eq!(meta.permissions().mode() & 0o777, 0o660, "{name}: -a 660");
        // A new process: the killed one's items are gone, and the new one stores and serves.
        assert_eq!(
            unix_request(&socket, b"get k9\r\n", b"END\r\n").expect("get"),
            b"END\r\n",
            "{name}"
        );
        assert_eq!(
            unix_request(&socket, b"set k9 0 0 6\r\nsecond\r\nget k9\r\n", b"END\r\n")
                .expect("set and get"),
            b"STORED\r\nVALUE k9 0 6\r\nsecond\r\nEND\r\n",
            "{name}"
        );
        drop(second);
        let _ = std::fs::remove_file(&socket);
        let _ = std::fs::remove_file(&pid_file);
    }
}

// ---------------------------------------------------------------------------------------------
// 3 and 4. The log file deleted, the log's file system full.

/// Starts memcached-rs with a config file naming `log` as its log file, at `-vv` (every command
/// and reply logged), and waits for its start-up lines there.
fn start_logging_to(log: &Path, name: &str) -> (Server, PathBuf) {
    let conf = temp_path(&format!("{name}.conf"));
    std::fs::write(&conf, format!("logfile {}\n-vv\n", log.display())).expect("conf");
    let server = Server::start(
        ServerKind::MemcachedRs,
        &["--config-file", conf.to_str().expect("utf-8 path")],
    );
    wait_until("start-up lines in the log", Duration::from_secs(10), || {
        std::fs::read_to_string(log).is_ok_and(|t| t.contains("listening on tcp 127.0.0.1:"))
    });
    (server, conf)
}

/// One `set` and one `get` of a key unique to `round`; panics unless both are answered right.
fn set_and_get(client: &mut Client, key: &str, round: usize) {
    let value = format!("value-{round}");
    assert_eq!(
        client.request(&format!("set {key} 0 0 {}\r\n{value}", value.len())),
        "STORED\r\n",
        "set {key}, round {round}"
    );
    assert_eq!(
        client.request(&format!("get {key}")),
        format!("VALUE {key} 0 {}\r\n{value}\r\nEND\r\n", value.len()),
        "get {key}, round {round}"
    );
}

/// The descriptors of process `pid` that point at a deleted file named `path`.
fn fds_on_deleted(pid: u32, path: &Path) -> usize {
    let deleted = format!("{} (deleted)", path.display());
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .is_ok_and(|target| target.as_os_str() == deleted.as_str())
                })
                .count()
        })
        .unwrap_or(0)
}

/// The log file deleted under the daemon (by hand, or by a logrotate without `create`): it
/// goes on answering; SIGHUP makes a new log file, which gets lines again, and lets go of the
/// deleted one.
#[test]
fn a_deleted_log_file_does_not_stop_the_cache() {
    let log = temp_path("deleted.log");
    let (server, conf) = start_logging_to(&log, "deleted");
    let mut client = server.client();
    set_and_get(&mut client, "before", 0);
    std::fs::remove_file(&log).expect("delete the log file");
    assert_eq!(
        fds_on_deleted(server.pid(), &log),
        1,
        "the daemon holds the deleted log open"
    );
    // Commands on the connection open before, and on new ones.
    for round in 0..300 {
        set_and_get(&mut client, "after-delete", round);
    }
    for round in 0..20 {
        set_and_get(&mut server.client(), &format!("fresh-{round}"), round);
    }
    assert!(!log.exists(), "nothing recreated the log before SIGHUP");

    server.signal("HUP");
    wait_until("a new log file", Duration::from_secs(10), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("SIGHUP: reopened"))
    });
    set_and_get(&mut client, "after-hup", 0);
    wait_until(
        "the commands after SIGHUP in the new log",
        Duration::from_secs(10),
        || {
            std::fs::read_to_string(&log).is_ok_and(|t| {
                t.lines().any(|l| l.ends_with(" set after-hup 0 0 7"))
                    && t.lines().any(|l| l.ends_with(" sending key after-hup"))
            })
        },
    );
    assert_eq!(
        fds_on_deleted(server.pid(), &log),
        0,
        "the deleted log is still open after SIGHUP"
    );
    drop(server);
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&conf);
}

/// A tmpfs mounted for one test, unmounted (and its directory removed) when dropped.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (mount(8)'s syntax, `64k`) at a fresh directory; `Err` with
    /// mount's words when that is not allowed here.
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let dir = temp_path("tmpfs");
        std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0777"),
                "tmpfs",
            ])
            .arg(&dir)
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(out) if out.status.success() => Ok(Tmpfs { dir }),
            Ok(out) => {
                let _ = std::fs::remove_dir(&dir);
                Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
            }
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                Err(format!("cannot run mount: {e}"))
            }
        }
    }

    /// Free blocks for an unprivileged writer.
    fn available_bytes(&self) -> u64 {
        let path = std::ffi::CString::new(self.dir.as_os_str().as_encoded_bytes()).expect("no NUL");
        // SAFETY: statvfs fills the zeroed struct we own from a NUL-terminated path; both live
        // for the call.
        unsafe {
            let mut st: libc::statvfs = std::mem::zeroed();
            assert_eq!(libc::statvfs(path.as_ptr(), &mut st), 0, "statvfs");
            st.f_bavail as u64 * st.f_frsize as u64
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Something still holds it (a test that failed early): detach it lazily.
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// The log's file system full (a 64 KB tmpfs filled by `-vv` lines): every request is still
/// answered, on old and new connections, SIGHUP included; once there is room again, lines
/// land again.
#[test]
fn a_full_disk_for_the_log_does_not_stop_the_cache() {
    let tmpfs = match Tmpfs::mount("64k") {
        Ok(t) => t,
        Err(why) => {
            println!("skipped: cannot mount a tmpfs here ({why}); this test needs root");
            return;
        }
    };
    let log = tmpfs.dir.join("memcached.log");
    let (server, conf) = start_logging_to(&log, "fulldisk");
    let mut client = server.client();
    // Long keys: each set/get pair logs about a kilobyte.
    let key = |i: usize| format!("{i:04}{}", "k".repeat(240));
    let mut round = 0;
    while tmpfs.available_bytes() > 0 {
        assert!(
            round < 2000,
            "2000 logged request pairs did not fill the 64 KB file system ({} bytes free)",
            tmpfs.available_bytes()
        );
        set_and_get(&mut client, &key(round), round);
        round += 1;
    }
    let full_at = std::fs::metadata(&log).expect("log").len();
    println!("the file system is full after {round} request pairs: a {full_at}-byte log");
    // Full: the daemon's log writes now fail with ENOSPC. It answers anyway.
    for r in 0..1000 {
        set_and_get(&mut client, &key(r), round + r);
    }
    for r in 0..20 {
        set_and_get(&mut server.client(), &format!("new-conn-{r}"), r);
    }
    server.signal("HUP");
    for r in 0..100 {
        set_and_get(&mut client, "after-hup", r);
    }
    let stats = client.request("stats");
    assert!(stats.ends_with("END\r\n"), "{stats}");
    assert_eq!(tmpfs.available_bytes(), 0, "still full");
    assert!(
        std::fs::metadata(&log).expect("log").len() >= full_at,
        "the log shrank"
    );
    // Room again (the file emptied in place, as `truncate -s 0` or logrotate's copytruncate
    // do): the daemon's next lines land in it.
    std::fs::File::create(&log).expect("truncate the log");
    set_and_get(&mut client, "room-again", 0);
    wait_until(
        "lines in the log once there is room",
        Duration::from_secs(10),
        || {
            std::fs::read_to_string(&log)
                .is_ok_and(|t| t.lines().any(|l| l.ends_with(" set room-again 0 0 7")))
        },
    );
    // The server first, then the file system it writes to.
    drop(client);
    drop(server);
    drop(tmpfs);
    let _ = std::fs::remove_file(&conf);
}
