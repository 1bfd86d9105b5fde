//! The segmented LRU's moves (memcached's LRU maintainer, done inline): what a read does to an
//! item's segment, and how hot and warm are kept to their share of a class.

use super::item::{self, Header};
use super::table::{self, Lru};
use super::{Cache, Found, RelTime, Shard, ITEM_UPDATE_INTERVAL};
use crate::stats::ThreadStats;

/// memcached's `hot_lru_pct` and `warm_lru_pct`: the share of a class's items each segment keeps.
const HOT_LRU_PCT: usize = 20;
const WARM_LRU_PCT: usize = 40;
/// Segments never shrink below this many items per shard: the percentages mean nothing for a
/// class that holds a handful of items in a shard, and would push everything to cold.
const MIN_SEGMENT: usize = 4;

impl Cache {
    /// Records a read: fetched and active, access time refreshed (at most once a minute, as
    /// memcached's `do_item_update`). A read in the cold segment moves the item to warm; in hot
    /// and warm the active bit is enough, and the segments' tails sort it out later — so a hit
    /// rarely relinks anything.
    pub(super) fn mark_accessed(
        &self,
        shard: &mut Shard,
        found: &mut Found,
        now: RelTime,
        stats: &ThreadStats,
    ) {
        let lru = found.header.lru();
        let ops = stats.classes.class(lru.class as usize);
        found.header.bits |= item::FETCHED | item::ACTIVE;
        match lru.seg {
            table::HOT => ops.hits_to_hot.incr(),
            table::WARM => ops.hits_to_warm.incr(),
            _ => {
                ops.hits_to_cold.incr();
                found.header.bits &= !item::ACTIVE;
                found.header.set_seg(table::WARM);
                let warm = found.header.lru();
                shard.table.move_to(found.idx, lru, warm);
                shard.classes[lru.class as usize].moves_to_warm += 1;
            }
        }
        let entry = shard.table.entry_mut(found.idx);
        let b = self.slabs.arena().bytes_mut(&mut entry.chunk);
        item::set_bits(b, found.header.bits);
        if found.header.time < now.saturating_sub(ITEM_UPDATE_INTERVAL) {
            found.header.time = now;
            item::set_time(b, now);
        }
    }

    /// memcached's LRU maintainer, done inline when an item enters hot: hot is kept to 20% of
    /// the class and warm to 40%; a tail item that was read since it last moved (active) goes
    /// on to warm (or back to warm's head), an idle one drops to cold. A few steps at a time,
    /// under the shard lock the insert already holds.
    pub(super) fn balance(&self, shard: &mut Shard, class: u8) {
        let total = shard.table.class_len(class);
        let hot = Lru {
            class,
            seg: table::HOT,
        };
        let warm = Lru {
            class,
            seg: table::WARM,
        };
        let cold = Lru {
            class,
            seg: table::COLD,
        };
        for _ in 0..2 {
            if shard.table.lru_len(hot) <= (total * HOT_LRU_PCT / 100).max(MIN_SEGMENT) {
                break;
            }
            let Some(idx) = shard.table.lru_tail(hot) else {
                break;
            };
            let to = if self.deactivate(shard, idx) {
                warm
            } else {
                cold
            };
            self.move_item(shard, idx, hot, to);
        }
        for _ in 0..2 {
            if shard.table.lru_len(warm) <= (total * WARM_LRU_PCT / 100).max(MIN_SEGMENT) {
                break;
            }
            let Some(idx) = shard.table.lru_tail(warm) else {
                break;
            };
            let to = if self.deactivate(shard, idx) {
                warm
            } else {
                cold
            };
            self.move_item(shard, idx, warm, to);
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
