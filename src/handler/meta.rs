//! The meta commands (`mg ms md ma mn me`), following memcached 1.6's `proto_text.c` step for
//! step: the order of its checks decides which error a malformed request gets.

use std::io::Write;

use super::{reply, ConnState, Handler, Next};
use crate::cache::{
    MetaArith, MetaDelete, MetaDeleteOptions, MetaGetOptions, RelTime, StoreMode, StoreOptions,
    StoreOutcome,
};
use crate::hotkeys::Metric;
use crate::protocol::meta::{flag_tokens, preparse, write_key, MAX_OPAQUE, MAX_TOKENS};
use crate::protocol::text::{write_u64, MetaKind, Tokens};
use crate::protocol::KEY_MAX_LENGTH;

const BAD_FORMAT: &str = "CLIENT_ERROR bad command line format";
const OPAQUE_TOO_LONG: &str = "CLIENT_ERROR opaque token too long";

/// Appends ` ` and a number.
fn num(out: &mut Vec<u8>, tag: u8, n: u64) {
    out.push(b' ');
    out.push(tag);
    write_u64(out, n);
}

/// Appends an opaque token (` O…`) as the client sent it; memcached refuses long ones.
fn push_opaque(out: &mut Vec<u8>, token: &[u8]) -> Result<(), &'static str> {
    if token.len() > MAX_OPAQUE {
        return Err(OPAQUE_TOO_LONG);
    }
    out.push(b' ');
    out.extend_from_slice(token);
    Ok(())
}

/// Appends the ` O…` and ` k…` flags every meta reply echoes; errors on a too-long opaque.
fn echo_flags(
    out: &mut Vec<u8>,
    tokens: Tokens<'_>,
    start: usize,
    key: &[u8],
    binary: bool,
) -> Result<(), &'static str> {
    for t in flag_tokens(tokens, start) {
        match t[0] {
            b'O' => push_opaque(out, t)?,
            b'k' => write_key(out, key, binary),
            _ => {}
        }
    }
    Ok(())
}

