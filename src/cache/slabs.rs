//! Slab classes: chunk sizes, and an allocator that hands out chunks of each size from the
//! arena's pages.
//!
//! The class table is memcached's, computed the same way from `-n`, `-f` and `slab_chunk_max`,
//! so `stats slabs` lines up with memcached's for the same flags (our smaller item header then
//! lets the same item fit a smaller class). Each class cuts pages lazily and recycles freed
//! chunks through a free list kept inside the chunks themselves.

use std::sync::Mutex;

use super::arena::{Arena, Carving, Chunk, FreeList, Page, PAGE_SIZE};
use crate::stats::lock;

/// memcached's `MAX_NUMBER_OF_SLAB_CLASSES`: class ids are 1..=63.
pub const MAX_CLASSES: usize = 64;
/// memcached's `sizeof(item)` on 64-bit, the base of its smallest class (`48 + -n`).
const MEMCACHED_ITEM_HEADER: usize = 48;
/// memcached's `CHUNK_ALIGN_BYTES`.
const CHUNK_ALIGN: usize = 8;

/// The chunk size of every slab class (index = class id; id 0 is unused).
#[derive(Debug, Clone, PartialEq)]
pub struct ClassTable {
    sizes: Vec<usize>,
    item_size_max: usize,
}

impl ClassTable {
    /// memcached's `slabs_init`: sizes start at `48 + min_size`, grow by `factor` (truncated to
    /// an integer, rounded up to 8 bytes) while below `chunk_max / factor`, and a last class of
    /// exactly `chunk_max` takes the rest (items larger than it are chained across chunks).
    pub fn new(min_size: usize, factor: f64, chunk_max: usize, item_size_max: usize) -> ClassTable {
        let mut sizes = vec![0];
        let mut size = MEMCACHED_ITEM_HEADER + min_size;
        while sizes.len() < MAX_CLASSES - 1 {
            if size as f64 >= chunk_max as f64 / factor {
                break;
            }
            if size % CHUNK_ALIGN != 0 {
                size += CHUNK_ALIGN - size % CHUNK_ALIGN;
            }
            sizes.push(size);
            // C: `unsigned int size; size *= factor;` — a double product, truncated.
            size = (size as f64 * factor) as usize;
        }
        sizes.push(chunk_max);
        ClassTable {
            sizes,
            item_size_max,
        }
    }

    /// The largest class id.
    pub fn largest(&self) -> usize {
        self.sizes.len() - 1
    }

    /// A class's chunk size.
    pub fn chunk_size(&self, class: usize) -> usize {
        self.sizes[class]
    }

    /// Chunks a page holds in a class.
    pub fn per_page(&self, class: usize) -> usize {
        PAGE_SIZE / self.sizes[class]
    }

