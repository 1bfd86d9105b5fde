//! Reservations: a large value received straight into the chunks that will hold it.
//!
//! A store of a large value takes its item's chunks when the request line arrives, as
//! memcached allocates its item then, and the connection reads the value from the socket into
//! them: the value is not gathered in the connection's buffer and copied afterwards. Until the
//! store commits, the chunks belong to the reservation alone:
//! - no table entry names them, and their state byte still reads free, so a scan of the arena
//!   (a restart) does not take them for an item;
//! - a page move passes over their pages, which empty only once the client has sent the
//!   value (the shard of the reservation's key lists them, beside the pages replies pin).
//!
//! Dropping a reservation — a bad data block, a connection closed halfway, a store refused —
//! gives its chunks back.

use std::sync::Arc;

use super::arena::Chunk;
use super::{item, value_slices, Cache, Chunks};

/// Chunks allocated for an item whose value is still arriving.
pub struct Reservation {
    cache: Arc<Cache>,
    /// The shard of the key, which lists the pages of the chunks.
    shard: usize,
    pub(super) class: u8,
    /// Taken when the item is stored.
    pub(super) chunks: Option<Chunks>,
    pages: Box<[usize]>,
    pub(super) key: Box<[u8]>,
    pub(super) flags: u32,
    /// Where the value starts in the first chunk: after the header and the key.
    start: usize,
    len: usize,
}

impl Reservation {
    /// The value's length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value's place in the chunks, in order, after its first `skip` bytes: `len - skip`
    /// bytes in all, to be received into.
    pub fn value_mut(&mut self, skip: usize) -> impl Iterator<Item = &mut [u8]> {
        let chunks = self
            .chunks
            .as_mut()
            .map_or(&mut [][..], Chunks::as_mut_slice);
        value_slices(self.cache.arena(), chunks, self.start, self.len, skip)
    }
}

impl std::fmt::Debug for Reservation {
    // Not the cache it holds.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation")
            .field("shard", &self.shard)
            .field("class", &self.class)
            .field("pages", &self.pages)
            .field("key", &String::from_utf8_lossy(&self.key))
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(chunks) = self.chunks.take() {
            chunks.free(&self.cache.slabs, self.class);
        }
        self.cache.shard(self.shard).pins.release_pages(&self.pages);
    }
}

impl Cache {
    /// Allocates the chunks of an item of this key, client flags and value length, for its
    /// value to be received into before it is stored ([`Cache::store_reserved`]). `None` when
    /// the item may not be stored or no memory can be made for it: the store then takes the
    /// usual way, and is refused there (and counted) once.
    pub fn reserve(self: &Arc<Self>, key: &[u8], flags: u32, len: usize) -> Option<Reservation> {
        if !self.item_size_ok(key.len(), flags, len) {
            return None;
        }
        let (class, n) = self.layout(flags, key.len(), len)?;
        let mut chunks = self.try_alloc_chunks(class, n)?;
        let pages: Box<[usize]> = chunks.as_mut_slice().iter().map(Chunk::page).collect();
        let (shard, _) = Self::shard_of(key);
        self.shard(shard).pins.reserve_pages(&pages);
        Some(Reservation {
            cache: Arc::clone(self),
            shard,
            class,
            chunks: Some(chunks),
            pages,
            key: key.into(),
            flags,
            start: item::header_len_for(flags, self.use_cas) + key.len(),
            len,
        })
    }
}

#[cfg(test)]
mod tests;
