//! The load generator shared by `benches/load.rs` (throughput and latency next to memcached)
//! and `benches/callgrind.rs` (instructions per request).
//!
//! Blocking sockets and std threads, no async runtime: each generator thread owns a group of
//! connections and drives them in rounds — queue `depth` requests on every connection of the
//! group, write each connection's requests with one `write`, then read every reply — so the
//! generator costs about two system calls per connection per round and the server sees many
//! connections ready at once. With a rate limit ([`Spec::rate_per_conn`]) the thread instead
//! serves its connections one at a time on a fixed schedule (many mostly idle connections).
//!
//! Every reply is parsed and checked: a value (or its flags, or its length) other than the one
//! written for that key, an error reply, or a reply that does not parse fails the whole run
//! with a message; only a miss is a number. Each key's value is a pure function of the key
//! (`Dataset`), so any connection can validate what any other wrote without shared state.

pub mod server;

use hdrhistogram::Histogram;
use memcached_rs::protocol::binary::Header;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Barrier, OnceLock};
use std::time::{Duration, Instant};

pub type BenchResult<T> = Result<T, String>;

/// Adds what was being done to an I/O error, so a failure names its step.
pub trait Context<T> {
    fn context(self, what: &str) -> BenchResult<T>;
}

impl<T> Context<T> for io::Result<T> {
    fn context(self, what: &str) -> BenchResult<T> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

/// The wire protocol of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// `get k1 k2 …` / `set k flags 0 len`.
    Text,
    /// `mg k f v` / `ms k len F<flags>`.
    Meta,
    /// Binary GET (GETQ… GET for a multi-get) / SET.
    Binary,
}

impl Protocol {
    pub fn parse(name: &str) -> Option<Protocol> {
        match name {
            "text" => Some(Protocol::Text),
            "meta" => Some(Protocol::Meta),
            "binary" => Some(Protocol::Binary),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Protocol::Text => "text",
            Protocol::Meta => "meta",
            Protocol::Binary => "binary",
        }
    }
}

/// SplitMix64: tiny, fast, and good enough to make keys, sizes and contents look random.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A deterministic random stream.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        splitmix64(&mut self.0)
    }

    /// Uniform in `0..n` (multiply-shift: no division, negligible bias).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `threshold / 2^64` (see [`probability_threshold`]).
    pub fn chance(&mut self, threshold: u64) -> bool {
        self.next_u64() < threshold
    }
}

/// `p` in `[0, 1]` as a threshold for [`Rng::chance`].
pub fn probability_threshold(p: f64) -> u64 {
    if p >= 1.0 {
        u64::MAX
    } else {
        (p.max(0.0) * 18_446_744_073_709_551_616.0) as u64
    }
}

/// Bytes of random data values are cut from (plus the largest value).
const POOL_LEN: usize = 1 << 16;

/// A key space and the value of every key in it.
///
/// Key `i` is `<prefix>:<i as 10 digits>`. Its value is `len(i)` bytes (fixed, or uniform in
/// `min_len..=max_len` by a hash of `i`): the 8 bytes of `i` (little-endian, so a server that
/// mixes up items returns the wrong index) then a slice of a random pool at an offset hashed
/// from `i`, `\r` and `\n` included, so a server that is not binary-safe shows up too. Its flags
/// are a hash of `i`. Building or checking a value is a copy or a compare, nothing more.
pub struct Dataset {
    pub prefix: String,
    pub keys: u64,
    pub min_len: usize,
    pub max_len: usize,
    seed: u64,
    pool: Vec<u8>,
}

