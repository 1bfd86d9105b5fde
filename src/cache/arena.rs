//! The slab arena: one anonymous mapping of `-m` bytes, handed out in 1 MB pages, and the only
//! code in the cache that touches raw memory.
//!
//! Safety rests on ownership, expressed in types:
//! - a [`Page`] is an unused page, a [`Carving`] a page being cut into chunks of one size, a
//!   [`Chunk`] one chunk. None of them is `Clone`; each is created only here, once per piece of
//!   memory, and consumed when the memory changes hands (a chunk freed into a [`FreeList`], a
//!   page carved). So at any time each byte of the arena is owned by at most one value.
//! - reading a chunk needs `&Chunk` and writing it `&mut Chunk`, so Rust's borrow rules on the
//!   handle are exactly the aliasing rules the memory needs: code above this module stays safe
//!   Rust, however it shares handles between threads (behind locks).
//! - handles carry the id of the arena that made them and are checked against it, so a handle
//!   cannot reach into another arena's memory.
//!
//! The mapping is reserved up front but pages are touched only as they are carved, so resident
//! memory follows use and never exceeds the mapping: `-m` is a hard bound. Chunks are named by
//! 48-bit offsets, so any `-m` the address space allows works, as in memcached; the table of
//! each page's chunk size and owner lives in a mapping of its own, also touched only as pages
//! are used.
//!
//! The arena can outlive the process. Its memory may live in a file (a memfd kept by systemd, or
//! memcached's `-e` path) laid out by [`file`], and everything needed to find the live chunks
//! again is in that memory: the page table says how each page is cut and which class owns it, and
//! every chunk's [`STATE_AT`] byte says what it holds — [`FREE`] for free and never-used chunks
//! (the arena keeps that true), a marker of the layer above for a live one. A new process maps
//! the file and adopts every chunk of every carved page once ([`Adoption`]), so handles stay
//! unique.

use std::io;
use std::num::NonZeroU16;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use memmap2::{Advice, MmapOptions, MmapRaw};

/// Size of a slab page (memcached's `slab_page_size`).
pub const PAGE_SIZE: usize = 1024 * 1024;

static NEXT_ARENA_ID: AtomicU32 = AtomicU32::new(0);

/// Address space reserved beyond `-m` for `cache_memlimit` to grow into: 1 TB costs nothing
/// until written (and 4 MB of page table address space, likewise).
pub const DEFAULT_RESERVE: usize = 1 << 40;

/// How the arena's memory is backed (`-L` asks for large pages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backing {
    /// Ordinary 4 KB pages.
    Regular,
    /// Explicit 2 MB huge pages (`MAP_HUGETLB`).
    HugeTlb,
    /// Transparent huge pages requested with `madvise(MADV_HUGEPAGE)`.
    TransparentHuge,
}

impl Backing {
    /// The name `stats settings` and the start-up log use.
    pub fn name(&self) -> &'static str {
        match self {
            Backing::Regular => "regular",
            Backing::HugeTlb => "hugetlb",
            Backing::TransparentHuge => "transparent_hugepage",
        }
    }
}

/// The byte of every chunk that tells a scan what the chunk holds.
pub const STATE_AT: usize = 3;

/// The state of a free or never-used chunk. Anything else there is the mark of a layer above.
pub const FREE: u8 = 0;

/// The mapping and its page counter.
#[derive(Debug)]
pub struct Arena {
    map: MmapRaw,
    id: NonZeroU16,
    /// Per reserved page, in a mapping of its own (zero until carved): the chunk size it was
    /// last carved into, and the owner tag the slab layer gave it (its class) in the top byte.
    /// A page is re-carved only after every chunk of its previous carving was given back
    /// (joined), so the size a live chunk reads here is always its own.
    chunk_sizes: MmapRaw,
    /// The file layout's header words, when the arena lives in a file.
    meta: Option<MmapRaw>,
    pages: usize,
    next_page: AtomicUsize,
    /// Pages that may be handed out (`cache_memlimit` lowers it).
    limit: AtomicUsize,
    backing: Backing,
}

/// An unused page, owned.
#[derive(Debug)]
pub struct Page {
    arena: NonZeroU16,
    index: usize,
}

