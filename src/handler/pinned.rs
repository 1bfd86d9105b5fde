//! Values that replies refer to instead of carrying: large values written from the arena.
//!
//! A reply to a get of a value of [`PIN_FROM`] bytes or more, on a connection that can write
//! from the arena (a plain TCP or unix socket), carries its header and trailer in the output
//! buffer as usual, and the value as a [`Pin`] recorded here with the output offset it goes
//! before. The connection writes the buffer and the pinned values in order with vectored
//! writes ([`crate::net`]) and drops each pin once its value is written; a close drops them
//! all. So a client that stops reading holds no copy of what it was sent, and a get of a
//! 512 KB value costs no 512 KB copy under the shard lock.

use std::collections::VecDeque;

use crate::cache::Pin;

/// Values this large are pinned rather than copied. Below it a copy costs less than the pin's
/// bookkeeping (two lock round trips, an entry in the shard's pin table, an iovec more).
pub const PIN_FROM: usize = 16 * 1024;

/// The pinned values of a connection's unwritten output, in output order.
#[derive(Debug, Default)]
pub struct PinnedValues {
    /// Each value goes into the output before the byte at its offset (at the end, when the
    /// offset is the output's length).
    queue: VecDeque<(usize, Pin)>,
    /// Bytes of the first value written.
    front_written: usize,
    /// Their bytes not yet written.
    bytes: usize,
}

impl PinnedValues {
    /// Queues `pin`'s value at output offset `at` (at or after every queued one). An empty
    /// value is nothing to write: its pin is dropped at once.
    pub fn push(&mut self, at: usize, pin: Pin) {
        debug_assert!(self.queue.back().is_none_or(|&(last, _)| last <= at));
        if pin.is_empty() {
            return;
        }
        self.bytes += pin.len();
        self.queue.push_back((at, pin));
    }

    /// Drops the values that go after output offset `len` (the output is cut there). A value
    /// at exactly `len` stays: either it ends the reply before the cut (a binary get's value is
    /// the last thing of its reply), or the cut is where the writing stands, the value's header
    /// is written, and the value is what the client is being sent (a reply cut short either
    /// way: a copied value would have been cut off after its header).
    pub fn truncate(&mut self, len: usize) {
        while self.queue.back().is_some_and(|&(at, _)| at > len) {
            if let Some((_, pin)) = self.queue.pop_back() {
                let written = if self.queue.is_empty() {
                    std::mem::take(&mut self.front_written)
                } else {
                    0
                };
                self.bytes -= pin.len() - written;
            }
        }
    }

    /// Bytes of pinned values still to write.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether no value is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The first queued value and its output offset.
    pub fn front(&self) -> Option<(usize, &Pin)> {
        self.queue.front().map(|(at, pin)| (*at, pin))
    }

    /// The queued values and their offsets, in order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &Pin)> {
        self.queue.iter().map(|(at, pin)| (*at, pin))
    }

    /// Bytes of the first value written so far.
    pub fn front_written(&self) -> usize {
        self.front_written
    }

    /// `n` more bytes of the first value were written; once all of them are, it is dropped
    /// (and its item released). Returns the bytes of `n` beyond that value.
    pub fn write_front(&mut self, n: usize) -> usize {
        let Some((_, pin)) = self.queue.front() else {
            return n;
        };
        let rest = pin.len() - self.front_written;
        if n < rest {
            self.front_written += n;
            self.bytes -= n;
            return 0;
        }
        self.queue.pop_front();
        self.front_written = 0;
        self.bytes -= rest;
        n - rest
    }

    /// The output from buffer offset `written` on as plain bytes, the values copied in (for
    /// a transport that takes the socket over and writes bytes, and for the fuzzers).
    pub fn unsent(&self, buffer: &[u8], written: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut pos = written;
        let mut skip = self.front_written;
        for (at, pin) in self.iter() {
            out.extend_from_slice(&buffer[pos..at]);
            pos = at;
            let before = out.len();
            pin.copy_to(&mut out);
            out.drain(before..before + skip);
            skip = 0;
        }
        out.extend_from_slice(&buffer[pos..]);
        out
    }

    /// Where buffer offset `at` lies in the output with the values in it (nothing written
    /// yet): the values at or before it come first. A request that completes at `at` owns a
    /// value there (a binary get's value ends its reply).
    pub fn offset_with_values(&self, at: usize) -> usize {
        at + self
            .iter()
            .take_while(|&(value_at, _)| value_at <= at)
            .map(|(_, pin)| pin.len())
            .sum::<usize>()
    }

    /// Drops every value (the output was delivered some other way).
    pub fn clear(&mut self) {
        self.queue.clear();
        self.front_written = 0;
        self.bytes = 0;
    }
}
