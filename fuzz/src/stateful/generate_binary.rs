//! Well-formed binary-protocol operations: every storage opcode, get/gat (with key, quiet),
//! touch, delete, incr/decr with an initial value, flush, noop, version, stat; and the frame
//! builders.

use memcached_rs::protocol::binary;

use super::input::{delta, exp, flags, store_mode, value, Src};
use super::op::{key_name, Exp, Mode, Op, Proto, Sem, Style, KEYS};
use super::Run;

impl Run<'_> {
    /// A well-formed binary request.
    pub(super) fn binary_op(&mut self, src: &mut Src<'_>) -> Op {
        use memcached_rs::protocol::binary::opcode::*;
        let mut style = Style::default();
        let key = src.below(KEYS.len());
        let k = key_name(key);
        let opaque = self.opaque();
        style.opaque = Some(opaque);
        style.quiet = src.chance(70);
        let q = style.quiet;
        let (sem, frame) = match src.below(12) {
            0..=3 => {
                let mode = store_mode(src);
                let cas = if mode == Mode::Cas {
                    self.execute_batch(src);
                    self.cas_arg(src, key)
                } else {
                    0
                };
                let data = value(src);
                let (f, e) = if matches!(mode, Mode::Append | Mode::Prepend) {
                    (
                        0,
                        Exp {
                            value: 0,
                            expired: false,
                        },
                    )
                } else {
                    (flags(src), exp(src, true))
                };
                let opcode = match (mode, q) {
                    (Mode::Set | Mode::Cas, false) => SET,
                    (Mode::Set | Mode::Cas, true) => SETQ,
                    (Mode::Add, false) => ADD,
                    (Mode::Add, true) => ADDQ,
                    (Mode::Replace, false) => REPLACE,
                    (Mode::Replace, true) => REPLACEQ,
                    (Mode::Append, false) => APPEND,
                    (Mode::Append, true) => APPENDQ,
                    (Mode::Prepend, false) => PREPEND,
                    (Mode::Prepend, true) => PREPENDQ,
                };
                let mut extras = Vec::new();
                if !matches!(mode, Mode::Append | Mode::Prepend) {
                    extras.extend_from_slice(&f.to_be_bytes());
                    extras.extend_from_slice(&(e.value as u32).to_be_bytes());
                }
                let frame = bin_frame(opcode, k, &extras, &data, opaque, cas);
                (
                    Sem::Store {
                        mode,
                        key,
                        data,
                        flags: f,
                        exp: e,
                        cas,
                    },
                    frame,
                )
            }
            4..=6 => {
                style.want_key = src.chance(100);
                let touch = src.chance(60).then(|| exp(src, true));
                style.touch_only = touch.is_some() && src.chance(70);
                if style.touch_only {
                    style.quiet = false;
                }
                style.want_value = !style.touch_only;
                let opcode = match (
                    touch.is_some(),
                    style.touch_only,
                    style.want_key,
                    style.quiet,
                ) {
                    (_, true, _, _) => TOUCH,
                    (false, _, false, false) => GET,
                    (false, _, false, true) => GETQ,
                    (false, _, true, false) => GETK,
                    (false, _, true, true) => GETKQ,
                    (true, _, false, false) => GAT,
                    (true, _, false, true) => GATQ,
                    (true, _, true, false) => GATK,
                    (true, _, true, true) => GATKQ,
                };
                if style.touch_only {
                    style.want_key = false;
                }
                let extras = touch
                    .map(|e| (e.value as u32).to_be_bytes().to_vec())
                    .unwrap_or_default();
                (
                    Sem::Get {
                        keys: vec![key],
                        touch,
                    },
                    bin_frame(opcode, k, &extras, b"", opaque, 0),
                )
            }
            7 => {
                let cas = src.chance(60).then(|| {
                    self.execute_batch(src);
                    self.cas_arg(src, key)
                });
                (
                    Sem::Delete { key, cas },
                    bin_frame(
                        if q { DELETEQ } else { DELETE },
                        k,
                        b"",
                        b"",
                        opaque,
                        cas.unwrap_or(0),
                    ),
                )
            }
            8 | 9 => {
                let incr = src.chance(160);
                let delta = delta(src);
                let vivify = src.chance(100).then(|| match src.below(3) {
                    0 => 0,
                    1 => u64::from(src.u8()),
                    _ => src.u64(),
                });
                let mut extras = delta.to_be_bytes().to_vec();
                extras.extend_from_slice(&vivify.unwrap_or(0).to_be_bytes());
                extras.extend_from_slice(
                    &if vivify.is_some() { 0u32 } else { u32::MAX }.to_be_bytes(),
                );
                let opcode = match (incr, q) {
                    (true, false) => INCREMENT,
                    (true, true) => INCREMENTQ,
                    (false, false) => DECREMENT,
                    (false, true) => DECREMENTQ,
                };
                (
                    Sem::Arith {
                        key,
                        incr,
                        delta,
                        vivify,
                    },
                    bin_frame(opcode, k, &extras, b"", opaque, 0),
                )
            }
            10 if src.chance(64) => {
                let extras: &[u8] = if src.chance(128) { &[0, 0, 0, 0] } else { b"" };
                (
                    Sem::Flush,
                    bin_frame(if q { FLUSHQ } else { FLUSH }, b"", extras, b"", opaque, 0),
                )
            }
            _ => {
                style.quiet = false;
                let (opcode, name, key): (u8, &'static str, &[u8]) = match src.below(6) {
                    0 | 1 => (NOOP, "noop", b""),
                    2 => (VERSION, "version", b""),
                    3 => (STAT, "stat", b""),
                    4 => (STAT, "stat", b"settings"),
                    _ => (STAT, "stat", b"items"),
                };
                (
                    Sem::Other(name),
                    bin_frame(opcode, key, b"", b"", opaque, 0),
                )
            }
        };
        Op {
            proto: Proto::Binary,
            sem,
            style,
            bytes: frame,
        }
    }
}

/// A binary request frame.
pub fn bin_frame(
    opcode: u8,
    key: &[u8],
    extras: &[u8],
    value: &[u8],
    opaque: u32,
    cas: u64,
) -> Vec<u8> {
    let mut f = Vec::new();
    binary::write_request(&mut f, opcode, key, extras, value, opaque, cas)
        .expect("the generator's keys, extras and values fit the header");
    f
}

/// A binary header with explicit (possibly inconsistent) lengths, then `body`.
pub(super) fn raw_frame(opcode: u8, keylen: u16, extlen: u8, bodylen: u32, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    binary::Header::request(opcode, keylen, extlen, bodylen, 1, 0).write(&mut f);
    f.extend_from_slice(body);
    f
}