    /// memcached's `slabs_clsid`: the smallest class whose chunks hold `bytes`, the largest
    /// class for items that must be chained, `None` for nothing or more than `-I`.
    pub fn class_for(&self, bytes: usize) -> Option<usize> {
        if bytes == 0 || bytes > self.item_size_max {
            return None;
        }
        let class = self.sizes[1..].partition_point(|&s| s < bytes) + 1;
        Some(class.min(self.largest()))
    }
}

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
        let mut carving = self.arena.carve(page, self.table.chunk_size(class));
        let chunk = self.arena.cut(&mut carving);
        c.carving = Some(carving);
        c.used += 1;
        chunk
    }

    /// Returns a chunk of `class` for reuse.
    pub fn free(&self, class: usize, chunk: Chunk) {
        let mut c = lock(&self.classes[class]);
        c.used -= 1;
        match &mut c.moving {
            Some((page, gathered)) if chunk.page() == *page => gathered.push(chunk),
            _ => self.arena.push_free(&mut c.free, chunk),
        }
    }

    /// Starts moving a page of `src` to `dst` (memcached's `slabs reassign`): from now on the
    /// page's chunks are gathered as they come free instead of being reused. Returns the page
    /// number; the caller then frees (or rescues) the items still in it and calls
    /// [`Slabs::finish_move`]. Refused when `src` has fewer than two pages, as memcached refuses.
    pub fn start_move(&self, src: usize, dst: usize) -> Result<usize, ReassignError> {
        self.check_move(src, dst)?;
        let first = {
            let c = lock(&self.classes[src]);
            if c.pages < 2 {
                return Err(ReassignError::NoSpare);
            }
            c.page_list[0]
        };
        self.start_move_page(src, dst, first)
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
        let mut c = lock(&self.classes[src]);
        let c = &mut *c;
        if !c.page_list.contains(&page) {
            return Err(ReassignError::NoSpare);
        }
        let mut gathered = Vec::new();
        // A page moved in and not cut yet is given whole.
        if let Some(at) = c.spare.iter().position(|p| p.index() == page) {
            let spare = c.spare.swap_remove(at);
            let mut carving = self.arena.carve(spare, self.table.chunk_size(src));
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

    /// Whether `class` can hand out a chunk without a new page: a free one, one still to cut,
    /// or a page moved in and not cut yet.
    pub fn has_free_chunk(&self, class: usize) -> bool {
        let c = lock(&self.classes[class]);
        !c.free.is_empty()
            || c.carving.as_ref().is_some_and(|k| k.remaining() > 0)
            || !c.spare.is_empty()
    }

    /// The oldest page of a class.
    pub fn first_page(&self, class: usize) -> Option<usize> {
        lock(&self.classes[class]).page_list.first().copied()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_table_is_memcacheds() {
        let t = ClassTable::new(48, 1.25, 512 * 1024, 1024 * 1024);
        assert_eq!(t.largest(), 39);
        let first: Vec<usize> = (1..=6).map(|c| t.chunk_size(c)).collect();
        assert_eq!(first, [96, 120, 152, 192, 240, 304]);
        assert_eq!(t.chunk_size(38), 394_840);
        assert_eq!(t.chunk_size(39), 524_288);
        assert_eq!(t.per_page(1), 10922);
    }

    #[test]
    fn class_for_picks_the_smallest_fit() {
        let t = ClassTable::new(48, 1.25, 512 * 1024, 1024 * 1024);
        assert_eq!(t.class_for(0), None);
        assert_eq!(t.class_for(1), Some(1));
        assert_eq!(t.class_for(96), Some(1));
        assert_eq!(t.class_for(97), Some(2));
        assert_eq!(
            t.class_for(600_000),
            Some(39),
            "chained items use the largest class"
        );
        assert_eq!(t.class_for(1024 * 1024), Some(39));
        assert_eq!(t.class_for(1024 * 1024 + 1), None);
    }

    #[test]
    fn alloc_recycles_then_cuts_then_takes_pages() {
        let arena = Arena::new(2 * PAGE_SIZE, false).expect("map");
        let slabs = Slabs::new(arena, ClassTable::new(48, 1.25, 512 * 1024, 1024 * 1024));
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
        let arena = Arena::new(2 * PAGE_SIZE, false).expect("map");
        let slabs = Slabs::new(arena, ClassTable::new(48, 1.25, 512 * 1024, 1024 * 1024));
        let big = slabs.table().largest();
        let a = slabs.alloc(big).expect("page 0");
        let a2 = slabs.alloc(big).expect("page 0, second chunk");
        let b = slabs.alloc(1).expect("page 1");
        assert!(!slabs.has_free_chunk(big));
        assert_eq!(slabs.start_move(big, 1), Err(ReassignError::NoSpare));
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
            slabs.has_free_chunk(big),
            "the gathered chunk is free again"
        );
        assert_eq!(slabs.start_move_page(big, 1, page), Ok(page));
        slabs.free(big, a);
        assert!(slabs.finish_move(big, 1));
        assert_eq!(slabs.class_stats(big).total_pages, 0);
        assert_eq!(slabs.class_stats(1).total_pages, 2);
        assert!(
            slabs.has_free_chunk(1),
            "the moved page is a spare of class 1"
        );
        slabs.free(1, b);
    }
}
