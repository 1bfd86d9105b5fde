//! `lru_crawler`, `stats cachedump`, `slabs` and `lru`: the cache's maintenance commands,
//! answered as memcached 1.6.38 answers them.

use std::io::Write;
use std::sync::atomic::Ordering;

use super::{reply, ConnState, Handler, Next, OUTPUT_HIGH_WATER};
use crate::cache::crawler::DumpedItem;
use crate::cache::slabs::ReassignError;
use crate::cache::slabs::MAX_CLASSES;
use crate::cache::TuneError;
use crate::numparse::{safe_strtod, safe_strtol, safe_strtoul};
use crate::protocol::base64;
use crate::protocol::text::Tokens;

const BAD_CLASS: &str = "BADCLASS invalid class id";
const DISABLED: &str = "CLIENT_ERROR lru crawler disabled";

/// Parses memcached's class selection: `all` (or `hash` for the dumps), or ids like `1,2,5`.
fn classes(arg: &[u8], allow_hash: bool) -> Option<Vec<bool>> {
    let mut on = vec![false; MAX_CLASSES];
    if arg == b"all" || (allow_hash && arg == b"hash") {
        on[1..].fill(true);
        return Some(on);
    }
    for id in arg.split(|&b| b == b',').filter(|p| !p.is_empty()) {
        let id = safe_strtoul(id)? as usize;
        if !(1..MAX_CLASSES).contains(&id) {
            return None;
        }
        on[id] = true;
    }
    Some(on)
}

