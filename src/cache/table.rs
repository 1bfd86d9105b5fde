//! One shard's item table: entries (owning their chunks), a hash index over them, and an LRU
//! list per slab class.
//!
//! Entries live in a vector with stable indices; the index is an open-addressing table of entry
//! numbers, each beside its key's hash (linear probing, backward-shift deletion, so no
//! tombstones), that doubles when three quarters full — one shard at a time, so the cache never
//! stops as a whole to grow. The hash beside the number lets a probe pass a bucket of another
//! key without reading its entry: a cache miss saved per probe, most of all when a key is absent. LRU lists
//! link entries by index, one list per slab class, so eviction frees a chunk of the class that
//! needs one.

use std::collections::HashMap;

use super::arena::Chunk;
use super::slabs::MAX_CLASSES;

const NIL: u32 = u32::MAX;
/// An index bucket: the key's hash in the high half, entry number + 1 in the low (0 = empty).
type Slot = u64;
const EMPTY: Slot = 0;

fn slot(idx: u32, hash: u32) -> Slot {
    (Slot::from(hash) << 32) | Slot::from(idx + 1)
}

fn slot_hash(slot: Slot) -> u32 {
    (slot >> 32) as u32
}

fn slot_idx(slot: Slot) -> u32 {
    (slot as u32).wrapping_sub(1)
}

/// The segments of a class's LRU (memcached's segmented LRU): new items enter hot; items that
/// stay unread drift to cold, where eviction looks first; items read in cold move to warm.
pub const HOT: u8 = 0;
/// Items read again after they left hot.
pub const WARM: u8 = 1;
/// Items not read lately: evicted first.
pub const COLD: u8 = 2;
/// Items stored with a TTL of at most `temporary_ttl` (`-o temporary_ttl`): never moved, never
/// evicted, only reclaimed once expired.
pub const TEMP: u8 = 3;
/// Segments per class.
pub const SEGMENTS: usize = 4;

/// One LRU list: a slab class and a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lru {
    /// Slab class.
    pub class: u8,
    /// [`HOT`], [`WARM`] or [`COLD`].
    pub seg: u8,
}

impl Lru {
    fn index(self) -> usize {
        self.class as usize * SEGMENTS + self.seg as usize
    }
}

/// A stored item's handle: its first chunk and its place in the LRU.
#[derive(Debug)]
pub struct Entry {
    /// The item's first chunk (header, key, value).
    pub chunk: Chunk,
    /// The key's hash (to find the entry's bucket when it is removed).
    pub hash: u32,
    prev: u32,
    next: u32,
}

/// The table of one shard.
#[derive(Debug)]
pub struct Table {
    entries: Vec<Option<Entry>>,
    free: Vec<u32>,
    /// Hash and entry number + 1 per bucket ([`Slot`]).
    index: Vec<Slot>,
    len: usize,
    /// Head (most recent) and tail per list.
    lru: Box<[(u32, u32)]>,
    /// Items per list.
    lru_len: Box<[u32]>,
    /// The further chunks of chained (large) items, by entry number.
    chains: HashMap<u32, Box<[Chunk]>>,
    /// Items per class.
    class_len: [u32; MAX_CLASSES],
}

impl Table {
    /// A table whose index holds about `capacity` items before it first grows, with entry
    /// space reserved for `expected` items. The reservation is address space until used (a
    /// large allocation is mapped lazily), and it spares the entry vector the copies and the
    /// heap fragmentation of growing by doubling.
    pub fn with_capacity(capacity: usize, expected: usize) -> Table {
        let buckets = (capacity * 4 / 3).next_power_of_two().max(16);
        Table {
            entries: Vec::with_capacity(expected),
            free: Vec::new(),
            index: vec![EMPTY; buckets],
            len: 0,
            lru: vec![(NIL, NIL); MAX_CLASSES * SEGMENTS].into_boxed_slice(),
            lru_len: vec![0; MAX_CLASSES * SEGMENTS].into_boxed_slice(),
            chains: HashMap::new(),
            class_len: [0; MAX_CLASSES],
        }
    }

    /// Items held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Items of one class.
    pub fn class_len(&self, class: u8) -> usize {
        self.class_len[class as usize] as usize
    }

    /// Items in one list.
    pub fn lru_len(&self, lru: Lru) -> usize {
        self.lru_len[lru.index()] as usize
    }

