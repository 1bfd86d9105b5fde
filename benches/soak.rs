//! Soak run of memcached-rs (not in CI): hours of service squeezed into minutes.
//!
//! `cargo bench --bench soak` starts memcached-rs with `-M -m 1024` (room enough that nothing
//! is ever evicted, and an error rather than an eviction if it were not), then for
//! `SOAK_SECONDS` (default 600) drives mixed load from `SOAK_CONNS` (default 50) connections:
//! pipelined `set`, `get` (single and multi-key), `delete`, `incr` and `append` over a bounded
//! key space, with connections dropped and reopened at random — cleanly, with `quit`, in the
//! middle of a command, with replies unread, or with a reset.
//!
//! Every connection's thread owns its own slice of the key space and keeps the last value
//! stored for each of its keys, so every reply has exactly one right answer, and the run checks
//! each of them; at the end every key must read back its last value, and `curr_items` must
//! equal the number of keys that hold one. Every 10 s it samples the server's RSS; after the
//! warm-up (`SOAK_WARMUP_SECONDS`, default a quarter of the run, at most 60 s) RSS must stay
//! within 10% of its first post-warm-up sample. It counts the server's open descriptors at
//! start, after the load (clients still connected) and after every client closed: the last
//! must be back to the first.
//!
//! Exit status: 0 when all holds, 1 otherwise, 2 when the server cannot be started.
//! `SOAK_SEED` replays a run's random choices (the seed is printed), `MEMCACHED_RS_BIN` soaks
//! another build.

#[allow(dead_code)] // shared with the other benches, which use other parts
mod loadgen;

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use loadgen::server::{self, Server};

/// Keys each connection's thread owns.
const KEYS_PER_CONN: usize = 2000;
/// Every `COUNTER_EVERY`-th key holds a decimal number (`incr`, digit `append`s).
const COUNTER_EVERY: usize = 10;
/// Every `BIG_EVERY`-th key (offset 1) holds a big value, chained past the largest slab chunk
/// now and then.
const BIG_EVERY: usize = 200;
/// Sizes of ordinary values, and how long `append` may make them.
const SMALL_MAX: usize = 2048;
const SMALL_APPEND_LIMIT: usize = 8192;
/// Sizes of big values.
const BIG_MIN: usize = 16 * 1024;
const BIG_MAX: usize = 600 * 1024;
/// Counters stay below 10^18: no wrap-around to model.
const COUNTER_MAX_DIGITS: usize = 17;
/// Requests per pipelined batch, at most.
const MAX_BATCH: usize = 16;
/// Keys per multi-key `get`, at most.
const MAX_MULTI: usize = 8;
/// One batch in this many ends with the connection dropped (and reopened).
const DISCONNECT_EVERY: u64 = 300;
/// RSS sampling period.
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// How much RSS may grow after the warm-up.
const RSS_GROWTH_LIMIT: f64 = 0.10;
/// A reply slower than this is an error (a hung server must end the run, not stall it).
const READ_TIMEOUT: Duration = Duration::from_secs(30);
const MB: f64 = 1024.0 * 1024.0;

// ---------------------------------------------------------------------------------------------
// Randomness: SplitMix64, seeded per thread from the run's seed.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        loadgen::splitmix64(&mut self.0)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.next() % one_in == 0
    }

    /// `len` bytes, `\r\n` and NULs among them; the first byte is a letter, so a value is
    /// never taken for a number by `incr`.
    fn blob(&mut self, len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len + 8);
        v.push(b'b');
        while v.len() < len {
            let x = self.next();
            if x % 64 == 0 {
                v.extend_from_slice(b"\r\nEND\r\n");
            } else {
                v.extend_from_slice(&x.to_le_bytes());
            }
        }
        v.truncate(len);
        v
    }

    /// A counter's first value: a decimal number without leading zeros.
    fn number(&mut self) -> Vec<u8> {
        (1 + self.next() % 1_000_000_000).to_string().into_bytes()
    }
}

// ---------------------------------------------------------------------------------------------
// The client-side model of one thread's keys.

#[derive(Clone, Debug, PartialEq)]
enum Model {
    Absent,
    Value(Vec<u8>),
    /// After an error the server's state is not known until a `get` reads it again.
    Unknown,
}

#[derive(Clone, Copy, PartialEq)]
enum KeyKind {
    Counter,
    Big,
    Small,
}

fn kind_of(index: usize) -> KeyKind {
    if index % COUNTER_EVERY == 0 {
        KeyKind::Counter
    } else if index % BIG_EVERY == 1 {
        KeyKind::Big
    } else {
        KeyKind::Small
    }
}

fn key_name(conn: usize, index: usize) -> String {
    format!("soak:{conn}:{index}")
}

/// Client flags, per key, so that they are checked too (and kept by `append` and `incr`).
fn flags_of(conn: usize, index: usize) -> u32 {
    ((conn * KEYS_PER_CONN + index) as u32).wrapping_mul(2_654_435_761)
}

