//! Large values are written to the socket from the cache's memory, not from a copy: a reply in
//! flight holds its item, and the item's bytes stay what they were when the reply was made
//! however the cache changes meanwhile — the key overwritten or deleted, the item evicted, its
//! memory wanted by new items — as in memcached, which holds a reference to the item until the
//! reply is written. And a client that stops reading holds no copy of what it was sent.
//!
//! Each test runs against memcached 1.6.38 too: the replies must be the same.

mod common;

use std::os::fd::AsRawFd;
use std::time::Duration;

use common::{stat_number, wait_until, Client, Server, ServerKind};

const KB: usize = 1024;

/// A value that says which key and which version it is, byte by byte.
fn value(key: &str, version: u8, len: usize) -> Vec<u8> {
    let seed = key
        .bytes()
        .fold(version, |a, b| a.wrapping_mul(31).wrapping_add(b));
    (0..len)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect()
}

fn store(c: &mut Client, key: &str, data: &[u8]) {
    let mut req = format!("set {key} 0 0 {}\r\n", data.len()).into_bytes();
    req.extend_from_slice(data);
    req.extend_from_slice(b"\r\n");
    c.send(&req);
    assert_eq!(c.read_line(), "STORED", "set {key}");
}

/// Bytes of replies to `reader` that the kernel holds: sent by the server and not yet
/// acknowledged or read (the server socket's send queue, the reader's receive queue).
fn in_kernel(server: &Server, reader: &mut Client) -> u64 {
    let fd = reader.stream().as_raw_fd();
    let mut unread: libc::c_int = 0;
    // SAFETY: `fd` is the reader's open socket; FIONREAD writes one c_int to `unread`.
    let rc = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut unread) };
    assert_eq!(rc, 0, "FIONREAD");
    let local = reader.stream().local_addr().expect("local address").port();
    let tcp = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    let server_side = tcp.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let port = |addr: &str| u16::from_str_radix(addr.rsplit(':').next()?, 16).ok();
        let (from, to) = (port(fields.get(1)?)?, port(fields.get(2)?)?);
        let queues = fields.get(4)?;
        let tx = u64::from_str_radix(queues.split(':').next()?, 16).ok()?;
        (from == server.port() && to == local).then_some(tx)
    });
    server_side.expect("the server's socket in /proc/net/tcp") + unread as u64
}

fn stats(c: &mut Client) -> String {
    c.request("stats")
}

/// How each protocol asks for a key and frames the value it gets back.
#[derive(Clone, Copy, Debug)]
enum Ask {
    Text,
    Meta,
    Binary,
}

impl Ask {
    fn request(self, key: &str) -> Vec<u8> {
        match self {
            Ask::Text => format!("get {key}\r\n").into_bytes(),
            Ask::Meta => format!("mg {key} v k\r\n").into_bytes(),
            Ask::Binary => {
                // GETK: the reply carries the key, then the value.
                let mut req = vec![0x80, 0x0c];
                req.extend_from_slice(&(key.len() as u16).to_be_bytes());
                req.extend_from_slice(&[0, 0, 0, 0]);
                req.extend_from_slice(&(key.len() as u32).to_be_bytes());
                req.extend_from_slice(&[0; 12]);
                req.extend_from_slice(key.as_bytes());
                req
            }
        }
    }

    /// Reads one reply: the key's value, or `None` for a miss.
    fn read(self, c: &mut Client, key: &str) -> Option<Vec<u8>> {
        match self {
            Ask::Text => {
                let line = c.read_line();
                if line == "END" {
                    return None;
                }
                let len = header_len(&line, &format!("VALUE {key} 0 "));
                let data = c.read_exact(len);
                assert_eq!(c.read_exact(2), b"\r\n");
                assert_eq!(c.read_line(), "END");
                Some(data)
            }
            Ask::Meta => {
                let line = c.read_line();
                if line.starts_with("EN") {
                    return None;
                }
                let len = header_len(&line, "VA ");
                assert!(line.ends_with(&format!(" k{key}")), "{line}");
                let data = c.read_exact(len);
                assert_eq!(c.read_exact(2), b"\r\n");
                Some(data)
            }
            Ask::Binary => {
                let header = c.read_exact(24);
                let status = u16::from_be_bytes([header[6], header[7]]);
                let body = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
                let extras = usize::from(header[4]);
                let body = c.read_exact(body as usize);
                if status == 1 {
                    return None;
                }
                assert_eq!(status, 0, "binary status");
                let key_len = usize::from(u16::from_be_bytes([header[2], header[3]]));
                assert_eq!(&body[extras..extras + key_len], key.as_bytes());
                Some(body[extras + key_len..].to_vec())
            }
        }
    }
}

