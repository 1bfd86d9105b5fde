//! Slab classes: an allocator that hands out chunks of each class's size (the table of sizes
//! is [`ClassTable`]) from the arena's pages. Each class cuts pages lazily and recycles freed
//! chunks through a free list kept inside the chunks themselves, and a page can move from one
//! class to another (slab rebalancing).

use std::sync::Mutex;

use super::arena::{self, AdoptedPage, Arena, Carving, Chunk, FreeList, Page};
use crate::sync::lock;

pub use super::class_table::{ClassTable, SlabClasses, COMPACT_FINE_UNTIL, COMPACT_SMALLEST};

/// memcached's `MAX_NUMBER_OF_SLAB_CLASSES`: class ids are 1..=63 (the per-class counters
/// are sized by it, so it is defined beside them).
pub use crate::stats::MAX_CLASSES;
/// A class's figures for `stats slabs`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ClassStats {
    /// Chunk size.
    pub chunk_size: usize,
    /// Chunks per page.
    pub chunks_per_page: usize,
    /// Pages assigned to the class.
    pub total_pages: usize,
    /// Chunks handed out and not freed.
    pub used_chunks: usize,
    /// Freed chunks waiting for reuse.
    pub free_chunks: usize,
    /// Chunks of the newest page not cut yet.
    pub free_chunks_end: usize,
}

#[derive(Debug)]
struct Class {
    free: FreeList,
    carving: Option<Carving>,
    pages: usize,
    used: usize,
    /// Page numbers assigned to the class, oldest first.
    page_list: Vec<usize>,
    /// Pages moved in from another class and not cut yet.
    spare: Vec<Page>,
    /// A page being moved out: chunks of it are collected here instead of being reused.
    moving: Option<(usize, Vec<Chunk>)>,
}

/// Why `slabs reassign` refused (memcached's replies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReassignError {
    /// `BUSY currently processing reassign request`
    Busy,
    /// `BADCLASS invalid src or dst class id`
    BadClass,
    /// `NOSPARE source class has no spare pages`
    NoSpare,
    /// `SAME src and dst class are identical`
    Same,
}

/// The chunk allocator.
#[derive(Debug)]
pub struct Slabs {
    arena: Arena,
    table: ClassTable,
    classes: Vec<Mutex<Class>>,
}

impl Slabs {
    /// Builds the allocator over an arena.
    pub fn new(arena: Arena, table: ClassTable) -> Slabs {
        let classes = (0..=table.largest())
            .map(|c| {
                Mutex::new(Class {
                    free: arena.free_list(table.chunk_size(c).max(8)),
                    carving: None,
                    pages: 0,
                    used: 0,
                    page_list: Vec::new(),
                    spare: Vec::new(),
                    moving: None,
                })
            })
            .collect();
        Slabs {
            arena,
            table,
            classes,
        }
    }

    /// The arena.
    pub fn arena(&self) -> &Arena {
        &self.arena
    }

    /// The class table.
    pub fn table(&self) -> &ClassTable {
        &self.table
    }

    /// A chunk of `class`: a freed one if any, else cut from the class's newest page, else from
    /// a new page. `None` when the arena has no page left (the caller evicts and retries).
    pub fn alloc(&self, class: usize) -> Option<Chunk> {
        let mut c = lock(&self.classes[class]);
        let c = &mut *c;
        while let Some(chunk) = self.arena.pop_free(&mut c.free) {
            match &mut c.moving {
                // A chunk of the page being moved out is kept for the move, not reused.
                Some((page, gathered)) if chunk.page() == *page => gathered.push(chunk),
                _ => {
                    c.used += 1;
                    return Some(chunk);
                }
            }
        }
        if let Some(chunk) = c.carving.as_mut().and_then(|k| self.arena.cut(k)) {
            c.used += 1;
            return Some(chunk);
        }
        let page = match c.spare.pop() {
            Some(page) => page,
            None => {
                let page = self.arena.alloc_page()?;
                c.pages += 1;
                c.page_list.push(page.index());
                page
            }
        };
        let mut carving = self
            .arena
            .carve(page, self.table.chunk_size(class), class as u8);
        let chunk = self.arena.cut(&mut carving);
        c.carving = Some(carving);
        c.used += 1;
        chunk
    }

