//! Slab classes: chunk sizes, and an allocator that hands out chunks of each size from the
//! arena's pages.
//!
//! The class table is memcached's, computed the same way, whenever a flag that shapes it is
//! given (`-n`, `-f`, `-o slab_chunk_max`, `slab_sizes`, `no_modern`), so `stats slabs` lines
//! up with memcached's for the same flags. Without them the table is finer where items are
//! small ([`SlabClasses::Compact`]): memcached's ×1.25 steps lose about a tenth of the memory
//! of small items to rounding, and small items are most of what caches hold. Each class cuts
//! pages lazily and recycles freed chunks through a free list kept inside the chunks themselves.

use std::sync::Mutex;

use super::arena::{self, AdoptedPage, Arena, Carving, Chunk, FreeList, Page, PAGE_SIZE};
use crate::sync::lock;

/// memcached's `MAX_NUMBER_OF_SLAB_CLASSES`: class ids are 1..=63 (the per-class counters
/// are sized by it, so it is defined beside them).
pub use crate::stats::MAX_CLASSES;
/// memcached's `sizeof(item)` on 64-bit, the base of its smallest class (`48 + -n`).
const MEMCACHED_ITEM_HEADER: usize = 48;
/// memcached's `CHUNK_ALIGN_BYTES`.
const CHUNK_ALIGN: usize = 8;

/// How the chunk sizes of the slab classes are chosen.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum SlabClasses {
    /// The default: 8-byte steps from [`COMPACT_SMALLEST`] up to [`COMPACT_FINE_UNTIL`] bytes,
    /// then memcached's classes less the bytes an item saves here ([`ClassTable::compact`]).
    #[default]
    Compact,
    /// memcached's: from `48 + min_size`, growing by `factor` (`-n`, `-f`).
    Memcached {
        /// `-n`.
        min_size: usize,
        /// `-f`.
        factor: f64,
    },
    /// `-o slab_sizes`: the sizes given (rounded up to 8 bytes), then `slab_chunk_max`.
    Sizes(Vec<usize>),
}

/// The smallest chunk of the compact table: an item with a one-byte key, a short value and CAS.
pub const COMPACT_SMALLEST: usize = 32;
/// The compact table steps by 8 bytes below this size.
pub const COMPACT_FINE_UNTIL: usize = 256;
/// How much smaller an item is here than in memcached, rounded down to whole 8-byte steps:
/// memcached spends 48 bytes of header, 8 of CAS, a NUL after the key and `\r\n` after the
/// value (59), this engine 16 and 8 of CAS (24).
const HEADER_SAVING: usize = 32;

/// The chunk size of every slab class (index = class id; id 0 is unused).
#[derive(Debug, Clone, PartialEq)]
pub struct ClassTable {
    sizes: Vec<usize>,
    item_size_max: usize,
}

impl ClassTable {
    /// The table `classes` describes, with `chunk_max` as its largest class.
    pub fn build(classes: &SlabClasses, chunk_max: usize, item_size_max: usize) -> ClassTable {
        match classes {
            SlabClasses::Compact => Self::compact(chunk_max, item_size_max),
            SlabClasses::Memcached { min_size, factor } => {
                Self::new(*min_size, *factor, chunk_max, item_size_max)
            }
            SlabClasses::Sizes(sizes) => Self::given(sizes, chunk_max, item_size_max),
        }
    }

    /// memcached's `slabs_init` with `slab_sizes`: each size rounded up to 8 bytes, then a
    /// last class of `chunk_max`.
    pub fn given(sizes: &[usize], chunk_max: usize, item_size_max: usize) -> ClassTable {
        let mut table = vec![0];
        table.extend(
            sizes
                .iter()
                .take(MAX_CLASSES - 2)
                .map(|&s| s.next_multiple_of(CHUNK_ALIGN)),
        );
        table.push(chunk_max);
        ClassTable {
            sizes: table,
            item_size_max,
        }
    }

