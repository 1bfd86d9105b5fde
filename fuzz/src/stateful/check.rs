//! Checking replies: each operation's reply split in its protocol's grammar and handed to
//! that protocol's checks; the checks text and meta share; what is tolerated after raw bytes.

use memcached_rs::config::PROTOCOL_VERSION;
use memcached_rs::protocol::base64;

use crate::replies::{split_binary, split_text, TextReply};

use super::model::Known;
use super::op::{Op, Proto, Sem, KEYS};
use super::Run;

impl Run<'_> {
    /// Checks one well-formed operation's reply and updates the model from it.
    pub(super) fn check(&mut self, op: &Op, reply: &[u8]) {
        if self.tainted && tainted_error(op.proto, reply) {
            // Raw bytes may have shrunk the memory limit (`cache_memlimit`), and more: only
            // the grammar is checked then.
            self.model.iter_mut().for_each(|k| *k = Known::Unknown);
            return;
        }
        if let Sem::Other("metadump") = op.sem {
            // memcached ends metadump's lines with a bare \n, and the dump with END\r\n.
            let ok = reply == b"ERROR cannot pipeline other commands before metadump\r\n"
                || reply.strip_suffix(b"END\r\n").is_some_and(|items| {
                    items.is_empty()
                        || items.ends_with(b"\n")
                            && items[..items.len() - 1]
                                .split(|&b| b == b'\n')
                                .all(|l| l.starts_with(b"key=") && !l.contains(&b'\r'))
                });
            if !ok {
                self.fail(op, reply, "not a metadump reply");
            }
            return;
        }
        match op.proto {
            Proto::Binary => self.check_binary(op, reply),
            Proto::Text | Proto::Meta => {
                let units = match split_text(reply) {
                    Ok(u) => u,
                    Err(e) => self.fail(op, reply, &format!("the reply does not parse: {e}")),
                };
                if op.proto == Proto::Text {
                    self.check_text(op, reply, &units);
                } else {
                    self.check_meta(op, reply, &units);
                }
            }
        }
    }

    /// A text or meta command that changes no item: only its shape (and `me`'s hit or miss).
    pub(super) fn check_other_text(
        &mut self,
        op: &Op,
        reply: &[u8],
        name: &str,
        lines: &[&[u8]],
        units: &[TextReply<'_>],
    ) {
        let ok = match name {
            "version" => lines == [format!("VERSION {PROTOCOL_VERSION}").as_bytes()],
            "ok" => lines == [b"OK".as_slice()],
            "silent" => lines.is_empty(),
            "mn" => lines == [b"MN".as_slice()],
            "stats" => {
                lines.last() == Some(&b"END".as_slice())
                    && lines[..lines.len() - 1]
                        .iter()
                        .all(|l| l.starts_with(b"STAT "))
                    && units.iter().all(|u| matches!(u, TextReply::Line(_)))
            }
            "detail" => lines.last() == Some(&b"END".as_slice()),
            "me" => lines.len() == 1 && (lines[0] == b"EN" || lines[0].starts_with(b"ME ")),
            _ => false,
        };
        if !ok {
            self.fail(op, reply, &format!("not a {name} reply"));
        }
        if name == "me" && !self.tainted {
            // `me` says whether the key exists.
            let key = key_of_me(&op.bytes);
            let present = lines[0] != b"EN";
            match (&self.model[key], present) {
                (Known::Absent, true) => self.fail(op, reply, "me sees a key the model has not"),
                (Known::Present(_), false) => self.fail(op, reply, "me misses a stored key"),
                (Known::Unknown, false) => self.model[key] = Known::Absent,
                _ => {}
            }
        }
    }
}

/// Whether a reply carries a server error (out of memory, too large) or a client error:
/// after raw bytes these may come from settings the raw bytes changed.
fn tainted_error(proto: Proto, reply: &[u8]) -> bool {
    match proto {
        Proto::Binary => match split_binary(reply) {
            Ok(frames) => frames
                .iter()
                .any(|f| matches!(f.status, 0x03 | 0x04 | 0x05 | 0x82)),
            Err(_) => false,
        },
        _ => match split_text(reply) {
            Ok(units) => units.iter().any(|u| {
                let l = u.line();
                l.starts_with(b"SERVER_ERROR") || l.starts_with(b"CLIENT_ERROR")
            }),
            Err(_) => false,
        },
    }
}

/// A decimal number as replies print it: digits only, at most 20.
pub(super) fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 20 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

fn key_of_me(line: &[u8]) -> usize {
    let token = line[3..]
        .split(|&b| b == b' ' || b == b'\r')
        .next()
        .unwrap_or(b"");
    let decoded = base64::decode(token);
    KEYS.iter()
        .position(|k| *k == token || decoded.as_deref() == Some(*k))
        .expect("me names a key of the key space")
}
