//! Reads, deletes, arithmetic, flush, making room, and the figures for `stats`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::item::{self, Header};
use super::table::{Lru, COLD, HOT, SEGMENTS, TEMP, WARM};
use super::{
    ArithOutcome, Cache, CacheStats, Chunks, ClassCounters, ClassLru, Found, ItemView, Pin,
    RelTime, Shard, SHARDS,
};
use crate::stats::ThreadStats;

/// Why an operation under a shard lock could not finish: it needs a chunk of this class, and
/// room must be made without the lock held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct NeedRoom(pub u8);

impl Cache {
    /// Reads an item, optionally setting a new expiry (gat/touch), and hands it to `read` while
    /// its shard is locked. Returns `None` on a miss.
    pub fn get<R>(
        &self,
        stats: &ThreadStats,
        key: &[u8],
        new_exptime: Option<RelTime>,
        read: impl FnOnce(ItemView<'_>) -> R,
    ) -> Option<R> {
        let pinning = None;
        self.get_found(stats, key, new_exptime, pinning, |item, _| read(item))
            .map(|(r, _)| r)
    }

    /// As [`Cache::get`], but a value of at least `pin_from` bytes is pinned ([`Pin`]) rather
    /// than read under the lock: `read` is told so (it should then not copy the value), and the
    /// pin comes back with its result, for the reply to write the value from.
    pub fn get_pinned<R>(
        self: &Arc<Self>,
        stats: &ThreadStats,
        key: &[u8],
        new_exptime: Option<RelTime>,
        pin_from: usize,
        read: impl FnOnce(ItemView<'_>, bool) -> R,
    ) -> Option<(R, Option<Pin>)> {
        self.get_found(stats, key, new_exptime, Some((self, pin_from)), read)
    }

    fn get_found<R>(
        &self,
        stats: &ThreadStats,
        key: &[u8],
        new_exptime: Option<RelTime>,
        pinning: Option<(&Arc<Cache>, usize)>,
        read: impl FnOnce(ItemView<'_>, bool) -> R,
    ) -> Option<(R, Option<Pin>)> {
        let now = self.clock.now();
        let (s, hash) = Self::shard_of(key);
        // Declared before the guard, so that it is dropped after it: a pin's drop takes the
        // shard lock.
        let pin: Option<Pin>;
        let mut shard = self.shard(s);
        let mut found = self.lookup(&mut shard, key, hash, now, stats)?;
        let class = stats.classes.class(found.header.class as usize);
        if new_exptime.is_some() {
            class.touch_hits.incr();
        } else {
            class.get_hits.incr();
        }
        if let Some(exptime) = new_exptime {
            found.header.exptime = exptime;
            self.write_header(&mut shard, &found);
        }
        self.mark_accessed(&mut shard, &mut found, now, stats);
        pin = Cache::pin_if_asked(pinning, s, &mut shard, &found);
        let entry = shard.table.entry(found.idx);
        let view = ItemView {
            key: self.key_of(&entry.chunk),
            data: self.value(&shard, &found),
            flags: found.header.flags,
            cas: found.header.cas,
            exptime: found.header.exptime,
        };
        let result = read(view, pin.is_some());
        drop(shard);
        Some((result, pin))
    }

    /// Sets a new expiry on an item. Returns whether it was found.
    pub fn touch(&self, stats: &ThreadStats, key: &[u8], exptime: RelTime) -> bool {
        self.get(stats, key, Some(exptime), |_| ()).is_some()
    }

    /// Removes an item. Returns whether it was there.
    pub fn delete(&self, stats: &ThreadStats, key: &[u8]) -> bool {
        self.delete_item(stats, key).is_some()
    }

    /// Removes an item. Returns its slab class and value length if it was there (what
    /// `watch deletions` reports).
    pub fn delete_item(&self, stats: &ThreadStats, key: &[u8]) -> Option<(u8, u32)> {
        let now = self.clock.now();
        let (s, hash) = Self::shard_of(key);
        let mut shard = self.shard(s);
        let found = self.lookup(&mut shard, key, hash, now, stats)?;
        let class = stats.classes.class(found.header.class as usize);
        class.delete_hits.incr();
        self.unlink(&mut shard, found.idx, &found.header);
        Some((found.header.class, found.header.nbytes))
    }

    /// incr (`increment` true) or decr by `delta`, as memcached: incr wraps at 2^64, decr stops
    /// at 0, and a result no longer than the old value is written in place, padded with spaces
    /// — unless `in_place` is false (memcached copies an item that something still references).
    pub fn arithmetic(
        &self,
        stats: &ThreadStats,
        key: &[u8],
        increment: bool,
        delta: u64,
        in_place: bool,
    ) -> ArithOutcome {
        loop {
            let now = self.clock.now();
            let (s, hash) = Self::shard_of(key);
            let mut shard = self.shard(s);
            let Some(mut found) = self.lookup(&mut shard, key, hash, now, stats) else {
                return ArithOutcome::NotFound;
            };
            let step = (increment, delta, in_place);
            match self.apply_arithmetic(&mut shard, hash, &mut found, step, now) {
                Ok(Ok(value)) => {
                    count_arith(stats, found.header.class, increment);
                    return ArithOutcome::Value(value);
                }
                Ok(Err(outcome)) => return outcome,
                Err(NeedRoom(class)) => {
                    drop(shard);
                    if !self.make_room(class) {
                        return ArithOutcome::NoMemory;
                    }
                }
            }
        }
    }

    /// incr/decr (`step`: increment, delta, in place allowed) on a locked, live item; `found`
    /// then names the resulting item.
    pub(super) fn apply_arithmetic(
        &self,
        shard: &mut Shard,
        hash: u32,
        found: &mut Found,
        (increment, delta, in_place): (bool, u64, bool),
        now: RelTime,
    ) -> Result<Result<u64, ArithOutcome>, NeedRoom> {
        let value = self.value(shard, found);
        // memcached: empty and chained values are not numbers.
        let Some(digits_now) = value.contiguous().filter(|d| !d.is_empty()) else {
            return Ok(Err(ArithOutcome::NonNumeric));
        };
        let Some(old) = crate::numparse::parse_stored_u64(digits_now) else {
            return Ok(Err(ArithOutcome::NonNumeric));
        };
        let new = if increment {
            old.wrapping_add(delta)
        } else {
            old.saturating_sub(delta)
        };
        let digits = new.to_string();
        let old_len = found.header.nbytes as usize;
        // A reply still being written reads the value: it gets a copy instead.
        let in_place = in_place && !self.is_pinned(shard, found.idx);
        if in_place && digits.len() <= old_len {
            found.header.cas = self.next_cas();
            let start = found.header.len(self.use_cas) + found.header.nkey as usize;
            let entry = shard.table.entry_mut(found.idx);
            let b = self.arena().bytes_mut(&mut entry.chunk);
            b[start..start + digits.len()].copy_from_slice(digits.as_bytes());
            b[start + digits.len()..start + old_len].fill(b' ');
            item::set_cas(b, found.header.cas, self.use_cas);
            return Ok(Ok(new));
        }
        let key = self.key_of(&shard.table.entry(found.idx).chunk).to_vec();
        let Some((class, 1)) = self.layout(found.header.flags, key.len(), digits.len()) else {
            return Ok(Err(ArithOutcome::NonNumeric));
        };
        // Under the lock only free chunks may be taken; eviction happens without it.
        let Some(chunk) = self.slabs.alloc(class as usize) else {
            return Err(NeedRoom(class));
        };
        let header = Header {
            nkey: found.header.nkey,
            bits: found.header.bits & item::KEY_BINARY,
            class,
            nbytes: digits.len() as u32,
            exptime: found.header.exptime,
            time: now,
            flags: found.header.flags,
            cas: self.next_cas(),
        };
        let mut chunks = Chunks::One(chunk);
        self.fill(chunks.as_mut_slice(), &header, &key, &[digits.as_bytes()]);
        self.unlink(shard, found.idx, &found.header);
        let idx = self.link(shard, hash, chunks, &header);
        *found = Found { idx, header };
        Ok(Ok(new))
    }

    /// `flush_all [delay]`: invalidates every item stored before now, or before `delay` from
    /// now (memcached's `oldest_live` / `oldest_cas` scheme). A flush that takes effect at once
    /// also removes the items at once, as memcached 1.6.38 does (`curr_items` drops to 0 and
    /// later gets count as misses, not as `get_flushed`); a delayed one lets them go lazily,
    /// as they are seen.
    pub fn flush_all(&self, delay: i64) {
        let now = self.clock.now();
        let new_oldest = if delay > 0 {
            self.clock.expiry(delay)
        } else {
            now
        };
        let oldest_live = if self.use_cas {
            new_oldest.saturating_sub(1)
        } else {
            new_oldest
        };
        self.oldest_live.store(oldest_live, Ordering::Release);
        if self.use_cas && oldest_live <= now {
            // Every item stored so far goes, and no CAS is spent on it: memcached 1.6.38
            // takes the next CAS without consuming it, so the first store after a flush
            // gets the CAS it would have had without one.
            let next = self.last_cas.load(Ordering::Relaxed) + 1;
            self.oldest_cas.store(next, Ordering::Release);
        }
        if oldest_live <= now {
            self.remove_flushed();
        }
    }

    /// Unlinks every flushed item, shard by shard.
    fn remove_flushed(&self) {
        for s in 0..SHARDS {
            let now = self.clock.now();
            let mut shard = self.shard(s);
            let mut from = 0;
            while let Some(idx) = shard.table.next_entry(from) {
                from = idx + 1;
                let header = self.header_of(&shard.table.entry(idx).chunk);
                if self.is_flushed(&header, now) {
                    self.unlink(&mut shard, idx, &header);
                }
            }
        }
    }

    /// The item memory limit now in force (`-m`, changed by `cache_memlimit`).
    pub fn memory_limit(&self) -> usize {
        self.memory_limit.load(Ordering::Relaxed)
    }

    /// `cache_memlimit`: changes how much of the arena may be used; refuses a limit below the
    /// pages already handed out or above the arena `-m` reserved.
    pub fn set_memory_limit(&self, bytes: usize) -> bool {
        if !self.arena().set_limit(bytes) {
            return false;
        }
        self.memory_limit.store(bytes, Ordering::Relaxed);
        true
    }

    /// `n` chunks of `class`, making room by reclaiming expired items and (unless `-M`)
    /// evicting the least recently used items of that class, or by taking a page from another
    /// class; counts the class out of memory when none can be made. Never called with a shard
    /// lock held.
    pub(super) fn alloc_chunks(&self, class: u8, n: usize) -> Option<Chunks> {
        let chunks = self.try_alloc_chunks(class, n);
        if chunks.is_none() {
            self.count_out_of_memory(class);
        }
        chunks
    }

    /// [`Cache::alloc_chunks`] without counting a failure.
    pub(super) fn try_alloc_chunks(&self, class: u8, n: usize) -> Option<Chunks> {
        if n == 1 {
            loop {
                if let Some(c) = self.slabs.alloc(class as usize) {
                    return Some(Chunks::One(c));
                }
                if !self.make_room(class) {
                    return None;
                }
            }
        }
        let mut got = Vec::with_capacity(n);
        while got.len() < n {
            if let Some(c) = self.slabs.alloc(class as usize) {
                got.push(c);
            } else if !self.evict_one(class) {
                // A page move waits for every chunk of its page to come back, and these may be
                // some: give them back before waiting for one.
                Chunks::Many(std::mem::take(&mut got)).free(&self.slabs, class);
                if !self.steal_page(class, n) {
                    return None;
                }
            }
        }
        Some(Chunks::Many(got))
    }

    fn count_out_of_memory(&self, class: u8) {
        let mut shard = self.shard(0);
        shard.classes[class as usize].outofmemory += 1;
    }

    /// Frees a chunk of `class`: the least recently used item of the class if it may go, else
    /// a page taken from another class (so a store never fails while anything in the cache
    /// could be evicted). False when neither is possible. Called holding no shard lock and no
    /// chunk.
    pub(super) fn make_room(&self, class: u8) -> bool {
        self.make_room_for(class, 1)
    }

    /// [`Cache::make_room`] for a store that wants `need` chunks at once: a page is taken
    /// unless the class has that many free (not merely one, which the store may have just
    /// given back).
    pub(super) fn make_room_for(&self, class: u8, need: usize) -> bool {
        self.evict_one(class) || self.steal_page(class, need)
    }

    /// Frees the least recently used item of `class` in some shard (shards take turns): an
    /// expired or flushed one always, a live one only when evictions are on.
    fn evict_one(&self, class: u8) -> bool {
        let now = self.clock.now();
        let cursor = self.evict_cursor.fetch_add(1, Ordering::Relaxed);
        let start = self.older_cold_tail(class, cursor);
        // First any shard's cold segment; hot and warm items only when no shard has cold ones.
        for i in 0..2 * SHARDS {
            let mut shard = self.shard((start + i) % SHARDS);
            let Some((idx, header)) = self.eviction_candidate(&mut shard, class, i >= SHARDS)
            else {
                continue;
            };
            let dead = self.is_dead(&header, now);
            if !dead && !self.evictions {
                continue;
            }
            let fetched = header.has(item::FETCHED);
            let c = &mut shard.classes[class as usize];
            if dead {
                c.reclaimed += 1;
                c.expired_unfetched += u64::from(!fetched);
            } else {
                c.evicted += 1;
                c.evicted_nonzero += u64::from(header.exptime != 0);
                c.evicted_time = now.wrapping_sub(header.time);
                c.evicted_unfetched += u64::from(!fetched);
                if crate::watch::watching(crate::watch::kind::EVICTIONS) {
                    let entry = shard.table.entry(idx);
                    crate::watch::eviction(crate::watch::EvictionEvent {
                        key: self.key_of(&entry.chunk),
                        fetched,
                        ttl: if header.exptime == 0 {
                            -1
                        } else {
                            i64::from(header.exptime) - i64::from(now)
                        },
                        last_access: now.wrapping_sub(header.time),
                        class,
                        size: header.nbytes,
                    });
                }
            }
            self.unlink(&mut shard, idx, &header);
            drop(shard);
            if !dead {
                self.rebalance_after_eviction(class, self.age_stamp(&header));
            }
            return true;
        }
        false
    }

    /// Which of two shards to evict from first: the one whose cold tail of `class` was stored
    /// earlier (CAS ids number the stores). Each shard keeps its own LRU, so taking shards in
    /// turn evicts the tail of one shard's list, which in a class of a few items per shard can
    /// be much younger than the class's oldest item; the older of two tails is nearer to it.
    fn older_cold_tail(&self, class: u8, cursor: usize) -> usize {
        let first = cursor % SHARDS;
        if !self.use_cas {
            return first;
        }
        let second = (first + 1 + (cursor.wrapping_mul(0x9E37_79B9) >> 7) % (SHARDS - 1)) % SHARDS;
        let cold = Lru { class, seg: COLD };
        let tail_cas = |s: usize| {
            let shard = self.shard(s);
            let idx = shard.table.lru_tail(cold)?;
            Some(self.header_of(&shard.table.entry(idx).chunk).cas)
        };
        match (tail_cas(first), tail_cas(second)) {
            (Some(a), Some(b)) if b < a => second,
            (None, Some(_)) => second,
            _ => first,
        }
    }

    /// The item to free in a shard's class: an expired item at the temporary LRU's tail, else
    /// the cold tail, where an item read since it got there is given another round in warm
    /// instead (a few times at most, as memcached's eviction search); with `any_segment`, hot
    /// and then warm tails when cold is empty.
    fn eviction_candidate(
        &self,
        shard: &mut Shard,
        class: u8,
        any_segment: bool,
    ) -> Option<(u32, Header)> {
        let now = self.clock.now();
        // Temporary items are never evicted, but an expired one is the cheapest room of all.
        // A pinned item is passed over everywhere, as memcached passes over a referenced one:
        // a reply still reads it, so unlinking it would free nothing.
        if let Some(idx) = shard.table.lru_tail(Lru { class, seg: TEMP }) {
            let header = self.header_of(&shard.table.entry(idx).chunk);
            if self.is_dead(&header, now) && !self.is_pinned(shard, idx) {
                return Some((idx, header));
            }
        }
        let cold = Lru { class, seg: COLD };
        let warm = Lru { class, seg: WARM };
        for _ in 0..5 {
            let Some(idx) = shard.table.lru_tail(cold) else {
                break;
            };
            let header = self.header_of(&shard.table.entry(idx).chunk);
            let dead = self.is_dead(&header, now);
            let pinned = self.is_pinned(shard, idx);
            if (dead || !header.has(item::ACTIVE)) && !pinned {
                return Some((idx, header));
            }
            // Read again since it came here (or being read now): another round in warm.
            self.deactivate(shard, idx);
            self.move_item(shard, idx, cold, warm);
        }
        if !any_segment {
            return None;
        }
        [COLD, HOT, WARM].into_iter().find_map(|seg| {
            let idx = shard.table.lru_tail(Lru { class, seg })?;
            let header = self.header_of(&shard.table.entry(idx).chunk);
            (!self.is_pinned(shard, idx)).then_some((idx, header))
        })
    }

    /// Cache-wide figures.
    pub fn stats(&self) -> CacheStats {
        let mut s = CacheStats {
            limit_maxbytes: self.memory_limit.load(Ordering::Relaxed) as u64,
            pages_used: self.arena().pages_used() as u64,
            ..CacheStats::default()
        };
        let mut all = ClassCounters::default();
        for i in 0..SHARDS {
            let shard = self.shard(i);
            s.curr_items += shard.table.len() as u64;
            s.total_items += shard.total_items;
            s.bytes += shard.bytes;
            s.hash_buckets += shard.table.buckets() as u64;
            s.hash_bytes += shard.table.overhead_bytes() as u64;
            shard.classes.iter().for_each(|c| all.add(c));
        }
        s.evictions = all.evicted;
        s.reclaimed = all.reclaimed;
        s.expired_unfetched = all.expired_unfetched;
        s.evicted_unfetched = all.evicted_unfetched;
        s.crawler_reclaimed = all.crawler_reclaimed;
        s.crawler_items_checked = all.crawler_items_checked;
        s.moves = [all.moves_to_cold, all.moves_to_warm, all.moves_within_lru];
        s
    }

    /// One class's counters, summed over shards, with its LRU segments' sizes and ages (for
    /// `stats items`).
    pub fn class_counters(&self, class: usize) -> (ClassCounters, ClassLru) {
        let now = self.clock.now();
        let mut sum = ClassCounters::default();
        let mut lru = ClassLru::default();
        for i in 0..SHARDS {
            let shard = self.shard(i);
            sum.add(&shard.classes[class]);
            lru.items += shard.table.class_len(class as u8) as u64;
            for seg in 0..SEGMENTS as u8 {
                let list = Lru {
                    class: class as u8,
                    seg,
                };
                lru.number[seg as usize] += shard.table.lru_len(list) as u64;
                if let Some(idx) = shard.table.lru_tail(list) {
                    let h = self.header_of(&shard.table.entry(idx).chunk);
                    let age = &mut lru.age[seg as usize];
                    *age = (*age).max(now.wrapping_sub(h.time));
                }
            }
        }
        (sum, lru)
    }

    /// `stats reset`: zeroes the cumulative counters (not the current item count or bytes).
    pub fn reset_stats(&self) {
        for i in 0..SHARDS {
            let mut shard = self.shard(i);
            shard.total_items = 0;
            for c in shard.classes.iter_mut() {
                *c = ClassCounters {
                    mem_requested: c.mem_requested,
                    ..ClassCounters::default()
                };
            }
        }
    }
}

/// Counts a successful incr/decr for its slab class.
pub(super) fn count_arith(stats: &ThreadStats, class: u8, increment: bool) {
    let class = stats.classes.class(class as usize);
    if increment {
        class.incr_hits.incr();
    } else {
        class.decr_hits.incr();
    }
}
