//! Executes parsed requests against the cache and writes the replies.
//!
//! This is the seam between the pure protocol parsers and the cache: it owns the command
//! semantics that are neither parsing nor storage — statistics, `noreply`, the order in which
//! memcached checks things, and what happens to the connection next. The core types are here;
//! each command family has a file of its own, whatever protocol asks for it:
//!
//! - [`text`]: the text protocol's dispatch; [`meta`] and [`binary`] are the other front ends;
//! - `storage`: set, add, replace, append, prepend, cas — the line and its data block — and
//!   delete and touch;
//! - `retrieval`: get, gets, gat, gats; `arithmetic`: incr, decr;
//! - `stats`, `crawler` (lru_crawler), `watch`, `admin` (flush_all, verbosity, shutdown,
//!   cache_memlimit, version, refresh_certs, slabs, lru);
//! - `ascii_auth` (`-Y`) and `sasl` (`-S`).

mod admin;
mod arithmetic;
mod ascii_auth;
pub mod binary;
mod crawler;
mod hotkeys;
mod meta;
pub mod pinned;
mod retrieval;
mod sasl;
mod stats;
mod storage;
pub mod text;
pub mod upload;
mod watch;

use crate::cache::{RelTime, StoreMode, StoreOptions};
use crate::server::Server;
use crate::stats::ThreadStats;

/// A multi-get stops adding values once this much output is queued, and resumes with the next
/// key when it has been written: a client's memory footprint stays bounded however many (or
/// however large) values one request names.
pub const OUTPUT_HIGH_WATER: usize = 1024 * 1024;

/// A connection's protocol state between request lines: a storage command waiting for its
/// data block, and the items that replies not yet written refer to.
#[derive(Debug, Default)]
pub struct ConnState {
    mode: Option<StoreMode>,
    opts: StoreOptions,
    key: Vec<u8>,
    flags: u32,
    exptime: RelTime,
    /// Length of the data block without its `\r\n`.
    pub length: usize,
    /// A large value being received into the chunks reserved for it, when the connection
    /// reads values so ([`upload`]); `None` when the data block is read into the input.
    pub upload: Option<upload::Upload>,
    noreply: bool,
    /// For `ms`: the flag tokens that shape its reply (`O…`, `k`, `c`), space-separated.
    meta_reply: Option<Vec<u8>>,
    /// Hashes of the keys of items that unsent `mg` replies refer to. memcached keeps such an
    /// item referenced until the reply is written, and an incr/decr then copies the item instead
    /// of rewriting it in place — which shows in the value (no space padding).
    referenced: Vec<u64>,
    /// Replies are queued since memcached's last write (see [`ConnState::set_output`]).
    stacked: bool,
    /// Where in the output buffer the unsent replies start (see [`ConnState::set_output`]).
    unsent_from: usize,
    /// `-Y`: where the last authentication reply starts while it is unsent (memcached keeps
    /// one reply object for them and overwrites it).
    auth_reply_at: Option<usize>,
    /// `-Y`: the data block being read is `user password`.
    ascii_auth: bool,
    /// A binary request waiting for its value.
    binary: Option<binary::PendingBinary>,
    /// Passed SASL (`-S`) or ASCII (`-Y`) authentication.
    authenticated: bool,
    /// A PLAIN exchange began without credentials: the next SASL step carries them.
    sasl_continues: bool,
    /// The connection's descriptor (`stats conns` marks the asking one).
    pub fd: i32,
    /// Where each value of a multi-get ends in the output but the last, when replies are sent
    /// one per value (UDP, as memcached sends each value of a multi-get as a reply of its own).
    pub reply_ends: Option<Vec<usize>>,
    /// Large values the unwritten replies refer to, when the connection writes them from the
    /// arena ([`pinned`]); `None` when values are copied into the output.
    pub pinned: Option<pinned::PinnedValues>,
}

impl ConnState {
    /// The replies were written: no item is referenced any more.
    pub fn replies_written(&mut self) {
        self.referenced.clear();
        self.auth_reply_at = None;
    }

