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
//!
//! # Files
//!
//! - `mod.rs`: the entry point ([`run`]) and the run loop: well-formed operations batched into
//!   pipelines and cut into reads, malformed and raw requests sent alone, the final sweep.
//! - `input.rs`: [`Src`], the input read as choices, and the choices every protocol's
//!   generator shares (values, flags, exptimes, deltas, store modes, flag order).
//! - `op.rs`: what an operation is: the key space, its meaning (`Sem`), its spelling (`Style`).
//! - `generate_text.rs`, `generate_meta.rs`, `generate_binary.rs`: well-formed operations, one
//!   protocol each (and [`bin_frame`]).
//! - `malformed.rs`: malformed requests from templates, and raw bytes.
//! - `check.rs`: reply checking: the split by protocol, the checks text and meta share
//!   (version, stats, `mn`, `me`…), the errors tolerated after raw bytes.
//! - `check_text.rs`, `check_meta.rs`, `check_binary.rs`: each protocol's replies read into
//!   results (stored, hit, miss…) for the model.
//! - `model.rs`: the model of the cache: what it knows of each key, the result it predicts,
//!   and how each result updates it.

use std::collections::VecDeque;

use memcached_rs::config::Settings;
use memcached_rs::handler::Handler;
use memcached_rs::server::Server;
use memcached_rs::stats::ThreadStats;

use crate::driver::{Connection, Fate};
use crate::replies::{esc, split_binary, split_text};

use model::Known;
use op::{key_name, Op, Proto, Sem, Style, KEYS};

mod check;
mod check_binary;
mod check_meta;
mod check_text;
mod generate_binary;
mod generate_meta;
mod generate_text;
mod input;
mod malformed;
mod model;
mod op;

pub use generate_binary::bin_frame;
pub use input::Src;

/// The settings of the server under test: memcached's defaults (64 MB, so a run's few keys
/// never cause an eviction) with a smaller hash table, which is cheaper to build per run.
pub fn settings() -> Settings {
    Settings {
        hashpower_init: 12,
        shutdown_command: false,
        ..Settings::default()
    }
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
}
