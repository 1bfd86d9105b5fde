//! The binary protocol's commands, answered as memcached 1.6.38's `proto_bin.c` answers them:
//! the same checks in the same order, the same statuses and error texts, quiet commands silent
//! only on success (and on a get miss), and the same connection fate after a malformed frame.

use crate::cache::{
    MetaArith, MetaDelete, MetaDeleteOptions, StoreMode, StoreOptions, StoreOutcome,
};
use crate::config::PROTOCOL_VERSION;
use crate::protocol::binary::{self, opcode, Header, Status, HEADER_LEN};
use crate::protocol::text::Tokens;
use crate::protocol::KEY_MAX_LENGTH;

use super::sasl;
use super::{ConnState, Handler, Next};

/// memcached's `MAX_SASL_MECH_LEN`.
const MAX_SASL_MECH_LEN: usize = 32;
/// What memcached's item for SASL credentials adds to them: header, the key's NUL, `\r\n`
/// (and 8 bytes of CAS unless `-C`).
const SASL_ITEM_OVERHEAD: usize = 48 + 1 + 2;

/// A binary request waiting for its value (a store or a SASL step).
#[derive(Debug, Clone, Copy)]
pub struct PendingBinary {
    /// The request, for the response's opcode, opaque and lengths.
    pub header: Header,
    /// The command without its quiet flag.
    pub command: u8,
    /// Answer only errors.
    pub quiet: bool,
}