/// A page being cut into equal chunks, front to back, as they are needed (so that only the
/// chunks handed out are ever touched).
#[derive(Debug)]
pub struct Carving {
    arena: NonZeroU16,
    index: usize,
    chunk_size: usize,
    next: usize,
}

/// One chunk of arena memory, owned. Eight bytes, aligned to four: its length is its page's
/// chunk size, kept by the arena, so tables that hold millions of chunks stay small.
#[derive(Debug, PartialEq, Eq)]
pub struct Chunk {
    arena: NonZeroU16,
    /// The offset in units of [`UNIT`] bytes, 48 bits in two parts (so the handle keeps a
    /// four-byte alignment): 2 PB of arena.
    unit_high: u16,
    unit_low: u32,
}

impl Chunk {
    fn new(arena: NonZeroU16, unit: u64) -> Chunk {
        Chunk {
            arena,
            unit_high: (unit >> 32) as u16,
            unit_low: unit as u32,
        }
    }

    fn unit(&self) -> u64 {
        u64::from(self.unit_high) << 32 | u64::from(self.unit_low)
    }

    /// Where the chunk starts in the arena (its name, for tables that refer to it).
    pub fn offset(&self) -> usize {
        self.unit() as usize * UNIT
    }

    /// The page the chunk lies in.
    pub fn page(&self) -> usize {
        self.offset() / PAGE_SIZE
    }
}

impl Page {
    /// The page's number in the arena.
    pub fn index(&self) -> usize {
        self.index
    }
}

impl Carving {
    /// The page being cut.
    pub fn page(&self) -> usize {
        self.index
    }

    /// The size of the chunks this page is cut into.
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// How many chunks are still to be cut.
    pub fn remaining(&self) -> usize {
        (PAGE_SIZE - self.next) / self.chunk_size
    }
}

/// A stack of free chunks of one size, linked through the chunks' own bytes 8..16 (as
/// memcached's slab free lists are), so that keeping free memory costs no memory; their
/// [`STATE_AT`] byte reads [`FREE`].
#[derive(Debug)]
pub struct FreeList {
    arena: NonZeroU16,
    chunk_size: u32,
    head: Option<u64>,
    len: usize,
}

/// The link stored in a free chunk when it is the last one.
const END_OF_LIST: u64 = u64::MAX;

/// Chunks start on multiples of this many bytes (slab chunk sizes are multiples of 8).
const UNIT: usize = 8;

/// The smallest chunk: a free one holds its state byte and, at bytes 8..16, its link.
const MIN_CHUNK: usize = 16;

/// Where a free chunk keeps the link to the next one.
const LINK: std::ops::Range<usize> = 8..16;

/// The chunk size bits of a page-table slot; the top byte is the owner tag.
const SIZE_MASK: u32 = 0x00FF_FFFF;

/// The size chunks asked for as `chunk_size` are cut to: whole units (so every chunk starts on
/// a unit boundary), at least `MIN_CHUNK`, at most a page.
pub fn cut_size(chunk_size: usize) -> usize {
    chunk_size
        .clamp(MIN_CHUNK, PAGE_SIZE)
        .next_multiple_of(UNIT)
}

/// A page's chunk size and owner, as its page-table slot holds them.
fn slot_value(chunk_size: usize, owner: u8) -> u32 {
    chunk_size as u32 | u32::from(owner) << 24
}

/// The most an arena can span: chunk names are 48-bit counts of [`UNIT`]s.
const MAX_ARENA_BYTES: usize = (1 << 48) * UNIT;

impl Arena {
    /// An arena of `bytes` (rounded down to whole pages, at least one page). With
    /// `large_pages`, tries explicit huge pages first, then transparent huge pages.
    pub fn new(bytes: usize, large_pages: bool) -> io::Result<Arena> {
        Self::with_headroom(bytes, bytes, large_pages)
    }

