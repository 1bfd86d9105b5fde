//! Storing: set, add, replace, append, prepend and cas (memcached's `do_store_item`).

use super::item::{self, Header};
use super::{
    Cache, Chunks, Found, RelTime, Reservation, Shard, StoreMode, StoreOptions, StoreOutcome,
};
use crate::stats::ThreadStats;
use crate::watch;

impl StoreMode {
    /// The text command of this mode (as `watch` lines name it).
    pub fn command_name(self) -> &'static str {
        match self {
            StoreMode::Set => "set",
            StoreMode::Add => "add",
            StoreMode::Replace => "replace",
            StoreMode::Append => "append",
            StoreMode::Prepend => "prepend",
            StoreMode::Cas => "cas",
        }
    }
}

impl StoreOutcome {
    /// memcached's name for the outcome (its `store_item_type`, as `watch` lines show it).
    pub fn status_name(self) -> &'static str {
        match self {
            StoreOutcome::Stored { .. } => "stored",
            StoreOutcome::NotStored => "not_stored",
            StoreOutcome::Exists => "exists",
            StoreOutcome::NotFound => "not_found",
            StoreOutcome::TooLarge => "too_large",
            StoreOutcome::NoMemory => "no_memory",
        }
    }
}

/// What a store puts in the item's chunks besides its value.
#[derive(Debug, Clone, Copy)]
struct NewItem<'a> {
    key: &'a [u8],
    flags: u32,
    exptime: RelTime,
    class: u8,
}

/// The value of an item being stored: to be copied into its chunks, or already received
/// there (a reservation's), this long.
#[derive(Debug, Clone, Copy)]
enum ValueIn<'a> {
    Copy(&'a [u8]),
    Received(usize),
}

impl ValueIn<'_> {
    fn len(&self) -> usize {
        match self {
            ValueIn::Copy(data) => data.len(),
            ValueIn::Received(len) => *len,
        }
    }
}

/// How a client's CAS id compares with the item's (memcached's `cas_result`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CasCheck {
    None,
    Match,
    Stale,
    Mismatch,
}

fn cas_check(opts: &StoreOptions, found: &Found) -> CasCheck {
    match opts.cas {
        0 => CasCheck::None,
        c if c == found.header.cas => CasCheck::Match,
        c if opts.invalidate && c < found.header.cas => CasCheck::Stale,
        _ => CasCheck::Mismatch,
    }
}

impl Cache {
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