impl Dataset {
    pub fn new(prefix: &str, keys: u64, min_len: usize, max_len: usize) -> Dataset {
        assert!(min_len <= max_len && keys > 0, "bad dataset {prefix}");
        // FNV-1a of the prefix: each dataset gets its own contents.
        let mut seed = prefix.bytes().fold(0xCBF2_9CE4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
        });
        let dataset_seed = seed;
        let mut pool = Vec::with_capacity(POOL_LEN + max_len + 8);
        while pool.len() < POOL_LEN + max_len {
            pool.extend_from_slice(&splitmix64(&mut seed).to_le_bytes());
        }
        Dataset {
            prefix: prefix.to_string(),
            keys,
            min_len,
            max_len,
            seed: dataset_seed,
            pool,
        }
    }

    fn hash(&self, index: u64) -> u64 {
        let mut state = index ^ self.seed;
        splitmix64(&mut state)
    }

    pub fn value_len(&self, index: u64) -> usize {
        let span = (self.max_len - self.min_len + 1) as u64;
        self.min_len + (self.hash(index) % span) as usize
    }

    /// Client flags (32 bits: memcached 1.6 keeps all of them).
    pub fn flags(&self, index: u64) -> u32 {
        (self.hash(index) >> 32) as u32
    }

    fn pool_offset(&self, index: u64) -> usize {
        (self.hash(index).rotate_left(17) % POOL_LEN as u64) as usize
    }

    /// Appends key `index`.
    pub fn push_key(&self, index: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(self.prefix.as_bytes());
        out.push(b':');
        let mut digits = [b'0'; 10];
        let mut n = index;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
        out.extend_from_slice(&digits);
    }

    /// The length of every key (they are fixed-width).
    pub fn key_len(&self) -> usize {
        self.prefix.len() + 11
    }

    /// Appends the value of key `index`.
    pub fn push_value(&self, index: u64, out: &mut Vec<u8>) {
        let len = self.value_len(index);
        let head = len.min(8);
        out.extend_from_slice(&index.to_le_bytes()[..head]);
        let offset = self.pool_offset(index);
        out.extend_from_slice(&self.pool[offset..offset + len - head]);
    }

    /// Whether `got` is the value of key `index`.
    pub fn value_matches(&self, index: u64, got: &[u8]) -> bool {
        let len = self.value_len(index);
        let head = len.min(8);
        let offset = self.pool_offset(index);
        got.len() == len
            && got[..head] == index.to_le_bytes()[..head]
            && got[head..] == self.pool[offset..offset + len - head]
    }

    /// Sum of all value lengths (what a prefill writes).
    pub fn total_value_bytes(&self) -> u64 {
        (0..self.keys).map(|i| self.value_len(i) as u64).sum()
    }

    pub fn describe_values(&self) -> String {
        if self.min_len == self.max_len {
            format!("{} B", self.min_len)
        } else {
            format!("{}-{} B uniform", self.min_len, self.max_len)
        }
    }
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Parses an unsigned decimal field of a reply.
fn parse_decimal(field: &[u8]) -> Option<u64> {
    if field.is_empty() || field.len() > 19 {
        return None;
    }
    field.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })
}

/// What a run (or part of one) did.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tally {
    /// Requests answered (a multi-get is one request).
    pub requests: u64,
    pub gets: u64,
    pub sets: u64,
    /// Keys asked for by the gets.
    pub keys: u64,
    pub hits: u64,
    pub misses: u64,
}

impl Tally {
    pub fn add(&mut self, other: &Tally) {
        self.requests += other.requests;
        self.gets += other.gets;
        self.sets += other.sets;
        self.keys += other.keys;
        self.hits += other.hits;
        self.misses += other.misses;
    }
}

/// A latency histogram in nanoseconds, 1 ns to 100 s at 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Get,
    Set,
}

/// A request written (or queued) whose reply has not been read yet.
#[derive(Clone, Copy, Debug)]
struct Pending {
    protocol: Protocol,
    op: Op,
    /// Its keys are `Conn::keys[first..first + count]`.
    first: usize,
    count: usize,
}

/// Binary protocol opcodes used here.
const BIN_GET: u8 = 0x00;
const BIN_SET: u8 = 0x01;
const BIN_GETQ: u8 = 0x09;
const BIN_HEADER: usize = 24;

