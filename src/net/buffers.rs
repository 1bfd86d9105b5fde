//! A worker's spare read buffers.
//!
//! A connection needs a read buffer only while it has input to work through. Between requests
//! its buffer goes back here, and the next connection with input takes it: a thousand idle
//! connections hold no buffers, and the few buffers in use stay warm in the cache. (memcached
//! does the same with its per-thread read buffer cache; its `read_buf_bytes_free` counts what
//! waits here.)

use crate::stats::ThreadStats;

/// The size of a fresh read buffer, and so the most one `read` asks for.
pub const READ_CHUNK: usize = 16 * 1024;
/// Buffers larger than this (grown for a big value) are freed instead of kept.
pub const KEEP_CAPACITY: usize = 64 * 1024;
/// The most spare buffers a worker keeps; more are freed.
const MAX_SPARE: usize = 64;

/// Spare read buffers, empty, each with room for at least [`READ_CHUNK`] bytes.
#[derive(Debug, Default)]
pub struct ReadBuffers {
    spare: Vec<Vec<u8>>,
}

impl ReadBuffers {
    /// An empty buffer with room for [`READ_CHUNK`] bytes: a spare one if there is one.
    pub fn take(&mut self, stats: &ThreadStats) -> Vec<u8> {
        match self.spare.pop() {
            Some(buf) => {
                count(stats, -1, -(buf.capacity() as i64));
                buf
            }
            None => Vec::with_capacity(READ_CHUNK),
        }
    }

    /// Takes back a buffer a connection no longer needs (its contents are dropped).
    pub fn give(&mut self, mut buf: Vec<u8>, stats: &ThreadStats) {
        if buf.capacity() < READ_CHUNK
            || buf.capacity() > KEEP_CAPACITY
            || self.spare.len() >= MAX_SPARE
        {
            return;
        }
        buf.clear();
        count(stats, 1, buf.capacity() as i64);
        self.spare.push(buf);
    }

    /// Frees the spare buffers (the worker is stopping).
    pub fn clear(&mut self, stats: &ThreadStats) {
        for buf in self.spare.drain(..) {
            count(stats, -1, -(buf.capacity() as i64));
        }
    }
}

/// Spare buffers count as allocated read buffers (`read_buf_count`, `read_buf_bytes`) and as
/// free ones (`read_buf_bytes_free`).
fn count(stats: &ThreadStats, buffers: i64, bytes: i64) {
    stats.read_buf_count.adjust(buffers);
    stats.read_buf_bytes.adjust(bytes);
    stats.read_buf_bytes_free.adjust(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_and_counted() {
        let stats = ThreadStats::default();
        let mut pool = ReadBuffers::default();
        let mut a = pool.take(&stats);
        assert!(a.capacity() >= READ_CHUNK);
        a.extend_from_slice(b"get k\r\n");
        let ptr = a.as_ptr();
        pool.give(a, &stats);
        assert_eq!(stats.read_buf_count.get(), 1);
        assert_eq!(stats.read_buf_bytes_free.get(), stats.read_buf_bytes.get());
        let b = pool.take(&stats);
        assert_eq!(b.as_ptr(), ptr, "the spare buffer is handed out again");
        assert!(b.is_empty());
        assert_eq!(stats.read_buf_count.get(), 0);
        assert_eq!(stats.read_buf_bytes_free.get(), 0);
        // Small and oversized buffers are not kept.
        pool.give(Vec::with_capacity(10), &stats);
        pool.give(Vec::with_capacity(KEEP_CAPACITY + 1), &stats);
        assert_eq!(stats.read_buf_count.get(), 0);
        pool.give(b, &stats);
        pool.clear(&stats);
        assert_eq!(stats.read_buf_bytes.get(), 0);
    }
}
