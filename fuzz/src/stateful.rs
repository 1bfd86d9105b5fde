//! The `conn_stateful` target: a command stream decoded from the fuzz input, run through
//! [`crate::driver::Connection`]s (the path `net::Conn` takes) against one real [`Server`], and
//! checked against a model of the cache.
//!
//! The input is read as a sequence of choices (see [`Src`]). Each choice makes one operation
//! over a small key space, in one of the three protocols:
//!
//! - well-formed operations (text, meta, binary) whose reply the model predicts: a value read
//!   is exactly the last value stored for that key, incr/decr never lose an increment, CAS ids
//!   do not change without a write, and every reply has the shape its protocol promises;
//! - malformed operations from templates (bad numbers, bad data chunks, bad flags, bad frames):
//!   their replies must parse, and the key they name becomes unknown to the model;
//! - raw bytes: anything goes, after which the model stops predicting values (it still checks
//!   shapes) for the rest of the run.
//!
//! Well-formed operations are pipelined: consecutive ones go to the server as one buffer, cut
//! into reads at points the input chooses, exactly as a client's pipelined requests arrive.
//! The cache is big enough that nothing is evicted and no item expires during a run (stores
//! use exptime 0, a day ahead, or a time already past).

use std::collections::VecDeque;

use memcached_rs::config::Settings;
use memcached_rs::handler::Handler;
use memcached_rs::protocol::base64;
use memcached_rs::protocol::binary;
use memcached_rs::server::Server;
use memcached_rs::stats::ThreadStats;

use crate::driver::{Connection, Fate};
use crate::replies::{esc, split_binary, split_text, BinReply, TextReply};

/// The settings of the server under test: memcached's defaults (64 MB, so a run's few keys
/// never cause an eviction) with a smaller hash table, which is cheaper to build per run.
pub fn settings() -> Settings {
    Settings {
        hashpower_init: 12,
        shutdown_command: false,
        ..Settings::default()
    }
}

/// The fuzz input, read as choices; past its end every choice is 0.
#[derive(Debug)]
pub struct Src<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Src<'a> {
    /// Reads `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Src { data, pos: 0 }
    }
    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }
    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    fn below(&mut self, n: usize) -> usize {
        usize::from(self.u8()) % n
    }
    fn chance(&mut self, in_256: u8) -> bool {
        self.u8() < in_256
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn u64(&mut self) -> u64 {
        (u64::from(self.u32()) << 32) | u64::from(self.u32())
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.u8()).collect()
    }
}

const LONG_KEY: [u8; 250] = [b'k'; 250];
/// The key space. The last one is as long as a key may be (and too long for a base64 key).
const KEYS: [&[u8]; 4] = [b"a", b"b", b"ctr", &LONG_KEY];

fn key_name(k: usize) -> &'static [u8] {
    KEYS[k]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    Text,
    Meta,
    Binary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Set,
    Add,
    Replace,
    Append,
    Prepend,
    Cas,
}

/// An exptime as sent, and whether it means "already expired".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Exp {
    value: i64,
    expired: bool,
}

fn exp(src: &mut Src<'_>, binary: bool) -> Exp {
    match src.below(10) {
        0..=5 => Exp {
            value: 0,
            expired: false,
        },
        6 | 7 => Exp {
            value: 86_400,
            expired: false,
        },
        8 if !binary => Exp {
            value: -1,
            expired: true,
        },
        // An absolute time in 2001: long past.
        _ => Exp {
            value: 1_000_000_000,
            expired: true,
        },
    }
}

const ALPHABET: &[u8] = b"abcxyz XYZ\r\n019-+";

fn value(src: &mut Src<'_>) -> Vec<u8> {
    match src.below(12) {
        0..=2 => {
            let n = match src.below(5) {
                0 => u64::from(src.u8()),
                1 => u64::MAX - u64::from(src.u8()),
                2 => src.u64(),
                3 => u64::from(src.u16()),
                _ => 0,
            };
            n.to_string().into_bytes()
        }
        3 => Vec::new(),
        4 => {
            // Spread over the slab classes.
            let len = 100 + usize::from(src.u16()) % 30_000;
            pattern(len, src.u8())
        }
        5 if src.chance(24) => {
            // Above the largest slab chunk: a chained item.
            let len = 520_000 + usize::from(src.u16());
            pattern(len, src.u8())
        }
        _ => {
            let len = src.below(40);
            (0..len)
                .map(|_| ALPHABET[src.below(ALPHABET.len())])
                .collect()
        }
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ALPHABET[(i + usize::from(seed)) % ALPHABET.len()])
        .collect()
}

fn flags(src: &mut Src<'_>) -> u32 {
    match src.below(6) {
        0..=2 => 0,
        3 => 1,
        4 => u32::MAX,
        _ => src.u32(),
    }
}

/// What one well-formed operation means, protocol aside.
#[derive(Debug, Clone)]
enum Sem {
    Store {
        mode: Mode,
        key: usize,
        data: Vec<u8>,
        flags: u32,
        exp: Exp,
        cas: u64,
    },
    Get {
        keys: Vec<usize>,
        touch: Option<Exp>,
    },
    Delete {
        key: usize,
        cas: Option<u64>,
    },
    Arith {
        key: usize,
        incr: bool,
        delta: u64,
        vivify: Option<u64>,
    },
    Flush,
    /// A command that changes no item (version, stats, noop…): only its shape is checked.
    Other(&'static str),
}

/// Protocol details of one operation, for rendering and for reading its reply.
#[derive(Debug, Clone, Default)]
struct Style {
    /// text `noreply`, meta `q`, binary quiet opcodes.
    quiet: bool,
    /// text: `gets`/`gats`; meta: `c`.
    want_cas: bool,
    /// meta: `v`; binary: not TOUCH.
    want_value: bool,
    /// meta: `f`.
    want_flags: bool,
    /// meta: `k`; binary: GETK/GATK.
    want_key: bool,
    /// meta: `s`.
    want_size: bool,
    /// meta: `t`.
    want_ttl: bool,
    /// meta: base64 key (`b`).
    b64: bool,
    /// meta: `O` opaque; binary opaque.
    opaque: Option<u32>,
    /// text `touch`, binary TOUCH: no value in the reply.
    touch_only: bool,
    /// meta ms: omit the mode flag for set.
    default_mode: bool,
}

#[derive(Debug, Clone)]
struct Op {
    proto: Proto,
    sem: Sem,
    style: Style,
    bytes: Vec<u8>,
}

/// What the model knows of an item's value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Data {
    Exact(Vec<u8>),
    /// A number written by incr/decr: its digits, then perhaps space padding (memcached
    /// rewrites a shorter number in place).
    Counter(u64),
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Item {
    data: Data,
    flags: Option<u32>,
    cas: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Known {
    Absent,
    Present(Item),
    Unknown,
}

/// Whether memcached's `safe_strtoull` accepts a value, when the model is sure.
enum Numeric {
    Yes(u64),
    No,
    Unsure,
}

fn numeric(data: &[u8]) -> Numeric {
    let digits = data.iter().take_while(|b| b.is_ascii_digit()).count();
    let rest = &data[digits..];
    if digits > 0 && digits <= 20 && rest.iter().all(|&b| b == b' ') {
        let s = std::str::from_utf8(&data[..digits]).expect("digits");
        return match s.parse::<u64>() {
            Ok(n) => Numeric::Yes(n),
            Err(_) => Numeric::Unsure,
        };
    }
    match data.first() {
        None => Numeric::No,
        Some(b) if b.is_ascii_alphabetic() => Numeric::No,
        _ => Numeric::Unsure,
    }
}

fn counter_matches(n: u64, data: &[u8]) -> bool {
    let digits = n.to_string();
    data.starts_with(digits.as_bytes()) && data[digits.len()..].iter().all(|&b| b == b' ')
}

/// How a store came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreRes {
    Stored,
    NotStored,
    Exists,
    NotFound,
}

/// A hit as a reply shows it; `None` fields were not asked for.
#[derive(Debug, Clone)]
struct Hit {
    data: Option<Vec<u8>>,
    size: Option<usize>,
    flags: Option<u32>,
    cas: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArithRes {
    Value(u64),
    NotFound,
    NonNumeric,
    /// A success shown without its value (`ma` without `v`).
    Hidden,
    /// A quiet success: nothing shown.
    Silent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeleteRes {
    Deleted,
    NotFound,
    Exists,
}

/// The whole run: server, connections, model.
pub struct Run<'s> {
    handler: Handler<'s>,
    text: Connection,
    binary: Connection,
    model: Vec<Known>,
    /// Raw bytes were sent: values are no longer predicted.
    tainted: bool,
    batch: Vec<Op>,
    next_opaque: u32,
    /// The last operations, for failure messages.
    history: VecDeque<String>,
}

impl std::fmt::Debug for Run<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run").field("model", &self.model).finish()
    }
}

/// Runs one fuzz input.
pub fn run(data: &[u8]) {
    let server = Server::new(settings()).expect("the cache's memory maps");
    let stats: std::sync::Arc<ThreadStats> = server.stats.register();
    let mut run = Run {
        handler: Handler::new(&server, &stats),
        text: Connection::new(),
        binary: Connection::new(),
        model: vec![Known::Absent; KEYS.len()],
        tainted: false,
        batch: Vec::new(),
        next_opaque: 1,
        history: VecDeque::new(),
    };
    let mut src = Src::new(data);
    let mut ops = 0;
    while !src.done() && ops < 400 {
        ops += 1;
        run.step(&mut src);
    }
    run.execute_batch(&mut src);
    run.final_sweep();
}