/// One client connection: a request buffer, a reply buffer, and the requests in flight.
pub struct Conn {
    stream: TcpStream,
    out: Vec<u8>,
    inbuf: Vec<u8>,
    pos: usize,
    end: usize,
    pending: Vec<Pending>,
    keys: Vec<u64>,
    /// When the queued requests were written.
    sent_at: Instant,
    scratch: Vec<u8>,
}

impl Conn {
    pub fn connect(addr: SocketAddr) -> BenchResult<Conn> {
        let stream = TcpStream::connect(addr).context(&format!("connecting to {addr}"))?;
        stream.set_nodelay(true).context("setting TCP_NODELAY")?;
        // A hung server fails the run instead of stalling it.
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .context("setting a read timeout")?;
        Ok(Conn {
            stream,
            out: Vec::with_capacity(16 * 1024),
            inbuf: vec![0; 64 * 1024],
            pos: 0,
            end: 0,
            pending: Vec::new(),
            keys: Vec::new(),
            sent_at: Instant::now(),
            scratch: Vec::with_capacity(64),
        })
    }

    /// Queues a get of `keys` (one key: a plain get; several: a multi-get — `get k1 k2…`, that
    /// many `mg`s, or GETQs ended by a GET).
    pub fn queue_get(&mut self, protocol: Protocol, ds: &Dataset, keys: &[u64]) {
        assert!(!keys.is_empty());
        let first = self.keys.len();
        self.keys.extend_from_slice(keys);
        let out = &mut self.out;
        match protocol {
            Protocol::Text => {
                out.extend_from_slice(b"get");
                for &k in keys {
                    out.push(b' ');
                    ds.push_key(k, out);
                }
                out.extend_from_slice(b"\r\n");
            }
            Protocol::Meta => {
                for &k in keys {
                    out.extend_from_slice(b"mg ");
                    ds.push_key(k, out);
                    out.extend_from_slice(b" f v\r\n");
                }
            }
            Protocol::Binary => {
                for (j, &k) in keys.iter().enumerate() {
                    let opcode = if j + 1 == keys.len() {
                        BIN_GET
                    } else {
                        BIN_GETQ
                    };
                    push_binary_header(out, opcode, ds.key_len(), 0, 0, j as u32);
                    ds.push_key(k, out);
                }
            }
        }
        self.pending.push(Pending {
            protocol,
            op: Op::Get,
            first,
            count: keys.len(),
        });
    }

    /// Queues a set of key `index` to its value, flags from the dataset, no expiry.
    pub fn queue_set(&mut self, protocol: Protocol, ds: &Dataset, index: u64) {
        let first = self.keys.len();
        self.keys.push(index);
        let len = ds.value_len(index);
        let out = &mut self.out;
        match protocol {
            Protocol::Text => {
                out.extend_from_slice(b"set ");
                ds.push_key(index, out);
                out.push(b' ');
                push_decimal(out, u64::from(ds.flags(index)));
                out.extend_from_slice(b" 0 ");
                push_decimal(out, len as u64);
                out.extend_from_slice(b"\r\n");
                ds.push_value(index, out);
                out.extend_from_slice(b"\r\n");
            }
            Protocol::Meta => {
                out.extend_from_slice(b"ms ");
                ds.push_key(index, out);
                out.push(b' ');
                push_decimal(out, len as u64);
                out.extend_from_slice(b" F");
                push_decimal(out, u64::from(ds.flags(index)));
                out.extend_from_slice(b"\r\n");
                ds.push_value(index, out);
                out.extend_from_slice(b"\r\n");
            }
            Protocol::Binary => {
                push_binary_header(out, BIN_SET, ds.key_len(), 8, len, 0);
                out.extend_from_slice(&ds.flags(index).to_be_bytes());
                out.extend_from_slice(&0u32.to_be_bytes());
                ds.push_key(index, out);
                ds.push_value(index, out);
            }
        }
        self.pending.push(Pending {
            protocol,
            op: Op::Set,
            first,
            count: 1,
        });
    }

