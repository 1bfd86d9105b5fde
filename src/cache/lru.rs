//! The segmented LRU (memcached's `lru_segmented` mode and its LRU maintainer): what a read
//! does to an item's segment, which segment a new item enters, and how hot and warm are kept to
//! their share of a class — at insert time under the shard lock the insert already holds, and
//! once a second from the background thread ([`Cache::maintain_lru`]).

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};

use super::item::{self, Header};
use super::table::{self, Lru};
use super::{Cache, Found, RelTime, Shard, ITEM_UPDATE_INTERVAL, SHARDS};
use crate::cache::slabs::MAX_CLASSES;
use crate::stats::ThreadStats;

/// At insert time hot and warm keep at least this many items per shard: the percentages mean
/// nothing for a class that holds a handful of items in a shard, and would push every new item
/// straight to cold. The background pass applies memcached's rules without it.
const MIN_SEGMENT: usize = 4;

/// Items the background pass moves per class and shard at most, as memcached's juggle.
const JUGGLE_MOVES: usize = 500;

/// memcached's LRU settings (`-o lru_maintainer`, `hot_lru_pct`, `warm_lru_pct`,
/// `hot_max_factor`, `warm_max_factor`, `temporary_ttl`), with its defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LruSettings {
    /// `lru_maintainer` (default) / `no_lru_maintainer`: without it the LRU is flat and the
    /// `lru` command cannot change that.
    pub maintainer: bool,
    /// Hot, warm and cold segments; flat (cold only) when false.
    pub segmented: bool,
    /// Hot's share of a class, in percent.
    pub hot_pct: u32,
    /// Warm's share of a class, in percent.
    pub warm_pct: u32,
    /// An item leaves hot once older than this times the age of cold's tail.
    pub hot_max_factor: f64,
    /// An item leaves warm once older than this times the age of cold's tail.
    pub warm_max_factor: f64,
    /// Items with a short TTL go to the temporary LRU.
    pub temp_lru: bool,
    /// What "short" means, in seconds.
    pub temp_ttl: i32,
}

impl Default for LruSettings {
    fn default() -> Self {
        LruSettings {
            maintainer: true,
            segmented: true,
            hot_pct: 20,
            warm_pct: 40,
            hot_max_factor: 0.2,
            warm_max_factor: 2.0,
            temp_lru: false,
            temp_ttl: 61,
        }
    }
}

/// Why `lru tune` refused its values (memcached's replies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TuneError {
    /// Hot and warm together over 80%.
    PercentTooHigh,
    /// An age factor of zero or less.
    FactorNotPositive,
}

/// The LRU settings in force: the `lru` command changes them while the cache runs.
#[derive(Debug)]
pub struct LruTuning {
    maintainer: bool,
    segmented: AtomicBool,
    hot_pct: AtomicU32,
    warm_pct: AtomicU32,
    hot_max_factor: AtomicU64,
    warm_max_factor: AtomicU64,
    temp_lru: AtomicBool,
    temp_ttl: AtomicI32,
}

impl LruTuning {
    /// Tuning that starts from `s`.
    pub fn new(s: &LruSettings) -> LruTuning {
        LruTuning {
            maintainer: s.maintainer,
            segmented: AtomicBool::new(s.segmented),
            hot_pct: AtomicU32::new(s.hot_pct),
            warm_pct: AtomicU32::new(s.warm_pct),
            hot_max_factor: AtomicU64::new(s.hot_max_factor.to_bits()),
            warm_max_factor: AtomicU64::new(s.warm_max_factor.to_bits()),
            temp_lru: AtomicBool::new(s.temp_lru),
            temp_ttl: AtomicI32::new(s.temp_ttl),
        }
    }

