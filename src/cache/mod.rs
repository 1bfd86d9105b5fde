//! The cache: protocol-agnostic storage with memcached's semantics.
//!
//! Operations are those every front end needs — get (optionally touching), store in its six
//! modes, delete, incr/decr, touch, flush — with memcached's CAS, expiry, flush and eviction
//! rules. Nothing here knows about sockets or wire formats; the protocol handlers turn requests
//! into these calls and the outcomes into replies.
//!
//! This engine keeps items in sharded hash tables with an LRU per shard, charged against the
//! `-m` limit; the slab-arena engine replaces its internals behind the same API.

pub mod arena;
pub mod clock;
pub mod hash;
mod meta;
mod shard;
pub mod slabs;

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::stats::{lock, ThreadStats};
pub use clock::{Clock, RelTime};
pub use meta::{ItemMut, MetaArith, MetaDelete, MetaGetOptions};
use shard::{Item, Shard};

/// How many shards the table is split into: enough that worker threads rarely meet on a lock.
const SHARDS: usize = 64;

/// Bytes charged per item on top of its key and value: the slot, the table entry and the
/// allocation headers this engine spends (measured, rounded up).
const ITEM_OVERHEAD: usize = 96;

/// memcached's `sizeof(item)` on 64-bit: the per-item header its size limit is computed with.
const MEMCACHED_ITEM_HEADER: usize = 48;

/// memcached refreshes an item's access time at most this often (`ITEM_UPDATE_INTERVAL`).
const ITEM_UPDATE_INTERVAL: RelTime = 60;

/// What the cache is built with.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// `-m`, in bytes.
    pub memory_limit: usize,
    /// `-I`, in bytes.
    pub item_size_max: usize,
    /// `-C` clears it.
    pub use_cas: bool,
    /// `-M` clears it.
    pub evictions: bool,
    /// `-o hashpower`: initial table size as a power of two (0 = memcached's default of 16).
    pub hashpower_init: u32,
}

/// How a store treats an existing item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// Store unconditionally.
    Set,
    /// Store only if the key is absent.
    Add,
    /// Store only if the key is present.
    Replace,
    /// Add the data after the existing value.
    Append,
    /// Add the data before the existing value.
    Prepend,
    /// Store only if the item's CAS id still equals [`StoreOptions::cas`].
    Cas,
}

/// The parts of a store that only some commands use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreOptions {
    /// The CAS id the client holds (0: none). `Cas` requires it; append/prepend check it if
    /// given.
    pub cas: u64,
    /// Meta `I`: a CAS older than the item's still stores, but the item is marked stale and
    /// keeps its expiry (memcached's "stale" write for invalidated items).
    pub invalidate: bool,
    /// The key arrived base64-encoded.
    pub key_binary: bool,
}

/// What a store did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOutcome {
    /// Stored, with the item's new CAS id.
    Stored(u64),
    /// The mode's condition failed (add of a present key, replace/append of an absent one).
    NotStored,
    /// CAS mismatch.
    Exists,
    /// CAS on an absent key.
    NotFound,
    /// Bigger than `-I` allows.
    TooLarge,
    /// No memory could be freed for it (`-M`, or nothing left to evict).
    NoMemory,
}

/// What an incr/decr did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOutcome {
    /// The new value.
    Value(u64),
    /// No such key.
    NotFound,
    /// The stored value is not a decimal number.
    NonNumeric,
}

/// A borrowed view of a stored item, handed to a reader while its shard is locked.
#[derive(Debug, Clone, Copy)]
pub struct ItemView<'a> {
    /// The key.
    pub key: &'a [u8],
    /// The value.
    pub data: &'a [u8],
    /// Client flags.
    pub flags: u32,
    /// CAS id.
    pub cas: u64,
    /// Expiry (relative; 0 = never).
    pub exptime: RelTime,
}