    /// Writes every queued request (one `write` unless the socket buffer fills) and notes the
    /// time: the replies' latency counts from here.
    pub fn flush(&mut self) -> BenchResult<()> {
        self.sent_at = Instant::now();
        self.stream
            .write_all(&self.out)
            .context("sending requests")?;
        self.out.clear();
        Ok(())
    }

    /// Reads and checks the reply of every request written, counting them into `tally` and
    /// their latencies into `histogram`.
    pub fn receive_all(
        &mut self,
        ds: &Dataset,
        tally: &mut Tally,
        histogram: &mut Histogram<u64>,
    ) -> BenchResult<()> {
        for i in 0..self.pending.len() {
            let p = self.pending[i];
            match (p.op, p.protocol) {
                (Op::Get, Protocol::Text) => self.receive_text_get(ds, p, tally)?,
                (Op::Get, Protocol::Meta) => self.receive_meta_get(ds, p, tally)?,
                (Op::Get, Protocol::Binary) => self.receive_binary_get(ds, p, tally)?,
                (Op::Set, Protocol::Text) => self.expect_line(b"STORED", "set")?,
                (Op::Set, Protocol::Meta) => self.expect_line(b"HD", "ms")?,
                (Op::Set, Protocol::Binary) => self.receive_binary_set()?,
            }
            match p.op {
                Op::Get => {
                    tally.gets += 1;
                    tally.keys += p.count as u64;
                }
                Op::Set => tally.sets += 1,
            }
            tally.requests += 1;
            let nanos = self.sent_at.elapsed().as_nanos();
            histogram.saturating_record(u64::try_from(nanos).unwrap_or(u64::MAX));
        }
        self.pending.clear();
        self.keys.clear();
        Ok(())
    }

    /// Reads more of the reply stream, making room for at least `want` unread bytes.
    fn fill(&mut self, want: usize) -> BenchResult<()> {
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
        } else if self.pos > 0 && (self.inbuf.len() - self.pos < want.max(4096)) {
            self.inbuf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        if self.inbuf.len() - self.end < 4096 || self.inbuf.len() < want {
            let len = (self.inbuf.len() * 2).max(want);
            self.inbuf.resize(len, 0);
        }
        let n = self
            .stream
            .read(&mut self.inbuf[self.end..])
            .context("reading replies")?;
        if n == 0 {
            return Err("the server closed the connection".into());
        }
        self.end += n;
        Ok(())
    }

    /// The next reply line without its `\r\n`, as a range of `inbuf` (consumed).
    fn line(&mut self) -> BenchResult<(usize, usize)> {
        let mut scanned = 0;
        loop {
            let unread = &self.inbuf[self.pos + scanned..self.end];
            if let Some(at) = unread.iter().position(|&b| b == b'\n') {
                let (start, newline) = (self.pos, self.pos + scanned + at);
                self.pos = newline + 1;
                if newline == start || self.inbuf[newline - 1] != b'\r' {
                    let text = String::from_utf8_lossy(&self.inbuf[start..=newline]);
                    return Err(format!("reply line not ended by \\r\\n: {text:?}"));
                }
                return Ok((start, newline - 1));
            }
            scanned = self.end - self.pos;
            if scanned > 64 * 1024 {
                return Err("a reply line longer than 64 KB".into());
            }
            self.fill(scanned + 1)?;
        }
    }

    /// The next `n` bytes, as a range of `inbuf` (consumed).
    fn take(&mut self, n: usize) -> BenchResult<(usize, usize)> {
        while self.end - self.pos < n {
            self.fill(n)?;
        }
        let start = self.pos;
        self.pos += n;
        Ok((start, start + n))
    }

    fn line_error(&self, (s, e): (usize, usize), what: &str) -> String {
        format!(
            "unexpected reply to {what}: {:?}",
            String::from_utf8_lossy(&self.inbuf[s..e])
        )
    }

    fn expect_line(&mut self, expected: &[u8], what: &str) -> BenchResult<()> {
        let line = self.line()?;
        if &self.inbuf[line.0..line.1] != expected {
            return Err(self.line_error(line, what));
        }
        Ok(())
    }