/// What `incr` does to `old` in memcached 1.6.18 (memcached-rs follows it): a number of at
/// most 20 digits (trailing spaces allowed) is incremented; the result keeps the old length,
/// space-padded, when it is not longer. `None`: not a number.
fn incr_model(old: &[u8], delta: u64) -> Option<(u64, Vec<u8>)> {
    let digits = old.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || old[digits..].iter().any(|&b| b != b' ') {
        return None;
    }
    let n: u64 = std::str::from_utf8(&old[..digits]).ok()?.parse().ok()?;
    let new = n.wrapping_add(delta);
    let mut text = new.to_string().into_bytes();
    if text.len() < old.len() {
        text.resize(old.len(), b' ');
    }
    Some((new, text))
}

// ---------------------------------------------------------------------------------------------
// Counters.

#[derive(Default, Clone)]
struct Counts {
    sets: u64,
    gets: u64,
    get_keys: u64,
    hits: u64,
    multi_gets: u64,
    deletes: u64,
    incrs: u64,
    appends: u64,
    big_sets: u64,
    /// The sets of the prefill (not in `sets`).
    prefill: u64,
    batches: u64,
    /// Reconnects by how the connection was left: clean close, `quit`, half a command, unread
    /// replies, reset (SO_LINGER 0) with unread replies.
    drop_clean: u64,
    drop_quit: u64,
    drop_partial: u64,
    drop_unread: u64,
    drop_reset: u64,
    /// Connections lost without our asking.
    lost: u64,
    errors: u64,
}

impl Counts {
    fn ops(&self) -> u64 {
        self.sets + self.gets + self.deletes + self.incrs + self.appends
    }

    fn add(&mut self, o: &Counts) {
        self.sets += o.sets;
        self.gets += o.gets;
        self.get_keys += o.get_keys;
        self.hits += o.hits;
        self.multi_gets += o.multi_gets;
        self.deletes += o.deletes;
        self.incrs += o.incrs;
        self.appends += o.appends;
        self.big_sets += o.big_sets;
        self.prefill += o.prefill;
        self.batches += o.batches;
        self.drop_clean += o.drop_clean;
        self.drop_quit += o.drop_quit;
        self.drop_partial += o.drop_partial;
        self.drop_unread += o.drop_unread;
        self.drop_reset += o.drop_reset;
        self.lost += o.lost;
        self.errors += o.errors;
    }
}

/// What every thread shares with the main one.
struct Shared {
    addr: SocketAddr,
    stop: AtomicBool,
    ops: AtomicU64,
    errors: AtomicU64,
    /// The first error messages, for the report.
    messages: Mutex<Vec<String>>,
    prefilled: Barrier,
    loaded: Barrier,
    released: Barrier,
}

impl Shared {
    fn error(&self, counts: &mut Counts, message: String) {
        counts.errors += 1;
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut m = self.messages.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() < 20 {
            m.push(message);
        }
    }
}

/// Readable bytes for error messages: printable ASCII kept, the rest escaped, long runs cut.
fn show(bytes: &[u8]) -> String {
    let mut s = String::new();
    for &b in bytes.iter().take(120) {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    if bytes.len() > 120 {
        s.push_str(&format!("… ({} bytes)", bytes.len()));
    }
    s
}

// ---------------------------------------------------------------------------------------------
// One connection.

struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    fn open(addr: SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        stream.set_write_timeout(Some(READ_TIMEOUT))?;
        Ok(Conn {
            writer: stream.try_clone()?,
            reader: BufReader::with_capacity(256 * 1024, stream),
        })
    }

    /// One reply, whole: a line, or `VALUE` blocks (data read by length) up to `END`.
    fn read_reply(&mut self) -> io::Result<Vec<u8>> {
        let mut reply = Vec::new();
        loop {
            let start = reply.len();
            let n = self.reader.read_until(b'\n', &mut reply)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("closed after {}", show(&reply)),
                ));
            }
            let line = &reply[start..];
            if !line.starts_with(b"VALUE ") {
                return Ok(reply);
            }
            let len: usize = std::str::from_utf8(line)
                .ok()
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("bad {}", show(line)))
                })?;
            let at = reply.len();
            reply.resize(at + len + 2, 0);
            io::Read::read_exact(&mut self.reader, &mut reply[at..])?;
        }
    }
}

/// A request in a batch and what its reply must be.
enum Check {
    /// Exactly these bytes.
    Exact(Vec<u8>),
    /// A `get` of a key whose state is unknown: any well-formed answer, which becomes the model.
    Resync(usize),
    /// A `delete` of an unknown key: `DELETED` or `NOT_FOUND`.
    DeleteUnknown,
}

struct Pending {
    check: Check,
    /// Keys whose model this request changed (made unknown if the reply is wrong).
    keys: Vec<usize>,
    what: String,
}

/// One connection's thread: its keys, their model, its connection and its counts.
struct Worker {
    id: usize,
    shared: Arc<Shared>,
    rng: Rng,
    model: Vec<Model>,
    conn: Option<Conn>,
    counts: Counts,
}

impl Worker {
    fn key(&self, index: usize) -> String {
        key_name(self.id, index)
    }