/// memcached's `uriencode` of a key in dumps: unreserved bytes as they are, others `%XX`.
fn uri_encode(key: &[u8], out: &mut Vec<u8>) {
    for &b in key {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else {
            // Writing to a Vec cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// The two item dumps of `lru_crawler`.
#[derive(Clone, Copy)]
enum Dump {
    /// `metadump`: `key=… exp=… la=… cas=… fetch=… cls=… size=… flags=…` lines, then `END`.
    Meta,
    /// `mgdump`: `mg <key>` lines (`mg <base64> b` for binary keys), then `EN`.
    Mg,
}

/// A metadump line. memcached ends these with a bare `\n` (only `END` has `\r\n`).
fn metadump_line(item: &DumpedItem, out: &mut Vec<u8>) {
    out.extend_from_slice(b"key=");
    uri_encode(&item.key, out);
    // Writing to a Vec cannot fail.
    let _ = writeln!(
        out,
        " exp={} la={} cas={} fetch={} cls={} size={} flags={}",
        item.exptime,
        item.last_access,
        item.cas,
        if item.fetched { "yes" } else { "no" },
        item.class,
        item.size,
        item.flags
    );
}

/// An mgdump line: a meta get a client can complete with the flags it wants and send back.
fn mgdump_line(item: &DumpedItem, out: &mut Vec<u8>) {
    out.extend_from_slice(b"mg ");
    if item.binary_key {
        base64::encode_into(&item.key, out);
        out.extend_from_slice(b" b\r\n");
    } else {
        out.extend_from_slice(&item.key);
        out.extend_from_slice(b"\r\n");
    }
}

impl Handler<'_> {
    /// `lru_crawler crawl|metadump|mgdump|sleep|tocrawl|enable|disable`.
    pub(super) fn lru_crawler(
        &self,
        t: &Tokens<'_>,
        resume: usize,
        out: &mut Vec<u8>,
        session: &ConnState,
    ) -> Next {
        let crawler = self.server.cache.crawler();
        let enabled = crawler.enabled.load(Ordering::Relaxed);
        match (t.count(), t.get(1)) {
            (4, b"crawl") => {
                if !enabled {
                    reply(out, DISABLED, false);
                } else if let Some(on) = classes(t.get(2), false) {
                    if crawler.running.load(Ordering::Relaxed) {
                        reply(out, "BUSY currently processing crawler request", false);
                    } else {
                        self.server
                            .cache
                            .crawl(&on, crawler.tocrawl.load(Ordering::Relaxed));
                        reply(out, "OK", false);
                    }
                } else {
                    reply(out, BAD_CLASS, false);
                }
                Next::ReadLine
            }
            (4, b"metadump") => self.dump(Dump::Meta, t.get(2), resume, out, session),
            (4, b"mgdump") => self.dump(Dump::Mg, t.get(2), resume, out, session),
            (4, b"tocrawl") => {
                match safe_strtoul(t.get(2)) {
                    Some(n) => {
                        crawler.tocrawl.store(u64::from(n), Ordering::Relaxed);
                        reply(out, "OK", false);
                    }
                    None => reply(out, "CLIENT_ERROR bad command line format", false),
                }
                Next::ReadLine
            }
            (4, b"sleep") => {
                match safe_strtoul(t.get(2)) {
                    Some(n) if n > 1_000_000 => {
                        reply(out, "CLIENT_ERROR sleep must be one second or less", false)
                    }
                    Some(n) => {
                        crawler.sleep_us.store(u64::from(n), Ordering::Relaxed);
                        reply(out, "OK", false);
                    }
                    None => reply(out, "CLIENT_ERROR bad command line format", false),
                }
                Next::ReadLine
            }
            (3, b"enable") => {
                // memcached 1.6.38 starts its crawler thread here, which fails when it runs.
                if crawler.enabled.swap(true, Ordering::Relaxed) {
                    reply(out, "ERROR failed to start lru crawler thread", false);
                } else {
                    reply(out, "OK", false);
                }
                Next::ReadLine
            }
            (3, b"disable") => {
                crawler.enabled.store(false, Ordering::Relaxed);
                reply(out, "OK", false);
                Next::ReadLine
            }
            _ => {
                reply(out, "ERROR", false);
                Next::ReadLine
            }
        }
    }

    /// `lru_crawler metadump|mgdump`: one line per live item, streamed (it pauses whenever
    /// enough output is queued and resumes where it stopped).
    fn dump(
        &self,
        kind: Dump,
        arg: &[u8],
        resume: usize,
        out: &mut Vec<u8>,
        session: &ConnState,
    ) -> Next {
        if resume == 0 {
            let error = if !self.server.cache.crawler().enabled.load(Ordering::Relaxed) {
                Some(DISABLED)
            } else if !self.server.settings.dump_enabled {
                Some(match kind {
                    Dump::Meta => "ERROR metadump not allowed",
                    Dump::Mg => "ERROR key dump not allowed",
                })
            } else if session.stacked() {
                // memcached hands the socket to its crawler thread, which it cannot do with
                // replies still queued.
                Some(match kind {
                    Dump::Meta => "ERROR cannot pipeline other commands before metadump",
                    Dump::Mg => "ERROR cannot pipeline other commands before mgdump",
                })
            } else {
                None
            };
            if let Some(e) = error {
                reply(out, e, false);
                return Next::ReadLine;
            }
        }
        let Some(on) = classes(arg, true) else {
            reply(out, BAD_CLASS, false);
            return Next::ReadLine;
        };
        let cursor = resume.saturating_sub(1) as u64;
        let stopped = self.server.cache.walk_items(&on, cursor, |item| {
            match kind {
                Dump::Meta => metadump_line(item, out),
                Dump::Mg => mgdump_line(item, out),
            }
            out.len() < OUTPUT_HIGH_WATER
        });
        match stopped {
            Some(cursor) => Next::Paused(cursor as usize + 1),
            None => {
                out.extend_from_slice(match kind {
                    Dump::Meta => b"END\r\n",
                    Dump::Mg => b"EN\r\n",
                });
                Next::ReadLine
            }
        }
    }

    /// `stats cachedump <class> <limit>`: `ITEM key [size b; expiry s]` lines for the items of
    /// one class's cold LRU (memcached lists no other segment).
    pub(super) fn cachedump(&self, t: &Tokens<'_>, out: &mut Vec<u8>) {
        if !self.server.settings.dump_enabled {
            return reply(out, "CLIENT_ERROR stats cachedump not allowed", false);
        }
        if t.count() < 5 {
            return reply(out, "CLIENT_ERROR bad command line", false);
        }
        let (Some(id), Some(limit)) = (safe_strtoul(t.get(2)), safe_strtoul(t.get(3))) else {
            return reply(out, "CLIENT_ERROR bad command line format", false);
        };
        if id as usize >= MAX_CLASSES {
            return reply(out, "CLIENT_ERROR Illegal slab id", false);
        }
        let started = self.server.cache.clock().process_started();
        let mut left = if limit == 0 { u32::MAX } else { limit };
        // memcached caps the dump at 2 MB.
        let cap = out.len() + 2 * 1024 * 1024;
        self.server
            .cache
            .cold_items(id as u8, |key, nbytes, rel_exptime| {
                out.extend_from_slice(b"ITEM ");
                out.extend_from_slice(key);
                let exp = match rel_exptime {
                    0 => 0,
                    e => started + i64::from(e),
                };
                let _ = write!(out, " [{nbytes} b; {exp} s]\r\n");
                left -= 1;
                left > 0 && out.len() < cap
            });
        out.extend_from_slice(b"END\r\n");
    }

    /// `lru tune <hot%> <warm%> <hot factor> <warm factor>`, `lru mode flat|segmented` and
    /// `lru temp_ttl <ttl>` (negative: off). `mode` and `temp_ttl` need the LRU maintainer.
    pub(super) fn lru(&self, t: &Tokens<'_>, out: &mut Vec<u8>) {
        let tuning = self.server.cache.lru_tuning();
        let n = t.count();
        let line = match t.get(1) {
            b"tune" if n >= 7 => {
                let values = (
                    safe_strtoul(t.get(2)),
                    safe_strtoul(t.get(3)),
                    safe_strtod(t.get(4)),
                    safe_strtod(t.get(5)),
                );
                match values {
                    (Some(hot), Some(warm), Some(hot_factor), Some(warm_factor)) => {
                        match tuning.tune(hot, warm, hot_factor, warm_factor) {
                            Ok(()) => "OK",
                            Err(TuneError::PercentTooHigh) => {
                                "ERROR hot and warm pcts must not exceed 80"
                            }
                            Err(TuneError::FactorNotPositive) => {
                                "ERROR hot/warm age factors must be greater than 0"
                            }
                        }
                    }
                    _ => "ERROR",
                }
            }
            b"mode" if n >= 4 => match t.get(2) {
                b"flat" if tuning.set_segmented(false) => "OK",
                b"segmented" if tuning.set_segmented(true) => "OK",
                _ => "ERROR",
            },
            b"temp_ttl" if n >= 4 => match safe_strtol(t.get(2)) {
                Some(ttl) if tuning.set_temp_ttl(ttl) => "OK",
                _ => "ERROR",
            },
            _ => "ERROR",
        };
        reply(out, line, t.noreply());
    }

    /// `slabs reassign <src> <dst>` and `slabs automove <0|1|2>`.
    pub(super) fn slabs(&self, t: &Tokens<'_>, out: &mut Vec<u8>) {
        let mover = self.server.cache.mover();
        let n = t.count();
        if n == 5 && t.get(1) == b"reassign" {
            if !self.server.settings.slab_reassign {
                return reply(out, "CLIENT_ERROR slab reassignment disabled", false);
            }
            let (Some(src), Some(dst)) = (safe_strtol(t.get(2)), safe_strtol(t.get(3))) else {
                return reply(out, "CLIENT_ERROR bad command line format", false);
            };
            let line = match self.server.cache.reassign_command(src, dst) {
                Ok(()) => "OK",
                Err(ReassignError::Busy) => "BUSY currently processing reassign request",
                Err(ReassignError::BadClass) => "BADCLASS invalid src or dst class id",
                Err(ReassignError::NoSpare) => "NOSPARE source class has no spare pages",
                Err(ReassignError::Same) => "SAME src and dst class are identical",
            };
            return reply(out, line, false);
        }
        if n >= 4 && t.get(1) == b"automove" {
            let noreply = t.get(n - 2) == b"noreply";
            if t.get(2) == b"ratio" {
                let ratio = std::str::from_utf8(t.get(3))
                    .ok()
                    .and_then(|r| r.parse::<f64>().ok());
                if n < 5 || ratio.is_none() {
                    return reply(out, "ERROR", false);
                }
                return reply(out, "OK", noreply);
            }
            match safe_strtoul(t.get(2)) {
                None => reply(out, "CLIENT_ERROR bad command line format", noreply),
                Some(level @ 0..=2) => {
                    mover.automove.store(level as u8, Ordering::Relaxed);
                    reply(out, "OK", noreply);
                }
                Some(_) => reply(out, "ERROR", noreply),
            }
            return;
        }
        reply(out, "ERROR", false);
    }
}
