//! `-vv` and `-vvv`: the per-command log on stderr, compared with memcached 1.6.38's.
//!
//! Only the lines both servers mean to print are compared: commands (`<fd …`), replies
//! (`>fd …`), protocol negotiation, item lookups (`-vvv`) and the exit line. memcached's
//! libevent state transitions (`going from conn_… to conn_…`) and start-up lines describe its
//! own machinery and are left out, as are ours.

mod common;

use std::time::{Duration, Instant};

use common::{Server, ServerKind};

/// The comparable lines of a server's stderr about the client on descriptor `fd` (the one that
/// negotiated the ascii protocol), with the descriptor replaced by `N`. The readiness probe of
/// [`Server::start`] is another descriptor, and may be logged in between.
fn comparable(stderr: &str) -> Vec<String> {
    let lines: Vec<&str> = stderr
        .lines()
        .map(|l| l.strip_prefix("<7>").unwrap_or(l))
        .collect();
    let Some(fd) = lines
        .iter()
        .find_map(|l| l.strip_suffix(": Client using the ascii protocol"))
    else {
        return Vec::new();
    };
    let first = lines
        .iter()
        .position(|l| l.ends_with(": Client using the ascii protocol"))
        .unwrap_or(0);
    lines[first..]
        .iter()
        .filter_map(|l| {
            if let Some(rest) = l.strip_prefix(fd) {
                // Not memcached's `N: going from conn_… to conn_…` state transitions.
                return rest
                    .starts_with(": Client using")
                    .then(|| format!("N{rest}"));
            }
            for mark in ['<', '>'] {
                if let Some(rest) = l.strip_prefix(mark).and_then(|r| r.strip_prefix(fd)) {
                    return rest.starts_with(' ').then(|| format!("{mark}N{rest}"));
                }
            }
            // memcached 1.6.38 logs an item lookup's hit as the bare key (`k`, `k -nuked by
            // expire`): any other line not tied to a connection.
            let lookup = !l.is_empty()
                && !l.starts_with(['<', '>'])
                && !l.starts_with(|c: char| c.is_ascii_digit());
            (l.starts_with("> ") || lookup).then(|| l.to_string())
        })
        .collect()
}

fn run(kind: ServerKind, verbosity: &str, script: &[u8]) -> Vec<String> {
    // Without the background LRU threads: memcached's reclaim flushed and expired items when
    // they get the time, and a reclaimed item's lookup logs `NOT FOUND` instead of `-nuked by …`.
    let mut server = Server::start(kind, &[verbosity, "-o", "no_lru_maintainer,no_lru_crawler"]);
    // memcached writes a long log line in 8 KB pieces, so another thread's line can land inside
    // it: let the readiness probe's connection be closed (and logged) before the script runs.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !server.stderr_output().contains(" connection closed.") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut c = server.client();
    c.send(script);
    c.read_to_close(Duration::from_secs(5));
    server.signal("TERM");
    server.wait_for_exit(Duration::from_secs(5));
    comparable(&server.stderr_output())
}

/// Equal line lists, or a panic naming the first line that differs (cut short: some are 26 KB,
/// and a whole-list `assert_eq!` is too long for a CI log to show the difference).
fn assert_same_lines(ours: &[String], theirs: &[String]) {
    let short = |l: Option<&String>| match l {
        Some(l) if l.len() > 160 => {
            format!(
                "{}… ({} bytes)",
                l.chars().take(160).collect::<String>(),
                l.len()
            )
        }
        Some(l) => l.clone(),
        None => "<no line>".to_string(),
    };
    if let Some(i) = (0..ours.len().max(theirs.len())).find(|&i| ours.get(i) != theirs.get(i)) {
        panic!(
            "line {i} differs (memcached-rs has {} lines, memcached {}):\n  ours:   {}\n  theirs: {}",
            ours.len(),
            theirs.len(),
            short(ours.get(i)),
            short(theirs.get(i))
        );
    }
}

const SCRIPT: &[u8] = b"set a 0 0 1\r\nx\r\nget a\r\nget a b\r\ngets a\r\nbogus\r\n\
    incr a 1\r\ndelete a\r\nmg a v\r\nms m 1\r\nv\r\nincr n 1\r\nset e 0 -1 1\r\nx\r\n\
    get e\r\nflush_all\r\nget m\r\nversion\r\nstats slabs\r\nstats detail on\r\n\
    stats detail off\r\nverbosity 2\r\nquit\r\n";

#[test]
fn double_verbose_logs_commands_and_replies_as_memcached() {
    let ours = run(ServerKind::MemcachedRs, "-vv", SCRIPT);
    let theirs = run(ServerKind::Memcached, "-vv", SCRIPT);
    assert!(theirs.len() > 20, "{theirs:#?}");
    assert_same_lines(&ours, &theirs);
}

#[test]
fn double_verbose_logs_long_and_refused_gets() {
    let many: Vec<String> = (0..3000).map(|i| format!("miss{i}")).collect();
    let script = format!(
        "set hit 0 0 1\r\nx\r\nget {} hit\r\nget {}\r\nquit\r\n",
        many.join(" "),
        "k".repeat(251)
    );
    let ours = run(ServerKind::MemcachedRs, "-vv", script.as_bytes());
    let theirs = run(ServerKind::Memcached, "-vv", script.as_bytes());
    assert!(
        theirs.iter().any(|l| l == ">N sending key hit"),
        "{theirs:?}"
    );
    assert_same_lines(&ours, &theirs);
}

#[test]
fn triple_verbose_adds_item_lookups() {
    // One key per get: memcached logs `sending key` as each hit is found, between the lookups
    // of a multi-get; here the reply is logged after the whole command.
    let script = String::from_utf8_lossy(SCRIPT).replace("get a b\r\n", "get b\r\n");
    let ours = run(ServerKind::MemcachedRs, "-vvv", script.as_bytes());
    let theirs = run(ServerKind::Memcached, "-vvv", script.as_bytes());
    assert!(theirs.iter().any(|l| l == "e -nuked by expire"));
    assert_same_lines(&ours, &theirs);
}

#[test]
fn double_verbose_logs_large_values_as_memcached() {
    // Values of 16 KB and more are received into, and sent from, the cache's memory; the log
    // must not notice.
    let big = "v".repeat(100 * 1024);
    let script = format!(
        "set big 0 0 {n}\r\n{big}\r\nget big\r\nms m {n}\r\n{big}\r\nmg m v\r\n\
         gets big m\r\nset bad 0 0 {n}\r\n{big}XY\r\nget bad\r\nquit\r\n",
        n = big.len()
    );
    let ours = run(ServerKind::MemcachedRs, "-vv", script.as_bytes());
    let theirs = run(ServerKind::Memcached, "-vv", script.as_bytes());
    assert!(
        theirs.iter().any(|l| l == ">N sending key big"),
        "{theirs:?}"
    );
    assert_same_lines(&ours, &theirs);
}
