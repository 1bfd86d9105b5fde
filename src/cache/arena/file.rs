//! The arena's memory in a file, laid out so that the next process finds it again, and the
//! adoption of a reopened arena's chunks.
//!
//! ```text
//! 0          header, 4 KB: magic, layout version, page size, reserved pages, then words the
//!            layers above keep their own state in
//! 4 KB       page table: one u32 per reserved page (chunk size, owner tag in the top byte)
//! table end  pages, from a 2 MB boundary: reserved pages × PAGE_SIZE
//! ```
//!
//! A file is sparse until written (a memfd or tmpfs file takes memory only for the pages in
//! use), so the layout costs what anonymous memory costs. In hugetlbfs (a memfd made with
//! `MFD_HUGETLB`, for `-L`), where a mapping must start and end on a huge page, each part
//! starts on one and the file ends on one; elsewhere the offsets are those above. A file whose header does not match
//! this build's layout and this size is cleared and laid out afresh: a stale or foreign file
//! is never read as an arena.

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::{MmapOptions, MmapRaw};

use super::{Arena, Backing, Chunk, MIN_CHUNK, PAGE_SIZE, SIZE_MASK, UNIT};

/// "memcached-rs arena", as the first header word.
const MAGIC: u64 = u64::from_le_bytes(*b"MCRSAREN");

/// Changes whenever the layout of the file, the page table or a chunk changes: an arena of
/// another layout starts empty.
pub const LAYOUT_VERSION: u64 = 1;

const HEADER_LEN: usize = 4096;

/// Header words the arena keeps for itself (magic, version, page size, reserved pages, and
/// room to grow).
const OWN_WORDS: usize = 8;

/// Where the pages start: a boundary huge pages could use.
const PAGES_ALIGN: usize = 2 * 1024 * 1024;

/// The mappings an arena is made of.
pub(super) struct Maps {
    pub pages: MmapRaw,
    pub table: MmapRaw,
    pub meta: Option<MmapRaw>,
    pub reserved: usize,
    pub limit: usize,
    pub backing: Backing,
}

/// Bytes of page table for `pages` pages, in whole OS pages.
pub(super) fn table_len(pages: usize) -> usize {
    (pages * 4).next_multiple_of(4096)
}

/// The header words past the arena's own.
pub(super) fn user_words(meta: &MmapRaw) -> &[AtomicU64] {
    &words(meta)[OWN_WORDS..]
}

fn words(meta: &MmapRaw) -> &[AtomicU64] {
    let ptr = meta.as_ptr().cast::<AtomicU64>();
    // SAFETY: the header mapping is HEADER_LEN bytes, page-aligned (so 8-aligned), and lives
    // as long as the borrow of `meta`; it is only ever accessed through these atomics, and any
    // bit pattern is a valid AtomicU64.
    unsafe { std::slice::from_raw_parts(ptr, HEADER_LEN / 8) }
}

/// Where the parts of an arena of `pages` pages lie in a file whose mappings must be aligned
/// to `align` bytes (the system page, or a huge page in hugetlbfs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Layout {
    header_len: usize,
    table_at: usize,
    table_len: usize,
    pages_at: usize,
    total: usize,
}

impl Layout {
    pub(super) fn new(pages: usize, align: usize) -> Layout {
        let header_len = HEADER_LEN.next_multiple_of(align);
        let table_len = table_len(pages).next_multiple_of(align);
        let pages_at = (header_len + table_len).next_multiple_of(PAGES_ALIGN.max(align));
        Layout {
            header_len,
            table_at: header_len,
            table_len,
            pages_at,
            total: (pages_at + pages * PAGE_SIZE).next_multiple_of(align),
        }
    }
}

/// The page size mappings of `file` must be aligned to: a huge page's in hugetlbfs, else 4 KB.
fn mapping_align(file: &File) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    // SAFETY: statfs is plain data, for which all zeroes is a valid value.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: the descriptor is open for the borrow of `file`, and `fs` is a valid statfs the
    // call may write.
    crate::os::check(unsafe { libc::fstatfs(file.as_raw_fd(), &mut fs) })?;
    Ok(if fs.f_type == libc::HUGETLBFS_MAGIC as _ {
        usize::try_from(fs.f_bsize).unwrap_or(PAGES_ALIGN).max(4096)
    } else {
        4096
    })
}

/// Whether `file` lives in hugetlbfs (a memfd made for `-L`).
pub fn is_huge(file: &File) -> io::Result<bool> {
    Ok(mapping_align(file)? > 4096)
}

