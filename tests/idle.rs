//! Sitting idle costs nothing (issue 19): with no client asking anything, memcached-rs wakes no
//! more often than memcached does (which wakes its clock and LRU maintainer once a second each)
//! and uses no CPU — while keeping every duty: the time requests read, the LRU crawler's
//! reclaiming of expired items, the systemd watchdog.
//!
//! Wake-ups are counted, not timed: every time a thread wakes the kernel counts a context
//! switch for it (`/proc/PID/task/TID/status`), so the counts over a few idle seconds bound the
//! wake-ups however slow the machine is.

mod common;

use std::collections::BTreeMap;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use common::{cpu_ticks, stat_number, temp_path, Client, Server, ServerKind};

/// Each thread's name and context switches (voluntary and not), by thread id.
fn switches(pid: u32) -> BTreeMap<u32, (String, u64)> {
    let mut threads = BTreeMap::new();
    let dir = format!("/proc/{pid}/task");
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
        let Ok(entry) = entry else { continue };
        let path = entry.path();
        let Some(tid) = path.file_name().and_then(|n| n.to_str()?.parse().ok()) else {
            continue;
        };
        // A thread may end between the listing and the reads.
        let (Ok(comm), Ok(status)) = (
            std::fs::read_to_string(path.join("comm")),
            std::fs::read_to_string(path.join("status")),
        ) else {
            continue;
        };
        let count: u64 = status
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
        threads.insert(tid, (comm.trim().to_string(), count));
    }
    threads
}

/// A process's threads' context switches and its CPU ticks at one moment.
struct Snapshot {
    pid: u32,
    switches: BTreeMap<u32, (String, u64)>,
    ticks: u64,
}

impl Snapshot {
    fn of(pid: u32) -> Snapshot {
        Snapshot {
            pid,
            switches: switches(pid),
            ticks: cpu_ticks(pid),
        }
    }

    /// What the process has spent since this snapshot.
    fn spell(&self) -> Spell {
        let per_thread: Vec<(String, u64)> = switches(self.pid)
            .into_iter()
            .map(|(tid, (name, count))| {
                let earlier = self.switches.get(&tid).map_or(0, |(_, c)| *c);
                (name, count - earlier)
            })
            .collect();
        Spell {
            total: per_thread.iter().map(|(_, n)| n).sum(),
            per_thread,
            ticks: cpu_ticks(self.pid) - self.ticks,
        }
    }
}

/// What an idle spell cost a process: wake-ups per thread and CPU ticks.
struct Spell {
    per_thread: Vec<(String, u64)>,
    total: u64,
    ticks: u64,
}

impl Spell {
    /// Wake-ups of the threads whose names start with `prefix`.
    fn woke(&self, prefix: &str) -> u64 {
        self.per_thread
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(_, n)| n)
            .sum()
    }
}

impl std::fmt::Display for Spell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} wake-ups, {} CPU ticks (", self.total, self.ticks)?;
        for (name, n) in &self.per_thread {
            write!(f, "{name} {n}, ")?;
        }
        write!(f, ")")
    }
}

/// Watches the processes in `pids` side by side for `window`.
fn idle_spell(pids: &[u32], window: Duration) -> Vec<Spell> {
    let before: Vec<Snapshot> = pids.iter().map(|&p| Snapshot::of(p)).collect();
    std::thread::sleep(window);
    before.iter().map(Snapshot::spell).collect()
}

const WINDOW: Duration = Duration::from_secs(3);

/// Runs both servers with `extra` flags, lets them settle after `prepare` (whose connections
/// stay open through the spell), and compares an idle spell of each.
fn compare_idle(extra: &[&str], prepare: impl Fn(&Server) -> Vec<Client>) {
    let ours = Server::start(ServerKind::MemcachedRs, extra);
    let reference = Server::start(ServerKind::Memcached, extra);
    let _open = (prepare(&ours), prepare(&reference));
    // The last requests' aftermath: the maintainer's passes and its idle check.
    std::thread::sleep(Duration::from_millis(2500));
    let spells = idle_spell(&[ours.pid(), reference.pid()], WINDOW);
    let (ours_spell, reference_spell) = (&spells[0], &spells[1]);
    eprintln!("flags {extra:?}: memcached-rs {ours_spell}; memcached {reference_spell}");
    assert!(
        ours_spell.total <= reference_spell.total,
        "idle for {WINDOW:?} with {extra:?}, memcached-rs woke more often than memcached:\n  \
         memcached-rs {ours_spell}\n  memcached {reference_spell}"
    );
    assert!(
        ours_spell.ticks <= reference_spell.ticks,
        "idle, memcached-rs used CPU: {ours_spell}; memcached {reference_spell}"
    );
}

#[test]
fn an_idle_server_wakes_no_more_often_than_memcached() {
    compare_idle(&[], |_| Vec::new());
    compare_idle(&["-t", "8"], |_| Vec::new());
}

#[test]
fn after_requests_every_thread_goes_back_to_sleep() {
    let traffic = |server: &Server| {
        let mut c = server.client();
        for i in 0..200 {
            // Some with a TTL (the crawler's timer), some without.
            let ttl = if i % 2 == 0 { 0 } else { 3600 };
            assert_eq!(
                c.request(&format!("set k{i} 0 {ttl} 2\r\nab\r\n")),
                "STORED\r\n"
            );
        }
        assert!(c.request("get k1 k2 k3\r\n").ends_with("END\r\n"));
        assert!(c.request("stats\r\n").ends_with("END\r\n"));
        vec![c]
    };
    compare_idle(&[], traffic);
    // The connection stays open through the spell: -o idle_timeout has one to watch.
    compare_idle(&["-o", "idle_timeout=600"], traffic);
}

