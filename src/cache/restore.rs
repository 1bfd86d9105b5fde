//! A cache whose item memory lives in a file, and the scan that indexes a reopened one again.
//!
//! Nothing but the arena is needed: every live item's first chunk is marked [`item::LIVE`], a
//! chained item's further chunks name their item and their place in it, and the page table
//! names each page's class. The scan adopts every chunk once, keeps the items it can read whole,
//! frees the rest, and links the kept ones into their shards oldest first, so the LRU order is
//! roughly what it was.
//!
//! Whether the file may be trusted at all (it was closed cleanly, by a build of this layout,
//! with the same settings) is for the caller to decide before asking for a reopen.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use super::arena::{Adoption, Arena, Chunk, STATE_AT};
use super::item::{self, Header};
use super::warm::{OLDEST_CAS_WORD, OLDEST_LIVE_WORD};
use super::{Cache, CacheConfig, Clock, RelTime, Shard, SHARDS};

/// The most threads a restart indexes the items with.
const MAX_RESTORE_THREADS: usize = 8;

/// The file header word (of those the arena leaves to the cache) holding the unix time that
/// relative time 0 stood for when the items' times were written.
pub(super) const TIME_BASE_WORD: usize = 0;

/// What a scan of a reopened arena found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Restored {
    /// Items indexed again.
    pub items: usize,
    /// Items left out: expired while the cache was down, or not readable whole.
    pub dropped: usize,
}

/// Further chunks of chained items, by the offset of the first chunk they name, with their
/// place in the chain.
type Chains = HashMap<usize, Vec<(u32, Chunk)>>;

/// A first chunk found live, with what orders the index rebuild.
struct Head {
    time: RelTime,
    cas: u64,
    /// The key's hash, computed once by the scan (the relink needs it again).
    hash: u32,
    class: u8,
    chunk: Chunk,
}

impl Cache {
    /// A cache whose item memory lives in `file` (a memfd or a file on tmpfs). A file that
    /// already holds an arena of this layout and size is reopened and its items indexed again;
    /// any other file is cleared.
    pub fn in_file(
        config: &CacheConfig,
        clock: Arc<Clock>,
        file: &File,
    ) -> io::Result<(Cache, Restored)> {
        let (arena, adoption) = Arena::in_file(file, config.memory_limit)?;
        let cache = Self::with_arena(config, clock, arena);
        let restored = match adoption {
            Some(adoption) => cache.adopt(adoption),
            None => Restored::default(),
        };
        if let Some(base) = cache.arena().meta_words().get(TIME_BASE_WORD) {
            base.store(cache.clock.process_started() as u64, Ordering::Relaxed);
        }
        Ok((cache, restored))
    }

    /// Takes over every chunk of a reopened arena and indexes the items it holds.
    fn adopt(&self, adoption: Adoption) -> Restored {
        let arena = self.arena();
        let word = |i: usize| {
            arena
                .meta_words()
                .get(i)
                .map_or(0, |w| w.load(Ordering::Relaxed))
        };
        let base = word(TIME_BASE_WORD) as i64;
        // Times were relative to the old process's start; make them relative to this one's.
        let shift = if base == 0 {
            0
        } else {
            base - self.clock.process_started()
        };
        let flush = self.resume_flush(word(OLDEST_LIVE_WORD), word(OLDEST_CAS_WORD), shift);
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .clamp(1, MAX_RESTORE_THREADS);
        let (by_shard, further) = self.scan(adoption, threads);
        // Chains are rare: each is taken by its first chunk's relink, under a lock.
        let chains = (!further.is_empty()).then(|| Mutex::new(further));
        // LRUs are per shard, so the order only matters within one: the items are sorted and
        // linked shard by shard, the shards shared among threads.
        let mut portions: Vec<Vec<(usize, Vec<Head>)>> = (0..threads).map(|_| Vec::new()).collect();
        for (i, heads) in by_shard.into_iter().enumerate() {
            portions[i % threads].push((i, heads));
        }
        let now = self.clock.now();
        let relink_portion = |portion: Vec<(usize, Vec<Head>)>| {
            let (mut restored, mut last_cas) = (Restored::default(), 0);
            for (index, mut heads) in portion {
                heads.sort_unstable_by_key(|h| (h.time, h.cas));
                // One lock for the whole shard: nothing else runs before the restore is done.
                let mut shard = self.shard(index);
                for head in heads {
                    let chain = chains.as_ref().map_or_else(Vec::new, |c| {
                        crate::sync::lock(c)
                            .remove(&head.chunk.offset())
                            .unwrap_or_default()
                    });
                    match self.relink(&mut shard, head, chain, (shift, now), &flush) {
                        Some(cas) => {
                            restored.items += 1;
                            last_cas = last_cas.max(cas);
                        }
                        None => restored.dropped += 1,
                    }
                }
            }
            (restored, last_cas)
        };
        let done: Vec<(Restored, u64)> = std::thread::scope(|scope| {
            let mut portions = portions.into_iter();
            let first = portions.next().unwrap_or_default();
            let others: Vec<_> = portions
                .map(|portion| scope.spawn(|| relink_portion(portion)))
                .collect();
            let mut done = vec![relink_portion(first)];
            for handle in others {
                // A relink that panicked leaves its items unindexed (their chunks stay
                // adopted): the cache is smaller, never wrong.
                done.extend(handle.join().ok());
            }
            done
        });
        let mut restored = Restored::default();
        let mut last_cas = 0;
        for (r, cas) in done {
            restored.items += r.items;
            restored.dropped += r.dropped;
            last_cas = last_cas.max(cas);
        }
        // Further chunks whose first chunk was not found live.
        if let Some(chains) = chains {
            let left = chains.into_inner().unwrap_or_else(|e| e.into_inner());
            for (_, chain) in left {
                for (_, chunk) in chain {
                    self.free_adopted(chunk);
                }
            }
        }
        self.last_cas.fetch_max(last_cas, Ordering::Relaxed);
        restored
    }

