//! The cache survives a restart: with `-e PATH` (memcached's memory file) after SIGTERM and
//! after SIGUSR1, and under systemd through its file-descriptor store (played here by the test:
//! it receives the `FDSTORE=1` memfd on its `NOTIFY_SOCKET` and passes it back through
//! `LISTEN_FDS`, as systemd does on `systemctl restart`). An unclean stop (kill -9) or other
//! memory settings start empty, with a line saying why.

mod common;

use common::{
    memcached_rs_bin, pass_fds, running_as_root, temp_path, wait_until, Client, Server, ServerKind,
};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const ITEMS: usize = 2000;

/// What `gets` shows of every key: value, flags and CAS, byte for byte.
type Snapshot = BTreeMap<String, String>;

fn key(i: usize) -> String {
    format!("key:{i}")
}

/// Stores `ITEMS` items of many sizes (chained ones included), some with flags, one with a
/// one-hour TTL; then replaces and deletes some, so freed chunks held items.
fn fill(c: &mut Client) {
    for i in 0..ITEMS {
        let len = (i * 37) % 2000 + if i % 500 == 0 { 700_000 } else { 0 };
        let value: String = (0..len)
            .map(|j| (b'a' + ((i + j) % 26) as u8) as char)
            .collect();
        let flags = if i % 3 == 0 { 0 } else { i * 1000 };
        let reply = c.request(&format!("set {} {flags} 0 {len}\r\n{value}", key(i)));
        assert_eq!(reply, "STORED\r\n", "{}", key(i));
    }
    assert_eq!(c.request("set ttl 0 3600 1\r\nt"), "STORED\r\n");
    for i in (0..ITEMS).step_by(7) {
        assert_eq!(c.request(&format!("delete {}", key(i))), "DELETED\r\n");
    }
}

fn snapshot(c: &mut Client) -> Snapshot {
    (0..ITEMS)
        .map(|i| (key(i), c.request(&format!("gets {}", key(i)))))
        .collect()
}

fn stat(c: &mut Client, name: &str) -> u64 {
    common::stat_number(&c.request("stats"), name)
}

/// The highest CAS any `gets` of the snapshot showed.
fn highest_cas(snap: &Snapshot) -> u64 {
    snap.values()
        .filter_map(|reply| reply.lines().next()?.split(' ').nth(4)?.parse().ok())
        .max()
        .expect("some items")
}

/// Checks that a restarted server has every item as `before`, the TTL still counting, and CAS
/// continuing above every CAS handed out.
fn assert_restored(c: &mut Client, before: &Snapshot, items: u64) {
    let after = snapshot(c);
    let differ: Vec<_> = before
        .iter()
        .filter(|(k, v)| after.get(*k) != Some(v))
        .map(|(k, _)| k)
        .take(5)
        .collect();
    assert!(
        differ.is_empty(),
        "items differ after the restart: {differ:?}"
    );
    assert_eq!(stat(c, "curr_items"), items);
    let ttl = c.request("mg ttl t");
    let left: u64 = ttl
        .trim()
        .strip_prefix("HD t")
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{ttl}"));
    assert!((3500..=3600).contains(&left), "TTL left: {left}");
    let reply = c.request("set new 0 0 1\r\nn");
    assert_eq!(reply, "STORED\r\n");
    let new_cas: u64 = c
        .request("gets new")
        .lines()
        .next()
        .expect("a line")
        .split(' ')
        .nth(4)
        .and_then(|c| c.parse().ok())
        .expect("a CAS");
    assert!(
        new_cas > highest_cas(before),
        "CAS {new_cas} not above those handed out"
    );
}

fn memory_file(name: &str) -> PathBuf {
    let path = temp_path(name);
    let _ = std::fs::remove_file(&path);
    path
}

fn start_with_file(path: &Path, extra: &[&str]) -> Server {
    let path = path.to_str().expect("a UTF-8 path");
    let mut args = vec!["-e", path, "-m", "64", "-v"];
    args.extend_from_slice(extra);
    Server::start(ServerKind::MemcachedRs, &args)
}