    /// The settings now.
    pub fn get(&self) -> LruSettings {
        LruSettings {
            maintainer: self.maintainer,
            segmented: self.segmented.load(Ordering::Relaxed),
            hot_pct: self.hot_pct.load(Ordering::Relaxed),
            warm_pct: self.warm_pct.load(Ordering::Relaxed),
            hot_max_factor: f64::from_bits(self.hot_max_factor.load(Ordering::Relaxed)),
            warm_max_factor: f64::from_bits(self.warm_max_factor.load(Ordering::Relaxed)),
            temp_lru: self.temp_lru.load(Ordering::Relaxed),
            temp_ttl: self.temp_ttl.load(Ordering::Relaxed),
        }
    }

    /// `lru tune HOT WARM HOT_FACTOR WARM_FACTOR`, checked as memcached checks it (the sum of
    /// the percentages wraps as its `uint32_t` does).
    pub fn tune(
        &self,
        hot_pct: u32,
        warm_pct: u32,
        hot_max_factor: f64,
        warm_max_factor: f64,
    ) -> Result<(), TuneError> {
        if hot_pct.wrapping_add(warm_pct) > 80 {
            return Err(TuneError::PercentTooHigh);
        }
        // Written so that NaN passes, as memcached's `factor <= 0` lets it.
        if warm_max_factor <= 0.0 || hot_max_factor <= 0.0 {
            return Err(TuneError::FactorNotPositive);
        }
        self.hot_pct.store(hot_pct, Ordering::Relaxed);
        self.warm_pct.store(warm_pct, Ordering::Relaxed);
        self.hot_max_factor
            .store(hot_max_factor.to_bits(), Ordering::Relaxed);
        self.warm_max_factor
            .store(warm_max_factor.to_bits(), Ordering::Relaxed);
        Ok(())
    }

    /// `lru mode flat|segmented`; false (refused) without the maintainer.
    pub fn set_segmented(&self, segmented: bool) -> bool {
        if self.maintainer {
            self.segmented.store(segmented, Ordering::Relaxed);
        }
        self.maintainer
    }

    /// `lru temp_ttl N`: a negative TTL turns the temporary LRU off; false (refused) without
    /// the maintainer.
    pub fn set_temp_ttl(&self, ttl: i32) -> bool {
        if self.maintainer {
            if ttl < 0 {
                self.temp_lru.store(false, Ordering::Relaxed);
            } else {
                self.temp_lru.store(true, Ordering::Relaxed);
                self.temp_ttl.store(ttl, Ordering::Relaxed);
            }
        }
        self.maintainer
    }

    fn segmented(&self) -> bool {
        self.segmented.load(Ordering::Relaxed)
    }

    /// The segment a new item enters: temporary for a short TTL (memcached compares in
    /// unsigned arithmetic, so an item that never expires is never temporary), else hot, or
    /// cold when the LRU is flat.
    pub(super) fn entry_segment(&self, exptime: RelTime, now: RelTime) -> u8 {
        if self.temp_lru.load(Ordering::Relaxed)
            && exptime.wrapping_sub(now) <= self.temp_ttl.load(Ordering::Relaxed) as u32
        {
            table::TEMP
        } else if self.segmented() {
            table::HOT
        } else {
            table::COLD
        }
    }
}

impl Cache {
    /// The LRU settings in force.
    pub fn lru_tuning(&self) -> &LruTuning {
        &self.lru
    }