    fn value_reply(&self, index: usize, value: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(
            format!(
                "VALUE {} {} {}\r\n",
                self.key(index),
                flags_of(self.id, index),
                value.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }

    /// A fresh value for key `index`, by its kind.
    fn fresh_value(&mut self, index: usize) -> Vec<u8> {
        match kind_of(index) {
            KeyKind::Counter => self.rng.number(),
            KeyKind::Big => {
                let len = self.rng.range(BIG_MIN, BIG_MAX);
                self.rng.blob(len)
            }
            KeyKind::Small => {
                let len = self.rng.range(1, SMALL_MAX);
                self.rng.blob(len)
            }
        }
    }

    fn push_set(&mut self, index: usize, value: Vec<u8>, req: &mut Vec<u8>) -> Pending {
        req.extend_from_slice(
            format!(
                "set {} {} 0 {}\r\n",
                self.key(index),
                flags_of(self.id, index),
                value.len()
            )
            .as_bytes(),
        );
        req.extend_from_slice(&value);
        req.extend_from_slice(b"\r\n");
        self.counts.sets += 1;
        if kind_of(index) == KeyKind::Big {
            self.counts.big_sets += 1;
        }
        self.model[index] = Model::Value(value);
        Pending {
            check: Check::Exact(b"STORED\r\n".to_vec()),
            keys: vec![index],
            what: format!("set {}", self.key(index)),
        }
    }

    /// Adds one random request to `req` and returns what its reply must be, updating the model
    /// as the server will.
    fn push_random_op(&mut self, req: &mut Vec<u8>) -> Pending {
        let index = self.rng.below(KEYS_PER_CONN);
        let roll = self.rng.below(100);
        let known = self.model[index] != Model::Unknown;
        if roll < 30 || (!known && roll < 75) {
            // get, or a resync of an unknown key.
            if !known {
                req.extend_from_slice(format!("get {}\r\n", self.key(index)).as_bytes());
                self.counts.gets += 1;
                self.counts.get_keys += 1;
                return Pending {
                    check: Check::Resync(index),
                    keys: vec![index],
                    what: format!("get {} (resync)", self.key(index)),
                };
            }
            let mut keys = vec![index];
            if self.rng.chance(4) {
                for _ in 1..self.rng.range(2, MAX_MULTI) {
                    let k = self.rng.below(KEYS_PER_CONN);
                    if self.model[k] != Model::Unknown {
                        keys.push(k);
                    }
                }
                self.counts.multi_gets += 1;
            }
            let mut line = b"get".to_vec();
            let mut expect = Vec::new();
            for &k in &keys {
                line.push(b' ');
                line.extend_from_slice(self.key(k).as_bytes());
                if let Model::Value(v) = &self.model[k] {
                    self.value_reply(k, v, &mut expect);
                    self.counts.hits += 1;
                }
            }
            line.extend_from_slice(b"\r\n");
            expect.extend_from_slice(b"END\r\n");
            req.extend_from_slice(&line);
            self.counts.gets += 1;
            self.counts.get_keys += keys.len() as u64;
            return Pending {
                check: Check::Exact(expect),
                keys,
                what: String::from_utf8_lossy(&line[..line.len() - 2]).into_owned(),
            };
        }
        if roll < 40 {
            req.extend_from_slice(format!("delete {}\r\n", self.key(index)).as_bytes());
            self.counts.deletes += 1;
            let check = match std::mem::replace(&mut self.model[index], Model::Absent) {
                Model::Value(_) => Check::Exact(b"DELETED\r\n".to_vec()),
                Model::Absent => Check::Exact(b"NOT_FOUND\r\n".to_vec()),
                Model::Unknown => Check::DeleteUnknown,
            };
            return Pending {
                check,
                keys: vec![index],
                what: format!("delete {}", self.key(index)),
            };
        }
        if roll < 55 && known {
            let delta = 1 + self.rng.next() % 1000;
            req.extend_from_slice(format!("incr {} {delta}\r\n", self.key(index)).as_bytes());
            self.counts.incrs += 1;
            let check = match &self.model[index] {
                Model::Absent => b"NOT_FOUND\r\n".to_vec(),
                Model::Value(v) => match incr_model(v, delta) {
                    Some((n, text)) => {
                        self.model[index] = Model::Value(text);
                        format!("{n}\r\n").into_bytes()
                    }
                    None => {
                        b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n".to_vec()
                    }
                },
                Model::Unknown => unreachable!("known"),
            };
            return Pending {
                check: Check::Exact(check),
                keys: vec![index],
                what: format!("incr {} {delta}", self.key(index)),
            };
        }
        if roll < 65 && known {
            let (data, limit) = match kind_of(index) {
                KeyKind::Counter => {
                    let digits = self.rng.range(1, 3);
                    let n = self.rng.next() % 10u64.pow(digits as u32);
                    (format!("{n:0digits$}").into_bytes(), COUNTER_MAX_DIGITS)
                }
                KeyKind::Big => {
                    let len = self.rng.range(1, 4096);
                    (self.rng.blob(len), BIG_MAX)
                }
                KeyKind::Small => {
                    let len = self.rng.range(1, 64);
                    (self.rng.blob(len), SMALL_APPEND_LIMIT)
                }
            };
            let fits = match &self.model[index] {
                Model::Value(v) => v.len() + data.len() <= limit,
                _ => true,
            };
            if fits {
                req.extend_from_slice(
                    format!("append {} 0 0 {}\r\n", self.key(index), data.len()).as_bytes(),
                );
                req.extend_from_slice(&data);
                req.extend_from_slice(b"\r\n");
                self.counts.appends += 1;
                let check = match &mut self.model[index] {
                    Model::Value(v) => {
                        v.extend_from_slice(&data);
                        b"STORED\r\n".to_vec()
                    }
                    _ => b"NOT_STORED\r\n".to_vec(),
                };
                return Pending {
                    check: Check::Exact(check),
                    keys: vec![index],
                    what: format!("append {} ({} bytes)", self.key(index), data.len()),
                };
            }
        }
        let value = self.fresh_value(index);
        self.push_set(index, value, req)
    }

    fn connect(&mut self) -> bool {
        for attempt in 0..50 {
            match Conn::open(self.shared.addr) {
                Ok(c) => {
                    self.conn = Some(c);
                    return true;
                }
                Err(e) if attempt == 49 => {
                    let msg = format!("conn {}: cannot connect: {e}", self.id);
                    self.shared.error(&mut self.counts, msg);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        false
    }

    /// Sends `req` and checks each reply against `pending`, in order.
    fn exchange(&mut self, req: &[u8], pending: Vec<Pending>) {
        if self.conn.is_none() && !self.connect() {
            for p in &pending {
                for &k in &p.keys {
                    self.model[k] = Model::Unknown;
                }
            }
            return;
        }
        let conn = self.conn.as_mut().expect("connected");
        if let Err(e) = conn.writer.write_all(req) {
            self.lost(format!("write: {e}"), &pending);
            return;
        }
        for (i, p) in pending.iter().enumerate() {
            let reply = match self.conn.as_mut().expect("connected").read_reply() {
                Ok(r) => r,
                Err(e) => {
                    self.lost(format!("{}: {e}", p.what), &pending[i..]);
                    return;
                }
            };
            let ok = match &p.check {
                Check::Exact(want) => reply == *want,
                Check::DeleteUnknown => reply == b"DELETED\r\n" || reply == b"NOT_FOUND\r\n",
                Check::Resync(index) => {
                    if reply == b"END\r\n" {
                        self.model[*index] = Model::Absent;
                        true
                    } else {
                        let header_end = reply.iter().position(|&b| b == b'\n').unwrap_or(0);
                        let ok = reply.ends_with(b"\r\nEND\r\n") && header_end > 0;
                        if ok {
                            let data = &reply[header_end + 1..reply.len() - 7];
                            self.model[*index] = Model::Value(data.to_vec());
                        }
                        ok
                    }
                }
            };
            if !ok {
                let want = match &p.check {
                    Check::Exact(w) => show(w),
                    _ => "a well-formed reply".into(),
                };
                let msg = format!(
                    "conn {}: {}: got {}, want {want}",
                    self.id,
                    p.what,
                    show(&reply)
                );
                self.shared.error(&mut self.counts, msg);
                for &k in &p.keys {
                    self.model[k] = Model::Unknown;
                }
            }
        }
        self.shared
            .ops
            .fetch_add(pending.len() as u64, Ordering::Relaxed);
    }

    /// The connection broke without our asking: an error; what was in flight is unknown now.
    fn lost(&mut self, why: String, in_flight: &[Pending]) {
        self.counts.lost += 1;
        let msg = format!("conn {}: connection lost: {why}", self.id);
        self.shared.error(&mut self.counts, msg);
        for p in in_flight {
            for &k in &p.keys {
                self.model[k] = Model::Unknown;
            }
        }
        self.conn = None;
    }

    /// Drops the connection in one of five ways; none may change a stored value.
    fn drop_connection(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        match self.rng.below(5) {
            0 => {
                self.counts.drop_clean += 1;
            }
            1 => {
                self.counts.drop_quit += 1;
                let _ = conn.writer.write_all(b"quit\r\n");
                let mut rest = Vec::new();
                // memcached closes at once on quit: EOF, nothing else.
                match io::Read::read_to_end(&mut conn.reader, &mut rest) {
                    Ok(_) if rest.is_empty() => {}
                    other => {
                        let msg = format!(
                            "conn {}: quit: got {} ({:?})",
                            self.id,
                            show(&rest),
                            other.err()
                        );
                        self.shared.error(&mut self.counts, msg);
                    }
                }
            }
            2 => {
                // Half a command: a set whose data stops short, or a line without its end.
                // It must never be executed.
                self.counts.drop_partial += 1;
                let index = self.rng.below(KEYS_PER_CONN);
                let partial = if self.rng.chance(2) {
                    let value = self.fresh_value(index);
                    let mut r = format!("set {} 0 0 {}\r\n", key_name(self.id, index), value.len())
                        .into_bytes();
                    r.extend_from_slice(&value[..value.len() / 2]);
                    r
                } else {
                    format!("delete {}", key_name(self.id, index)).into_bytes()
                };
                let _ = conn.writer.write_all(&partial);
            }
            kind => {
                // Read-only requests whose replies nobody reads; with a reset at the close
                // (SO_LINGER 0) one time in two.
                let mut r = Vec::new();
                for _ in 0..self.rng.range(1, 8) {
                    let index = if self.rng.chance(2) {
                        1 + BIG_EVERY * self.rng.below(KEYS_PER_CONN / BIG_EVERY)
                    } else {
                        self.rng.below(KEYS_PER_CONN)
                    };
                    r.extend_from_slice(format!("get {}\r\n", key_name(self.id, index)).as_bytes());
                }
                let _ = conn.writer.write_all(&r);
                if kind == 3 {
                    self.counts.drop_unread += 1;
                } else {
                    self.counts.drop_reset += 1;
                    let socket = socket2::SockRef::from(&conn.writer);
                    let _ = socket.set_linger(Some(Duration::ZERO));
                }
            }
        }
        let _ = conn.writer.shutdown(Shutdown::Both);
    }

    /// Every key once, in pipelined batches.
    fn prefill(&mut self) {
        let mut index = 0;
        while index < KEYS_PER_CONN {
            let mut req = Vec::new();
            let mut pending = Vec::new();
            while index < KEYS_PER_CONN && pending.len() < 32 && req.len() < 64 * 1024 {
                let value = self.fresh_value(index);
                pending.push(self.push_set(index, value, &mut req));
                index += 1;
            }
            self.exchange(&req, pending);
        }
        self.counts.prefill = self.counts.sets;
        self.counts.sets = 0;
        self.counts.big_sets = 0;
    }

    /// Batches of random requests until told to stop.
    fn run(&mut self) {
        while !self.shared.stop.load(Ordering::Relaxed) {
            let size = self.rng.range(1, MAX_BATCH);
            let mut req = Vec::new();
            let mut pending = Vec::new();
            while pending.len() < size && req.len() < 48 * 1024 {
                pending.push(self.push_random_op(&mut req));
            }
            self.counts.batches += 1;
            self.exchange(&req, pending);
            if self.rng.chance(DISCONNECT_EVERY) {
                self.drop_connection();
            }
        }
    }
}

fn client_thread(id: usize, seed: u64, shared: Arc<Shared>) -> (Counts, Vec<Model>) {
    let mut w = Worker {
        id,
        rng: Rng(seed ^ (id as u64).wrapping_mul(0xA076_1D64_78BD_642F)),
        model: vec![Model::Absent; KEYS_PER_CONN],
        conn: None,
        counts: Counts::default(),
        shared: Arc::clone(&shared),
    };
    w.prefill();
    shared.prefilled.wait();
    w.run();
    // Connected at the end of the load, so the descriptor count sees every client.
    if w.conn.is_none() {
        w.connect();
    }
    shared.loaded.wait();
    shared.released.wait();
    if let Some(conn) = w.conn.take() {
        let _ = conn.writer.shutdown(Shutdown::Both);
    }
    (w.counts, w.model)
}

// ---------------------------------------------------------------------------------------------
// The server.

/// Starts memcached-rs as the soak runs it (`-M`: a store that does not fit is an error the
/// soak counts, not an eviction) and waits until it answers.
fn start_server(binary: &Path) -> Result<Server, String> {
    let port = server::free_port()?;
    let mut command = vec![OsString::from(binary)];
    let flags = format!("-M -m 1024 -c 4096 -U 0 -l 127.0.0.1 -p {port}");
    command.extend(flags.split(' ').map(OsString::from));
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        command.extend(["-u", "root"].map(OsString::from));
    }
    let server = Server::start(
        "memcached-rs",
        &command,
        port,
        Duration::from_secs(10),
        None,
    )?;
    let mut c = Conn::open(server.addr()).map_err(|e| format!("connecting: {e}"))?;
    c.writer
        .write_all(b"version\r\n")
        .map_err(|e| format!("sending version: {e}"))?;
    c.read_reply()
        .map_err(|e| format!("reading version: {e:?}"))?;
    println!("soak: {} {flags}", binary.display());
    Ok(server)
}

fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb * 1024.0 / MB)
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// How many of the server's descriptors are client connections: sockets whose inode
/// /proc/net/tcp lists with the server's port as local port, in a state other than LISTEN.
fn connection_fds(pid: u32, port: u16) -> usize {
    let mut inodes = std::collections::HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state), Some(inode)) = (f.get(1), f.get(3), f.get(9)) else {
                continue;
            };
            let local_port = local
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) && *state != "0A" {
                inodes.insert(inode.to_string());
            }
        }
    }
    fd_table(pid)
        .values()
        .filter(|t| {
            t.strip_prefix("socket:[")
                .and_then(|r| r.strip_suffix(']'))
                .is_some_and(|i| inodes.contains(i))
        })
        .count()
}

