//! Shared helpers for memcached-rs's integration tests.
//!
//! A test target pulls this in with `mod common;` (from `tests/NAME.rs`) or
//! `#[path = "../common/mod.rs"] mod common;` (from a `tests/NAME/main.rs` target).
//!
//! - [`Server`] starts memcached-rs or a reference memcached on a free loopback port, waits
//!   until it accepts connections, and kills it when dropped. The reference is Debian 13's
//!   memcached 1.6.38, run from a trixie root (see [`trixie_root`]). Debian 12's 1.6.18 no
//!   longer decides anything here; the benchmarks still measure against it (benches/).
//! - [`Client`] is a small blocking TCP client with read timeouts and helpers to read lines and
//!   whole text-protocol replies.
//! - [`escape`] and [`escape_lines`] render raw protocol bytes readably in failure messages.
//!
//! The reference memcacheds are required, never optional: when one is missing, tests that need
//! it fail with a message saying how to install it (`make test` does).

// Every test target uses a different subset of these helpers.
#![allow(dead_code)]

mod fds;
mod wait;
#[allow(unused_imports)]
pub use fds::pass_fds;
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
#[allow(unused_imports)]
pub use wait::{temp_path, wait_for_tcp, wait_until};

/// The release of [`ServerKind::Memcached`], the reference whose behaviour memcached-rs
/// reproduces: Debian 13's memcached.
pub const REFERENCE_VERSION: &str = "1.6.38";

/// How long a freshly spawned server may take before it must accept a TCP connection.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Read timeout of a new [`Client`]; generous because CI machines are small and shared.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How many fresh ports [`Server::start`] tries when the chosen one turns out to be taken.
const START_ATTEMPTS: usize = 5;

/// Which daemon to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// The daemon under test.
    MemcachedRs,
    /// The reference: Debian 13's memcached 1.6.38, from the trixie root ([`trixie_root`]).
    Memcached,
}

impl ServerKind {
    /// A command that runs this kind, to which the caller adds the server's arguments.
    /// Panics with advice when a reference is missing.
    pub fn command(self) -> Command {
        match self {
            ServerKind::MemcachedRs => Command::new(memcached_rs_bin()),
            ServerKind::Memcached => reference_command(),
        }
    }

    /// A short name for messages and log files.
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::MemcachedRs => "memcached-rs",
            ServerKind::Memcached => "memcached",
        }
    }
}

/// The memcached-rs binary: `$MEMCACHED_RS_BIN` when set (handy to test another build, or to
/// point the harness at `/usr/bin/memcached` to validate it), else the one cargo built.
pub fn memcached_rs_bin() -> PathBuf {
    match std::env::var_os("MEMCACHED_RS_BIN") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_BIN_EXE_memcached-rs")),
    }
}

/// The Debian 13 (trixie) root that holds the reference memcached: `$TRIXIE_ROOT`, else
/// `target/trixie-root`, which `make test-deps` builds once with debootstrap. Panics (never
/// skips) when its memcached is missing.
pub fn trixie_root() -> PathBuf {
    let root = match std::env::var_os("TRIXIE_ROOT") {
        Some(root) => PathBuf::from(root),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/trixie-root"),
    };
    assert!(
        root.join("usr/bin/memcached").is_file(),
        "the reference memcached {REFERENCE_VERSION} is missing from {}; run `make test-deps` \
         (it builds Debian 13's root with debootstrap)",
        root.display()
    );
    root
}

/// A command running the trixie root's memcached with the root's own dynamic loader and
/// libraries. Not a chroot: the server sees the host's files (temporary files, SASL
/// configuration, unix socket paths), runs without root, and is the spawned process itself, so
/// its pid and signals are the test's to use.
fn reference_command() -> Command {
    let root = trixie_root();
    let mut command = Command::new(root.join("lib64/ld-linux-x86-64.so.2"));
    command
        .arg("--library-path")
        .arg(root.join("usr/lib/x86_64-linux-gnu"))
        .arg(root.join("usr/bin/memcached"));
    command
}

/// Whether this process runs as root, in which case both daemons need `-u root` (memcached
/// refuses to run as root without `-u`). Reads `/proc/self/status` once; falls back to `id -u`.
pub fn running_as_root() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| {
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            if let Some(line) = status.lines().find(|l| l.starts_with("Uid:")) {
                // "Uid: real effective saved fs": root if the real or effective id is 0.
                return line.split_whitespace().skip(1).take(2).any(|id| id == "0");
            }
        }
        let out = Command::new("id")
            .arg("-u")
            .output()
            .expect("cannot tell whether we run as root: no /proc/self/status and `id -u` failed");
        String::from_utf8_lossy(&out.stdout).trim() == "0"
    })
}