impl Handler<'_> {
    /// Executes a meta command line.
    pub(super) fn meta(
        &self,
        kind: MetaKind,
        tokens: Tokens<'_>,
        out: &mut Vec<u8>,
        pending: &mut ConnState,
    ) -> Next {
        match kind {
            MetaKind::Noop => {
                out.extend_from_slice(b"MN\r\n");
                Next::Transmit
            }
            MetaKind::Debug => {
                self.meta_debug(tokens, out);
                Next::ReadLine
            }
            _ if tokens.count() < 3 => {
                reply(out, "ERROR", false);
                Next::ReadLine
            }
            _ if tokens.get(1).len() > KEY_MAX_LENGTH => {
                reply(out, BAD_FORMAT, false);
                Next::ReadLine
            }
            MetaKind::Get => {
                self.meta_get(tokens, out, pending);
                Next::ReadLine
            }
            MetaKind::Set => self.meta_set(tokens, out, pending),
            MetaKind::Delete => {
                self.meta_delete(tokens, out);
                Next::ReadLine
            }
            MetaKind::Arithmetic => {
                self.meta_arithmetic(tokens, out, pending);
                Next::ReadLine
            }
        }
    }

    fn expiry(&self, exptime: i32) -> RelTime {
        self.server.cache.clock().expiry(i64::from(exptime))
    }

    fn meta_get(&self, tokens: Tokens<'_>, out: &mut Vec<u8>, session: &mut ConnState) {
        if tokens.count() > MAX_TOKENS {
            reply(out, "CLIENT_ERROR options flags are too long", false);
            return;
        }
        let f = match preparse(&tokens, 2) {
            Ok(f) => f,
            Err(e) => return reply(out, e, false),
        };
        let key = f.binary_key.as_deref().unwrap_or(tokens.get(1));
        let opts = MetaGetOptions {
            no_update: f.no_update,
            delay_bump: f.delay_bump,
            vivify: f.vivify.is_some(),
            key_binary: f.binary_key.is_some(),
            new_cas: f.new_cas,
        };
        let start = out.len();
        let ttl = f.ttl.map(|t| self.expiry(t));
        let vivify_ttl = f.vivify.map(|t| self.expiry(t));
        let recache = f.recache.map(|t| self.expiry(t));
        let cache = &self.server.cache;
        let pin_from = if f.value {
            session.pin_from()
        } else {
            usize::MAX
        };
        let (result, pin) = cache.meta_get_pinned(self.stats, key, opts, pin_from, |item| {
            let Some(item) = item else {
                return Ok(false);
            };
            let mut won = false;
            if f.value {
                out.extend_from_slice(b"VA ");
                write_u64(out, item.data().len() as u64);
            } else {
                out.extend_from_slice(b"HD");
            }
            for t in flag_tokens(tokens, 2) {
                match t[0] {
                    b'T' => item.set_exptime(ttl.unwrap_or(0)),
                    b'N' if item.created() => {
                        item.set_exptime(vivify_ttl.unwrap_or(0));
                        won = true;
                    }
                    b'R' => {
                        let threshold = recache.unwrap_or(0);
                        if !item.token_sent()
                            && !item.created()
                            && item.exptime() != 0
                            && item.exptime() < threshold
                        {
                            won = true;
                        }
                    }
                    b's' => num(out, b's', item.data().len() as u64),
                    b't' => {
                        // Writing to a Vec cannot fail.
                        let _ = write!(out, " t{}", item.ttl());
                    }
                    b'c' => num(out, b'c', item.cas()),
                    b'f' => num(out, b'f', u64::from(item.flags())),
                    b'l' => num(out, b'l', u64::from(item.idle())),
                    b'h' => num(out, b'h', u64::from(item.fetched())),
                    b'O' => push_opaque(out, t)?,
                    b'k' => write_key(out, item.key(), item.key_binary()),
                    _ => {}
                }
            }
            // A client that already holds the recache token sees Z; a stale item gives the
            // token to the first client that sees it.
            if item.token_sent() {
                out.extend_from_slice(b" Z");
            }
            if item.stale() {
                out.extend_from_slice(b" X");
                if !item.token_sent() {
                    won = true;
                }
            }
            if won {
                out.extend_from_slice(b" W");
                item.set_token_sent();
            }
            out.extend_from_slice(b"\r\n");
            if f.value && !item.pinned() {
                item.data().write_to(out);
                out.extend_from_slice(b"\r\n");
            }
            Ok(true)
        });
        // What the reply carries of the item: its value and any key echoed.
        // (A pinned value and its `\r\n` join the output below.)
        let pinned_len = pin.as_ref().map_or(0, |p| p.len() + 2);
        self.hot(
            Metric::Reads,
            key,
            out.len().saturating_sub(start) + pinned_len,
        );
        let stats = self.stats;
        match result {
            Err(e) => {
                out.truncate(start);
                reply(out, e, false);
            }
            Ok(true) => {
                if let Some(pin) = pin {
                    session.push_pinned(out, pin);
                    out.extend_from_slice(b"\r\n");
                }
                // The reply refers to the item until it is written.
                session.referenced.push(crate::cache::hash::hash_key(key));
                // memcached counts a hit that set a TTL as a touch, any miss as a get.
                if ttl.is_some() {
                    stats.touch_cmds.incr();
                    stats.touch_hits.incr();
                } else {
                    stats.get_cmds.incr();
                    stats.get_hits.incr();
                }
            }
            Ok(false) => {
                stats.get_cmds.incr();
                stats.get_misses.incr();
                out.extend_from_slice(b"EN");
                if let Err(e) = echo_flags(out, tokens, 2, key, f.binary_key.is_some()) {
                    out.truncate(start);
                    return reply(out, e, false);
                }
                out.extend_from_slice(b"\r\n");
                if f.quiet {
                    out.truncate(start);
                }
            }
        }
    }

    fn meta_set(&self, tokens: Tokens<'_>, out: &mut Vec<u8>, pending: &mut ConnState) -> Next {
        if tokens.count() == 3 {
            reply(out, BAD_FORMAT, false);
            return Next::ReadLine;
        }
        if tokens.count() > MAX_TOKENS {
            reply(out, "CLIENT_ERROR options flags too long", false);
            return Next::ReadLine;
        }
        let length = match crate::numparse::safe_strtol(tokens.get(2)) {
            Some(l) if (0..=i32::MAX - 2).contains(&l) => l as usize,
            _ => {
                reply(out, BAD_FORMAT, false);
                return Next::ReadLine;
            }
        };
        // From here on an error swallows the data block.
        let refuse = |out: &mut Vec<u8>, e: &str| {
            reply(out, e, false);
            Next::Swallow(length + 2)
        };
        let f = match preparse(&tokens, 3) {
            Ok(f) => f,
            Err(e) => return refuse(out, e),
        };
        let mut reply_flags = Vec::new();
        for t in flag_tokens(tokens, 3) {
            match t[0] {
                b'O' if t.len() > MAX_OPAQUE => return refuse(out, OPAQUE_TOO_LONG),
                b'O' | b'k' | b'c' | b's' => {
                    reply_flags.extend_from_slice(t);
                    reply_flags.push(b' ');
                }
                _ => {}
            }
        }
        let mut mode = match f.mode {
            None | Some(b'S') => StoreMode::Set,
            Some(b'E') => StoreMode::Add,
            Some(b'A') => StoreMode::Append,
            Some(b'P') => StoreMode::Prepend,
            Some(b'R') => StoreMode::Replace,
            Some(_) => return refuse(out, "CLIENT_ERROR invalid mode for ms M token"),
        };
        if f.cas.is_some() && matches!(mode, StoreMode::Set | StoreMode::Replace) {
            mode = StoreMode::Cas;
        }
        let key = f.binary_key.as_deref().unwrap_or(tokens.get(1));
        let cache = &self.server.cache;
        if !cache.item_size_ok(key.len(), f.client_flags, length) {
            self.stats.store_too_large.incr();
            crate::cache::log_refusal(
                self.stats.client_fd.get(),
                key,
                mode,
                crate::cache::StoreOutcome::TooLarge,
            );
            // A failed store must not leave the old value readable.
            cache.delete(self.stats, key);
            return refuse(out, "SERVER_ERROR object too large for cache");
        }
        pending.mode = Some(mode);
        pending.opts = StoreOptions {
            cas: f.cas.unwrap_or(0),
            invalidate: f.invalidate && mode == StoreMode::Cas,
            key_binary: f.binary_key.is_some(),
            new_cas: f.new_cas,
            vivify: f
                .vivify
                .filter(|_| matches!(mode, StoreMode::Append | StoreMode::Prepend))
                .map(|t| self.expiry(t)),
        };
        pending.key.clear();
        pending.key.extend_from_slice(key);
        pending.flags = f.client_flags;
        pending.exptime = f.ttl.map_or(0, |t| self.expiry(t));
        pending.length = length;
        pending.noreply = f.quiet;
        pending.meta_reply = Some(reply_flags);
        self.reserve_upload(pending, 2);
        Next::ReadData
    }

    fn meta_delete(&self, tokens: Tokens<'_>, out: &mut Vec<u8>) {
        if tokens.count() > MAX_TOKENS {
            return reply(out, "CLIENT_ERROR options flags too long", false);
        }
        let Ok(f) = preparse(&tokens, 2) else {
            return reply(out, "CLIENT_ERROR invalid or duplicate flag", false);
        };
        let key = f.binary_key.as_deref().unwrap_or(tokens.get(1));
        let mut flags = Vec::new();
        if let Err(e) = echo_flags(&mut flags, tokens, 2, key, f.binary_key.is_some()) {
            return reply(out, e, false);
        }
        let ttl = f.ttl.map(|t| self.expiry(t));
        let cache = &self.server.cache;
        let opts = MetaDeleteOptions {
            cas: f.cas,
            invalidate: f.invalidate,
            new_exptime: ttl,
            new_cas: f.new_cas,
            remove_value: f.remove_value,
        };
        self.hot(Metric::Writes, key, 0);
        let code: &[u8] = match cache.meta_delete(self.stats, key, opts) {
            MetaDelete::Deleted { class, size } => {
                // memcached logs no deletion by an `md` with `I`, even one that emptied (`x`).
                if !f.invalidate {
                    crate::watch::deleted(key, "md", class, size);
                }
                self.stats.delete_hits.incr();
                if f.quiet {
                    return;
                }
                b"HD"
            }
            MetaDelete::Invalidated => {
                if f.quiet {
                    return;
                }
                b"HD"
            }
            MetaDelete::CasMismatch => {
                self.stats.delete_misses.incr();
                b"EX"
            }
            MetaDelete::NotFound => {
                self.stats.delete_misses.incr();
                b"NF"
            }
            MetaDelete::NoMemory => return reply(out, "SERVER_ERROR out of memory", false),
        };
        out.extend_from_slice(code);
        out.extend_from_slice(&flags);
        out.extend_from_slice(b"\r\n");
    }

    fn meta_arithmetic(&self, tokens: Tokens<'_>, out: &mut Vec<u8>, session: &ConnState) {
        if tokens.count() > MAX_TOKENS {
            return reply(out, "CLIENT_ERROR options flags too long", false);
        }
        let Ok(f) = preparse(&tokens, 2) else {
            return reply(out, "CLIENT_ERROR invalid or duplicate flag", false);
        };
        let increment = match f.mode {
            None | Some(b'I') | Some(b'+') => true,
            Some(b'D') | Some(b'-') => false,
            Some(_) => return reply(out, "CLIENT_ERROR invalid mode for ma M token", false),
        };
        let key = f.binary_key.as_deref().unwrap_or(tokens.get(1));
        let binary = f.binary_key.is_some();
        let ttl = f.ttl.map(|t| self.expiry(t));
        let vivify_ttl = f.vivify.map(|t| self.expiry(t));
        let start = out.len();
        let cache = &self.server.cache;
        let vivify = f.vivify.map(|_| f.initial);
        let cas = f.cas.unwrap_or(0);
        let step = (increment, f.delta, session.in_place_ok(key));
        self.hot(Metric::Writes, key, 0);
        let result = cache.meta_arithmetic(
            self.stats,
            key,
            step,
            (cas, f.new_cas),
            vivify,
            |item, value| {
                let digits = value.to_string();
                if f.value {
                    out.extend_from_slice(b"VA ");
                    write_u64(out, digits.len() as u64);
                } else {
                    out.extend_from_slice(b"HD");
                }
                for t in flag_tokens(tokens, 2) {
                    match t[0] {
                        b'c' => num(out, b'c', item.cas()),
                        b't' => {
                            let _ = write!(out, " t{}", item.ttl());
                        }
                        b'T' => item.set_exptime(ttl.unwrap_or(0)),
                        b'N' if item.created() => item.set_exptime(vivify_ttl.unwrap_or(0)),
                        b'O' => push_opaque(out, t)?,
                        b'k' => write_key(out, key, binary),
                        _ => {}
                    }
                }
                if f.value {
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(digits.as_bytes());
                }
                out.extend_from_slice(b"\r\n");
                Ok(item.created())
            },
        );
        let stats = self.stats;
        let code: &[u8] = match result {
            MetaArith::Done(Err(e)) => {
                out.truncate(start);
                return reply(out, e, false);
            }
            MetaArith::Done(Ok(created)) => {
                if !created {
                    if increment {
                        stats.incr_hits.incr();
                    } else {
                        stats.decr_hits.incr();
                    }
                }
                // Quiet mode hides a plain success; a vivified item is still reported.
                if f.quiet && !created {
                    out.truncate(start);
                }
                return;
            }
            MetaArith::NonNumeric => {
                return reply(
                    out,
                    "CLIENT_ERROR cannot increment or decrement non-numeric value",
                    false,
                )
            }
            MetaArith::NotFound => {
                if increment {
                    stats.incr_misses.incr();
                } else {
                    stats.decr_misses.incr();
                }
                b"NF"
            }
            MetaArith::CasMismatch => b"EX",
            MetaArith::NoMemory => return reply(out, "SERVER_ERROR out of memory", false),
        };
        out.extend_from_slice(code);
        if let Err(e) = echo_flags(out, tokens, 2, key, binary) {
            out.truncate(start);
            return reply(out, e, false);
        }
        out.extend_from_slice(b"\r\n");
    }

    /// `me <key> [b]`: an item's metadata in memcached's debug format. `cls` and `size` describe
    /// this server's memory, not memcached's.
    fn meta_debug(&self, tokens: Tokens<'_>, out: &mut Vec<u8>) {
        if tokens.count() < 3 || tokens.get(1).len() > KEY_MAX_LENGTH {
            return reply(out, BAD_FORMAT, false);
        }
        let mut key = tokens.get(1).to_vec();
        if tokens.count() >= 4 && tokens.get(2) == b"b" {
            match crate::protocol::base64::decode(&key) {
                Some(k) => key = k,
                None => return reply(out, BAD_FORMAT, false),
            }
        }
        let cache = &self.server.cache;
        let found = cache.debug_item(self.stats, &key, |item| {
            let size = item.size();
            out.extend_from_slice(b"ME ");
            if item.key_binary() {
                crate::protocol::base64::encode_into(item.key(), out);
            } else {
                out.extend_from_slice(item.key());
            }
            let exp = if item.exptime() == 0 { -1 } else { item.ttl() };
            let _ = write!(
                out,
                " exp={} la={} cas={} fetch={} cls={} size={}\r\n",
                exp,
                item.idle(),
                item.cas(),
                if item.fetched() { "yes" } else { "no" },
                item.class(),
                size
            );
        });
        if found.is_none() {
            out.extend_from_slice(b"EN\r\n");
        }
        self.stats.meta_cmds.incr();
    }
}