    /// Returns a chunk of `class` for reuse.
    pub fn free(&self, class: usize, mut chunk: Chunk) {
        let mut c = lock(&self.classes[class]);
        c.used -= 1;
        match &mut c.moving {
            Some((page, gathered)) if chunk.page() == *page => {
                self.arena.mark_free(&mut chunk);
                gathered.push(chunk);
            }
            _ => self.arena.push_free(&mut c.free, chunk),
        }
    }

    /// The class a page belongs to.
    pub fn class_of_page(&self, page: usize) -> usize {
        usize::from(self.arena.page_owner(page))
    }

    /// Takes back a page of a reopened arena. `keep` sees each chunk with the page's class and
    /// returns the ones it does not keep: those become free chunks of the class, the others
    /// count as used. A page whose owner or chunk size does not fit this class table (a file of
    /// other settings) is taken back whole, as a spare page of the smallest class.
    pub fn adopt(&self, page: AdoptedPage, mut keep: impl FnMut(u8, Chunk) -> Option<Chunk>) {
        let class = page.owner as usize;
        let fits = (1..=self.table.largest()).contains(&class)
            && page.chunks.first().is_some_and(|c| {
                self.arena.chunk_len(c) == arena::cut_size(self.table.chunk_size(class))
            });
        if !fits {
            match self.arena.join(page.chunks) {
                Ok(mut whole) => {
                    self.arena.assign(&mut whole, self.table.chunk_size(1), 1);
                    let mut c = lock(&self.classes[1]);
                    c.pages += 1;
                    c.page_list.push(page.index);
                    c.spare.push(whole);
                }
                Err(_) => log::warn!(
                    "page {} of the memory file is damaged: left out",
                    page.index
                ),
            }
            return;
        }
        // The chunks are looked at before the class is locked: a restart scans pages of one
        // class on several threads at once.
        let mut unused = Vec::new();
        let mut used = 0;
        for chunk in page.chunks {
            match keep(class as u8, chunk) {
                Some(chunk) => unused.push(chunk),
                None => used += 1,
            }
        }
        let mut c = lock(&self.classes[class]);
        let c = &mut *c;
        c.pages += 1;
        c.page_list.push(page.index);
        c.used += used;
        // Freed back to front, so the list hands out the page's chunks front to back.
        for chunk in unused.into_iter().rev() {
            self.arena.push_free(&mut c.free, chunk);
        }
    }

    /// Starts moving the oldest page of `src` not in `avoid` to `dst` (memcached's `slabs
    /// reassign`): from now on the page's chunks are gathered as they come free instead of
    /// being reused. Returns the page number; the caller then frees (or rescues) the items
    /// still in it and calls [`Slabs::finish_move`]. Refused when `src` has fewer than two
    /// pages, as memcached refuses, and `Busy` when every page is to be avoided.
    pub fn start_move(
        &self,
        src: usize,
        dst: usize,
        avoid: &[usize],
    ) -> Result<usize, ReassignError> {
        self.check_move(src, dst)?;
        let page = {
            let c = lock(&self.classes[src]);
            if c.pages < 2 {
                return Err(ReassignError::NoSpare);
            }
            oldest_page(&c.page_list, avoid)
        };
        self.gather_page(src, dst, page.ok_or(ReassignError::Busy)?)
    }

    /// Starts moving one given page of `src` to `dst`, even its last one (a class that must
    /// store and has nothing of its own to evict takes a page from another; `NoSpare` if the
    /// page is not `src`'s).
    pub fn start_move_page(
        &self,
        src: usize,
        dst: usize,
        page: usize,
    ) -> Result<usize, ReassignError> {
        self.check_move(src, dst)?;
        self.gather_page(src, dst, page)
    }

