//! The text protocol's commands.

use std::sync::atomic::Ordering;

use crate::cache::{ArithOutcome, RelTime, StoreMode, StoreOptions, StoreOutcome};
use crate::config::PROTOCOL_VERSION;
use crate::protocol::text::{self, FlushDelay, Request, ShutdownMode, Tokens};
use crate::protocol::KEY_MAX_LENGTH;
use crate::server::Server;
use crate::stats::ThreadStats;

/// memcached's `MAX_VERBOSITY_LEVEL`.
const MAX_VERBOSITY: u32 = 2;

/// A multi-get stops adding values once this much output is queued, and resumes with the next
/// key when it has been written: a client's memory footprint stays bounded however many (or
/// however large) values one request names.
pub const OUTPUT_HIGH_WATER: usize = 1024 * 1024;

/// A connection's protocol state between request lines: a storage command waiting for its
/// data block, and the items that replies not yet written refer to.
#[derive(Debug, Clone, Default)]
pub struct ConnState {
    pub(super) mode: Option<StoreMode>,
    pub(super) opts: StoreOptions,
    pub(super) key: Vec<u8>,
    pub(super) flags: u32,
    pub(super) exptime: RelTime,
    /// Length of the data block without its `\r\n`.
    pub length: usize,
    pub(super) noreply: bool,
    /// For `ms`: the flag tokens that shape its reply (`O…`, `k`, `c`), space-separated.
    pub(super) meta_reply: Option<Vec<u8>>,
    /// Hashes of the keys of items that unsent `mg` replies refer to. memcached keeps such an
    /// item referenced until the reply is written, and an incr/decr then copies the item instead
    /// of rewriting it in place — which shows in the value (no space padding).
    pub(super) referenced: Vec<u64>,
    /// Replies are queued since memcached's last write (see [`ConnState::set_output`]).
    stacked: bool,
    /// Where in the output buffer the unsent replies start (see [`ConnState::set_output`]).
    unsent_from: usize,
    /// `-Y`: where the last authentication reply starts while it is unsent (memcached keeps
    /// one reply object for them and overwrites it).
    pub(super) auth_reply_at: Option<usize>,
    /// `-Y`: the data block being read is `user password`.
    pub(super) ascii_auth: bool,
    /// A binary request waiting for its value.
    pub(super) binary: Option<super::binary::PendingBinary>,
    /// Passed SASL (`-S`) or ASCII (`-Y`) authentication.
    pub(super) authenticated: bool,
    /// A PLAIN exchange began without credentials: the next SASL step carries them.
    pub(super) sasl_continues: bool,
    /// The connection's descriptor (`stats conns` marks the asking one).
    pub fd: i32,
    /// Where each value of a multi-get ends in the output but the last, when replies are sent
    /// one per value (UDP, as memcached sends each value of a multi-get as a reply of its own).
    pub reply_ends: Option<Vec<usize>>,
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

    /// Whether the pending store came from `ms` (its reply is a meta reply).
    pub fn is_meta_store(&self) -> bool {
        self.meta_reply.is_some()
    }

    pub(super) fn unsent_from(&self) -> usize {
        self.unsent_from
    }

    pub(super) fn stacked(&self) -> bool {
        self.stacked
    }

