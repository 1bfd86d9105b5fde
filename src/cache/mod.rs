//! The cache: protocol-agnostic storage with memcached's semantics.
//!
//! Operations are those every front end needs — get (optionally touching), store in its six
//! modes, delete, incr/decr, touch, flush — with memcached's CAS, expiry, flush and eviction
//! rules. Nothing here knows about sockets or wire formats.
//!
//! Items live in slab chunks of one `-m`-sized arena ([`arena`], [`slabs`]): a compact header,
//! the key and the value, chained across chunks of the largest class when they exceed it. The
//! keys are hashed onto 64 shards; each shard's [`table`] indexes its items and keeps an LRU per
//! slab class, so making room for an item evicts the least recently used item of the same
//! class. A shard's lock guards its table and the chunks its entries own; the slab allocator's
//! per-class locks nest inside it, and nothing else is ever held with a shard lock, so there is
//! no lock-order cycle. A reply that writes a large value from the arena pins its item in the
//! shard ([`pin`]): unlinked meanwhile, the item keeps its chunks until the reply is done.

mod api;
pub mod arena;
mod class_counters;
mod class_table;
mod clock;
pub mod crawler;
pub mod hash;
mod item;
mod lru;
mod meta;
pub mod mover;
mod ops;
mod pin;
mod reserve;
mod restore;
pub mod slabs;
mod store;
mod warm;
pub use store::log_refusal;
mod table;
#[cfg(test)]
mod testing;

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::stats::ThreadStats;
use crate::sync::{lock, CachePadded};
pub use api::{
    ArithOutcome, CacheConfig, CacheStats, ClassLru, ItemView, StoreMode, StoreOptions,
    StoreOutcome, Value,
};
use arena::{Arena, Chunk};
pub use class_counters::ClassCounters;
use class_counters::ShardClasses;
pub use clock::{Clock, RelTime};
use item::Header;
pub use lru::{LruSettings, LruTuning, TuneError};
pub use meta::{ItemMut, MetaArith, MetaDelete, MetaDeleteOptions, MetaGetOptions};
pub use pin::Pin;
pub use reserve::Reservation;
pub use restore::Restored;
pub use slabs::SlabClasses;
use slabs::{ClassTable, Slabs};
use table::Table;
pub use warm::{EmptyBecause, WarmStart};

/// How many shards the keys are spread over: enough that worker threads rarely meet on a lock.
const SHARDS: usize = 64;

/// memcached's `sizeof(item)` on 64-bit: the per-item header its size limit is computed with.
const MEMCACHED_ITEM_HEADER: usize = 48;

/// `stats sizes` buckets, as memcached: item sizes rounded up to a multiple of 32.
const SIZE_BUCKET: usize = 32;

/// memcached refreshes an item's access time at most this often (`ITEM_UPDATE_INTERVAL`).
const ITEM_UPDATE_INTERVAL: RelTime = 60;

#[derive(Debug)]
struct Shard {
    table: Table,
    total_items: u64,
    bytes: u64,
    classes: ShardClasses,
    /// Items that replies not yet written read from the arena.
    pins: pin::Pins,
}

/// The cache. Shared by every worker thread.
#[derive(Debug)]
pub struct Cache {
    shards: Box<[Mutex<Shard>]>,
    slabs: Slabs,
    clock: Arc<Clock>,
    item_size_max: usize,
    use_cas: bool,
    evictions: bool,
    memory_limit: AtomicUsize,
    /// Written by every store from every worker: alone on its lines, so that the stores do not
    /// keep evicting the fields every get reads (`oldest_live`, `use_cas`, `shards`).
    last_cas: CachePadded<AtomicU64>,
    /// memcached's `settings.oldest_live`: items last touched at or before it are flushed.
    oldest_live: AtomicU32,
    /// memcached's `settings.oldest_cas`: items with a lower CAS are flushed.
    oldest_cas: AtomicU64,
    /// Where the next eviction starts looking, so that shards take turns.
    evict_cursor: CachePadded<AtomicUsize>,
    /// Items per 32-byte size bucket, with `-o track_sizes`.
    sizes: Option<Box<[AtomicU64]>>,
    crawler: crawler::CrawlerState,
    mover: mover::MoverState,
    lru: LruTuning,
}