impl Run<'_> {
    fn step(&mut self, src: &mut Src<'_>) {
        match src.u8() {
            0..=89 => {
                let op = self.text_op(src);
                self.push(op, src);
            }
            90..=159 => {
                let op = self.meta_op(src);
                self.push(op, src);
            }
            160..=229 => {
                let op = self.binary_op(src);
                self.push(op, src);
            }
            230..=239 => {
                self.execute_batch(src);
                self.malformed(src);
            }
            240..=243 => {
                self.execute_batch(src);
                self.raw(src);
            }
            244..=247 => {
                // The client hangs up and reconnects (between requests).
                self.execute_batch(src);
                if src.chance(128) {
                    self.text = Connection::new();
                } else {
                    self.binary = Connection::new();
                }
            }
            _ => self.execute_batch(src),
        }
    }

    fn push(&mut self, op: Op, src: &mut Src<'_>) {
        let same_conn = self
            .batch
            .first()
            .is_none_or(|first| (first.proto == Proto::Binary) == (op.proto == Proto::Binary));
        if !same_conn || self.batch.len() >= 24 {
            self.execute_batch(src);
        }
        self.batch.push(op);
    }

    fn note(&mut self, what: String) {
        if self.history.len() == 12 {
            self.history.pop_front();
        }
        self.history.push_back(what);
    }

    fn fail(&self, op: &Op, reply: &[u8], why: &str) -> ! {
        let history: Vec<&str> = self.history.iter().map(String::as_str).collect();
        panic!(
            "conn_stateful invariant broken: {why}\n  op: {:?} {:?}\n  request: {}\n  reply: {}\n  model: {:?}\n  recent ops:\n    {}",
            op.proto,
            op.sem,
            esc(&op.bytes),
            esc(reply),
            self.model,
            history.join("\n    ")
        );
    }

    /// Sends the pipelined batch, in reads the input cuts, and checks each reply in order.
    fn execute_batch(&mut self, src: &mut Src<'_>) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        let binary = batch[0].proto == Proto::Binary;
        let all: Vec<u8> = batch
            .iter()
            .flat_map(|op| op.bytes.iter().copied())
            .collect();
        let conn = if binary {
            &mut self.binary
        } else {
            &mut self.text
        };
        conn.completions.clear();
        let mut sink = Vec::new();
        let mut at = 0;
        while at < all.len() {
            let cut = match src.below(4) {
                0 => 1 + src.below(16),
                1 => 1 + usize::from(src.u16()),
                _ => all.len(),
            };
            let end = (at + cut).min(all.len());
            if conn.feed(&self.handler, &all[at..end], &mut sink) == Fate::Closed {
                break;
            }
            at = end;
        }
        let completions = conn.completions.clone();
        let idle = conn.is_idle();
        let closed = conn.is_closed();
        if completions.len() != batch.len() || !idle {
            self.fail(
                &batch[batch.len().min(completions.len()).saturating_sub(1)],
                &sink,
                &format!(
                    "a pipeline of {} well-formed requests completed {} (connection idle: {idle}, closed: {})",
                    batch.len(),
                    completions.len(),
                    closed
                ),
            );
        }
        let mut start = 0;
        for (op, &end) in batch.iter().zip(&completions) {
            let reply = &sink[start..end];
            start = end;
            if self.tainted {
                self.model.iter_mut().for_each(|k| *k = Known::Unknown);
            }
            self.check(op, reply);
            self.note(format!("{:?} {}", op.proto, esc(&op.bytes)));
        }
        if start != sink.len() {
            self.fail(
                batch.last().expect("non-empty"),
                &sink[start..],
                "output after the last request's reply",
            );
        }
    }

    /// The known CAS id of a key, or a guess.
    fn cas_arg(&mut self, src: &mut Src<'_>, key: usize) -> u64 {
        let known = match &self.model[key] {
            Known::Present(item) => item.cas,
            _ => None,
        };
        match (src.below(4), known) {
            (0 | 1, Some(c)) => c,
            (2, Some(c)) => c.wrapping_add(1 + u64::from(src.u8())),
            _ => 1 + u64::from(src.u8() % 64),
        }
    }

    fn opaque(&mut self) -> u32 {
        self.next_opaque = self.next_opaque.wrapping_add(1);
        self.next_opaque
    }

    // ---------------------------------------------------------------------------------------
    // Generating operations.

    fn text_op(&mut self, src: &mut Src<'_>) -> Op {
        let mut style = Style::default();
        let key = src.below(KEYS.len());
        let k = key_name(key);
        let mut line = Vec::new();
        let sem = match src.below(16) {
            0..=4 => {
                let mode = match src.below(7) {
                    0 | 1 => Mode::Set,
                    2 => Mode::Add,
                    3 => Mode::Replace,
                    4 => Mode::Append,
                    5 => Mode::Prepend,
                    _ => Mode::Cas,
                };
                let cas = if mode == Mode::Cas {
                    // The CAS id must be the one the model knows now.
                    self.execute_batch(src);
                    self.cas_arg(src, key)
                } else {
                    0
                };
                let data = value(src);
                let f = flags(src);
                let e = exp(src, false);
                style.quiet = src.chance(40);
                let cmd: &[u8] = match mode {
                    Mode::Set => b"set",
                    Mode::Add => b"add",
                    Mode::Replace => b"replace",
                    Mode::Append => b"append",
                    Mode::Prepend => b"prepend",
                    Mode::Cas => b"cas",
                };
                line.extend_from_slice(cmd);
                line.push(b' ');
                line.extend_from_slice(k);
                line.extend_from_slice(format!(" {f} {} {}", e.value, data.len()).as_bytes());
                if mode == Mode::Cas {
                    line.extend_from_slice(format!(" {cas}").as_bytes());
                }
                if style.quiet {
                    line.extend_from_slice(b" noreply");
                }
                line.extend_from_slice(b"\r\n");
                line.extend_from_slice(&data);
                line.extend_from_slice(b"\r\n");
                Sem::Store {
                    mode,
                    key,
                    data,
                    flags: f,
                    exp: e,
                    cas,
                }
            }
            5..=8 => {
                let n = 1 + src.below(3);
                let mut keys = vec![key];
                keys.extend((1..n).map(|_| src.below(KEYS.len())));
                style.want_cas = src.chance(100);
                let touch = src.chance(50).then(|| exp(src, false));
                match (touch, style.want_cas) {
                    (None, false) => line.extend_from_slice(b"get"),
                    (None, true) => line.extend_from_slice(b"gets"),
                    (Some(e), false) => {
                        line.extend_from_slice(format!("gat {}", e.value).as_bytes())
                    }
                    (Some(e), true) => {
                        line.extend_from_slice(format!("gats {}", e.value).as_bytes())
                    }
                }
                for &k in &keys {
                    line.push(b' ');
                    line.extend_from_slice(key_name(k));
                }
                line.extend_from_slice(b"\r\n");
                Sem::Get { keys, touch }
            }
            9 => {
                style.quiet = src.chance(40);
                line.extend_from_slice(b"delete ");
                line.extend_from_slice(k);
                if style.quiet {
                    line.extend_from_slice(b" noreply");
                }
                line.extend_from_slice(b"\r\n");
                Sem::Delete { key, cas: None }
            }
            10 | 11 => {
                let incr = src.chance(160);
                let delta = delta(src);
                style.quiet = src.chance(30);
                line.extend_from_slice(if incr { b"incr " } else { b"decr " });
                line.extend_from_slice(k);
                line.extend_from_slice(format!(" {delta}").as_bytes());
                if style.quiet {
                    line.extend_from_slice(b" noreply");
                }
                line.extend_from_slice(b"\r\n");
                Sem::Arith {
                    key,
                    incr,
                    delta,
                    vivify: None,
                }
            }
            12 => {
                let e = exp(src, false);
                style.quiet = src.chance(40);
                line.extend_from_slice(b"touch ");
                line.extend_from_slice(k);
                line.extend_from_slice(format!(" {}", e.value).as_bytes());
                if style.quiet {
                    line.extend_from_slice(b" noreply");
                }
                line.extend_from_slice(b"\r\n");
                style.touch_only = true;
                Sem::Get {
                    keys: vec![key],
                    touch: Some(e),
                }
            }
            13 if src.chance(64) => {
                style.quiet = src.chance(80);
                line.extend_from_slice(match (style.quiet, src.chance(128)) {
                    (false, false) => b"flush_all\r\n".as_slice(),
                    (false, true) => b"flush_all 0\r\n",
                    (true, false) => b"flush_all noreply\r\n",
                    (true, true) => b"flush_all 0 noreply\r\n",
                });
                Sem::Flush
            }
            _ => {
                let (cmd, name): (&[u8], &'static str) = match src.below(11) {
                    0 => (b"version\r\n", "version"),
                    1 => (b"verbosity 0\r\n", "ok"),
                    2 => (b"verbosity 1 noreply\r\n", "silent"),
                    3 => (b"stats\r\n", "stats"),
                    4 => (b"stats settings\r\n", "stats"),
                    5 => (b"stats items\r\n", "stats"),
                    6 => (b"stats slabs\r\n", "stats"),
                    7 => (b"stats sizes\r\n", "stats"),
                    8 => (b"mn\r\n", "mn"),
                    9 => (b"lru_crawler metadump all\r\n", "metadump"),
                    _ => (b"stats detail dump\r\n", "detail"),
                };
                line.extend_from_slice(cmd);
                Sem::Other(name)
            }
        };
        Op {
            proto: Proto::Text,
            sem,
            style,
            bytes: line,
        }
    }

    fn meta_op(&mut self, src: &mut Src<'_>) -> Op {
        let mut style = Style::default();
        let key = src.below(KEYS.len());
        // memcached refuses a base64 key longer than a key: only the short ones.
        style.b64 = key != 3 && src.chance(50);
        let mut line = Vec::new();
        let mut flags_out: Vec<Vec<u8>> = Vec::new();
        let push_key = |line: &mut Vec<u8>, style: &Style| {
            if style.b64 {
                base64::encode_into(key_name(key), line);
            } else {
                line.extend_from_slice(key_name(key));
            }
        };
        if style.b64 {
            flags_out.push(b"b".to_vec());
        }
        if src.chance(40) {
            let o = self.opaque();
            style.opaque = Some(o);
            flags_out.push(format!("O{o}").into_bytes());
        }
        if src.chance(50) {
            style.want_key = true;
            flags_out.push(b"k".to_vec());
        }
        let sem = match src.below(10) {
            0..=3 => {
                let mode = match src.below(7) {
                    0 | 1 => Mode::Set,
                    2 => Mode::Add,
                    3 => Mode::Replace,
                    4 => Mode::Append,
                    5 => Mode::Prepend,
                    _ => Mode::Cas,
                };
                let cas = if mode == Mode::Cas {
                    self.execute_batch(src);
                    self.cas_arg(src, key)
                } else {
                    0
                };
                let data = value(src);
                let f = flags(src);
                let e = exp(src, false);
                style.quiet = src.chance(50);
                style.want_cas = src.chance(80);
                style.default_mode = mode == Mode::Set && src.chance(128);
                let m: &[u8] = match mode {
                    Mode::Set | Mode::Cas => b"MS",
                    Mode::Add => b"ME",
                    Mode::Replace => b"MR",
                    Mode::Append => b"MA",
                    Mode::Prepend => b"MP",
                };
                if !style.default_mode && (mode != Mode::Cas || src.chance(128)) {
                    flags_out.push(m.to_vec());
                }
                if mode == Mode::Cas {
                    flags_out.push(format!("C{cas}").into_bytes());
                }
                if f != 0 || src.chance(64) {
                    flags_out.push(format!("F{f}").into_bytes());
                }
                if e.value != 0 || src.chance(64) {
                    flags_out.push(format!("T{}", e.value).into_bytes());
                }
                if style.quiet {
                    flags_out.push(b"q".to_vec());
                }
                if style.want_cas {
                    flags_out.push(b"c".to_vec());
                }
                shuffle(src, &mut flags_out);
                line.extend_from_slice(b"ms ");
                push_key(&mut line, &style);
                line.extend_from_slice(format!(" {}", data.len()).as_bytes());
                for fl in &flags_out {
                    line.push(b' ');
                    line.extend_from_slice(fl);
                }
                line.extend_from_slice(b"\r\n");
                line.extend_from_slice(&data);
                line.extend_from_slice(b"\r\n");
                Sem::Store {
                    mode,
                    key,
                    data,
                    flags: f,
                    exp: e,
                    cas,
                }
            }
            4..=6 => {
                style.want_value = src.chance(180);
                style.want_flags = src.chance(128);
                style.want_cas = src.chance(100);
                style.want_size = src.chance(60);
                style.want_ttl = src.chance(60);
                style.quiet = src.chance(50);
                let touch = src.chance(50).then(|| exp(src, false));
                for (on, f) in [
                    (style.want_value, "v"),
                    (style.want_flags, "f"),
                    (style.want_cas, "c"),
                    (style.want_size, "s"),
                    (style.want_ttl, "t"),
                    (style.quiet, "q"),
                ] {
                    if on {
                        flags_out.push(f.as_bytes().to_vec());
                    }
                }
                if let Some(e) = touch {
                    flags_out.push(format!("T{}", e.value).into_bytes());
                }
                shuffle(src, &mut flags_out);
                line.extend_from_slice(b"mg ");
                push_key(&mut line, &style);
                for fl in &flags_out {
                    line.push(b' ');
                    line.extend_from_slice(fl);
                }
                line.extend_from_slice(b"\r\n");
                Sem::Get {
                    keys: vec![key],
                    touch,
                }
            }
            7 => {
                style.quiet = src.chance(60);
                let cas = src.chance(60).then(|| {
                    self.execute_batch(src);
                    self.cas_arg(src, key)
                });
                if let Some(c) = cas {
                    flags_out.push(format!("C{c}").into_bytes());
                }
                if style.quiet {
                    flags_out.push(b"q".to_vec());
                }
                shuffle(src, &mut flags_out);
                line.extend_from_slice(b"md ");
                push_key(&mut line, &style);
                for fl in &flags_out {
                    line.push(b' ');
                    line.extend_from_slice(fl);
                }
                line.extend_from_slice(b"\r\n");
                Sem::Delete { key, cas }
            }
            8 => {
                let incr = src.chance(160);
                let delta = delta(src);
                let vivify = src.chance(80).then(|| match src.below(3) {
                    0 => 0,
                    1 => u64::from(src.u8()),
                    _ => src.u64(),
                });
                style.quiet = src.chance(50);
                style.want_value = src.chance(128);
                style.want_cas = src.chance(60);
                match (incr, src.below(3)) {
                    (true, 0) => flags_out.push(b"MI".to_vec()),
                    (true, 1) => flags_out.push(b"M+".to_vec()),
                    (false, 0 | 1) => flags_out.push(b"MD".to_vec()),
                    (false, _) => flags_out.push(b"M-".to_vec()),
                    (true, _) => {}
                }
                if delta != 1 || src.chance(64) {
                    flags_out.push(format!("D{delta}").into_bytes());
                }
                if let Some(init) = vivify {
                    flags_out.push(b"N0".to_vec());
                    if init != 0 || src.chance(128) {
                        flags_out.push(format!("J{init}").into_bytes());
                    }
                }
                for (on, f) in [
                    (style.quiet, "q"),
                    (style.want_value, "v"),
                    (style.want_cas, "c"),
                ] {
                    if on {
                        flags_out.push(f.as_bytes().to_vec());
                    }
                }
                shuffle(src, &mut flags_out);
                line.extend_from_slice(b"ma ");
                push_key(&mut line, &style);
                for fl in &flags_out {
                    line.push(b' ');
                    line.extend_from_slice(fl);
                }
                line.extend_from_slice(b"\r\n");
                Sem::Arith {
                    key,
                    incr,
                    delta,
                    vivify,
                }
            }
            _ => {
                if src.chance(128) {
                    line.extend_from_slice(b"mn\r\n");
                    Sem::Other("mn")
                } else {
                    line.extend_from_slice(b"me ");
                    push_key(&mut line, &style);
                    if style.b64 {
                        line.extend_from_slice(b" b");
                    }
                    line.extend_from_slice(b"\r\n");
                    Sem::Other("me")
                }
            }
        };
        Op {
            proto: Proto::Meta,
            sem,
            style,
            bytes: line,
        }
    }

    fn binary_op(&mut self, src: &mut Src<'_>) -> Op {
        use memcached_rs::protocol::binary::opcode::*;
        let mut style = Style::default();
        let key = src.below(KEYS.len());
        let k = key_name(key);
        let opaque = self.opaque();
        style.opaque = Some(opaque);
        style.quiet = src.chance(70);
        let q = style.quiet;
        let (sem, frame) = match src.below(12) {
            0..=3 => {
                let mode = match src.below(7) {
                    0 | 1 => Mode::Set,
                    2 => Mode::Add,
                    3 => Mode::Replace,
                    4 => Mode::Append,
                    5 => Mode::Prepend,
                    _ => Mode::Cas,
                };
                let cas = if mode == Mode::Cas {
                    self.execute_batch(src);
                    self.cas_arg(src, key)
                } else {
                    0
                };
                let data = value(src);
                let (f, e) = if matches!(mode, Mode::Append | Mode::Prepend) {
                    (
                        0,
                        Exp {
                            value: 0,
                            expired: false,
                        },
                    )
                } else {
                    (flags(src), exp(src, true))
                };
                let opcode = match (mode, q) {
                    (Mode::Set | Mode::Cas, false) => SET,
                    (Mode::Set | Mode::Cas, true) => SETQ,
                    (Mode::Add, false) => ADD,
                    (Mode::Add, true) => ADDQ,
                    (Mode::Replace, false) => REPLACE,
                    (Mode::Replace, true) => REPLACEQ,
                    (Mode::Append, false) => APPEND,
                    (Mode::Append, true) => APPENDQ,
                    (Mode::Prepend, false) => PREPEND,
                    (Mode::Prepend, true) => PREPENDQ,
                };
                let mut extras = Vec::new();
                if !matches!(mode, Mode::Append | Mode::Prepend) {
                    extras.extend_from_slice(&f.to_be_bytes());
                    extras.extend_from_slice(&(e.value as u32).to_be_bytes());
                }
                let frame = bin_frame(opcode, k, &extras, &data, opaque, cas);
                (
                    Sem::Store {
                        mode,
                        key,
                        data,
                        flags: f,
                        exp: e,
                        cas,
                    },
                    frame,
                )
            }
            4..=6 => {
                style.want_key = src.chance(100);
                let touch = src.chance(60).then(|| exp(src, true));
                style.touch_only = touch.is_some() && src.chance(70);
                if style.touch_only {
                    style.quiet = false;
                }
                style.want_value = !style.touch_only;
                let opcode = match (
                    touch.is_some(),
                    style.touch_only,
                    style.want_key,
                    style.quiet,
                ) {
                    (_, true, _, _) => TOUCH,
                    (false, _, false, false) => GET,
                    (false, _, false, true) => GETQ,
                    (false, _, true, false) => GETK,
                    (false, _, true, true) => GETKQ,
                    (true, _, false, false) => GAT,
                    (true, _, false, true) => GATQ,
                    (true, _, true, false) => GATK,
                    (true, _, true, true) => GATKQ,
                };
                if style.touch_only {
                    style.want_key = false;
                }
                let extras = touch
                    .map(|e| (e.value as u32).to_be_bytes().to_vec())
                    .unwrap_or_default();
                (
                    Sem::Get {
                        keys: vec![key],
                        touch,
                    },
                    bin_frame(opcode, k, &extras, b"", opaque, 0),
                )
            }
            7 => {
                let cas = src.chance(60).then(|| {
                    self.execute_batch(src);
                    self.cas_arg(src, key)
                });
                (
                    Sem::Delete { key, cas },
                    bin_frame(
                        if q { DELETEQ } else { DELETE },
                        k,
                        b"",
                        b"",
                        opaque,
                        cas.unwrap_or(0),
                    ),
                )
            }
            8 | 9 => {
                let incr = src.chance(160);
                let delta = delta(src);
                let vivify = src.chance(100).then(|| match src.below(3) {
                    0 => 0,
                    1 => u64::from(src.u8()),
                    _ => src.u64(),
                });
                let mut extras = delta.to_be_bytes().to_vec();
                extras.extend_from_slice(&vivify.unwrap_or(0).to_be_bytes());
                extras.extend_from_slice(
                    &if vivify.is_some() { 0u32 } else { u32::MAX }.to_be_bytes(),
                );
                let opcode = match (incr, q) {
                    (true, false) => INCREMENT,
                    (true, true) => INCREMENTQ,
                    (false, false) => DECREMENT,
                    (false, true) => DECREMENTQ,
                };
                (
                    Sem::Arith {
                        key,
                        incr,
                        delta,
                        vivify,
                    },
                    bin_frame(opcode, k, &extras, b"", opaque, 0),
                )
            }
            10 if src.chance(64) => {
                let extras: &[u8] = if src.chance(128) { &[0, 0, 0, 0] } else { b"" };
                (
                    Sem::Flush,
                    bin_frame(if q { FLUSHQ } else { FLUSH }, b"", extras, b"", opaque, 0),
                )
            }
            _ => {
                style.quiet = false;
                let (opcode, name, key): (u8, &'static str, &[u8]) = match src.below(6) {
                    0 | 1 => (NOOP, "noop", b""),
                    2 => (VERSION, "version", b""),
                    3 => (STAT, "stat", b""),
                    4 => (STAT, "stat", b"settings"),
                    _ => (STAT, "stat", b"items"),
                };
                (
                    Sem::Other(name),
                    bin_frame(opcode, key, b"", b"", opaque, 0),
                )
            }
        };
        Op {
            proto: Proto::Binary,
            sem,
            style,
            bytes: frame,
        }
    }

    /// A malformed request from a template, alone in its read; its key becomes unknown.
    fn malformed(&mut self, src: &mut Src<'_>) {
        let key = src.below(KEYS.len());
        let k = String::from_utf8_lossy(key_name(key)).into_owned();
        let long = "x".repeat(251);
        let big = 1_048_576 + usize::from(src.u16());
        let binary_templates = 8;
        let text: Vec<u8> = match src.below(34 + binary_templates) {
            0 => format!("set {k} 0 0 3\r\nabcde\r\n").into_bytes(),
            1 => format!("set {k} 0 0 5\r\nab\r\n").into_bytes(),
            2 => format!("set {k} abc 0 1\r\nx\r\n").into_bytes(),
            3 => format!("set {k} 0 0 -1\r\n").into_bytes(),
            4 => format!("set {k} 0 0 {big}\r\n{}\r\n", "z".repeat(100)).into_bytes(),
            5 => format!("incr {k} abc\r\n").into_bytes(),
            6 => format!("decr {k} -1\r\n").into_bytes(),
            7 => format!("incr {k} 18446744073709551616\r\n").into_bytes(),
            8 => format!("get {long}\r\n").into_bytes(),
            9 => format!("get {k} {long} {k}\r\n").into_bytes(),
            10 => format!("delete {k} 5\r\n").into_bytes(),
            11 => format!("delete {k} 0 noreply x\r\n").into_bytes(),
            12 => format!("touch {k} x\r\n").into_bytes(),
            13 => format!("cas {k} 0 0 1\r\nx\r\n").into_bytes(),
            14 => format!("mg {k} v v\r\n").into_bytes(),
            15 => format!("mg {k} Z\r\n").into_bytes(),
            16 => b"mg !!!! b v\r\n".to_vec(),
            17 => format!("ms {k} x\r\n").into_bytes(),
            18 => format!("ms {k} 2 MZ\r\nab\r\n").into_bytes(),
            19 => format!("ma {k} Mx\r\n").into_bytes(),
            20 => format!("md {k} Cx\r\n").into_bytes(),
            21 => format!("ms {k} 2 O{}\r\nab\r\n", "9".repeat(40)).into_bytes(),
            22 => format!("ms {k} 3 F\r\nabc\r\n").into_bytes(),
            23 => b"flush_all abc\r\n".to_vec(),
            24 => b"verbosity\r\n".to_vec(),
            25 => b"GET / HTTP/1.1\r\n".to_vec(),
            26 => b"\r\n".to_vec(),
            27 => b"quit\r\n".to_vec(),
            28 => "g".repeat(3000).into_bytes(),
            29 => format!("get {k}\0junk\r\n").into_bytes(),
            30 => format!("mg {long} v\r\n").into_bytes(),
            31 => format!("ms {k} {big} T0\r\n").into_bytes(),
            32 => format!("ma {k} N0 J18446744073709551616\r\n").into_bytes(),
            33 => format!("set {k} 0 0 1 noreply\r\nxyz\r\n").into_bytes(),
            t => {
                self.malformed_binary(src, key, t - 34);
                return;
            }
        };
        let mut text = text;
        if src.chance(20) {
            // A nearby variant: anything may happen now.
            let at = src.below(text.len().max(1));
            if let Some(b) = text.get_mut(at) {
                *b = src.u8();
            }
            self.tainted = true;
        }
        self.send_alone(false, &text, src, false);
        self.model[key] = Known::Unknown;
    }

    fn malformed_binary(&mut self, src: &mut Src<'_>, key: usize, template: usize) {
        use memcached_rs::protocol::binary::opcode::*;
        let k = key_name(key);
        let frame = match template {
            // extlen + keylen > bodylen.
            0 => raw_frame(GET, k.len() as u16, 4, 2, k),
            // A get with extras.
            1 => bin_frame(GET, k, &[0, 0, 0, 0], b"", 1, 0),
            // An unknown opcode with a body, swallowed.
            2 => bin_frame(0x42, k, b"", b"body", 1, 0),
            // A key over 250 bytes.
            3 => bin_frame(GET, &[b'x'; 251], b"", b"", 1, 0),
            // Not the request magic.
            4 => {
                let mut f = bin_frame(NOOP, b"", b"", b"", 1, 0);
                f[0] = 0x81;
                f
            }
            // SASL without -S.
            5 => bin_frame(SASL_AUTH, b"PLAIN", b"", b"\0u\0p", 1, 0),
            // A value over the item size limit.
            6 => {
                let mut f = raw_frame(SET, k.len() as u16, 8, 8 + k.len() as u32 + 2_000_000, &[]);
                f.extend_from_slice(&[0; 8]);
                f.extend_from_slice(k);
                f.extend_from_slice(&[b'v'; 64]);
                f
            }
            // Verbosity (memcached 1.6 answers it as unknown).
            _ => bin_frame(VERBOSITY, b"", &[0, 0, 0, 1], b"", 1, 0),
        };
        // A request the server consumes whole must leave the connection at a request
        // boundary: an unknown opcode's body is swallowed to its last byte.
        let whole = template == 2 && !self.tainted;
        self.send_alone(true, &frame, src, whole);
        self.model[key] = Known::Unknown;
    }

    /// Random bytes to one of the connections.
    fn raw(&mut self, src: &mut Src<'_>) {
        let binary = src.chance(100);
        let n = src.below(64);
        let mut bytes = src.bytes(n);
        if binary {
            let mut head = vec![0x80];
            head.extend(src.bytes(23));
            // Keep the lengths small so the connection does not wait for megabytes.
            head[2] = 0;
            head[8] = 0;
            head[9] = 0;
            head.append(&mut bytes);
            bytes = head;
        }
        self.tainted = true;
        self.send_alone(binary, &bytes, src, false);
    }

    /// Sends bytes in their own read; the reply stream must still parse. A connection left
    /// mid-request or closed is replaced by a fresh one.
    fn send_alone(&mut self, binary: bool, bytes: &[u8], src: &mut Src<'_>, whole: bool) {
        let _ = src;
        let conn = if binary {
            &mut self.binary
        } else {
            &mut self.text
        };
        let mut sink = Vec::new();
        conn.feed(&self.handler, bytes, &mut sink);
        let wire_binary = conn.wire() == crate::driver::Wire::Binary;
        let ok = if wire_binary {
            split_binary(&sink).map(|_| ())
        } else {
            // A raw stream may make the server echo keys holding anything (`stats cachedump`
            // prints them raw), so only whole lines are required of it.
            if self.tainted {
                if sink.is_empty() || sink.ends_with(b"\r\n") {
                    Ok(())
                } else {
                    Err("reply does not end in \\r\\n".to_string())
                }
            } else {
                split_text(&sink).map(|_| ())
            }
        };
        if let Err(e) = ok {
            let op = Op {
                proto: if binary { Proto::Binary } else { Proto::Text },
                sem: Sem::Other("malformed or raw"),
                style: Style::default(),
                bytes: bytes.to_vec(),
            };
            self.fail(&op, &sink, &format!("the reply stream does not parse: {e}"));
        }
        if whole && !conn.is_closed() && !conn.is_idle() {
            let op = Op {
                proto: if binary { Proto::Binary } else { Proto::Text },
                sem: Sem::Other("consumed whole"),
                style: Style::default(),
                bytes: bytes.to_vec(),
            };
            self.fail(&op, &sink, "the connection is left mid-request after it");
        }
        self.note(format!("alone {}", esc(bytes)));
        let conn = if binary {
            &mut self.binary
        } else {
            &mut self.text
        };
        // Left mid-request, closed, or (raw bytes) speaking the other protocol: reconnect.
        let want = if binary {
            crate::driver::Wire::Binary
        } else {
            crate::driver::Wire::Text
        };
        if !conn.is_idle() || conn.wire() != want {
            *conn = Connection::new();
        }
    }

    /// At the end: every key read back with the meta protocol and compared with the model.
    fn final_sweep(&mut self) {
        if self.tainted {
            return;
        }
        for key in 0..KEYS.len() {
            let mut bytes = b"mg ".to_vec();
            bytes.extend_from_slice(key_name(key));
            bytes.extend_from_slice(b" v f c s k\r\n");
            let op = Op {
                proto: Proto::Meta,
                sem: Sem::Get {
                    keys: vec![key],
                    touch: None,
                },
                style: Style {
                    want_value: true,
                    want_flags: true,
                    want_cas: true,
                    want_size: true,
                    want_key: true,
                    ..Style::default()
                },
                bytes,
            };
            self.batch.push(op);
        }
        let mut src = Src::new(&[]);
        self.execute_batch(&mut src);
    }

    // ---------------------------------------------------------------------------------------
    // Checking replies.

    fn check(&mut self, op: &Op, reply: &[u8]) {
        if self.tainted && tainted_error(op.proto, reply) {
            // Raw bytes may have shrunk the memory limit (`cache_memlimit`), and more: only
            // the grammar is checked then.
            self.model.iter_mut().for_each(|k| *k = Known::Unknown);
            return;
        }
        if let Sem::Other("metadump") = op.sem {
            // memcached ends metadump's lines with a bare \n, and the dump with END\r\n.
            let ok = reply == b"ERROR cannot pipeline other commands before metadump\r\n"
                || reply.strip_suffix(b"END\r\n").is_some_and(|items| {
                    items.is_empty()
                        || items.ends_with(b"\n")
                            && items[..items.len() - 1]
                                .split(|&b| b == b'\n')
                                .all(|l| l.starts_with(b"key=") && !l.contains(&b'\r'))
                });
            if !ok {
                self.fail(op, reply, "not a metadump reply");
            }
            return;
        }
        match op.proto {
            Proto::Binary => self.check_binary(op, reply),
            Proto::Text | Proto::Meta => {
                let units = match split_text(reply) {
                    Ok(u) => u,
                    Err(e) => self.fail(op, reply, &format!("the reply does not parse: {e}")),
                };
                if op.proto == Proto::Text {
                    self.check_text(op, reply, &units);
                } else {
                    self.check_meta(op, reply, &units);
                }
            }
        }
    }

    fn check_text(&mut self, op: &Op, reply: &[u8], units: &[TextReply<'_>]) {
        let lines: Vec<&[u8]> = units.iter().map(TextReply::line).collect();
        let single = || -> Option<&[u8]> {
            match units {
                [TextReply::Line(l)] => Some(l),
                _ => None,
            }
        };
        match &op.sem {
            Sem::Store { .. } => {
                let res = if op.style.quiet {
                    if !units.is_empty() {
                        self.fail(op, reply, "noreply store answered");
                    }
                    None
                } else {
                    Some(match single() {
                        Some(b"STORED") => StoreRes::Stored,
                        Some(b"NOT_STORED") => StoreRes::NotStored,
                        Some(b"EXISTS") => StoreRes::Exists,
                        Some(b"NOT_FOUND") => StoreRes::NotFound,
                        _ => self.fail(op, reply, "not a store reply"),
                    })
                };
                self.apply_store(op, reply, res, None);
            }
            Sem::Get { keys, touch } if op.style.touch_only => {
                // `touch`
                let key = keys[0];
                let hit = if op.style.quiet {
                    if !units.is_empty() {
                        self.fail(op, reply, "noreply touch answered");
                    }
                    None
                } else {
                    match single() {
                        Some(b"TOUCHED") => Some(true),
                        Some(b"NOT_FOUND") => Some(false),
                        _ => self.fail(op, reply, "not a touch reply"),
                    }
                };
                self.apply_touch(op, reply, key, hit, touch.expect("touch"));
            }
            Sem::Get { keys, touch } => {
                let Some((TextReply::Line(b"END"), blocks)) = units.split_last() else {
                    self.fail(op, reply, "a get reply must end with END");
                };
                let mut blocks = blocks.iter().peekable();
                for &key in keys {
                    let name = key_name(key);
                    let hit = match blocks.peek() {
                        Some(TextReply::Block { line, data }) => {
                            let t: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
                            if t.get(1) == Some(&name) {
                                blocks.next();
                                let want = if op.style.want_cas { 5 } else { 4 };
                                if t.len() != want {
                                    self.fail(op, reply, "VALUE line with the wrong field count");
                                }
                                let flags = parse_u64(t[2]).and_then(|f| u32::try_from(f).ok());
                                let cas = if op.style.want_cas {
                                    parse_u64(t[4])
                                } else {
                                    None
                                };
                                if flags.is_none() || (op.style.want_cas && cas.is_none()) {
                                    self.fail(op, reply, "VALUE line with bad numbers");
                                }
                                Some(Hit {
                                    data: Some(data.to_vec()),
                                    size: None,
                                    flags,
                                    cas,
                                })
                            } else {
                                None
                            }
                        }
                        Some(TextReply::Line(_)) => self.fail(op, reply, "a line among values"),
                        None => None,
                    };
                    self.apply_read(op, reply, key, hit, *touch);
                }
                if blocks.next().is_some() {
                    self.fail(op, reply, "values for keys not asked for, or out of order");
                }
            }
            Sem::Delete { key, .. } => {
                let res = if op.style.quiet {
                    if !units.is_empty() {
                        self.fail(op, reply, "noreply delete answered");
                    }
                    None
                } else {
                    Some(match single() {
                        Some(b"DELETED") => DeleteRes::Deleted,
                        Some(b"NOT_FOUND") => DeleteRes::NotFound,
                        _ => self.fail(op, reply, "not a delete reply"),
                    })
                };
                self.apply_delete(op, reply, *key, None, res);
            }
            Sem::Arith { .. } => {
                let res = if op.style.quiet {
                    if !units.is_empty() {
                        self.fail(op, reply, "noreply incr/decr answered");
                    }
                    None
                } else {
                    Some(match single() {
                        Some(b"NOT_FOUND") => ArithRes::NotFound,
                        Some(b"CLIENT_ERROR cannot increment or decrement non-numeric value") => {
                            ArithRes::NonNumeric
                        }
                        Some(l) => match parse_u64(l) {
                            Some(v) => ArithRes::Value(v),
                            None => self.fail(op, reply, "not an incr/decr reply"),
                        },
                        None => self.fail(op, reply, "not an incr/decr reply"),
                    })
                };
                self.apply_arith(op, reply, res, None);
            }
            Sem::Flush => {
                let ok = if op.style.quiet {
                    units.is_empty()
                } else {
                    single() == Some(b"OK")
                };
                if !ok {
                    self.fail(op, reply, "not a flush_all reply");
                }
                self.model.iter_mut().for_each(|k| *k = Known::Absent);
            }
            Sem::Other(name) => self.check_other_text(op, reply, name, &lines, units),
        }
    }

    fn check_other_text(
        &mut self,
        op: &Op,
        reply: &[u8],
        name: &str,
        lines: &[&[u8]],
        units: &[TextReply<'_>],
    ) {
        let ok = match name {
            "version" => lines == [b"VERSION 1.6.18".as_slice()],
            "ok" => lines == [b"OK".as_slice()],
            "silent" => lines.is_empty(),
            "mn" => lines == [b"MN".as_slice()],
            "stats" => {
                lines.last() == Some(&b"END".as_slice())
                    && lines[..lines.len() - 1]
                        .iter()
                        .all(|l| l.starts_with(b"STAT "))
                    && units.iter().all(|u| matches!(u, TextReply::Line(_)))
            }
            "detail" => lines.last() == Some(&b"END".as_slice()),
            "me" => lines.len() == 1 && (lines[0] == b"EN" || lines[0].starts_with(b"ME ")),
            _ => false,
        };
        if !ok {
            self.fail(op, reply, &format!("not a {name} reply"));
        }
        if name == "me" && !self.tainted {
            // `me` says whether the key exists.
            let key = key_of_me(&op.bytes);
            let present = lines[0] != b"EN";
            match (&self.model[key], present) {
                (Known::Absent, true) => self.fail(op, reply, "me sees a key the model has not"),
                (Known::Present(_), false) => self.fail(op, reply, "me misses a stored key"),
                (Known::Unknown, false) => self.model[key] = Known::Absent,
                _ => {}
            }
        }
    }

    fn check_meta(&mut self, op: &Op, reply: &[u8], units: &[TextReply<'_>]) {
        if let Sem::Other(name) = op.sem {
            let lines: Vec<&[u8]> = units.iter().map(TextReply::line).collect();
            return self.check_other_text(op, reply, name, &lines, units);
        }
        let silent = units.is_empty();
        if units.len() > 1 {
            self.fail(op, reply, "more than one meta reply");
        }
        let (line, data) = match units.first() {
            Some(TextReply::Line(l)) => (*l, None),
            Some(TextReply::Block { line, data }) => (*line, Some(*data)),
            None => (&b""[..], None),
        };
        let tokens: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        let code = tokens[0];
        let flag = |c: u8| -> Option<&[u8]> {
            tokens[1..]
                .iter()
                .find(|t| t.first() == Some(&c))
                .map(|t| &t[1..])
        };
        if !silent && !line.starts_with(b"CLIENT_ERROR") {
            // Every meta reply echoes O and k.
            if let Some(o) = op.style.opaque {
                if flag(b'O') != Some(format!("{o}").as_bytes()) {
                    self.fail(op, reply, "opaque not echoed");
                }
            }
            if op.style.want_key {
                let key = match &op.sem {
                    Sem::Store { key, .. } | Sem::Delete { key, .. } | Sem::Arith { key, .. } => {
                        *key
                    }
                    Sem::Get { keys, .. } => keys[0],
                    _ => unreachable!(),
                };
                // A hit echoes the key as the item was stored (plain or base64, with `b`).
                let mut encoded = Vec::new();
                base64::encode_into(key_name(key), &mut encoded);
                let echoed = flag(b'k');
                let ok = if echoed == Some(key_name(key)) {
                    !op.style.b64 || code == b"VA" || code == b"HD"
                } else if echoed == Some(&encoded[..]) {
                    tokens.contains(&&b"b"[..]) && (op.style.b64 || code == b"VA" || code == b"HD")
                } else {
                    false
                };
                if !ok {
                    self.fail(op, reply, "key not echoed");
                }
            }
        }
        match &op.sem {
            Sem::Store { .. } => {
                let res = if silent {
                    if !op.style.quiet {
                        self.fail(op, reply, "ms not answered");
                    }
                    Some(StoreRes::Stored)
                } else {
                    Some(match code {
                        b"HD" if !op.style.quiet => StoreRes::Stored,
                        b"NS" => StoreRes::NotStored,
                        b"EX" => StoreRes::Exists,
                        b"NF" => StoreRes::NotFound,
                        _ => self.fail(op, reply, "not an ms reply"),
                    })
                };
                let cas = if res == Some(StoreRes::Stored) && op.style.want_cas && !silent {
                    match flag(b'c').and_then(parse_u64) {
                        Some(c) => Some(c),
                        None => self.fail(op, reply, "ms c: no cas in the reply"),
                    }
                } else {
                    None
                };
                self.apply_store(op, reply, res, cas);
            }
            Sem::Get { keys, touch } => {
                let key = keys[0];
                let hit = if silent {
                    if !op.style.quiet {
                        self.fail(op, reply, "mg not answered");
                    }
                    None
                } else {
                    match (code, data) {
                        (b"EN", None) => {
                            if op.style.quiet {
                                self.fail(op, reply, "quiet mg reported a miss");
                            }
                            None
                        }
                        (b"VA", Some(d)) if op.style.want_value => Some(d.to_vec()),
                        (b"HD", None) if !op.style.want_value => Some(Vec::new()),
                        _ => self.fail(op, reply, "not an mg reply"),
                    }
                    .map(|d| {
                        let num = |c: u8| flag(c).map(|v| parse_u64(v).ok_or(()));
                        let flags = num(b'f');
                        let cas = num(b'c');
                        let size = num(b's');
                        if op.style.want_flags != flags.is_some()
                            || op.style.want_cas != cas.is_some()
                            || op.style.want_size != size.is_some()
                            || op.style.want_ttl != flag(b't').is_some()
                            || matches!(flags, Some(Err(_)))
                            || matches!(cas, Some(Err(_)))
                            || matches!(size, Some(Err(_)))
                        {
                            self.fail(op, reply, "mg return flags do not match the request");
                        }
                        if let Some(t) = flag(b't') {
                            if t != b"-1" && parse_u64(t).is_none() {
                                self.fail(op, reply, "mg t: not a ttl");
                            }
                        }
                        Hit {
                            data: op.style.want_value.then_some(d),
                            size: size.map(|s| s.expect("checked") as usize),
                            flags: flags.map(|f| f.expect("checked") as u32),
                            cas: cas.map(|c| c.expect("checked")),
                        }
                    })
                };
                self.apply_read(op, reply, key, hit, *touch);
            }
            Sem::Delete { key, cas } => {
                let res = if silent {
                    if !op.style.quiet {
                        self.fail(op, reply, "md not answered");
                    }
                    DeleteRes::Deleted
                } else {
                    match code {
                        b"HD" if !op.style.quiet => DeleteRes::Deleted,
                        b"NF" => DeleteRes::NotFound,
                        b"EX" => DeleteRes::Exists,
                        _ => self.fail(op, reply, "not an md reply"),
                    }
                };
                self.apply_delete(op, reply, *key, *cas, Some(res));
            }
            Sem::Arith { .. } => {
                let (res, cas) = if silent {
                    if !op.style.quiet {
                        self.fail(op, reply, "ma not answered");
                    }
                    (ArithRes::Silent, None)
                } else if line == b"CLIENT_ERROR cannot increment or decrement non-numeric value" {
                    (ArithRes::NonNumeric, None)
                } else {
                    match (code, data) {
                        (b"NF", None) => (ArithRes::NotFound, None),
                        (b"VA", Some(d)) if op.style.want_value => match parse_u64(d) {
                            Some(v) => (ArithRes::Value(v), flag(b'c').and_then(parse_u64)),
                            None => self.fail(op, reply, "ma v: not a number"),
                        },
                        (b"HD", None) if !op.style.want_value => {
                            (ArithRes::Hidden, flag(b'c').and_then(parse_u64))
                        }
                        _ => self.fail(op, reply, "not an ma reply"),
                    }
                };
                if op.style.want_cas
                    && matches!(res, ArithRes::Value(_) | ArithRes::Hidden)
                    && cas.is_none()
                {
                    self.fail(op, reply, "ma c: no cas");
                }
                self.apply_arith(op, reply, Some(res), cas);
            }
            Sem::Flush | Sem::Other(_) => unreachable!(),
        }
    }

    fn check_binary(&mut self, op: &Op, reply: &[u8]) {
        let frames = match split_binary(reply) {
            Ok(f) => f,
            Err(e) => self.fail(op, reply, &format!("the response does not parse: {e}")),
        };
        let opcode = op.bytes[1];
        for f in &frames {
            if f.opcode != opcode || Some(f.opaque) != op.style.opaque {
                self.fail(op, reply, "opcode or opaque not echoed");
            }
        }
        if let Sem::Other(name) = op.sem {
            let ok = match name {
                "noop" => frames.len() == 1 && frames[0].status == 0 && frames[0].value.is_empty(),
                "version" => {
                    frames.len() == 1 && frames[0].status == 0 && frames[0].value == b"1.6.18"
                }
                _ => {
                    // stat: packets with keys, then an empty one; or Not found.
                    let last = frames.last();
                    last.is_some_and(|l| l.key.is_empty() && l.value.is_empty())
                        && frames.iter().all(|f| f.status == 0)
                }
            };
            if !ok {
                self.fail(op, reply, &format!("not a binary {name} response"));
            }
            return;
        }
        if frames.len() > 1 {
            self.fail(op, reply, "more than one response");
        }
        let f: Option<&BinReply<'_>> = frames.first();
        if f.is_none() && !op.style.quiet {
            self.fail(op, reply, "not answered");
        }
        const OK: u16 = 0;
        const NOT_FOUND: u16 = 1;
        const EXISTS: u16 = 2;
        const NOT_STORED: u16 = 5;
        const NON_NUMERIC: u16 = 6;
        let error_ok =
            |f: &BinReply<'_>| f.status == OK || (f.extras.is_empty() && f.key.is_empty());
        if let Some(f) = f {
            if !(error_ok(f) || f.status == NOT_FOUND && op.style.want_key) {
                self.fail(op, reply, "an error response with extras or a key");
            }
        }
        match &op.sem {
            Sem::Store { mode, .. } => {
                let (res, cas) = match f {
                    None => (StoreRes::Stored, None),
                    Some(f) => match f.status {
                        OK if !op.style.quiet => {
                            if f.cas == 0 || !f.value.is_empty() {
                                self.fail(
                                    op,
                                    reply,
                                    "a stored response without a cas, or with a body",
                                );
                            }
                            (StoreRes::Stored, Some(f.cas))
                        }
                        // memcached's binary statuses for NOT_STORED depend on the command.
                        EXISTS if *mode == Mode::Cas => (StoreRes::Exists, None),
                        EXISTS if *mode == Mode::Add => (StoreRes::NotStored, None),
                        NOT_FOUND if *mode == Mode::Cas => (StoreRes::NotFound, None),
                        NOT_FOUND if *mode == Mode::Replace => (StoreRes::NotStored, None),
                        NOT_STORED if matches!(mode, Mode::Append | Mode::Prepend) => {
                            (StoreRes::NotStored, None)
                        }
                        _ => self.fail(op, reply, "not a store response"),
                    },
                };
                self.apply_store(op, reply, Some(res), cas);
            }
            Sem::Get { keys, touch } => {
                let key = keys[0];
                let hit = match f {
                    None => None,
                    Some(f) if f.status == OK => {
                        if f.extras.len() != 4
                            || (op.style.want_key && f.key != key_name(key))
                            || (!op.style.want_key && !f.key.is_empty())
                            || (op.style.touch_only && !f.value.is_empty())
                        {
                            self.fail(op, reply, "a hit with the wrong extras, key or value");
                        }
                        Some(Hit {
                            data: (!op.style.touch_only).then(|| f.value.to_vec()),
                            size: None,
                            flags: Some(u32::from_be_bytes(f.extras.try_into().expect("4"))),
                            cas: Some(f.cas),
                        })
                    }
                    Some(f) if f.status == NOT_FOUND && !op.style.quiet => {
                        let want_body: &[u8] = if op.style.want_key { b"" } else { b"Not found" };
                        let want_key: &[u8] = if op.style.want_key {
                            key_name(key)
                        } else {
                            b""
                        };
                        if f.value != want_body || f.key != want_key {
                            self.fail(op, reply, "a miss with the wrong body");
                        }
                        None
                    }
                    Some(_) => self.fail(op, reply, "not a get response"),
                };
                if op.style.touch_only {
                    let touched = hit.is_some();
                    if let Some(h) = &hit {
                        self.compare_item(op, reply, key, h);
                    }
                    self.apply_touch(op, reply, key, Some(touched), touch.expect("touch"));
                } else {
                    if op.style.quiet && hit.is_none() && f.is_some() {
                        self.fail(op, reply, "a quiet get reported a miss");
                    }
                    self.apply_read(op, reply, key, hit, *touch);
                }
            }
            Sem::Delete { key, cas } => {
                let res = match f.map(|f| f.status) {
                    None => DeleteRes::Deleted,
                    Some(OK) if !op.style.quiet => DeleteRes::Deleted,
                    Some(NOT_FOUND) => DeleteRes::NotFound,
                    Some(EXISTS) if cas.is_some() => DeleteRes::Exists,
                    _ => self.fail(op, reply, "not a delete response"),
                };
                self.apply_delete(op, reply, *key, *cas, Some(res));
            }
            Sem::Arith { .. } => {
                let (res, cas) = match f {
                    None => (ArithRes::Silent, None),
                    Some(f) => match f.status {
                        OK if !op.style.quiet => {
                            let Ok(v) = <[u8; 8]>::try_from(f.value) else {
                                self.fail(op, reply, "an incr response without its 8 bytes");
                            };
                            (ArithRes::Value(u64::from_be_bytes(v)), Some(f.cas))
                        }
                        NOT_FOUND => (ArithRes::NotFound, None),
                        NON_NUMERIC => (ArithRes::NonNumeric, None),
                        _ => self.fail(op, reply, "not an incr/decr response"),
                    },
                };
                self.apply_arith(op, reply, Some(res), cas);
            }
            Sem::Flush => {
                let ok = match f {
                    None => op.style.quiet,
                    Some(f) => f.status == OK && !op.style.quiet,
                };
                if !ok {
                    self.fail(op, reply, "not a flush response");
                }
                self.model.iter_mut().for_each(|k| *k = Known::Absent);
            }
            Sem::Other(_) => unreachable!(),
        }
    }

    // ---------------------------------------------------------------------------------------
    // The model.

    /// A hit must agree with what the model knows of the key.
    fn compare_item(&self, op: &Op, reply: &[u8], key: usize, hit: &Hit) {
        let item = match &self.model[key] {
            Known::Absent => self.fail(op, reply, "a hit for a key that is not stored"),
            Known::Unknown => return,
            Known::Present(item) => item,
        };
        if let (Some(want), Some(got)) = (item.flags, hit.flags) {
            if want != got {
                self.fail(op, reply, &format!("flags {got}, stored {want}"));
            }
        }
        if let (Some(want), Some(got)) = (item.cas, hit.cas) {
            if want != got {
                self.fail(
                    op,
                    reply,
                    &format!("cas {got}, last seen {want} and no write since"),
                );
            }
        }
        let size = hit.data.as_ref().map(Vec::len).or(hit.size);
        if let (Some(a), Some(b)) = (hit.data.as_ref().map(Vec::len), hit.size) {
            if a != b {
                self.fail(op, reply, "size flag differs from the value's length");
            }
        }
        match &item.data {
            Data::Exact(want) => {
                if let Some(got) = &hit.data {
                    if got != want {
                        self.fail(
                            op,
                            reply,
                            &format!(
                                "value read is not the last value stored: read {}, stored {}",
                                esc(got),
                                esc(want)
                            ),
                        );
                    }
                } else if size.is_some_and(|s| s != want.len()) {
                    self.fail(op, reply, "size differs from the stored value's");
                }
            }
            Data::Counter(n) => {
                if let Some(got) = &hit.data {
                    if !counter_matches(*n, got) {
                        self.fail(
                            op,
                            reply,
                            &format!("counter should read {n}, reads {}", esc(got)),
                        );
                    }
                }
            }
            Data::Unknown => {}
        }
    }

    fn apply_read(
        &mut self,
        op: &Op,
        reply: &[u8],
        key: usize,
        hit: Option<Hit>,
        touch: Option<Exp>,
    ) {
        // A quiet miss is silent: `hit` is None either way.
        match &hit {
            Some(h) => {
                self.compare_item(op, reply, key, h);
                let mut item = match &self.model[key] {
                    Known::Present(item) => item.clone(),
                    _ => Item {
                        data: Data::Unknown,
                        flags: None,
                        cas: None,
                    },
                };
                if let Some(d) = &h.data {
                    item.data = Data::Exact(d.clone());
                }
                item.flags = h.flags.or(item.flags);
                item.cas = h.cas.or(item.cas);
                self.model[key] = Known::Present(item);
            }
            None => {
                if let Known::Present(_) = self.model[key] {
                    self.fail(op, reply, "a stored key reads as a miss");
                }
                self.model[key] = Known::Absent;
            }
        }
        if let (Some(e), Known::Present(item)) = (touch, &mut self.model[key]) {
            if e.expired {
                self.model[key] = Known::Absent;
            } else {
                item.cas = None;
            }
        }
    }

    fn apply_touch(&mut self, op: &Op, reply: &[u8], key: usize, hit: Option<bool>, e: Exp) {
        let present = match (&self.model[key], hit) {
            (Known::Absent, Some(true)) => self.fail(op, reply, "touched a key that is not stored"),
            (Known::Present(_), Some(false)) => self.fail(op, reply, "touch misses a stored key"),
            (_, Some(h)) => Some(h),
            (Known::Absent, None) => Some(false),
            (Known::Present(_), None) => Some(true),
            (Known::Unknown, None) => None,
        };
        match present {
            Some(false) => self.model[key] = Known::Absent,
            Some(true) if e.expired => self.model[key] = Known::Absent,
            Some(true) => {
                if let Known::Present(item) = &mut self.model[key] {
                    item.cas = None;
                } else {
                    self.model[key] = Known::Present(Item {
                        data: Data::Unknown,
                        flags: None,
                        cas: None,
                    });
                }
            }
            None => self.model[key] = Known::Unknown,
        }
    }

    /// `res` is None for a text `noreply` store (nothing to compare: the model's prediction
    /// stands, when it has one).
    fn apply_store(&mut self, op: &Op, reply: &[u8], res: Option<StoreRes>, cas: Option<u64>) {
        let Sem::Store {
            mode,
            key,
            data,
            flags,
            exp,
            cas: cas_arg,
        } = &op.sem
        else {
            unreachable!()
        };
        let (mode, key) = (*mode, *key);
        let current = self.model[key].clone();
        // What the model predicts, if it can.
        let predicted: Option<StoreRes> = match (&current, mode) {
            (Known::Unknown, _) => None,
            (Known::Absent, Mode::Set | Mode::Add) => Some(StoreRes::Stored),
            (Known::Absent, Mode::Replace | Mode::Append | Mode::Prepend) => {
                Some(StoreRes::NotStored)
            }
            (Known::Absent, Mode::Cas) => Some(StoreRes::NotFound),
            (Known::Present(_), Mode::Add) => Some(StoreRes::NotStored),
            (Known::Present(item), Mode::Cas) => item.cas.map(|c| {
                if c == *cas_arg {
                    StoreRes::Stored
                } else {
                    StoreRes::Exists
                }
            }),
            (Known::Present(_), _) => Some(StoreRes::Stored),
        };
        // Appending to a value near the size limit may fail for want of room: the model does
        // not predict that.
        let combined = match &current {
            Known::Present(Item {
                data: Data::Exact(old),
                ..
            }) => old.len() + data.len(),
            _ => data.len() * 2,
        };
        let near_limit = matches!(mode, Mode::Append | Mode::Prepend) && combined > 900_000;
        let outcome = match (res, predicted) {
            (Some(r), Some(p)) if r != p && !near_limit => self.fail(
                op,
                reply,
                &format!("store answered {r:?}, the model expects {p:?}"),
            ),
            (Some(r), _) => Some(r),
            (None, p) => p,
        };
        if near_limit && outcome != Some(StoreRes::Stored) {
            self.model[key] = Known::Unknown;
            return;
        }
        match outcome {
            None => self.model[key] = Known::Unknown,
            Some(StoreRes::Stored) => {
                let concatenate = matches!(mode, Mode::Append | Mode::Prepend);
                let new = if concatenate {
                    // The old item's flags and expiry stay.
                    match &current {
                        Known::Present(item) => {
                            let data = match &item.data {
                                Data::Exact(old) if mode == Mode::Append => {
                                    Data::Exact([old.as_slice(), data].concat())
                                }
                                Data::Exact(old) => Data::Exact([data.as_slice(), old].concat()),
                                _ => Data::Unknown,
                            };
                            Known::Present(Item {
                                data,
                                flags: item.flags,
                                cas,
                            })
                        }
                        _ => Known::Present(Item {
                            data: Data::Unknown,
                            flags: None,
                            cas,
                        }),
                    }
                } else if exp.expired {
                    Known::Absent
                } else {
                    Known::Present(Item {
                        data: Data::Exact(data.clone()),
                        flags: Some(*flags),
                        cas,
                    })
                };
                self.model[key] = new;
            }
            Some(StoreRes::NotStored) | Some(StoreRes::Exists) => {
                if current == Known::Unknown {
                    // It exists (add, cas) or not (replace, append, prepend).
                    self.model[key] = match mode {
                        Mode::Replace | Mode::Append | Mode::Prepend => Known::Absent,
                        _ => Known::Present(Item {
                            data: Data::Unknown,
                            flags: None,
                            cas: None,
                        }),
                    };
                }
            }
            Some(StoreRes::NotFound) => self.model[key] = Known::Absent,
        }
    }

    fn apply_delete(
        &mut self,
        op: &Op,
        reply: &[u8],
        key: usize,
        cas: Option<u64>,
        res: Option<DeleteRes>,
    ) {
        let predicted = match &self.model[key] {
            Known::Absent => Some(DeleteRes::NotFound),
            Known::Unknown => None,
            Known::Present(item) => match (cas, item.cas) {
                (None, _) => Some(DeleteRes::Deleted),
                (Some(c), Some(k)) if c == k => Some(DeleteRes::Deleted),
                (Some(_), Some(_)) => Some(DeleteRes::Exists),
                (Some(_), None) => None,
            },
        };
        let outcome = match (res, predicted) {
            (Some(r), Some(p)) if r != p => self.fail(
                op,
                reply,
                &format!("delete answered {r:?}, the model expects {p:?}"),
            ),
            (Some(r), _) => Some(r),
            (None, p) => p,
        };
        match outcome {
            Some(DeleteRes::Deleted) | Some(DeleteRes::NotFound) => self.model[key] = Known::Absent,
            Some(DeleteRes::Exists) => {
                if self.model[key] == Known::Unknown {
                    self.model[key] = Known::Present(Item {
                        data: Data::Unknown,
                        flags: None,
                        cas: None,
                    });
                }
            }
            None => self.model[key] = Known::Unknown,
        }
    }

    /// `res` None: a text `noreply`. `ArithRes::Silent`: a quiet success (meta, binary) or an
    /// `ma` without `v`.
    fn apply_arith(&mut self, op: &Op, reply: &[u8], res: Option<ArithRes>, cas: Option<u64>) {
        let Sem::Arith {
            key,
            incr,
            delta,
            vivify,
        } = &op.sem
        else {
            unreachable!()
        };
        let key = *key;
        let step = |n: u64| {
            if *incr {
                n.wrapping_add(*delta)
            } else {
                n.saturating_sub(*delta)
            }
        };
        let current = self.model[key].clone();
        // (expected result, whether the item is created)
        let predicted: Option<(ArithRes, bool)> = match &current {
            Known::Unknown => None,
            Known::Absent => Some(match vivify {
                Some(init) => (ArithRes::Value(*init), true),
                None => (ArithRes::NotFound, false),
            }),
            Known::Present(item) => match &item.data {
                Data::Counter(n) => Some((ArithRes::Value(step(*n)), false)),
                Data::Exact(d) => match numeric(d) {
                    Numeric::Yes(n) => Some((ArithRes::Value(step(n)), false)),
                    Numeric::No => Some((ArithRes::NonNumeric, false)),
                    Numeric::Unsure => None,
                },
                Data::Unknown => None,
            },
        };
        let created = predicted.is_some_and(|p| p.1);
        // A quiet meta success shows only a created item; a quiet binary one shows nothing.
        let meta_quiet = op.proto == Proto::Meta && op.style.quiet;
        let outcome: Option<ArithRes> = match (res, predicted) {
            (None, p) => p.map(|p| p.0),
            (Some(r @ (ArithRes::Silent | ArithRes::Hidden | ArithRes::Value(_))), p) => {
                let silent = r == ArithRes::Silent;
                if meta_quiet && silent == created && p.is_some() {
                    self.fail(
                        op,
                        reply,
                        if created {
                            "a quiet ma that created its item said nothing"
                        } else {
                            "a quiet ma success was shown"
                        },
                    );
                }
                match (r, p) {
                    (ArithRes::Value(got), Some((ArithRes::Value(want), _))) if got != want => {
                        self.fail(
                            op,
                            reply,
                            &format!("incr/decr gave {got}, the model expects {want} (an increment lost?)"),
                        )
                    }
                    (_, Some((ArithRes::Value(want), _))) => Some(ArithRes::Value(want)),
                    (_, Some((p, _))) => self.fail(
                        op,
                        reply,
                        &format!("incr/decr succeeded ({r:?}), the model expects {p:?}"),
                    ),
                    (ArithRes::Value(got), None) => Some(ArithRes::Value(got)),
                    (_, None) => Some(ArithRes::Hidden),
                }
            }
            (Some(r), Some((p, _))) if r != p => self.fail(
                op,
                reply,
                &format!("incr/decr answered {r:?}, the model expects {p:?}"),
            ),
            (Some(r), _) => Some(r),
        };
        match outcome {
            None => self.model[key] = Known::Unknown,
            Some(ArithRes::Value(v)) => {
                let flags = match &current {
                    Known::Present(item) => item.flags,
                    _ => None,
                };
                self.model[key] = Known::Present(Item {
                    data: Data::Counter(v),
                    flags: if created { Some(0) } else { flags },
                    cas,
                });
            }
            Some(ArithRes::NotFound) => self.model[key] = Known::Absent,
            Some(ArithRes::NonNumeric) => {
                if current == Known::Unknown {
                    self.model[key] = Known::Present(Item {
                        data: Data::Unknown,
                        flags: None,
                        cas: None,
                    });
                }
            }
            Some(ArithRes::Hidden) => {
                // Succeeded, value unknown.
                self.model[key] = Known::Present(Item {
                    data: Data::Unknown,
                    flags: None,
                    cas: None,
                });
            }
            Some(ArithRes::Silent) => unreachable!(),
        }
    }
}

/// Whether a reply carries a server error (out of memory, too large) or a client error:
/// after raw bytes these may come from settings the raw bytes changed.
fn tainted_error(proto: Proto, reply: &[u8]) -> bool {
    match proto {
        Proto::Binary => match split_binary(reply) {
            Ok(frames) => frames
                .iter()
                .any(|f| matches!(f.status, 0x03 | 0x04 | 0x05 | 0x82)),
            Err(_) => false,
        },
        _ => match split_text(reply) {
            Ok(units) => units.iter().any(|u| {
                let l = u.line();
                l.starts_with(b"SERVER_ERROR") || l.starts_with(b"CLIENT_ERROR")
            }),
            Err(_) => false,
        },
    }
}

fn delta(src: &mut Src<'_>) -> u64 {
    match src.below(5) {
        0 => 1,
        1 => u64::from(src.u8()),
        2 => src.u64(),
        3 => u64::MAX,
        _ => u64::from(src.u16()),
    }
}

fn shuffle(src: &mut Src<'_>, v: &mut [Vec<u8>]) {
    for i in (1..v.len()).rev() {
        let j = src.below(i + 1);
        v.swap(i, j);
    }
}

fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 20 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

fn key_of_me(line: &[u8]) -> usize {
    let token = line[3..]
        .split(|&b| b == b' ' || b == b'\r')
        .next()
        .unwrap_or(b"");
    let decoded = base64::decode(token);
    KEYS.iter()
        .position(|k| *k == token || decoded.as_deref() == Some(*k))
        .expect("me names a key of the key space")
}

/// A binary request frame.
pub fn bin_frame(
    opcode: u8,
    key: &[u8],
    extras: &[u8],
    value: &[u8],
    opaque: u32,
    cas: u64,
) -> Vec<u8> {
    let mut f = Vec::new();
    binary::write_request(&mut f, opcode, key, extras, value, opaque, cas)
        .expect("the generator's keys, extras and values fit the header");
    f
}

/// A binary header with explicit (possibly inconsistent) lengths, then `body`.
fn raw_frame(opcode: u8, keylen: u16, extlen: u8, bodylen: u32, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    binary::Header::request(opcode, keylen, extlen, bodylen, 1, 0).write(&mut f);
    f.extend_from_slice(body);
    f
}
