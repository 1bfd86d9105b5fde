//! Locked access for the meta protocol: look an item up, let the caller read it and decide, and
//! apply the decision — all under the item's lock, so a meta command sees and changes one
//! consistent item (memcached's `limited_get_locked` … `item_unlock`).

use super::item::{self, Header};
use super::ops::NeedRoom;
use super::{Cache, Chunks, Found, Pin, RelTime, Shard, StoreMode, StoreOutcome, Value};
use crate::stats::ThreadStats;
use std::sync::Arc;

/// How a meta get treats the item it reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetaGetOptions {
    /// `u`: leave the access time, fetched bit and LRU position alone.
    pub no_update: bool,
    /// Report the item as it was before this access (`h`, `l`, …): bump only afterwards.
    pub delay_bump: bool,
    /// `N`: on a miss, create an empty item and hand it over as created.
    pub vivify: bool,
    /// The key arrived base64-encoded (kept on a vivified item).
    pub key_binary: bool,
    /// `E`: a vivified item's CAS id instead of the counter's next (0: none).
    pub new_cas: u64,
}

/// What a meta delete is asked to do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetaDeleteOptions {
    /// `C`: the CAS id the item must have.
    pub cas: Option<u64>,
    /// `I`: mark the item stale instead of removing it.
    pub invalidate: bool,
    /// `T` with `I`: the stale item's new expiry.
    pub new_exptime: Option<RelTime>,
    /// `E`: the CAS id a kept item gets instead of the counter's next (0: none).
    pub new_cas: u64,
    /// `x`: keep the item but replace its value with an empty one (flags 0, no expiry).
    pub remove_value: bool,
}

/// What a meta delete did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaDelete {
    /// Removed (or, with `x`, emptied): the item's class and the value length it has now
    /// (0 when emptied), as `watch deletions` logs them.
    Deleted {
        /// Slab class of the removed or emptied item.
        class: u8,
        /// Its value length.
        size: u32,
    },
    /// Marked stale instead (`I`).
    Invalidated,
    /// The CAS id did not match.
    CasMismatch,
    /// No such item.
    NotFound,
    /// `x` needed memory for the emptied item that could not be freed.
    NoMemory,
}

/// What a meta arithmetic did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaArith<R> {
    /// Applied (or vivified); carries what the caller's closure returned.
    Done(R),
    /// No such item and no vivify.
    NotFound,
    /// The value is not a number.
    NonNumeric,
    /// The CAS id did not match.
    CasMismatch,
    /// The result needed memory that could not be freed.
    NoMemory,
}

/// An item under its lock: read its fields, change its metadata.
#[derive(Debug)]
pub struct ItemMut<'a> {
    cache: &'a Cache,
    shard: &'a mut Shard,
    found: Found,
    now: RelTime,
    created: bool,
    /// The value is pinned for the reply: it is not to be copied.
    pinned: bool,
}

impl ItemMut<'_> {
    fn save(&mut self) {
        self.cache.write_header(self.shard, &self.found);
    }
    /// The key.
    pub fn key(&self) -> &[u8] {
        self.cache
            .key_of(&self.shard.table.entry(self.found.idx).chunk)
    }
    /// Whether the value is pinned for the reply (which then writes it from the pin, not from
    /// [`ItemMut::data`]).
    pub fn pinned(&self) -> bool {
        self.pinned
    }
    /// The value.
    pub fn data(&self) -> Value<'_> {
        self.cache.value(self.shard, &self.found)
    }
    /// Client flags.
    pub fn flags(&self) -> u32 {
        self.found.header.flags
    }
    /// CAS id.
    pub fn cas(&self) -> u64 {
        self.found.header.cas
    }
    /// Expiry (relative; 0 = never).
    pub fn exptime(&self) -> RelTime {
        self.found.header.exptime
    }
    /// Sets the expiry.
    pub fn set_exptime(&mut self, exptime: RelTime) {
        self.found.header.exptime = exptime;
        self.save();
    }
    /// Seconds left to live, -1 for never (meta `t`).
    pub fn ttl(&self) -> i64 {
        match self.found.header.exptime {
            0 => -1,
            e => i64::from(e.wrapping_sub(self.now)),
        }
    }
    /// Seconds since the last access (meta `l`).
    pub fn idle(&self) -> u32 {
        self.now.wrapping_sub(self.found.header.time)
    }
    /// Whether it was read before (meta `h`).
    pub fn fetched(&self) -> bool {
        self.found.header.has(item::FETCHED)
    }
    /// Marked stale by an invalidation.
    pub fn stale(&self) -> bool {
        self.found.header.has(item::STALE)
    }
    /// A recache token was already handed out.
    pub fn token_sent(&self) -> bool {
        self.found.header.has(item::TOKEN_SENT)
    }
    /// Records that a recache token was handed out.
    pub fn set_token_sent(&mut self) {
        self.found.header.bits |= item::TOKEN_SENT;
        self.save();
    }
    /// The key is binary (return it base64-encoded).
    pub fn key_binary(&self) -> bool {
        self.found.header.has(item::KEY_BINARY)
    }
    /// This access created the item (vivify).
    pub fn created(&self) -> bool {
        self.created
    }
    /// The slab class of its chunks.
    pub fn class(&self) -> u8 {
        self.found.header.class
    }
    /// Bytes the item occupies in its chunks.
    pub fn size(&self) -> usize {
        self.cache.footprint(&self.found.header)
    }
}

