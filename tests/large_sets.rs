//! Large values are received straight into the memory that will hold them: a store of 16 KB or
//! more takes its item's chunks when its request line arrives, as memcached allocates its item
//! then, and the value goes from the socket into the item, not through the connection's read
//! buffer. Both servers must give the same replies however such a value arrives — whole, in
//! pieces, pipelined with the next request, malformed, refused — and an abandoned or refused
//! value must leave no memory behind.

mod common;

use std::time::Duration;

use common::{stat_number, wait_until, Client, Server, ServerKind};

const KB: usize = 1024;

/// A value that differs with its key and length, byte by byte.
fn value(key: &str, len: usize) -> Vec<u8> {
    let seed = key.bytes().fold(len as u8, |a, b| a.wrapping_mul(31) ^ b);
    (0..len)
        .map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed))
        .collect()
}

#[derive(Clone, Copy, Debug)]
enum Proto {
    Text,
    Meta,
    Binary,
}

/// The request that stores `data` under `key` with `command` (text: `set`, `add`, `replace`
/// or `cas <id>`), the data block ending in `trailer` (text and meta; binary has none).
fn store_request(proto: Proto, command: &str, key: &str, data: &[u8], trailer: &[u8]) -> Vec<u8> {
    let mut req = match proto {
        Proto::Text => match command.strip_prefix("cas ") {
            Some(id) => format!("cas {key} 0 0 {} {id}\r\n", data.len()).into_bytes(),
            None => format!("{command} {key} 0 0 {}\r\n", data.len()).into_bytes(),
        },
        Proto::Meta => {
            let mode = match command {
                "add" => " ME",
                "replace" => " MR",
                _ => "",
            };
            format!("ms {key} {}{mode}\r\n", data.len()).into_bytes()
        }
        Proto::Binary => {
            let opcode = match command {
                "add" => 0x02,
                "replace" => 0x03,
                _ => 0x01,
            };
            let mut req = vec![0x80, opcode];
            req.extend_from_slice(&(key.len() as u16).to_be_bytes());
            req.extend_from_slice(&[8, 0, 0, 0]);
            let body = 8 + key.len() + data.len();
            req.extend_from_slice(&(body as u32).to_be_bytes());
            req.extend_from_slice(&[0; 12]);
            req.extend_from_slice(&[0; 8]);
            req.extend_from_slice(key.as_bytes());
            req
        }
    };
    req.extend_from_slice(data);
    if !matches!(proto, Proto::Binary) {
        req.extend_from_slice(trailer);
    }
    req
}

/// A store's reply: its line, or a binary response's status.
fn store_reply(proto: Proto, c: &mut Client) -> String {
    match proto {
        Proto::Text | Proto::Meta => c.read_line(),
        Proto::Binary => {
            let header = c.read_exact(24);
            let body = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
            c.read_exact(body as usize);
            format!("status {}", u16::from_be_bytes([header[6], header[7]]))
        }
    }
}

/// The value a text `get` returns, `None` for a miss.
fn get(c: &mut Client, key: &str) -> Option<Vec<u8>> {
    c.send(format!("get {key}\r\n").as_bytes());
    read_get(c, key)
}

fn read_get(c: &mut Client, key: &str) -> Option<Vec<u8>> {
    let line = c.read_line();
    if line == "END" {
        return None;
    }
    let prefix = format!("VALUE {key} 0 ");
    let len: usize = line
        .strip_prefix(&prefix)
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("unexpected reply to get {key}: {line:?}"));
    let data = c.read_exact(len);
    assert_eq!(c.read_exact(2), b"\r\n");
    assert_eq!(c.read_line(), "END");
    Some(data)
}

/// Chunks in use over every slab class.
fn used_chunks(c: &mut Client) -> u64 {
    c.request("stats slabs")
        .lines()
        .filter_map(|line| {
            let (name, n) = line.strip_prefix("STAT ")?.split_once(' ')?;
            name.ends_with(":used_chunks")
                .then(|| n.trim().parse::<u64>().ok())?
        })
        .sum()
}