    /// Bytes the index and entries take (for `hash_bytes`).
    pub fn overhead_bytes(&self) -> usize {
        self.index.len() * std::mem::size_of::<Slot>()
            + self.entries.capacity() * std::mem::size_of::<Option<Entry>>()
    }

    /// Index buckets (for `hash_power_level`).
    pub fn buckets(&self) -> usize {
        self.index.len()
    }

    fn mask(&self) -> usize {
        self.index.len() - 1
    }

    /// Finds the entry with this hash for which `is_key` holds.
    pub fn find(&self, hash: u32, mut is_key: impl FnMut(&Entry) -> bool) -> Option<u32> {
        let mask = self.mask();
        let mut pos = hash as usize & mask;
        loop {
            let slot = self.index[pos];
            if slot == EMPTY {
                return None;
            }
            if slot_hash(slot) == hash {
                let idx = slot_idx(slot);
                if is_key(self.entry(idx)) {
                    return Some(idx);
                }
            }
            pos = (pos + 1) & mask;
        }
    }

    /// An entry by number.
    pub fn entry(&self, idx: u32) -> &Entry {
        match self.entries.get(idx as usize).and_then(Option::as_ref) {
            Some(e) => e,
            None => panic!("table entry {idx} is empty"),
        }
    }

    /// An entry by number, mutably.
    pub fn entry_mut(&mut self, idx: u32) -> &mut Entry {
        match self.entries.get_mut(idx as usize).and_then(Option::as_mut) {
            Some(e) => e,
            None => panic!("table entry {idx} is empty"),
        }
    }

    /// The further chunks of a chained item.
    pub fn chain(&self, idx: u32) -> &[Chunk] {
        self.chains.get(&idx).map_or(&[], |c| c)
    }

    /// Adds an item (its key must not be in the table) at the head of its class's LRU.
    pub fn insert(
        &mut self,
        chunk: Chunk,
        hash: u32,
        lru: Lru,
        chain: Option<Box<[Chunk]>>,
    ) -> u32 {
        if (self.len + 1) * 4 > self.index.len() * 3 {
            self.grow();
        }
        let entry = Entry {
            chunk,
            hash,
            prev: NIL,
            next: NIL,
        };
        let idx = match self.free.pop() {
            Some(idx) => {
                self.entries[idx as usize] = Some(entry);
                idx
            }
            None => {
                self.entries.push(Some(entry));
                (self.entries.len() - 1) as u32
            }
        };
        if let Some(chain) = chain {
            self.chains.insert(idx, chain);
        }
        self.place(idx, hash);
        self.len += 1;
        self.class_len[lru.class as usize] += 1;
        self.link_head(idx, lru);
        idx
    }

    /// Removes an item, returning its first chunk and any further ones.
    pub fn remove(&mut self, idx: u32, lru: Lru) -> (Chunk, Option<Box<[Chunk]>>) {
        self.unlink(idx, lru);
        let hash = self.entry(idx).hash;
        self.unplace(idx, hash);
        let entry = match self.entries[idx as usize].take() {
            Some(e) => e,
            None => panic!("table entry {idx} is empty"),
        };
        self.free.push(idx);
        self.len -= 1;
        self.class_len[lru.class as usize] -= 1;
        (entry.chunk, self.chains.remove(&idx))
    }

    /// Moves an entry to the head of its class's LRU.
    pub fn bump(&mut self, idx: u32, lru: Lru) {
        if self.lru[lru.index()].0 != idx {
            self.unlink(idx, lru);
            self.link_head(idx, lru);
        }
    }

    /// Moves an entry from one list to the head of another.
    pub fn move_to(&mut self, idx: u32, from: Lru, to: Lru) {
        self.unlink(idx, from);
        self.link_head(idx, to);
    }

    /// The least recently used entry of a class.
    pub fn lru_tail(&self, lru: Lru) -> Option<u32> {
        let tail = self.lru[lru.index()].1;
        (tail != NIL).then_some(tail)
    }

    /// Moves an entry's item to another first chunk (the slab mover's rescue), returning the
    /// old one.
    pub fn swap_chunk(&mut self, idx: u32, chunk: Chunk) -> Chunk {
        std::mem::replace(&mut self.entry_mut(idx).chunk, chunk)
    }