    /// An arena of `bytes` whose address space reaches `reserve` bytes, so that the limit can
    /// be raised later (`cache_memlimit`) without moving anything. Address space costs no
    /// memory: pages become resident only when written. Reserves less when the larger
    /// reservation is refused, down to `bytes`; and where even `bytes` is more than the address
    /// space allows (memcached takes `-m` of any size, a negative one wrapping to 16 EB), as
    /// much as it allows, with a warning.
    pub fn with_headroom(bytes: usize, reserve: usize, large_pages: bool) -> io::Result<Arena> {
        let bytes = bytes.min(MAX_ARENA_BYTES);
        let mut limit = (bytes / PAGE_SIZE).max(1);
        let mut pages = (reserve.min(MAX_ARENA_BYTES) / PAGE_SIZE).max(limit);
        let (map, backing) = loop {
            match Self::map(pages * PAGE_SIZE, large_pages) {
                Ok(mapped) => break mapped,
                Err(e) if pages > limit => {
                    log::debug!("reserving {} MB of address space: {e}", pages);
                    pages = (pages / 2).max(limit);
                }
                Err(e) if pages > 1 => {
                    pages /= 2;
                    limit = pages;
                    log::debug!("mapping the item memory: {e}");
                }
                Err(e) => return Err(e),
            }
        };
        if limit < bytes / PAGE_SIZE {
            log::warn!("item memory is limited to {limit} MB: the address space holds no more");
        }
        // The page table: one u32 per reserved page, in whole OS pages.
        let table = MmapOptions::new()
            .len(file::table_len(pages))
            .no_reserve_swap()
            .map_anon()?;
        Self::assemble(file::Maps {
            pages: MmapRaw::from(map),
            table: MmapRaw::from(table),
            meta: None,
            reserved: pages,
            limit,
            backing,
        })
    }

    fn assemble(maps: file::Maps) -> io::Result<Arena> {
        let id = (NEXT_ARENA_ID.fetch_add(1, Ordering::Relaxed) % u32::from(u16::MAX)) + 1;
        let id = NonZeroU16::new(id as u16).ok_or_else(|| io::Error::other("arena id"))?;
        Ok(Arena {
            map: maps.pages,
            id,
            chunk_sizes: maps.table,
            meta: maps.meta,
            pages: maps.reserved,
            next_page: AtomicUsize::new(0),
            limit: AtomicUsize::new(maps.limit),
            backing: maps.backing,
        })
    }

    /// The slot holding a page's chunk size.
    fn chunk_size_slot(&self, page: usize) -> &AtomicU32 {
        assert!(page < self.pages, "page outside the arena");
        // The table mapping is page-aligned, at least `pages * 4` bytes long and lives as long
        // as `self`; zeroed memory is a valid AtomicU32.
        let slots = self.chunk_sizes.as_ptr().cast::<AtomicU32>();
        // SAFETY: `page < pages` keeps the slot inside the mapping and 4-aligned, and the
        // table is only ever accessed through these atomics, so a shared reference is sound.
        unsafe { &*slots.add(page) }
    }

    fn map(len: usize, large_pages: bool) -> io::Result<(memmap2::MmapMut, Backing)> {
        let (map, backing) = if large_pages {
            match MmapOptions::new().len(len).huge(Some(21)).map_anon() {
                Ok(m) => (m, Backing::HugeTlb),
                Err(_) => {
                    let m = MmapOptions::new().len(len).no_reserve_swap().map_anon()?;
                    let backing = match m.advise(Advice::HugePage) {
                        Ok(()) => Backing::TransparentHuge,
                        Err(_) => Backing::Regular,
                    };
                    (m, backing)
                }
            }
        } else {
            let m = MmapOptions::new().len(len).no_reserve_swap().map_anon()?;
            (m, Backing::Regular)
        };
        Ok((map, backing))
    }

    /// Faults in the memory pages may be handed out from (`-L`: memcached preallocates its
    /// memory there), `step` bytes at a time, calling `progress(done, total)` after each step.
    /// Fails where the kernel lacks `MADV_POPULATE_WRITE` (before 5.14).
    pub fn prefault(&self, step: usize, mut progress: impl FnMut(usize, usize)) -> io::Result<()> {
        let total = self.pages() * PAGE_SIZE;
        let step = step.max(PAGE_SIZE);
        let mut done = 0;
        while done < total {
            let len = step.min(total - done);
            self.map.advise_range(Advice::PopulateWrite, done, len)?;
            done += len;
            progress(done, total);
        }
        Ok(())
    }

    /// How the memory is backed.
    pub fn backing(&self) -> &Backing {
        &self.backing
    }

