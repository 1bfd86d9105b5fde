//! Process life with the real binary: `-d` and `-P`, the log file and its reopening on SIGHUP,
//! `-u` (the uid after start), `-k` and `-r`.

mod common;

use common::{free_port, memcached_rs_bin, running_as_root, temp_path, wait_until, Client};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn base(port: u16) -> Command {
    let mut c = Command::new(memcached_rs_bin());
    c.args(["-l", "127.0.0.1", "-p", &port.to_string(), "-U", "0"])
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// The daemon answers (a connection alone is not enough: the kernel accepts on a bound
/// socket before the workers — and the set-up that precedes them — are running).
fn serving(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reply = [0u8; 16];
    s.write_all(b"version\r\n").is_ok() && s.read(&mut reply).is_ok_and(|n| n > 0)
}

fn proc_field(pid: u32, file: &str, field: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field).map(|v| v.trim().to_string()))
        .unwrap_or_default()
}

fn kill(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Sends SIGTERM and returns everything the daemon wrote to its (piped) stderr.
fn stop_and_read_stderr(daemon: &mut Daemon) -> String {
    use std::io::Read;
    kill(daemon.0.id(), "TERM");
    let mut err = String::new();
    daemon
        .0
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("read stderr");
    err
}

/// A foreground daemon, killed if the test ends early.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn daemonizes_writes_the_pid_file_and_removes_it() {
    let port = free_port();
    let pid_file = temp_path("daemon.pid");
    let mut c = base(port);
    c.args(["-d", "-P"]).arg(&pid_file);
    if running_as_root() {
        c.args(["-u", "root"]);
    }
    // The command returns once the daemon has detached.
    let status = c.status().expect("run");
    assert!(status.success(), "{status}");
    wait_until("the pid file", Duration::from_secs(10), || {
        pid_file.exists()
    });
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .expect("pid file")
        .trim()
        .parse()
        .expect("a pid");
    wait_until("the port", Duration::from_secs(10), || serving(port));
    assert_eq!(
        Client::connect(SocketAddr::from(([127, 0, 0, 1], port))).request("version"),
        "VERSION 1.6.38\r\n"
    );
    // Detached: not our child, in a session of its own, without a terminal.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let (ppid, sid) = (fields[1], fields[3]);
    assert_ne!(ppid, std::process::id().to_string());
    assert_ne!(
        sid,
        pid.to_string(),
        "the second fork leaves the session leader behind"
    );
    assert_eq!(fields[4], "0", "no controlling terminal");
    kill(pid, "TERM");
    wait_until("the daemon to exit", Duration::from_secs(10), || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    });
    assert!(!pid_file.exists(), "pid file left behind");
}

#[test]
fn the_log_file_is_reopened_on_sighup() {
    let port = free_port();
    let log = temp_path("server.log");
    let conf = temp_path("logfile.conf");
    std::fs::write(&conf, format!("logfile {}\n-v\n", log.display())).expect("conf");
    let mut c = base(port);
    c.arg("--config-file").arg(&conf);
    if running_as_root() {
        c.args(["-u", "root"]);
    }
    let daemon = Daemon(c.spawn().expect("spawn"));
    wait_until("the port", Duration::from_secs(10), || serving(port));
    wait_until("start-up lines in the log", Duration::from_secs(10), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("listening on tcp 127.0.0.1:"))
    });
    // logrotate moves the file away, then signals.
    let rotated = log.with_extension("log.1");
    std::fs::rename(&log, &rotated).expect("rotate");
    kill(daemon.0.id(), "HUP");
    wait_until("a fresh log file", Duration::from_secs(10), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("SIGHUP: reopened"))
    });
    assert!(std::fs::read_to_string(&rotated)
        .expect("rotated log")
        .contains("item memory: 64 MB"));
    let _ = std::fs::remove_file(&rotated);
    let _ = std::fs::remove_file(&log);
}

#[test]
fn drops_to_the_user_named_by_u() {
    if !running_as_root() {
        // Without root there is no user to drop from; -u is ignored, as by memcached.
        return;
    }
    let port = free_port();
    let mut c = base(port);
    c.args(["-u", "nobody"]);
    let daemon = Daemon(c.spawn().expect("spawn"));
    wait_until("the port", Duration::from_secs(10), || serving(port));
    let uid = proc_field(daemon.0.id(), "status", "Uid:");
    let nobody = Command::new("id")
        .args(["-u", "nobody"])
        .output()
        .expect("id");
    let nobody = String::from_utf8_lossy(&nobody.stdout).trim().to_string();
    assert!(
        uid.split_whitespace().all(|id| id == nobody),
        "uids {uid}, nobody is {nobody}"
    );
}