/// The chunks of an item being stored: one for almost every item (no heap allocation on the
/// store path), several when the value is chained over the largest class.
#[derive(Debug)]
enum Chunks {
    One(Chunk),
    Many(Vec<Chunk>),
}

impl Chunks {
    fn from_vec(mut chunks: Vec<Chunk>) -> Chunks {
        match (chunks.len(), chunks.pop()) {
            (1, Some(only)) => Chunks::One(only),
            (_, Some(last)) => {
                chunks.push(last);
                Chunks::Many(chunks)
            }
            (_, None) => Chunks::Many(chunks),
        }
    }

    fn as_mut_slice(&mut self) -> &mut [Chunk] {
        match self {
            Chunks::One(c) => std::slice::from_mut(c),
            Chunks::Many(v) => v,
        }
    }

    /// Gives the chunks back to the allocator (a store that did not happen).
    fn free(self, slabs: &Slabs, class: u8) {
        match self {
            Chunks::One(c) => slabs.free(class as usize, c),
            Chunks::Many(v) => v.into_iter().for_each(|c| slabs.free(class as usize, c)),
        }
    }
}

/// Where an item's value of `len` bytes lies in its chunks: from `start` (after the header
/// and key) in the first, from the continuation header on in each further one — the part
/// after the value's first `skip` bytes. (Every chunk of an item is of one class, so the chunk
/// that byte lies in is found without walking the chunks before it.)
fn value_slices<'a>(
    arena: &'a Arena,
    chunks: &'a mut [Chunk],
    start: usize,
    len: usize,
    skip: usize,
) -> impl Iterator<Item = &'a mut [u8]> + 'a {
    let skip = skip.min(len);
    let size = chunks.first().map_or(0, |c| arena.chunk_len(c));
    let in_first = size.saturating_sub(start);
    let further = size.saturating_sub(item::CONTINUATION_HEADER).max(1);
    let (first, mut from) = if skip < in_first || chunks.len() < 2 {
        (0, start + skip)
    } else {
        let past = skip - in_first;
        (
            1 + past / further,
            item::CONTINUATION_HEADER + past % further,
        )
    };
    let mut left = len - skip;
    chunks
        .get_mut(first..)
        .unwrap_or_default()
        .iter_mut()
        .map_while(move |chunk| {
            if left == 0 {
                return None;
            }
            let bytes = arena.bytes_mut(chunk);
            let from_here = from.min(bytes.len());
            let take = left.min(bytes.len() - from_here);
            let slice = &mut bytes[from_here..from_here + take];
            left -= take;
            from = item::CONTINUATION_HEADER;
            Some(slice)
        })
}

/// A live item found under its shard's lock.
#[derive(Debug, Clone, Copy)]
struct Found {
    idx: u32,
    header: Header,
}

impl Cache {
    /// Builds an empty cache, mapping its arena in anonymous memory.
    pub fn new(config: &CacheConfig, clock: Arc<Clock>) -> std::io::Result<Cache> {
        // Address space for `cache_memlimit` to grow into; it costs nothing until written.
        let arena = Arena::with_headroom(
            config.memory_limit,
            arena::DEFAULT_RESERVE,
            config.large_pages,
        )?;
        Ok(Self::with_arena(config, clock, arena))
    }

