//! Pins: large values written to a socket straight from the arena.
//!
//! A get of a large value does not copy it into the connection's output. The reply refers to
//! the item's chunks ([`Pin`]), and the socket reads them with a vectored write once the shard
//! lock is released — as memcached writes from an item it holds a reference to. While a reply
//! refers to an item, the item is pinned, in its shard's [`Pins`]:
//! - a delete, an overwrite, an eviction or the slab mover unlinks it as usual (every other
//!   reader stops seeing it at once), but its chunks are not given back: they wait, marked
//!   [`item::UNLINKED`] so that a restart does not bring them back, until the last reply that
//!   refers to them is written or dropped;
//! - nothing writes its value: an incr/decr copies a pinned item instead of rewriting it in
//!   place. (Every other in-place change touches only the header, which lies before the value.)
//!
//! A pin releases itself when dropped, so a reply that is written, dropped by a close, or left
//! behind by a client that never reads holds its item exactly as long as the connection holds
//! the reply.

use std::collections::HashMap;
use std::sync::Arc;

use super::arena::{Chunk, PinnedBytes, STATE_AT};
use super::{item, Cache, Found, Shard};

/// The items of one shard that replies refer to, by the arena offset of their first chunk,
/// and the pages that chunks reserved for this shard's keys lie in ([`super::Reservation`]).
#[derive(Debug, Default)]
pub(super) struct Pins {
    held: HashMap<usize, Held>,
    /// Page → chunks of it that reservations hold.
    reserved: HashMap<usize, u32>,
}

/// One pinned item: how many replies refer to it, the pages its chunks lie in and, once it
/// is unlinked, its chunks.
#[derive(Debug)]
struct Held {
    replies: u32,
    pages: Box<[usize]>,
    unlinked: Option<Unlinked>,
}

/// The chunks of an unlinked item that replies still read.
#[derive(Debug)]
struct Unlinked {
    class: u8,
    first: Chunk,
    chain: Option<Box<[Chunk]>>,
}

/// A reply's hold on an item's value: the value's bytes in the arena, readable until the pin
/// is dropped.
pub struct Pin {
    cache: Arc<Cache>,
    shard: u8,
    head: usize,
    parts: Box<[PinnedBytes]>,
    len: usize,
}

impl Pin {
    /// The value's length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value's pieces in order, each an address range in the arena.
    pub fn parts(&self) -> &[PinnedBytes] {
        &self.parts
    }

    /// Appends a copy of the value to `out` (for a transport that cannot write from the
    /// arena).
    pub fn copy_to(&self, out: &mut Vec<u8>) {
        for part in self.parts.iter() {
            // SAFETY: `self` is alive, so its item is pinned: its chunks are neither freed nor
            // written (see the module's rules).
            unsafe { part.copy_to(out) };
        }
    }
}

impl std::fmt::Debug for Pin {
    // Not the cache it holds.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pin")
            .field("shard", &self.shard)
            .field("head", &self.head)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        self.cache.unpin(self.shard as usize, self.head);
    }
}

impl Pins {
    /// Whether the item whose first chunk starts at `head` is pinned.
    fn holds(&self, head: usize) -> bool {
        !self.held.is_empty() && self.held.contains_key(&head)
    }

    /// A reservation holds chunks in `pages` (one entry per chunk).
    pub(super) fn reserve_pages(&mut self, pages: &[usize]) {
        for &page in pages {
            *self.reserved.entry(page).or_insert(0) += 1;
        }
    }

    /// A reservation gave its chunks in `pages` back, or linked them into an item.
    pub(super) fn release_pages(&mut self, pages: &[usize]) {
        for page in pages {
            if let Some(count) = self.reserved.get_mut(page) {
                *count -= 1;
                if *count == 0 {
                    self.reserved.remove(page);
                }
            }
        }
    }

    /// Whether a reservation holds a chunk of `page`.
    pub(super) fn is_reserved(&self, page: usize) -> bool {
        !self.reserved.is_empty() && self.reserved.contains_key(&page)
    }
}

