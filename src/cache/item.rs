//! The item header, as laid out at the start of an item's first chunk.
//!
//! memcached spends 48 bytes of header (plus a NUL after the key and `\r\n` after the value)
//! per item; this layout spends 16, plus 8 for a CAS id when CAS is on and 4 for client flags
//! when they are not zero (memcached also stores zero flags in no space):
//!
//! ```text
//! 0  nkey      u8    key length (≤ 250)
//! 1  bits      u8    FETCHED | STALE | TOKEN_SENT | KEY_BINARY | ACTIVE | LRU segment | HAS_FLAGS
//! 2  class     u8    slab class of the chunks
//! 3  state     u8    LIVE: a scan of the arena finds items by it (arena::STATE_AT); UNLINKED
//!                     once removed while a reply still reads it
//! 4  nbytes    u32   value length
//! 8  exptime   u32   relative expiry (0 = never)
//! 12 time      u32   relative last access
//! 16 cas       u64   only when CAS is on
//! .. flags     u32   only when not zero
//! .. key, then value (continued in further chunks when the item is chained)
//! ```
//!
//! A chained item's further chunks start with 16 bytes that name the item they belong to, so
//! that the arena alone tells which chunks make up which item, in which order:
//!
//! ```text
//! 3  state     u8    CONTINUATION
//! 4  index     u32   1 for the chunk after the first, and so on
//! 8  head      u64   offset of the item's first chunk in the arena
//! 16 value bytes
//! ```
//!
//! Everything here is safe byte slicing over a chunk the caller owns.

use super::arena::STATE_AT;

/// Changes whenever an item's header, or the marks and links of its chunks, change: a cache
/// file written by a build of another item layout is not read.
pub const LAYOUT_VERSION: u64 = 1;

/// Read since stored.
pub const FETCHED: u8 = 1;
/// Marked stale by a meta invalidation.
pub const STALE: u8 = 2;
/// A recache token was handed out.
pub const TOKEN_SENT: u8 = 4;
/// The key arrived base64-encoded.
pub const KEY_BINARY: u8 = 8;

/// Read since it last moved between LRU segments (segmented LRU).
pub const ACTIVE: u8 = 16;
/// Client flags follow the fixed part (they are not zero).
pub const HAS_FLAGS: u8 = 128;
/// Where the LRU segment ([`super::table::HOT`], `WARM`, `COLD`) is kept in the bits.
const SEG_SHIFT: u8 = 5;
const SEG_MASK: u8 = 0b11 << SEG_SHIFT;

/// The state byte of an item's first chunk.
pub const LIVE: u8 = 0xA7;
/// The state byte of a removed item's first chunk while a reply still reads its value
/// ([`super::pin`]): a scan of the arena must not find it live.
pub const UNLINKED: u8 = 0x3D;
/// The state byte of a chained item's further chunks.
pub const CONTINUATION: u8 = 0x5C;
/// Bytes at the start of a further chunk before its part of the value.
pub const CONTINUATION_HEADER: usize = 16;

/// Header bytes before the optional fields.
const BASE_HEADER: usize = 16;

fn cas_len(use_cas: bool) -> usize {
    if use_cas {
        8
    } else {
        0
    }
}

/// Header size of an item with these bits, in a cache with or without CAS ids.
pub fn header_len(bits: u8, use_cas: bool) -> usize {
    BASE_HEADER + cas_len(use_cas) + if bits & HAS_FLAGS != 0 { 4 } else { 0 }
}

/// Header size of a new item with these client flags.
pub fn header_len_for(flags: u32, use_cas: bool) -> usize {
    BASE_HEADER + cas_len(use_cas) + if flags != 0 { 4 } else { 0 }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// The decoded header fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Header {
    /// Key length.
    pub nkey: u8,
    /// State bits.
    pub bits: u8,
    /// Slab class.
    pub class: u8,
    /// Value length.
    pub nbytes: u32,
    /// Expiry.
    pub exptime: u32,
    /// Last access.
    pub time: u32,
    /// Client flags.
    pub flags: u32,
    /// CAS id (0 without CAS).
    pub cas: u64,
}

