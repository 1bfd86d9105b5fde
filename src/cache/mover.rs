//! The slab mover: takes a page from one slab class and gives it to another (memcached's
//! `slabs reassign` and `slabs automove`), so memory one class no longer needs serves the class
//! that does. Items in the page are rescued into free chunks of their class when there are
//! some, and evicted otherwise.
//!
//! Beyond memcached, pages also move on demand, from the store path:
//! - a class that must store and has nothing of its own to evict takes a page at once
//!   ([`Cache::steal_page`]), so a store never fails while the cache holds anything it may
//!   evict (memcached answers `SERVER_ERROR out of memory` there once its pages are all taken
//!   by one size: "slab calcification");
//! - with `slabs automove` on, a class that keeps evicting compares the age of its oldest items
//!   with other classes' now and then, and takes a page from a class whose oldest items are
//!   much older ([`Cache::rebalance_after_eviction`]): memory follows the sizes being written
//!   within a page's worth of stores, as memcached's age-balancing automove does once a second.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::item::Header;
use super::slabs::{ReassignError, MAX_CLASSES};
use super::table::{Lru, COLD, HOT, WARM};
use super::{Cache, SHARDS};
use crate::sync::lock;

/// How long a move waits for chunks of its page that stores took just before it began (they
/// link or free them within microseconds) before it gives up and leaves the page where it is.
const MOVE_PATIENCE: Duration = Duration::from_secs(2);

/// Shards whose LRU tails are read to estimate how old a class's oldest items are.
const AGE_SAMPLES: usize = 8;

/// A class takes a page from another when that class's oldest items, without the page, would
/// still be older than its own with it, by this factor (a page move evicts a page of items:
/// only a clear imbalance, as a shift of sizes makes, is worth it; with 1.1, a steady
/// Zipf workload of 500-4000 B values moved 33 pages and lost 3% of its hits)...
const AGE_RATIO: f64 = 2.0;
/// ...and by at least this much: stores when CAS ids are kept (they number the stores),
/// seconds otherwise.
const AGE_MARGIN_STORES: u64 = 1000;
const AGE_MARGIN_SECONDS: u64 = 2;

/// The mover's settings and figures.
#[derive(Debug)]
pub struct MoverState {
    /// `slabs automove`: 0 off, 1 moves pages now and then, 2 on every sign of pressure.
    pub automove: AtomicU8,
    /// Pages moved (`slabs_moved`).
    pub moved: AtomicU64,
    /// Items copied out of a moving page (`slab_reassign_rescues`).
    pub rescues: AtomicU64,
    /// Items of a moving page evicted because no free chunk could take them
    /// (`slab_reassign_busy_nomem`, where memcached 1.6.38 counts its waits for memory).
    pub no_memory: AtomicU64,
    /// Evictions per class at the last automove look, to see where pressure is.
    seen_evictions: Mutex<Vec<u64>>,
    /// One move at a time.
    moving: Mutex<()>,
    /// Evictions per class since its ages were last compared with the other classes'.
    since_age_check: Box<[AtomicU32]>,
    /// Per class: the age of the items it evicts, averaged, and the stamp (CAS id or second)
    /// of its last eviction; 0 for a class that has not evicted.
    eviction_age: Box<[AtomicU64]>,
    last_eviction: Box<[AtomicU64]>,
    /// Where the next age sample starts, so that every shard is looked at in turn.
    sample_cursor: AtomicU32,
}

impl Default for MoverState {
    fn default() -> Self {
        MoverState::with_automove(1)
    }
}

impl MoverState {
    /// memcached's default is `slabs automove 1`.
    pub fn with_automove(level: u8) -> MoverState {
        MoverState {
            automove: AtomicU8::new(level),
            moved: AtomicU64::new(0),
            rescues: AtomicU64::new(0),
            no_memory: AtomicU64::new(0),
            seen_evictions: Mutex::new(Vec::new()),
            moving: Mutex::new(()),
            since_age_check: (0..MAX_CLASSES).map(|_| AtomicU32::new(0)).collect(),
            eviction_age: (0..MAX_CLASSES).map(|_| AtomicU64::new(0)).collect(),
            last_eviction: (0..MAX_CLASSES).map(|_| AtomicU64::new(0)).collect(),
            sample_cursor: AtomicU32::new(0),
        }
    }
}