    /// Reads `len` bytes of data and its `\r\n` and checks them against key `index`'s value.
    fn check_data(&mut self, ds: &Dataset, index: u64, flags: u64, len: usize) -> BenchResult<()> {
        let (s, e) = self.take(len + 2)?;
        let data = &self.inbuf[s..e];
        if flags != u64::from(ds.flags(index))
            || !ds.value_matches(index, &data[..len])
            || &data[len..] != b"\r\n"
        {
            return Err(self.wrong_value(ds, index, flags, len));
        }
        Ok(())
    }

    fn wrong_value(&mut self, ds: &Dataset, index: u64, flags: u64, got_len: usize) -> String {
        self.scratch.clear();
        ds.push_key(index, &mut self.scratch);
        format!(
            "WRONG VALUE for {}: got flags {flags}, {} bytes; wrote flags {}, {} bytes (if \
             those match, the contents differ)",
            String::from_utf8_lossy(&self.scratch),
            got_len,
            ds.flags(index),
            ds.value_len(index)
        )
    }

    /// `VALUE <key> <flags> <bytes>` blocks for the hits, in request order, then `END`.
    fn receive_text_get(&mut self, ds: &Dataset, p: Pending, tally: &mut Tally) -> BenchResult<()> {
        let (mut next, last) = (p.first, p.first + p.count);
        loop {
            let line = self.line()?;
            let text = &self.inbuf[line.0..line.1];
            if text == b"END" {
                break;
            }
            let mut fields = text.split(|&b| b == b' ');
            let (Some(b"VALUE"), Some(key), Some(flags), Some(len), None) = (
                fields.next(),
                fields.next(),
                fields.next(),
                fields.next(),
                fields.next(),
            ) else {
                return Err(self.line_error(line, "get"));
            };
            let (Some(flags), Some(len)) = (parse_decimal(flags), parse_decimal(len)) else {
                return Err(self.line_error(line, "get"));
            };
            // Hits come in request order: skip the keys that missed up to this one.
            loop {
                if next == last {
                    return Err(self.line_error(line, "get (a key not asked for, or out of order)"));
                }
                self.scratch.clear();
                ds.push_key(self.keys[next], &mut self.scratch);
                next += 1;
                if self.scratch == key {
                    break;
                }
                tally.misses += 1;
            }
            self.check_data(ds, self.keys[next - 1], flags, len as usize)?;
            tally.hits += 1;
        }
        tally.misses += (last - next) as u64;
        Ok(())
    }

