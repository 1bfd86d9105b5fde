//! The LRU crawler reclaims expired items nobody asks for, and the dumps list every item.

mod common;

use common::{stat_number as stat, Server, ServerKind};
use std::time::Duration;

#[test]
fn crawl_reclaims_expired_items_without_a_get() {
    let server = Server::start(ServerKind::MemcachedRs, &[]);
    let mut c = server.client();
    let mut script = String::new();
    for i in 0..100 {
        script.push_str(&format!("set short{i} 0 1 3 noreply\r\nabc\r\n"));
    }
    for i in 0..10 {
        script.push_str(&format!("set long{i} 0 0 3 noreply\r\nabc\r\n"));
    }
    c.send(script.as_bytes());
    assert_eq!(c.request("version"), "VERSION 1.6.38\r\n");
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(c.request("lru_crawler crawl all"), "OK\r\n");
    let stats = c.request("stats");
    assert_eq!(stat(&stats, "curr_items"), 10);
    assert_eq!(stat(&stats, "crawler_reclaimed"), 100);
    assert!(stat(&stats, "crawler_items_checked") >= 110);
    assert!(stat(&stats, "lru_crawler_starts") >= 1);
    assert_eq!(stat(&stats, "get_expired"), 0, "nobody asked for them");
}

#[test]
fn metadump_streams_every_item() {
    let server = Server::start(ServerKind::MemcachedRs, &[]);
    let mut c = server.client();
    let n = 30_000;
    let mut script = String::new();
    for i in 0..n {
        script.push_str(&format!("set some/key:{i:06} 0 0 1 noreply\r\nx\r\n"));
    }
    c.send(script.as_bytes());
    assert_eq!(c.request("version"), "VERSION 1.6.38\r\n");
    c.send(b"lru_crawler metadump all\r\n");
    let dump = c.read_until_contains(b"END\r\n");
    let lines: Vec<&[u8]> = dump
        .split(|&b| b == b'\n')
        .filter(|l| l.starts_with(b"key="))
        .collect();
    assert_eq!(lines.len(), n, "one line per item");
    assert!(
        dump.len() > 1024 * 1024,
        "long enough to have paused and resumed"
    );
    assert!(lines.iter().all(|l| l.starts_with(b"key=some%2Fkey%3A")));
}

/// Without the LRU maintainer the LRU is flat and items are cold at once; with it, see
/// `tests/lru.rs`.
#[test]
fn cachedump_lists_a_class() {
    let server = Server::start(ServerKind::MemcachedRs, &["-o", "no_lru_maintainer"]);
    let mut c = server.client();
    assert_eq!(c.request("set k 0 0 3\r\nabc"), "STORED\r\n");
    assert_eq!(
        c.request("stats cachedump 1 0"),
        "ITEM k [3 b; 0 s]\r\nEND\r\n"
    );
    assert_eq!(c.request("stats cachedump 2 0"), "END\r\n");
}