/// Maps an arena of `bytes` (whole pages, at least one) in `file`. Returns the mappings and
/// whether the file already held an arena of this layout and size, now reopened.
pub(super) fn map(file: &File, bytes: usize) -> io::Result<(Maps, bool)> {
    let pages = (bytes / PAGE_SIZE).max(1);
    let align = mapping_align(file)?;
    let Layout {
        header_len,
        table_at,
        table_len,
        pages_at,
        total,
    } = Layout::new(pages, align);

    let fits = file.metadata()?.len() == total as u64;
    let meta = if fits {
        let meta = MmapOptions::new().len(header_len).map_raw(file)?;
        Some(meta).filter(|m| matches(m, pages))
    } else {
        None
    };
    let reopened = meta.is_some();
    let meta = match meta {
        Some(meta) => meta,
        None => {
            // Cleared by truncation: the pages read as zeroes (free) and cost nothing.
            file.set_len(0)?;
            file.set_len(total as u64)?;
            let meta = MmapOptions::new().len(header_len).map_raw(file)?;
            let w = words(&meta);
            w[1].store(LAYOUT_VERSION, Ordering::Relaxed);
            w[2].store(PAGE_SIZE as u64, Ordering::Relaxed);
            w[3].store(pages as u64, Ordering::Relaxed);
            // The magic last: a header is whole once it reads right.
            w[0].store(MAGIC, Ordering::Release);
            meta
        }
    };
    let table = MmapOptions::new()
        .offset(table_at as u64)
        .len(table_len)
        .map_raw(file)?;
    let map = MmapOptions::new()
        .offset(pages_at as u64)
        .len(pages * PAGE_SIZE)
        .map_raw(file)?;
    Ok((
        Maps {
            pages: map,
            table,
            meta: Some(meta),
            reserved: pages,
            limit: pages,
            backing: if align > 4096 {
                Backing::HugeTlb
            } else {
                Backing::Regular
            },
        },
        reopened,
    ))
}

fn matches(meta: &MmapRaw, pages: usize) -> bool {
    let w = words(meta);
    w[0].load(Ordering::Acquire) == MAGIC
        && w[1].load(Ordering::Relaxed) == LAYOUT_VERSION
        && w[2].load(Ordering::Relaxed) == PAGE_SIZE as u64
        && w[3].load(Ordering::Relaxed) == pages as u64
}

/// A new memfd, the arena's home under systemd (kept in its file-descriptor store). With
/// `huge`, backed by huge pages (`-L`), which needs pages reserved in hugetlbfs.
pub fn memfd(name: &str, huge: bool) -> io::Result<File> {
    use std::os::fd::FromRawFd;
    let name = std::ffi::CString::new(name).map_err(|_| io::Error::other("memfd name"))?;
    let flags = libc::MFD_CLOEXEC | if huge { libc::MFD_HUGETLB } else { 0 };
    // SAFETY: `name` is a valid NUL-terminated string that outlives the call.
    let fd = crate::os::check(unsafe { libc::memfd_create(name.as_ptr(), flags) })?;
    // SAFETY: `fd` was just returned by memfd_create, is open, and nothing else owns it.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// The header words the layers above kept in `file` (those [`Arena::meta_words`] gives),
/// read without mapping it, when it holds an arena of this build's layout, whatever its
/// size; `None` for an empty file or any other.
pub fn stored_words(file: &File) -> io::Result<Option<Vec<u64>>> {
    use std::os::unix::fs::FileExt;
    if file.metadata()?.len() < HEADER_LEN as u64 {
        return Ok(None);
    }
    let mut header = vec![0u8; HEADER_LEN];
    file.read_exact_at(&mut header, 0)?;
    let words: Vec<u64> = header
        .chunks_exact(8)
        .map(|w| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(w);
            u64::from_ne_bytes(bytes)
        })
        .collect();
    let ours = words[0] == MAGIC && words[1] == LAYOUT_VERSION && words[2] == PAGE_SIZE as u64;
    Ok(ours.then(|| words[OWN_WORDS..].to_vec()))
}

