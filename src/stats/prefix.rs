//! `stats detail`: per-key-prefix counts of gets, hits, sets and deletes (memcached's
//! `stats_prefix.c`). Off by default; `stats detail on` or `-D CHAR` turns it on. A key's prefix
//! is what comes before its first delimiter (`:` unless `-D` names another); keys without one
//! are not counted.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::sync::lock;

/// memcached's cap on distinct prefixes: the table must not grow without bound.
const MAX_PREFIXES: usize = 1 << 16;

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    gets: u64,
    hits: u64,
    sets: u64,
    deletes: u64,
}

/// The per-prefix table.
#[derive(Debug)]
pub struct PrefixStats {
    enabled: AtomicBool,
    delimiter: u8,
    table: Mutex<BTreeMap<Vec<u8>, Counts>>,
}

impl Default for PrefixStats {
    fn default() -> Self {
        Self::new(None)
    }
}

impl PrefixStats {
    /// memcached's `-D`: a delimiter turns counting on from the start.
    pub fn new(delimiter: Option<char>) -> Self {
        PrefixStats {
            enabled: AtomicBool::new(delimiter.is_some()),
            // memcached keeps one byte of the delimiter.
            delimiter: delimiter.map_or(b':', |c| c as u32 as u8),
            table: Mutex::new(BTreeMap::new()),
        }
    }

    /// Whether counting is on.
    #[inline]
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// `stats detail on|off`.
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }

    /// Counts a get of `key`.
    pub fn record_get(&self, key: &[u8], hit: bool) {
        self.record(key, |c| {
            c.gets += 1;
            c.hits += u64::from(hit);
        });
    }

    /// Counts a set of `key`.
    pub fn record_set(&self, key: &[u8]) {
        self.record(key, |c| c.sets += 1);
    }

    /// Counts a delete of `key`.
    pub fn record_delete(&self, key: &[u8]) {
        self.record(key, |c| c.deletes += 1);
    }

    fn record(&self, key: &[u8], update: impl FnOnce(&mut Counts)) {
        if !self.enabled() {
            return;
        }
        // As memcached, a NUL ends the key for this purpose and a key without the delimiter
        // has no prefix.
        let key = key.split(|&b| b == 0).next().unwrap_or_default();
        let Some(end) = key.iter().position(|&b| b == self.delimiter) else {
            return;
        };
        let prefix = &key[..end];
        let mut table = lock(&self.table);
        if let Some(c) = table.get_mut(prefix) {
            update(c);
        } else if table.len() < MAX_PREFIXES {
            let mut c = Counts::default();
            update(&mut c);
            table.insert(prefix.to_vec(), c);
        }
    }

    /// `stats detail dump`: one `PREFIX` line per prefix, then `END`.
    pub fn dump(&self, out: &mut Vec<u8>) {
        for (prefix, c) in lock(&self.table).iter() {
            out.extend_from_slice(b"PREFIX ");
            out.extend_from_slice(prefix);
            // Writing to a Vec cannot fail.
            let _ = write!(
                out,
                " get {} hit {} set {} del {}\r\n",
                c.gets, c.hits, c.sets, c.deletes
            );
        }
        out.extend_from_slice(b"END\r\n");
    }

    /// `stats reset` forgets every prefix.
    pub fn clear(&self) {
        lock(&self.table).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_prefix_only_when_enabled() {
        let p = PrefixStats::default();
        p.record_get(b"user:1", true);
        p.set_enabled(true);
        p.record_get(b"user:1", true);
        p.record_get(b"user:2", false);
        p.record_set(b"user:3");
        p.record_delete(b"session:9");
        p.record_set(b"nodelimiter");
        let mut out = Vec::new();
        p.dump(&mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "PREFIX session get 0 hit 0 set 0 del 1\r\nPREFIX user get 2 hit 1 set 1 del 0\r\nEND\r\n"
        );
        p.clear();
        out.clear();
        p.dump(&mut out);
        assert_eq!(out, b"END\r\n");
    }
}
