//! Text-protocol replies read into results for the model: each command's reply lines, `VALUE`
//! blocks in the order of the keys asked for, `noreply` silence.

use crate::replies::TextReply;

use super::check::parse_u64;
use super::model::{ArithRes, DeleteRes, Hit, Known, StoreRes};
use super::op::{key_name, Op, Sem};
use super::Run;

impl Run<'_> {
    /// Checks a text reply: the line (or values and `END`) each command answers.
    pub(super) fn check_text(&mut self, op: &Op, reply: &[u8], units: &[TextReply<'_>]) {
        let lines: Vec<&[u8]> = units.iter().map(TextReply::line).collect();
        let single = || -> Option<&[u8]> {
            match units {
                [TextReply::Line(l)] => Some(l),
                _ => None,
            }
        };
        match &op.sem {
            Sem::Store { .. } => {
                let res = if op.style.quiet {
                    if !units.is_empty() {
                        self.fail(op, reply, "noreply store answered");
                    }
                    None
                } else {
                    Some(match single() {
                        Some(b"STORED") => StoreRes::Stored,
                        Some(b"NOT_STORED") => StoreRes::NotStored,
                        Some(b"EXISTS") => StoreRes::Exists,
                        Some(b"NOT_FOUND") => StoreRes::NotFound,
                        _ => self.fail(op, reply, "not a store reply"),
                    })
                };
                self.apply_store(op, reply, res, None);
            }
            Sem::Get { keys, touch } if op.style.touch_only => {
                // `touch`
                let key = keys[0];
                let hit = if op.style.quiet {
                    if !units.is_empty() {
                        self.fail(op, reply, "noreply touch answered");
                    }
                    None
                } else {
                    match single() {
                        Some(b"TOUCHED") => Some(true),
                        Some(b"NOT_FOUND") => Some(false),
                        _ => self.fail(op, reply, "not a touch reply"),
                    }
                };
                self.apply_touch(op, reply, key, hit, touch.expect("touch"));
            }
            Sem::Get { keys, touch } => {
                let Some((TextReply::Line(b"END"), blocks)) = units.split_last() else {
                    self.fail(op, reply, "a get reply must end with END");
                };
                let mut blocks = blocks.iter().peekable();
                for &key in keys {
                    let name = key_name(key);
                    let hit = match blocks.peek() {
                        Some(TextReply::Block { line, data }) => {
                            let t: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
                            if t.get(1) == Some(&name) {
                                blocks.next();
                                let want = if op.style.want_cas { 5 } else { 4 };
                                if t.len() != want {
                                    self.fail(op, reply, "VALUE line with the wrong field count");
                                }
                                let flags = parse_u64(t[2]).and_then(|f| u32::try_from(f).ok());
                                let cas = if op.style.want_cas {
                                    parse_u64(t[4])
                                } else {
                                    None
                                };
                                if flags.is_none() || (op.style.want_cas && cas.is_none()) {
                                    self.fail(op, reply, "VALUE line with bad numbers");
                                }
                                Some(Hit {
                                    data: Some(data.to_vec()),
                                    size: None,
                                    flags,
                                    cas,
                                })
                            } else {
                                None
                            }
                        }
                        Some(TextReply::Line(_)) => self.fail(op, reply, "a line among values"),
                        None => None,
                    };
                    self.apply_read(op, reply, key, hit, *touch);
                }
                if blocks.next().is_some() {
                    self.fail(op, reply, "values for keys not asked for, or out of order");
                }
            }
            Sem::Delete { key, .. } => {
                let res = if op.style.quiet {
                    if !units.is_empty() {
                        self.fail(op, reply, "noreply delete answered");
                    }
                    None
                } else {
                    Some(match single() {
                        Some(b"DELETED") => DeleteRes::Deleted,
                        Some(b"NOT_FOUND") => DeleteRes::NotFound,
                        _ => self.fail(op, reply, "not a delete reply"),
                    })
                };
                self.apply_delete(op, reply, *key, None, res);
            }
            Sem::Arith { .. } => {
                let res = if op.style.quiet {
                    if !units.is_empty() {
                        self.fail(op, reply, "noreply incr/decr answered");
                    }
                    None
                } else {
                    Some(match single() {
                        Some(b"NOT_FOUND") => ArithRes::NotFound,
                        Some(b"CLIENT_ERROR cannot increment or decrement non-numeric value") => {
                            ArithRes::NonNumeric
                        }
                        Some(l) => match parse_u64(l) {
                            Some(v) => ArithRes::Value(v),
                            None => self.fail(op, reply, "not an incr/decr reply"),
                        },
                        None => self.fail(op, reply, "not an incr/decr reply"),
                    })
                };
                self.apply_arith(op, reply, res, None);
            }
            Sem::Flush => {
                let ok = if op.style.quiet {
                    units.is_empty()
                } else {
                    single() == Some(b"OK")
                };
                if !ok {
                    self.fail(op, reply, "not a flush_all reply");
                }
                self.model.iter_mut().for_each(|k| *k = Known::Absent);
            }
            Sem::Other(name) => self.check_other_text(op, reply, name, &lines, units),
        }
    }
}
