//! The fuzz input read as choices ([`Src`]), and the choices the generators of every protocol
//! share: values, flags, exptimes, deltas, store modes, the order of meta flags.

use super::op::{Exp, Mode};

/// The fuzz input, read as choices; past its end every choice is 0.
#[derive(Debug)]
pub struct Src<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Src<'a> {
    /// Reads `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Src { data, pos: 0 }
    }
    /// Whether the input is used up.
    pub(super) fn done(&self) -> bool {
        self.pos >= self.data.len()
    }
    /// The next byte (0 past the end).
    pub(super) fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    /// A choice among `n`.
    pub(super) fn below(&mut self, n: usize) -> usize {
        usize::from(self.u8()) % n
    }
    /// True `in_256` times in 256.
    pub(super) fn chance(&mut self, in_256: u8) -> bool {
        self.u8() < in_256
    }
    /// The next two bytes, big-endian.
    pub(super) fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    /// The next four bytes, big-endian.
    pub(super) fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    /// The next eight bytes, big-endian.
    pub(super) fn u64(&mut self) -> u64 {
        (u64::from(self.u32()) << 32) | u64::from(self.u32())
    }
    /// The next `n` bytes.
    pub(super) fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.u8()).collect()
    }
}

/// An exptime: mostly none, sometimes a day ahead, sometimes already past (a negative one
/// only in text: binary's exptime is unsigned).
pub(super) fn exp(src: &mut Src<'_>, binary: bool) -> Exp {
    match src.below(10) {
        0..=5 => Exp {
            value: 0,
            expired: false,
        },
        6 | 7 => Exp {
            value: 86_400,
            expired: false,
        },
        8 if !binary => Exp {
            value: -1,
            expired: true,
        },
        // An absolute time in 2001: long past.
        _ => Exp {
            value: 1_000_000_000,
            expired: true,
        },
    }
}

const ALPHABET: &[u8] = b"abcxyz XYZ\r\n019-+";

/// A value: numbers (for incr/decr), empty, short text with `\r\n` inside, values spread
/// over the slab classes, and rarely one above the largest chunk.
pub(super) fn value(src: &mut Src<'_>) -> Vec<u8> {
    match src.below(12) {
        0..=2 => {
            let n = match src.below(5) {
                0 => u64::from(src.u8()),
                1 => u64::MAX - u64::from(src.u8()),
                2 => src.u64(),
                3 => u64::from(src.u16()),
                _ => 0,
            };
            n.to_string().into_bytes()
        }
        3 => Vec::new(),
        4 => {
            // Spread over the slab classes.
            let len = 100 + usize::from(src.u16()) % 30_000;
            pattern(len, src.u8())
        }
        5 if src.chance(24) => {
            // Above the largest slab chunk: a chained item.
            let len = 520_000 + usize::from(src.u16());
            pattern(len, src.u8())
        }
        _ => {
            let len = src.below(40);
            (0..len)
                .map(|_| ALPHABET[src.below(ALPHABET.len())])
                .collect()
        }
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ALPHABET[(i + usize::from(seed)) % ALPHABET.len()])
        .collect()
}

/// The mode of a storage command, in any protocol: set twice as likely as each other one.
pub(super) fn store_mode(src: &mut Src<'_>) -> Mode {
    match src.below(7) {
        0 | 1 => Mode::Set,
        2 => Mode::Add,
        3 => Mode::Replace,
        4 => Mode::Append,
        5 => Mode::Prepend,
        _ => Mode::Cas,
    }
}

/// Client flags: mostly 0, sometimes the extremes or anything.
pub(super) fn flags(src: &mut Src<'_>) -> u32 {
    match src.below(6) {
        0..=2 => 0,
        3 => 1,
        4 => u32::MAX,
        _ => src.u32(),
    }
}

/// An incr/decr delta, extremes included.
pub(super) fn delta(src: &mut Src<'_>) -> u64 {
    match src.below(5) {
        0 => 1,
        1 => u64::from(src.u8()),
        2 => src.u64(),
        3 => u64::MAX,
        _ => u64::from(src.u16()),
    }
}

/// Meta flags in an order the input chooses (Fisher-Yates).
pub(super) fn shuffle(src: &mut Src<'_>, v: &mut [Vec<u8>]) {
    for i in (1..v.len()).rev() {
        let j = src.below(i + 1);
        v.swap(i, j);
    }
}
