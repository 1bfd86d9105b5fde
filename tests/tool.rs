//! `memcached-rs-tool`: its reports say what memcached-tool (Debian 13's, run by perl from the
//! reference root) says, against memcached-rs and against memcached 1.6.38; `hotkeys`, several
//! servers at once, and `top` in a real terminal (tmux).

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{Server, ServerKind};

const BOTH: [ServerKind; 2] = [ServerKind::MemcachedRs, ServerKind::Memcached];

fn tool() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_memcached-rs-tool"))
}

fn memcached_tool() -> PathBuf {
    common::trixie_root().join("usr/share/memcached/scripts/memcached-tool")
}

fn run(command: &mut Command) -> Output {
    command.output().expect("run the tool")
}

fn ours(addr: &str, mode: &[&str]) -> Output {
    run(Command::new(tool()).arg(addr).args(mode))
}

fn theirs(addr: &str, mode: &[&str]) -> Output {
    run(Command::new("perl")
        .arg(memcached_tool())
        .arg(addr)
        .args(mode))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Items of several classes, flags, a TTL and a key with an escaped character, then reads.
fn populate(server: &Server) {
    let mut c = server.client();
    let big = "b".repeat(3000);
    for (key, flags, ttl, value) in [
        ("foo", 1, 0, "bar"),
        ("ttl", 0, 1000, "soon"),
        ("percent%20key", 7, 0, "x"),
        ("big", 5, 0, big.as_str()),
    ] {
        let reply = c.request(&format!(
            "set {key} {flags} {ttl} {}\r\n{value}",
            value.len()
        ));
        assert_eq!(reply, "STORED\r\n", "{key}");
    }
    for _ in 0..3 {
        assert!(c.request("get foo").starts_with("VALUE foo 1 3"));
    }
}

/// `stats` values that change between two looks (the tools' own connections, time, and the
/// background LRU maintainer and crawler).
const VOLATILE: &[&str] = &[
    "lru_maintainer_juggles",
    "lru_crawler_starts",
    "crawler_items_checked",
    "lrutail_reflocked",
    "moves_to_cold",
    "moves_to_warm",
    "moves_within_lru",
    "uptime",
    "time",
    "rusage_user",
    "rusage_system",
    "bytes_read",
    "bytes_written",
    "total_connections",
    "read_buf_bytes",
    "read_buf_bytes_free",
    "read_buf_count",
    "response_obj_bytes",
    "response_obj_count",
    "conn_yields",
];

/// `stats` rows with the volatile values blanked (the width of the value kept).
fn masked_stats(output: &str) -> String {
    output
        .lines()
        .map(|line| {
            let name = line.split_whitespace().next().unwrap_or("");
            if VOLATILE.contains(&name) {
                let end = line.len() - line.trim_start().len() + name.len();
                format!("{} *", &line[..end])
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A report's lines, in order but for metadump lines (sorted: the crawler's order follows
/// the items' moves between LRU segments), with the display's `Max_age` column blanked (a
/// second may pass between two looks).
fn steady(output: &[u8]) -> Vec<String> {
    let mut lines: Vec<String> = text(output)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() == 9 && f[2].ends_with('s') && f[0].parse::<u32>().is_ok() {
                l.replacen(&format!(" {} ", f[2]), " * ", 1)
            } else {
                l.to_string()
            }
        })
        .collect();
    if lines.iter().all(|l| l.starts_with("key=")) {
        lines.sort();
    }
    lines
}

/// A dump's `add` records, in order of key (memcached-tool prints them in perl's hash order).
fn records(dump: &[u8]) -> Vec<String> {
    let text = text(dump);
    let mut records: Vec<String> = text
        .split("add ")
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect();
    records.sort();
    records
}

#[test]
fn reports_say_what_memcached_tool_says_against_both_servers() {
    assert!(
        memcached_tool().is_file(),
        "{} (make test-deps)",
        memcached_tool().display()
    );
    for kind in BOTH {
        let server = Server::start(kind, &[]);
        populate(&server);
        let addr = format!("127.0.0.1:{}", server.port());
        let name = kind.name();
        for mode in [
            &["display"][..],
            &[],
            &["settings"],
            &["sizes"],
            &["keys"],
            &["keys", "-u"],
        ] {
            let (a, b) = (ours(&addr, mode), theirs(&addr, mode));
            assert!(a.status.success(), "{name} {mode:?}: {}", text(&a.stderr));
            assert_eq!(steady(&a.stdout), steady(&b.stdout), "{name} {mode:?}");
            assert_eq!(text(&a.stderr), text(&b.stderr), "{name} {mode:?} stderr");
        }
        let all = steady(&ours(&addr, &["keys", "-u"]).stdout);
        let (a, b) = (ours(&addr, &["keys", "2"]), theirs(&addr, &["keys", "2"]));
        for out in [&a, &b] {
            let some = steady(&out.stdout);
            assert!(some.len() <= 2, "{name} keys 2: {some:?}");
        }
        assert_eq!(text(&a.stderr), text(&b.stderr), "{name} keys 2 stderr");
        assert!(
            // The key holds a literal %20: the metadump escapes its %, and -u decodes that.
            all.iter().any(|l| l.starts_with("key=percent%20key ")),
            "{all:?}"
        );
        let (a, b) = (ours(&addr, &["stats"]), theirs(&addr, &["stats"]));
        assert!(
            text(&a.stdout).contains("curr_items"),
            "{}",
            text(&a.stdout)
        );
        assert_eq!(
            masked_stats(&text(&a.stdout)),
            masked_stats(&text(&b.stdout)),
            "{name}"
        );
        let (a, b) = (ours(&addr, &["dump"]), theirs(&addr, &["dump"]));
        assert_eq!(records(&a.stdout), records(&b.stdout), "{name} dump");
        assert_eq!(records(&a.stdout).len(), 4, "{name}: {}", text(&a.stdout));
        assert_eq!(text(&a.stderr), text(&b.stderr), "{name} dump stderr");
        let all = records(&a.stdout);
        let (a, b) = (ours(&addr, &["dump", "2"]), theirs(&addr, &["dump", "2"]));
        // The first two lines of the metadump: which keys they are depends on where the LRU
        // maintainer has moved the items by then.
        for out in [&a, &b] {
            let some = records(&out.stdout);
            assert!(some.len() <= 2, "{name} dump 2: {some:?}");
            assert!(
                some.iter().all(|r| all.contains(r)),
                "{name} dump 2: {some:?}"
            );
        }
        assert_eq!(text(&a.stderr), text(&b.stderr), "{name} dump 2 stderr");
    }
}

#[test]
fn bad_arguments_show_the_usage_and_fail() {
    for args in [
        &[][..],
        &["127.0.0.1:1", "dump", "0"],
        &["127.0.0.1:1", "keys", "x"],
        &["127.0.0.1:1", "nonsense"],
        &["127.0.0.1:1", "stats", "extra"],
    ] {
        let out = run(Command::new(tool()).args(args));
        assert!(!out.status.success(), "{args:?}");
        assert!(
            text(&out.stderr).starts_with("Usage: memcached-rs-tool"),
            "{args:?}"
        );
    }
    let port = common::free_port();
    let out = ours(&format!("127.0.0.1:{port}"), &["stats"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains(&format!("Couldn't connect to 127.0.0.1:{port}")));
}

#[test]
fn hot_keys_and_several_servers_at_once() {
    let rs = Server::start(ServerKind::MemcachedRs, &["-o", "hotkeys=1"]);
    let mc = Server::start(ServerKind::Memcached, &[]);
    populate(&rs);
    populate(&mc);
    let (a, b) = (
        format!("127.0.0.1:{}", rs.port()),
        format!("127.0.0.1:{}", mc.port()),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let hot = loop {
        let out = text(&ours(&a, &["hotkeys", "reads", "10s"]).stdout);
        if out.contains("foo") {
            break out;
        }
        assert!(Instant::now() < deadline, "{out}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let lines: Vec<&str> = hot.lines().collect();
    assert_eq!(lines[0], format!("#{a} reads 10s"));
    assert!(
        lines[1].contains("rank") && lines[1].contains("per second"),
        "{hot}"
    );
    assert!(
        lines[2].trim_start().starts_with("1  foo ") && lines[2].ends_with(" 0.0"),
        "foo is read most: {hot}"
    );
    let out = text(&ours(&b, &["hotkeys"]).stdout);
    assert_eq!(
        out,
        format!("#{b} reports no hot keys (not a memcached-rs, or -X)\n")
    );

    // Two servers: each report under its address.
    let both = format!("{a},{b}");
    let out = ours(&both, &["display"]);
    assert!(out.status.success());
    let shown = text(&out.stdout);
    let one = |addr: &str| text(&ours(addr, &["display"]).stdout);
    assert_eq!(
        shown,
        format!("== {a} ==\n{}== {b} ==\n{}", one(&a), one(&b))
    );
    let dump = ours(&both, &["dump"]);
    assert_eq!(records(&dump.stdout).len(), 8, "{}", text(&dump.stdout));
}

/// A tmux server of its own, killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new(name: &str) -> Tmux {
        let socket = format!("memcached-rs-test-{name}-{}", std::process::id());
        Tmux { socket }
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux (make test-deps installs it)");
        assert!(out.status.success(), "tmux {args:?}: {}", text(&out.stderr));
        out
    }

    fn screen(&self) -> String {
        text(&self.run(&["capture-pane", "-p", "-t", "top"]).stdout)
    }

    /// Whether the session's command still runs.
    fn alive(&self) -> bool {
        let out = Command::new("tmux")
            .args([
                "-L",
                &self.socket,
                "list-panes",
                "-t",
                "top",
                "-F",
                "#{pane_dead}",
            ])
            .output()
            .expect("tmux");
        out.status.success() && text(&out.stdout).trim() == "0"
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

#[test]
fn top_draws_a_live_view_in_a_terminal_and_quits_on_q() {
    let rs = Server::start(ServerKind::MemcachedRs, &[]);
    let mc = Server::start(ServerKind::Memcached, &[]);
    populate(&rs);
    let addrs = format!("127.0.0.1:{},127.0.0.1:{}", rs.port(), mc.port());
    let tmux = Tmux::new("top");
    let command = format!("{} {addrs} top", tool().display());
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "top",
        "-x",
        "140",
        "-y",
        "40",
        &command,
    ]);
    tmux.run(&["set-option", "-t", "top", "remain-on-exit", "on"]);
    // Reads on the first server all the while, so rates and hot keys show.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let mut c = rs.client();
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(60);
            while Instant::now() < until && !stop.load(std::sync::atomic::Ordering::Relaxed) {
                c.send(b"get foo\r\nget foo\r\nget nothing\r\n");
                c.read_until_contains(b"END\r\nVALUE foo 1 3\r\nbar\r\nEND\r\nEND\r\n");
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let screen = loop {
        let screen = tmux.screen();
        let rows: Vec<&str> = screen.lines().collect();
        let get_rate = rows
            .iter()
            .find(|l| l.starts_with(&format!("127.0.0.1:{}", rs.port())))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok());
        if get_rate.is_some_and(|r| r > 0.0) && screen.contains("  foo ") {
            break screen;
        }
        assert!(
            Instant::now() < deadline,
            "the view never showed the load:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    println!("{screen}");
    assert!(
        screen.starts_with("memcached-rs-tool top: 2 servers"),
        "{screen}"
    );
    for needle in [
        "get/s",
        "hit%",
        "evict/s",
        "conns",
        "memory by slab class",
        "#",
        "hottest keys",
    ] {
        assert!(screen.contains(needle), "{needle} missing:\n{screen}");
    }
    let mc_row = screen
        .lines()
        .find(|l| l.starts_with(&format!("127.0.0.1:{}", mc.port())))
        .unwrap_or_else(|| panic!("no row for memcached:\n{screen}"));
    assert!(!mc_row.contains("unreachable"), "{mc_row}");
    // The hit ratio of foo, foo, nothing: two in three.
    assert!(screen.contains(" 66.7 "), "hit ratio:\n{screen}");
    tmux.run(&["send-keys", "-t", "top", "q"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while tmux.alive() {
        assert!(
            Instant::now() < deadline,
            "q did not quit:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = load.join();
}