    /// Adopts every chunk of the reopened arena's pages, on `threads` threads: the first
    /// chunks of live items, by the shard their key falls in, and the further chunks of chained
    /// ones, by the offset of the first chunk they name; everything else is freed.
    fn scan(&self, adoption: Adoption, threads: usize) -> (Vec<Vec<Head>>, Chains) {
        let arena = self.arena();
        let largest_header = item::header_len(item::HAS_FLAGS, self.use_cas);
        let adoption = Mutex::new(adoption);
        let scan_pages = || {
            let mut by_shard: Vec<Vec<Head>> = (0..SHARDS).map(|_| Vec::new()).collect();
            let mut further = Chains::new();
            loop {
                let page = arena.adopt_next(&mut crate::sync::lock(&adoption));
                let Some(page) = page else { break };
                self.slabs
                    .adopt(page, |class, chunk| match arena.bytes(&chunk)[STATE_AT] {
                        item::LIVE if arena.chunk_len(&chunk) >= largest_header => {
                            let header = self.header_of(&chunk);
                            let (shard, hash) = self.shard_hint(&chunk, &header);
                            let head = Head {
                                time: header.time,
                                cas: header.cas,
                                hash,
                                class,
                                chunk,
                            };
                            by_shard[shard].push(head);
                            None
                        }
                        item::CONTINUATION => {
                            let (head, index) = item::read_continuation(arena.bytes(&chunk));
                            further.entry(head).or_default().push((index, chunk));
                            None
                        }
                        _ => Some(chunk),
                    });
            }
            (by_shard, further)
        };
        std::thread::scope(|scope| {
            let others: Vec<_> = (1..threads).map(|_| scope.spawn(scan_pages)).collect();
            let (mut by_shard, mut further) = scan_pages();
            // A scan that panicked leaves its chunks adopted and unused: the cache is
            // smaller, never wrong.
            for (shards, chains) in others.into_iter().filter_map(|h| h.join().ok()) {
                for (all, more) in by_shard.iter_mut().zip(shards) {
                    all.extend(more);
                }
                for (head, mut chain) in chains {
                    further.entry(head).or_default().append(&mut chain);
                }
            }
            (by_shard, further)
        })
    }