    /// Starts a checked move: takes the page's free and uncut chunks out of circulation.
    fn gather_page(&self, src: usize, dst: usize, page: usize) -> Result<usize, ReassignError> {
        debug_assert!(src != dst);
        let mut c = lock(&self.classes[src]);
        let c = &mut *c;
        if !c.page_list.contains(&page) {
            return Err(ReassignError::NoSpare);
        }
        let mut gathered = Vec::new();
        // A page moved in and not cut yet is given whole.
        if let Some(at) = c.spare.iter().position(|p| p.index() == page) {
            let spare = c.spare.swap_remove(at);
            let mut carving = self
                .arena
                .carve(spare, self.table.chunk_size(src), src as u8);
            gathered.extend(self.arena.cut_rest(&mut carving));
        }
        // Pull the page's chunks out of the free list; keep the rest free.
        let mut keep = Vec::new();
        while let Some(chunk) = self.arena.pop_free(&mut c.free) {
            if chunk.page() == page {
                gathered.push(chunk);
            } else {
                keep.push(chunk);
            }
        }
        for chunk in keep.into_iter().rev() {
            self.arena.push_free(&mut c.free, chunk);
        }
        if c.carving.as_ref().is_some_and(|k| k.page() == page) {
            if let Some(mut carving) = c.carving.take() {
                gathered.extend(self.arena.cut_rest(&mut carving));
            }
        }
        c.moving = Some((page, gathered));
        Ok(page)
    }

    fn check_move(&self, src: usize, dst: usize) -> Result<(), ReassignError> {
        let valid = 1..=self.table.largest();
        if !valid.contains(&src) || !valid.contains(&dst) {
            return Err(ReassignError::BadClass);
        }
        if src == dst {
            return Err(ReassignError::Same);
        }
        if self.classes.iter().any(|c| lock(c).moving.is_some()) {
            return Err(ReassignError::Busy);
        }
        Ok(())
    }

    /// Gives up a move that could not finish: the chunks gathered so far are free chunks of
    /// `src` again.
    pub fn cancel_move(&self, src: usize) {
        let mut c = lock(&self.classes[src]);
        let c = &mut *c;
        if let Some((_, gathered)) = c.moving.take() {
            for chunk in gathered {
                self.arena.push_free(&mut c.free, chunk);
            }
        }
    }

    /// Completes a move once every chunk of the page is back: the page joins `dst`. Returns
    /// false (and keeps gathering) while some chunk is still in use.
    pub fn finish_move(&self, src: usize, dst: usize) -> bool {
        let page = {
            let mut c = lock(&self.classes[src]);
            let Some((page_no, gathered)) = c.moving.take() else {
                return false;
            };
            match self.arena.join(gathered) {
                Ok(page) => {
                    c.pages -= 1;
                    c.page_list.retain(|&p| p != page_no);
                    page
                }
                Err(gathered) => {
                    c.moving = Some((page_no, gathered));
                    return false;
                }
            }
        };
        // Recorded as dst's at once, so that a scan never reads it by its old carving.
        let mut page = page;
        self.arena
            .assign(&mut page, self.table.chunk_size(dst), dst as u8);
        let mut d = lock(&self.classes[dst]);
        d.pages += 1;
        d.page_list.push(page.index());
        d.spare.push(page);
        true
    }

    /// The page a move is emptying, if any (per class).
    pub fn moving_page(&self, class: usize) -> Option<usize> {
        lock(&self.classes[class]).moving.as_ref().map(|(p, _)| *p)
    }

    /// Whether `class` can hand out `n` chunks without a new page (free ones, ones still to
    /// cut, pages moved in and not cut yet), unless others take them first.
    pub fn has_free_chunks(&self, class: usize, n: usize) -> bool {
        let c = lock(&self.classes[class]);
        let to_cut = c.carving.as_ref().map_or(0, |k| k.remaining());
        let spare = c.spare.len() * self.table.per_page(class);
        c.free.len() + to_cut + spare >= n
    }