    /// Pages that may be handed out (the memory limit).
    pub fn pages(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// Pages of address space reserved (the most the limit can be raised to).
    pub fn reserved_pages(&self) -> usize {
        self.pages
    }

    /// Pages handed out so far.
    pub fn pages_used(&self) -> usize {
        self.next_page.load(Ordering::Relaxed)
    }

    /// Changes how many bytes of pages may be handed out: refused below what is already out
    /// or above what was reserved.
    pub fn set_limit(&self, bytes: usize) -> bool {
        let pages = bytes / PAGE_SIZE;
        if pages < self.pages_used() || pages > self.pages {
            return false;
        }
        self.limit.store(pages, Ordering::Relaxed);
        true
    }

    /// Takes a never-used page, if any is left within the limit.
    pub fn alloc_page(&self) -> Option<Page> {
        let limit = self.limit.load(Ordering::Relaxed);
        let index = self
            .next_page
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()?;
        Some(Page {
            arena: self.id,
            index,
        })
    }

    /// Starts cutting a page into chunks of `chunk_size` bytes (at most one page, at least
    /// 16) for `owner` (a tag the page table keeps for a later scan: the slab class).
    pub fn carve(&self, mut page: Page, chunk_size: usize, owner: u8) -> Carving {
        let chunk_size = self.assign(&mut page, chunk_size, owner);
        Carving {
            arena: page.arena,
            index: page.index,
            chunk_size,
            next: 0,
        }
    }

    /// Records that a page will be cut into chunks of `chunk_size` for `owner` (a page that
    /// changes hands is recorded at once, before it is cut). Returns the size as it is cut:
    /// whole units, so every chunk starts on a unit boundary.
    pub fn assign(&self, page: &mut Page, chunk_size: usize, owner: u8) -> usize {
        self.check(page.arena);
        let chunk_size = cut_size(chunk_size);
        let value = slot_value(chunk_size, owner);
        let previous = self
            .chunk_size_slot(page.index)
            .swap(value, Ordering::AcqRel);
        if previous != 0 && previous != value {
            // A used page cut anew: whatever its old chunks held, none of the new chunks may
            // look live to a scan. (A never-used page is zeroes already.)
            let bytes = self.page_mut(page);
            for chunk in bytes.chunks_mut(chunk_size) {
                if let Some(state) = chunk.get_mut(STATE_AT) {
                    *state = FREE;
                }
            }
        }
        chunk_size
    }

    /// A whole page's bytes, for its owner.
    fn page_mut<'a>(&'a self, page: &'a mut Page) -> &'a mut [u8] {
        assert!(page.index < self.pages, "page outside the arena");
        let start = page.index * PAGE_SIZE;
        // SAFETY: the page lies inside the mapping (checked above), which lives as long as
        // `self`; a `Page` owns all of its bytes (no chunk handle into it exists) and we hold
        // it exclusively for 'a.
        unsafe { std::slice::from_raw_parts_mut(self.map.as_mut_ptr().add(start), PAGE_SIZE) }
    }

    /// The owner tag a page was last carved or assigned for.
    pub fn page_owner(&self, page: usize) -> u8 {
        (self.chunk_size_slot(page).load(Ordering::Acquire) >> 24) as u8
    }

    /// A chunk's size.
    pub fn chunk_len(&self, chunk: &Chunk) -> usize {
        (self.chunk_size_slot(chunk.page()).load(Ordering::Acquire) & SIZE_MASK) as usize
    }

    /// Cuts the next chunk off a carving, if one is left.
    pub fn cut(&self, carving: &mut Carving) -> Option<Chunk> {
        self.check(carving.arena);
        if carving.next + carving.chunk_size > PAGE_SIZE {
            return None;
        }
        let offset = carving.index * PAGE_SIZE + carving.next;
        carving.next += carving.chunk_size;
        Some(Chunk::new(self.id, (offset / UNIT) as u64))
    }

    /// Reads a chunk.
    pub fn bytes<'a>(&'a self, chunk: &'a Chunk) -> &'a [u8] {
        self.check_chunk(chunk);
        // A pinned value's bytes may meanwhile be read without a borrow (see `pinned`), but only
        // read, so a shared slice over them is not disturbed.
        // SAFETY: the range lies inside the mapping (checked above; the mapping lives as long
        // as `self`). `chunk` is the only handle to this range (module invariant), and we hold
        // a shared borrow of it for 'a, so no `&mut` to these bytes can exist for 'a.
        unsafe {
            std::slice::from_raw_parts(self.map.as_ptr().add(chunk.offset()), self.chunk_len(chunk))
        }
    }

    /// Writes a chunk.
    pub fn bytes_mut<'a>(&'a self, chunk: &'a mut Chunk) -> &'a mut [u8] {
        self.check_chunk(chunk);
        // The one other access there can be is the reading of a pinned value's bytes (`pinned`:
        // by the kernel or a raw copy, never through a reference), and the layer above writes
        // only the header of a pinned item's chunk: no byte is written and read at once.
        // SAFETY: as in `bytes`; the exclusive borrow of the only handle to this range means
        // no other reference to these bytes exists for 'a.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.map.as_mut_ptr().add(chunk.offset()),
                self.chunk_len(chunk),
            )
        }
    }

    /// An empty free list for chunks of `chunk_size` bytes.
    pub fn free_list(&self, chunk_size: usize) -> FreeList {
        let chunk_size = cut_size(chunk_size);
        FreeList {
            arena: self.id,
            chunk_size: chunk_size as u32,
            head: None,
            len: 0,
        }
    }

    /// Puts a chunk on a free list (the list takes ownership of its memory).
    pub fn push_free(&self, list: &mut FreeList, mut chunk: Chunk) {
        self.check(list.arena);
        assert_eq!(
            self.chunk_len(&chunk) as u32,
            list.chunk_size,
            "chunk freed into a list of another size"
        );
        let next = list.head.unwrap_or(END_OF_LIST);
        let bytes = self.bytes_mut(&mut chunk);
        bytes[STATE_AT] = FREE;
        bytes[LINK].copy_from_slice(&next.to_ne_bytes());
        list.head = Some(chunk.unit());
        list.len += 1;
    }

    /// Marks a chunk free without listing it (a chunk gathered for a page move): a scan must
    /// not find what it held.
    pub fn mark_free(&self, chunk: &mut Chunk) {
        self.bytes_mut(chunk)[STATE_AT] = FREE;
    }

    /// Takes a chunk off a free list.
    pub fn pop_free(&self, list: &mut FreeList) -> Option<Chunk> {
        self.check(list.arena);
        let unit = list.head?;
        // Re-create the handle the list took over in `push_free`: the list owned it, and now
        // gives it up, so there is still exactly one handle.
        let chunk = Chunk::new(self.id, unit);
        let mut link = [0u8; 8];
        link.copy_from_slice(&self.bytes(&chunk)[LINK]);
        let next = u64::from_ne_bytes(link);
        list.head = (next != END_OF_LIST).then_some(next);
        list.len -= 1;
        Some(chunk)
    }

    /// Gives back a whole page from all of its chunks (to move it to another slab class).
    /// Refused — the chunks are handed back — unless they are every chunk of one carved page:
    /// same page, same size, as many as the page holds (handles are unique, so that is all of
    /// them).
    pub fn join(&self, chunks: Vec<Chunk>) -> Result<Page, Vec<Chunk>> {
        let Some(first) = chunks.first() else {
            return Err(chunks);
        };
        let page = first.page();
        let len = self.chunk_len(first);
        let whole = len >= MIN_CHUNK
            && chunks.len() == PAGE_SIZE / len
            && chunks
                .iter()
                .all(|c| c.arena == self.id && c.page() == page);
        if !whole {
            return Err(chunks);
        }
        Ok(Page {
            arena: self.id,
            index: page,
        })
    }

    /// Cuts every chunk left in a carving (so its page can be gathered whole).
    pub fn cut_rest(&self, carving: &mut Carving) -> Vec<Chunk> {
        std::iter::from_fn(|| self.cut(carving)).collect()
    }

    fn check(&self, arena: NonZeroU16) {
        assert_eq!(arena, self.id, "a handle from another arena");
    }

    fn check_chunk(&self, chunk: &Chunk) {
        self.check(chunk.arena);
        assert!(chunk.page() < self.pages, "chunk outside the arena");
    }
}

impl FreeList {
    /// Chunks on the list.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

mod file;
mod pinned;

pub use file::{is_huge, memfd, stored_words, AdoptedPage, Adoption, LAYOUT_VERSION};
pub use pinned::PinnedBytes;

#[cfg(test)]
mod tests;