    /// Indexes one found item again, with its times shifted to this process's clock; returns
    /// its CAS, or `None` (its chunks freed) when it expired or cannot be read whole.
    fn relink(
        &self,
        shard: &mut Shard,
        mut head: Head,
        mut chain: Vec<(u32, Chunk)>,
        (shift, now): (i64, RelTime),
        flush: &StoppedFlush,
    ) -> Option<u64> {
        let expired = |h: &Header| {
            h.exptime != 0 && shifted(h.exptime, shift) <= i64::from(now) || flush.covers(h)
        };
        let readable = self.readable(&head, &mut chain);
        let Some(mut header) = readable.filter(|h| !expired(h)) else {
            self.free_adopted(head.chunk);
            for (_, chunk) in chain {
                self.free_adopted(chunk);
            }
            return None;
        };
        header.exptime = if header.exptime == 0 {
            0
        } else {
            shifted(header.exptime, shift) as RelTime
        };
        header.time = shifted(header.time, shift).clamp(0, i64::from(now)) as RelTime;
        header.write(self.arena().bytes_mut(&mut head.chunk), self.use_cas);
        let key = self.key_of(&head.chunk);
        let hash = head.hash;
        // Two live copies of a key cannot come from a clean stop; keep the newer if they do.
        if let Some(other) = shard.table.find(hash, |e| self.key_of(&e.chunk) == key) {
            let old = self.header_of(&shard.table.entry(other).chunk);
            if old.cas >= header.cas {
                self.free_adopted(head.chunk);
                for (_, chunk) in chain {
                    self.free_adopted(chunk);
                }
                return None;
            }
            self.unlink(shard, other, &old);
        }
        let size = self.footprint(&header);
        shard.bytes += size as u64;
        shard.classes[header.class as usize].mem_requested += size as u64;
        self.count_size(size, true);
        let chain = (!chain.is_empty())
            .then(|| chain.into_iter().map(|(_, c)| c).collect::<Box<[Chunk]>>());
        shard.table.insert(head.chunk, hash, header.lru(), chain);
        Some(header.cas)
    }

    /// The shard a found item's key falls in and the key's hash, from the header the scan
    /// already read; a key that does not fit its chunk goes to shard 0, where its relink drops
    /// it.
    fn shard_hint(&self, chunk: &Chunk, header: &Header) -> (usize, u32) {
        let bytes = self.arena().bytes(chunk);
        let start = header.len(self.use_cas);
        match bytes.get(start..start + header.nkey as usize) {
            Some(key) => Self::shard_of(key),
            None => (0, 0),
        }
    }

    /// Whether a found first chunk and the further chunks naming it make one whole item of its
    /// page's class, and if so its header; sorts the further chunks into order.
    fn readable(&self, head: &Head, chain: &mut [(u32, Chunk)]) -> Option<Header> {
        let bytes = self.arena().bytes(&head.chunk);
        if bytes.len() < item::header_len(item::HAS_FLAGS, self.use_cas) {
            return None;
        }
        let header = Header::read(bytes, self.use_cas);
        let size = bytes.len();
        let footprint = self.footprint(&header);
        let first_holds = footprint.min(size);
        if header.class != head.class
            || header.nkey == 0
            || header.len(self.use_cas) + header.nkey as usize > first_holds
        {
            return None;
        }
        let needed = footprint
            .saturating_sub(size)
            .div_ceil(size - item::CONTINUATION_HEADER);
        chain.sort_unstable_by_key(|&(index, _)| index);
        let whole = chain.len() == needed
            && chain.iter().zip(1..).all(|(&(index, ref chunk), want)| {
                index == want && self.arena().chunk_len(chunk) == size
            });
        whole.then_some(header)
    }

    /// The last run's `flush_all` state, written at its stop on its clock: a flush that has
    /// taken effect by now drops what it covers during the scan; one still to come (`flush_all
    /// N`) is carried over to this run's clock.
    fn resume_flush(&self, oldest_live: u64, oldest_cas: u64, shift: i64) -> StoppedFlush {
        let oldest_live = oldest_live as i64;
        let fired = oldest_live != 0 && oldest_live + shift <= i64::from(self.clock.now());
        if oldest_live != 0 && !fired {
            let on_this_clock = RelTime::try_from(oldest_live + shift).unwrap_or(RelTime::MAX);
            self.oldest_live.store(on_this_clock, Ordering::Release);
            self.oldest_cas.store(oldest_cas, Ordering::Release);
        }
        StoppedFlush {
            fired,
            oldest_live,
            oldest_cas,
        }
    }

    /// Frees an adopted chunk that holds nothing to keep (it counted as used when adopted).
    fn free_adopted(&self, chunk: Chunk) {
        let class = self.slabs.class_of_page(chunk.page());
        self.slabs.free(class, chunk);
    }
}

/// A `flush_all` of the last run, on its clock.
struct StoppedFlush {
    fired: bool,
    oldest_live: i64,
    oldest_cas: u64,
}

impl StoppedFlush {
    /// Whether the flush invalidated an item (memcached's rule, as `Cache::is_flushed`).
    fn covers(&self, h: &Header) -> bool {
        self.fired
            && (i64::from(h.time) <= self.oldest_live
                || (self.oldest_cas != 0 && h.cas != 0 && h.cas < self.oldest_cas))
    }
}

fn shifted(time: RelTime, shift: i64) -> i64 {
    i64::from(time) + shift
}

#[cfg(test)]
mod tests;