    /// Stores `data` under `key` according to `mode` and `opts`.
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
            return log_refusal(stats.client_fd.get(), key, mode, StoreOutcome::TooLarge);
        }
        if matches!(mode, StoreMode::Append | StoreMode::Prepend) {
            return self.concatenate(stats, mode, opts, key, flags, data);
        }
        self.store_whole(stats, mode, opts, key, flags, exptime, data)
    }

    /// Stores a whole value (every mode but append and prepend).
    #[allow(clippy::too_many_arguments)]
    fn store_whole(
        &self,
        stats: &ThreadStats,
        mode: StoreMode,
        opts: StoreOptions,
        key: &[u8],
        flags: u32,
        exptime: RelTime,
        data: &[u8],
    ) -> StoreOutcome {
        let Some((class, n)) = self.layout(flags, key.len(), data.len()) else {
            return log_refusal(stats.client_fd.get(), key, mode, StoreOutcome::TooLarge);
        };
        stats.classes.class(class as usize).set_cmds.incr();
        // Memory first, without any shard lock: making room may visit every shard.
        let Some(chunks) = self.alloc_chunks(class, n) else {
            return log_refusal(stats.client_fd.get(), key, mode, StoreOutcome::NoMemory);
        };
        let item = NewItem {
            key,
            flags,
            exptime,
            class,
        };
        self.store_in(stats, mode, opts, item, chunks, ValueIn::Copy(data))
    }

    /// Stores the item a reservation received the value of, in any mode but append and
    /// prepend, as [`Cache::store_with`] would store it.
    pub fn store_reserved(
        &self,
        stats: &ThreadStats,
        mode: StoreMode,
        opts: StoreOptions,
        exptime: RelTime,
        mut reservation: Reservation,
    ) -> StoreOutcome {
        debug_assert!(!matches!(mode, StoreMode::Append | StoreMode::Prepend));
        let Some(chunks) = reservation.chunks.take() else {
            return StoreOutcome::NotStored;
        };
        let class = reservation.class;
        stats.classes.class(class as usize).set_cmds.incr();
        let item = NewItem {
            key: &reservation.key,
            flags: reservation.flags,
            exptime,
            class,
        };
        self.store_in(
            stats,
            mode,
            opts,
            item,
            chunks,
            ValueIn::Received(reservation.len()),
        )
    }

    /// Stores an item into `chunks`, allocated for it, or gives them back if the mode refuses.
    fn store_in(
        &self,
        stats: &ThreadStats,
        mode: StoreMode,
        opts: StoreOptions,
        item: NewItem<'_>,
        mut chunks: Chunks,
        value: ValueIn<'_>,
    ) -> StoreOutcome {
        let NewItem {
            key,
            flags,
            exptime,
            class,
        } = item;
        // memcached 1.6.38 takes the CAS id as it starts to store, so a refused store (add of
        // an existing key, a cas mismatch, …) spends one too.
        let cas = self.given_or_next_cas(opts.new_cas);
        let now = self.clock.now();
        let mut header = Header {
            nkey: key.len() as u8,
            bits: if opts.key_binary { item::KEY_BINARY } else { 0 },
            class,
            nbytes: value.len() as u32,
            exptime,
            time: now,
            flags,
            cas: 0,
        };
        let (s, hash) = Self::shard_of(key);
        let mut shard = self.shard(s);
        let existing = self.lookup(&mut shard, key, hash, now, stats);
        let refused = match (existing, mode) {
            (None, StoreMode::Set | StoreMode::Add) => None,
            (None, StoreMode::Cas) => Some(StoreOutcome::NotFound),
            (None, _) => Some(StoreOutcome::NotStored),
            (Some(mut old), StoreMode::Add) => {
                // memcached refreshes the existing item even though it does not store.
                self.touch_time(&mut shard, &mut old, now);
                Some(StoreOutcome::NotStored)
            }
            (Some(old), StoreMode::Cas) => match cas_check(&opts, &old) {
                CasCheck::Match => {
                    stats
                        .classes
                        .class(old.header.class as usize)
                        .cas_hits
                        .incr();
                    None
                }
                CasCheck::Stale => {
                    stats
                        .classes
                        .class(old.header.class as usize)
                        .cas_hits
                        .incr();
                    // A stale write keeps the item's expiry and recache token.
                    header.exptime = old.header.exptime;
                    header.bits |= item::STALE | (old.header.bits & item::TOKEN_SENT);
                    None
                }
                CasCheck::None | CasCheck::Mismatch => {
                    stats
                        .classes
                        .class(old.header.class as usize)
                        .cas_badval
                        .incr();
                    Some(StoreOutcome::Exists)
                }
            },
            (Some(_), _) => None,
        };
        if let Some(outcome) = refused {
            chunks.free(&self.slabs, class);
            self.log_store(stats.client_fd.get(), key, mode, outcome, &header);
            return outcome;
        }
        header.cas = cas;
        match value {
            ValueIn::Copy(data) => self.fill(chunks.as_mut_slice(), &header, key, &[data]),
            ValueIn::Received(_) => self.fill_frame(chunks.as_mut_slice(), &header, key),
        }
        if let Some(old) = existing {
            self.unlink(&mut shard, old.idx, &old.header);
        }
        self.link(&mut shard, hash, chunks, &header);
        let outcome = StoreOutcome::Stored {
            cas: header.cas,
            len: header.nbytes,
        };
        self.log_store(stats.client_fd.get(), key, mode, outcome, &header);
        outcome
    }

    /// append/prepend: a new item holding both values, with the old item's flags and expiry.
    /// On a miss, `opts.vivify` stores the data alone, with `flags`.
    fn concatenate(
        &self,
        stats: &ThreadStats,
        mode: StoreMode,
        opts: StoreOptions,
        key: &[u8],
        flags: u32,
        data: &[u8],
    ) -> StoreOutcome {
        let unjoined = |outcome| self.log_unjoined(stats.client_fd.get(), key, mode, data, outcome);
        // Spent whether or not the value is joined, as in `store_whole`.
        let cas = self.given_or_next_cas(opts.new_cas);
        loop {
            let now = self.clock.now();
            let (s, hash) = Self::shard_of(key);
            let mut shard = self.shard(s);
            let Some(old) = self.lookup(&mut shard, key, hash, now, stats) else {
                if let Some(exptime) = opts.vivify {
                    drop(shard);
                    // The id this append already spent goes to the new item.
                    let add = StoreOptions {
                        vivify: None,
                        new_cas: cas,
                        ..opts
                    };
                    return self.store_whole(stats, StoreMode::Add, add, key, flags, exptime, data);
                }
                return unjoined(StoreOutcome::NotStored);
            };
            if matches!(cas_check(&opts, &old), CasCheck::Stale | CasCheck::Mismatch) {
                return unjoined(StoreOutcome::Exists);
            }
            let len = old.header.nbytes as usize + data.len();
            let layout = self.layout(old.header.flags, key.len(), len);
            let Some((class, n)) =
                layout.filter(|_| self.item_size_ok(key.len(), old.header.flags, len))
            else {
                return unjoined(StoreOutcome::NotStored);
            };
            stats.classes.class(class as usize).set_cmds.incr();
            // Under the lock only free chunks may be taken; eviction happens without it.
            let mut chunks = Vec::with_capacity(n);
            while chunks.len() < n {
                match self.slabs.alloc(class as usize) {
                    Some(c) => chunks.push(c),
                    None => break,
                }
            }
            if chunks.len() < n {
                Chunks::Many(chunks).free(&self.slabs, class);
                drop(shard);
                if !self.make_room_for(class, n) {
                    return unjoined(StoreOutcome::NotStored);
                }
                continue;
            }
            let header = Header {
                nkey: key.len() as u8,
                bits: old.header.bits & item::KEY_BINARY,
                class,
                nbytes: len as u32,
                exptime: old.header.exptime,
                time: now,
                flags: old.header.flags,
                cas,
            };
            {
                let value = self.value(&shard, &old);
                let mut parts: Vec<&[u8]> = value.parts().collect();
                if mode == StoreMode::Append {
                    parts.push(data);
                } else {
                    parts.insert(0, data);
                }
                self.fill(&mut chunks, &header, key, &parts);
            }
            self.unlink(&mut shard, old.idx, &old.header);
            self.link(&mut shard, hash, Chunks::from_vec(chunks), &header);
            let outcome = StoreOutcome::Stored {
                cas: header.cas,
                len: header.nbytes,
            };
            self.log_store(stats.client_fd.get(), key, mode, outcome, &header);
            return outcome;
        }
    }

    /// `watch mutations`: a store attempt with the item it made (memcached logs the new item
    /// whether or not it was linked).
    pub(super) fn log_store(
        &self,
        fd: i32,
        key: &[u8],
        mode: StoreMode,
        outcome: StoreOutcome,
        header: &Header,
    ) {
        if watch::watching(watch::kind::MUTATIONS) {
            watch::item_store(watch::StoreEvent {
                fd,
                key,
                status: outcome.status_name(),
                command: mode.command_name(),
                ttl: self.ttl_of(header.exptime),
                class: header.class,
                size: header.nbytes,
            });
        }
    }

    /// `watch mutations` for an append/prepend that made no joined item: memcached logs the
    /// item holding the client's data alone.
    fn log_unjoined(
        &self,
        fd: i32,
        key: &[u8],
        mode: StoreMode,
        data: &[u8],
        outcome: StoreOutcome,
    ) -> StoreOutcome {
        if watch::watching(watch::kind::MUTATIONS) {
            let class = self.layout(0, key.len(), data.len()).map_or(0, |(c, _)| c);
            watch::item_store(watch::StoreEvent {
                fd,
                key,
                status: outcome.status_name(),
                command: mode.command_name(),
                ttl: 0,
                class,
                size: data.len() as u32,
            });
        }
        outcome
    }

    /// Seconds an item has left as memcached logs it: 0 for none, else the difference from
    /// now, unsigned (an already expired item shows a huge number, as in memcached).
    pub(super) fn ttl_of(&self, exptime: RelTime) -> u32 {
        if exptime == 0 {
            0
        } else {
            exptime.wrapping_sub(self.clock.now())
        }
    }

    /// Refreshes an item's access time and marks it active, without marking it fetched
    /// (memcached's `do_item_update`).
    fn touch_time(&self, shard: &mut Shard, found: &mut Found, now: RelTime) {
        if found.header.time < now.saturating_sub(super::ITEM_UPDATE_INTERVAL) {
            found.header.time = now;
            let entry = shard.table.entry_mut(found.idx);
            item::set_time(self.arena().bytes_mut(&mut entry.chunk), now);
        }
        // In the segmented LRU, being touched means being active.
        found.header.bits |= item::ACTIVE;
        let entry = shard.table.entry_mut(found.idx);
        item::set_bits(self.arena().bytes_mut(&mut entry.chunk), found.header.bits);
    }
}

/// `watch mutations` for a store refused before an item existed (too large, no memory).
/// memcached's line for these has shifted fields; this one puts each value in its place.
pub fn log_refusal(fd: i32, key: &[u8], mode: StoreMode, outcome: StoreOutcome) -> StoreOutcome {
    if watch::watching(watch::kind::MUTATIONS) {
        watch::item_store(watch::StoreEvent {
            fd,
            key,
            status: outcome.status_name(),
            command: mode.command_name(),
            ttl: 0,
            class: 0,
            size: 0,
        });
    }
    outcome
}
