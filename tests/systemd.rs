//! systemd integration with the real binary: readiness and status over a `NOTIFY_SOCKET` the
//! test owns, and socket activation through Debian's `systemd-socket-activate`.

mod common;

use common::{free_port, memcached_rs_bin, pass_fds, running_as_root, temp_path, Client};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed if the test ends early.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Daemon {
    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args(["-s", name, &self.0.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = self.0.try_wait().expect("wait") {
                return s;
            }
            assert!(Instant::now() < deadline, "did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `get key` over the unix socket at `path`: the whole reply, up to its `END`.
fn get_over_unix(path: &std::path::Path, key: &str) -> Vec<u8> {
    let mut u = std::os::unix::net::UnixStream::connect(path).expect("unix socket");
    u.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    std::io::Write::write_all(&mut u, format!("get {key}\r\n").as_bytes()).expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while !got.ends_with(b"END\r\n") {
        let n = std::io::Read::read(&mut u, &mut buf).expect("read");
        assert!(n > 0, "unix socket closed");
        got.extend_from_slice(&buf[..n]);
    }
    got
}

fn user_args() -> Vec<&'static str> {
    if running_as_root() {
        vec!["-u", "root"]
    } else {
        Vec::new()
    }
}

/// Receives notification datagrams until one satisfies `want`; returns it.
fn receive_until(sock: &UnixDatagram, what: &str, want: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut buf = vec![0u8; 4096];
    loop {
        assert!(Instant::now() < deadline, "no {what} notification");
        match sock.recv(&mut buf) {
            Ok(n) => {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                if want(&msg) {
                    return msg;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("recv: {e}"),
        }
    }
}

/// Starts memcached-rs with exactly `args`, notifying `notify_path`, its output discarded.
fn spawn_notifying(args: &[impl AsRef<std::ffi::OsStr>], notify_path: &std::path::Path) -> Daemon {
    Daemon(
        Command::new(memcached_rs_bin())
            .args(args)
            .env("NOTIFY_SOCKET", notify_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn"),
    )
}

fn status_of(msg: &str) -> Option<&str> {
    msg.lines().find_map(|l| l.strip_prefix("STATUS="))
}

#[test]
fn notifies_ready_status_and_stopping() {
    let notify_path = temp_path("notify.sock");
    let sock = UnixDatagram::bind(&notify_path).expect("bind the notify socket");
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let port = free_port();
    let mut args = vec![
        "-l".to_string(),
        "127.0.0.1".into(),
        "-p".into(),
        port.to_string(),
        "-U".into(),
        "0".into(),
    ];
    args.extend(user_args().into_iter().map(String::from));
    let mut daemon = spawn_notifying(&args, &notify_path);
    let ready = receive_until(&sock, "READY=1", |m| m.lines().any(|l| l == "READY=1"));
    // Ready means serving: the port accepts at once.
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    assert!(
        TcpStream::connect(addr).is_ok(),
        "READY=1 before the port accepts"
    );
    let first = status_of(&ready)
        .expect("a status with READY=1")
        .to_string();
    assert!(first.contains("0 items"), "{first}");
    let mut c = Client::connect(addr);
    for i in 0..5 {
        assert_eq!(c.request(&format!("set k{i} 0 0 1\r\nv")), "STORED\r\n");
    }
    let changed = receive_until(&sock, "a changed STATUS=", |m| {
        status_of(m).is_some_and(|s| s != first)
    });
    assert!(
        status_of(&changed).is_some_and(|s| s.contains("5 items")),
        "{changed}"
    );
    daemon.signal("TERM");
    receive_until(&sock, "STOPPING=1", |m| {
        m.lines().any(|l| l == "STOPPING=1")
    });
    let exit = daemon.wait_exit();
    assert!(exit.success(), "{exit}");
    let _ = std::fs::remove_file(&notify_path);
}

#[test]
fn serves_the_sockets_systemd_passes_and_binds_nothing_else() {
    let activate = "/usr/bin/systemd-socket-activate";
    assert!(
        std::path::Path::new(activate).exists(),
        "{activate} is missing: `make test` installs Debian's systemd package"
    );
    let tcp_port = free_port();
    let unused_port = free_port();
    let unix_path = temp_path("activated.sock");
    let mut args = vec![
        "-l".to_string(),
        format!("127.0.0.1:{tcp_port}"),
        "-l".into(),
        unix_path.display().to_string(),
        "--fdname=tcp:unix".into(),
        memcached_rs_bin().display().to_string(),
        "-p".into(),
        unused_port.to_string(),
        "-U".into(),
        "0".into(),
    ];
    args.extend(user_args().into_iter().map(String::from));
    let mut daemon = Daemon(
        Command::new(activate)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn systemd-socket-activate"),
    );
    // systemd-socket-activate listens at once and starts the daemon on the first connection.
    let deadline = Instant::now() + Duration::from_secs(10);
    let tcp = SocketAddr::from(([127, 0, 0, 1], tcp_port));
    while TcpStream::connect(tcp).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {tcp}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut c = Client::connect(tcp);
    assert_eq!(c.request("set k 0 0 3\r\nabc"), "STORED\r\n");
    assert_eq!(
        get_over_unix(&unix_path, "k"),
        b"VALUE k 0 3\r\nabc\r\nEND\r\n"
    );
    // -p names a port, but with sockets passed in, nothing else is bound.
    assert!(TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], unused_port))).is_err());
    daemon.signal("TERM");
    assert!(daemon.wait_exit().success());
    let _ = std::fs::remove_file(&unix_path);
}

#[test]
fn adopts_named_tcp_unix_and_udp_sockets_passed_by_hand() {
    use std::os::fd::AsRawFd;
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("tcp");
    let unix_path = temp_path("passed.sock");
    let unix = std::os::unix::net::UnixListener::bind(&unix_path).expect("unix");
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    let tcp_addr = tcp.local_addr().expect("tcp addr");
    let udp_addr = udp.local_addr().expect("udp addr");
    let unused_port = free_port();
    let mut command = Command::new("sh");
    // LISTEN_PID must be the daemon's pid: the shell's own, which exec keeps.
    command
        .args(["-c", "LISTEN_PID=$$ exec \"$0\" \"$@\""])
        .arg(memcached_rs_bin())
        .args(["-p", &unused_port.to_string(), "-U", "0"])
        .args(user_args())
        .env("LISTEN_FDS", "3")
        .env(
            "LISTEN_FDNAMES",
            "memcached-tcp:memcached-unix:memcached-udp",
        )
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    pass_fds(
        &mut command,
        vec![tcp.as_raw_fd(), unix.as_raw_fd(), udp.as_raw_fd()],
    );
    let mut daemon = Daemon(command.spawn().expect("spawn the daemon"));
    // Our copies stay open: the listening sockets are shared, the daemon answers on them.
    let mut c = Client::connect(tcp_addr);
    assert_eq!(c.request("set k 0 0 3\r\nabc"), "STORED\r\n");

    assert_eq!(
        get_over_unix(&unix_path, "k"),
        b"VALUE k 0 3\r\nabc\r\nEND\r\n"
    );

    // UDP: memcached's frame header (request id 7, sequence 0, one datagram).
    let client = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp client");
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut datagram = vec![0, 7, 0, 0, 0, 1, 0, 0];
    datagram.extend_from_slice(b"get k\r\n");
    client.send_to(&datagram, udp_addr).expect("send");
    let mut reply = [0u8; 1500];
    let n = client.recv(&mut reply).expect("a UDP reply");
    assert_eq!(&reply[..8], &[0, 7, 0, 0, 0, 1, 0, 0]);
    assert_eq!(&reply[8..n], b"VALUE k 0 3\r\nabc\r\nEND\r\n");

    // The sockets passed in are all it serves: -p's port was not bound.
    assert!(TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], unused_port))).is_err());
    let mut stats = Client::connect(tcp_addr);
    let listing = stats.request("stats conns");
    assert!(listing.contains(":addr udp:"), "{listing}");
    daemon.signal("TERM");
    assert!(daemon.wait_exit().success());
    let _ = std::fs::remove_file(&unix_path);
}