/// How old a class's oldest items are, sampled, and a page that holds one of them.
#[derive(Debug, Clone, Copy)]
struct ClassAge {
    class: usize,
    /// In stores (CAS ids) or seconds; `u64::MAX` for a class that has pages but no items.
    age: u64,
    page: Option<usize>,
}

impl Cache {
    /// The mover's settings and figures.
    pub fn mover(&self) -> &MoverState {
        &self.mover
    }

    /// `slabs reassign <src> <dst>`, checked as memcached 1.6.38 checks it: identical ids
    /// first (`SAME`, even out-of-range ones), then `-1` picks a source (`BADCLASS` if no class
    /// has a page to spare), then ids outside 0..=64 are `BADCLASS` (memcached's bound is its
    /// `MAX_NUMBER_OF_SLAB_CLASSES`, not the classes it has), then a source without two pages
    /// is `NOSPARE`.
    pub fn reassign_command(&self, src: i32, dst: i32) -> Result<(), ReassignError> {
        if src == dst {
            return Err(ReassignError::Same);
        }
        let largest = self.slabs.table().largest();
        let pages = |c: usize| self.slabs.class_stats(c).total_pages;
        let src = if src == -1 {
            let spare = (1..=largest)
                .filter(|&c| c as i32 != dst && pages(c) >= 2)
                .max_by_key(|&c| pages(c));
            match spare {
                Some(c) => c as i32,
                None => return Err(ReassignError::BadClass),
            }
        } else {
            src
        };
        let ids = 0..=MAX_CLASSES as i32;
        if !ids.contains(&src) || !ids.contains(&dst) {
            return Err(ReassignError::BadClass);
        }
        let (src, dst) = (src as usize, dst as usize);
        // Class 0 is memcached's global page pool; pages never return to it here, so it has
        // none to give, and classes past the largest have no pages.
        if src == 0 || src > largest || pages(src) < 2 {
            return Err(ReassignError::NoSpare);
        }
        // memcached would go on to move the page into its global pool or into a class with no
        // chunk size; this server has neither.
        if dst == 0 || dst > largest {
            return Err(ReassignError::BadClass);
        }
        self.reassign(src as i32, dst)
    }

    /// Moves one page from class `src` (-1: the class with the most pages) to `dst`. Class 0
    /// is memcached's global page pool; pages never return to it here, so it has none to give.
    pub fn reassign(&self, src: i32, dst: usize) -> Result<(), ReassignError> {
        if src == 0 && (1..=self.slabs.table().largest()).contains(&dst) {
            return Err(ReassignError::NoSpare);
        }
        let src = if src == -1 {
            (1..=self.slabs.table().largest())
                .filter(|&c| c != dst)
                .max_by_key(|&c| self.slabs.class_stats(c).total_pages)
                .ok_or(ReassignError::NoSpare)?
        } else {
            usize::try_from(src).map_err(|_| ReassignError::BadClass)?
        };
        let Ok(_moving) = self.mover.moving.try_lock() else {
            return Err(ReassignError::Busy);
        };
        // A page that a stalled reader's reply pins would not empty until that client reads.
        let page = self.slabs.start_move(src, dst, &self.pinned_pages())?;
        self.complete_move(src, dst, page)
    }

    /// Empties a page whose move has begun and gives it to `dst`; called holding the mover's
    /// lock. Stores that took a chunk of the page before the move began link it a moment
    /// later: sweep until every chunk is back, or give the move up.
    pub(super) fn complete_move(
        &self,
        src: usize,
        dst: usize,
        page: usize,
    ) -> Result<(), ReassignError> {
        let deadline = Instant::now() + MOVE_PATIENCE;
        loop {
            // A store reserved a chunk of the page just before the move began: the chunk
            // comes back only once its client has sent the value. (Looked for before the
            // sweep, which would evict items of a page that then stays.)
            if (0..SHARDS).any(|s| self.shard(s).pins.is_reserved(page)) {
                self.slabs.cancel_move(src);
                return Err(ReassignError::Busy);
            }
            for s in 0..SHARDS {
                self.empty_page_in_shard(s, src, page);
            }
            if self.slabs.finish_move(src, dst) {
                self.mover.moved.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.slabs.cancel_move(src);
                log::warn!("slab mover: page {page} of class {src} did not empty; left there");
                return Err(ReassignError::Busy);
            }
            std::thread::yield_now();
        }
    }