    /// The entries whose item has a chunk in `page` (the slab mover empties a page with it).
    /// One pass over the entries, in memory order: a page holds items of every age, so
    /// walking the class's LRU would visit as many entries, out of order.
    pub fn entries_in_page(&self, page: usize) -> Vec<u32> {
        let mut found: Vec<u32> = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.as_ref().is_some_and(|e| e.chunk.page() == page))
            .map(|(idx, _)| idx as u32)
            .collect();
        for (&idx, chain) in &self.chains {
            if chain.iter().any(|c| c.page() == page) && self.entry(idx).chunk.page() != page {
                found.push(idx);
            }
        }
        found
    }

    /// The most recently used entry of a list.
    pub fn lru_head(&self, lru: Lru) -> Option<u32> {
        let head = self.lru[lru.index()].0;
        (head != NIL).then_some(head)
    }

    /// The entry after `idx` towards the tail of its list (less recently used).
    pub fn lru_older(&self, idx: u32) -> Option<u32> {
        let next = self.entry(idx).next;
        (next != NIL).then_some(next)
    }

    /// The entry after `idx` towards the head of its class's LRU (more recently used).
    pub fn lru_newer(&self, idx: u32) -> Option<u32> {
        let prev = self.entry(idx).prev;
        (prev != NIL).then_some(prev)
    }

    /// The first occupied entry number at or after `from` (for walks that may pause).
    pub fn next_entry(&self, from: u32) -> Option<u32> {
        let start = from as usize;
        self.entries
            .get(start..)?
            .iter()
            .position(Option::is_some)
            .map(|i| (start + i) as u32)
    }

    fn place(&mut self, idx: u32, hash: u32) {
        let mask = self.mask();
        let mut pos = hash as usize & mask;
        while self.index[pos] != EMPTY {
            pos = (pos + 1) & mask;
        }
        self.index[pos] = slot(idx, hash);
    }

    fn unplace(&mut self, idx: u32, hash: u32) {
        let mask = self.mask();
        let mut pos = hash as usize & mask;
        let wanted = slot(idx, hash);
        while self.index[pos] != wanted {
            pos = (pos + 1) & mask;
        }
        // Backward-shift deletion: pull later members of the probe run into the gap.
        let mut gap = pos;
        let mut next = (gap + 1) & mask;
        while self.index[next] != EMPTY {
            let home = slot_hash(self.index[next]) as usize & mask;
            // Move it if its home is not in (gap, next] cyclically.
            let dist_next = next.wrapping_sub(home) & mask;
            let dist_gap = next.wrapping_sub(gap) & mask;
            if dist_next >= dist_gap {
                self.index[gap] = self.index[next];
                gap = next;
            }
            next = (next + 1) & mask;
        }
        self.index[gap] = EMPTY;
    }

    /// Makes room for `more` items beyond those held, so that inserting them grows the index
    /// at most once (now) instead of at every doubling on the way.
    pub fn reserve(&mut self, more: usize) {
        let wanted = ((self.len + more) * 4 / 3 + 1).next_power_of_two();
        if wanted > self.index.len() {
            self.rebuild_index(wanted);
        }
        self.entries.reserve(more.saturating_sub(self.free.len()));
    }

    fn grow(&mut self) {
        self.rebuild_index(self.index.len() * 2);
    }

    /// Places every entry again in an index of `buckets` (a power of two).
    fn rebuild_index(&mut self, buckets: usize) {
        let doubled = vec![EMPTY; buckets];
        let old = std::mem::replace(&mut self.index, doubled);
        for s in old.into_iter().filter(|&s| s != EMPTY) {
            self.place(slot_idx(s), slot_hash(s));
        }
    }

    fn link_head(&mut self, idx: u32, lru: Lru) {
        let (head, tail) = self.lru[lru.index()];
        {
            let e = self.entry_mut(idx);
            e.prev = NIL;
            e.next = head;
        }
        if head != NIL {
            self.entry_mut(head).prev = idx;
        }
        self.lru[lru.index()] = (idx, if tail == NIL { idx } else { tail });
        self.lru_len[lru.index()] += 1;
    }

    fn unlink(&mut self, idx: u32, lru: Lru) {
        let (prev, next) = {
            let e = self.entry(idx);
            (e.prev, e.next)
        };
        self.lru_len[lru.index()] -= 1;
        let lru = &mut self.lru[lru.index()];
        if prev == NIL {
            lru.0 = next;
        }
        if next == NIL {
            lru.1 = prev;
        }
        if prev != NIL {
            self.entry_mut(prev).next = next;
        }
        if next != NIL {
            self.entry_mut(next).prev = prev;
        }
        let e = self.entry_mut(idx);
        e.prev = NIL;
        e.next = NIL;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::arena::{Arena, PAGE_SIZE};

    fn l(class: u8) -> Lru {
        Lru { class, seg: HOT }
    }

    fn chunks(arena: &Arena, n: usize) -> Vec<Chunk> {
        let mut carving = arena.carve(arena.alloc_page().expect("page"), 64, 1);
        (0..n)
            .map(|_| arena.cut(&mut carving).expect("chunk"))
            .collect()
    }

    #[test]
    fn finds_removes_and_grows() {
        let arena = Arena::new(PAGE_SIZE, false).expect("map");
        let mut t = Table::with_capacity(4, 0);
        let mut ids = Vec::new();
        // Colliding hashes (same low bits) exercise probing and backward shifts.
        for (i, c) in chunks(&arena, 200).into_iter().enumerate() {
            let hash = (i as u32 % 7) * 1024 + (i as u32 / 7) % 3;
            ids.push((t.insert(c, hash, l(1), None), hash, i));
        }
        assert_eq!(t.len(), 200);
        assert!(t.buckets() >= 256);
        for &(idx, hash, _) in &ids {
            assert_eq!(t.find(hash, |e| std::ptr::eq(e, t.entry(idx))), Some(idx));
        }
        for &(idx, _, i) in &ids {
            if i % 2 == 0 {
                t.remove(idx, l(1));
            }
        }
        for &(idx, hash, i) in &ids {
            let found = t.find(hash, |e| e.chunk.offset() == 64 * i);
            assert_eq!(found, (i % 2 == 1).then_some(idx), "item {i}");
        }
        assert_eq!(t.len(), 100);
    }

    #[test]
    fn a_reserved_table_holds_what_was_reserved_without_growing() {
        let arena = Arena::new(PAGE_SIZE, false).expect("map");
        let mut t = Table::with_capacity(4, 0);
        let mut c = chunks(&arena, 300).into_iter();
        let first = t.insert(c.next().expect("chunk"), 7, l(1), None);
        t.reserve(299);
        let buckets = t.buckets();
        assert!(buckets * 3 >= 300 * 4, "{buckets} buckets for 300 items");
        let ids: Vec<u32> = c
            .enumerate()
            .map(|(i, chunk)| t.insert(chunk, i as u32 * 31, l(1), None))
            .collect();
        assert_eq!((t.len(), t.buckets()), (300, buckets));
        assert_eq!(t.find(7, |e| std::ptr::eq(e, t.entry(first))), Some(first));
        for (i, &idx) in ids.iter().enumerate() {
            let hash = i as u32 * 31;
            assert_eq!(t.find(hash, |e| std::ptr::eq(e, t.entry(idx))), Some(idx));
        }
    }

    #[test]
    fn lru_is_per_class() {
        let arena = Arena::new(PAGE_SIZE, false).expect("map");
        let mut t = Table::with_capacity(16, 16);
        let mut c = chunks(&arena, 5).into_iter();
        let a = t.insert(c.next().expect("a"), 1, l(1), None);
        let b = t.insert(c.next().expect("b"), 2, l(1), None);
        let x = t.insert(c.next().expect("x"), 3, l(2), None);
        assert_eq!(t.lru_tail(l(1)), Some(a));
        assert_eq!(t.lru_tail(l(2)), Some(x));
        t.bump(a, l(1));
        assert_eq!(t.lru_tail(l(1)), Some(b));
        let cold = Lru {
            class: 1,
            seg: COLD,
        };
        t.move_to(b, l(1), cold);
        assert_eq!(t.lru_len(l(1)), 1);
        assert_eq!(t.lru_tail(cold), Some(b));
        t.remove(b, cold);
        assert_eq!(t.lru_tail(l(1)), Some(a));
        t.remove(a, l(1));
        assert_eq!(t.lru_tail(l(1)), None);
        assert_eq!(t.lru_tail(l(2)), Some(x));
        let chain: Box<[Chunk]> = vec![c.next().expect("extra")].into_boxed_slice();
        let big = t.insert(c.next().expect("big"), 9, l(3), Some(chain));
        assert_eq!(t.chain(big).len(), 1);
        let (_, extra) = t.remove(big, l(3));
        assert_eq!(extra.map(|e| e.len()), Some(1));
    }
}
