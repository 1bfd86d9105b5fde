//! The segmented LRU as a client sees it through `stats items` and `stats cachedump`: where new
//! items go, how they drift to cold, what a second read does, the temporary LRU and the flat
//! mode. Every test runs against memcached-rs and against memcached, with the same assertions.
//! The maintainers of both servers work in the background, so the tests wait for a state
//! (with a generous deadline) rather than for a time.

mod common;

use common::{Client, Server, ServerKind};
use std::time::{Duration, Instant};

const KINDS: [ServerKind; 2] = [ServerKind::MemcachedRs, ServerKind::Memcached];

/// A class-1 counter from `stats items` (0 when the line is absent).
fn item_stat(c: &mut Client, name: &str) -> u64 {
    let stats = c.request("stats items");
    stats
        .lines()
        .find_map(|l| l.strip_prefix(&format!("STAT items:1:{name} ")))
        .map_or(0, |v| v.parse().expect("number"))
}

fn has_item_stat(c: &mut Client, name: &str) -> bool {
    c.request("stats items")
        .contains(&format!("STAT items:1:{name} "))
}

/// Waits until `check` holds, panicking with `what` after a deadline no healthy server needs.
fn wait_for(kind: ServerKind, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{}: never saw {what}",
            kind.name()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn new_items_enter_hot_and_idle_ones_drift_to_cold() {
    for kind in KINDS {
        let server = Server::start(kind, &[]);
        let mut c = server.client();
        for k in ["a", "b", "c"] {
            assert_eq!(c.request(&format!("set {k} 0 0 1\r\nx")), "STORED\r\n");
        }
        assert_eq!(item_stat(&mut c, "number"), 3, "{}", kind.name());
        wait_for(kind, "three cold items", || {
            item_stat(&mut c, "number_cold") == 3
        });
        assert_eq!(item_stat(&mut c, "number_hot"), 0, "{}", kind.name());
        assert!(item_stat(&mut c, "moves_to_cold") >= 3, "{}", kind.name());
        // cachedump lists the cold LRU.
        let dump = c.request("stats cachedump 1 0");
        let mut keys: Vec<&str> = dump
            .lines()
            .filter_map(|l| l.strip_prefix("ITEM "))
            .map(|l| &l[..1])
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, ["a", "b", "c"], "{}: {dump}", kind.name());
    }
}

#[test]
fn a_cold_item_read_twice_moves_to_warm() {
    for kind in KINDS {
        let server = Server::start(kind, &[]);
        let mut c = server.client();
        assert_eq!(c.request("set k 0 0 1\r\nx"), "STORED\r\n");
        wait_for(kind, "the item in cold", || {
            item_stat(&mut c, "number_cold") == 1
        });
        // The first read only marks the item fetched.
        assert_eq!(c.request("get k"), "VALUE k 0 1\r\nx\r\nEND\r\n");
        assert_eq!(item_stat(&mut c, "hits_to_cold"), 1, "{}", kind.name());
        assert_eq!(item_stat(&mut c, "moves_to_warm"), 0, "{}", kind.name());
        assert_eq!(item_stat(&mut c, "number_cold"), 1, "{}", kind.name());
        // The second makes it active, and an active cold item moves to warm. (Its access
        // time stays, so in a cache this empty the maintainer soon drops it back to cold.)
        assert_eq!(c.request("get k"), "VALUE k 0 1\r\nx\r\nEND\r\n");
        wait_for(kind, "a move to warm", || {
            item_stat(&mut c, "moves_to_warm") == 1
        });
        assert_eq!(item_stat(&mut c, "hits_to_cold"), 2, "{}", kind.name());
    }
}

#[test]
fn short_ttls_go_to_the_temporary_lru() {
    for kind in KINDS {
        let server = Server::start(kind, &["-o", "temporary_ttl=60"]);
        let mut c = server.client();
        assert_eq!(c.request("set t 0 30 1\r\nx"), "STORED\r\n");
        assert_eq!(c.request("set p 0 0 1\r\ny"), "STORED\r\n");
        assert_eq!(c.request("set l 0 600 1\r\nz"), "STORED\r\n");
        assert_eq!(item_stat(&mut c, "number_temp"), 1, "{}", kind.name());
        assert_eq!(c.request("get t"), "VALUE t 0 1\r\nx\r\nEND\r\n");
        assert_eq!(c.request("get t"), "VALUE t 0 1\r\nx\r\nEND\r\n");
        assert_eq!(item_stat(&mut c, "hits_to_temp"), 2, "{}", kind.name());
        // Temporary items never move: the others drift to cold, t stays.
        wait_for(kind, "the long-lived items in cold", || {
            item_stat(&mut c, "number_cold") == 2
        });
        assert_eq!(item_stat(&mut c, "number_temp"), 1, "{}", kind.name());
        // Turned off at run time: new items go to hot again, and the line disappears.
        assert_eq!(c.request("lru temp_ttl -1"), "OK\r\n");
        assert_eq!(c.request("set u 0 30 1\r\nx"), "STORED\r\n");
        assert!(!has_item_stat(&mut c, "number_temp"), "{}", kind.name());
    }
}

#[test]
fn flat_mode_puts_new_items_in_cold() {
    for kind in KINDS {
        let server = Server::start(kind, &[]);
        let mut c = server.client();
        assert_eq!(c.request("lru mode flat"), "OK\r\n");
        assert_eq!(c.request("set k 0 0 1\r\nx"), "STORED\r\n");
        assert_eq!(item_stat(&mut c, "number_cold"), 1, "{}", kind.name());
        assert_eq!(item_stat(&mut c, "number_hot"), 0, "{}", kind.name());
        assert_eq!(
            c.request("stats cachedump 1 0"),
            "ITEM k [1 b; 0 s]\r\nEND\r\n",
            "{}",
            kind.name()
        );
    }
}

#[test]
fn without_the_maintainer_there_are_no_segments() {
    for kind in KINDS {
        let server = Server::start(kind, &["-o", "no_lru_maintainer"]);
        let mut c = server.client();
        assert_eq!(c.request("set k 0 0 1\r\nx"), "STORED\r\n");
        assert!(!has_item_stat(&mut c, "number_hot"), "{}", kind.name());
        assert_eq!(item_stat(&mut c, "number"), 1, "{}", kind.name());
        assert_eq!(c.request("lru mode segmented"), "ERROR\r\n");
    }
}