/// Sends `req` in `pieces` writes with pauses between them, so the server reads the value in
/// several turns.
fn send_in_pieces(c: &mut Client, req: &[u8], pieces: usize) {
    let size = req.len().div_ceil(pieces);
    for (i, piece) in req.chunks(size).enumerate() {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        c.send(piece);
    }
}

/// Stores values of several sizes over each protocol, arriving whole or in pieces, the last
/// piece carrying a `get` of the key; returns what each store answered.
fn stores_in_pieces(kind: ServerKind) -> Vec<String> {
    let server = Server::start(kind, &[]);
    let mut replies = Vec::new();
    for proto in [Proto::Text, Proto::Meta, Proto::Binary] {
        // A connection speaks the protocol of its first request.
        let mut c = server.client();
        let mut reader = server.client();
        for len in [16 * KB, 100 * KB, 600 * KB, 1000 * KB] {
            for pieces in [1, 7] {
                let key = format!("{proto:?}-{len}-{pieces}");
                let data = value(&key, len);
                let mut req = store_request(proto, "set", &key, &data, b"\r\n");
                // The next request comes with the value's end.
                let next = match proto {
                    Proto::Binary => vec![0x80, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
                        .into_iter()
                        .chain([0; 8])
                        .collect(),
                    _ => b"mn\r\n".to_vec(),
                };
                req.extend_from_slice(&next);
                send_in_pieces(&mut c, &req, pieces);
                let reply = store_reply(proto, &mut c);
                match proto {
                    Proto::Binary => assert_eq!(store_reply(proto, &mut c), "status 0"),
                    _ => assert_eq!(c.read_line(), "MN"),
                }
                let got = get(&mut reader, &key);
                assert!(
                    got.as_deref() == Some(&data[..]),
                    "{}: {key} answered {reply:?} and reads back {:?} bytes",
                    kind.name(),
                    got.map(|v| v.len())
                );
                replies.push(format!("{key}: {reply}"));
            }
        }
    }
    replies
}

#[test]
fn large_values_arriving_in_pieces_are_stored_whole() {
    let ours = stores_in_pieces(ServerKind::MemcachedRs);
    let theirs = stores_in_pieces(ServerKind::Memcached);
    assert_eq!(ours, theirs);
}

/// Large stores that are refused or malformed: the replies, what the key then holds, and
/// whether the memory in use is back where it was.
fn refused_stores(kind: ServerKind) -> Vec<String> {
    let server = Server::start(kind, &[]);
    let mut c = server.client();
    let old = value("old", 20 * KB);
    c.send(&store_request(Proto::Text, "set", "k", &old, b"\r\n"));
    assert_eq!(c.read_line(), "STORED");
    let before = used_chunks(&mut c);
    let big = value("big", 300 * KB);
    let mut seen = Vec::new();
    let cases: [(Proto, &str, &str, &[u8]); 9] = [
        (Proto::Text, "set", "k", b"XY"),
        (Proto::Text, "set", "k", b"\n\r"),
        (Proto::Meta, "set", "k", b"ab"),
        (Proto::Text, "add", "k", b"\r\n"),
        (Proto::Text, "replace", "missing", b"\r\n"),
        (Proto::Text, "cas 12345", "k", b"\r\n"),
        (Proto::Meta, "add", "k", b"\r\n"),
        (Proto::Binary, "add", "k", b""),
        (Proto::Binary, "replace", "missing", b""),
    ];
    for (proto, command, key, trailer) in cases {
        let mut storer = server.client();
        storer.send(&store_request(proto, command, key, &big, trailer));
        let reply = store_reply(proto, &mut storer);
        if let Proto::Binary = proto {
            storer = server.client();
        }
        // Whatever a malformed block left over is read as requests: sync with a version.
        storer.send(b"version\r\n");
        let mut extra = Vec::new();
        loop {
            let line = storer.read_line();
            if line.starts_with("VERSION ") {
                break;
            }
            extra.push(line);
        }
        let holds = match get(&mut c, key) {
            Some(v) if v == old => "the old value".to_string(),
            Some(v) => format!("{} other bytes", v.len()),
            None => "nothing".to_string(),
        };
        seen.push(format!(
            "{proto:?} {command} {key} ending {trailer:?}: {reply} {extra:?}, holds {holds}"
        ));
    }
    assert_eq!(
        used_chunks(&mut c),
        before,
        "{}: refused values left memory in use",
        kind.name()
    );
    seen
}

#[test]
fn refused_and_malformed_large_values_leave_nothing_behind() {
    let ours = refused_stores(ServerKind::MemcachedRs);
    let theirs = refused_stores(ServerKind::Memcached);
    assert_eq!(ours, theirs);
}

/// Clients that send half of a large value and stop, then go away.
fn abandoned_values(kind: ServerKind) {
    let server = Server::start(kind, &[]);
    let mut watcher = server.client();
    let before = used_chunks(&mut watcher);
    let read_before = stat_number(&watcher.request("stats"), "bytes_read");
    let len = 600 * KB;
    let mut clients: Vec<Client> = (0..8)
        .map(|i| {
            let mut c = server.client();
            let key = format!("a{i}");
            let req = store_request(Proto::Text, "set", &key, &value(&key, len), b"\r\n");
            c.send(&req[..req.len() / 2]);
            c
        })
        .collect();
    let sent = 8 * (store_request(Proto::Text, "set", "a0", &[0; 600 * KB], b"").len() / 2);
    wait_until("the halves to arrive", Duration::from_secs(30), || {
        let read = stat_number(&watcher.request("stats"), "bytes_read") - read_before;
        read as usize >= sent
    });
    if kind == ServerKind::MemcachedRs {
        // The halves are in their items' chunks, not in read buffers.
        let buffered = stat_number(&watcher.request("stats"), "read_buf_bytes");
        assert!(
            buffered < 64 * KB as u64,
            "{buffered} bytes of read buffers hold half-received values"
        );
    }
    clients.clear();
    wait_until(
        &format!("{}: the memory of abandoned values back", kind.name()),
        Duration::from_secs(30),
        || used_chunks(&mut watcher) == before,
    );
    assert_eq!(get(&mut watcher, "a0"), None);
}

#[test]
fn an_abandoned_large_value_gives_its_memory_back() {
    abandoned_values(ServerKind::MemcachedRs);
    abandoned_values(ServerKind::Memcached);
}

/// A value spread over more chunks than one read fills (`-I 64m`: 40 MB in chunks of 512 KB
/// or less), sent in pieces, then read back.
fn value_over_many_chunks(kind: ServerKind) -> String {
    let server = Server::start(kind, &["-m", "512", "-I", "64m"]);
    let mut c = server.client();
    c.set_read_timeout(Duration::from_secs(30));
    let data = value("huge", 40 << 20);
    let mut req = store_request(Proto::Text, "set", "huge", &data, b"\r\n");
    req.extend_from_slice(b"mn\r\n");
    send_in_pieces(&mut c, &req, 40);
    let reply = c.read_line();
    assert_eq!(c.read_line(), "MN");
    let got = get(&mut c, "huge");
    assert!(
        got.as_deref() == Some(&data[..]),
        "{}: the 40 MB value reads back as {:?} bytes",
        kind.name(),
        got.map(|v| v.len())
    );
    reply
}

#[test]
fn a_value_over_many_chunks_is_stored_whole() {
    assert_eq!(
        value_over_many_chunks(ServerKind::MemcachedRs),
        value_over_many_chunks(ServerKind::Memcached)
    );
}
