//! `-m` of any size the address space allows, as memcached: the arena reserves address space
//! up front and only memory written becomes resident, so a 1 TB cache starts and serves on a
//! small machine, and `cache_memlimit` grows a small one past 32 GB.

mod common;

use common::{Server, ServerKind};

fn stat(reply: &str, name: &str) -> Option<String> {
    reply.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        (w.next() == Some("STAT") && w.next() == Some(name))
            .then(|| w.next().unwrap_or("").to_string())
    })
}

/// What a client sees of a server started with `-m 1048576` (1 TB).
fn terabyte(kind: ServerKind) -> (Vec<String>, u32, Server) {
    let server = Server::start(kind, &["-m", "1048576"]);
    let mut c = server.client();
    let mut seen = vec![
        stat(&c.request("stats"), "limit_maxbytes").unwrap_or_default(),
        c.request("set k 0 0 5\r\nhello").trim_end().to_string(),
    ];
    for i in 0..2000 {
        let value = "v".repeat(1000);
        assert_eq!(
            c.request(&format!("set big{i} 0 0 1000\r\n{value}")),
            "STORED\r\n"
        );
    }
    seen.push(c.request("get k").replace("\r\n", "|"));
    seen.push(stat(&c.request("stats settings"), "maxbytes").unwrap_or_default());
    let pid = server.pid();
    (seen, pid, server)
}

#[test]
fn a_terabyte_cache_starts_serves_and_stays_small() {
    let (theirs, _, _mc) = terabyte(ServerKind::Memcached);
    let (ours, pid, _rs) = terabyte(ServerKind::MemcachedRs);
    println!("memcached:    {theirs:?}\nmemcached-rs: {ours:?}");
    assert_eq!(ours, theirs);
    assert_eq!(ours[0], (1u64 << 40).to_string());
    let rss = common::proc_status_kb(pid, "VmRSS");
    println!("memcached-rs RSS with -m 1048576 after 2 MB stored: {rss} kB");
    assert!(
        rss < 64 * 1024,
        "RSS {rss} kB: memory must be touched only as used"
    );
}

/// `cache_memlimit` raises a 64 MB cache to 64 GB, then back (memcached answers the same).
fn grow(kind: ServerKind) -> Vec<String> {
    let server = Server::start(kind, &["-m", "64"]);
    let mut c = server.client();
    let mut seen = Vec::new();
    for mb in ["65536", "1048576", "64"] {
        seen.push(
            c.request(&format!("cache_memlimit {mb}"))
                .trim_end()
                .to_string(),
        );
        seen.push(stat(&c.request("stats"), "limit_maxbytes").unwrap_or_default());
    }
    seen.push(c.request("set k 0 0 1\r\nx").trim_end().to_string());
    seen
}

#[test]
fn cache_memlimit_grows_past_32_gb() {
    let theirs = grow(ServerKind::Memcached);
    let ours = grow(ServerKind::MemcachedRs);
    println!("memcached:    {theirs:?}\nmemcached-rs: {ours:?}");
    assert_eq!(ours, theirs);
    assert_eq!(ours[1], (64u64 << 30).to_string());
}