/// Cache-wide figures for `stats`.
#[derive(Debug, Default, Clone, Copy)]
pub struct CacheStats {
    /// Items stored now.
    pub curr_items: u64,
    /// Items ever stored.
    pub total_items: u64,
    /// Bytes charged for the items stored now.
    pub bytes: u64,
    /// Live items removed to make room.
    pub evictions: u64,
    /// Expired items whose memory was reused.
    pub reclaimed: u64,
    /// Reclaimed items that were never read.
    pub expired_unfetched: u64,
    /// Evicted items that were never read.
    pub evicted_unfetched: u64,
    /// Table capacity in entries.
    pub hash_capacity: u64,
    /// The memory limit now in force.
    pub limit_maxbytes: u64,
}

#[derive(Debug, Default)]
struct ShardCounters {
    total_items: u64,
    evictions: u64,
    reclaimed: u64,
    expired_unfetched: u64,
    evicted_unfetched: u64,
    bytes: u64,
}

#[derive(Debug, Default)]
struct LockedShard {
    items: Shard,
    counters: ShardCounters,
}

/// The cache. Shared by every worker thread.
#[derive(Debug)]
pub struct Cache {
    shards: Box<[Mutex<LockedShard>]>,
    clock: Arc<Clock>,
    item_size_max: usize,
    use_cas: bool,
    evictions: bool,
    memory_limit: AtomicUsize,
    /// Bytes charged for items now (may briefly exceed the limit by one in-flight item per
    /// thread while a store is between reserving and inserting).
    used: AtomicUsize,
    last_cas: AtomicU64,
    /// memcached's `settings.oldest_live`: items last touched at or before it are flushed.
    oldest_live: AtomicU32,
    /// memcached's `settings.oldest_cas`: items with a lower CAS are flushed.
    oldest_cas: AtomicU64,
}

impl Cache {
    /// Builds an empty cache.
    pub fn new(config: &CacheConfig, clock: Arc<Clock>) -> Cache {
        let hashpower = if config.hashpower_init == 0 {
            16
        } else {
            config.hashpower_init
        };
        let per_shard = (1usize << hashpower.min(40)) / SHARDS;
        let shards = (0..SHARDS)
            .map(|_| {
                let mut s = LockedShard::default();
                s.items.reserve(per_shard);
                Mutex::new(s)
            })
            .collect();
        Cache {
            shards,
            clock,
            item_size_max: config.item_size_max,
            use_cas: config.use_cas,
            evictions: config.evictions,
            memory_limit: AtomicUsize::new(config.memory_limit),
            used: AtomicUsize::new(0),
            last_cas: AtomicU64::new(0),
            oldest_live: AtomicU32::new(0),
            oldest_cas: AtomicU64::new(0),
        }
    }

    /// The clock items are timed by.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Whether an item of this size may be stored at all (memcached's `item_size_ok`, with its
    /// header arithmetic so that the largest accepted value matches memcached's byte for byte).
    pub fn item_size_ok(&self, key_len: usize, flags: u32, value_len: usize) -> bool {
        let suffix = if flags == 0 { 0 } else { 4 };
        let cas = if self.use_cas { 8 } else { 0 };
        let total = MEMCACHED_ITEM_HEADER + key_len + 1 + value_len + 2 + suffix + cas;
        total <= self.item_size_max
    }