#[test]
fn k_locks_memory_and_r_allows_core_files() {
    if !running_as_root() {
        // An unprivileged mlockall is bounded by RLIMIT_MEMLOCK; the warning path is all there
        // is to see.
        return;
    }
    let port = free_port();
    let mut c = base(port);
    c.args(["-k", "-r", "-u", "root"]);
    let daemon = Daemon(c.spawn().expect("spawn"));
    wait_until("the port", Duration::from_secs(10), || serving(port));
    let pid = daemon.0.id();
    let locked: u64 = proc_field(pid, "status", "VmLck:")
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap_or(0);
    assert!(locked > 0, "nothing locked");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .expect("core limit line");
    assert!(core.contains("unlimited"), "{core}");
    // Locking on fault: the reserved item memory is not made resident.
    let rss: u64 = proc_field(pid, "status", "VmRSS:")
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap_or(u64::MAX);
    assert!(rss < 64 * 1024, "RSS {rss} kB");
}

/// A daemon with the [`base`] flags (as root, `-u root`) on a free port, once it serves.
fn start_serving() -> (Daemon, SocketAddr) {
    let port = free_port();
    let mut c = base(port);
    if running_as_root() {
        c.args(["-u", "root"]);
    }
    let daemon = Daemon(c.spawn().expect("spawn"));
    wait_until("the port", Duration::from_secs(10), || serving(port));
    (daemon, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// SIGTERM while replies are queued: the daemon stops accepting, sends what it owes, closes
/// and exits 0. The client sees whole replies, then the close.
#[test]
fn sigterm_sends_queued_replies_then_exits_cleanly() {
    use std::io::{Read, Write};
    let (mut daemon, addr) = start_serving();
    let value = vec![b'v'; 200_000];
    let mut setter = Client::connect(addr);
    let mut set = format!("set big 0 0 {}\r\n", value.len()).into_bytes();
    set.extend_from_slice(&value);
    assert_eq!(setter.request(&String::from_utf8_lossy(&set)), "STORED\r\n");
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    // Far more replies than the socket buffers hold, none read yet.
    s.write_all(&b"get big\r\n".repeat(50)).expect("write");
    std::thread::sleep(Duration::from_millis(200));
    kill(daemon.0.id(), "TERM");
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    let mut status = None;
    wait_until("the daemon to exit", Duration::from_secs(10), || {
        status = daemon.0.try_wait().expect("wait");
        status.is_some()
    });
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let mut reply = format!("VALUE big 0 {}\r\n", value.len()).into_bytes();
    reply.extend_from_slice(&value);
    reply.extend_from_slice(b"\r\nEND\r\n");
    assert!(
        got.len() >= reply.len(),
        "not even one reply: {} bytes",
        got.len()
    );
    let whole = got.len() / reply.len();
    for i in 0..whole {
        assert!(
            got[i * reply.len()..(i + 1) * reply.len()] == reply[..],
            "reply {i} damaged"
        );
    }
    assert!(
        reply.starts_with(&got[whole * reply.len()..]),
        "trailing bytes are not the start of a reply"
    );
}

/// A client that connected just before SIGTERM and sends its request just after (during a
/// restart it reached the old process in its last moment) is answered, not cut off: the
/// stopping daemon waits a moment for a silent new connection's first request.
#[test]
fn sigterm_answers_a_client_that_connected_just_before() {
    let (mut daemon, addr) = start_serving();
    let mut late = Client::connect(addr);
    // Once the daemon counts it beside the probe's own connection, `late` has been accepted.
    let mut probe = Client::connect(addr);
    wait_until(
        "the silent connection to be accepted",
        Duration::from_secs(10),
        || {
            probe
                .request("stats")
                .contains("STAT curr_connections 2\r\n")
        },
    );
    drop(probe);
    kill(daemon.0.id(), "TERM");
    // Give the daemon time to be stopping, then ask.
    std::thread::sleep(Duration::from_millis(30));
    late.send(b"version\r\n");
    assert_eq!(late.read_line(), "VERSION 1.6.38");
    let mut status = None;
    wait_until("the daemon to exit", Duration::from_secs(10), || {
        status = daemon.0.try_wait().expect("wait");
        status.is_some()
    });
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

/// `-vv`: every command and the first line of its reply, memcached's `<fd`/`>fd` lines.
#[test]
fn vv_logs_commands_and_replies() {
    let port = free_port();
    let log = temp_path("vv.log");
    let conf = temp_path("vv.conf");
    std::fs::write(&conf, format!("logfile {}\n-vv\n", log.display())).expect("conf");
    let mut c = base(port);
    c.arg("--config-file").arg(&conf);
    if running_as_root() {
        c.args(["-u", "root"]);
    }
    let _daemon = Daemon(c.spawn().expect("spawn"));
    wait_until("the port", Duration::from_secs(10), || serving(port));
    let mut client = Client::connect(SocketAddr::from(([127, 0, 0, 1], port)));
    assert_eq!(client.request("set vk 0 0 1\r\nx"), "STORED\r\n");
    assert_eq!(client.request("get vk"), "VALUE vk 0 1\r\nx\r\nEND\r\n");
    wait_until("the exchange in the log", Duration::from_secs(10), || {
        std::fs::read_to_string(&log).is_ok_and(|t| {
            ["set vk 0 0 1", "STORED", "get vk", "sending key vk"]
                .iter()
                .all(|want| t.lines().any(|l| l.ends_with(want)))
        })
    });
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(text
        .lines()
        .any(|l| l.starts_with('<') && l.ends_with(" set vk 0 0 1")));
    assert!(text
        .lines()
        .any(|l| l.starts_with('>') && l.ends_with(" STORED")));
    let _ = std::fs::remove_file(&log);
}

/// A log file the daemon cannot open (Debian's memcached.conf names one its wrapper opened as
/// root) is reported, and the daemon serves anyway, logging to stderr.
#[test]
fn an_unwritable_log_file_does_not_stop_the_start() {
    let port = free_port();
    let conf = temp_path("badlog.conf");
    std::fs::write(&conf, "logfile /nonexistent-dir/memcached.log\n").expect("conf");
    let mut c = base(port);
    c.arg("--config-file").arg(&conf).stderr(Stdio::piped());
    if running_as_root() {
        c.args(["-u", "root"]);
    }
    let mut daemon = Daemon(c.spawn().expect("spawn"));
    wait_until("the port", Duration::from_secs(10), || serving(port));
    let err = stop_and_read_stderr(&mut daemon);
    assert!(
        err.contains("cannot open log file /nonexistent-dir/memcached.log: No such file or directory; logging to stderr instead"),
        "{err}"
    );
}

/// Under systemd every stderr line carries its syslog priority, so the journal files warnings as
/// warnings. systemd names the stream in `JOURNAL_STREAM` (`device:inode`); a `JOURNAL_STREAM`
/// inherited from a service by a daemon whose stderr goes elsewhere gets plain lines.
#[test]
fn journal_lines_carry_their_priority() {
    use std::os::unix::fs::MetadataExt;
    for journal in [true, false] {
        let port = free_port();
        let path = std::env::temp_dir().join(format!("mcrs-journal-{}-{port}", std::process::id()));
        let log = std::fs::File::create(&path).expect("create the stderr file");
        let meta = log.metadata().expect("stat the stderr file");
        let inode = if journal { meta.ino() } else { meta.ino() + 1 };
        let mut c = base(port);
        c.args(["-v", "-o", "hash_algorithm=jenkins"])
            .env("JOURNAL_STREAM", format!("{}:{inode}", meta.dev()))
            .stderr(log);
        if running_as_root() {
            c.args(["-u", "root"]);
        }
        let mut daemon = Daemon(c.spawn().expect("spawn"));
        wait_until("the port", Duration::from_secs(10), || serving(port));
        kill(daemon.0.id(), "TERM");
        daemon.0.wait().expect("wait for the daemon");
        let err = std::fs::read_to_string(&path).expect("read the stderr file");
        let _ = std::fs::remove_file(&path);
        let (warn, info) = if journal { ("<4>", "<6>") } else { ("", "") };
        let warning = format!("{warn}-o hash_algorithm=jenkins: accepted, without effect: ");
        let listening = format!("{info}listening on tcp 127.0.0.1:");
        assert!(err.lines().any(|l| l.starts_with(&warning)), "{err}");
        assert!(err.lines().any(|l| l.starts_with(&listening)), "{err}");
    }
}
