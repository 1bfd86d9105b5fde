//! The slab mover: takes a page from one slab class and gives it to another (memcached's
//! `slabs reassign` and `slabs automove`), so memory one class no longer needs serves the class
//! that does. Items in the page are rescued into free chunks of their class when there are
//! some, and evicted otherwise.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use super::slabs::ReassignError;
use super::table::{Lru, SEGMENTS};
use super::{Cache, SHARDS};

/// The mover's settings and figures.
#[derive(Debug, Default)]
pub struct MoverState {
    /// `slabs automove`: 0 off, 1 moves pages now and then, 2 on every sign of pressure.
    pub automove: AtomicU8,
    /// Pages moved (`slabs_moved`).
    pub moved: AtomicU64,
    /// Items copied out of a moving page (`slab_reassign_rescues`).
    pub rescues: AtomicU64,
    /// Items evicted because no free chunk could take them (`slab_reassign_evictions_nomem`).
    pub evictions_nomem: AtomicU64,
    /// Evictions per class at the last automove look, to see where pressure is.
    seen_evictions: std::sync::Mutex<Vec<u64>>,
}

impl MoverState {
    /// memcached's default is `slabs automove 1`.
    pub fn with_automove(level: u8) -> MoverState {
        MoverState {
            automove: AtomicU8::new(level),
            ..MoverState::default()
        }
    }
}

impl Cache {
    /// The mover's settings and figures.
    pub fn mover(&self) -> &MoverState {
        &self.mover
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
        let page = self.slabs.start_move(src, dst)?;
        // Stores that took a chunk of the page before the move began link it a moment later:
        // sweep until every chunk is back.
        for _ in 0..1000 {
            for s in 0..SHARDS {
                self.empty_page_in_shard(s, src, page);
            }
            if self.slabs.finish_move(src, dst) {
                self.mover.moved.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // Never reached while every store links or frees its chunks; the move stays open and
        // completes as they come back.
        Err(ReassignError::Busy)
    }

    fn empty_page_in_shard(&self, s: usize, class: usize, page: usize) {
        let mut shard = self.shard(s);
        let mut victims = Vec::new();
        for seg in 0..SEGMENTS as u8 {
            let mut cursor = shard.table.lru_tail(Lru {
                class: class as u8,
                seg,
            });
            while let Some(idx) = cursor {
                cursor = shard.table.lru_newer(idx);
                let in_page = shard.table.entry(idx).chunk.page() == page
                    || shard.table.chain(idx).iter().any(|c| c.page() == page);
                if in_page {
                    victims.push(idx);
                }
            }
        }
        for idx in victims {
            let single = shard.table.chain(idx).is_empty();
            // The allocator no longer hands out chunks of the moving page.
            if let Some(mut fresh) = single.then(|| self.slabs.alloc(class)).flatten() {
                let arena = self.arena();
                arena
                    .bytes_mut(&mut fresh)
                    .copy_from_slice(arena.bytes(&shard.table.entry(idx).chunk));
                let old = shard.table.swap_chunk(idx, fresh);
                self.slabs.free(class, old);
                self.mover.rescues.fetch_add(1, Ordering::Relaxed);
            } else {
                let header = self.header_of(&shard.table.entry(idx).chunk);
                self.unlink(&mut shard, idx, &header);
                self.mover.evictions_nomem.fetch_add(1, Ordering::Relaxed);
            }
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
            let mut seen = crate::stats::lock(&self.mover.seen_evictions);
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