    /// Reads an item, optionally setting a new expiry (gat/touch), and hands it to `read` while
    /// its shard is locked. Returns `None` on a miss.
    pub fn get<R>(
        &self,
        stats: &ThreadStats,
        key: &[u8],
        new_exptime: Option<RelTime>,
        read: impl FnOnce(ItemView<'_>) -> R,
    ) -> Option<R> {
        let now = self.clock.now();
        let mut shard = self.shard(key);
        let slot = self.lookup(&mut shard, key, now, stats)?;
        let items = &mut shard.items;
        if let Some(exptime) = new_exptime {
            items.item_mut(slot).exptime = exptime;
        }
        mark_accessed(items, slot, now);
        Some(read(view(items.item(slot))))
    }

    /// Sets a new expiry on an item. Returns whether it was found.
    pub fn touch(&self, stats: &ThreadStats, key: &[u8], exptime: RelTime) -> bool {
        self.get(stats, key, Some(exptime), |_| ()).is_some()
    }

    /// Stores `data` under `key` according to `mode` (plain text-protocol semantics).
    pub fn store(
        &self,
        stats: &ThreadStats,
        mode: StoreMode,
        key: &[u8],
        flags: u32,
        exptime: RelTime,
        data: &[u8],
    ) -> StoreOutcome {
        self.store_with(
            stats,
            mode,
            StoreOptions::default(),
            key,
            flags,
            exptime,
            data,
        )
    }

    /// Stores `data` under `key` according to `mode` and `opts` (memcached's
    /// `do_store_item`).
    #[allow(clippy::too_many_arguments)]
    pub fn store_with(
        &self,
        stats: &ThreadStats,
        mode: StoreMode,
        opts: StoreOptions,
        key: &[u8],
        flags: u32,
        exptime: RelTime,
        data: &[u8],
    ) -> StoreOutcome {
        if !self.item_size_ok(key.len(), flags, data.len()) {
            return StoreOutcome::TooLarge;
        }
        // Reserve memory before taking the shard lock: making room may lock other shards.
        let mut reserved = charge(key.len(), data.len());
        if !self.reserve(reserved, key) {
            return StoreOutcome::NoMemory;
        }
        loop {
            let now = self.clock.now();
            let mut shard = self.shard(key);
            let existing = self.lookup(&mut shard, key, now, stats);
            let Some(slot) = existing else {
                return match mode {
                    StoreMode::Set | StoreMode::Add => {
                        let mut item = self.new_item(key, Box::from(data), flags, exptime, now);
                        item.key_binary = opts.key_binary;
                        let cas = item.cas;
                        shard.items.insert(item);
                        shard.counters.total_items += 1;
                        shard.counters.bytes += reserved as u64;
                        StoreOutcome::Stored(cas)
                    }
                    StoreMode::Cas => {
                        drop(shard);
                        self.release(reserved);
                        StoreOutcome::NotFound
                    }
                    StoreMode::Replace | StoreMode::Append | StoreMode::Prepend => {
                        drop(shard);
                        self.release(reserved);
                        StoreOutcome::NotStored
                    }
                };
            };
            let old = shard.items.item(slot);
            let cas_check = match opts.cas {
                0 => CasCheck::None,
                c if c == old.cas => CasCheck::Match,
                c if opts.invalidate && c < old.cas => CasCheck::Stale,
                _ => CasCheck::Mismatch,
            };
            match mode {
                StoreMode::Add => {
                    // memcached promotes the existing item even though it does not store.
                    let item = shard.items.item_mut(slot);
                    if item.time < now.saturating_sub(ITEM_UPDATE_INTERVAL) {
                        item.time = now;
                    }
                    shard.items.bump(slot);
                    drop(shard);
                    self.release(reserved);
                    return StoreOutcome::NotStored;
                }
                StoreMode::Cas if matches!(cas_check, CasCheck::None | CasCheck::Mismatch) => {
                    drop(shard);
                    self.release(reserved);
                    return StoreOutcome::Exists;
                }
                StoreMode::Append | StoreMode::Prepend
                    if matches!(cas_check, CasCheck::Stale | CasCheck::Mismatch) =>
                {
                    drop(shard);
                    self.release(reserved);
                    return StoreOutcome::Exists;
                }
                StoreMode::Set | StoreMode::Replace | StoreMode::Cas => {
                    let mut item = self.new_item(key, Box::from(data), flags, exptime, now);
                    item.key_binary = opts.key_binary;
                    if mode == StoreMode::Cas && cas_check == CasCheck::Stale {
                        // A stale write keeps the item's expiry and recache token.
                        let old = shard.items.item(slot);
                        item.exptime = old.exptime;
                        item.token_sent = old.token_sent;
                        item.stale = true;
                    }
                    let cas = item.cas;
                    let old = shard.items.replace(slot, item);
                    let counters = &mut shard.counters;
                    counters.total_items += 1;
                    counters.bytes = counters.bytes + reserved as u64 - old.charge as u64;
                    drop(shard);
                    self.release(old.charge);
                    return StoreOutcome::Stored(cas);
                }
                StoreMode::Append | StoreMode::Prepend => {
                    let old = shard.items.item(slot);
                    let combined_len = old.data.len() + data.len();
                    let needed = charge(key.len(), combined_len);
                    if !self.item_size_ok(key.len(), old.flags, combined_len) {
                        drop(shard);
                        self.release(reserved);
                        return StoreOutcome::NotStored;
                    }
                    if needed > reserved {
                        // The existing value is bigger than the first guess: reserve the rest
                        // without holding the lock, then look again.
                        drop(shard);
                        if !self.reserve(needed - reserved, key) {
                            self.release(reserved);
                            return StoreOutcome::NotStored;
                        }
                        reserved = needed;
                        continue;
                    }
                    let mut value = Vec::with_capacity(combined_len);
                    if mode == StoreMode::Append {
                        value.extend_from_slice(&old.data);
                        value.extend_from_slice(data);
                    } else {
                        value.extend_from_slice(data);
                        value.extend_from_slice(&old.data);
                    }
                    let (old_flags, old_exptime) = (old.flags, old.exptime);
                    let item =
                        self.new_item(key, value.into_boxed_slice(), old_flags, old_exptime, now);
                    let cas = item.cas;
                    let old = shard.items.replace(slot, item);
                    let counters = &mut shard.counters;
                    counters.total_items += 1;
                    counters.bytes = counters.bytes + needed as u64 - old.charge as u64;
                    drop(shard);
                    self.release(old.charge + (reserved - needed));
                    return StoreOutcome::Stored(cas);
                }
            }
        }
    }

    /// Removes an item. Returns whether it was there.
    pub fn delete(&self, stats: &ThreadStats, key: &[u8]) -> bool {
        let now = self.clock.now();
        let mut shard = self.shard(key);
        match self.lookup(&mut shard, key, now, stats) {
            Some(slot) => {
                let item = shard.items.remove(slot);
                shard.counters.bytes -= item.charge as u64;
                drop(shard);
                self.release(item.charge);
                true
            }
            None => false,
        }
    }

    /// incr (`increment` true) or decr by `delta`, as memcached: incr wraps at 2^64, decr stops
    /// at 0, and a result no longer than the old value is written in place, padded with spaces.
    pub fn arithmetic(
        &self,
        stats: &ThreadStats,
        key: &[u8],
        increment: bool,
        delta: u64,
    ) -> ArithOutcome {
        let now = self.clock.now();
        let mut shard = self.shard(key);
        let Some(slot) = self.lookup(&mut shard, key, now, stats) else {
            return ArithOutcome::NotFound;
        };
        match self.apply_arithmetic(&mut shard, slot, increment, delta, now) {
            Ok(value) => ArithOutcome::Value(value),
            Err(outcome) => outcome,
        }
    }

    /// incr/decr on a locked, live item; the item stays in `slot` (replaced if it grew).
    fn apply_arithmetic(
        &self,
        shard: &mut LockedShard,
        slot: u32,
        increment: bool,
        delta: u64,
        now: RelTime,
    ) -> Result<u64, ArithOutcome> {
        let item = shard.items.item(slot);
        if item.data.is_empty() {
            return Err(ArithOutcome::NonNumeric);
        }
        let Some(value) = crate::numparse::parse_stored_u64(&item.data) else {
            return Err(ArithOutcome::NonNumeric);
        };
        let value = if increment {
            value.wrapping_add(delta)
        } else {
            value.saturating_sub(delta)
        };
        let digits = value.to_string();
        if digits.len() <= item.data.len() {
            let cas = self.next_cas();
            let item = shard.items.item_mut(slot);
            item.data[..digits.len()].copy_from_slice(digits.as_bytes());
            item.data[digits.len()..].fill(b' ');
            item.cas = cas;
        } else {
            let (flags, exptime, key) = (item.flags, item.exptime, Arc::clone(&item.key));
            let new = self.new_item(&key, Box::from(digits.as_bytes()), flags, exptime, now);
            let new_charge = new.charge;
            // A few bytes more than the old value: charged without evicting, so the lock is
            // never held while other shards are visited.
            self.used.fetch_add(new_charge, Ordering::Relaxed);
            let old = shard.items.replace(slot, new);
            shard.counters.total_items += 1;
            shard.counters.bytes = shard.counters.bytes + new_charge as u64 - old.charge as u64;
            self.release(old.charge);
        }
        Ok(value)
    }

    /// `flush_all [delay]`: invalidates every item stored before now, or before `delay` from
    /// now (memcached's `oldest_live` / `oldest_cas` scheme; items go lazily as they are seen).
    pub fn flush_all(&self, delay: i64) {
        let now = self.clock.now();
        let new_oldest = if delay > 0 {
            self.clock.expiry(delay)
        } else {
            now
        };
        if self.use_cas {
            let oldest_live = new_oldest.saturating_sub(1);
            self.oldest_live.store(oldest_live, Ordering::Release);
            if oldest_live <= now {
                self.oldest_cas.store(self.next_cas(), Ordering::Release);
            }
        } else {
            self.oldest_live.store(new_oldest, Ordering::Release);
        }
    }

    /// `cache_memlimit`: changes the memory limit; refuses a limit below what is in use.
    pub fn set_memory_limit(&self, bytes: usize) -> bool {
        if bytes < self.used.load(Ordering::Relaxed) {
            return false;
        }
        self.memory_limit.store(bytes, Ordering::Relaxed);
        true
    }

    /// Cache-wide figures.
    pub fn stats(&self) -> CacheStats {
        let mut s = CacheStats {
            limit_maxbytes: self.memory_limit.load(Ordering::Relaxed) as u64,
            ..CacheStats::default()
        };
        for shard in self.shards.iter() {
            let shard = lock(shard);
            let c = &shard.counters;
            s.curr_items += shard.items.len() as u64;
            s.total_items += c.total_items;
            s.bytes += c.bytes;
            s.evictions += c.evictions;
            s.reclaimed += c.reclaimed;
            s.expired_unfetched += c.expired_unfetched;
            s.evicted_unfetched += c.evicted_unfetched;
            s.hash_capacity += shard.items.capacity() as u64;
        }
        s
    }

    /// `stats reset`: zeroes the cumulative counters (not the current item count or bytes).
    pub fn reset_stats(&self) {
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            let bytes = shard.counters.bytes;
            shard.counters = ShardCounters {
                bytes,
                ..ShardCounters::default()
            };
        }
    }