/// The value length announced by a header line that starts with `prefix`.
fn header_len(line: &str, prefix: &str) -> usize {
    let rest = line
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("expected '{prefix}…', got {line:?}"));
    let len = rest.split_whitespace().next().unwrap_or("");
    len.parse()
        .unwrap_or_else(|_| panic!("bad length in {line:?}"))
}

/// Asks a client that does not read for many large values, and once the server can send no
/// more (the kernel holds a few megabytes, the server the replies that wait for room): deletes
/// or overwrites every key answered so far, and stores enough new values to reuse any memory
/// given back. The replies made before must carry the values as they were when asked for; the
/// later ones, answered once the client reads, the old value, the new one, or a miss.
fn replies_in_flight(kind: ServerKind, ask: Ask, len: usize) {
    let server = Server::start(kind, &["-m", "32", "-o", "slab_automove=0"]);
    let mut writer = server.client();
    let keys: Vec<String> = (0..(12 << 20) / len).map(|i| format!("big{i}")).collect();
    for key in &keys {
        store(&mut writer, key, &value(key, 1, len));
    }
    let hits_before = stat_number(&stats(&mut writer), "get_hits");

    let mut reader = server.client();
    reader.set_read_timeout(Duration::from_secs(30));
    let requests: Vec<u8> = keys.iter().flat_map(|k| ask.request(k)).collect();
    reader.send(&requests);
    // Until the answers stop: the server has filled the socket and holds the rest.
    let mut answered = 0;
    wait_until("the server to stall", Duration::from_secs(30), || {
        std::thread::sleep(Duration::from_millis(100));
        let now = stat_number(&stats(&mut writer), "get_hits") - hits_before;
        std::mem::replace(&mut answered, now) == now
    });
    let answered = answered as usize;
    let made = (answered * len) as u64;
    let kernel = in_kernel(&server, &mut reader);
    assert!(
        kernel < made,
        "{}: the kernel holds {kernel} bytes of the {made} answered: no reply waits in the server",
        kind.name()
    );
    if kind == ServerKind::MemcachedRs {
        // The waiting replies refer to their items: the connection copied none of them.
        let held = stat_number(&stats(&mut writer), "response_obj_bytes");
        assert!(
            held < 256 * KB as u64,
            "{ask:?}: {held} bytes of reply buffers for {len}-byte values in flight"
        );
    }
    for (i, key) in keys.iter().take(answered).enumerate() {
        if i % 2 == 0 {
            store(&mut writer, key, &value(key, 2, len));
        } else {
            writer.send(format!("delete {key}\r\n").as_bytes());
            assert_eq!(writer.read_line(), "DELETED");
        }
    }
    for i in 0..(40 << 20) / len {
        let key = format!("other{i}");
        store(&mut writer, &key, &value(&key, 3, len));
    }

    for (i, key) in keys.iter().enumerate() {
        let got = ask.read(&mut reader, key);
        let ok = match &got {
            Some(v) => *v == value(key, 1, len) || (i >= answered && *v == value(key, 2, len)),
            None => i >= answered,
        };
        assert!(
            ok,
            "{} {ask:?} {len}-byte values, {answered} answered before the changes: reply {i} \
             ({key}) is {}",
            kind.name(),
            match got {
                None => "a miss".to_string(),
                Some(v) => format!("{} bytes, not the value asked for", v.len()),
            }
        );
    }
}

#[test]
fn text_replies_in_flight_keep_their_values() {
    for kind in [ServerKind::MemcachedRs, ServerKind::Memcached] {
        replies_in_flight(kind, Ask::Text, 512 * KB);
        replies_in_flight(kind, Ask::Text, 100 * KB);
    }
}

#[test]
fn meta_replies_in_flight_keep_their_values() {
    for kind in [ServerKind::MemcachedRs, ServerKind::Memcached] {
        replies_in_flight(kind, Ask::Meta, 512 * KB);
    }
}

#[test]
fn binary_replies_in_flight_keep_their_values() {
    for kind in [ServerKind::MemcachedRs, ServerKind::Memcached] {
        replies_in_flight(kind, Ask::Binary, 512 * KB);
    }
}
