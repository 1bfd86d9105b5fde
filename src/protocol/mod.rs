//! Wire formats: bytes in, requests out; results in, bytes out.
//!
//! Everything here is a pure function over byte slices — no I/O, no locks, no cache — so each
//! format is unit-tested and fuzzed on its own. The text protocol is the one clients speak by
//! default; the meta and binary protocols are front ends onto the same cache operations.

pub mod base64;
pub mod binary;
pub mod meta;
pub mod scan;
pub mod text;

/// memcached's longest key.
pub const KEY_MAX_LENGTH: usize = 250;
