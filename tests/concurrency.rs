//! Many clients hammering overlapping keys at once: no update may be lost.
//!
//! Each thread has its own connection; the server runs several workers, so requests for the
//! same key really race inside the cache.

mod common;

use common::{Server, ServerKind};
use std::thread;

const THREADS: usize = 8;
const ROUNDS: usize = 500;

#[test]
fn increments_from_many_clients_all_count() {
    let server = Server::start(ServerKind::MemcachedRs, &["-t", "4"]);
    let mut c = server.client();
    assert_eq!(c.request("set counter 0 0 1\r\n0"), "STORED\r\n");
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let addr = server.addr();
            thread::spawn(move || {
                let mut c = common::Client::connect(addr);
                for _ in 0..ROUNDS {
                    let reply = c.request("incr counter 1");
                    assert!(
                        reply.trim_end().parse::<u64>().is_ok(),
                        "incr replied {reply:?}"
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("client thread panicked");
    }
    let want = THREADS * ROUNDS;
    assert_eq!(
        c.request("get counter"),
        format!(
            "VALUE counter 0 {}\r\n{want}\r\nEND\r\n",
            want.to_string().len()
        )
    );
}

/// Optimistic updates with gets/cas: every successful cas must be reflected, none twice.
#[test]
fn cas_loops_never_lose_an_update() {
    let server = Server::start(ServerKind::MemcachedRs, &["-t", "4"]);
    let mut c = server.client();
    assert_eq!(c.request("set n 0 0 1\r\n0"), "STORED\r\n");
    let per_thread = 100;
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let addr = server.addr();
            thread::spawn(move || {
                let mut c = common::Client::connect(addr);
                let mut done = 0;
                while done < per_thread {
                    let reply = c.request("gets n");
                    let mut lines = reply.lines();
                    let header: Vec<&str> = lines.next().expect("VALUE line").split(' ').collect();
                    let value: u64 = lines.next().expect("data").parse().expect("number");
                    let cas = header[4];
                    let next = (value + 1).to_string();
                    let reply = c.request(&format!("cas n 0 0 {} {cas}\r\n{next}", next.len()));
                    match reply.as_str() {
                        "STORED\r\n" => done += 1,
                        "EXISTS\r\n" => {}
                        other => panic!("cas replied {other:?}"),
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("client thread panicked");
    }
    let want = (THREADS * per_thread).to_string();
    assert_eq!(
        c.request("get n"),
        format!("VALUE n 0 {}\r\n{want}\r\nEND\r\n", want.len())
    );
}

/// Appends from many clients: the final value holds every appended piece exactly once.
#[test]
fn appends_from_many_clients_all_land() {
    let server = Server::start(ServerKind::MemcachedRs, &["-t", "4"]);
    let mut c = server.client();
    assert_eq!(c.request("set log 0 0 0\r\n\r\n"), "STORED\r\n");
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let addr = server.addr();
            thread::spawn(move || {
                let mut c = common::Client::connect(addr);
                for i in 0..200 {
                    let piece = format!("<{t}:{i}>");
                    let reply = c.request(&format!("append log 0 0 {}\r\n{piece}", piece.len()));
                    assert_eq!(reply, "STORED\r\n");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("client thread panicked");
    }
    let reply = c.request("get log");
    for t in 0..THREADS {
        for i in 0..200 {
            let piece = format!("<{t}:{i}>");
            assert_eq!(
                reply.matches(&piece).count(),
                1,
                "{piece} missing or doubled"
            );
        }
    }
    let stats = c.request("stats");
    assert!(stats.contains(&format!("STAT cmd_set {}\r\n", THREADS * 200 + 1)));
}