/// Where [`free_port`] looks: below Linux's default ephemeral range (32768–60999), so no
/// client socket of any test ever holds one of these ports as its local port.
pub const SERVER_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A loopback port for a test server: random in [`SERVER_PORTS`], never handed out before by
/// this process (parallel tests cannot collide), and with nothing listening on it right now.
/// Another process may still take it before the server binds: [`Server::start`] retries then.
///
/// Why not bind port 0 and drop the listener: std's listeners set `SO_REUSEADDR`, and Linux
/// then lets that temporary listener take a port that another test's server has bound but not
/// yet put into listen state; that server fails, and its readiness probe connects to the
/// temporary listener instead and believes it is up. Seen in practice with parallel tests.
pub fn free_port() -> u16 {
    static HANDED_OUT: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let handed_out = HANDED_OUT.get_or_init(|| Mutex::new(HashSet::new()));
    let span = u64::from(SERVER_PORTS.end - SERVER_PORTS.start);
    for _ in 0..1000 {
        let offset = u16::try_from(random_u64() % span).expect("offset fits the port span");
        let port = SERVER_PORTS.start + offset;
        if !handed_out
            .lock()
            .expect("port registry poisoned")
            .insert(port)
        {
            continue;
        }
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
            return port;
        }
        // Something else listens there (another daemon, another test run): skip it for good.
    }
    panic!("found no free loopback port in {SERVER_PORTS:?} after 1000 tries");
}

/// A random number from std alone: `RandomState` is seeded randomly per process, and the
/// counter makes each call differ.
fn random_u64() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    static STATE: OnceLock<RandomState> = OnceLock::new();
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let mut hasher = STATE.get_or_init(RandomState::new).build_hasher();
    hasher.write_usize(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// The arguments every test server gets: its port, no UDP, loopback only, two worker threads,
/// and `-u root` when running as root.
pub fn base_args(port: u16) -> Vec<String> {
    let mut args: Vec<String> = [
        "-p",
        &port.to_string(),
        "-U",
        "0",
        "-l",
        "127.0.0.1",
        "-t",
        "2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if running_as_root() {
        args.extend(["-u".to_string(), "root".to_string()]);
    }
    args
}

/// Why one start attempt failed.
enum StartError {
    /// The port was taken between choosing it and the server binding it: try another.
    PortClash(String),
}

/// A running daemon on `127.0.0.1:port`, killed (and reaped) when dropped. Its stderr goes to a
/// temporary log file, shown by the panics here and available through [`Server::stderr_output`].
pub struct Server {
    kind: ServerKind,
    port: u16,
    child: Child,
    log_path: PathBuf,
    args: Vec<String>,
}

/// The one SASL user servers started with `-S` know.
pub const SASL_USER: &str = "alice";
/// Its password.
pub const SASL_PASSWORD: &str = "secret";

/// What servers started with `-S` read their users from: memcached-rs a `MEMCACHED_SASL_PWDB`
/// file, memcached (whose Debian build reads no such file) a Cyrus sasldb named by a
/// `memcached.conf` in `SASL_CONF_PATH`.
pub struct SaslFiles {
    pub pwdb: PathBuf,
    pub conf_dir: PathBuf,
}

/// Writes the SASL files once per test process.
pub fn sasl_setup() -> &'static SaslFiles {
    static FILES: OnceLock<SaslFiles> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = std::env::temp_dir()
            .join("memcached-rs-tests")
            .join(format!("sasl-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let pwdb = dir.join("pwdb");
        std::fs::write(&pwdb, format!("{SASL_USER}:{SASL_PASSWORD}\n"))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", pwdb.display()));
        let sasldb = dir.join("sasldb2");
        let _ = std::fs::remove_file(&sasldb);
        let mut saslpasswd = Command::new("saslpasswd2")
            .args(["-p", "-a", "memcached", "-c", SASL_USER, "-f"])
            .arg(&sasldb)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run saslpasswd2 (apt-get install sasl2-bin): {e}"));
        if let Some(stdin) = saslpasswd.stdin.as_mut() {
            stdin
                .write_all(SASL_PASSWORD.as_bytes())
                .expect("write the password to saslpasswd2");
        }
        drop(saslpasswd.stdin.take());
        let status = saslpasswd.wait().expect("wait for saslpasswd2");
        assert!(status.success(), "saslpasswd2 failed: {status}");
        std::fs::write(
            dir.join("memcached.conf"),
            format!("mech_list: plain\nsasldb_path: {}\n", sasldb.display()),
        )
        .unwrap_or_else(|e| panic!("cannot write memcached.conf: {e}"));
        SaslFiles {
            pwdb,
            conf_dir: dir,
        }
    })
}

