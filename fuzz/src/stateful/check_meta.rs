//! Meta-protocol replies read into results for the model: the return codes, the echoed
//! opaque and key, the return flags asked for, quiet mode's silences.

use memcached_rs::protocol::base64;

use crate::replies::TextReply;

use super::check::parse_u64;
use super::model::{ArithRes, DeleteRes, Hit, StoreRes};
use super::op::{key_name, Op, Sem};
use super::Run;

impl Run<'_> {
    /// Checks a meta reply: one return code, the echoed opaque and key, the flags asked for.
    pub(super) fn check_meta(&mut self, op: &Op, reply: &[u8], units: &[TextReply<'_>]) {
        if let Sem::Other(name) = op.sem {
            let lines: Vec<&[u8]> = units.iter().map(TextReply::line).collect();
            return self.check_other_text(op, reply, name, &lines, units);
        }
        let silent = units.is_empty();
        if units.len() > 1 {
            self.fail(op, reply, "more than one meta reply");
        }
        let (line, data) = match units.first() {
            Some(TextReply::Line(l)) => (*l, None),
            Some(TextReply::Block { line, data }) => (*line, Some(*data)),
            None => (&b""[..], None),
        };
        let tokens: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        let code = tokens[0];
        let flag = |c: u8| -> Option<&[u8]> {
            tokens[1..]
                .iter()
                .find(|t| t.first() == Some(&c))
                .map(|t| &t[1..])
        };
        if !silent && !line.starts_with(b"CLIENT_ERROR") {
            // Every meta reply echoes O and k.
            if let Some(o) = op.style.opaque {
                if flag(b'O') != Some(format!("{o}").as_bytes()) {
                    self.fail(op, reply, "opaque not echoed");
                }
            }
            if op.style.want_key {
                let key = match &op.sem {
                    Sem::Store { key, .. } | Sem::Delete { key, .. } | Sem::Arith { key, .. } => {
                        *key
                    }
                    Sem::Get { keys, .. } => keys[0],
                    _ => unreachable!(),
                };
                // A hit echoes the key as the item was stored (plain or base64, with `b`).
                let mut encoded = Vec::new();
                base64::encode_into(key_name(key), &mut encoded);
                let echoed = flag(b'k');
                let ok = if echoed == Some(key_name(key)) {
                    !op.style.b64 || code == b"VA" || code == b"HD"
                } else if echoed == Some(&encoded[..]) {
                    tokens.contains(&&b"b"[..]) && (op.style.b64 || code == b"VA" || code == b"HD")
                } else {
                    false
                };
                if !ok {
                    self.fail(op, reply, "key not echoed");
                }
            }
        }
        match &op.sem {
            Sem::Store { .. } => {
                let res = if silent {
                    if !op.style.quiet {
                        self.fail(op, reply, "ms not answered");
                    }
                    Some(StoreRes::Stored)
                } else {
                    Some(match code {
                        b"HD" if !op.style.quiet => StoreRes::Stored,
                        b"NS" => StoreRes::NotStored,
                        b"EX" => StoreRes::Exists,
                        b"NF" => StoreRes::NotFound,
                        _ => self.fail(op, reply, "not an ms reply"),
                    })
                };
                let cas = if res == Some(StoreRes::Stored) && op.style.want_cas && !silent {
                    match flag(b'c').and_then(parse_u64) {
                        Some(c) => Some(c),
                        None => self.fail(op, reply, "ms c: no cas in the reply"),
                    }
                } else {
                    None
                };
                self.apply_store(op, reply, res, cas);
            }
            Sem::Get { keys, touch } => {
                let key = keys[0];
                let hit = if silent {
                    if !op.style.quiet {
                        self.fail(op, reply, "mg not answered");
                    }
                    None
                } else {
                    match (code, data) {
                        (b"EN", None) => {
                            if op.style.quiet {
                                self.fail(op, reply, "quiet mg reported a miss");
                            }
                            None
                        }
                        (b"VA", Some(d)) if op.style.want_value => Some(d.to_vec()),
                        (b"HD", None) if !op.style.want_value => Some(Vec::new()),
                        _ => self.fail(op, reply, "not an mg reply"),
                    }
                    .map(|d| {
                        let num = |c: u8| flag(c).map(|v| parse_u64(v).ok_or(()));
                        let flags = num(b'f');
                        let cas = num(b'c');
                        let size = num(b's');
                        if op.style.want_flags != flags.is_some()
                            || op.style.want_cas != cas.is_some()
                            || op.style.want_size != size.is_some()
                            || op.style.want_ttl != flag(b't').is_some()
                            || matches!(flags, Some(Err(_)))
                            || matches!(cas, Some(Err(_)))
                            || matches!(size, Some(Err(_)))
                        {
                            self.fail(op, reply, "mg return flags do not match the request");
                        }
                        if let Some(t) = flag(b't') {
                            if t != b"-1" && parse_u64(t).is_none() {
                                self.fail(op, reply, "mg t: not a ttl");
                            }
                        }
                        Hit {
                            data: op.style.want_value.then_some(d),
                            size: size.map(|s| s.expect("checked") as usize),
                            flags: flags.map(|f| f.expect("checked") as u32),
                            cas: cas.map(|c| c.expect("checked")),
                        }
                    })
                };
                self.apply_read(op, reply, key, hit, *touch);
            }
            Sem::Delete { key, cas } => {
                let res = if silent {
                    if !op.style.quiet {
                        self.fail(op, reply, "md not answered");
                    }
                    DeleteRes::Deleted
                } else {
                    match code {
                        b"HD" if !op.style.quiet => DeleteRes::Deleted,
                        b"NF" => DeleteRes::NotFound,
                        b"EX" => DeleteRes::Exists,
                        _ => self.fail(op, reply, "not an md reply"),
                    }
                };
                self.apply_delete(op, reply, *key, *cas, Some(res));
            }
            Sem::Arith { .. } => {
                let (res, cas) = if silent {
                    if !op.style.quiet {
                        self.fail(op, reply, "ma not answered");
                    }
                    (ArithRes::Silent, None)
                } else if line == b"CLIENT_ERROR cannot increment or decrement non-numeric value" {
                    (ArithRes::NonNumeric, None)
                } else {
                    match (code, data) {
                        (b"NF", None) => (ArithRes::NotFound, None),
                        (b"VA", Some(d)) if op.style.want_value => match parse_u64(d) {
                            Some(v) => (ArithRes::Value(v), flag(b'c').and_then(parse_u64)),
                            None => self.fail(op, reply, "ma v: not a number"),
                        },
                        (b"HD", None) if !op.style.want_value => {
                            (ArithRes::Hidden, flag(b'c').and_then(parse_u64))
                        }
                        _ => self.fail(op, reply, "not an ma reply"),
                    }
                };
                if op.style.want_cas
                    && matches!(res, ArithRes::Value(_) | ArithRes::Hidden)
                    && cas.is_none()
                {
                    self.fail(op, reply, "ma c: no cas");
                }
                self.apply_arith(op, reply, Some(res), cas);
            }
            Sem::Flush | Sem::Other(_) => unreachable!(),
        }
    }
}
