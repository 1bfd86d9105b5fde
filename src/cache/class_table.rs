//! The slab class table: which chunk sizes the classes have.
//!
//! It is memcached's, computed the same way, whenever a flag that shapes it is given (`-n`,
//! `-f`, `-o slab_chunk_max`, `slab_sizes`, `no_modern`), so `stats slabs` lines up with
//! memcached's for the same flags. Without them the table is finer where items are small
//! ([`SlabClasses::Compact`]): memcached's ×1.25 steps lose about a tenth of the memory of
//! small items to rounding, and small items are most of what caches hold.

use super::arena::PAGE_SIZE;
use crate::stats::MAX_CLASSES;

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