    /// One `VA <len> f<flags>` (and data) or `EN` per key.
    fn receive_meta_get(&mut self, ds: &Dataset, p: Pending, tally: &mut Tally) -> BenchResult<()> {
        for j in p.first..p.first + p.count {
            let line = self.line()?;
            let text = &self.inbuf[line.0..line.1];
            if text == b"EN" {
                tally.misses += 1;
                continue;
            }
            let mut fields = text.split(|&b| b == b' ');
            let (Some(b"VA"), Some(len), Some(flags), None) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return Err(self.line_error(line, "mg"));
            };
            let flags = flags.strip_prefix(b"f").and_then(parse_decimal);
            let (Some(len), Some(flags)) = (parse_decimal(len), flags) else {
                return Err(self.line_error(line, "mg"));
            };
            self.check_data(ds, self.keys[j], flags, len as usize)?;
            tally.hits += 1;
        }
        Ok(())
    }

    /// A binary reply header and body: (opcode, status, opaque, extras, key, value ranges).
    fn binary_reply(&mut self) -> BenchResult<BinaryReply> {
        let (s, _) = self.take(BIN_HEADER)?;
        let h = &self.inbuf[s..s + BIN_HEADER];
        let reply = BinaryReply {
            magic: h[0],
            opcode: h[1],
            key_len: usize::from(u16::from_be_bytes([h[2], h[3]])),
            extras_len: usize::from(h[4]),
            status: u16::from_be_bytes([h[6], h[7]]),
            body_len: u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as usize,
            opaque: u32::from_be_bytes([h[12], h[13], h[14], h[15]]),
            body: 0,
        };
        if reply.magic != 0x81 || reply.extras_len + reply.key_len > reply.body_len {
            return Err(format!("malformed binary reply header {h:02x?}"));
        }
        let (body, _) = self.take(reply.body_len)?;
        Ok(BinaryReply { body, ..reply })
    }

    fn binary_error(&self, r: &BinaryReply, what: &str) -> String {
        let body = &self.inbuf[r.body..r.body + r.body_len];
        format!(
            "unexpected binary reply to {what}: opcode {:#04x} status {:#06x} opaque {} body {:?}",
            r.opcode,
            r.status,
            r.opaque,
            String::from_utf8_lossy(body)
        )
    }

    /// GETQ replies (hits only) in request order, then the GET's reply (hit or miss).
    fn receive_binary_get(
        &mut self,
        ds: &Dataset,
        p: Pending,
        tally: &mut Tally,
    ) -> BenchResult<()> {
        let mut next = 0u32;
        let last = (p.count - 1) as u32;
        loop {
            let r = self.binary_reply()?;
            let expected_opcode = if r.opaque == last { BIN_GET } else { BIN_GETQ };
            if r.opaque < next || r.opaque > last || r.opcode != expected_opcode {
                return Err(self.binary_error(&r, "get"));
            }
            tally.misses += u64::from(r.opaque - next);
            next = r.opaque + 1;
            match r.status {
                0 if r.extras_len == 4 => {
                    let index = self.keys[p.first + r.opaque as usize];
                    let e = &self.inbuf[r.body..r.body + 4];
                    let flags = u64::from(u32::from_be_bytes([e[0], e[1], e[2], e[3]]));
                    let value_at = r.body + r.extras_len + r.key_len;
                    let value = &self.inbuf[value_at..r.body + r.body_len];
                    if flags != u64::from(ds.flags(index)) || !ds.value_matches(index, value) {
                        let got_len = value.len();
                        return Err(self.wrong_value(ds, index, flags, got_len));
                    }
                    tally.hits += 1;
                }
                1 if r.opaque == last => tally.misses += 1, // key not found: the GET only
                _ => return Err(self.binary_error(&r, "get")),
            }
            if r.opaque == last {
                return Ok(());
            }
        }
    }

    fn receive_binary_set(&mut self) -> BenchResult<()> {
        let r = self.binary_reply()?;
        if r.opcode != BIN_SET || r.status != 0 {
            return Err(self.binary_error(&r, "set"));
        }
        Ok(())
    }

    /// Sends a one-line command (`version`) and returns its one-line reply.
    pub fn command_line(&mut self, request: &[u8]) -> BenchResult<String> {
        self.stream
            .write_all(request)
            .context("sending a command")?;
        let (s, e) = self.line()?;
        Ok(String::from_utf8_lossy(&self.inbuf[s..e]).into_owned())
    }
}

struct BinaryReply {
    magic: u8,
    opcode: u8,
    key_len: usize,
    extras_len: usize,
    status: u16,
    body_len: usize,
    opaque: u32,
    /// Where the body starts in `inbuf`.
    body: usize,
}

fn push_binary_header(
    out: &mut Vec<u8>,
    opcode: u8,
    key_len: usize,
    extras_len: usize,
    value_len: usize,
    opaque: u32,
) {
    let bodylen = (extras_len + key_len + value_len) as u32;
    Header::request(opcode, key_len as u16, extras_len as u8, bodylen, opaque, 0).write(out);
}

/// What to run: the shape of the load.
#[derive(Clone, Debug)]
pub struct Spec {
    pub protocol: Protocol,
    /// Generator threads.
    pub threads: usize,
    /// Connections per thread.
    pub conns_per_thread: usize,
    /// Requests in flight per connection (1: no pipelining).
    pub depth: usize,
    /// Keys per get request.
    pub multi: usize,
    /// Fraction of requests that are gets (the rest are sets).
    pub get_ratio: f64,
    /// Requests per second per connection, or as fast as replies come (`None`).
    pub rate_per_conn: Option<f64>,
}