impl Cache {
    /// Creates an item from `value` under a held shard lock, from free chunks only. The second
    /// pair says whether the key arrived base64-encoded and gives the client's `E` CAS id (0:
    /// none).
    fn create_locked(
        &self,
        shard: &mut Shard,
        (hash, key, value): (u32, &[u8], &[u8]),
        (key_binary, new_cas): (bool, u64),
        now: RelTime,
    ) -> Result<Found, NeedRoom> {
        let Some((class, 1)) = self.layout(0, key.len(), value.len()) else {
            return Err(NeedRoom(self.slabs.table().largest() as u8));
        };
        let Some(chunk) = self.slabs.alloc(class as usize) else {
            return Err(NeedRoom(class));
        };
        let header = Header {
            nkey: key.len() as u8,
            bits: if key_binary { item::KEY_BINARY } else { 0 },
            class,
            nbytes: value.len() as u32,
            exptime: 0,
            time: now,
            flags: 0,
            cas: self.given_or_next_cas(new_cas),
        };
        let mut chunks = Chunks::One(chunk);
        self.fill(chunks.as_mut_slice(), &header, key, &[value]);
        let idx = self.link(shard, hash, chunks, &header);
        Ok(Found { idx, header })
    }

    /// `watch`: memcached creates `ma`'s missing counter through its store path, an `add` —
    /// a second lookup, then the store. (`mg`'s vivify links the item directly, unlogged.)
    fn log_autovivify(&self, fd: i32, key: &[u8], header: &Header) {
        crate::watch::lookup_done(fd, key, crate::watch::GetStatus::NotFound, 0, 0);
        self.log_store(
            fd,
            key,
            StoreMode::Add,
            StoreOutcome::Stored {
                cas: header.cas,
                len: header.nbytes,
            },
            header,
        );
    }

