//! Restart time with a full cache: memcached-rs next to Debian's memcached 1.6.18, both with
//! `-e` (a memory file in /dev/shm) and `-m 1024`, filled with 100-byte values until about a
//! gigabyte of them is stored (`make bench-restart`). A report, not a test.
//!
//! For each server: fill, then stop as it must be stopped to keep its cache (memcached:
//! SIGUSR1; memcached-rs: SIGTERM, what `systemctl restart` sends), start it again on the same
//! file and time, from the stop signal: the old process's exit, the new one's `READY=1`
//! (memcached-rs, over a `NOTIFY_SOCKET` this process owns), and the first hit; then count the
//! items that came back. memcached 1.6.18 drops its memory file when started again within the
//! second it stopped in, so its restart waits for the next second (counted in its time).

#[allow(dead_code)] // shared with the other benches, which use other parts
mod loadgen;

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use loadgen::server::{self, MEMCACHED_PATH};
use loadgen::{BenchResult, Context, Dataset};

/// Keys written: 100-byte values, about a gigabyte of them (more than memcached's 1 GB holds
/// at its per-item overhead, so each server keeps what it can).
const KEYS: u64 = 10_000_000;

struct Timings {
    exit: Duration,
    ready: Option<Duration>,
    first_hit: Duration,
    before: u64,
    after: u64,
}

fn spawn(binary: &Path, file: &Path, port: u16, notify: Option<&Path>) -> BenchResult<Child> {
    let mut args: Vec<OsString> = server::server_flags(port)
        .into_iter()
        .map(Into::into)
        .collect();
    args.extend(["-e".into(), file.as_os_str().to_owned()]);
    let mut command = Command::new(binary);
    command
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    match notify {
        Some(path) => command.env("NOTIFY_SOCKET", path),
        None => command.env_remove("NOTIFY_SOCKET"),
    };
    command.spawn().context("starting the server")
}

/// `get` of one key until it hits; the time it took.
fn first_hit(addr: SocketAddr, key: &[u8], since: Instant) -> BenchResult<Duration> {
    let deadline = since + Duration::from_secs(600);
    loop {
        if let Ok(mut s) = TcpStream::connect(addr) {
            s.set_read_timeout(Some(Duration::from_secs(60)))
                .context("timeout")?;
            let mut request = b"get ".to_vec();
            request.extend_from_slice(key);
            request.extend_from_slice(b"\r\n");
            s.write_all(&request).context("sending a get")?;
            let mut reply = [0u8; 512];
            if let Ok(n) = s.read(&mut reply) {
                if reply[..n].starts_with(b"VALUE") {
                    return Ok(since.elapsed());
                }
            }
        }
        if Instant::now() > deadline {
            return Err("no hit within 10 minutes".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn curr_items(addr: SocketAddr) -> BenchResult<u64> {
    let mut s = TcpStream::connect(addr).context("connecting for stats")?;
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .context("timeout")?;
    s.write_all(b"stats\r\n").context("sending stats")?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    while !reply.ends_with(b"END\r\n") {
        let n = s.read(&mut buf).context("reading stats")?;
        if n == 0 {
            return Err("stats: connection closed".into());
        }
        reply.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&reply)
        .lines()
        .find_map(|l| l.strip_prefix("STAT curr_items "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| "no curr_items".into())
}

fn measure(
    name: &str,
    binary: &Path,
    stop_signal: &str,
    with_notify: bool,
) -> BenchResult<Timings> {
    let file = PathBuf::from(format!(
        "/dev/shm/bench-restart-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&file);
    let notify_path =
        std::env::temp_dir().join(format!("bench-restart-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&notify_path);
    let notify = UnixDatagram::bind(&notify_path).context("binding the notify socket")?;
    notify
        .set_read_timeout(Some(Duration::from_millis(1)))
        .context("timeout")?;
    let notify_arg = with_notify.then_some(notify_path.as_path());
    let port = server::free_port()?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));

    let mut old = spawn(binary, &file, port, notify_arg)?;
    let ds = Dataset::new("restart", KEYS, 100, 100);
    let started = Instant::now();
    while TcpStream::connect(addr).is_err() {
        if started.elapsed() > Duration::from_secs(30) {
            return Err(format!("{name} did not start"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!("{name}: filling {KEYS} keys of 100 B");
    loadgen::prefill(addr, &ds, 4)?;
    let before = curr_items(addr)?;
    let mut key = Vec::new();
    ds.push_key(KEYS - 1, &mut key);

    // The first run's own READY=1 and status lines are not the restart's.
    let mut stale = [0u8; 1024];
    while notify.recv(&mut stale).is_ok() {}

    let stop = Instant::now();
    Command::new("kill")
        .args([&format!("-{stop_signal}"), &old.id().to_string()])
        .status()
        .context("kill")?;
    old.wait().context("waiting for the old process")?;
    let exit = stop.elapsed();
    if !with_notify {
        // memcached 1.6.18 refuses its memory file ("restart incompatible due to setting for
        // [stop_time]") when started again within the second it stopped in: a restart that
        // keeps its cache waits for the next second, and that wait is part of its time.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| format!("the clock: {e}"))?;
        std::thread::sleep(Duration::from_nanos(
            1_000_000_000 - u64::from(now.subsec_nanos()),
        ));
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut new = spawn(binary, &file, port, notify_arg)?;
    let mut ready = None;
    if with_notify {
        let mut buf = [0u8; 1024];
        while ready.is_none() && stop.elapsed() < Duration::from_secs(600) {
            if let Ok(n) = notify.recv(&mut buf) {
                if String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .any(|l| l == "READY=1")
                {
                    ready = Some(stop.elapsed());
                }
            }
        }
    }
    let hit = first_hit(addr, &key, stop)?;
    let after = curr_items(addr)?;
    let _ = new.kill();
    let _ = new.wait();
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_file(&notify_path);
    Ok(Timings {
        exit,
        ready,
        first_hit: hit,
        before,
        after,
    })
}

fn main() -> ExitCode {
    server::require_memcached("bench-restart");
    let rs = server::memcached_rs_path();
    let runs = [
        ("memcached-rs", rs.as_path(), "TERM", true),
        ("memcached", Path::new(MEMCACHED_PATH), "USR1", false),
    ];
    println!("bench-restart: -m 1024 -e /dev/shm/…, {KEYS} keys of 100 B written; times from the stop signal");
    println!(
        "{:<14}{:>8}{:>12}{:>12}{:>14}{:>14}{:>14}",
        "server", "stop", "exited s", "READY s", "first hit s", "items before", "items after"
    );
    let mut hits = Vec::new();
    // BENCH_RESTART_ONLY=memcached-rs (or memcached) runs one of them.
    let only = std::env::var("BENCH_RESTART_ONLY").ok();
    for (name, binary, signal, notify) in runs {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        match measure(name, binary, signal, notify) {
            Ok(t) => {
                println!(
                    "{name:<14}{:>8}{:>12.2}{:>12}{:>14.2}{:>14}{:>14}",
                    format!("SIG{signal}"),
                    t.exit.as_secs_f64(),
                    t.ready
                        .map_or("-".into(), |r| format!("{:.2}", r.as_secs_f64())),
                    t.first_hit.as_secs_f64(),
                    t.before,
                    t.after
                );
                hits.push(t.first_hit.as_secs_f64());
            }
            Err(e) => {
                eprintln!("{name}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if let [rs, mc] = hits[..] {
        println!(
            "memcached-rs / memcached: time to the first hit {:.2}x",
            rs / mc
        );
    }
    ExitCode::SUCCESS
}