/// A `-Y` file (`alice:secret`, `bob:pw:x`) written once per test process; its path lives as
/// long as the process, so it can go in `'static` argument lists.
pub fn ascii_auth_file() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join("memcached-rs-tests");
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let path = dir.join(format!("authfile-{}", std::process::id()));
        std::fs::write(&path, "alice:secret\nbob:pw:x\n")
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path.display().to_string()
    })
}

impl Server {
    /// Starts `kind` with [`base_args`] plus `extra_args` (appended, so they can add flags like
    /// `-A` or `-C`) and waits until it accepts TCP connections. Panics with the server's stderr
    /// if it exits or does not listen within [`STARTUP_TIMEOUT`].
    pub fn start(kind: ServerKind, extra_args: &[&str]) -> Server {
        Server::start_with_env(kind, extra_args, &[])
    }

    /// [`Server::start`] with environment variables set (`Some`) or removed (`None`).
    pub fn start_with_env(
        kind: ServerKind,
        extra_args: &[&str],
        env: &[(&str, Option<&str>)],
    ) -> Server {
        let mut last_clash = String::new();
        for _ in 0..START_ATTEMPTS {
            match Server::try_start(kind, free_port(), extra_args, env) {
                Ok(server) => return server,
                Err(StartError::PortClash(stderr)) => last_clash = stderr,
            }
        }
        panic!(
            "{} hit a taken port {START_ATTEMPTS} times; last stderr:\n{last_clash}",
            kind.name(),
        );
    }

    /// One attempt on one port.
    fn try_start(
        kind: ServerKind,
        port: u16,
        extra_args: &[&str],
        env: &[(&str, Option<&str>)],
    ) -> Result<Server, StartError> {
        static LOG_SEQ: AtomicUsize = AtomicUsize::new(0);
        let log_dir = std::env::temp_dir().join("memcached-rs-tests");
        std::fs::create_dir_all(&log_dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_dir.display()));
        let log_path = log_dir.join(format!(
            "{}-{}-{}-{}.log",
            kind.name(),
            std::process::id(),
            port,
            LOG_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        // A file rather than a pipe: nobody has to drain it, so a chatty server never blocks.
        let log = File::create(&log_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_path.display()));
        let mut args = base_args(port);
        args.extend(extra_args.iter().map(|s| s.to_string()));
        let mut command = kind.command();
        if extra_args.contains(&"-S") {
            let sasl = sasl_setup();
            command
                .env("MEMCACHED_SASL_PWDB", &sasl.pwdb)
                .env("SASL_CONF_PATH", &sasl.conf_dir);
        }
        for (name, value) in env {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        let child = command
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {} {args:?}: {e}", kind.name()));
        let mut server = Server {
            kind,
            port,
            child,
            log_path,
            args,
        };

        let addr = server.addr();
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(status) = server
                .child
                .try_wait()
                .expect("cannot poll the server child")
            {
                let stderr = server.stderr_output();
                if stderr.contains("Address already in use") {
                    return Err(StartError::PortClash(stderr));
                }
                panic!(
                    "{} {:?} exited with {status} before accepting connections; stderr:\n{stderr}",
                    kind.name(),
                    server.args
                );
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                // Our child must still be alive for the listener to be its: a stranger that
                // took the port first would make it exit with "Address already in use".
                if server
                    .child
                    .try_wait()
                    .expect("cannot poll the server child")
                    .is_none()
                {
                    return Ok(server);
                }
                continue;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} {:?} did not accept connections on {addr} within {STARTUP_TIMEOUT:?}; \
                     stderr:\n{}",
                    kind.name(),
                    server.args,
                    server.stderr_output()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Which daemon this is.
    pub fn kind(&self) -> ServerKind {
        self.kind
    }

    /// The TCP port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The process id (for signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The full argument list it was started with.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// A new client connection with [`DEFAULT_READ_TIMEOUT`].
    pub fn client(&self) -> Client {
        Client::connect(self.addr())
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr_output(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_else(|e| format!("<cannot read {}: {e}>", self.log_path.display()))
    }

    /// Sends a signal by name (`"TERM"`, `"HUP"`, `"USR1"` …) through `kill(1)`, staying libc-free.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args(["-s", name, &self.pid().to_string()])
            .status()
            .expect("cannot run kill(1)");
        assert!(status.success(), "kill -s {name} {} failed", self.pid());
    }

    /// Waits up to `timeout` for the process to exit by itself; `None` if it is still running.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("cannot poll the server child") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Errors are ignored: the child may have exited already (shutdown tests).
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log_path);
    }
}