impl Spec {
    pub fn connections(&self) -> usize {
        self.threads * self.conns_per_thread
    }

    pub fn describe(&self) -> String {
        let mix = match self.get_ratio {
            r if r >= 1.0 => "100% get".to_string(),
            r if r <= 0.0 => "100% set".to_string(),
            r => format!("{:.0}% get / {:.0}% set", r * 100.0, (1.0 - r) * 100.0),
        };
        let multi = if self.multi > 1 {
            format!(", {}-key gets", self.multi)
        } else {
            String::new()
        };
        let rate = self
            .rate_per_conn
            .map_or(String::new(), |r| format!(", {r} req/s per conn"));
        format!(
            "{}, {mix}{multi}, {} threads x {} conns, depth {}{rate}",
            self.protocol.name(),
            self.threads,
            self.conns_per_thread,
            self.depth
        )
    }
}

/// The result of [`run`]. The connections are still open: drop them after sampling the server.
pub struct Measured {
    pub tally: Tally,
    pub histogram: Histogram<u64>,
    /// From the start signal until the last thread finished.
    pub secs: f64,
    /// The generator's own CPU time (user + system, all threads) over the run.
    pub generator_cpu_secs: f64,
    pub conns: Vec<Conn>,
}

/// This process's CPU time (all threads), in seconds.
pub fn own_cpu_secs() -> f64 {
    // SAFETY: getrusage fills the struct we pass; RUSAGE_SELF is always valid.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// Runs `spec` against `addr` for `duration` on keys of `ds`.
///
/// Every thread connects first; then `at_start` runs (sample the server here), the clock
/// starts, and the threads go until `duration` has passed, finishing their round in flight.
pub fn run(
    addr: SocketAddr,
    ds: &Dataset,
    spec: &Spec,
    duration: Duration,
    seed: u64,
    at_start: impl FnOnce(),
) -> BenchResult<Measured> {
    let connected = Barrier::new(spec.threads + 1);
    let go = Barrier::new(spec.threads + 1);
    let start: OnceLock<Instant> = OnceLock::new();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..spec.threads)
            .map(|t| {
                let (connected, go, start) = (&connected, &go, &start);
                scope.spawn(move || {
                    let conns: BenchResult<Vec<Conn>> = (0..spec.conns_per_thread)
                        .map(|_| Conn::connect(addr))
                        .collect();
                    // Always meet the barriers, or the others would wait forever.
                    connected.wait();
                    go.wait();
                    let started = *start.get().expect("start set before go");
                    let mut conns = conns?;
                    let rng = Rng::new(seed ^ (t as u64).wrapping_mul(0xA24B_AED4_963E_E407));
                    let mut worker = Worker {
                        ds,
                        spec,
                        rng,
                        keys: Vec::with_capacity(spec.multi),
                        get_threshold: probability_threshold(spec.get_ratio),
                        tally: Tally::default(),
                        histogram: new_histogram(),
                    };
                    let deadline = started + duration;
                    match spec.rate_per_conn {
                        None => worker.closed_loop(&mut conns, deadline)?,
                        Some(rate) => {
                            // Threads start a fraction of their interval apart.
                            let interval = 1.0 / (rate * spec.conns_per_thread as f64);
                            let offset = interval * t as f64 / spec.threads as f64;
                            worker.paced(&mut conns, rate, started, offset, deadline)?
                        }
                    }
                    Ok((worker.tally, worker.histogram, conns))
                })
            })
            .collect();
        connected.wait();
        at_start();
        let cpu_before = own_cpu_secs();
        let started = Instant::now();
        start.set(started).expect("set once");
        go.wait();
        let mut measured = Measured {
            tally: Tally::default(),
            histogram: new_histogram(),
            secs: 0.0,
            generator_cpu_secs: 0.0,
            conns: Vec::new(),
        };
        let mut first_error = None;
        for handle in handles {
            match handle.join().expect("generator thread panicked") {
                Ok((tally, histogram, conns)) => {
                    measured.tally.add(&tally);
                    measured
                        .histogram
                        .add(&histogram)
                        .expect("histograms of the same bounds");
                    measured.conns.extend(conns);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        measured.secs = started.elapsed().as_secs_f64();
        measured.generator_cpu_secs = own_cpu_secs() - cpu_before;
        match first_error {
            Some(e) => Err(e),
            None => Ok(measured),
        }
    })
}

/// One generator thread's state.
struct Worker<'a> {
    ds: &'a Dataset,
    spec: &'a Spec,
    rng: Rng,
    keys: Vec<u64>,
    get_threshold: u64,
    tally: Tally,
    histogram: Histogram<u64>,
}