    pub(super) fn in_place_ok(&self, key: &[u8]) -> bool {
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
    pub(super) server: &'s Server,
    pub(super) stats: &'s ThreadStats,
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

    /// Executes one request line, appending its reply to `out`. A storage command fills
    /// `pending` and returns [`Next::ReadData`]. `resume` is 0 for a new line, or the offset a
    /// [`Next::Paused`] returned for the same line.
    pub fn handle_line(
        &self,
        line: &[u8],
        resume: usize,
        out: &mut Vec<u8>,
        pending: &mut ConnState,
    ) -> Next {
        if self.server.ascii_auth.is_some() && !pending.authenticated {
            return self.auth_line(line, out, pending);
        }
        let cache = &self.server.cache;
        let stats = self.stats;
        match text::parse(line) {
            Request::Get {
                keys,
                with_cas,
                touch,
            } => self.get(keys, with_cas, touch, resume, out, pending),
            Request::Store {
                command: mode,
                key,
                flags,
                exptime,
                length,
                cas,
                noreply,
            } => {
                if self.server.prefix_stats.enabled() {
                    self.server.prefix_stats.record_set(key);
                }
                if !cache.item_size_ok(key.len(), flags, length) {
                    stats.store_too_large.incr();
                    reply(out, "SERVER_ERROR object too large for cache", noreply);
                    crate::cache::log_refusal(key, mode, StoreOutcome::TooLarge);
                    // A failed set must not leave the old value readable.
                    if mode == StoreMode::Set {
                        cache.delete(stats, key);
                    }
                    return Next::Swallow(length + 2);
                }
                pending.mode = Some(mode);
                pending.opts = StoreOptions {
                    cas,
                    ..StoreOptions::default()
                };
                pending.key.clear();
                pending.key.extend_from_slice(key);
                pending.flags = flags;
                pending.exptime = cache.clock().expiry(i64::from(exptime));
                pending.length = length;
                pending.noreply = noreply;
                pending.meta_reply = None;
                Next::ReadData
            }
            Request::Delete { key, noreply } => {
                if self.server.prefix_stats.enabled() {
                    self.server.prefix_stats.record_delete(key);
                }
                if cache.delete(stats, key) {
                    stats.delete_hits.incr();
                    reply(out, "DELETED", noreply);
                } else {
                    stats.delete_misses.incr();
                    reply(out, "NOT_FOUND", noreply);
                }
                Next::ReadLine
            }
            Request::Arithmetic {
                key,
                increment,
                delta,
                noreply,
            } => {
                let in_place = pending.in_place_ok(key);
                match cache.arithmetic(stats, key, increment, delta, in_place) {
                    ArithOutcome::Value(v) => {
                        if increment {
                            stats.incr_hits.incr();
                        } else {
                            stats.decr_hits.incr();
                        }
                        if !noreply {
                            text::write_u64(out, v);
                            out.extend_from_slice(b"\r\n");
                        }
                    }
                    ArithOutcome::NotFound => {
                        if increment {
                            stats.incr_misses.incr();
                        } else {
                            stats.decr_misses.incr();
                        }
                        reply(out, "NOT_FOUND", noreply);
                    }
                    ArithOutcome::NoMemory => reply(out, "SERVER_ERROR out of memory", noreply),
                    ArithOutcome::NonNumeric => reply(
                        out,
                        "CLIENT_ERROR cannot increment or decrement non-numeric value",
                        noreply,
                    ),
                }
                Next::ReadLine
            }
            Request::Touch {
                key,
                exptime,
                noreply,
            } => {
                stats.touch_cmds.incr();
                let exptime = cache.clock().expiry(i64::from(exptime));
                if cache.touch(stats, key, exptime) {
                    stats.touch_hits.incr();
                    reply(out, "TOUCHED", noreply);
                } else {
                    stats.touch_misses.incr();
                    reply(out, "NOT_FOUND", noreply);
                }
                Next::ReadLine
            }
            Request::FlushAll { delay, noreply } => {
                stats.flush_cmds.incr();
                if !self.server.settings.flush_enabled {
                    reply(out, "CLIENT_ERROR flush_all not allowed", noreply);
                    return Next::ReadLine;
                }
                match delay {
                    FlushDelay::Invalid => {
                        reply(out, "CLIENT_ERROR invalid exptime argument", noreply);
                        return Next::ReadLine;
                    }
                    FlushDelay::Now => cache.flush_all(0),
                    FlushDelay::Seconds(s) => cache.flush_all(i64::from(s)),
                }
                reply(out, "OK", noreply);
                Next::ReadLine
            }
            Request::Version => {
                out.extend_from_slice(b"VERSION ");
                out.extend_from_slice(PROTOCOL_VERSION.as_bytes());
                out.extend_from_slice(b"\r\n");
                Next::ReadLine
            }
            Request::Quit => Next::CloseAfterWrite,
            Request::Verbosity { level, noreply } => {
                let level = level.min(MAX_VERBOSITY);
                self.server.verbosity.store(level, Ordering::Relaxed);
                (self.server.hooks.set_verbosity)(level);
                reply(out, "OK", noreply);
                Next::ReadLine
            }
            Request::Shutdown(mode) => {
                if !self.server.settings.shutdown_command {
                    reply(out, "ERROR: shutdown not enabled", false);
                    return Next::ReadLine;
                }
                match mode {
                    ShutdownMode::Now => {
                        (self.server.hooks.stop)(false);
                        Next::Shutdown
                    }
                    ShutdownMode::Graceful => {
                        (self.server.hooks.stop)(true);
                        Next::Shutdown
                    }
                    ShutdownMode::Invalid => {
                        reply(out, "CLIENT_ERROR invalid shutdown mode", false);
                        Next::ReadLine
                    }
                }
            }
            Request::CacheMemlimit { megabytes, noreply } => {
                let line = match megabytes {
                    None => "ERROR",
                    Some(mb) if mb < 8 => "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m",
                    Some(mb) if mb > 1_000_000_000 => {
                        "MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes"
                    }
                    Some(mb) => {
                        if cache.set_memory_limit(mb as usize * 1024 * 1024) {
                            log::info!("maxbytes adjusted to {mb}m");
                            "OK"
                        } else {
                            "MEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust"
                        }
                    }
                };
                reply(out, line, noreply);
                Next::ReadLine
            }
            Request::Stats(tokens) => {
                self.stats_command(&tokens, pending.fd, out);
                Next::ReadLine
            }
            Request::Meta(kind, tokens) => self.meta(kind, tokens, out, pending),
            Request::LruCrawler(tokens) => self.lru_crawler(&tokens, resume, out, pending),
            Request::Slabs(tokens) => {
                self.slabs(&tokens, out);
                Next::ReadLine
            }
            Request::Lru(tokens) => {
                self.lru(&tokens, out);
                Next::ReadLine
            }
            Request::Watch(tokens) => self.watch(&tokens, out, pending),
            Request::RefreshCerts { noreply } => {
                // memcached writes a failure past noreply.
                match self.server.tls.as_ref().map(|tls| tls.refresh()) {
                    None => reply(out, "Error TLS not enabled", false),
                    Some(Ok(())) => reply(out, "OK", noreply),
                    Some(Err(message)) => reply(out, &message, false),
                }
                Next::ReadLine
            }
            Request::Error {
                reply: line,
                noreply,
            } => {
                reply(out, line, noreply);
                Next::ReadLine
            }
            Request::Close => Next::Close,
        }
    }

    /// `get`/`gets`/`gat`/`gats`: values for the keys that are present, then `END`.
    fn get(
        &self,
        keys: text::Keys<'_>,
        with_cas: bool,
        touch: Option<i32>,
        resume: usize,
        out: &mut Vec<u8>,
        pending: &mut ConnState,
    ) -> Next {
        let cache = &self.server.cache;
        let exptime = touch.map(|t| cache.clock().expiry(i64::from(t)));
        if resume == 0 {
            // memcached looks up the keys before a too-long one (counting them) and then sends
            // only the error, dropping the values it had queued. (It also drops the unsent
            // replies of earlier pipelined commands; deliberately not here — see
            // tests/connections.rs `replies_before_a_get_with_a_too_long_key_are_kept`.)
            let too_long = keys.iter().position(|k| k.len() > KEY_MAX_LENGTH);
            if let Some(bad) = too_long {
                for key in keys.iter().take(bad) {
                    let hit = cache.get(self.stats, key, exptime, |_| ());
                    self.count_get(key, hit.is_some(), touch.is_some());
                }
                reply(out, "CLIENT_ERROR bad command line format", false);
                return Next::ReadLine;
            }
        }
        let mut keys = keys.iter_from(resume).peekable();
        while let Some((offset, key)) = keys.next() {
            if out.len() >= OUTPUT_HIGH_WATER {
                return Next::Paused(offset);
            }
            let hit = cache.get(self.stats, key, exptime, |item| {
                let cas = with_cas.then_some(item.cas);
                text::write_value_header(out, item.key, item.flags, item.data.len(), cas);
                item.data.write_to(out);
                out.extend_from_slice(b"\r\n");
            });
            self.count_get(key, hit.is_some(), touch.is_some());
            if let Some(ends) = &mut pending.reply_ends {
                if keys.peek().is_some() {
                    ends.push(out.len());
                }
            }
        }
        out.extend_from_slice(b"END\r\n");
        Next::Transmit
    }

    pub(super) fn count_get(&self, key: &[u8], hit: bool, touch: bool) {
        let stats = self.stats;
        if self.server.prefix_stats.enabled() {
            self.server.prefix_stats.record_get(key, hit);
        }
        let (cmds, hits, misses) = if touch {
            (&stats.touch_cmds, &stats.touch_hits, &stats.touch_misses)
        } else {
            (&stats.get_cmds, &stats.get_hits, &stats.get_misses)
        };
        cmds.incr();
        if hit {
            hits.incr();
        } else {
            misses.incr();
        }
    }

    /// Finishes a storage command once its data block (`length + 2` bytes, which should end in
    /// `\r\n`) has arrived.
    pub fn complete_store(&self, pending: &mut ConnState, block: &[u8], out: &mut Vec<u8>) {
        if pending.ascii_auth {
            return self.auth_token(pending, block, out);
        }
        let stats = self.stats;
        stats.set_cmds.incr();
        let length = pending.length;
        if block.len() != length + 2 || &block[length..] != b"\r\n" {
            // A meta set always reports errors, even in quiet mode.
            let noreply = pending.noreply && pending.meta_reply.is_none();
            reply(out, "CLIENT_ERROR bad data chunk", noreply);
            return;
        }
        let Some(mode) = pending.mode else {
            return;
        };
        let outcome = self.store_pending(pending, mode, &block[..length]);
        match outcome {
            StoreOutcome::TooLarge => stats.store_too_large.incr(),
            StoreOutcome::NoMemory => stats.store_no_memory.incr(),
            _ => {}
        }
        if let Some(tokens) = &pending.meta_reply {
            super::meta::finish_set(pending, tokens, outcome, out);
            return;
        }
        let line = match outcome {
            StoreOutcome::Stored(_) => "STORED",
            StoreOutcome::Exists => "EXISTS",
            StoreOutcome::NotFound => "NOT_FOUND",
            StoreOutcome::NotStored => "NOT_STORED",
            StoreOutcome::TooLarge => "SERVER_ERROR object too large for cache",
            StoreOutcome::NoMemory => "SERVER_ERROR out of memory storing object",
        };
        reply(out, line, pending.noreply);
    }

    /// Stores the value a pending storage command (text, meta or binary) was waiting for,
    /// counting CAS outcomes as memcached does (for `cas` only) and, as memcached, deleting
    /// the old value when a set fails for want of memory.
    pub(super) fn store_pending(
        &self,
        pending: &ConnState,
        mode: StoreMode,
        value: &[u8],
    ) -> StoreOutcome {
        let stats = self.stats;
        let cache = &self.server.cache;
        let outcome = cache.store_with(
            stats,
            mode,
            pending.opts,
            &pending.key,
            pending.flags,
            pending.exptime,
            value,
        );
        match (outcome, mode) {
            (StoreOutcome::Stored(_), StoreMode::Cas) => stats.cas_hits.incr(),
            (StoreOutcome::Exists, StoreMode::Cas) => stats.cas_badval.incr(),
            (StoreOutcome::NotFound, StoreMode::Cas) => stats.cas_misses.incr(),
            (StoreOutcome::NoMemory, StoreMode::Set) => {
                cache.delete(stats, &pending.key);
            }
            _ => {}
        }
        outcome
    }

    fn stats_command(&self, tokens: &Tokens<'_>, fd: i32, out: &mut Vec<u8>) {
        if tokens.count() > 2 && tokens.get(1) == b"cachedump" {
            return self.cachedump(tokens, out);
        }
        if tokens.count() > 2 && tokens.get(1) == b"conns" {
            return super::stats::conns(self.server, fd, out);
        }
        super::stats::stats_command(self.server, tokens, out);
    }
}

/// Appends a reply line unless the client asked for silence.
pub(super) fn reply(out: &mut Vec<u8>, line: &str, noreply: bool) {
    if !noreply {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}