impl Cache {
    /// Pins a found item of shard `s` for a reply.
    pub(super) fn pin(self: &Arc<Self>, s: usize, shard: &mut Shard, found: &Found) -> Pin {
        let entry = shard.table.entry(found.idx);
        let arena = self.arena();
        let start = found.header.len(self.use_cas) + found.header.nkey as usize;
        let len = found.header.nbytes as usize;
        let first_len = len.min(arena.chunk_len(&entry.chunk) - start);
        let mut parts = Vec::with_capacity(1 + shard.table.chain(found.idx).len());
        parts.push(arena.pinned_bytes(&entry.chunk, start..start + first_len));
        let mut left = len - first_len;
        for chunk in shard.table.chain(found.idx) {
            let take = left.min(arena.chunk_len(chunk) - item::CONTINUATION_HEADER);
            let from = item::CONTINUATION_HEADER;
            parts.push(arena.pinned_bytes(chunk, from..from + take));
            left -= take;
        }
        let head = entry.chunk.offset();
        let chain = shard.table.chain(found.idx);
        let held = shard.pins.held.entry(head).or_insert_with(|| {
            let mut pages: Vec<usize> = std::iter::once(&entry.chunk)
                .chain(chain)
                .map(Chunk::page)
                .collect();
            pages.dedup();
            Held {
                replies: 0,
                pages: pages.into_boxed_slice(),
                unlinked: None,
            }
        });
        held.replies += 1;
        Pin {
            cache: Arc::clone(self),
            shard: s as u8,
            head,
            parts: parts.into_boxed_slice(),
            len,
        }
    }

    /// Pins a found item of shard `s` if `pinning` asks for values of its size (`pinning`:
    /// the cache to hold, and the smallest value to pin).
    pub(super) fn pin_if_asked(
        pinning: Option<(&Arc<Cache>, usize)>,
        s: usize,
        shard: &mut Shard,
        found: &Found,
    ) -> Option<Pin> {
        let (owner, from) = pinning?;
        (found.header.nbytes as usize >= from).then(|| owner.pin(s, shard, found))
    }

    /// Whether the item at entry `idx` is pinned by a reply.
    pub(super) fn is_pinned(&self, shard: &Shard, idx: u32) -> bool {
        shard.pins.holds(shard.table.entry(idx).chunk.offset())
    }

    /// The pages that hold chunks of pinned items, live or unlinked, or reserved chunks (a page
    /// move avoids them: they empty only once their replies are written, or their values
    /// received).
    pub(super) fn pinned_pages(&self) -> Vec<usize> {
        let mut pages = Vec::new();
        for s in 0..super::SHARDS {
            let shard = self.shard(s);
            let pins = &shard.pins;
            pages.extend(pins.held.values().flat_map(|h| h.pages.iter().copied()));
            pages.extend(pins.reserved.keys().copied());
        }
        pages.sort_unstable();
        pages.dedup();
        pages
    }

    /// Gives an unlinked item's chunks back to the allocator — or, while replies still read
    /// them, keeps them until the last of those is done.
    pub(super) fn release_chunks(
        &self,
        shard: &mut Shard,
        class: u8,
        mut first: Chunk,
        chain: Option<Box<[Chunk]>>,
    ) {
        let pins = &mut shard.pins.held;
        let held = (!pins.is_empty())
            .then(|| pins.get_mut(&first.offset()))
            .flatten();
        if let Some(held) = held {
            self.arena().bytes_mut(&mut first)[STATE_AT] = item::UNLINKED;
            held.unlinked = Some(Unlinked {
                class,
                first,
                chain,
            });
            return;
        }
        self.free_chunks(class, first, chain);
    }

    fn free_chunks(&self, class: u8, first: Chunk, chain: Option<Box<[Chunk]>>) {
        let class = class as usize;
        self.slabs.free(class, first);
        for chunk in chain.into_iter().flat_map(|c| c.into_vec()) {
            self.slabs.free(class, chunk);
        }
    }

    /// A reply is done with the item whose first chunk starts at `head`.
    fn unpin(&self, s: usize, head: usize) {
        let mut shard = self.shard(s);
        let Some(held) = shard.pins.held.get_mut(&head) else {
            debug_assert!(false, "an unpin without its pin");
            return;
        };
        held.replies -= 1;
        if held.replies > 0 {
            return;
        }
        if let Some(gone) = shard.pins.held.remove(&head).and_then(|h| h.unlinked) {
            self.free_chunks(gone.class, gone.first, gone.chain);
        }
    }

    /// Items pinned by replies, and of those, how many are already unlinked.
    pub fn pin_counts(&self) -> (usize, usize) {
        (0..super::SHARDS).fold((0, 0), |(all, unlinked), s| {
            let shard = self.shard(s);
            let held = &shard.pins.held;
            let gone = held.values().filter(|h| h.unlinked.is_some()).count();
            (all + held.len(), unlinked + gone)
        })
    }
}

#[cfg(test)]
mod tests;