impl Handler<'_> {
    /// Executes one binary request. `frame` holds the header, extras and key (the caller has
    /// checked the magic and buffered `HEADER_LEN + header.prefix_len()` bytes). A request with
    /// a value fills `pending` and returns [`Next::ReadData`] for `pending.length` bytes.
    pub fn handle_binary(&self, frame: &[u8], out: &mut Vec<u8>, pending: &mut ConnState) -> Next {
        let Some(head) = binary::header_bytes(frame) else {
            return Next::Close;
        };
        let req = Header::parse(head);
        let extras = &frame[HEADER_LEN..HEADER_LEN + usize::from(req.extlen)];
        let key = &frame[HEADER_LEN + usize::from(req.extlen)..];
        if !req.lengths_consistent() {
            binary::write_error(out, &req, Status::UnknownCommand);
            return Next::CloseAfterWrite;
        }
        if self.server.settings.sasl && !pending.authenticated && !sasl_exempt(req.opcode) {
            binary::write_error(out, &req, Status::AuthError);
            return Next::CloseAfterWrite;
        }
        let (command, quiet) = req.unquiet();
        if key.len() > KEY_MAX_LENGTH || !req.shape_ok(command) {
            binary::write_error(out, &req, Status::InvalidArguments);
            return Next::CloseAfterWrite;
        }
        let this = PendingBinary {
            header: req,
            command,
            quiet,
        };
        match command {
            opcode::VERSION => {
                binary::write_value(out, &req, PROTOCOL_VERSION.as_bytes(), 0);
                Next::ReadLine
            }
            opcode::NOOP => {
                binary::write_value(out, &req, b"", 0);
                Next::Transmit
            }
            opcode::QUIT => {
                if !quiet {
                    binary::write_value(out, &req, b"", 0);
                }
                Next::CloseAfterWrite
            }
            opcode::FLUSH => self.flush(&this, extras, out),
            opcode::GET | opcode::GETK | opcode::TOUCH | opcode::GAT | opcode::GATK => {
                self.get_or_touch(&this, extras, key, out, pending)
            }
            opcode::SET | opcode::ADD | opcode::REPLACE | opcode::APPEND | opcode::PREPEND => {
                self.begin_store(this, extras, key, pending, out)
            }
            opcode::DELETE => self.delete_binary(&this, key, out),
            opcode::INCREMENT | opcode::DECREMENT => {
                self.arithmetic_binary(&this, extras, key, pending, out)
            }
            opcode::STAT => self.stat_binary(&req, key, out),
            opcode::SASL_LIST_MECHS | opcode::SASL_AUTH | opcode::SASL_STEP
                if !self.server.settings.sasl =>
            {
                error_swallowing(out, &req, Status::UnknownCommand, req.value_len())
            }
            opcode::SASL_LIST_MECHS => {
                // memcached starts a new SASL exchange here, forgetting any earlier login.
                pending.authenticated = false;
                binary::write_value(out, &req, sasl::MECHANISMS.as_bytes(), 0);
                Next::ReadLine
            }
            opcode::SASL_AUTH | opcode::SASL_STEP => {
                let value_len = req.value_len();
                if key.len() > MAX_SASL_MECH_LEN {
                    return error_swallowing(out, &req, Status::InvalidArguments, value_len);
                }
                // memcached reads the credentials into an item, which must not be chunked.
                let s = &self.server.settings;
                let overhead = SASL_ITEM_OVERHEAD + if s.use_cas { 8 } else { 0 };
                if value_len + key.len() + overhead > s.slab_chunk_max {
                    return error_swallowing(out, &req, Status::OutOfMemory, value_len);
                }
                self.expect_value(this, key, value_len, pending)
            }
            // memcached swallows the whole body length again after the key and extras it has
            // already consumed.
            _ => error_swallowing(out, &req, Status::UnknownCommand, req.bodylen as usize),
        }
    }

    /// Finishes a binary request once its value has arrived.
    pub fn complete_binary(
        &self,
        pending: &mut ConnState,
        value: &[u8],
        out: &mut Vec<u8>,
    ) -> Next {
        let Some(this) = pending.binary else {
            return Next::ReadLine;
        };
        if matches!(this.command, opcode::SASL_AUTH | opcode::SASL_STEP) {
            return self.complete_sasl(&this, pending, value, out);
        }
        let Some(mode) = pending.mode else {
            return Next::ReadLine;
        };
        self.stats.set_cmds.incr();
        let outcome = self.store_pending(pending, mode, value);
        let req = &this.header;
        let status = match outcome {
            StoreOutcome::Stored { cas, .. } => {
                if !this.quiet {
                    binary::write_value(out, req, b"", cas);
                }
                return Next::ReadLine;
            }
            StoreOutcome::Exists => Status::KeyExists,
            StoreOutcome::NotFound => Status::KeyNotFound,
            StoreOutcome::NoMemory => Status::OutOfMemory,
            StoreOutcome::NotStored | StoreOutcome::TooLarge => match mode {
                StoreMode::Add => Status::KeyExists,
                StoreMode::Replace => Status::KeyNotFound,
                _ => Status::NotStored,
            },
        };
        error(out, req, status)
    }

    fn flush(&self, this: &PendingBinary, extras: &[u8], out: &mut Vec<u8>) -> Next {
        let req = &this.header;
        if !self.server.settings.flush_enabled {
            return error(out, req, Status::AuthError);
        }
        let delay = if extras.len() == 4 {
            binary::u32_at(extras, 0)
        } else {
            0
        };
        self.server.cache.flush_all(i64::from(delay));
        self.stats.flush_cmds.incr();
        if !this.quiet {
            binary::write_value(out, req, b"", 0);
        }
        Next::ReadLine
    }

    /// get, getk, touch, gat, gatk (and their quiet forms).
    fn get_or_touch(
        &self,
        this: &PendingBinary,
        extras: &[u8],
        key: &[u8],
        out: &mut Vec<u8>,
        pending: &mut ConnState,
    ) -> Next {
        let req = &this.header;
        let touch = matches!(this.command, opcode::TOUCH | opcode::GAT | opcode::GATK);
        let with_key = matches!(this.command, opcode::GETK | opcode::GATK);
        let with_value = this.command != opcode::TOUCH;
        let cache = &self.server.cache;
        let exptime = touch.then(|| cache.clock().expiry(i64::from(binary::u32_at(extras, 0))));
        let pin_from = if with_value {
            pending.pin_from()
        } else {
            usize::MAX
        };
        let found = cache.get_pinned(self.stats, key, exptime, pin_from, |item, pinned| {
            let keylen = if with_key { key.len() as u16 } else { 0 };
            let value_len = if with_value { item.data.len() } else { 0 };
            binary::write_header(out, req, Status::Ok, (4, keylen, value_len), item.cas);
            out.extend_from_slice(&item.flags.to_be_bytes());
            if with_key {
                out.extend_from_slice(key);
            }
            if with_value && !pinned {
                item.data.write_to(out);
            }
            value_len
        });
        let hit = found.map(|(len, pin)| {
            if let Some(pin) = pin {
                pending.push_pinned(out, pin);
            }
            len
        });
        self.count_get(key, hit, touch);
        if hit.is_some() || this.quiet {
            return Next::ReadLine;
        }
        {
            if with_key {
                // A getk miss carries the key instead of an error text.
                binary::write_header(out, req, Status::KeyNotFound, (0, key.len() as u16, 0), 0);
                out.extend_from_slice(key);
                Next::ReadLine
            } else {
                error(out, req, Status::KeyNotFound)
            }
        }
    }

    /// set/add/replace/append/prepend: checks the size, then waits for the value.
    fn begin_store(
        &self,
        this: PendingBinary,
        extras: &[u8],
        key: &[u8],
        pending: &mut ConnState,
        out: &mut Vec<u8>,
    ) -> Next {
        let req = this.header;
        let concatenate = matches!(this.command, opcode::APPEND | opcode::PREPEND);
        let (flags, expiration) = if concatenate {
            (0, 0)
        } else {
            (binary::u32_at(extras, 0), binary::u32_at(extras, 4))
        };
        let value_len = req.value_len();
        if self.server.prefix_stats.enabled() {
            self.server.prefix_stats.record_set(key);
        }
        let cache = &self.server.cache;
        if !cache.item_size_ok(key.len(), flags, value_len) {
            // A failed set must not leave the old value readable.
            if this.command == opcode::SET {
                cache.delete(self.stats, key);
            }
            return error_swallowing(out, &req, Status::TooLarge, value_len);
        }
        pending.mode = Some(match this.command {
            opcode::APPEND => StoreMode::Append,
            opcode::PREPEND => StoreMode::Prepend,
            _ if req.cas != 0 => StoreMode::Cas,
            opcode::ADD => StoreMode::Add,
            opcode::REPLACE => StoreMode::Replace,
            _ => StoreMode::Set,
        });
        pending.opts = StoreOptions {
            cas: req.cas,
            ..StoreOptions::default()
        };
        pending.flags = flags;
        pending.exptime = cache.clock().expiry(i64::from(expiration));
        let next = self.expect_value(this, key, value_len, pending);
        self.reserve_upload(pending, 0);
        next
    }

    fn expect_value(
        &self,
        this: PendingBinary,
        key: &[u8],
        value_len: usize,
        pending: &mut ConnState,
    ) -> Next {
        pending.key.clear();
        pending.key.extend_from_slice(key);
        pending.length = value_len;
        pending.noreply = this.quiet;
        pending.meta_reply = None;
        pending.binary = Some(this);
        Next::ReadData
    }

    fn delete_binary(&self, this: &PendingBinary, key: &[u8], out: &mut Vec<u8>) -> Next {
        let req = &this.header;
        if self.server.prefix_stats.enabled() {
            self.server.prefix_stats.record_delete(key);
        }
        self.hot(crate::hotkeys::Metric::Writes, key, 0);
        let cas = (req.cas != 0).then_some(req.cas);
        let stats = self.stats;
        let opts = MetaDeleteOptions {
            cas,
            ..MetaDeleteOptions::default()
        };
        match self.server.cache.meta_delete(stats, key, opts) {
            MetaDelete::Deleted { .. } | MetaDelete::Invalidated => {
                stats.delete_hits.incr();
                if !this.quiet {
                    binary::write_value(out, req, b"", 0);
                }
                Next::ReadLine
            }
            MetaDelete::CasMismatch => error(out, req, Status::KeyExists),
            MetaDelete::NotFound => {
                stats.delete_misses.incr();
                error(out, req, Status::KeyNotFound)
            }
            // Only `md x` empties an item (and may need memory for it).
            MetaDelete::NoMemory => error(out, req, Status::OutOfMemory),
        }
    }

    /// incr/decr: delta, initial value and expiry in the extras; an expiry of all ones means
    /// "do not create a missing item".
    fn arithmetic_binary(
        &self,
        this: &PendingBinary,
        extras: &[u8],
        key: &[u8],
        pending: &ConnState,
        out: &mut Vec<u8>,
    ) -> Next {
        let req = &this.header;
        let increment = this.command == opcode::INCREMENT;
        let delta = binary::u64_at(extras, 0);
        let initial = binary::u64_at(extras, 8);
        let expiration = binary::u32_at(extras, 16);
        let cache = &self.server.cache;
        let vivify = (expiration != u32::MAX).then_some(initial);
        let exptime = cache.clock().expiry(i64::from(expiration));
        let stats = self.stats;
        let step = (increment, delta, pending.in_place_ok(key));
        self.hot(crate::hotkeys::Metric::Writes, key, 0);
        let outcome =
            cache.meta_arithmetic(stats, key, step, (req.cas, 0), vivify, |item, value| {
                if item.created() {
                    item.set_exptime(exptime);
                }
                (value, item.cas(), item.created())
            });
        let status = match outcome {
            MetaArith::Done((value, cas, created)) => {
                if !created {
                    if increment {
                        stats.incr_hits.incr();
                    } else {
                        stats.decr_hits.incr();
                    }
                }
                if !this.quiet {
                    binary::write_value(out, req, &value.to_be_bytes(), cas);
                }
                return Next::ReadLine;
            }
            MetaArith::NotFound => {
                if increment {
                    stats.incr_misses.incr();
                } else {
                    stats.decr_misses.incr();
                }
                Status::KeyNotFound
            }
            MetaArith::NonNumeric => Status::NonNumeric,
            MetaArith::CasMismatch => Status::KeyExists,
            MetaArith::NoMemory => Status::OutOfMemory,
        };
        error(out, req, status)
    }

    /// `stat [group]`: one packet per statistic, then an empty one.
    fn stat_binary(&self, req: &Header, group: &[u8], out: &mut Vec<u8>) -> Next {
        let server = self.server;
        let mut text = Vec::new();
        if group.is_empty() {
            super::stats::stats_command(server, &Tokens::new(b"stats"), &mut text);
        } else if group.starts_with(b"reset") {
            super::stats::stats_command(server, &Tokens::new(b"stats reset"), &mut Vec::new());
        } else if group.starts_with(b"settings") {
            super::stats::stats_command(server, &Tokens::new(b"stats settings"), &mut text);
        } else if let Some(rest) = group.strip_prefix(b"detail") {
            let prefixes = &server.prefix_stats;
            if rest.starts_with(b" dump") {
                let mut dump = Vec::new();
                prefixes.dump(&mut dump);
                binary::write_stat(out, req, b"detailed", &dump);
            } else if rest.starts_with(b" on") {
                prefixes.set_enabled(true);
            } else if rest.starts_with(b" off") {
                prefixes.set_enabled(false);
            } else {
                return error(out, req, Status::KeyNotFound);
            }
        } else if matches!(group, b"items" | b"slabs" | b"sizes") {
            let mut line = b"stats ".to_vec();
            line.extend_from_slice(group);
            super::stats::stats_command(server, &Tokens::new(&line), &mut text);
        } else {
            return error(out, req, Status::KeyNotFound);
        }
        for line in text.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if let Some(stat) = line.strip_prefix(b"STAT ") {
                let split = stat.iter().position(|&b| b == b' ').unwrap_or(stat.len());
                let value = stat.get(split + 1..).unwrap_or(b"");
                binary::write_stat(out, req, &stat[..split], value);
            }
        }
        binary::write_stat(out, req, b"", b"");
        Next::ReadLine
    }

    fn complete_sasl(
        &self,
        this: &PendingBinary,
        pending: &mut ConnState,
        value: &[u8],
        out: &mut Vec<u8>,
    ) -> Next {
        let req = &this.header;
        let stats = self.stats;
        stats.auth_cmds.incr();
        // Every exchange starts unauthenticated, as memcached's `init_sasl_conn`.
        pending.authenticated = false;
        // The mechanism is read as a C string.
        let mechanism = pending.key.split(|&b| b == 0).next().unwrap_or_default();
        let plain = mechanism == sasl::PLAIN.as_bytes();
        let continues = std::mem::take(&mut pending.sasl_continues);
        let start = this.command == opcode::SASL_AUTH;
        if start && plain && value.is_empty() {
            // PLAIN without an initial response: the server asks for one (an empty challenge).
            pending.sasl_continues = true;
            binary::write_error(out, req, Status::AuthContinue);
            return Next::Transmit;
        }
        let ok = (start || continues)
            && plain
            && sasl::check_plain(self.server.settings.sasl_pwdb.as_deref(), value);
        if ok {
            pending.authenticated = true;
            binary::write_value(out, req, b"Authenticated", 0);
            Next::ReadLine
        } else {
            stats.auth_errors.incr();
            error(out, req, Status::AuthError)
        }
    }
}

/// Appends an error response. memcached sends an error at once (unless it then swallows a
/// value), so what is queued up to it is as good as sent.
fn error(out: &mut Vec<u8>, req: &Header, status: Status) -> Next {
    binary::write_error(out, req, status);
    Next::Transmit
}

/// Appends an error response and discards the next `n` bytes (a value the request carried).
/// Without anything to discard memcached sends the error at once, as [`error`].
/// memcached keeps the count in an `int`: past `i32::MAX` it is negative and nothing is
/// discarded (what follows is read as the next request).
fn error_swallowing(out: &mut Vec<u8>, req: &Header, status: Status, n: usize) -> Next {
    binary::write_error(out, req, status);
    if n == 0 || n > i32::MAX as usize {
        Next::Transmit
    } else {
        Next::Swallow(n)
    }
}

/// Commands memcached answers before SASL authentication.
fn sasl_exempt(op: u8) -> bool {
    matches!(
        op,
        opcode::SASL_LIST_MECHS | opcode::SASL_AUTH | opcode::SASL_STEP | opcode::VERSION
    )
}