    /// Meta get: `read` sees the item (or `None`) under its lock and may change its metadata.
    pub fn meta_get<R>(
        &self,
        stats: &ThreadStats,
        key: &[u8],
        opts: MetaGetOptions,
        read: impl FnOnce(Option<&mut ItemMut<'_>>) -> R,
    ) -> R {
        self.meta_get_found(stats, key, opts, None, read).0
    }

    /// As [`Cache::meta_get`], but a value of at least `pin_from` bytes is pinned: the item
    /// tells `read` so ([`ItemMut::pinned`]), and the pin comes back with the result.
    pub fn meta_get_pinned<R>(
        self: &Arc<Self>,
        stats: &ThreadStats,
        key: &[u8],
        opts: MetaGetOptions,
        pin_from: usize,
        read: impl FnOnce(Option<&mut ItemMut<'_>>) -> R,
    ) -> (R, Option<Pin>) {
        self.meta_get_found(stats, key, opts, Some((self, pin_from)), read)
    }

    fn meta_get_found<R>(
        &self,
        stats: &ThreadStats,
        key: &[u8],
        opts: MetaGetOptions,
        pinning: Option<(&Arc<Cache>, usize)>,
        read: impl FnOnce(Option<&mut ItemMut<'_>>) -> R,
    ) -> (R, Option<Pin>) {
        let (s, hash) = Self::shard_of(key);
        // Declared before the guard, so that it is dropped after it: a pin's drop takes the
        // shard lock.
        let pin: Option<Pin>;
        loop {
            let now = self.clock.now();
            let mut shard = self.shard(s);
            let mut found = self.lookup(&mut shard, key, hash, now, stats);
            if let Some(f) = &found {
                stats.classes.class(f.header.class as usize).get_hits.incr();
            }
            let bump = !opts.no_update;
            if let (Some(f), true, false) = (found.as_mut(), bump, opts.delay_bump) {
                self.mark_accessed(&mut shard, f, now, stats);
            }
            let mut created = false;
            if found.is_none() && opts.vivify {
                let origin = (opts.key_binary, opts.new_cas);
                match self.create_locked(&mut shard, (hash, key, b""), origin, now) {
                    Ok(f) => {
                        found = Some(f);
                        created = true;
                    }
                    Err(NeedRoom(class)) => {
                        drop(shard);
                        if self.make_room(class) {
                            continue;
                        }
                        // No memory for the placeholder: answer as a plain miss.
                        return (read(None), None);
                    }
                }
            }
            let Some(found) = found else {
                return (read(None), None);
            };
            pin = Cache::pin_if_asked(pinning, s, &mut shard, &found);
            let mut item = ItemMut {
                cache: self,
                shard: &mut shard,
                found,
                now,
                created,
                pinned: pin.is_some(),
            };
            let result = read(Some(&mut item));
            let mut found = item.found;
            if bump && opts.delay_bump {
                self.mark_accessed(&mut shard, &mut found, now, stats);
            }
            drop(shard);
            return (result, pin);
        }
    }

    /// Meta delete: removes the item; with `remove_value` empties it instead, and with
    /// `invalidate` marks it stale (new CAS id, the recache token released, optionally a new
    /// expiry). A `cas` (if given) must match.
    pub fn meta_delete(
        &self,
        stats: &ThreadStats,
        key: &[u8],
        opts: MetaDeleteOptions,
    ) -> MetaDelete {
        let (s, hash) = Self::shard_of(key);
        loop {
            let now = self.clock.now();
            let mut shard = self.shard(s);
            let Some(mut found) = self.lookup(&mut shard, key, hash, now, stats) else {
                return MetaDelete::NotFound;
            };
            if opts.cas.is_some_and(|c| c != found.header.cas) {
                return MetaDelete::CasMismatch;
            }
            if opts.remove_value {
                match self.empty_value(&mut shard, hash, key, &found, &opts, now) {
                    Ok(class) => {
                        let old_class = found.header.class as usize;
                        stats.classes.class(old_class).delete_hits.incr();
                        return MetaDelete::Deleted { class, size: 0 };
                    }
                    Err(NeedRoom(class)) => {
                        drop(shard);
                        if !self.make_room(class) {
                            return MetaDelete::NoMemory;
                        }
                        continue;
                    }
                }
            }
            if opts.invalidate {
                let h = &mut found.header;
                if let Some(e) = opts.new_exptime {
                    h.exptime = e;
                }
                h.bits = (h.bits | item::STALE) & !item::TOKEN_SENT;
                h.cas = self.given_or_next_cas(opts.new_cas);
                self.write_header(&mut shard, &found);
                return MetaDelete::Invalidated;
            }
            stats
                .classes
                .class(found.header.class as usize)
                .delete_hits
                .incr();
            self.unlink(&mut shard, found.idx, &found.header);
            return MetaDelete::Deleted {
                class: found.header.class,
                size: found.header.nbytes,
            };
        }
    }

    /// `md x`: replaces `old` with an empty item of the same key (flags 0, no expiry, the same
    /// CAS id), stale if `I` asked for it — memcached swaps in an empty item atomically.
    fn empty_value(
        &self,
        shard: &mut Shard,
        hash: u32,
        key: &[u8],
        old: &Found,
        opts: &MetaDeleteOptions,
        now: RelTime,
    ) -> Result<u8, NeedRoom> {
        let Some((class, 1)) = self.layout(0, key.len(), 0) else {
            return Err(NeedRoom(self.slabs.table().largest() as u8));
        };
        let chunk = self.slabs.alloc(class as usize).ok_or(NeedRoom(class))?;
        let mut bits = old.header.bits & item::KEY_BINARY;
        let mut exptime = 0;
        if opts.invalidate {
            bits |= item::STALE;
            exptime = opts.new_exptime.unwrap_or(0);
        }
        let header = Header {
            nkey: key.len() as u8,
            bits,
            class,
            nbytes: 0,
            exptime,
            time: now,
            flags: 0,
            // Only `I` (or `E`) gives the emptied item a new CAS id.
            cas: match (opts.new_cas, opts.invalidate) {
                (0, false) => old.header.cas,
                (given, _) => self.given_or_next_cas(given),
            },
        };
        let mut chunks = Chunks::One(chunk);
        self.fill(chunks.as_mut_slice(), &header, key, &[]);
        self.unlink(shard, old.idx, &old.header);
        self.link(shard, hash, chunks, &header);
        Ok(class)
    }

    /// Meta arithmetic: incr/decr as the text command (`step`: increment, delta, in place
    /// allowed), with an optional CAS check and, on a miss, an optional new item holding
    /// `vivify`. `then` sees the resulting item and value.
    pub fn meta_arithmetic<R>(
        &self,
        stats: &ThreadStats,
        key: &[u8],
        step: (bool, u64, bool),
        (cas, new_cas): (u64, u64),
        vivify: Option<u64>,
        then: impl FnOnce(&mut ItemMut<'_>, u64) -> R,
    ) -> MetaArith<R> {
        let (s, hash) = Self::shard_of(key);
        loop {
            let now = self.clock.now();
            let mut shard = self.shard(s);
            let attempt = match self.lookup(&mut shard, key, hash, now, stats) {
                Some(mut found) => {
                    if found.header.nbytes == 0 {
                        return MetaArith::NonNumeric;
                    }
                    if cas != 0 && found.header.cas != cas {
                        return MetaArith::CasMismatch;
                    }
                    match self.apply_arithmetic(&mut shard, hash, &mut found, step, now) {
                        Ok(Ok(value)) => {
                            super::ops::count_arith(stats, found.header.class, step.0);
                            // memcached 1.6.38 spends the counter's CAS id even when `E`
                            // then replaces it.
                            if new_cas != 0 {
                                found.header.cas = new_cas;
                                self.write_header(&mut shard, &found);
                            }
                            Ok((found, value, false))
                        }
                        Ok(Err(_)) => return MetaArith::NonNumeric,
                        Err(room) => Err(room),
                    }
                }
                None => {
                    let Some(initial) = vivify else {
                        return MetaArith::NotFound;
                    };
                    let digits = initial.to_string();
                    let item = (hash, key, digits.as_bytes());
                    self.create_locked(&mut shard, item, (false, new_cas), now)
                        .map(|found| {
                            self.log_autovivify(stats.client_fd.get(), key, &found.header);
                            (found, initial, true)
                        })
                }
            };
            match attempt {
                Ok((found, value, created)) => {
                    let mut item = ItemMut {
                        cache: self,
                        shard: &mut shard,
                        found,
                        now,
                        created,
                        pinned: false,
                    };
                    return MetaArith::Done(then(&mut item, value));
                }
                Err(NeedRoom(class)) => {
                    drop(shard);
                    if !self.make_room(class) {
                        return MetaArith::NoMemory;
                    }
                }
            }
        }
    }

    /// `me`: an item's metadata, without touching it.
    pub fn debug_item<R>(
        &self,
        stats: &ThreadStats,
        key: &[u8],
        read: impl FnOnce(&ItemMut<'_>) -> R,
    ) -> Option<R> {
        let now = self.clock.now();
        let (s, hash) = Self::shard_of(key);
        let mut shard = self.shard(s);
        let found = self.lookup(&mut shard, key, hash, now, stats)?;
        let item = ItemMut {
            cache: self,
            shard: &mut shard,
            found,
            now,
            created: false,
            pinned: false,
        };
        Some(read(&item))
    }
}
