//! A large value received from the socket straight into the chunks reserved for it
//! ([`Reservation`]), not through the connection's input buffer: the store's one copy of the
//! value is the kernel's, as a large get's is ([`super::pinned`]).

use std::io;

use crate::cache::Reservation;

/// The smallest value received into its chunks (smaller ones arrive with their request line,
/// in the input buffer, where one copy of them costs less than the reservation).
pub const UPLOAD_FROM: usize = super::pinned::PIN_FROM;

/// The most pieces one read fills (`UIO_MAXIOV` is 1024; a value spans a few chunks).
const MAX_PIECES: usize = 64;

/// A data block being received: the value, into its reservation, then (text protocol) the
/// `\r\n` after it.
#[derive(Debug)]
pub struct Upload {
    reservation: Reservation,
    /// Bytes of the block received so far.
    received: usize,
    trailer: [u8; 2],
    trailer_len: usize,
}

impl Upload {
    /// Receives a block of `reservation`'s value and then `trailer_len` (0 or 2) more bytes.
    pub fn new(reservation: Reservation, trailer_len: usize) -> Upload {
        Upload {
            reservation,
            received: 0,
            trailer: [0; 2],
            trailer_len: trailer_len.min(2),
        }
    }

    /// The value's length.
    pub fn value_len(&self) -> usize {
        self.reservation.len()
    }

    /// Bytes of the block still to come.
    pub fn missing(&self) -> usize {
        self.reservation.len() + self.trailer_len - self.received
    }

    /// Whether the whole block has arrived.
    pub fn is_complete(&self) -> bool {
        self.missing() == 0
    }

    /// The bytes that came after the value (`\r\n` in a well-formed text block).
    pub fn trailer(&self) -> &[u8] {
        &self.trailer[..self.trailer_len]
    }

    /// The reservation, its value received, to be stored.
    pub fn into_reservation(self) -> Reservation {
        self.reservation
    }

    /// Copies the start of `input` into the block; returns the bytes taken.
    pub fn absorb(&mut self, input: &[u8]) -> usize {
        let mut taken = 0;
        for piece in self.pieces() {
            let n = piece.len().min(input.len() - taken);
            piece[..n].copy_from_slice(&input[taken..taken + n]);
            taken += n;
            if taken == input.len() {
                break;
            }
        }
        self.received += taken;
        taken
    }

    /// Receives into the block's missing bytes with `read`, which is given where they go (a
    /// few chunks' worth at most) and whether that is the rest of the block (what it reads
    /// beyond is then the next request's), and returns how many it filled, in order.
    pub fn receive(
        &mut self,
        read: impl FnOnce(&mut [&mut [u8]], bool) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let mut pieces: Vec<&mut [u8]> = self.pieces().take(MAX_PIECES + 1).collect();
        let to_the_end = pieces.len() <= MAX_PIECES;
        pieces.truncate(MAX_PIECES);
        let room: usize = pieces.iter().map(|p| p.len()).sum();
        let n = read(&mut pieces, to_the_end)?.min(room);
        drop(pieces);
        self.received += n;
        Ok(n)
    }

    /// Where the missing bytes go, in order.
    fn pieces(&mut self) -> impl Iterator<Item = &mut [u8]> {
        let value_len = self.reservation.len();
        let trailer_from = self
            .received
            .saturating_sub(value_len)
            .min(self.trailer_len);
        let trailer = &mut self.trailer[trailer_from..self.trailer_len];
        self.reservation
            .value_mut(self.received)
            .chain(std::iter::once(trailer))
            .filter(|piece| !piece.is_empty())
    }
}