    /// Records a read as memcached's `do_item_bump`. Segmented: the first read marks the item
    /// fetched, the next one active (with its access time refreshed), and an active item in
    /// cold moves to warm; the maintainer's passes over the tails sort out the rest, so a hit
    /// rarely relinks anything. Flat: the item goes back to the head of its list, at most once
    /// a minute (`ITEM_UPDATE_INTERVAL`).
    pub(super) fn mark_accessed(
        &self,
        shard: &mut Shard,
        found: &mut Found,
        now: RelTime,
        stats: &ThreadStats,
    ) {
        let lru = found.header.lru();
        let ops = stats.classes.class(lru.class as usize);
        match lru.seg {
            table::HOT => ops.hits_to_hot.incr(),
            table::WARM => ops.hits_to_warm.incr(),
            table::COLD => ops.hits_to_cold.incr(),
            _ => ops.hits_to_temp.incr(),
        }
        let before = found.header;
        let h = &mut found.header;
        if !self.lru.segmented() {
            h.bits |= item::FETCHED;
            if h.time < now.saturating_sub(ITEM_UPDATE_INTERVAL) {
                h.time = now;
                shard.table.bump(found.idx, lru);
            }
        } else if h.bits & item::ACTIVE == 0 {
            if h.bits & item::FETCHED == 0 {
                h.bits |= item::FETCHED;
            } else if lru.seg == table::COLD {
                // memcached hands this move to its maintainer, which links the item into warm
                // inactive and leaves its access time alone; done here, under the lock already
                // held.
                h.set_seg(table::WARM);
                let warm = h.lru();
                shard.table.move_to(found.idx, lru, warm);
                shard.classes[lru.class as usize].moves_to_warm += 1;
            } else {
                h.bits |= item::ACTIVE;
                h.time = now;
            }
        }
        if found.header.bits != before.bits || found.header.time != before.time {
            let entry = shard.table.entry_mut(found.idx);
            let b = self.slabs.arena().bytes_mut(&mut entry.chunk);
            item::set_bits(b, found.header.bits);
            item::set_time(b, found.header.time);
        }
    }

    /// Keeps hot and warm to their share of a class when an item enters hot, a few moves at a
    /// time under the shard lock the insert already holds. A segment within its share is not
    /// looked at: rescuing its active tail and ageing are the background pass's work (as in
    /// memcached, whose allocations juggle only when memory runs out), and looking costs two
    /// cache misses per insert.
    pub(super) fn balance(&self, shard: &mut Shard, class: u8) {
        let tuning = self.lru.get();
        if !tuning.segmented {
            return;
        }
        let now = self.clock.now();
        let total = shard.table.class_len(class) - shard.table.lru_len(lru(class, table::TEMP));
        let hot_limit = share(total, tuning.hot_pct).max(MIN_SEGMENT);
        let warm_limit = share(total, tuning.warm_pct).max(MIN_SEGMENT);
        for (seg, limit) in [(table::HOT, hot_limit), (table::WARM, warm_limit)] {
            for _ in 0..2 {
                let list = lru(class, seg);
                if shard.table.lru_len(list) <= limit
                    || !self.pull_tail(shard, list, limit, RelTime::MAX, now)
                {
                    break;
                }
            }
        }
    }

    /// memcached's LRU maintainer pass over every class of every shard: hot and warm tails move
    /// on when their segment is over its share or their items are older than the cold tail's
    /// age times the segment's factor (in flat mode everything drains to cold), and expired
    /// items at the temporary LRU's tail are reclaimed. Run once a second by the background
    /// thread.
    pub fn maintain_lru(&self) {
        let tuning = self.lru.get();
        if !tuning.maintainer {
            return;
        }
        for s in 0..SHARDS {
            let mut shard = self.shard(s);
            let now = self.clock.now();
            for class in 1..MAX_CLASSES as u8 {
                if shard.table.class_len(class) == 0 {
                    continue;
                }
                self.reclaim_expired_temp(&mut shard, class, now);
                let total =
                    shard.table.class_len(class) - shard.table.lru_len(lru(class, table::TEMP));
                let (hot_age, warm_age) = if tuning.segmented {
                    let cold_age = shard
                        .table
                        .lru_tail(lru(class, table::COLD))
                        .map_or(0, |idx| {
                            now.wrapping_sub(self.header_of(&shard.table.entry(idx).chunk).time)
                        });
                    (
                        age_limit(cold_age, tuning.hot_max_factor),
                        age_limit(cold_age, tuning.warm_max_factor),
                    )
                } else {
                    (0, 0)
                };
                let hot = (
                    lru(class, table::HOT),
                    share(total, tuning.hot_pct),
                    hot_age,
                );
                let warm = (
                    lru(class, table::WARM),
                    share(total, tuning.warm_pct),
                    warm_age,
                );
                for (list, limit, max_age) in [hot, warm] {
                    for _ in 0..JUGGLE_MOVES {
                        if !self.pull_tail(&mut shard, list, limit, max_age, now) {
                            break;
                        }
                    }
                }
            }
        }
    }

