//! A store never fails while the cache holds something it may evict, whatever sizes came
//! before it (memcached's "slab calcification": once one size has taken every page, memcached
//! answers other sizes with `SERVER_ERROR out of memory` unless its first-page headroom past
//! `-m` or its once-a-second page mover saves it). Each scenario also runs against memcached
//! and prints both servers' figures; only memcached-rs's are asserted.

mod common;

use common::{Client, Server, ServerKind};
use memcached_rs::protocol::binary;

/// Deterministic sizes (a linear congruential generator), so both servers get the same stream.
fn sizes(count: usize, low: usize, high: usize) -> Vec<usize> {
    let mut state: u64 = 0x5eed;
    (0..count)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            low + (state >> 33) as usize % (high - low + 1)
        })
        .collect()
}

/// Stores `count` values of `size` bytes under `prefix<i>`, pipelined 100 at a time; returns
/// how many stores were not answered `STORED`.
fn store_phase(client: &mut Client, prefix: &str, count: usize, size: usize) -> usize {
    let value = vec![b'v'; size];
    let mut failed = 0;
    let mut sent = 0;
    while sent < count {
        let batch = (count - sent).min(100);
        let mut bytes = Vec::with_capacity(batch * (size + 40));
        for i in sent..sent + batch {
            bytes.extend_from_slice(format!("set {prefix}{i} 0 0 {size}\r\n").as_bytes());
            bytes.extend_from_slice(&value);
            bytes.extend_from_slice(b"\r\n");
        }
        client.send(&bytes);
        for _ in 0..batch {
            if client.read_line() != "STORED" {
                failed += 1;
            }
        }
        sent += batch;
    }
    failed
}

/// How many of `prefix0..prefix<count>` the server still has (100-key gets).
fn hits(client: &mut Client, prefix: &str, count: usize) -> usize {
    let mut found = 0;
    for start in (0..count).step_by(100) {
        let keys: Vec<String> = (start..(start + 100).min(count))
            .map(|i| format!("{prefix}{i}"))
            .collect();
        let reply = client.request(&format!("get {}", keys.join(" ")));
        found += reply.lines().filter(|l| l.starts_with("VALUE ")).count();
    }
    found
}

/// Fills a server with values of 600–900 KB (they take every page), then stores small ones.
fn text_calcification(kind: ServerKind, flags: &[&str]) -> Vec<String> {
    let server = Server::start(kind, flags);
    let mut c = server.client();
    for (i, size) in sizes(100, 600_000, 900_000).into_iter().enumerate() {
        let value = vec![b'x'; size];
        let mut bytes = format!("set big{i} 0 0 {size}\r\n").into_bytes();
        bytes.extend_from_slice(&value);
        bytes.extend_from_slice(b"\r\n");
        c.send(&bytes);
        let reply = c.read_line();
        assert_eq!(reply, "STORED", "{} big{i} ({size} B)", kind.name());
    }
    let mut replies = vec![c
        .request("set k 0 0 10\r\nseedstring")
        .trim_end()
        .to_string()];
    for size in [1, 100, 3000, 50_000] {
        let value = "s".repeat(size);
        replies.push(
            c.request(&format!("set small{size} 0 0 {size}\r\n{value}"))
                .trim_end()
                .to_string(),
        );
    }
    replies.push(c.request("get k").replace("\r\n", "|"));
    replies
}

#[test]
fn small_stores_succeed_after_large_values_took_every_page() {
    for flags in [&["-m", "48", "-o", "slab_chunk_max=16"][..], &["-m", "64"]] {
        let theirs = text_calcification(ServerKind::Memcached, flags);
        let ours = text_calcification(ServerKind::MemcachedRs, flags);
        println!("{flags:?}\n  memcached:    {theirs:?}\n  memcached-rs: {ours:?}");
        let mut expected = vec!["STORED".to_string(); 5];
        expected.push("VALUE k 0 10|seedstring|END|".to_string());
        assert_eq!(ours, expected, "memcached-rs with {flags:?}");
    }
}