/// How a bounded read ([`Client::read_until`]) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadEnd {
    /// The caller's condition was met.
    Matched,
    /// The peer closed the connection (EOF, or a reset: a server that closes with unread input
    /// pending makes the kernel send RST, which is still just "it closed" for a test).
    Closed,
    /// The time ran out first.
    TimedOut,
}

/// A blocking client connection with a read buffer, for raw-protocol tests.
pub struct Client {
    stream: TcpStream,
    /// Bytes received but not yet returned to the caller.
    pending: Vec<u8>,
    timeout: Duration,
}

impl Client {
    /// Connects to `addr` with `TCP_NODELAY` (so each [`Client::send`] leaves at once, which
    /// split-write tests rely on) and [`DEFAULT_READ_TIMEOUT`].
    pub fn connect(addr: SocketAddr) -> Client {
        let stream =
            TcpStream::connect(addr).unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
        stream.set_nodelay(true).expect("cannot set TCP_NODELAY");
        Client {
            stream,
            pending: Vec::new(),
            timeout: DEFAULT_READ_TIMEOUT,
        }
    }

    /// Changes how long the panicking readers wait for data.
    pub fn set_read_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The underlying socket, for anything these helpers do not cover.
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Writes all of `bytes`, panicking on error.
    pub fn send(&mut self, bytes: &[u8]) {
        self.try_send(bytes)
            .unwrap_or_else(|e| panic!("send of {} failed: {e}", escape(bytes)));
    }

    /// Writes all of `bytes`; an error (the server closed on us) is returned, not a panic.
    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Reads until `done(received)` holds, the peer closes, or `limit` passes; returns all bytes
    /// received (including any left over by earlier reads) and how it ended. Never panics on
    /// I/O: it is the building block for tests that compare what happened.
    pub fn read_until(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&[u8]) -> bool,
    ) -> (Vec<u8>, ReadEnd) {
        let deadline = Instant::now() + limit;
        let end = loop {
            if done(&self.pending) {
                break ReadEnd::Matched;
            }
            let now = Instant::now();
            if now >= deadline {
                break ReadEnd::TimedOut;
            }
            match self.fill(deadline - now) {
                Ok(0) => break ReadEnd::Closed,
                Ok(_) => {}
                Err(e) if is_timeout(&e) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break ReadEnd::Closed,
            }
        };
        (std::mem::take(&mut self.pending), end)
    }

    /// Reads until the peer closes (or `limit` passes): everything received and how it ended.
    pub fn read_to_close(&mut self, limit: Duration) -> (Vec<u8>, ReadEnd) {
        self.read_until(limit, |_| false)
    }

    /// Reads until `needle` has arrived; returns the bytes up to and including it and keeps the
    /// rest for later reads. Panics on close or timeout, showing what did arrive.
    pub fn read_until_contains(&mut self, needle: &[u8]) -> Vec<u8> {
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some(at) = find(&self.pending, needle) {
                return self.pending.drain(..at + needle.len()).collect();
            }
            let now = Instant::now();
            if now >= deadline {
                panic!(
                    "timed out after {:?} waiting for {}; received: {}",
                    self.timeout,
                    escape(needle),
                    escape(&self.pending)
                );
            }
            match self.fill(deadline - now) {
                Ok(0) => panic!(
                    "connection closed while waiting for {}; received: {}",
                    escape(needle),
                    escape(&self.pending)
                ),
                Ok(_) => {}
                Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => panic!("read failed waiting for {}: {e}", escape(needle)),
            }
        }
    }

    /// Reads one line and returns it without its `\n` or `\r\n` terminator.
    pub fn read_line(&mut self) -> String {
        let line = self.read_until_contains(b"\n");
        let body = line.strip_suffix(b"\n").unwrap_or(&line);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        String::from_utf8_lossy(body).into_owned()
    }

    /// Reads exactly `n` bytes (panics on close or timeout).
    pub fn read_exact(&mut self, n: usize) -> Vec<u8> {
        let deadline = Instant::now() + self.timeout;
        while self.pending.len() < n {
            let now = Instant::now();
            assert!(
                now < deadline,
                "timed out reading {n} bytes; received: {}",
                escape(&self.pending)
            );
            match self.fill(deadline - now) {
                Ok(0) => panic!(
                    "connection closed before {n} bytes; received: {}",
                    escape(&self.pending)
                ),
                Ok(_) => {}
                Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => panic!("read failed: {e}"),
            }
        }
        self.pending.drain(..n).collect()
    }

    /// Reads one complete text-protocol (or meta-protocol) reply and returns it verbatim,
    /// terminators included. A reply ends at its first line that is not a `VALUE`/`VA`
    /// header (whose data block is skipped by its announced length), `STAT` or `ITEM` line:
    /// so `END`, `STORED`, `ERROR`, a number from incr … all end it.
    pub fn read_reply(&mut self) -> String {
        let mut reply = Vec::new();
        loop {
            let line = self.read_until_contains(b"\n");
            let text = String::from_utf8_lossy(&line).into_owned();
            let words: Vec<&str> = text.split_whitespace().collect();
            let first = words.first().copied().unwrap_or("");
            let data_len = match first {
                "VALUE" => words.get(3),
                "VA" => words.get(1),
                _ => None,
            };
            reply.extend_from_slice(&line);
            if let Some(len) = data_len {
                let len: usize = len
                    .parse()
                    .unwrap_or_else(|_| panic!("bad length in value header {}", escape(&line)));
                let data = self.read_exact(len + 2);
                reply.extend_from_slice(&data);
                if first == "VA" {
                    return String::from_utf8_lossy(&reply).into_owned();
                }
            } else if first != "STAT" && first != "ITEM" {
                return String::from_utf8_lossy(&reply).into_owned();
            }
        }
    }

    /// Sends `command` (adding `\r\n` unless it already ends with `\n`) and returns the whole
    /// reply, see [`Client::read_reply`]. Not for `noreply` commands: they get no reply.
    pub fn request(&mut self, command: &str) -> String {
        let mut bytes = command.as_bytes().to_vec();
        if !bytes.ends_with(b"\n") {
            bytes.extend_from_slice(b"\r\n");
        }
        self.send(&bytes);
        self.read_reply()
    }

    /// Reads once more into `pending`, waiting at most `wait`.
    fn fill(&mut self, wait: Duration) -> io::Result<usize> {
        // A zero timeout means "block forever" to the OS: never pass one.
        let wait = wait.max(Duration::from_millis(1));
        self.stream.set_read_timeout(Some(wait))?;
        let mut chunk = [0u8; 64 * 1024];
        let n = self.stream.read(&mut chunk)?;
        self.pending.extend_from_slice(&chunk[..n]);
        Ok(n)
    }
}