#[test]
fn large_pages_are_prefaulted_and_systemd_is_asked_for_the_time() {
    let notify_path = temp_path("notify-prefault.sock");
    let sock = UnixDatagram::bind(&notify_path).expect("bind the notify socket");
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let port = free_port();
    let mut daemon = Daemon(
        Command::new(memcached_rs_bin())
            .args(["-l", "127.0.0.1", "-p", &port.to_string(), "-U", "0"])
            .args(["-L", "-m", "128"])
            .args(user_args())
            .env("NOTIFY_SOCKET", &notify_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn"),
    );
    let extend = receive_until(&sock, "EXTEND_TIMEOUT_USEC=", |m| {
        m.lines().any(|l| l.starts_with("EXTEND_TIMEOUT_USEC="))
            || m.lines().any(|l| l == "READY=1")
    });
    assert!(
        extend
            .lines()
            .any(|l| l.starts_with("EXTEND_TIMEOUT_USEC=")),
        "READY=1 came first: {extend}"
    );
    receive_until(&sock, "READY=1", |m| m.lines().any(|l| l == "READY=1"));
    // The whole 128 MB is resident before the first request.
    let status = std::fs::read_to_string(format!("/proc/{}/status", daemon.0.id()))
        .expect("the daemon's /proc status");
    let kb = |field: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{field} in {status}"))
    };
    // Pages of hugetlbfs (where huge pages are reserved) are not counted in the RSS.
    let resident_kb = kb("VmRSS:") + kb("HugetlbPages:");
    assert!(
        resident_kb >= 128 * 1024,
        "{resident_kb} kB resident after prefaulting 128 MB"
    );
    daemon.signal("TERM");
    assert!(daemon.wait_exit().success());
    let _ = std::fs::remove_file(&notify_path);
}

/// `-u` drops root before the daemon is ready: notifications still reach a socket in a
/// directory only root may enter (as systemd-nspawn and test harnesses make), because the
/// daemon connects to it first and keeps the connection.
#[test]
fn notifications_reach_a_root_only_socket_after_privileges_are_dropped() {
    if !running_as_root() {
        eprintln!("skipped: dropping privileges needs root (CI runs as root)");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_path("private-notify");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).expect("private directory");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod 700");
    let notify_path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&notify_path).expect("bind the notify socket");
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let port = free_port();
    let port_arg = port.to_string();
    let args = [
        "-l",
        "127.0.0.1",
        "-p",
        &port_arg,
        "-U",
        "0",
        "-u",
        "nobody",
    ];
    let mut daemon = spawn_notifying(&args, &notify_path);
    let ready = receive_until(&sock, "READY=1", |m| m.lines().any(|l| l == "READY=1"));
    assert!(status_of(&ready).is_some(), "{ready}");
    let mut c = Client::connect(SocketAddr::from(([127, 0, 0, 1], port)));
    let stats = c.request("stats");
    let pid = stats
        .lines()
        .find_map(|l| l.strip_prefix("STAT pid "))
        .expect("pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .expect("uid");
    assert_ne!(uid, "0", "the daemon runs as nobody");
    daemon.signal("TERM");
    receive_until(&sock, "STOPPING=1", |m| {
        m.lines().any(|l| l == "STOPPING=1")
    });
    assert!(daemon.wait_exit().success());
    let _ = std::fs::remove_dir_all(&dir);
}