    /// Records the output buffer's state before a request: `queued` bytes, of which those from
    /// `unsent_from` on are replies memcached would not have sent yet.
    pub fn set_output(&mut self, queued: usize, unsent_from: usize) {
        self.stacked = queued > unsent_from;
        self.unsent_from = unsent_from;
    }

    /// Whether large values go between the socket and the arena without a copy in between
    /// (a plain TCP or unix connection: TLS and UDP copy).
    fn arena_io(&self) -> bool {
        self.pinned.is_some()
    }

    /// The smallest value a reply pins rather than copies, if this connection pins values
    /// (else `usize::MAX`).
    fn pin_from(&self) -> usize {
        if self.arena_io() {
            pinned::PIN_FROM
        } else {
            usize::MAX
        }
    }

    /// Queues a pinned value at the end of `out`.
    fn push_pinned(&mut self, out: &[u8], pin: crate::cache::Pin) {
        if let Some(pinned) = &mut self.pinned {
            pinned.push(out.len(), pin);
        }
    }

    /// Cuts the output at `len`, and the pinned values after it.
    pub fn truncate_output(&mut self, out: &mut Vec<u8>, len: usize) {
        out.truncate(len);
        if let Some(pinned) = &mut self.pinned {
            pinned.truncate(len);
        }
    }

    /// Output queued: the bytes of `out` from `written` on, and the pinned values.
    pub fn queued(&self, out: &[u8], written: usize) -> usize {
        out.len() - written + self.pinned.as_ref().map_or(0, |p| p.bytes())
    }

    /// Whether the pending store came from `ms` (its reply is a meta reply).
    pub fn is_meta_store(&self) -> bool {
        self.meta_reply.is_some()
    }

    fn unsent_from(&self) -> usize {
        self.unsent_from
    }

    fn stacked(&self) -> bool {
        self.stacked
    }

    fn in_place_ok(&self, key: &[u8]) -> bool {
        self.referenced.is_empty() || !self.referenced.contains(&crate::cache::hash::hash_key(key))
    }
}

/// What the connection does after a request line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Read the next request line.
    ReadLine,
    /// The request is half done: write the queued output, then call `handle_line` again with
    /// the same line and this resume offset.
    Paused(usize),
    /// Read the next request line; the replies so far are complete and memcached would send
    /// them now (it transmits after every get), so a later `Close` must not drop them.
    Transmit,
    /// Read `length + 2` bytes of data for the pending store, then call `complete_store`.
    ReadData,
    /// Discard this many bytes (a refused data block), then read lines again.
    Swallow(usize),
    /// Send what is queued, then close (`quit`).
    CloseAfterWrite,
    /// Close at once.
    Close,
    /// Close at once: the `shutdown` command stops the server (the close is logged as such).
    Shutdown,
    /// Send what is queued, then hand the connection to the `watch` logger with these event
    /// kinds (a place among the watchers is already claimed).
    Watch(u16),
}

/// Executes text requests for one connection's worker thread.
#[derive(Debug)]
pub struct Handler<'s> {
    server: &'s Server,
    stats: &'s ThreadStats,
}

impl<'s> Handler<'s> {
    /// A handler that counts into `stats`.
    pub fn new(server: &'s Server, stats: &'s ThreadStats) -> Self {
        Handler { server, stats }
    }

    /// The server's settings.
    pub fn settings(&self) -> &crate::config::Settings {
        &self.server.settings
    }
}

impl Handler<'_> {
    /// Counts a request for `key` that moved `bytes` of value toward the hot keys.
    #[inline]
    fn hot(&self, metric: crate::hotkeys::Metric, key: &[u8], bytes: usize) {
        let clock = self.server.cache.clock();
        let hotkeys = &self.server.hotkeys;
        let bytes = key.len() + bytes;
        self.stats
            .hot
            .record(hotkeys, metric, key, bytes, || clock.now());
        if crate::watch::watching(crate::watch::kind::HOTKEYS) {
            self.watch_hot_keys();
        }
    }
}

/// Appends a reply line unless the client asked for silence.
fn reply(out: &mut Vec<u8>, line: &str, noreply: bool) {
    if !noreply {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}