    /// Builds the cache around a mapped arena, with nothing indexed yet.
    fn with_arena(config: &CacheConfig, clock: Arc<Clock>, arena: Arena) -> Cache {
        let hashpower = if config.hashpower_init == 0 {
            16
        } else {
            config.hashpower_init
        };
        let per_shard = (1usize << hashpower.min(40)) / SHARDS;
        let table = ClassTable::build(
            &config.slab_classes,
            config.slab_chunk_max,
            config.item_size_max,
        );
        // The most items the memory can hold: all in the smallest class (entry space for at
        // most a million per shard is set aside; a larger cache grows its tables as it fills).
        let expected = (config.memory_limit / table.chunk_size(1) / SHARDS).min(1 << 20);
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    table: Table::with_capacity(per_shard, expected),
                    total_items: 0,
                    bytes: 0,
                    classes: ShardClasses::default(),
                    pins: pin::Pins::default(),
                })
            })
            .collect();
        Cache {
            shards,
            slabs: Slabs::new(arena, table),
            clock,
            item_size_max: config.item_size_max,
            use_cas: config.use_cas,
            evictions: config.evictions,
            memory_limit: AtomicUsize::new(config.memory_limit),
            // memcached 1.6.38's first CAS is 2: its counter starts one step in.
            last_cas: CachePadded(AtomicU64::new(1)),
            oldest_live: AtomicU32::new(0),
            oldest_cas: AtomicU64::new(0),
            evict_cursor: CachePadded(AtomicUsize::new(0)),
            crawler: crawler::CrawlerState::new(config),
            mover: mover::MoverState::with_automove(config.slab_automove),
            lru: LruTuning::new(&config.lru),
            sizes: config.track_sizes.then(|| {
                (0..=config.item_size_max / SIZE_BUCKET + 1)
                    .map(|_| AtomicU64::new(0))
                    .collect()
            }),
        }
    }

    /// The clock items are timed by.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The slab allocator (for `stats slabs`).
    pub fn slabs(&self) -> &Slabs {
        &self.slabs
    }

    /// Whether an item of this size may be stored at all (memcached's `item_size_ok`, with its
    /// header arithmetic so that the largest accepted value matches memcached's byte for byte).
    pub fn item_size_ok(&self, key_len: usize, flags: u32, value_len: usize) -> bool {
        let suffix = if flags == 0 { 0 } else { 4 };
        let cas = if self.use_cas { 8 } else { 0 };
        let total = MEMCACHED_ITEM_HEADER + key_len + 1 + value_len + 2 + suffix + cas;
        total <= self.item_size_max
    }

    /// The class and chunk count an item of this key and value length needs.
    ///
    /// An item larger than the largest chunk is chained over chunks of one class: the class
    /// whose chunks hold it in the fewest bytes, with at most twice the chunks the largest
    /// class would take. So an item just over the largest chunk (a 512 KB value with its
    /// header) takes two chunks of about half that, not two of the largest — memcached
    /// takes one of the largest and a small tail; this takes a few KB more than that, where
    /// two of the largest took nearly twice as much.
    fn layout(&self, flags: u32, key_len: usize, value_len: usize) -> Option<(u8, usize)> {
        let total = item::header_len_for(flags, self.use_cas) + key_len + value_len;
        let table = self.slabs.table();
        let class = table.class_for(total)?;
        let chunks_in = |class: usize| {
            let size = table.chunk_size(class);
            // Further chunks of a chained item carry a small header of their own.
            let further = total
                .saturating_sub(size)
                .div_ceil(size.saturating_sub(item::CONTINUATION_HEADER).max(1));
            1 + further
        };
        let largest_n = chunks_in(class);
        if largest_n == 1 {
            return Some((class as u8, 1));
        }
        let first_fits = item::header_len_for(flags, self.use_cas) + key_len;
        let (best, n) = (1..=class)
            .filter(|&c| table.chunk_size(c) > first_fits + item::CONTINUATION_HEADER)
            .map(|c| (c, chunks_in(c)))
            .filter(|&(_, n)| n <= 2 * largest_n)
            .min_by_key(|&(c, n)| (n * table.chunk_size(c), n))
            .unwrap_or((class, largest_n));
        Some((best as u8, n))
    }

    fn shard_of(key: &[u8]) -> (usize, u32) {
        let h = hash::hash_key(key);
        (((h >> 32) as usize) & (SHARDS - 1), h as u32)
    }

    fn shard(&self, index: usize) -> MutexGuard<'_, Shard> {
        lock(&self.shards[index])
    }

    /// A client's `E` CAS id, or (for 0) the counter's next.
    pub(super) fn given_or_next_cas(&self, given: u64) -> u64 {
        if given != 0 {
            given
        } else {
            self.next_cas()
        }
    }

    fn next_cas(&self) -> u64 {
        if self.use_cas {
            self.last_cas.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            0
        }
    }

    fn arena(&self) -> &Arena {
        self.slabs.arena()
    }

    /// The key stored in an entry's first chunk.
    fn key_of<'a>(&'a self, chunk: &'a Chunk) -> &'a [u8] {
        let b = self.arena().bytes(chunk);
        let start = item::header_len(b[1], self.use_cas);
        &b[start..start + b[0] as usize]
    }

    fn header_of(&self, chunk: &Chunk) -> Header {
        Header::read(self.arena().bytes(chunk), self.use_cas)
    }

    /// The value of a found item.
    fn value<'a>(&'a self, shard: &'a Shard, found: &Found) -> Value<'a> {
        let entry = shard.table.entry(found.idx);
        let start = found.header.len(self.use_cas) + found.header.nkey as usize;
        let len = found.header.nbytes as usize;
        let b = self.arena().bytes(&entry.chunk);
        let first = &b[start..(start + len).min(b.len())];
        Value {
            arena: self.arena(),
            first,
            rest: shard.table.chain(found.idx),
            len,
        }
    }

    /// Writes header, key and value parts across `chunks`.
    fn fill(&self, chunks: &mut [Chunk], header: &Header, key: &[u8], parts: &[&[u8]]) {
        self.fill_frame(chunks, header, key);
        let start = header.len(self.use_cas) + key.len();
        let mut parts = parts.iter();
        let mut src: &[u8] = &[];
        for mut dst in value_slices(self.arena(), chunks, start, header.nbytes as usize, 0) {
            while !dst.is_empty() {
                while src.is_empty() {
                    let Some(part) = parts.next() else {
                        return;
                    };
                    src = part;
                }
                let n = src.len().min(dst.len());
                let (now, later) = std::mem::take(&mut dst).split_at_mut(n);
                now.copy_from_slice(&src[..n]);
                dst = later;
                src = &src[n..];
            }
        }
    }

    /// Writes an item's header and key into its first chunk and the continuation header into
    /// each further one: everything but the value.
    fn fill_frame(&self, chunks: &mut [Chunk], header: &Header, key: &[u8]) {
        let arena = self.arena();
        let Some((first, further)) = chunks.split_first_mut() else {
            return;
        };
        let head = first.offset();
        let dst = arena.bytes_mut(first);
        header.write(dst, self.use_cas);
        let start = header.len(self.use_cas);
        dst[start..start + key.len()].copy_from_slice(key);
        for (index, chunk) in (1..).zip(further) {
            item::write_continuation(arena.bytes_mut(chunk), head, index);
        }
    }

    /// Finds a live item, unlinking it (and counting why) if it is flushed or expired.
    fn lookup(
        &self,
        shard: &mut Shard,
        key: &[u8],
        hash: u32,
        now: RelTime,
        stats: &ThreadStats,
    ) -> Option<Found> {
        use crate::watch::{self, GetStatus};
        let Some(idx) = shard.table.find(hash, |e| self.key_of(&e.chunk) == key) else {
            watch::lookup_done(stats.client_fd.get(), key, GetStatus::NotFound, 0, 0);
            return None;
        };
        let header = self.header_of(&shard.table.entry(idx).chunk);
        let status = if self.is_flushed(&header, now) {
            stats.get_flushed.incr();
            GetStatus::Flushed
        } else if is_expired(&header, now) {
            stats.get_expired.incr();
            GetStatus::Expired
        } else {
            watch::lookup_done(
                stats.client_fd.get(),
                key,
                GetStatus::Found,
                header.class,
                header.nbytes,
            );
            return Some(Found { idx, header });
        };
        watch::lookup_done(stats.client_fd.get(), key, status, 0, 0);
        self.unlink(shard, idx, &header);
        None
    }

    /// Removes an item from its shard and gives its chunks back to the allocator (once no
    /// reply reads them any more).
    fn unlink(&self, shard: &mut Shard, idx: u32, header: &Header) {
        let (first, chain) = shard.table.remove(idx, header.lru());
        let size = self.footprint(header);
        shard.bytes -= size as u64;
        shard.classes[header.class as usize].mem_requested -= size as u64;
        self.count_size(size, false);
        self.release_chunks(shard, header.class, first, chain);
    }

    /// Links a filled item into its shard, in the LRU segment its expiry and the tuning give
    /// it; returns its entry number.
    fn link(&self, shard: &mut Shard, hash: u32, chunks: Chunks, header: &Header) -> u32 {
        shard.total_items += 1;
        let size = self.footprint(header);
        shard.bytes += size as u64;
        shard.classes[header.class as usize].mem_requested += size as u64;
        self.count_size(size, true);
        let (mut first, chain) = match chunks {
            Chunks::One(c) => (c, None),
            Chunks::Many(mut v) => {
                let first = v.remove(0);
                (first, (!v.is_empty()).then(|| v.into_boxed_slice()))
            }
        };
        let mut header = *header;
        header.set_seg(self.lru.entry_segment(header.exptime, header.time));
        item::set_bits(self.slabs.arena().bytes_mut(&mut first), header.bits);
        let idx = shard.table.insert(first, hash, header.lru(), chain);
        if header.lru().seg == table::HOT {
            self.balance(shard, header.class);
        }
        idx
    }

    fn count_size(&self, size: usize, added: bool) {
        if let Some(sizes) = &self.sizes {
            let bucket = &sizes[size.div_ceil(SIZE_BUCKET).min(sizes.len() - 1)];
            if added {
                bucket.fetch_add(1, Ordering::Relaxed);
            } else {
                bucket.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// `stats sizes`: (size, items) per non-empty bucket, or `None` without `-o track_sizes`.
    pub fn size_histogram(&self) -> Option<Vec<(usize, u64)>> {
        let sizes = self.sizes.as_ref()?;
        Some(
            sizes
                .iter()
                .enumerate()
                .map(|(i, n)| (i * SIZE_BUCKET, n.load(Ordering::Relaxed)))
                .filter(|&(_, n)| n > 0)
                .collect(),
        )
    }

    /// Bytes an item occupies in its chunks (memcached's `ITEM_ntotal` for this layout).
    fn footprint(&self, header: &Header) -> usize {
        header.len(self.use_cas) + header.nkey as usize + header.nbytes as usize
    }

    /// Whether an item is gone for its readers: flushed or expired.
    fn is_dead(&self, header: &Header, now: RelTime) -> bool {
        self.is_flushed(header, now) || is_expired(header, now)
    }

    fn is_flushed(&self, header: &Header, now: RelTime) -> bool {
        let oldest_live = self.oldest_live.load(Ordering::Acquire);
        if oldest_live == 0 || oldest_live > now {
            return false;
        }
        let oldest_cas = self.oldest_cas.load(Ordering::Acquire);
        header.time <= oldest_live
            || (oldest_cas != 0 && header.cas != 0 && header.cas < oldest_cas)
    }

    /// Rewrites a found item's header after its fields changed.
    fn write_header(&self, shard: &mut Shard, found: &Found) {
        let entry = shard.table.entry_mut(found.idx);
        found
            .header
            .write(self.slabs.arena().bytes_mut(&mut entry.chunk), self.use_cas);
    }
}

fn is_expired(header: &Header, now: RelTime) -> bool {
    header.exptime != 0 && header.exptime <= now
}

#[cfg(test)]
mod tests;
