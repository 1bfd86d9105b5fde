//! Locked access for the meta protocol: look an item up, let the caller read it and decide, and
//! apply the decision — all under the item's lock, so a meta command sees and changes one
//! consistent item (memcached's `limited_get_locked` … `item_unlock`).

use super::item::{self, Header};
use super::ops::NeedRoom;
use super::{Cache, Chunks, Found, RelTime, Shard, StoreMode, StoreOutcome, Value};
use crate::stats::ThreadStats;

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
}

/// What a meta delete did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaDelete {
    /// Removed.
    Deleted,
    /// Marked stale instead (`I`).
    Invalidated,
    /// The CAS id did not match.
    CasMismatch,
    /// No such item.
    NotFound,
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
    /// Creates an item from `value` under a held shard lock, from free chunks only.
    fn create_locked(
        &self,
        shard: &mut Shard,
        hash: u32,
        key: &[u8],
        value: &[u8],
        key_binary: bool,
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
            cas: self.next_cas(),
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
            StoreOutcome::Stored(header.cas),
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
        let (s, hash) = Self::shard_of(key);
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
                match self.create_locked(&mut shard, hash, key, b"", opts.key_binary, now) {
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
                        return read(None);
                    }
                }
            }
            let Some(found) = found else {
                return read(None);
            };
            let mut item = ItemMut {
                cache: self,
                shard: &mut shard,
                found,
                now,
                created,
            };
            let result = read(Some(&mut item));
            let mut found = item.found;
            if bump && opts.delay_bump {
                self.mark_accessed(&mut shard, &mut found, now, stats);
            }
            return result;
        }
    }

    /// Meta delete: removes the item, or with `invalidate` marks it stale (new CAS id, the
    /// recache token released, optionally a new expiry). A `cas` (if given) must match.
    pub fn meta_delete(
        &self,
        stats: &ThreadStats,
        key: &[u8],
        cas: Option<u64>,
        invalidate: bool,
        new_exptime: Option<RelTime>,
    ) -> MetaDelete {
        let now = self.clock.now();
        let (s, hash) = Self::shard_of(key);
        let mut shard = self.shard(s);
        let Some(mut found) = self.lookup(&mut shard, key, hash, now, stats) else {
            return MetaDelete::NotFound;
        };
        if cas.is_some_and(|c| c != found.header.cas) {
            return MetaDelete::CasMismatch;
        }
        if invalidate {
            let h = &mut found.header;
            if let Some(e) = new_exptime {
                h.exptime = e;
            }
            h.bits = (h.bits | item::STALE) & !item::TOKEN_SENT;
            h.cas = self.next_cas();
            self.write_header(&mut shard, &found);
            return MetaDelete::Invalidated;
        }
        stats
            .classes
            .class(found.header.class as usize)
            .delete_hits
            .incr();
        self.unlink(&mut shard, found.idx, &found.header);
        MetaDelete::Deleted
    }

    /// Meta arithmetic: incr/decr as the text command (`step`: increment, delta, in place
    /// allowed), with an optional CAS check and, on a miss, an optional new item holding
    /// `vivify`. `then` sees the resulting item and value.
    pub fn meta_arithmetic<R>(
        &self,
        stats: &ThreadStats,
        key: &[u8],
        step: (bool, u64, bool),
        cas: u64,
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
                    self.create_locked(&mut shard, hash, key, digits.as_bytes(), false, now)
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
        };
        Some(read(&item))
    }
}
