//! The storage commands — set, add, replace, append, prepend and cas, from their request line
//! to their data block — and delete and touch.

use super::upload::{Upload, UPLOAD_FROM};
use super::{reply, ConnState, Handler, Next};
use crate::cache::{StoreMode, StoreOptions, StoreOutcome};
use crate::hotkeys::Metric;
use crate::protocol::text::StoreLine;

impl Handler<'_> {
    /// A storage command's line: checks the size, then waits for the data block.
    pub(super) fn store_line(
        &self,
        line: &StoreLine<'_>,
        out: &mut Vec<u8>,
        pending: &mut ConnState,
    ) -> Next {
        let StoreLine {
            command: mode,
            key,
            flags,
            exptime,
            length,
            cas,
            noreply,
        } = *line;
        let cache = &self.server.cache;
        let stats = self.stats;
        if self.server.prefix_stats.enabled() {
            self.server.prefix_stats.record_set(key);
        }
        if !cache.item_size_ok(key.len(), flags, length) {
            stats.store_too_large.incr();
            reply(out, "SERVER_ERROR object too large for cache", noreply);
            crate::cache::log_refusal(stats.client_fd.get(), key, mode, StoreOutcome::TooLarge);
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
        self.reserve_upload(pending, 2);
        Next::ReadData
    }

    /// Before a store's data block is read: a large value, on a connection that reads values
    /// into the arena, gets its item's chunks now and is received into them
    /// ([`super::upload`]); `trailer_len` bytes (the text protocol's `\r\n`) follow it.
    /// Append and prepend join the value with the old one, so theirs is read into the input.
    pub(super) fn reserve_upload(&self, pending: &mut ConnState, trailer_len: usize) {
        pending.upload = None;
        let whole = pending
            .mode
            .is_some_and(|m| !matches!(m, StoreMode::Append | StoreMode::Prepend));
        if !whole || !pending.arena_io() || pending.length < UPLOAD_FROM {
            return;
        }
        let cache = &self.server.cache;
        pending.upload = cache
            .reserve(&pending.key, pending.flags, pending.length)
            .map(|reservation| Upload::new(reservation, trailer_len));
    }

    /// `delete`.
    pub(super) fn delete(&self, key: &[u8], noreply: bool, out: &mut Vec<u8>) -> Next {
        let cache = &self.server.cache;
        let stats = self.stats;
        if self.server.prefix_stats.enabled() {
            self.server.prefix_stats.record_delete(key);
        }
        self.hot(Metric::Writes, key, 0);
        if let Some((class, size)) = cache.delete_item(stats, key) {
            crate::watch::deleted(key, "delete", class, size);
            stats.delete_hits.incr();
            reply(out, "DELETED", noreply);
        } else {
            stats.delete_misses.incr();
            reply(out, "NOT_FOUND", noreply);
        }
        Next::ReadLine
    }

    /// `touch`.
    pub(super) fn touch(&self, key: &[u8], exptime: i32, noreply: bool, out: &mut Vec<u8>) -> Next {
        let cache = &self.server.cache;
        let stats = self.stats;
        stats.touch_cmds.incr();
        self.hot(Metric::Writes, key, 0);
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

    /// Finishes a storage command once its data block (`length + 2` bytes, which should end in
    /// `\r\n`) has arrived: in `block`, or, for a value received into its chunks, in the
    /// pending upload (`block` is then empty).
    pub fn complete_store(&self, pending: &mut ConnState, block: &[u8], out: &mut Vec<u8>) {
        if pending.ascii_auth {
            return self.auth_token(pending, block, out);
        }
        let stats = self.stats;
        stats.set_cmds.incr();
        let length = pending.length;
        // A value received into its chunks left only its trailer to check here.
        let (value, well_formed) = match &pending.upload {
            Some(upload) => (&[][..], upload.trailer() == b"\r\n"),
            None => (
                block.get(..length).unwrap_or_default(),
                block.len() == length + 2 && &block[length..] == b"\r\n",
            ),
        };
        if !well_formed {
            // (A received value's chunks go back when the session drops the upload.)
            // A meta set always reports errors, even in quiet mode.
            let noreply = pending.noreply && pending.meta_reply.is_none();
            reply(out, "CLIENT_ERROR bad data chunk", noreply);
            return;
        }
        let Some(mode) = pending.mode else {
            return;
        };
        let outcome = self.store_pending(pending, mode, value);
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
            StoreOutcome::Stored { .. } => "STORED",
            StoreOutcome::Exists => "EXISTS",
            StoreOutcome::NotFound => "NOT_FOUND",
            StoreOutcome::NotStored => "NOT_STORED",
            StoreOutcome::TooLarge => "SERVER_ERROR object too large for cache",
            StoreOutcome::NoMemory => "SERVER_ERROR out of memory storing object",
        };
        reply(out, line, pending.noreply);
    }

    /// Stores the value a pending storage command (text, meta or binary) was waiting for —
    /// `value`, or the upload's when it was received into its chunks — counting CAS outcomes
    /// as memcached does (for `cas` only) and, as memcached, deleting the old value when a set
    /// fails for want of memory.
    pub(super) fn store_pending(
        &self,
        pending: &mut ConnState,
        mode: StoreMode,
        value: &[u8],
    ) -> StoreOutcome {
        let stats = self.stats;
        let cache = &self.server.cache;
        let upload = pending.upload.take();
        let len = upload.as_ref().map_or(value.len(), Upload::value_len);
        self.hot(Metric::Writes, &pending.key, len);
        let outcome = match upload {
            Some(upload) => cache.store_reserved(
                stats,
                mode,
                pending.opts,
                pending.exptime,
                upload.into_reservation(),
            ),
            None => cache.store_with(
                stats,
                mode,
                pending.opts,
                &pending.key,
                pending.flags,
                pending.exptime,
                value,
            ),
        };
        match (outcome, mode) {
            (StoreOutcome::Stored { .. }, StoreMode::Cas) => stats.cas_hits.incr(),
            (StoreOutcome::Exists, StoreMode::Cas) => stats.cas_badval.incr(),
            (StoreOutcome::NotFound, StoreMode::Cas) => stats.cas_misses.incr(),
            (StoreOutcome::NoMemory, StoreMode::Set) => {
                cache.delete(stats, &pending.key);
            }
            _ => {}
        }
        outcome
    }
}