/// Whether a read error is just the read timeout expiring.
fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// A kB field of `/proc/PID/status` (`VmRSS`, `VmHWM`…) of a running process.
pub fn proc_status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// CPU time (user + system, all threads) a process has used so far, in clock ticks.
pub fn cpu_ticks(pid: u32) -> u64 {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    // Then field 3 (state) is index 0, utime (field 14) index 11, stime (field 15) index 12.
    let after = &stat[stat.rfind(')').expect("comm in /proc/PID/stat") + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let number = |i: usize| -> u64 {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .unwrap_or_else(|| panic!("bad {path}: {stat}"))
    };
    number(11) + number(12)
}

/// The number a `stats` reply gives for `name` (`STAT name N`).
pub fn stat_number(stats: &str, name: &str) -> u64 {
    stats
        .lines()
        .find_map(|l| l.strip_prefix(&format!("STAT {name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {stats}"))
}

/// The position of the first `needle` in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Renders bytes on one line: printable ASCII as is, `\r` `\n` `\t` `\0` `\\` escaped, other
/// bytes as `\xNN`, and runs of 16 or more equal bytes as `<'x' x 3000>` so huge keys or
/// values stay readable.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let run = bytes[i..].iter().take_while(|&&c| c == b).count();
        if run >= 16 {
            out.push_str(&format!("<'{}' x {run}>", escape_byte(b)));
            i += run;
            continue;
        }
        out.push_str(&escape_byte(b));
        i += 1;
    }
    out
}

/// Like [`escape`], but breaks the output after each `\n` (which stays visible as `\r\n` or
/// `\n`) and indents every line by `indent`: multi-line replies read like a transcript.
pub fn escape_lines(bytes: &[u8], indent: &str) -> String {
    let mut out = String::new();
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        out.push_str(indent);
        out.push_str(&escape(line));
        out.push('\n');
    }
    if bytes.is_empty() {
        out.push_str(indent);
        out.push_str("<nothing>\n");
    }
    out
}

/// One byte as [`escape`] shows it.
fn escape_byte(b: u8) -> String {
    match b {
        b'\r' => "\\r".to_string(),
        b'\n' => "\\n".to_string(),
        b'\t' => "\\t".to_string(),
        b'\0' => "\\0".to_string(),
        b'\\' => "\\\\".to_string(),
        0x20..=0x7e => (b as char).to_string(),
        _ => format!("\\x{b:02x}"),
    }
}
