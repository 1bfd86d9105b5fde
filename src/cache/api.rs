//! The cache's vocabulary as its callers see it: how it is configured, what a store asks and
//! what it and an arithmetic answer, values and items as they come out, and its statistics.

use super::arena::{Arena, Chunk};
use super::{item, table};
use super::{LruSettings, RelTime, SlabClasses};

/// What the cache is built with.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// `-m`, in bytes.
    pub memory_limit: usize,
    /// `-I`, in bytes.
    pub item_size_max: usize,
    /// `-C` clears it.
    pub use_cas: bool,
    /// `-M` clears it.
    pub evictions: bool,
    /// `-o hashpower`: initial table size as a power of two (0 = memcached's default of 16).
    pub hashpower_init: u32,
    /// How the slab classes' chunk sizes are chosen (`-n`, `-f`, `-o slab_sizes`).
    pub slab_classes: SlabClasses,
    /// `-o slab_chunk_max`: the largest chunk.
    pub slab_chunk_max: usize,
    /// `-L`: try large pages.
    pub large_pages: bool,
    /// `-o track_sizes`: keep a histogram of item sizes for `stats sizes`.
    pub track_sizes: bool,
    /// `-o lru_crawler` / `no_lru_crawler`.
    pub lru_crawler: bool,
    /// `-o lru_crawler_sleep`.
    pub lru_crawler_sleep: u32,
    /// `-o lru_crawler_tocrawl`.
    pub lru_crawler_tocrawl: u32,
    /// `-o slab_automove`.
    pub slab_automove: u8,
    /// The segmented LRU's settings.
    pub lru: LruSettings,
}

impl CacheConfig {
    /// memcached's defaults with a memory limit.
    pub fn with_memory(memory_limit: usize) -> CacheConfig {
        CacheConfig {
            memory_limit,
            item_size_max: 1024 * 1024,
            use_cas: true,
            evictions: true,
            hashpower_init: 0,
            slab_classes: SlabClasses::default(),
            slab_chunk_max: 512 * 1024,
            large_pages: false,
            track_sizes: false,
            lru_crawler: true,
            lru_crawler_sleep: 100,
            lru_crawler_tocrawl: 0,
            slab_automove: 1,
            lru: LruSettings::default(),
        }
    }
}

/// How a store treats an existing item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// Store unconditionally.
    Set,
    /// Store only if the key is absent.
    Add,
    /// Store only if the key is present.
    Replace,
    /// Add the data after the existing value.
    Append,
    /// Add the data before the existing value.
    Prepend,
    /// Store only if the item's CAS id still equals [`StoreOptions::cas`].
    Cas,
}

/// The parts of a store that only some commands use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreOptions {
    /// The CAS id the client holds (0: none). `Cas` requires it; append/prepend check it if
    /// given.
    pub cas: u64,
    /// Meta `I`: a CAS older than the item's still stores, but the item is marked stale and
    /// keeps its expiry (memcached's "stale" write for invalidated items).
    pub invalidate: bool,
    /// The key arrived base64-encoded.
    pub key_binary: bool,
    /// Meta `E`: the stored item's CAS id instead of the counter's next one (0: none). The
    /// counter is then not advanced, as in memcached 1.6.38.
    pub new_cas: u64,
    /// Meta `N` on append/prepend: a miss stores the data as a new item expiring then.
    pub vivify: Option<RelTime>,
}

/// What a store did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOutcome {
    /// Stored: the item's new CAS id and its value's length (which append and prepend make
    /// longer than the data sent; meta `s` reports it).
    Stored {
        /// The new CAS id.
        cas: u64,
        /// The stored value's length.
        len: u32,
    },
    /// The mode's condition failed (add of a present key, replace/append of an absent one).
    NotStored,
    /// CAS mismatch.
    Exists,
    /// CAS on an absent key.
    NotFound,
    /// Bigger than `-I` allows.
    TooLarge,
    /// No memory could be freed for it (`-M`, or nothing left to evict).
    NoMemory,
}

/// What an incr/decr did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOutcome {
    /// The new value.
    Value(u64),
    /// No such key.
    NotFound,
    /// The stored value is not a decimal number.
    NonNumeric,
    /// The longer result needed memory that could not be freed.
    NoMemory,
}

/// An item's value, possibly spread over several chunks.
#[derive(Debug, Clone, Copy)]
pub struct Value<'a> {
    pub(super) arena: &'a Arena,
    pub(super) first: &'a [u8],
    pub(super) rest: &'a [Chunk],
    pub(super) len: usize,
}

impl Value<'_> {
    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends the value to `out` (with room reserved for a `\r\n` after it).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.reserve(self.len + 2);
        out.extend_from_slice(self.first);
        if self.rest.is_empty() {
            return;
        }
        for part in self.parts().skip(1) {
            out.extend_from_slice(part);
        }
    }

    /// The value as one contiguous slice when it is not chained.
    pub fn contiguous(&self) -> Option<&[u8]> {
        (self.first.len() == self.len).then_some(self.first)
    }

    /// The value's pieces, in order.
    pub fn parts(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut left = self.len - self.first.len();
        std::iter::once(self.first).chain(self.rest.iter().map(move |chunk| {
            let bytes = &self.arena.bytes(chunk)[item::CONTINUATION_HEADER..];
            let part = &bytes[..left.min(bytes.len())];
            left -= part.len();
            part
        }))
    }

    /// Copies the value.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len);
        self.write_to(&mut v);
        v
    }
}

/// A stored item, as a reader sees it while its shard is locked.
#[derive(Debug, Clone, Copy)]
pub struct ItemView<'a> {
    /// The key.
    pub key: &'a [u8],
    /// The value.
    pub data: Value<'a>,
    /// Client flags.
    pub flags: u32,
    /// CAS id.
    pub cas: u64,
    /// Expiry (relative; 0 = never).
    pub exptime: RelTime,
}

/// Cache-wide figures for `stats`.
#[derive(Debug, Default, Clone, Copy)]
pub struct CacheStats {
    /// Items stored now.
    pub curr_items: u64,
    /// Items ever stored.
    pub total_items: u64,
    /// Bytes the items stored now take in their chunks (header, key, value).
    pub bytes: u64,
    /// Live items removed to make room.
    pub evictions: u64,
    /// Expired items whose memory was reused.
    pub reclaimed: u64,
    /// Reclaimed items that were never read.
    pub expired_unfetched: u64,
    /// Evicted items that were never read.
    pub evicted_unfetched: u64,
    /// Hash index buckets.
    pub hash_buckets: u64,
    /// Bytes of the hash index and entry tables.
    pub hash_bytes: u64,
    /// The memory limit now in force.
    pub limit_maxbytes: u64,
    /// Pages handed out to slab classes.
    pub pages_used: u64,
    /// Expired items the crawler reclaimed.
    pub crawler_reclaimed: u64,
    /// Items the crawler looked at.
    pub crawler_items_checked: u64,
    /// Items moved to cold, to warm, and within warm.
    pub moves: [u64; 3],
}

/// A class's LRU segments, summed over shards (for `stats items`).
#[derive(Debug, Default, Clone, Copy)]
pub struct ClassLru {
    /// Items in the class.
    pub items: u64,
    /// Items per segment: hot, warm, cold, temporary.
    pub number: [u64; table::SEGMENTS],
    /// Seconds since the oldest item of each segment was last accessed.
    pub age: [u32; table::SEGMENTS],
}
