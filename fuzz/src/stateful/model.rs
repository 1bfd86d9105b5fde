//! The model of the cache: what is known of each key of the key space ([`Known`]), the result
//! each operation should have, and how the result seen updates what is known.

use crate::replies::esc;

use super::op::{Exp, Mode, Op, Proto, Sem};
use super::Run;

/// What the model knows of an item's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Data {
    Exact(Vec<u8>),
    /// A number written by incr/decr: its digits, then perhaps space padding (memcached
    /// rewrites a shorter number in place).
    Counter(u64),
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Item {
    pub(super) data: Data,
    pub(super) flags: Option<u32>,
    pub(super) cas: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Known {
    Absent,
    Present(Item),
    Unknown,
}

/// Whether memcached's `safe_strtoull` accepts a value, when the model is sure.
enum Numeric {
    Yes(u64),
    No,
    Unsure,
}

fn numeric(data: &[u8]) -> Numeric {
    let digits = data.iter().take_while(|b| b.is_ascii_digit()).count();
    let rest = &data[digits..];
    if digits > 0 && digits <= 20 && rest.iter().all(|&b| b == b' ') {
        let s = std::str::from_utf8(&data[..digits]).expect("digits");
        return match s.parse::<u64>() {
            Ok(n) => Numeric::Yes(n),
            Err(_) => Numeric::Unsure,
        };
    }
    match data.first() {
        None => Numeric::No,
        Some(b) if b.is_ascii_alphabetic() => Numeric::No,
        _ => Numeric::Unsure,
    }
}

fn counter_matches(n: u64, data: &[u8]) -> bool {
    let digits = n.to_string();
    data.starts_with(digits.as_bytes()) && data[digits.len()..].iter().all(|&b| b == b' ')
}

/// How a store came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StoreRes {
    Stored,
    NotStored,
    Exists,
    NotFound,
}