impl Arena {
    /// An arena whose memory lives in `file` (a memfd, or a file on tmpfs or DAX), so that a
    /// later process can map it again. When the file already holds an arena of this layout and
    /// size, its pages are kept and the [`Adoption`] hands out every chunk of them; otherwise the
    /// file is cleared and laid out afresh (and there is nothing to adopt).
    pub fn in_file(file: &std::fs::File, bytes: usize) -> io::Result<(Arena, Option<Adoption>)> {
        let (maps, reopened) = map(file, bytes)?;
        let arena = Self::assemble(maps)?;
        if !reopened {
            return Ok((arena, None));
        }
        // Pages are handed out in order and carved at once, so the carved ones lead.
        let carved = (0..arena.pages)
            .take_while(|&p| arena.chunk_size_slot(p).load(Ordering::Acquire) != 0)
            .count();
        arena.next_page.store(carved, Ordering::Relaxed);
        Ok((
            arena,
            Some(Adoption {
                next: 0,
                end: carved,
            }),
        ))
    }

    /// Words of the file's header the layers above may keep their own state in (what a restart
    /// must know besides the chunks); empty for an arena in anonymous memory.
    pub fn meta_words(&self) -> &[AtomicU64] {
        match &self.meta {
            Some(meta) => user_words(meta),
            None => &[],
        }
    }

    /// Makes what was written to the arena durable where its file is on a persistent medium
    /// (a no-op for memory a memfd or tmpfs holds).
    pub fn flush(&self) -> io::Result<()> {
        if let Some(meta) = &self.meta {
            meta.flush()?;
            self.chunk_sizes.flush()?;
            self.map.flush()?;
        }
        Ok(())
    }

    /// Hands out the next carved page of a reopened arena, every chunk of it: each chunk once,
    /// so handles stay unique. The caller keeps the live ones and frees the rest.
    pub fn adopt_next(&self, adoption: &mut Adoption) -> Option<AdoptedPage> {
        if adoption.next >= adoption.end {
            return None;
        }
        let index = adoption.next;
        adoption.next += 1;
        let slot = self.chunk_size_slot(index).load(Ordering::Acquire);
        let size = (slot & SIZE_MASK) as usize;
        // A size no carving could have made (a damaged file) adopts nothing of the page.
        let sound = (MIN_CHUNK..=PAGE_SIZE).contains(&size) && size % UNIT == 0;
        let count = if sound { PAGE_SIZE / size } else { 0 };
        let chunks = (0..count)
            .map(|i| Chunk::new(self.id, ((index * PAGE_SIZE + i * size) / UNIT) as u64))
            .collect();
        Some(AdoptedPage {
            index,
            owner: (slot >> 24) as u8,
            chunks,
        })
    }
}

/// The carved pages of a reopened arena still to be adopted ([`Arena::adopt_next`]).
#[derive(Debug)]
pub struct Adoption {
    next: usize,
    end: usize,
}

/// A page of a reopened arena, with a handle to each of its chunks.
#[derive(Debug)]
pub struct AdoptedPage {
    /// The page's number.
    pub index: usize,
    /// The owner tag it was carved for.
    pub owner: u8,
    /// Every chunk the page is cut into, in order.
    pub chunks: Vec<Chunk>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_of_a_regular_file_is_the_one_files_already_have() {
        // Before hugetlbfs files had their own alignment: a header page, the table in whole
        // 4 KB pages, the pages from the next 2 MB boundary.
        for pages in [1usize, 64, 1000, 65_536] {
            let table = (pages * 4).next_multiple_of(4096);
            let pages_at = (4096 + table).next_multiple_of(2 * 1024 * 1024);
            let want = Layout {
                header_len: 4096,
                table_at: 4096,
                table_len: table,
                pages_at,
                total: pages_at + pages * PAGE_SIZE,
            };
            assert_eq!(Layout::new(pages, 4096), want, "{pages} pages");
        }
    }

    #[test]
    fn every_part_of_a_huge_page_file_starts_and_ends_on_a_huge_page() {
        let huge = 2 * 1024 * 1024;
        for pages in [1usize, 3, 64, 1001] {
            let l = Layout::new(pages, huge);
            for at in [l.header_len, l.table_at, l.table_len, l.pages_at, l.total] {
                assert_eq!(at % huge, 0, "{l:?}");
            }
            assert!(l.table_len >= pages * 4 && l.header_len >= HEADER_LEN);
            assert!(l.pages_at >= l.table_at + l.table_len);
            assert!(l.total >= l.pages_at + pages * PAGE_SIZE);
        }
    }

    #[test]
    fn a_memfd_is_not_huge() {
        let file = memfd("layout-test", false).expect("memfd");
        assert!(!is_huge(&file).expect("fstatfs"));
    }
}