impl Worker<'_> {
    /// Queues `depth` random requests on `conn`.
    fn queue_round(&mut self, conn: &mut Conn) {
        for _ in 0..self.spec.depth {
            if self.rng.chance(self.get_threshold) {
                self.keys.clear();
                for _ in 0..self.spec.multi {
                    self.keys.push(self.rng.below(self.ds.keys));
                }
                conn.queue_get(self.spec.protocol, self.ds, &self.keys);
            } else {
                let index = self.rng.below(self.ds.keys);
                conn.queue_set(self.spec.protocol, self.ds, index);
            }
        }
    }

    /// As fast as the server answers: write a round to every connection, then read them all.
    fn closed_loop(&mut self, conns: &mut [Conn], deadline: Instant) -> BenchResult<()> {
        loop {
            for conn in conns.iter_mut() {
                self.queue_round(conn);
                conn.flush()?;
            }
            for conn in conns.iter_mut() {
                conn.receive_all(self.ds, &mut self.tally, &mut self.histogram)?;
            }
            if Instant::now() >= deadline {
                return Ok(());
            }
        }
    }

    /// `rate` rounds per second on each connection, the thread's connections taking turns on
    /// a fixed schedule (evenly spaced; a late thread catches up rather than skipping).
    fn paced(
        &mut self,
        conns: &mut [Conn],
        rate: f64,
        started: Instant,
        offset_secs: f64,
        deadline: Instant,
    ) -> BenchResult<()> {
        let interval = 1.0 / (rate * conns.len() as f64);
        for n in 0u64.. {
            let due = started + Duration::from_secs_f64(offset_secs + n as f64 * interval);
            if due >= deadline {
                break;
            }
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            let conn = &mut conns[(n % conns.len() as u64) as usize];
            self.queue_round(conn);
            conn.flush()?;
            conn.receive_all(self.ds, &mut self.tally, &mut self.histogram)?;
        }
        Ok(())
    }
}

/// Writes every key of `ds` (text `set`, replies checked) over `connections` connections.
pub fn prefill(addr: SocketAddr, ds: &Dataset, connections: u64) -> BenchResult<()> {
    const BATCH: u64 = 256;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..connections)
            .map(|c| {
                scope.spawn(move || -> BenchResult<()> {
                    let mut conn = Conn::connect(addr)?;
                    let (mut tally, mut histogram) = (Tally::default(), new_histogram());
                    let batches = ds.keys.div_ceil(BATCH);
                    for b in (c..batches).step_by(connections as usize) {
                        for index in b * BATCH..((b + 1) * BATCH).min(ds.keys) {
                            conn.queue_set(Protocol::Text, ds, index);
                        }
                        conn.flush()?;
                        conn.receive_all(ds, &mut tally, &mut histogram)?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().expect("prefill thread panicked"))
    })
}

/// Latency percentiles of a histogram, in microseconds.
pub fn percentile_us(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1000.0
}

/// The median of `values` (NaN when empty).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// A number from the environment, or `default` when unset (or, with a warning, unparsable).
pub fn env_number(name: &str, default: f64) -> f64 {
    match std::env::var(name) {
        Ok(v) => v.parse().unwrap_or_else(|_| {
            eprintln!("{name}={v:?} is not a number; using {default}");
            default
        }),
        Err(_) => default,
    }
}