/// A hit as a reply shows it; `None` fields were not asked for.
#[derive(Debug, Clone)]
pub(super) struct Hit {
    pub(super) data: Option<Vec<u8>>,
    pub(super) size: Option<usize>,
    pub(super) flags: Option<u32>,
    pub(super) cas: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ArithRes {
    Value(u64),
    NotFound,
    NonNumeric,
    /// A success shown without its value (`ma` without `v`).
    Hidden,
    /// A quiet success: nothing shown.
    Silent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DeleteRes {
    Deleted,
    NotFound,
    Exists,
}

impl Run<'_> {
    /// A hit must agree with what the model knows of the key.
    pub(super) fn compare_item(&self, op: &Op, reply: &[u8], key: usize, hit: &Hit) {
        let item = match &self.model[key] {
            Known::Absent => self.fail(op, reply, "a hit for a key that is not stored"),
            Known::Unknown => return,
            Known::Present(item) => item,
        };
        if let (Some(want), Some(got)) = (item.flags, hit.flags) {
            if want != got {
                self.fail(op, reply, &format!("flags {got}, stored {want}"));
            }
        }
        if let (Some(want), Some(got)) = (item.cas, hit.cas) {
            if want != got {
                self.fail(
                    op,
                    reply,
                    &format!("cas {got}, last seen {want} and no write since"),
                );
            }
        }
        let size = hit.data.as_ref().map(Vec::len).or(hit.size);
        if let (Some(a), Some(b)) = (hit.data.as_ref().map(Vec::len), hit.size) {
            if a != b {
                self.fail(op, reply, "size flag differs from the value's length");
            }
        }
        match &item.data {
            Data::Exact(want) => {
                if let Some(got) = &hit.data {
                    if got != want {
                        self.fail(
                            op,
                            reply,
                            &format!(
                                "value read is not the last value stored: read {}, stored {}",
                                esc(got),
                                esc(want)
                            ),
                        );
                    }
                } else if size.is_some_and(|s| s != want.len()) {
                    self.fail(op, reply, "size differs from the stored value's");
                }
            }
            Data::Counter(n) => {
                if let Some(got) = &hit.data {
                    if !counter_matches(*n, got) {
                        self.fail(
                            op,
                            reply,
                            &format!("counter should read {n}, reads {}", esc(got)),
                        );
                    }
                }
            }
            Data::Unknown => {}
        }
    }

    /// A read's hit or miss (and its touch, for gat/mg T) against and into the model.
    pub(super) fn apply_read(
        &mut self,
        op: &Op,
        reply: &[u8],
        key: usize,
        hit: Option<Hit>,
        touch: Option<Exp>,
    ) {
        // A quiet miss is silent: `hit` is None either way.
        match &hit {
            Some(h) => {
                self.compare_item(op, reply, key, h);
                let mut item = match &self.model[key] {
                    Known::Present(item) => item.clone(),
                    _ => Item {
                        data: Data::Unknown,
                        flags: None,
                        cas: None,
                    },
                };
                if let Some(d) = &h.data {
                    item.data = Data::Exact(d.clone());
                }
                item.flags = h.flags.or(item.flags);
                item.cas = h.cas.or(item.cas);
                self.model[key] = Known::Present(item);
            }
            None => {
                if let Known::Present(_) = self.model[key] {
                    self.fail(op, reply, "a stored key reads as a miss");
                }
                self.model[key] = Known::Absent;
            }
        }
        if let (Some(e), Known::Present(item)) = (touch, &mut self.model[key]) {
            if e.expired {
                self.model[key] = Known::Absent;
            } else {
                item.cas = None;
            }
        }
    }

    /// A touch's hit or miss (`None`: not shown) against and into the model.
    pub(super) fn apply_touch(
        &mut self,
        op: &Op,
        reply: &[u8],
        key: usize,
        hit: Option<bool>,
        e: Exp,
    ) {
        let present = match (&self.model[key], hit) {
            (Known::Absent, Some(true)) => self.fail(op, reply, "touched a key that is not stored"),
            (Known::Present(_), Some(false)) => self.fail(op, reply, "touch misses a stored key"),
            (_, Some(h)) => Some(h),
            (Known::Absent, None) => Some(false),
            (Known::Present(_), None) => Some(true),
            (Known::Unknown, None) => None,
        };
        match present {
            Some(false) => self.model[key] = Known::Absent,
            Some(true) if e.expired => self.model[key] = Known::Absent,
            Some(true) => {
                if let Known::Present(item) = &mut self.model[key] {
                    item.cas = None;
                } else {
                    self.model[key] = Known::Present(Item {
                        data: Data::Unknown,
                        flags: None,
                        cas: None,
                    });
                }
            }
            None => self.model[key] = Known::Unknown,
        }
    }

    /// `res` is None for a text `noreply` store (nothing to compare: the model's prediction
    /// stands, when it has one).
    pub(super) fn apply_store(
        &mut self,
        op: &Op,
        reply: &[u8],
        res: Option<StoreRes>,
        cas: Option<u64>,
    ) {
        let Sem::Store {
            mode,
            key,
            data,
            flags,
            exp,
            cas: cas_arg,
        } = &op.sem
        else {
            unreachable!()
        };
        let (mode, key) = (*mode, *key);
        let current = self.model[key].clone();
        // What the model predicts, if it can.
        let predicted: Option<StoreRes> = match (&current, mode) {
            (Known::Unknown, _) => None,
            (Known::Absent, Mode::Set | Mode::Add) => Some(StoreRes::Stored),
            (Known::Absent, Mode::Replace | Mode::Append | Mode::Prepend) => {
                Some(StoreRes::NotStored)
            }
            (Known::Absent, Mode::Cas) => Some(StoreRes::NotFound),
            (Known::Present(_), Mode::Add) => Some(StoreRes::NotStored),
            (Known::Present(item), Mode::Cas) => item.cas.map(|c| {
                if c == *cas_arg {
                    StoreRes::Stored
                } else {
                    StoreRes::Exists
                }
            }),
            (Known::Present(_), _) => Some(StoreRes::Stored),
        };
        // Appending to a value near the size limit may fail for want of room: the model does
        // not predict that.
        let combined = match &current {
            Known::Present(Item {
                data: Data::Exact(old),
                ..
            }) => old.len() + data.len(),
            _ => data.len() * 2,
        };
        let near_limit = matches!(mode, Mode::Append | Mode::Prepend) && combined > 900_000;
        let outcome = match (res, predicted) {
            (Some(r), Some(p)) if r != p && !near_limit => self.fail(
                op,
                reply,
                &format!("store answered {r:?}, the model expects {p:?}"),
            ),
            (Some(r), _) => Some(r),
            (None, p) => p,
        };
        if near_limit && outcome != Some(StoreRes::Stored) {
            self.model[key] = Known::Unknown;
            return;
        }
        match outcome {
            None => self.model[key] = Known::Unknown,
            Some(StoreRes::Stored) => {
                let concatenate = matches!(mode, Mode::Append | Mode::Prepend);
                let new = if concatenate {
                    // The old item's flags and expiry stay.
                    match &current {
                        Known::Present(item) => {
                            let data = match &item.data {
                                Data::Exact(old) if mode == Mode::Append => {
                                    Data::Exact([old.as_slice(), data].concat())
                                }
                                Data::Exact(old) => Data::Exact([data.as_slice(), old].concat()),
                                _ => Data::Unknown,
                            };
                            Known::Present(Item {
                                data,
                                flags: item.flags,
                                cas,
                            })
                        }
                        _ => Known::Present(Item {
                            data: Data::Unknown,
                            flags: None,
                            cas,
                        }),
                    }
                } else if exp.expired {
                    Known::Absent
                } else {
                    Known::Present(Item {
                        data: Data::Exact(data.clone()),
                        flags: Some(*flags),
                        cas,
                    })
                };
                self.model[key] = new;
            }
            Some(StoreRes::NotStored) | Some(StoreRes::Exists) => {
                if current == Known::Unknown {
                    // It exists (add, cas) or not (replace, append, prepend).
                    self.model[key] = match mode {
                        Mode::Replace | Mode::Append | Mode::Prepend => Known::Absent,
                        _ => Known::Present(Item {
                            data: Data::Unknown,
                            flags: None,
                            cas: None,
                        }),
                    };
                }
            }
            Some(StoreRes::NotFound) => self.model[key] = Known::Absent,
        }
    }

    /// A delete's outcome (`None`: `noreply`) against and into the model.
    pub(super) fn apply_delete(
        &mut self,
        op: &Op,
        reply: &[u8],
        key: usize,
        cas: Option<u64>,
        res: Option<DeleteRes>,
    ) {
        let predicted = match &self.model[key] {
            Known::Absent => Some(DeleteRes::NotFound),
            Known::Unknown => None,
            Known::Present(item) => match (cas, item.cas) {
                (None, _) => Some(DeleteRes::Deleted),
                (Some(c), Some(k)) if c == k => Some(DeleteRes::Deleted),
                (Some(_), Some(_)) => Some(DeleteRes::Exists),
                (Some(_), None) => None,
            },
        };
        let outcome = match (res, predicted) {
            (Some(r), Some(p)) if r != p => self.fail(
                op,
                reply,
                &format!("delete answered {r:?}, the model expects {p:?}"),
            ),
            (Some(r), _) => Some(r),
            (None, p) => p,
        };
        match outcome {
            Some(DeleteRes::Deleted) | Some(DeleteRes::NotFound) => self.model[key] = Known::Absent,
            Some(DeleteRes::Exists) => {
                if self.model[key] == Known::Unknown {
                    self.model[key] = Known::Present(Item {
                        data: Data::Unknown,
                        flags: None,
                        cas: None,
                    });
                }
            }
            None => self.model[key] = Known::Unknown,
        }
    }

    /// `res` None: a text `noreply`. `ArithRes::Silent`: a quiet success (meta, binary) or an
    /// `ma` without `v`.
    pub(super) fn apply_arith(
        &mut self,
        op: &Op,
        reply: &[u8],
        res: Option<ArithRes>,
        cas: Option<u64>,
    ) {
        let Sem::Arith {
            key,
            incr,
            delta,
            vivify,
        } = &op.sem
        else {
            unreachable!()
        };
        let key = *key;
        let step = |n: u64| {
            if *incr {
                n.wrapping_add(*delta)
            } else {
                n.saturating_sub(*delta)
            }
        };
        let current = self.model[key].clone();
        // (expected result, whether the item is created)
        let predicted: Option<(ArithRes, bool)> = match &current {
            Known::Unknown => None,
            Known::Absent => Some(match vivify {
                Some(init) => (ArithRes::Value(*init), true),
                None => (ArithRes::NotFound, false),
            }),
            Known::Present(item) => match &item.data {
                Data::Counter(n) => Some((ArithRes::Value(step(*n)), false)),
                Data::Exact(d) => match numeric(d) {
                    Numeric::Yes(n) => Some((ArithRes::Value(step(n)), false)),
                    Numeric::No => Some((ArithRes::NonNumeric, false)),
                    Numeric::Unsure => None,
                },
                Data::Unknown => None,
            },
        };
        let created = predicted.is_some_and(|p| p.1);
        // A quiet meta success shows only a created item; a quiet binary one shows nothing.
        let meta_quiet = op.proto == Proto::Meta && op.style.quiet;
        let outcome: Option<ArithRes> = match (res, predicted) {
            (None, p) => p.map(|p| p.0),
            (Some(r @ (ArithRes::Silent | ArithRes::Hidden | ArithRes::Value(_))), p) => {
                let silent = r == ArithRes::Silent;
                if meta_quiet && silent == created && p.is_some() {
                    self.fail(
                        op,
                        reply,
                        if created {
                            "a quiet ma that created its item said nothing"
                        } else {
                            "a quiet ma success was shown"
                        },
                    );
                }
                match (r, p) {
                    (ArithRes::Value(got), Some((ArithRes::Value(want), _))) if got != want => {
                        self.fail(
                            op,
                            reply,
                            &format!("incr/decr gave {got}, the model expects {want} (an increment lost?)"),
                        )
                    }
                    (_, Some((ArithRes::Value(want), _))) => Some(ArithRes::Value(want)),
                    (_, Some((p, _))) => self.fail(
                        op,
                        reply,
                        &format!("incr/decr succeeded ({r:?}), the model expects {p:?}"),
                    ),
                    (ArithRes::Value(got), None) => Some(ArithRes::Value(got)),
                    (_, None) => Some(ArithRes::Hidden),
                }
            }
            (Some(r), Some((p, _))) if r != p => self.fail(
                op,
                reply,
                &format!("incr/decr answered {r:?}, the model expects {p:?}"),
            ),
            (Some(r), _) => Some(r),
        };
        match outcome {
            None => self.model[key] = Known::Unknown,
            Some(ArithRes::Value(v)) => {
                let flags = match &current {
                    Known::Present(item) => item.flags,
                    _ => None,
                };
                self.model[key] = Known::Present(Item {
                    data: Data::Counter(v),
                    flags: if created { Some(0) } else { flags },
                    cas,
                });
            }
            Some(ArithRes::NotFound) => self.model[key] = Known::Absent,
            Some(ArithRes::NonNumeric) => {
                if current == Known::Unknown {
                    self.model[key] = Known::Present(Item {
                        data: Data::Unknown,
                        flags: None,
                        cas: None,
                    });
                }
            }
            Some(ArithRes::Hidden) => {
                // Succeeded, value unknown.
                self.model[key] = Known::Present(Item {
                    data: Data::Unknown,
                    flags: None,
                    cas: None,
                });
            }
            Some(ArithRes::Silent) => unreachable!(),
        }
    }
}