    /// Moves or evicts the items of shard `s` in `page`.
    fn empty_page_in_shard(&self, s: usize, class: usize, page: usize) {
        let mut shard = self.shard(s);
        if shard.table.class_len(class as u8) == 0 {
            return;
        }
        for idx in shard.table.entries_in_page(page) {
            let single = shard.table.chain(idx).is_empty();
            // The allocator no longer hands out chunks of the moving page.
            if let Some(mut fresh) = single.then(|| self.slabs.alloc(class)).flatten() {
                let arena = self.arena();
                arena
                    .bytes_mut(&mut fresh)
                    .copy_from_slice(arena.bytes(&shard.table.entry(idx).chunk));
                let old = shard.table.swap_chunk(idx, fresh);
                // A reply may still be reading the old copy.
                self.release_chunks(&mut shard, class as u8, old, None);
                self.mover.rescues.fetch_add(1, Ordering::Relaxed);
            } else {
                let header = self.header_of(&shard.table.entry(idx).chunk);
                self.unlink(&mut shard, idx, &header);
                self.mover.no_memory.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Gives `class`, which must store and has nothing of its own to evict, a page of another
    /// class: the class whose oldest items are oldest, the page of one of them (a class with
    /// pages and no items gives one first). False under `-M` or when no other class has a
    /// page. `need`: the chunks the store wants at once; a class with that many free takes
    /// none. Called holding no shard lock and no chunk.
    pub(super) fn steal_page(&self, class: u8, need: usize) -> bool {
        if !self.evictions {
            return false;
        }
        let dst = class as usize;
        let _moving = lock(&self.mover.moving);
        // Another thread may have moved a page here while this one waited for the lock. (Not
        // merely a free chunk: a chained item's store that gave back the few chunks it got
        // would take them again and again, while reservations or pins hold the rest.)
        if self.slabs.has_free_chunks(dst, need) {
            return true;
        }
        let Some(victim) = self.oldest_class(dst, SHARDS) else {
            return false;
        };
        self.move_page_of(victim, dst).is_ok()
    }

    /// Counts an eviction of `class` (of an item last stored at `stamp`); every so often (an
    /// eighth of a page's chunks), with `slabs automove` on, compares the age of the items the
    /// class evicts with how old every other class's oldest items are now, and takes a page
    /// from a class whose oldest items are much older.
    ///
    /// A class's age is what its evictions measured (averaged), plus the stores since its last
    /// one: a class that stopped evicting keeps ageing. Only a class that never evicted has
    /// its LRU tails sampled. Sampled tails alone vary from shard to shard, and the oldest of
    /// many noisy samples moved pages back and forth between equally busy classes.
    pub(super) fn rebalance_after_eviction(&self, class: u8, stamp: u64) {
        // Nothing reads the averages without automove: spare every eviction the shared writes.
        if self.mover.automove.load(Ordering::Relaxed) == 0 || !self.evictions {
            return;
        }
        let dst = class as usize;
        let now = self.age_stamp_now();
        let age = now.saturating_sub(stamp);
        let average = &self.mover.eviction_age[dst];
        let before = average.load(Ordering::Relaxed);
        // An average over about the last 16 evictions; concurrent updates may lose one.
        let updated = if before == 0 {
            age.max(1)
        } else {
            (before - before / 16 + age / 16).max(1)
        };
        average.store(updated, Ordering::Relaxed);
        self.mover.last_eviction[dst].store(now, Ordering::Relaxed);
        let every = (self.slabs.table().per_page(dst) / 8).max(1) as u32;
        let counter = &self.mover.since_age_check[dst];
        if counter.fetch_add(1, Ordering::Relaxed) + 1 < every {
            return;
        }
        counter.store(0, Ordering::Relaxed);
        let pages = |c: usize| self.slabs.class_stats(c).total_pages as f64;
        // Whether a page from `v` leaves `v` still older than this class with the page: a
        // class's age is about proportional to its pages, so one page less makes `v` younger
        // by its share, and one more makes this class older by its own. Without that margin a
        // page moved to an equally busy class is soon moved back.
        let own_after = updated as f64 * (1.0 + 1.0 / pages(dst).max(1.0));
        let margin = if self.use_cas {
            AGE_MARGIN_STORES
        } else {
            AGE_MARGIN_SECONDS
        };
        // A class's last page stays: a class that stores now and then would take a page
        // straight back (each move evicts a page of items), and an idle one keeps 1 MB.
        let Some(victim) = (1..=self.slabs.table().largest())
            .filter(|&c| c != dst)
            .map(|c| (c, pages(c)))
            .filter(|&(_, pages_v)| pages_v >= 2.0)
            .filter_map(|(c, pages_v)| Some((self.evicting_class_age(c, now)?, pages_v)))
            .filter(|(v, pages_v)| {
                v.age >= updated.saturating_add(margin)
                    && v.age as f64 * (1.0 - 1.0 / pages_v) >= own_after * AGE_RATIO
            })
            .map(|(v, _)| v)
            .max_by_key(|a| a.age)
        else {
            return;
        };
        // A move already under way (another class's, or `slabs reassign`) wins; this class
        // looks again after its next eighth of a page.
        let Ok(_moving) = self.mover.moving.try_lock() else {
            return;
        };
        // The page of one of its oldest items.
        let victim = self.class_age(victim.class, 1).unwrap_or(victim);
        if let Err(e) = self.move_page_of(victim, dst) {
            log::debug!("rebalance {} -> {dst}: {e:?}", victim.class);
        }
    }

    /// How old a class's oldest items are now: the age its evictions measured plus the time
    /// since its last one, or its LRU tails sampled if it never evicted.
    fn evicting_class_age(&self, class: usize, now: u64) -> Option<ClassAge> {
        let average = self.mover.eviction_age[class].load(Ordering::Relaxed);
        if average == 0 {
            return self.class_age(class, AGE_SAMPLES);
        }
        let since = now.saturating_sub(self.mover.last_eviction[class].load(Ordering::Relaxed));
        Some(ClassAge {
            class,
            age: average.saturating_add(since),
            page: None,
        })
    }

    /// Now, in the units items are stamped in for ageing: the last CAS id handed out when CAS
    /// ids number the stores, else the clock's second.
    fn age_stamp_now(&self) -> u64 {
        if self.use_cas {
            self.last_cas.load(Ordering::Relaxed)
        } else {
            u64::from(self.clock.now())
        }
    }

    /// An item's stamp in those units.
    pub(super) fn age_stamp(&self, header: &Header) -> u64 {
        if self.use_cas {
            header.cas
        } else {
            u64::from(header.time)
        }
    }

    /// Moves the page `victim` names (or the class's oldest page no reply pins) to `dst`;
    /// called holding the mover's lock.
    fn move_page_of(&self, victim: ClassAge, dst: usize) -> Result<(), ReassignError> {
        let mut avoid = Vec::new();
        loop {
            let (page, moved) = self.try_move_page_of(victim, dst, &avoid);
            match (moved, page) {
                // A store reserved a chunk of the page just before the move began, and listed
                // it just after: another page may move instead (once).
                (Err(ReassignError::Busy), Some(page))
                    if avoid.is_empty() && self.pinned_pages().contains(&page) =>
                {
                    avoid.push(page);
                }
                (moved, _) => return moved,
            }
        }
    }

    /// One try of [`Cache::move_page_of`], not moving the pages in `avoid`; returns the page
    /// it chose, if any.
    fn try_move_page_of(
        &self,
        victim: ClassAge,
        dst: usize,
        avoid: &[usize],
    ) -> (Option<usize>, Result<(), ReassignError>) {
        // Not a page a reply pins: it would not empty until that reply is written, which, on
        // the store path, may be this worker's own connection's.
        let mut pinned = self.pinned_pages();
        pinned.extend_from_slice(avoid);
        let page = match victim.page.filter(|p| !pinned.contains(p)) {
            Some(page) => page,
            None => match self.slabs.first_page(victim.class, &pinned) {
                Some(page) => page,
                None => return (None, Err(ReassignError::NoSpare)),
            },
        };
        let moved = self
            .slabs
            .start_move_page(victim.class, dst, page)
            .and_then(|page| self.complete_move(victim.class, dst, page));
        (Some(page), moved)
    }

    /// The class other than `dst` with pages whose oldest items are oldest, judged by the
    /// tails of `samples` shards.
    fn oldest_class(&self, dst: usize, samples: usize) -> Option<ClassAge> {
        (1..=self.slabs.table().largest())
            .filter(|&c| c != dst && self.slabs.class_stats(c).total_pages > 0)
            .filter_map(|c| self.class_age(c, samples))
            .max_by_key(|a| a.age)
    }

    /// How old a class's oldest items are: its LRU tails (cold first, as eviction takes them)
    /// in `samples` shards, aged in stores when CAS ids number them, else in seconds.
    fn class_age(&self, class: usize, samples: usize) -> Option<ClassAge> {
        let samples = samples.min(SHARDS);
        let start = self.mover.sample_cursor.fetch_add(1, Ordering::Relaxed) as usize;
        let now = self.age_stamp_now();
        let mut oldest: Option<(u64, usize)> = None;
        let mut any_items = false;
        for i in 0..samples {
            let shard = self.shard((start * samples + i) % SHARDS);
            if shard.table.class_len(class as u8) > 0 {
                any_items = true;
            }
            let tail = [COLD, WARM, HOT].into_iter().find_map(|seg| {
                shard.table.lru_tail(Lru {
                    class: class as u8,
                    seg,
                })
            });
            if let Some(idx) = tail {
                let chunk = &shard.table.entry(idx).chunk;
                let at = self.age_stamp(&self.header_of(chunk));
                if oldest.is_none_or(|(s, _)| at < s) {
                    oldest = Some((at, chunk.page()));
                }
            }
        }
        match oldest {
            Some((at, page)) => Some(ClassAge {
                class,
                age: now.saturating_sub(at),
                page: Some(page),
            }),
            // No items in the shards sampled: a class without any gives a page first.
            None if !any_items && self.slabs.class_stats(class).used_chunks == 0 => {
                Some(ClassAge {
                    class,
                    age: u64::MAX,
                    page: None,
                })
            }
            None => None,
        }
    }

    /// One automove decision (called periodically by the daemon): when a class has evicted
    /// since the last look, give it a page from the class with the most free chunks (level 1:
    /// only if that class has at least a page's worth free; level 2: from the class with the
    /// most pages, whatever it holds).
    pub fn automove(&self) {
        let level = self.mover.automove.load(Ordering::Relaxed);
        if level == 0 {
            return;
        }
        let largest = self.slabs.table().largest();
        let evictions: Vec<u64> = (0..=largest)
            .map(|c| self.class_counters(c).0.evicted)
            .collect();
        let pressed = {
            let mut seen = crate::sync::lock(&self.mover.seen_evictions);
            seen.resize(evictions.len(), 0);
            let pressed = (1..=largest)
                .filter(|&c| evictions[c] > seen[c])
                .max_by_key(|&c| evictions[c] - seen[c]);
            *seen = evictions;
            pressed
        };
        let Some(dst) = pressed else {
            return;
        };
        let source = (1..=largest)
            .filter(|&c| c != dst)
            .map(|c| (c, self.slabs.class_stats(c)))
            .filter(|(_, s)| s.total_pages >= 2)
            .filter(|(_, s)| level >= 2 || s.free_chunks + s.free_chunks_end >= s.chunks_per_page)
            .max_by_key(|(_, s)| {
                if level >= 2 {
                    s.total_pages
                } else {
                    s.free_chunks + s.free_chunks_end
                }
            });
        if let Some((src, _)) = source {
            if let Err(e) = self.reassign(src as i32, dst) {
                log::debug!("automove {src} -> {dst}: {e:?}");
            }
        }
    }
}
