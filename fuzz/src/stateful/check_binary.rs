//! Binary-protocol responses read into results for the model: statuses per command, the echoed
//! opcode and opaque, extras, keys and bodies of hits and misses, quiet silences.

use crate::replies::{split_binary, BinReply};
use memcached_rs::config::PROTOCOL_VERSION;

use super::model::{ArithRes, DeleteRes, Hit, Known, StoreRes};
use super::op::{key_name, Mode, Op, Sem};
use super::Run;

impl Run<'_> {
    /// Checks a binary response: echoed opcode and opaque, the status for the command.
    pub(super) fn check_binary(&mut self, op: &Op, reply: &[u8]) {
        let frames = match split_binary(reply) {
            Ok(f) => f,
            Err(e) => self.fail(op, reply, &format!("the response does not parse: {e}")),
        };
        let opcode = op.bytes[1];
        for f in &frames {
            if f.opcode != opcode || Some(f.opaque) != op.style.opaque {
                self.fail(op, reply, "opcode or opaque not echoed");
            }
        }
        if let Sem::Other(name) = op.sem {
            let ok = match name {
                "noop" => frames.len() == 1 && frames[0].status == 0 && frames[0].value.is_empty(),
                "version" => {
                    frames.len() == 1
                        && frames[0].status == 0
                        && frames[0].value == PROTOCOL_VERSION.as_bytes()
                }
                _ => {
                    // stat: packets with keys, then an empty one; or Not found.
                    let last = frames.last();
                    last.is_some_and(|l| l.key.is_empty() && l.value.is_empty())
                        && frames.iter().all(|f| f.status == 0)
                }
            };
            if !ok {
                self.fail(op, reply, &format!("not a binary {name} response"));
            }
            return;
        }
        if frames.len() > 1 {
            self.fail(op, reply, "more than one response");
        }
        let f: Option<&BinReply<'_>> = frames.first();
        if f.is_none() && !op.style.quiet {
            self.fail(op, reply, "not answered");
        }
        const OK: u16 = 0;
        const NOT_FOUND: u16 = 1;
        const EXISTS: u16 = 2;
        const NOT_STORED: u16 = 5;
        const NON_NUMERIC: u16 = 6;
        let error_ok =
            |f: &BinReply<'_>| f.status == OK || (f.extras.is_empty() && f.key.is_empty());
        if let Some(f) = f {
            if !(error_ok(f) || f.status == NOT_FOUND && op.style.want_key) {
                self.fail(op, reply, "an error response with extras or a key");
            }
        }
        match &op.sem {
            Sem::Store { mode, .. } => {
                let (res, cas) = match f {
                    None => (StoreRes::Stored, None),
                    Some(f) => match f.status {
                        OK if !op.style.quiet => {
                            if f.cas == 0 || !f.value.is_empty() {
                                self.fail(
                                    op,
                                    reply,
                                    "a stored response without a cas, or with a body",
                                );
                            }
                            (StoreRes::Stored, Some(f.cas))
                        }
                        // memcached's binary statuses for NOT_STORED depend on the command.
                        EXISTS if *mode == Mode::Cas => (StoreRes::Exists, None),
                        EXISTS if *mode == Mode::Add => (StoreRes::NotStored, None),
                        NOT_FOUND if *mode == Mode::Cas => (StoreRes::NotFound, None),
                        NOT_FOUND if *mode == Mode::Replace => (StoreRes::NotStored, None),
                        NOT_STORED if matches!(mode, Mode::Append | Mode::Prepend) => {
                            (StoreRes::NotStored, None)
                        }
                        _ => self.fail(op, reply, "not a store response"),
                    },
                };
                self.apply_store(op, reply, Some(res), cas);
            }
            Sem::Get { keys, touch } => {
                let key = keys[0];
                let hit = match f {
                    None => None,
                    Some(f) if f.status == OK => {
                        if f.extras.len() != 4
                            || (op.style.want_key && f.key != key_name(key))
                            || (!op.style.want_key && !f.key.is_empty())
                            || (op.style.touch_only && !f.value.is_empty())
                        {
                            self.fail(op, reply, "a hit with the wrong extras, key or value");
                        }
                        Some(Hit {
                            data: (!op.style.touch_only).then(|| f.value.to_vec()),
                            size: None,
                            flags: Some(u32::from_be_bytes(f.extras.try_into().expect("4"))),
                            cas: Some(f.cas),
                        })
                    }
                    Some(f) if f.status == NOT_FOUND && !op.style.quiet => {
                        let want_body: &[u8] = if op.style.want_key { b"" } else { b"Not found" };
                        let want_key: &[u8] = if op.style.want_key {
                            key_name(key)
                        } else {
                            b""
                        };
                        if f.value != want_body || f.key != want_key {
                            self.fail(op, reply, "a miss with the wrong body");
                        }
                        None
                    }
                    Some(_) => self.fail(op, reply, "not a get response"),
                };
                if op.style.touch_only {
                    let touched = hit.is_some();
                    if let Some(h) = &hit {
                        self.compare_item(op, reply, key, h);
                    }
                    self.apply_touch(op, reply, key, Some(touched), touch.expect("touch"));
                } else {
                    if op.style.quiet && hit.is_none() && f.is_some() {
                        self.fail(op, reply, "a quiet get reported a miss");
                    }
                    self.apply_read(op, reply, key, hit, *touch);
                }
            }
            Sem::Delete { key, cas } => {
                let res = match f.map(|f| f.status) {
                    None => DeleteRes::Deleted,
                    Some(OK) if !op.style.quiet => DeleteRes::Deleted,
                    Some(NOT_FOUND) => DeleteRes::NotFound,
                    Some(EXISTS) if cas.is_some() => DeleteRes::Exists,
                    _ => self.fail(op, reply, "not a delete response"),
                };
                self.apply_delete(op, reply, *key, *cas, Some(res));
            }
            Sem::Arith { .. } => {
                let (res, cas) = match f {
                    None => (ArithRes::Silent, None),
                    Some(f) => match f.status {
                        OK if !op.style.quiet => {
                            let Ok(v) = <[u8; 8]>::try_from(f.value) else {
                                self.fail(op, reply, "an incr response without its 8 bytes");
                            };
                            (ArithRes::Value(u64::from_be_bytes(v)), Some(f.cas))
                        }
                        NOT_FOUND => (ArithRes::NotFound, None),
                        NON_NUMERIC => (ArithRes::NonNumeric, None),
                        _ => self.fail(op, reply, "not an incr/decr response"),
                    },
                };
                self.apply_arith(op, reply, Some(res), cas);
            }
            Sem::Flush => {
                let ok = match f {
                    None => op.style.quiet,
                    Some(f) => f.status == OK && !op.style.quiet,
                };
                if !ok {
                    self.fail(op, reply, "not a flush response");
                }
                self.model.iter_mut().for_each(|k| *k = Known::Absent);
            }
            Sem::Other(_) => unreachable!(),
        }
    }
}