impl Header {
    /// Reads a header from the start of a first chunk.
    pub fn read(b: &[u8], use_cas: bool) -> Header {
        let mut cas = 0;
        if use_cas {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[BASE_HEADER..BASE_HEADER + 8]);
            cas = u64::from_le_bytes(w);
        }
        let bits = b[1];
        let flags = if bits & HAS_FLAGS != 0 {
            u32_at(b, BASE_HEADER + cas_len(use_cas))
        } else {
            0
        };
        Header {
            nkey: b[0],
            bits,
            class: b[2],
            nbytes: u32_at(b, 4),
            exptime: u32_at(b, 8),
            time: u32_at(b, 12),
            flags,
            cas,
        }
    }

    /// Writes the header to the start of a first chunk (the flags field only if not zero).
    pub fn write(&self, b: &mut [u8], use_cas: bool) {
        let has_flags = self.flags != 0;
        b[0] = self.nkey;
        b[1] = (self.bits & !HAS_FLAGS) | if has_flags { HAS_FLAGS } else { 0 };
        b[2] = self.class;
        b[STATE_AT] = LIVE;
        put_u32(b, 4, self.nbytes);
        put_u32(b, 8, self.exptime);
        put_u32(b, 12, self.time);
        if use_cas {
            b[BASE_HEADER..BASE_HEADER + 8].copy_from_slice(&self.cas.to_le_bytes());
        }
        if has_flags {
            put_u32(b, BASE_HEADER + cas_len(use_cas), self.flags);
        }
    }

    /// This item's header size.
    pub fn len(&self, use_cas: bool) -> usize {
        header_len_for(self.flags, use_cas)
    }

    /// Whether a bit is set.
    pub fn has(&self, bit: u8) -> bool {
        self.bits & bit != 0
    }

    /// The LRU list the item is on.
    pub fn lru(&self) -> super::table::Lru {
        super::table::Lru {
            class: self.class,
            seg: (self.bits & SEG_MASK) >> SEG_SHIFT,
        }
    }

    /// Records the LRU segment the item moves to.
    pub fn set_seg(&mut self, seg: u8) {
        self.bits = (self.bits & !SEG_MASK) | ((seg << SEG_SHIFT) & SEG_MASK);
    }
}

/// Marks a further chunk of a chained item: the `index`th after the first, which lies at
/// `head` in the arena.
pub fn write_continuation(b: &mut [u8], head: usize, index: u32) {
    b[..STATE_AT].fill(0);
    b[STATE_AT] = CONTINUATION;
    put_u32(b, 4, index);
    b[8..16].copy_from_slice(&(head as u64).to_le_bytes());
}

/// What a further chunk says it is: the offset of its item's first chunk and its index.
pub fn read_continuation(b: &[u8]) -> (usize, u32) {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[8..16]);
    (u64::from_le_bytes(w) as usize, u32_at(b, 4))
}

/// Writes only the bits byte.
pub fn set_bits(b: &mut [u8], bits: u8) {
    // HAS_FLAGS describes the layout, which only a whole header write may change.
    b[1] = (bits & !HAS_FLAGS) | (b[1] & HAS_FLAGS);
}

/// Writes only the access time.
pub fn set_time(b: &mut [u8], time: u32) {
    put_u32(b, 12, time);
}

/// Writes only the CAS id (no-op without CAS).
pub fn set_cas(b: &mut [u8], cas: u64, use_cas: bool) {
    if use_cas {
        b[BASE_HEADER..BASE_HEADER + 8].copy_from_slice(&cas.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_with_and_without_cas() {
        let h = Header {
            nkey: 250,
            bits: FETCHED | KEY_BINARY,
            class: 39,
            nbytes: 1 << 20,
            exptime: 12345,
            time: 62,
            flags: u32::MAX,
            cas: u64::MAX - 1,
        };
        let mut b = [0u8; 28];
        h.write(&mut b, true);
        assert_eq!(
            Header::read(&b, true),
            Header {
                bits: h.bits | HAS_FLAGS,
                ..h
            }
        );
        assert_eq!(header_len(b[1], true), 28);
        let mut b = [0u8; 20];
        h.write(&mut b, false);
        assert_eq!(
            Header::read(&b, false),
            Header {
                cas: 0,
                bits: h.bits | HAS_FLAGS,
                ..h
            }
        );
        let zero = Header { flags: 0, ..h };
        let mut b = [0u8; 24];
        zero.write(&mut b, true);
        assert_eq!(Header::read(&b, true), zero);
        assert_eq!(header_len(b[1], true), 24, "zero flags take no space");
        set_time(&mut b, 8);
        set_bits(&mut b, STALE);
        let r = Header::read(&b, false);
        assert_eq!((r.time, r.bits), (8, STALE));
    }
}