    fn shard(&self, key: &[u8]) -> MutexGuard<'_, LockedShard> {
        lock(&self.shards[shard_index(key)])
    }

    fn next_cas(&self) -> u64 {
        if self.use_cas {
            self.last_cas.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            0
        }
    }

    fn new_item(
        &self,
        key: &[u8],
        data: Box<[u8]>,
        flags: u32,
        exptime: RelTime,
        now: RelTime,
    ) -> Item {
        Item {
            charge: charge(key.len(), data.len()),
            key: Arc::from(key),
            data,
            flags,
            exptime,
            time: now,
            cas: self.next_cas(),
            fetched: false,
            stale: false,
            token_sent: false,
            key_binary: false,
        }
    }

    /// Finds a live item, unlinking it (and counting why) if it is flushed or expired.
    fn lookup(
        &self,
        shard: &mut LockedShard,
        key: &[u8],
        now: RelTime,
        stats: &ThreadStats,
    ) -> Option<u32> {
        let slot = shard.items.find(key)?;
        let item = shard.items.item(slot);
        let dead = if self.is_flushed(item, now) {
            stats.get_flushed.incr();
            true
        } else if item.exptime != 0 && item.exptime <= now {
            stats.get_expired.incr();
            true
        } else {
            false
        };
        if dead {
            let item = shard.items.remove(slot);
            shard.counters.bytes -= item.charge as u64;
            self.release(item.charge);
            return None;
        }
        Some(slot)
    }

    fn is_flushed(&self, item: &Item, now: RelTime) -> bool {
        let oldest_live = self.oldest_live.load(Ordering::Acquire);
        if oldest_live == 0 || oldest_live > now {
            return false;
        }
        let oldest_cas = self.oldest_cas.load(Ordering::Acquire);
        item.time <= oldest_live || (oldest_cas != 0 && item.cas != 0 && item.cas < oldest_cas)
    }

    /// Charges `bytes` against the limit, reclaiming expired items and (unless `-M`) evicting
    /// least recently used ones to make room. Starts with the key's own shard.
    fn reserve(&self, bytes: usize, key: &[u8]) -> bool {
        let home = shard_index(key);
        let mut empty_in_a_row = 0;
        let mut next = home;
        loop {
            let limit = self.memory_limit.load(Ordering::Relaxed);
            let used = self.used.load(Ordering::Relaxed);
            if used + bytes <= limit {
                if self
                    .used
                    .compare_exchange_weak(used, used + bytes, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    return true;
                }
                continue;
            }
            if bytes > limit || empty_in_a_row >= SHARDS {
                return false;
            }
            if self.free_one(next) {
                empty_in_a_row = 0;
            } else {
                empty_in_a_row += 1;
                next = (next + 1) % SHARDS;
            }
        }
    }

    /// Frees the least recently used item of one shard if that is allowed: an expired or flushed
    /// one always, a live one only when evictions are on.
    fn free_one(&self, index: usize) -> bool {
        let now = self.clock.now();
        let mut shard = lock(&self.shards[index]);
        let Some(slot) = shard.items.tail() else {
            return false;
        };
        let item = shard.items.item(slot);
        let dead = self.is_flushed(item, now) || (item.exptime != 0 && item.exptime <= now);
        if !dead && !self.evictions {
            return false;
        }
        let item = shard.items.remove(slot);
        let c = &mut shard.counters;
        c.bytes -= item.charge as u64;
        if dead {
            c.reclaimed += 1;
            if !item.fetched {
                c.expired_unfetched += 1;
            }
        } else {
            c.evictions += 1;
            if !item.fetched {
                c.evicted_unfetched += 1;
            }
        }
        drop(shard);
        self.release(item.charge);
        true
    }

    fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// Records a read: the item is fetched, its access time refreshed (at most once a minute, as
/// memcached's `do_item_update`), and it moves to the head of the LRU.
fn mark_accessed(items: &mut Shard, slot: u32, now: RelTime) {
    let item = items.item_mut(slot);
    item.fetched = true;
    if item.time < now.saturating_sub(ITEM_UPDATE_INTERVAL) {
        item.time = now;
    }
    items.bump(slot);
}

/// How a client's CAS id compares with the item's (memcached's `cas_result`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CasCheck {
    None,
    Match,
    Stale,
    Mismatch,
}

fn view(item: &Item) -> ItemView<'_> {
    ItemView {
        key: &item.key,
        data: &item.data,
        flags: item.flags,
        cas: item.cas,
        exptime: item.exptime,
    }
}

fn charge(key_len: usize, value_len: usize) -> usize {
    ITEM_OVERHEAD + key_len + value_len
}

fn shard_index(key: &[u8]) -> usize {
    (hash::hash_key(key) as usize) & (SHARDS - 1)
}

#[cfg(test)]
mod tests;