/// The server's descriptors and what each points at, for the report when the count is off.
fn fd_table(pid: u32) -> std::collections::BTreeMap<u32, String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|e| {
                    let fd = e.file_name().to_str()?.parse().ok()?;
                    let target = std::fs::read_link(e.path()).ok()?;
                    Some((fd, target.display().to_string()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `stats` as a map, on a connection of its own.
fn stats(addr: SocketAddr) -> HashMap<String, String> {
    let mut map = HashMap::new();
    let Ok(mut conn) = Conn::open(addr) else {
        return map;
    };
    if conn.writer.write_all(b"stats\r\n").is_err() {
        return map;
    }
    let mut line = String::new();
    loop {
        line.clear();
        match conn.reader.read_line(&mut line) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("STAT"), Some(k), Some(v)) => {
                map.insert(k.to_string(), v.to_string());
            }
            _ => break,
        }
    }
    let _ = conn.writer.shutdown(Shutdown::Both);
    map
}

fn stat(map: &HashMap<String, String>, name: &str) -> u64 {
    map.get(name).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Every key of every model read back (multi-key `get`s of 100), on one connection; returns
/// (keys checked, keys holding a value, unknown keys skipped, mismatches).
fn verify(addr: SocketAddr, models: &[Vec<Model>], shared: &Shared) -> (u64, u64, u64, u64) {
    let (mut checked, mut live, mut unknown, mut bad) = (0, 0, 0, 0);
    let mut conn = match Conn::open(addr) {
        Ok(c) => c,
        Err(e) => {
            let mut c = Counts::default();
            shared.error(&mut c, format!("verify: cannot connect: {e}"));
            return (0, 0, 0, u64::MAX);
        }
    };
    let mut scratch = Counts::default();
    for (id, model) in models.iter().enumerate() {
        let known: Vec<usize> = (0..model.len())
            .filter(|&i| {
                let k = model[i] != Model::Unknown;
                if !k {
                    unknown += 1;
                }
                k
            })
            .collect();
        for chunk in known.chunks(100) {
            let mut line = b"get".to_vec();
            let mut want = Vec::new();
            for &i in chunk {
                line.push(b' ');
                line.extend_from_slice(key_name(id, i).as_bytes());
                if let Model::Value(v) = &model[i] {
                    live += 1;
                    want.extend_from_slice(
                        format!(
                            "VALUE {} {} {}\r\n",
                            key_name(id, i),
                            flags_of(id, i),
                            v.len()
                        )
                        .as_bytes(),
                    );
                    want.extend_from_slice(v);
                    want.extend_from_slice(b"\r\n");
                }
            }
            line.extend_from_slice(b"\r\n");
            want.extend_from_slice(b"END\r\n");
            checked += chunk.len() as u64;
            let got = conn
                .writer
                .write_all(&line)
                .and_then(|()| conn.read_reply());
            match got {
                Ok(got) if got == want => {}
                Ok(got) => {
                    bad += 1;
                    let at = got.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(0);
                    shared.error(
                        &mut scratch,
                        format!(
                            "verify conn {id}: keys {}..: first difference at byte {at}: got {}, want {}",
                            chunk[0],
                            show(&got[at.saturating_sub(40)..]),
                            show(&want[at.saturating_sub(40)..])
                        ),
                    );
                }
                Err(e) => {
                    bad += 1;
                    shared.error(&mut scratch, format!("verify conn {id}: {e}"));
                    match Conn::open(addr) {
                        Ok(c) => conn = c,
                        Err(_) => return (checked, live, unknown, bad),
                    }
                }
            }
        }
    }
    let _ = conn.writer.shutdown(Shutdown::Both);
    (checked, live, unknown, bad)
}

/// Least-squares slope of `(t, y)`, per minute.
fn slope_per_minute(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) = points.iter().fold((0.0, 0.0), |(a, b), (x, y)| {
        (a + (x - mx) * (y - my), b + (x - mx) * (x - mx))
    });
    if den == 0.0 {
        0.0
    } else {
        num / den * 60.0
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v.trim().parse().unwrap_or_else(|_| {
            eprintln!("soak: {name}={v} is not a whole number; using {default}");
            default
        }),
        Err(_) => default,
    }
}

/// Waits until the server's descriptor count is `want` (at most 10 s); returns the last count.
fn wait_for_fds(pid: u32, want: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = open_fds(pid);
        if n == want || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Sample {
    t: f64,
    rss: f64,
    fds: usize,
    items: u64,
    item_mb: f64,
    conns: u64,
    ops: u64,
}

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; nothing else is taken from the command line.
    let seconds = env_u64("SOAK_SECONDS", 600).max(1);
    let conns = env_u64("SOAK_CONNS", 50).max(1) as usize;
    let warmup = env_u64("SOAK_WARMUP_SECONDS", (seconds / 4).min(60));
    let seed = env_u64(
        "SOAK_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    );
    let binary = server::memcached_rs_path();
    let mut daemon = match start_server(&binary) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("soak: {e}");
            return ExitCode::from(2);
        }
    };
    let pid = daemon.pid();
    println!(
        "soak: {seconds} s, {conns} connections × {KEYS_PER_CONN} keys, warm-up {warmup} s, \
         SOAK_SEED={seed}"
    );
    // The start count is taken once start-up is over — the server answers as soon as its
    // first worker runs, before the others have their epoll descriptors — and the start-up
    // probe's connection is gone: the same table, with no client connection, for 1 s.
    let port = daemon.port;
    let idle_deadline = Instant::now() + Duration::from_secs(10);
    let mut stable_since = (Instant::now(), fd_table(pid));
    while Instant::now() < idle_deadline {
        std::thread::sleep(Duration::from_millis(50));
        let now = fd_table(pid);
        if now != stable_since.1 || connection_fds(pid, port) > 0 {
            stable_since = (Instant::now(), now);
        } else if stable_since.0.elapsed() >= Duration::from_secs(1) {
            break;
        }
    }
    let fd_table_start = fd_table(pid);
    let fds_start = fd_table_start.len();
    let rss_start = rss_mb(pid);

    let shared = Arc::new(Shared {
        addr: daemon.addr(),
        stop: AtomicBool::new(false),
        ops: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        messages: Mutex::new(Vec::new()),
        prefilled: Barrier::new(conns + 1),
        loaded: Barrier::new(conns + 1),
        released: Barrier::new(conns + 1),
    });
    let prefill_started = Instant::now();
    let handles: Vec<_> = (0..conns)
        .map(|id| {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("soak-{id}"))
                .spawn(move || client_thread(id, seed, shared))
                .expect("spawn a client thread")
        })
        .collect();
    shared.prefilled.wait();
    let prefill_secs = prefill_started.elapsed().as_secs_f64();
    // Each thread's prefill is one set per key (counted as it is answered).
    let prefill_ops = (conns * KEYS_PER_CONN) as u64;
    println!(
        "soak: prefilled {prefill_ops} keys in {prefill_secs:.1} s; RSS {rss_start:.1} MB at \
         start, {:.1} MB now",
        rss_mb(pid)
    );
    println!("every 10 s (fds and conns include the sample's own stats connection):");
    println!(
        "{:>6} {:>9} {:>5} {:>9} {:>9} {:>6} {:>12} {:>9}",
        "t(s)", "RSS(MB)", "fds", "items", "data(MB)", "conns", "ops", "ops/s"
    );

    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut samples: Vec<Sample> = Vec::new();
    let mut last_ops = prefill_ops;
    let mut server_died = None;
    let mut next_sample = started + SAMPLE_EVERY.min(Duration::from_secs(seconds));
    loop {
        let now = Instant::now();
        if let Err(died) = daemon.check_alive() {
            server_died = Some(died);
            break;
        }
        if now >= next_sample {
            let st = stats(daemon.addr());
            let ops = shared.ops.load(Ordering::Relaxed);
            let s = Sample {
                t: now.duration_since(started).as_secs_f64(),
                rss: rss_mb(pid),
                fds: open_fds(pid),
                items: stat(&st, "curr_items"),
                item_mb: stat(&st, "bytes") as f64 / MB,
                conns: stat(&st, "curr_connections"),
                ops: ops - prefill_ops,
            };
            let interval = samples.last().map_or(s.t, |p| s.t - p.t);
            println!(
                "{:>6.0} {:>9.1} {:>5} {:>9} {:>9.1} {:>6} {:>12} {:>9.0}",
                s.t,
                s.rss,
                s.fds,
                s.items,
                s.item_mb,
                s.conns,
                s.ops,
                (ops - last_ops) as f64 / interval.max(1e-9)
            );
            last_ops = ops;
            samples.push(s);
            next_sample += SAMPLE_EVERY;
            if next_sample > deadline && now < deadline {
                next_sample = deadline;
            }
        }
        if now >= deadline {
            break;
        }
        std::thread::sleep(
            Duration::from_millis(100).min(next_sample.saturating_duration_since(now)),
        );
    }
    let load_secs = started.elapsed().as_secs_f64();
    shared.stop.store(true, Ordering::Relaxed);
    shared.loaded.wait();
    let fds_loaded = open_fds(pid);
    shared.released.wait();
    let mut counts = Counts::default();
    let mut models = Vec::new();
    for h in handles {
        let (c, m) = h.join().expect("client thread panicked");
        counts.add(&c);
        models.push(m);
    }
    let fds_closed = wait_for_fds(pid, fds_start);
    let (checked, live, unknown, mismatches) = verify(daemon.addr(), &models, &shared);
    let st = stats(daemon.addr());
    let fds_end = wait_for_fds(pid, fds_start);
    let fd_table_end = fd_table(pid);
    let conns_left = connection_fds(pid, port);
    let exit = daemon.terminate(Duration::from_secs(10)).ok();

    // The verdicts.
    let after: Vec<&Sample> = samples.iter().filter(|s| s.t >= warmup as f64).collect();
    let rss_points: Vec<(f64, f64)> = after.iter().map(|s| (s.t, s.rss)).collect();
    let (rss_base, rss_last) = match (after.first(), after.last()) {
        (Some(a), Some(b)) => (a.rss, b.rss),
        _ => (f64::NAN, f64::NAN),
    };
    let rss_max = after.iter().map(|s| s.rss).fold(f64::NAN, f64::max);
    let growth = (rss_max - rss_base) / rss_base;
    let curr_items = stat(&st, "curr_items");
    let mut failures = Vec::new();
    if let Some(status) = server_died {
        failures.push(format!("the server exited during the load: {status}"));
    }
    if counts.errors > 0 || shared.errors.load(Ordering::Relaxed) > 0 {
        failures.push(format!(
            "{} wrong replies or lost connections",
            shared.errors.load(Ordering::Relaxed)
        ));
    }
    if mismatches > 0 {
        failures.push(format!("{mismatches} read-back batches differ"));
    }
    if unknown == 0 && curr_items != live {
        failures.push(format!(
            "curr_items {curr_items}, but {live} keys hold a value"
        ));
    }
    for name in ["evictions", "outofmemory"] {
        if stat(&st, name) > 0 {
            failures.push(format!("{name} {}", stat(&st, name)));
        }
    }
    if growth.is_nan() {
        failures.push("no RSS sample after the warm-up".into());
    } else if growth > RSS_GROWTH_LIMIT {
        failures.push(format!(
            "RSS grew {:.1}% after the warm-up ({rss_base:.1} → max {rss_max:.1} MB)",
            growth * 100.0
        ));
    }
    if fds_closed != fds_start || fds_end != fds_start || conns_left > 0 {
        let mut diff = String::new();
        for (fd, target) in &fd_table_start {
            if fd_table_end.get(fd) != Some(target) {
                diff.push_str(&format!(
                    "\n    fd {fd} was {target}, now {:?}",
                    fd_table_end.get(fd)
                ));
            }
        }
        for (fd, target) in &fd_table_end {
            if !fd_table_start.contains_key(fd) {
                diff.push_str(&format!("\n    fd {fd} new: {target}"));
            }
        }
        failures.push(format!(
            "descriptors: {fds_start} at start, {fds_closed} after the clients closed, \
             {fds_end} at the end, {conns_left} of them client connections{diff}"
        ));
    }
    if !exit.is_some_and(|s| s.success()) {
        failures.push(format!("exit after SIGTERM: {exit:?}"));
    }

    let ops = counts.ops();
    println!();
    println!("soak summary ({load_secs:.0} s of load after {prefill_secs:.1} s of prefill)");
    let rows: Vec<(&str, String)> = vec![
        ("connections", format!("{conns}")),
        (
            "keys (prefill sets)",
            format!("{} ({})", conns * KEYS_PER_CONN, counts.prefill),
        ),
        (
            "requests after the prefill",
            format!("{} ({:.0}/s)", ops, ops as f64 / load_secs),
        ),
        (
            "  set / get / delete",
            format!("{} / {} / {}", counts.sets, counts.gets, counts.deletes),
        ),
        (
            "  incr / append",
            format!("{} / {}", counts.incrs, counts.appends),
        ),
        (
            "  multi-key gets, keys read, hits",
            format!(
                "{} / {} / {}",
                counts.multi_gets, counts.get_keys, counts.hits
            ),
        ),
        ("  big sets (16-600 KB)", format!("{}", counts.big_sets)),
        ("batches", format!("{}", counts.batches)),
        (
            "reconnects: clean/quit/half-command/unread/reset",
            format!(
                "{} / {} / {} / {} / {}",
                counts.drop_clean,
                counts.drop_quit,
                counts.drop_partial,
                counts.drop_unread,
                counts.drop_reset
            ),
        ),
        ("connections lost", format!("{}", counts.lost)),
        (
            "errors (wrong replies, lost conns)",
            format!("{}", shared.errors.load(Ordering::Relaxed)),
        ),
        (
            "read back: keys / with a value / unknown / bad",
            format!("{checked} / {live} / {unknown} / {mismatches}"),
        ),
        (
            "curr_items / evictions / outofmemory",
            format!(
                "{curr_items} / {} / {}",
                stat(&st, "evictions"),
                stat(&st, "outofmemory")
            ),
        ),
        (
            "total_connections",
            format!("{}", stat(&st, "total_connections")),
        ),
        (
            "RSS MB: start / after warm-up / last / max",
            format!("{rss_start:.1} / {rss_base:.1} / {rss_last:.1} / {rss_max:.1}"),
        ),
        (
            "RSS after warm-up: growth / slope",
            format!(
                "{:+.2}% / {:+.2} MB/min",
                growth * 100.0,
                slope_per_minute(&rss_points)
            ),
        ),
        (
            "fds: start / after load / clients closed / end",
            format!("{fds_start} / {fds_loaded} / {fds_closed} / {fds_end} ({conns_left} conns)"),
        ),
        ("exit after SIGTERM", format!("{exit:?}")),
    ];
    for (k, v) in &rows {
        println!("  {k:<50} {v}");
    }
    let messages = shared.messages.lock().unwrap_or_else(|p| p.into_inner());
    if !messages.is_empty() {
        println!("first errors:");
        for m in messages.iter() {
            println!("  {m}");
        }
    }
    if failures.is_empty() {
        println!("soak: PASS");
        ExitCode::SUCCESS
    } else {
        println!("soak: FAIL");
        for f in &failures {
            println!("  {f}");
        }
        ExitCode::from(1)
    }
}
