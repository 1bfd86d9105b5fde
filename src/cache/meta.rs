//! Locked access for the meta protocol: look an item up, let the caller read it and decide, and
//! apply the decision — all under the item's lock, so a meta command sees and changes one
//! consistent item (memcached's `limited_get_locked` … `item_unlock`).

use super::shard::Item;
use super::{mark_accessed, Cache, LockedShard, RelTime, ThreadStats};

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
}

/// An item under its lock: read its fields, change its metadata.
#[derive(Debug)]
pub struct ItemMut<'a> {
    item: &'a mut Item,
    now: RelTime,
    created: bool,
}

impl ItemMut<'_> {
    /// The key.
    pub fn key(&self) -> &[u8] {
        &self.item.key
    }
    /// The value.
    pub fn data(&self) -> &[u8] {
        &self.item.data
    }
    /// Client flags.
    pub fn flags(&self) -> u32 {
        self.item.flags
    }
    /// CAS id.
    pub fn cas(&self) -> u64 {
        self.item.cas
    }
    /// Expiry (relative; 0 = never).
    pub fn exptime(&self) -> RelTime {
        self.item.exptime
    }
    /// Sets the expiry.
    pub fn set_exptime(&mut self, exptime: RelTime) {
        self.item.exptime = exptime;
    }
    /// Seconds left to live, -1 for never (meta `t`).
    pub fn ttl(&self) -> i64 {
        if self.item.exptime == 0 {
            -1
        } else {
            i64::from(self.item.exptime.wrapping_sub(self.now))
        }
    }
    /// Seconds since the last access (meta `l`).
    pub fn idle(&self) -> u32 {
        self.now.wrapping_sub(self.item.time)
    }
    /// Whether it was read before (meta `h`).
    pub fn fetched(&self) -> bool {
        self.item.fetched
    }
    /// Marked stale by an invalidation.
    pub fn stale(&self) -> bool {
        self.item.stale
    }
    /// A recache token was already handed out.
    pub fn token_sent(&self) -> bool {
        self.item.token_sent
    }
    /// Records that a recache token was handed out.
    pub fn set_token_sent(&mut self) {
        self.item.token_sent = true;
    }
    /// The key is binary (return it base64-encoded).
    pub fn key_binary(&self) -> bool {
        self.item.key_binary
    }
    /// This access created the item (vivify).
    pub fn created(&self) -> bool {
        self.created
    }
}

impl Cache {
    /// Meta get: `read` sees the item (or `None`) under its lock and may change its metadata.
    pub fn meta_get<R>(
        &self,
        stats: &ThreadStats,
        key: &[u8],
        opts: MetaGetOptions,
        read: impl FnOnce(Option<&mut ItemMut<'_>>) -> R,
    ) -> R {
        let now = self.clock.now();
        let mut shard = self.shard(key);
        let mut slot = self.lookup(&mut shard, key, now, stats);
        let bump = !opts.no_update;
        if let (Some(s), true, false) = (slot, bump, opts.delay_bump) {
            mark_accessed(&mut shard.items, s, now);
        }
        let mut created = false;
        if slot.is_none() && opts.vivify {
            let mut item = self.new_item(key, Box::default(), 0, 0, now);
            item.key_binary = opts.key_binary;
            slot = Some(self.link_small(&mut shard, item));
            created = true;
        }
        let result = match slot {
            Some(s) => read(Some(&mut ItemMut {
                item: shard.items.item_mut(s),
                now,
                created,
            })),
            None => read(None),
        };
        if let (Some(s), true, true) = (slot, bump, opts.delay_bump) {
            mark_accessed(&mut shard.items, s, now);
        }
        result
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
        let mut shard = self.shard(key);
        let Some(slot) = self.lookup(&mut shard, key, now, stats) else {
            return MetaDelete::NotFound;
        };
        if cas.is_some_and(|c| c != shard.items.item(slot).cas) {
            return MetaDelete::CasMismatch;
        }
        if invalidate {
            let cas = self.next_cas();
            let item = shard.items.item_mut(slot);
            if let Some(e) = new_exptime {
                item.exptime = e;
            }
            item.stale = true;
            item.token_sent = false;
            item.cas = cas;
            return MetaDelete::Invalidated;
        }
        let item = shard.items.remove(slot);
        shard.counters.bytes -= item.charge as u64;
        drop(shard);
        self.release(item.charge);
        MetaDelete::Deleted
    }

    /// Meta arithmetic: incr/decr as the text command, with an optional CAS check and, on a
    /// miss, an optional new item holding `vivify`. `then` sees the resulting item and value.
    #[allow(clippy::too_many_arguments)]
    pub fn meta_arithmetic<R>(
        &self,
        stats: &ThreadStats,
        key: &[u8],
        increment: bool,
        delta: u64,
        cas: u64,
        vivify: Option<u64>,
        then: impl FnOnce(&mut ItemMut<'_>, u64) -> R,
    ) -> MetaArith<R> {
        let now = self.clock.now();
        let mut shard = self.shard(key);
        let (slot, value, created) = match self.lookup(&mut shard, key, now, stats) {
            Some(slot) => {
                let item = shard.items.item(slot);
                if item.data.is_empty() {
                    return MetaArith::NonNumeric;
                }
                if cas != 0 && item.cas != cas {
                    return MetaArith::CasMismatch;
                }
                match self.apply_arithmetic(&mut shard, slot, increment, delta, now) {
                    Ok(value) => (slot, value, false),
                    Err(_) => return MetaArith::NonNumeric,
                }
            }
            None => {
                let Some(initial) = vivify else {
                    return MetaArith::NotFound;
                };
                let digits = initial.to_string();
                let item = self.new_item(key, Box::from(digits.as_bytes()), 0, 0, now);
                (self.link_small(&mut shard, item), initial, true)
            }
        };
        let mut item = ItemMut {
            item: shard.items.item_mut(slot),
            now,
            created,
        };
        MetaArith::Done(then(&mut item, value))
    }

    /// Links an item of a few bytes while its shard is locked. It is charged without evicting,
    /// so the lock is never held while other shards are visited; the overshoot is bounded by
    /// one small item per thread.
    fn link_small(&self, shard: &mut LockedShard, item: Item) -> u32 {
        let charge = item.charge;
        self.used
            .fetch_add(charge, std::sync::atomic::Ordering::Relaxed);
        shard.counters.total_items += 1;
        shard.counters.bytes += charge as u64;
        shard.items.insert(item)
    }

    /// `me`: an item's metadata, without touching it.
    pub fn debug_item<R>(
        &self,
        stats: &ThreadStats,
        key: &[u8],
        read: impl FnOnce(&ItemMut<'_>, usize) -> R,
    ) -> Option<R> {
        let now = self.clock.now();
        let mut shard = self.shard(key);
        let slot = self.lookup(&mut shard, key, now, stats)?;
        let item = shard.items.item_mut(slot);
        let size = item.charge;
        Some(read(
            &ItemMut {
                item,
                now,
                created: false,
            },
            size,
        ))
    }
}