/// Finishes `ms` once the store is done: memcached's `_finalize_mset`.
pub(super) fn finish_set(
    pending: &ConnState,
    reply_flags: &[u8],
    outcome: StoreOutcome,
    out: &mut Vec<u8>,
) {
    let start = out.len();
    // `s`: the stored value's length, or on a refusal the length the client sent.
    let sent = pending.length as u64;
    let (code, cas, size): (&[u8], u64, u64) = match outcome {
        StoreOutcome::Stored { cas, len } => (b"HD", cas, u64::from(len)),
        StoreOutcome::Exists => (b"EX", 0, sent),
        StoreOutcome::NotFound => (b"NF", 0, sent),
        StoreOutcome::NotStored => (b"NS", 0, sent),
        StoreOutcome::TooLarge => {
            return reply(out, "SERVER_ERROR object too large for cache", false);
        }
        StoreOutcome::NoMemory => {
            return reply(out, "SERVER_ERROR out of memory storing object", false);
        }
    };
    out.extend_from_slice(code);
    for t in reply_flags.split(|&b| b == b' ').filter(|t| !t.is_empty()) {
        match t[0] {
            b'O' => {
                out.push(b' ');
                out.extend_from_slice(t);
            }
            b'k' => write_key(out, &pending.key, pending.opts.key_binary),
            b'c' => num(out, b'c', cas),
            b's' => num(out, b's', size),
            _ => {}
        }
    }
    out.extend_from_slice(b"\r\n");
    if pending.noreply && matches!(outcome, StoreOutcome::Stored { .. }) {
        out.truncate(start);
    }
}