    /// The oldest page of a class not in `avoid`.
    pub fn first_page(&self, class: usize, avoid: &[usize]) -> Option<usize> {
        oldest_page(&lock(&self.classes[class]).page_list, avoid)
    }

    /// A class's figures.
    pub fn class_stats(&self, class: usize) -> ClassStats {
        let c = lock(&self.classes[class]);
        ClassStats {
            chunk_size: self.table.chunk_size(class),
            chunks_per_page: self.table.per_page(class),
            total_pages: c.pages,
            used_chunks: c.used,
            free_chunks: c.free.len(),
            free_chunks_end: c.carving.as_ref().map_or(0, Carving::remaining)
                + c.spare.len() * self.table.per_page(class),
        }
    }
}

/// The first page of `pages` (a class's, oldest first) not in `avoid`.
fn oldest_page(pages: &[usize], avoid: &[usize]) -> Option<usize> {
    pages.iter().copied().find(|p| !avoid.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::arena::PAGE_SIZE;

    /// Two pages cut into memcached's default classes.
    fn two_pages() -> Slabs {
        let arena = Arena::new(2 * PAGE_SIZE, false).expect("map");
        Slabs::new(arena, ClassTable::new(48, 1.25, 512 * 1024, 1024 * 1024))
    }

    #[test]
    fn alloc_recycles_then_cuts_then_takes_pages() {
        let slabs = two_pages();
        let big = slabs.table().largest();
        let a = slabs.alloc(big).expect("first chunk of page 1");
        let b = slabs.alloc(big).expect("second chunk of page 1");
        let c = slabs.alloc(big).expect("page 2");
        let d = slabs.alloc(big).expect("page 2");
        assert!(slabs.alloc(big).is_none(), "two pages of two chunks");
        assert!(slabs.alloc(1).is_none(), "no page left for another class");
        let s = slabs.class_stats(big);
        assert_eq!((s.total_pages, s.used_chunks, s.free_chunks), (2, 4, 0));
        let offset = b.offset();
        slabs.free(big, b);
        assert_eq!(slabs.class_stats(big).free_chunks, 1);
        let again = slabs.alloc(big).expect("recycled");
        assert_eq!(again.offset(), offset);
        assert_eq!((a.page(), c.page(), d.page()), (0, 1, 1));
    }

    #[test]
    fn a_class_last_page_can_move_and_a_cancelled_move_frees_its_chunks() {
        let slabs = two_pages();
        let big = slabs.table().largest();
        let a = slabs.alloc(big).expect("page 0");
        let a2 = slabs.alloc(big).expect("page 0, second chunk");
        let b = slabs.alloc(1).expect("page 1");
        assert!(!slabs.has_free_chunks(big, 1));
        assert_eq!(slabs.start_move(big, 1, &[]), Err(ReassignError::NoSpare));
        let page = slabs
            .start_move_page(big, 1, a.page())
            .expect("a steal may take it");
        assert_eq!(
            slabs.start_move_page(1, 2, b.page()),
            Err(ReassignError::Busy)
        );
        slabs.free(big, a2);
        assert!(!slabs.finish_move(big, 1), "a chunk is still in use");
        slabs.cancel_move(big);
        assert_eq!(slabs.moving_page(big), None);
        assert!(
            slabs.has_free_chunks(big, 1),
            "the gathered chunk is free again"
        );
        assert_eq!(slabs.start_move_page(big, 1, page), Ok(page));
        slabs.free(big, a);
        assert!(slabs.finish_move(big, 1));
        assert_eq!(slabs.class_stats(big).total_pages, 0);
        assert_eq!(slabs.class_stats(1).total_pages, 2);
        assert!(
            slabs.has_free_chunks(1, 1),
            "the moved page is a spare of class 1"
        );
        slabs.free(1, b);
    }
}