/// Waits for the server's log to say `line` (the port accepts into its backlog before the
/// cache is restored, so the line may come just after the start).
fn log_says(server: &Server, line: &str) {
    let said = || server.stderr_output().contains(line);
    let limit = Duration::from_secs(10);
    let deadline = std::time::Instant::now() + limit;
    while !said() {
        assert!(
            std::time::Instant::now() < deadline,
            "the log does not say {line:?}:\n{}",
            server.stderr_output()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stop(mut server: Server, signal: &str) {
    server.signal(signal);
    let status = server
        .wait_for_exit(Duration::from_secs(10))
        .expect("it exits");
    assert!(status.success(), "{status}: {}", server.stderr_output());
}

fn restarts_with_every_item_after(signal: &str) {
    let path = memory_file(&format!("restart-{signal}.mem"));
    let server = start_with_file(&path, &[]);
    let mut c = server.client();
    fill(&mut c);
    let before = snapshot(&mut c);
    let items = stat(&mut c, "curr_items");
    drop(c);
    stop(server, signal);

    let server = start_with_file(&path, &[]);
    log_says(&server, &format!("restored {items} items"));
    assert_restored(&mut server.client(), &before, items);
    drop(server);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_memory_file_keeps_every_item_across_sigterm() {
    restarts_with_every_item_after("TERM");
}

#[test]
fn a_memory_file_keeps_every_item_across_sigusr1() {
    restarts_with_every_item_after("USR1");
}

#[test]
fn after_kill_9_the_cache_starts_empty_and_says_why() {
    let path = memory_file("restart-kill.mem");
    let mut server = start_with_file(&path, &[]);
    fill(&mut server.client());
    server.signal("KILL");
    assert!(server.wait_for_exit(Duration::from_secs(10)).is_some());
    drop(server);
    starts_empty_saying(
        &path,
        &[],
        "cleared because the last run did not stop cleanly",
    );
}

/// Starts a server on `path` with `extra` flags: it must say `line` and hold nothing.
fn starts_empty_saying(path: &Path, extra: &[&str], line: &str) {
    let server = start_with_file(path, extra);
    log_says(&server, line);
    let mut c = server.client();
    assert_eq!(stat(&mut c, "curr_items"), 0);
    assert_eq!(c.request("get key:1"), "END\r\n");
    drop(server);
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_changed_memory_setting_starts_empty_and_says_why() {
    let path = memory_file("restart-settings.mem");
    let server = start_with_file(&path, &[]);
    fill(&mut server.client());
    stop(server, "TERM");
    starts_empty_saying(&path, &["-I", "2m"], "cleared because the memory settings");
}

#[test]
fn a_memory_file_in_use_refuses_a_second_server() {
    let path = memory_file("restart-in-use.mem");
    let first = start_with_file(&path, &[]);
    let mut c = first.client();
    assert_eq!(c.request("set k 0 0 1\r\nv"), "STORED\r\n");
    let mut args = common::base_args(common::free_port());
    args.extend(["-e".to_string(), path.display().to_string()]);
    let second = Command::new(memcached_rs_bin())
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .expect("run a second server");
    assert!(
        !second.status.success(),
        "a second server on the same file started"
    );
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("is in use by another process"), "{stderr}");
    // The first one's memory was left alone.
    assert_eq!(c.request("get k"), "VALUE k 0 1\r\nv\r\nEND\r\n");
    drop(c);
    stop(first, "TERM");
    let _ = std::fs::remove_file(&path);
}

/// A daemon the test runs as systemd would, killed if the test ends early.
struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// systemd's side of a service: its notification socket and its file-descriptor store
/// (`FDSTORE=1` adds under `FDNAME=`, `FDSTOREREMOVE=1` drops every descriptor of a name).
struct Manager {
    socket: UnixDatagram,
    path: PathBuf,
    store: Vec<(String, OwnedFd)>,
}

impl Manager {
    /// A manager for one test (`name` tells their sockets apart).
    fn new(name: &str) -> Manager {
        let path = temp_path(&format!("{name}-notify.sock"));
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        socket.set_nonblocking(true).expect("nonblocking");
        Manager {
            socket,
            path,
            store: Vec::new(),
        }
    }

    fn stored(&self, name: &str) -> usize {
        self.store.iter().filter(|(n, _)| n == name).count()
    }

    /// Starts memcached-rs with `args`, passing the store back as systemd does
    /// (`LISTEN_FDS`, `LISTEN_FDNAMES`); returns once it has said `READY=1`.
    fn start(&mut self, args: &[&str]) -> Service {
        let mut command = Command::new("sh");
        // LISTEN_PID must be the daemon's pid: the shell's own, which exec keeps.
        command
            .args(["-c", "LISTEN_PID=$$ exec \"$0\" \"$@\""])
            .arg(memcached_rs_bin())
            .args(args)
            .args(["-U", "0", "-m", "64"])
            .env("NOTIFY_SOCKET", &self.path)
            .env_remove("LISTEN_FDS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if running_as_root() {
            command.args(["-u", "root"]);
        }
        if !self.store.is_empty() {
            let names: Vec<&str> = self.store.iter().map(|(n, _)| n.as_str()).collect();
            command
                .env("LISTEN_FDS", self.store.len().to_string())
                .env("LISTEN_FDNAMES", names.join(":"));
            pass_fds(
                &mut command,
                self.store.iter().map(|(_, fd)| fd.as_raw_fd()).collect(),
            );
        }
        let service = Service(command.spawn().expect("spawn"));
        self.receive_until_ready();
        service
    }

    fn receive_until_ready(&mut self) {
        let mut ready = false;
        let mut buf = [0u8; 4096];
        wait_until("READY=1", Duration::from_secs(15), || {
            while let Ok((n, fds)) = memcached_rs::os::recv_with_fds(&self.socket, &mut buf) {
                let message = String::from_utf8_lossy(&buf[..n]).into_owned();
                let says = |line: &str| message.lines().any(|l| l == line);
                ready |= says("READY=1");
                let name = message
                    .lines()
                    .find_map(|l| l.strip_prefix("FDNAME="))
                    .unwrap_or("stored")
                    .to_string();
                if says("FDSTOREREMOVE=1") {
                    self.store.retain(|(n, _)| *n != name);
                }
                if says("FDSTORE=1") {
                    self.store
                        .extend(fds.into_iter().map(|fd| (name.clone(), fd)));
                }
            }
            ready
        });
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn signal(service: &Service, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &service.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[test]
fn under_systemd_the_cache_survives_a_restart_through_the_descriptor_store() {
    let mut systemd = Manager::new("restart");
    let port = common::free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let args = ["-p", &port.to_string(), "-l", "127.0.0.1"];

    let mut service = systemd.start(&args);
    assert_eq!(systemd.stored("cache"), 1, "the cache's memfd is stored");
    assert_eq!(
        systemd.stored("listener"),
        1,
        "the listening socket is stored"
    );
    let mut c = Client::connect(addr);
    fill(&mut c);
    let before = snapshot(&mut c);
    let items = stat(&mut c, "curr_items");
    drop(c);

    // systemctl restart: SIGTERM, then a start with the store passed back. A client connecting
    // all the while is never refused: it waits in the kept socket's backlog.
    let connecting = std::thread::spawn(move || {
        // One connection and one request: Err if the connection is refused, else whether the
        // request was answered.
        let ask = || -> Result<bool, std::io::Error> {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            let _ = s.write_all(b"version\r\n");
            let mut reply = [0u8; 64];
            Ok(matches!(s.read(&mut reply), Ok(n) if reply[..n].starts_with(b"VERSION")))
        };
        let (mut refused, mut retried, mut unanswered) = (0, 0, 0);
        for _ in 0..50 {
            match ask() {
                Ok(true) => {}
                // Not expected: the old process answers what a connection it accepted in its
                // last moment sends (net::worker's first-request grace). Counted, and the
                // reconnect must be answered too.
                Ok(false) => {
                    retried += 1;
                    match ask() {
                        Ok(true) => {}
                        Ok(false) => unanswered += 1,
                        Err(_) => refused += 1,
                    }
                }
                Err(_) => refused += 1,
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        (refused, unanswered, retried)
    });
    std::thread::sleep(Duration::from_millis(100));
    signal(&service, "TERM");
    assert!(service.0.wait().expect("wait").success());
    drop(service);
    service = systemd.start(&args);
    let (refused, unanswered, retried) = connecting.join().expect("the client thread");
    assert_eq!(
        (refused, unanswered, retried),
        (0, 0, 0),
        "connections refused, unanswered after a reconnect, or closed unanswered once"
    );
    assert_eq!(
        systemd.stored("cache"),
        1,
        "a restored cache is not stored twice"
    );
    assert_eq!(
        systemd.stored("listener"),
        1,
        "the kept socket replaces itself"
    );
    assert_restored(&mut Client::connect(addr), &before, items);

    // Another port: the kept socket is closed and dropped from the store.
    signal(&service, "TERM");
    assert!(service.0.wait().expect("wait").success());
    drop(service);
    let other = common::free_port();
    service = systemd.start(&["-p", &other.to_string(), "-l", "127.0.0.1"]);
    assert_eq!(systemd.stored("listener"), 1);
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "the old port is closed"
    );
    let mut c = Client::connect(SocketAddr::from(([127, 0, 0, 1], other)));
    assert_eq!(stat(&mut c, "curr_items"), items + 1);
    drop(c);

    // Killed: the store still holds the memory, but it is not trusted.
    signal(&service, "KILL");
    let _ = service.0.wait();
    drop(service);
    let _service = systemd.start(&["-p", &other.to_string(), "-l", "127.0.0.1"]);
    let mut c = Client::connect(SocketAddr::from(([127, 0, 0, 1], other)));
    assert_eq!(stat(&mut c, "curr_items"), 0);
    assert_eq!(c.request("get key:1"), "END\r\n");
}

/// SIGTERM, as `systemctl stop` and `restart` send, and a clean exit.
fn stop_service(mut service: Service) {
    signal(&service, "TERM");
    assert!(service.0.wait().expect("wait").success());
}

/// Huge pages reserved for a test (`vm.nr_hugepages`, root only), given back when dropped.
struct HugePages {
    before: u64,
}

const NR_HUGEPAGES: &str = "/proc/sys/vm/nr_hugepages";

impl HugePages {
    /// Reserves `more` huge pages beyond those reserved now; `None` if the kernel would not.
    fn reserve(more: u64) -> Option<HugePages> {
        let read = || -> Option<u64> {
            std::fs::read_to_string(NR_HUGEPAGES)
                .ok()?
                .trim()
                .parse()
                .ok()
        };
        let before = read()?;
        std::fs::write(NR_HUGEPAGES, (before + more).to_string()).ok()?;
        let reserved = HugePages { before };
        (read()? >= before + more).then_some(reserved)
    }
}

impl Drop for HugePages {
    fn drop(&mut self) {
        let _ = std::fs::write(NR_HUGEPAGES, self.before.to_string());
    }
}

/// kB of huge pages a process maps (`HugetlbPages` in its status).
fn hugetlb_kb(service: &Service) -> u64 {
    std::fs::read_to_string(format!("/proc/{}/status", service.0.id()))
        .expect("the daemon's /proc status")
        .lines()
        .find_map(|l| l.strip_prefix("HugetlbPages:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("HugetlbPages")
}

#[test]
fn with_large_pages_the_cache_survives_in_a_memfd_of_huge_pages() {
    if !running_as_root() {
        eprintln!("skipped: reserving huge pages needs root (CI runs as root)");
        return;
    }
    // -m 64 in a huge page file: 64 MB of pages, a huge page each for the header and table.
    let Some(_reserved) = HugePages::reserve(40) else {
        panic!("the kernel would not reserve 40 huge pages ({NR_HUGEPAGES})");
    };
    let mut systemd = Manager::new("huge");
    let port = common::free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let args = ["-p", &port.to_string(), "-l", "127.0.0.1", "-L"];

    let service = systemd.start(&args);
    assert_eq!(systemd.stored("cache"), 1, "the cache's memfd is stored");
    let mut c = Client::connect(addr);
    fill(&mut c);
    assert!(
        hugetlb_kb(&service) >= 2048,
        "the items are in huge pages: {} kB",
        hugetlb_kb(&service)
    );
    let before = snapshot(&mut c);
    let items = stat(&mut c, "curr_items");
    drop(c);
    stop_service(service);

    let service = systemd.start(&args);
    assert_eq!(
        systemd.stored("cache"),
        1,
        "a restored cache is not stored twice"
    );
    assert!(hugetlb_kb(&service) >= 2048);
    assert_restored(&mut Client::connect(addr), &before, items);
    stop_service(service);

    // Without -L the huge page memory is dropped from the store for a memfd of regular pages.
    let service = systemd.start(&args[..4]);
    assert_eq!(systemd.stored("cache"), 1, "one cache memfd is stored");
    assert_eq!(hugetlb_kb(&service), 0);
    let mut c = Client::connect(addr);
    assert_eq!(stat(&mut c, "curr_items"), 0);
    c.request("set k 0 0 1\r\nv");
    drop(c);
    stop_service(service);
    // And that one is what the next run without -L restores.
    let service = systemd.start(&args[..4]);
    let mut c = Client::connect(addr);
    assert_eq!(c.request("get k"), "VALUE k 0 1\r\nv\r\nEND\r\n");
    drop(c);
    stop_service(service);
}

/// Stores `count` items of `len` bytes under `prefix`, pipelined, and waits for the server to
/// have read them all.
fn store_many(c: &mut Client, prefix: &str, count: usize, len: usize) {
    let value = "v".repeat(len);
    for batch in (0..count).collect::<Vec<_>>().chunks(500) {
        let mut requests = String::new();
        for i in batch {
            requests.push_str(&format!(
                "set {prefix}:{i} 0 0 {len} noreply\r\n{value}\r\n"
            ));
        }
        c.send(requests.as_bytes());
    }
    assert!(c.request("version").starts_with("VERSION"));
}

#[test]
fn a_cache_full_of_one_size_restarted_stores_another_size() {
    let path = memory_file("restart-one-size.mem");
    let path_arg = path.to_str().expect("a UTF-8 path");
    let args = ["-e", path_arg, "-m", "16", "-v"];
    let server = Server::start(ServerKind::MemcachedRs, &args);
    let mut c = server.client();
    // Every page goes to the class of 100-byte values, until they are evicted.
    let mut stored = 0;
    while stat(&mut c, "evictions") == 0 {
        store_many(&mut c, &format!("small{stored}"), 10_000, 100);
        stored += 10_000;
    }
    let items = stat(&mut c, "curr_items");
    drop(c);
    stop(server, "TERM");

    let server = Server::start(ServerKind::MemcachedRs, &args);
    log_says(&server, &format!("restored {items} items"));
    let mut c = server.client();
    // Other sizes: a class that has no page, and a value chained over several chunks.
    for (i, len) in (0..200)
        .map(|i| (i, 10_000))
        .chain((200..210).map(|i| (i, 600_000)))
    {
        let value = "w".repeat(len);
        let reply = c.request(&format!("set big:{i} 0 0 {len}\r\n{value}"));
        assert_eq!(reply, "STORED\r\n", "big:{i} of {len} bytes");
    }
    // The newest of each size is there (older ones of its class may have made room).
    for i in [199, 209] {
        let reply = c.request(&format!("get big:{i}"));
        assert!(reply.starts_with(&format!("VALUE big:{i} ")), "big:{i}");
    }
    assert!(stat(&mut c, "curr_items") > 0);
    drop(c);
    drop(server);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_memory_file_the_dropped_user_may_not_open_is_refused_with_the_reason() {
    if !running_as_root() {
        eprintln!("skipped: dropping privileges needs root (CI runs as root)");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    // The file opens after -u drops root, as memcached opens it: root's 0600 file is refused
    // (memcached aborts there; this exits with the reason), and left as it was.
    let path = memory_file("restart-root-owned.mem");
    std::fs::write(&path, b"root's").expect("write the file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let port = common::free_port().to_string();
    let path_arg = path.to_str().expect("a UTF-8 path");
    let run = Command::new(memcached_rs_bin())
        .args(["-p", &port, "-U", "0", "-l", "127.0.0.1", "-u", "nobody"])
        .args(["-e", path_arg, "-m", "16"])
        .stdin(Stdio::null())
        .output()
        .expect("run the server");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(71), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "failed to open the memory file {path_arg}: Permission denied"
        )),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&path).expect("read the file"), b"root's");
    std::fs::remove_file(&path).expect("remove the file");

    // A file the server makes itself (in a directory anyone may write, as tmpfs's /dev/shm) is
    // the dropped user's, and restores.
    let path = PathBuf::from(format!(
        "/dev/shm/memcached-rs-test-{}.mem",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    let server = start_with_file(&path, &["-u", "nobody"]);
    assert_eq!(server.client().request("set k 0 0 1\r\nv"), "STORED\r\n");
    stop(server, "TERM");
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(&path).expect("stat").uid();
    assert_ne!(
        owner, 0,
        "the memory file belongs to the user the server runs as"
    );
    let server = start_with_file(&path, &["-u", "nobody"]);
    log_says(&server, "restored 1 items");
    assert_eq!(
        server.client().request("get k"),
        "VALUE k 0 1\r\nv\r\nEND\r\n"
    );
    drop(server);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn memory_that_outlives_the_process_keeps_the_size_m_gave_it() {
    let path = memory_file("restart-memlimit.mem");
    let server = start_with_file(&path, &[]);
    let mut c = server.client();
    let refused = "MEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust\r\n";
    assert_eq!(c.request("cache_memlimit 128"), refused);
    assert_eq!(c.request("cache_memlimit 32"), "OK\r\n");
    assert_eq!(c.request("cache_memlimit 64"), "OK\r\n");
    assert_eq!(stat(&mut c, "limit_maxbytes"), 64 * 1024 * 1024);
    drop(c);
    drop(server);
    let _ = std::fs::remove_file(&path);
}