/// Reads one binary response: (opcode, status).
fn binary_response(c: &mut Client) -> (u8, u16) {
    let header = c.read_exact(24);
    let body = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
    c.read_exact(body as usize);
    (header[1], u16::from_be_bytes([header[6], header[7]]))
}

fn binary_set(opcode: u8, key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    binary::write_request(&mut frame, opcode, key, &[0; 8], value, 0, 0).expect("frame fits");
    frame
}

/// The same over the binary protocol: quiet sets of large values, then small sets.
fn binary_calcification(kind: ServerKind) -> (usize, Vec<u16>) {
    let server = Server::start(kind, &["-m", "48", "-o", "slab_chunk_max=16"]);
    let mut c = server.client();
    for (i, size) in sizes(100, 600_000, 900_000).into_iter().enumerate() {
        c.send(&binary_set(
            binary::opcode::SETQ,
            format!("big{i}").as_bytes(),
            &vec![b'x'; size],
        ));
    }
    // Quiet sets answer only failures; the no-op's answer ends them.
    let mut noop = Vec::new();
    binary::write_request(&mut noop, binary::opcode::NOOP, b"", &[], &[], 0, 0).expect("frame");
    c.send(&noop);
    let mut big_failures = 0;
    while binary_response(&mut c).0 != binary::opcode::NOOP {
        big_failures += 1;
    }
    let mut statuses = Vec::new();
    for size in [10, 100, 3000, 50_000] {
        c.send(&binary_set(
            binary::opcode::SET,
            format!("small{size}").as_bytes(),
            &vec![b's'; size],
        ));
        statuses.push(binary_response(&mut c).1);
    }
    (big_failures, statuses)
}

#[test]
fn small_binary_stores_succeed_after_large_values_took_every_page() {
    let theirs = binary_calcification(ServerKind::Memcached);
    let ours = binary_calcification(ServerKind::MemcachedRs);
    println!("binary (failed large sets, small set statuses)\n  memcached:    {theirs:?}\n  memcached-rs: {ours:?}");
    assert_eq!(ours, (0, vec![0; 4]));
}

/// Value sizes that shift in phases, each writing three times the memory: (items of the phase
/// still held after it, stores that failed) per phase.
fn shifting_sizes(kind: ServerKind, megabytes: usize, phases: &[usize]) -> Vec<(usize, usize)> {
    let server = Server::start(kind, &["-m", &megabytes.to_string()]);
    let mut c = server.client();
    phases
        .iter()
        .map(|&size| {
            let count = 3 * megabytes * 1024 * 1024 / size;
            let prefix = format!("p{size}_");
            let failed = store_phase(&mut c, &prefix, count, size);
            (hits(&mut c, &prefix, count), failed)
        })
        .collect()
}

#[test]
fn memory_follows_the_value_size_when_it_shifts() {
    const MB: usize = 16;
    let phases = [500_000, 100, 5_000];
    let ours = shifting_sizes(ServerKind::MemcachedRs, MB, &phases);
    let theirs = shifting_sizes(ServerKind::Memcached, MB, &phases);
    for (i, &size) in phases.iter().enumerate() {
        // What a freshly started cache holds of this size alone.
        let fresh = shifting_sizes(ServerKind::MemcachedRs, MB, &[size])[0].0;
        let fresh_mc = shifting_sizes(ServerKind::Memcached, MB, &[size])[0].0;
        println!(
            "phase {i} ({size} B): memcached-rs holds {} (fresh {fresh}), {} stores failed; \
             memcached holds {} (fresh {fresh_mc}), {} stores failed",
            ours[i].0, ours[i].1, theirs[i].0, theirs[i].1
        );
        assert_eq!(ours[i].1, 0, "phase {i} ({size} B): failed stores");
        assert!(
            ours[i].0 * 10 >= fresh * 9,
            "phase {i} ({size} B): {} items held, a fresh cache holds {fresh}",
            ours[i].0
        );
    }
}