    /// The compact table: 8-byte steps while small, then memcached's own classes less
    /// [`HEADER_SAVING`] bytes. An item here is that much smaller than in memcached (its
    /// header, the key's NUL and the value's `\r\n`), so at every size it takes a chunk no
    /// larger than memcached's: never fewer items for any one size, and far fewer bytes lost
    /// to rounding where items are small.
    pub fn compact(chunk_max: usize, item_size_max: usize) -> ClassTable {
        let mut sizes = vec![0];
        let mut size = COMPACT_SMALLEST;
        while size < COMPACT_FINE_UNTIL.min(chunk_max) {
            sizes.push(size);
            size += CHUNK_ALIGN;
        }
        let memcacheds = Self::new(48, 1.25, chunk_max, item_size_max);
        for class in 1..memcacheds.largest() {
            let shifted = memcacheds.chunk_size(class).saturating_sub(HEADER_SAVING);
            if sizes.len() < MAX_CLASSES - 1 && shifted > sizes.last().copied().unwrap_or(0) {
                sizes.push(shifted);
            }
        }
        if sizes.last().is_some_and(|&last| last >= chunk_max) {
            sizes.pop();
        }
        sizes.push(chunk_max);
        ClassTable {
            sizes,
            item_size_max,
        }
    }

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
        let mut c = lock(&self.classes[class]);
        let c = &mut *c;
        c.pages += 1;
        c.page_list.push(page.index);
        // Freed back to front, so the list hands out the page's chunks front to back.
        let mut unused = Vec::new();
        for chunk in page.chunks {
            match keep(class as u8, chunk) {
                Some(chunk) => unused.push(chunk),
                None => c.used += 1,
            }
        }
        for chunk in unused.into_iter().rev() {
            self.arena.push_free(&mut c.free, chunk);
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
        self.gather_page(src, dst, first)
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

    #[test]
    fn compact_table_is_fine_for_small_items_and_fits_memcacheds_class_count() {
        let t = ClassTable::compact(512 * 1024, 1024 * 1024);
        assert!(t.largest() < MAX_CLASSES);
        assert_eq!((t.chunk_size(1), t.chunk_size(2)), (32, 40));
        let sizes: Vec<usize> = (1..=t.largest()).map(|c| t.chunk_size(c)).collect();
        assert!(sizes.windows(2).all(|w| w[0] < w[1] && w[1] % 8 == 0));
        assert_eq!(t.chunk_size(t.largest()), 512 * 1024);
        // An item 35 bytes smaller than memcached's never needs a larger chunk.
        let mc = ClassTable::new(48, 1.25, 512 * 1024, 1024 * 1024);
        for theirs in (100..600_000).step_by(7) {
            let ours = theirs - 35;
            let (a, b) = (t.class_for(ours), mc.class_for(theirs));
            if let (Some(a), Some(b)) = (a, b) {
                assert!(
                    t.chunk_size(a) <= mc.chunk_size(b),
                    "{theirs} B in memcached"
                );
            }
        }
        // A small slab_chunk_max ends the table early.
        let small = ClassTable::compact(16 * 1024, 1024 * 1024);
        assert_eq!(small.chunk_size(small.largest()), 16 * 1024);
        let tiny = ClassTable::compact(128, 1024);
        assert_eq!(tiny.chunk_size(tiny.largest()), 128);
        let sizes: Vec<usize> = (1..=tiny.largest()).map(|c| tiny.chunk_size(c)).collect();
        assert!(sizes.windows(2).all(|w| w[0] < w[1]), "{sizes:?}");
    }

    #[test]
    fn given_sizes_are_aligned_and_end_at_chunk_max() {
        let t = ClassTable::given(&[100, 200, 1001], 512 * 1024, 1024 * 1024);
        let sizes: Vec<usize> = (1..=t.largest()).map(|c| t.chunk_size(c)).collect();
        assert_eq!(sizes, [104, 200, 1008, 512 * 1024]);
    }
}
