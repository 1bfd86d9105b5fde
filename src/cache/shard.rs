//! One shard of the cache: a hash table of items plus an LRU list through them.
//!
//! Items sit in a slot vector and the LRU list links slots by index, so a bump or an unlink is
//! O(1) with no allocation. The table maps a key to its slot. The key bytes are shared between
//! the table and the item (one allocation).

use std::collections::HashMap;
use std::sync::Arc;

use super::clock::RelTime;
use super::hash::BuildKeyHasher;

const NIL: u32 = u32::MAX;

/// A stored item.
#[derive(Debug)]
pub struct Item {
    /// The key.
    pub key: Arc<[u8]>,
    /// The value, without the trailing `\r\n`.
    pub data: Box<[u8]>,
    /// The client's opaque flags.
    pub flags: u32,
    /// When the item expires (0 = never).
    pub exptime: RelTime,
    /// Last access time, as memcached's `it->time` (updated at most once a minute per item).
    pub time: RelTime,
    /// CAS unique id (0 when CAS is disabled).
    pub cas: u64,
    /// Whether any client has read the item since it was stored.
    pub fetched: bool,
    /// Marked stale by a meta invalidation (`md … I`, `ms … I`): still served, flagged `X`.
    pub stale: bool,
    /// A meta get already handed out the right to recache it (`W` sent; later ones see `Z`).
    pub token_sent: bool,
    /// The key arrived base64-encoded (meta `b` flag) and is returned encoded.
    pub key_binary: bool,
    /// Bytes charged against the memory limit for this item.
    pub charge: usize,
}

#[derive(Debug)]
struct Slot {
    item: Option<Item>,
    prev: u32,
    next: u32,
}

/// A hash table with an LRU order (head = most recent).
#[derive(Debug, Default)]
pub struct Shard {
    map: HashMap<Arc<[u8]>, u32, BuildKeyHasher>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    head: Option<u32>,
    tail: Option<u32>,
}

impl Shard {
    /// Number of items held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Table capacity in entries (for the `hash_bytes` statistic).
    pub fn capacity(&self) -> usize {
        self.map.capacity()
    }

    /// Makes room in the table for `additional` more items.
    pub fn reserve(&mut self, additional: usize) {
        self.map.reserve(additional);
    }

    /// Finds a key's slot.
    pub fn find(&self, key: &[u8]) -> Option<u32> {
        self.map.get(key).copied()
    }

    /// The item in a slot returned by `find`, `insert` or `tail`.
    pub fn item(&self, slot: u32) -> &Item {
        match self.slots.get(slot as usize).and_then(|s| s.item.as_ref()) {
            Some(item) => item,
            // Slots handed out by this shard always hold an item until `remove`.
            None => panic!("shard slot {slot} is empty"),
        }
    }

    /// Mutable access to an item in a live slot.
    pub fn item_mut(&mut self, slot: u32) -> &mut Item {
        match self
            .slots
            .get_mut(slot as usize)
            .and_then(|s| s.item.as_mut())
        {
            Some(item) => item,
            None => panic!("shard slot {slot} is empty"),
        }
    }

    /// The least recently used item's slot.
    pub fn tail(&self) -> Option<u32> {
        self.tail
    }

    /// Inserts an item that is not in the table, at the head of the LRU.
    pub fn insert(&mut self, item: Item) -> u32 {
        let key = Arc::clone(&item.key);
        let slot = Slot {
            item: Some(item),
            prev: NIL,
            next: NIL,
        };
        let idx = match self.free.pop() {
            Some(idx) => {
                self.slots[idx as usize] = slot;
                idx
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        self.map.insert(key, idx);
        self.link_head(idx);
        idx
    }

    /// Replaces the item in a live slot with one of the same key, moving it to the LRU head;
    /// returns the old item.
    pub fn replace(&mut self, slot: u32, item: Item) -> Item {
        let old = std::mem::replace(self.item_mut(slot), item);
        self.bump(slot);
        old
    }

    /// Removes an item, returning it.
    pub fn remove(&mut self, slot: u32) -> Item {
        self.unlink(slot);
        let item = match self.slots[slot as usize].item.take() {
            Some(item) => item,
            None => panic!("shard slot {slot} is empty"),
        };
        self.map.remove(&item.key[..]);
        self.free.push(slot);
        item
    }

    /// Moves a slot to the head of the LRU.
    pub fn bump(&mut self, slot: u32) {
        if self.head != Some(slot) {
            self.unlink(slot);
            self.link_head(slot);
        }
    }

    fn link_head(&mut self, idx: u32) {
        let old_head = self.head;
        {
            let s = &mut self.slots[idx as usize];
            s.prev = NIL;
            s.next = old_head.unwrap_or(NIL);
        }
        if let Some(h) = old_head {
            self.slots[h as usize].prev = idx;
        }
        self.head = Some(idx);
        if self.tail.is_none() {
            self.tail = Some(idx);
        }
    }

    fn unlink(&mut self, idx: u32) {
        let (prev, next) = {
            let s = &self.slots[idx as usize];
            (s.prev, s.next)
        };
        if prev == NIL {
            self.head = (next != NIL).then_some(next);
        } else {
            self.slots[prev as usize].next = next;
        }
        if next == NIL {
            self.tail = (prev != NIL).then_some(prev);
        } else {
            self.slots[next as usize].prev = prev;
        }
        let s = &mut self.slots[idx as usize];
        s.prev = NIL;
        s.next = NIL;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(key: &str) -> Item {
        Item {
            key: Arc::from(key.as_bytes()),
            data: Box::from(&b"v"[..]),
            flags: 0,
            exptime: 0,
            time: 0,
            cas: 0,
            fetched: false,
            stale: false,
            token_sent: false,
            key_binary: false,
            charge: 1,
        }
    }

    #[test]
    fn lru_order_follows_inserts_and_bumps() {
        let mut s = Shard::default();
        let a = s.insert(item("a"));
        let b = s.insert(item("b"));
        let c = s.insert(item("c"));
        assert_eq!(s.tail(), Some(a));
        s.bump(a);
        assert_eq!(s.tail(), Some(b));
        assert_eq!(&*s.remove(b).key, b"b");
        assert_eq!(s.tail(), Some(c));
        assert_eq!(s.find(b"b"), None);
        let d = s.insert(item("d"));
        assert_eq!(d, b, "freed slot is reused");
        assert_eq!(s.len(), 3);
        s.remove(c);
        s.remove(a);
        assert_eq!(s.tail(), Some(d));
        s.remove(d);
        assert_eq!(s.len(), 0);
        assert_eq!(s.tail(), None);
    }
}