    /// Moves the tail item of hot or warm on, as memcached's `lru_pull_tail`: an active item
    /// goes to warm (from hot) or back to warm's head, losing its active bit; an inactive one
    /// drops to cold if its list holds more than `limit` items or it is older than `max_age`.
    /// Returns whether an item moved.
    fn pull_tail(
        &self,
        shard: &mut Shard,
        list: Lru,
        limit: usize,
        max_age: RelTime,
        now: RelTime,
    ) -> bool {
        let Some(idx) = shard.table.lru_tail(list) else {
            return false;
        };
        let warm = lru(list.class, table::WARM);
        if self.deactivate(shard, idx) {
            self.move_item(shard, idx, list, warm);
            return true;
        }
        let time = self.header_of(&shard.table.entry(idx).chunk).time;
        if shard.table.lru_len(list) > limit || now.wrapping_sub(time) > max_age {
            self.move_item(shard, idx, list, lru(list.class, table::COLD));
            return true;
        }
        false
    }

    /// Frees expired items from the tail of a class's temporary LRU (whose items never move,
    /// so the oldest stored are there).
    fn reclaim_expired_temp(&self, shard: &mut Shard, class: u8, now: RelTime) {
        for _ in 0..JUGGLE_MOVES {
            let Some(idx) = shard.table.lru_tail(lru(class, table::TEMP)) else {
                return;
            };
            let header = self.header_of(&shard.table.entry(idx).chunk);
            if !self.is_dead(&header, now) {
                return;
            }
            let c = &mut shard.classes[class as usize];
            c.reclaimed += 1;
            c.expired_unfetched += u64::from(!header.has(item::FETCHED));
            self.unlink(shard, idx, &header);
        }
    }

    /// Clears an item's active bit; returns whether it was set.
    pub(super) fn deactivate(&self, shard: &mut Shard, idx: u32) -> bool {
        let entry = shard.table.entry_mut(idx);
        let b = self.slabs.arena().bytes_mut(&mut entry.chunk);
        let active = b[1] & item::ACTIVE != 0;
        item::set_bits(b, b[1] & !item::ACTIVE);
        active
    }

    /// Moves an item between LRU lists, recording its new segment and counting the move.
    pub(super) fn move_item(&self, shard: &mut Shard, idx: u32, from: Lru, to: Lru) {
        let entry = shard.table.entry_mut(idx);
        let b = self.slabs.arena().bytes_mut(&mut entry.chunk);
        let mut header = Header::read(b, self.use_cas);
        header.set_seg(to.seg);
        item::set_bits(b, header.bits);
        if from == to {
            shard.table.bump(idx, to);
        } else {
            shard.table.move_to(idx, from, to);
        }
        let c = &mut shard.classes[from.class as usize];
        match (from == to, to.seg) {
            (true, _) => c.moves_within_lru += 1,
            (false, table::WARM) => c.moves_to_warm += 1,
            _ => c.moves_to_cold += 1,
        }
    }
}

fn lru(class: u8, seg: u8) -> Lru {
    Lru { class, seg }
}

/// `pct` percent of `total` items (memcached's limits are in bytes; a class's items share one
/// chunk size, so counting items is the same share).
fn share(total: usize, pct: u32) -> usize {
    (total as u64 * u64::from(pct) / 100) as usize
}

/// The age past which an item leaves its segment: the cold tail's age times the factor.
fn age_limit(cold_age: RelTime, factor: f64) -> RelTime {
    (f64::from(cold_age) * factor) as RelTime
}
