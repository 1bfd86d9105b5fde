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
use super::table::{Entry, Lru};
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

/// A first chunk found live and worth keeping, with what the index rebuild needs of its
/// header, so that the rebuild, which visits items in LRU order rather than in memory order,
/// does not read the arena again.
struct Head {
    /// Last access, on this process's clock.
    time: RelTime,
    cas: u64,
    /// The key's hash, computed once by the scan.
    hash: u32,
    /// Header, key and value bytes (more than the chunk holds for a chained item).
    footprint: u32,
    class: u8,
    /// LRU segment.
    seg: u8,
    chunk: Chunk,
}

/// What the scan found.
struct Found {
    /// Items to keep, by the shard their key falls in.
    by_shard: Vec<Vec<Head>>,
    further: Chains,
    /// Items freed by the scan: expired, flushed or not readable.
    dropped: usize,
}

/// How the scan brings found items to this process: the shift of their times to its clock,
/// its time now, and the last run's flush.
struct Resume {
    shift: i64,
    now: RelTime,
    flush: StoppedFlush,
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
        let resume = Resume {
            shift,
            now: self.clock.now(),
            flush: self.resume_flush(word(OLDEST_LIVE_WORD), word(OLDEST_CAS_WORD), shift),
        };
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .clamp(1, MAX_RESTORE_THREADS);
        let Found {
            by_shard,
            further,
            dropped,
        } = self.scan(adoption, threads, &resume);
        // Chains are rare: each is taken by its first chunk's relink, under a lock.
        let chains = (!further.is_empty()).then(|| Mutex::new(further));
        // LRUs are per shard, so the order only matters within one: the items are sorted and
        // linked shard by shard, the shards shared among threads.
        let mut portions: Vec<Vec<(usize, Vec<Head>)>> = (0..threads).map(|_| Vec::new()).collect();
        for (i, heads) in by_shard.into_iter().enumerate() {
            portions[i % threads].push((i, heads));
        }
        let relink_portion = |portion: Vec<(usize, Vec<Head>)>| {
            let (mut restored, mut last_cas) = (Restored::default(), 0);
            for (index, mut heads) in portion {
                heads.sort_unstable_by_key(|h| (h.time, h.cas));
                // One lock for the whole shard: nothing else runs before the restore is done.
                let mut shard = self.shard(index);
                shard.table.reserve(heads.len());
                for head in heads {
                    let chain = chains.as_ref().map_or_else(Vec::new, |c| {
                        crate::sync::lock(c)
                            .remove(&head.chunk.offset())
                            .unwrap_or_default()
                    });
                    match self.relink(&mut shard, head, chain) {
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
        let mut restored = Restored { items: 0, dropped };
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
    /// chunks of live items, brought to this process's clock, by the shard their key falls in,
    /// and the further chunks of chained ones, by the offset of the first chunk they name;
    /// everything else is freed, as are items that expired or were flushed while the cache was
    /// down and first chunks that do not hold a whole header and key of their page's class.
    ///
    /// Every header is read (and rewritten) here, in memory order, which the hardware reads
    /// ahead; the rebuild after it goes in LRU order, and would wait on memory for every item.
    fn scan(&self, adoption: Adoption, threads: usize, resume: &Resume) -> Found {
        let arena = self.arena();
        let largest_header = item::header_len(item::HAS_FLAGS, self.use_cas);
        let adoption = Mutex::new(adoption);
        let scan_pages = || {
            let mut found = Found {
                by_shard: (0..SHARDS).map(|_| Vec::new()).collect(),
                further: Chains::new(),
                dropped: 0,
            };
            loop {
                let page = arena.adopt_next(&mut crate::sync::lock(&adoption));
                let Some(page) = page else { break };
                self.slabs
                    .adopt(page, |class, chunk| match arena.bytes(&chunk)[STATE_AT] {
                        item::LIVE if arena.chunk_len(&chunk) >= largest_header => {
                            match self.resume_item(chunk, class, resume) {
                                Ok((shard, head)) => {
                                    found.by_shard[shard].push(head);
                                    None
                                }
                                Err(chunk) => {
                                    found.dropped += 1;
                                    Some(chunk)
                                }
                            }
                        }
                        item::CONTINUATION => {
                            let (head, index) = item::read_continuation(arena.bytes(&chunk));
                            found.further.entry(head).or_default().push((index, chunk));
                            None
                        }
                        _ => Some(chunk),
                    });
            }
            found
        };
        std::thread::scope(|scope| {
            let others: Vec<_> = (1..threads).map(|_| scope.spawn(scan_pages)).collect();
            let mut all = scan_pages();
            // A scan that panicked leaves its chunks adopted and unused: the cache is
            // smaller, never wrong.
            for found in others.into_iter().filter_map(|h| h.join().ok()) {
                for (shard, more) in all.by_shard.iter_mut().zip(found.by_shard) {
                    shard.extend(more);
                }
                for (head, mut chain) in found.further {
                    all.further.entry(head).or_default().append(&mut chain);
                }
                all.dropped += found.dropped;
            }
            all
        })
    }

    /// A live first chunk found by the scan, brought to this process's clock: its shard and
    /// what the rebuild needs of it, or the chunk back when it expired, was flushed, or does
    /// not hold a whole header and key of `class`.
    fn resume_item(
        &self,
        mut chunk: Chunk,
        class: u8,
        resume: &Resume,
    ) -> Result<(usize, Head), Chunk> {
        let bytes = self.arena().bytes(&chunk);
        let mut header = Header::read(bytes, self.use_cas);
        let footprint = self.footprint(&header);
        let key_at = header.len(self.use_cas);
        if header.class != class || header.nkey == 0 || key_at + header.nkey as usize > bytes.len()
        {
            return Err(chunk);
        }
        let expired =
            header.exptime != 0 && shifted(header.exptime, resume.shift) <= i64::from(resume.now);
        if expired || resume.flush.covers(&header) {
            return Err(chunk);
        }
        let (shard, hash) = Self::shard_of(&bytes[key_at..key_at + header.nkey as usize]);
        if resume.shift != 0 {
            if header.exptime != 0 {
                header.exptime = shifted(header.exptime, resume.shift) as RelTime;
            }
            header.time =
                shifted(header.time, resume.shift).clamp(0, i64::from(resume.now)) as RelTime;
            header.write(self.arena().bytes_mut(&mut chunk), self.use_cas);
        }
        let lru = header.lru();
        let head = Head {
            time: header.time,
            cas: header.cas,
            hash,
            footprint: u32::try_from(footprint).unwrap_or(u32::MAX),
            class,
            seg: lru.seg,
            chunk,
        };
        Ok((shard, head))
    }

    /// Indexes one found item again; returns its CAS, or `None` (its chunks freed) when it
    /// cannot be read whole or a newer copy of its key is already indexed.
    fn relink(&self, shard: &mut Shard, head: Head, mut chain: Vec<(u32, Chunk)>) -> Option<u64> {
        let drop_item = |head: Head, chain: Vec<(u32, Chunk)>| {
            self.free_adopted(head.chunk);
            for (_, chunk) in chain {
                self.free_adopted(chunk);
            }
            None
        };
        if !self.whole(&head, &mut chain) {
            return drop_item(head, chain);
        }
        // Two live copies of a key cannot come from a clean stop; keep the newer if they do.
        // (The key is read only on a hash match: the arena stays untouched here otherwise.)
        let same_key = |e: &Entry| self.key_of(&e.chunk) == self.key_of(&head.chunk);
        if let Some(other) = shard.table.find(head.hash, same_key) {
            let old = self.header_of(&shard.table.entry(other).chunk);
            if old.cas >= head.cas {
                return drop_item(head, chain);
            }
            self.unlink(shard, other, &old);
        }
        let size = head.footprint as usize;
        shard.bytes += size as u64;
        shard.classes[head.class as usize].mem_requested += size as u64;
        self.count_size(size, true);
        let chain = (!chain.is_empty())
            .then(|| chain.into_iter().map(|(_, c)| c).collect::<Box<[Chunk]>>());
        let lru = Lru {
            class: head.class,
            seg: head.seg,
        };
        shard.table.insert(head.chunk, head.hash, lru, chain);
        Some(head.cas)
    }

    /// Whether the further chunks naming a found first chunk are all of its item, each of
    /// its page's chunk size; sorts them into order.
    fn whole(&self, head: &Head, chain: &mut [(u32, Chunk)]) -> bool {
        let size = self.arena().chunk_len(&head.chunk);
        let needed = (head.footprint as usize)
            .saturating_sub(size)
            .div_ceil(size - item::CONTINUATION_HEADER);
        chain.sort_unstable_by_key(|&(index, _)| index);
        chain.len() == needed
            && chain.iter().zip(1..).all(|(&(index, ref chunk), want)| {
                index == want && self.arena().chunk_len(chunk) == size
            })
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