/// The crawler sleeps while idle, but not through an expiry: it wakes when the earliest item it
/// saw can have expired, and reclaims it without any client asking.
#[test]
fn an_idle_crawler_wakes_for_expiring_items_and_only_for_them() {
    let server = Server::start(ServerKind::MemcachedRs, &[]);
    let mut c = server.client();
    assert_eq!(c.request("set soon 0 14 1\r\nx\r\n"), "STORED\r\n");
    assert_eq!(c.request("set never 0 0 1\r\nx\r\n"), "STORED\r\n");
    drop(c);
    // The first crawl comes 10 s after the start and sees the item expiring at ~14 s: the next
    // one comes after it has.
    let spell = idle_spell(&[server.pid()], Duration::from_secs(22));
    let crawler = spell[0].woke("lru-crawler");
    let mut c = server.client();
    let stats = c.request("stats\r\n");
    assert_eq!(
        stat_number(&stats, "crawler_reclaimed"),
        1,
        "the expired item was not reclaimed:\n{stats}"
    );
    // A pass after the sets, the idle check a second later, the crawl at 10 s, the one after
    // the expiry; 5 leaves one for a spurious wake-up. Ticking, it would have been 20 or more.
    assert!(
        crawler <= 5,
        "the crawler woke {crawler} times in 22 idle seconds: {}",
        spell[0]
    );
    assert_eq!(
        c.request("get never\r\n"),
        "VALUE never 0 1\r\nx\r\nEND\r\n"
    );
    drop(c);
    // The crawler parked again: SIGTERM still ends it, cleanly.
    let mut server = server;
    std::thread::sleep(Duration::from_millis(2500));
    server.signal("TERM");
    let status = server.wait_for_exit(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "SIGTERM while the crawler is parked: {status:?}"
    );
}

/// Under `WatchdogSec=` the workers sleep without a timeout, so the notifier wakes each of
/// them at the watchdog's pace and pings only once every one has answered; nothing else wakes.
#[test]
fn the_watchdog_is_fed_while_idle_at_its_own_pace() {
    let notify_path = temp_path("idle-notify.sock");
    let sock = UnixDatagram::bind(&notify_path).expect("bind the notify socket");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let notify = notify_path.to_string_lossy();
    // Pings every 500 ms (half the interval, as systemd asks).
    let mut server = Server::start_with_env(
        ServerKind::MemcachedRs,
        &[],
        &[
            ("NOTIFY_SOCKET", Some(&notify)),
            ("WATCHDOG_USEC", Some("1000000")),
            ("WATCHDOG_PID", None),
        ],
    );
    std::thread::sleep(Duration::from_millis(1500));
    let before = Snapshot::of(server.pid());
    let start = Instant::now();
    let mut pings = 0;
    let mut buf = [0u8; 4096];
    while start.elapsed() < WINDOW {
        if let Ok(n) = sock.recv(&mut buf) {
            pings += String::from_utf8_lossy(&buf[..n])
                .lines()
                .filter(|l| *l == "WATCHDOG=1")
                .count();
        }
    }
    let spell = before.spell();
    // Parked or not, every thread ends at SIGTERM, and the exit is clean.
    server.signal("TERM");
    let status = server.wait_for_exit(Duration::from_secs(10));
    let _ = std::fs::remove_file(&notify_path);
    assert!(
        status.is_some_and(|s| s.success()),
        "SIGTERM while idle under systemd: {status:?}"
    );
    assert!(
        pings >= 3,
        "{pings} watchdog pings in {WINDOW:?} (every 500 ms expected)"
    );
    // Six pings in three seconds: the notifier and each of the two workers wake about six
    // times; the crawler (a watchdog's wake-up is not a request) and the main thread not.
    let bound = 2 * (WINDOW.as_millis() / 500) as u64 + 2;
    assert!(spell.woke("notifier") <= bound, "{spell}");
    assert!(spell.woke("worker") <= 2 * bound, "{spell}");
    assert!(spell.woke("lru-crawler") <= 1, "{spell}");
}

/// With no clock thread, the time a request reads is brought up to date by the worker that
/// serves it: after an idle spell, uptime, time and expiry are current at the first request.
#[test]
fn after_an_idle_spell_the_first_request_reads_the_current_time() {
    let server = Server::start(ServerKind::MemcachedRs, &[]);
    let mut c = server.client();
    assert_eq!(c.request("set short 0 2 1\r\nx\r\n"), "STORED\r\n");
    drop(c);
    std::thread::sleep(Duration::from_millis(3300));
    let mut c = server.client();
    assert_eq!(c.request("get short\r\n"), "END\r\n", "expired while idle");
    let stats = c.request("stats\r\n");
    let stat = |name: &str| stat_number(&stats, name) as i64;
    assert!(stat("uptime") >= 3, "{stats}");
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    assert!(
        (stat("time") - wall).abs() <= 2,
        "time {} vs {wall}",
        stat("time")
    );
}
