//! Chunk bytes read beyond the borrow of their chunk: the parts of a pinned value, which a
//! reply hands to the kernel (a vectored write) after the shard lock that guards the chunk is
//! released.
//!
//! The arena's rule is that reading a chunk needs a borrow of its handle. A pinned value is
//! the one exception, and it is narrow: [`PinnedBytes`] is an address range, not a reference,
//! and reading through it is sound only while the chunk's owner (the cache's pin table,
//! `cache::pin`) guarantees that those bytes are neither written nor given back. Item headers
//! in the same chunk may still change under the shard lock; a value's bytes lie after them.

use std::ops::Range;

use super::{Arena, Chunk};

/// A range of arena bytes held by a pin: what a vectored write sends.
#[derive(Debug, Clone, Copy)]
pub struct PinnedBytes {
    ptr: *const u8,
    len: usize,
}

// SAFETY: a `PinnedBytes` is an address and a length into the arena mapping, which lives as
// long as the cache; it grants no access by itself. It moves between threads with the
// connection that holds its pin, and is read only under the pin contract above.
unsafe impl Send for PinnedBytes {}

impl Arena {
    /// `range` of `chunk`'s bytes as an address range that outlives the borrow of `chunk`.
    /// The caller pins them: until the returned value is last read, nothing writes or frees
    /// those bytes.
    pub fn pinned_bytes(&self, chunk: &Chunk, range: Range<usize>) -> PinnedBytes {
        let bytes = &self.bytes(chunk)[range];
        PinnedBytes {
            ptr: bytes.as_ptr(),
            len: bytes.len(),
        }
    }
}

impl PinnedBytes {
    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the range is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes from `skip` on, as an `iovec` for `sendmsg`: the kernel reads them while the
    /// pin holds.
    pub fn iovec(&self, skip: usize) -> libc::iovec {
        let skip = skip.min(self.len);
        libc::iovec {
            iov_base: self.ptr.wrapping_add(skip) as *mut libc::c_void,
            iov_len: self.len - skip,
        }
    }

    /// Appends the bytes to `out`.
    ///
    /// # Safety
    /// The bytes are pinned: the pin that produced this range is alive, so nothing writes or
    /// frees them during the copy.
    // SAFETY: unsafe to call: only the caller knows the pin is alive (see above).
    pub unsafe fn copy_to(&self, out: &mut Vec<u8>) {
        out.reserve(self.len);
        // `ptr..ptr + len` lay inside a chunk when the range was made (`pinned_bytes` sliced
        // it), and the mapping outlives every pin. No reference to the arena is formed.
        // SAFETY: the caller keeps the source allocated and unwritten; the destination is the
        // spare capacity just reserved, which cannot overlap the arena.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ptr, out.as_mut_ptr().add(out.len()), self.len);
            out.set_len(out.len() + self.len);
        }
    }
}
