//! Keeping the cache across a restart: whether a cache found in a file may be trusted, and the
//! mark a clean stop leaves for the next process.
//!
//! The file's header words say how the last process ended. While a process runs, the stop
//! word is cleared; it is set only after every thread that writes items has stopped and the
//! counters a restart needs (the CAS high-water mark, the flush state) are written beside it.
//! So a process that died any other way (kill -9, the OOM killer, a panic, a power cut) leaves
//! no mark, and its file is cleared rather than read: an item it was writing could be torn.
//! A change of the settings that shape the memory (`-m`, `-n`, `-f`, `-I`, `-C`,
//! `slab_chunk_max`, `slab_sizes`, the LRU's segments) or of this build's layout clears it too.

use std::fmt;
use std::fs::File;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::arena::{self, LAYOUT_VERSION};
use super::restore::{Restored, TIME_BASE_WORD};
use super::{item, Cache, CacheConfig, ClassTable, Clock};

/// Header words (after [`TIME_BASE_WORD`]) of the cache's own state.
pub(super) const STOP_WORD: usize = 1;
const SETTINGS_WORD: usize = 2;
const LAST_CAS_WORD: usize = 3;
pub(super) const OLDEST_LIVE_WORD: usize = 4;
pub(super) const OLDEST_CAS_WORD: usize = 5;

/// The stop word of a file whose process stopped cleanly.
const CLEAN_STOP: u64 = u64::from_le_bytes(*b"STOPPED!");

/// How a cache in a file started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarmStart {
    /// The items of a clean stop, indexed again.
    Restored(Restored),
    /// Empty, and why.
    Empty(EmptyBecause),
}

/// Why a cache in a file started empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmptyBecause {
    /// The file held no cache (a new file, or one of another program or layout).
    NoCache,
    /// The process that wrote it did not stop cleanly.
    UncleanStop,
    /// It was written with other memory settings, or by a build of another item layout.
    SettingsChanged,
}

impl fmt::Display for EmptyBecause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EmptyBecause::NoCache => "it holds no cache from an earlier run",
            EmptyBecause::UncleanStop => {
                "the last run did not stop cleanly (killed or crashed), so its items may be torn"
            }
            EmptyBecause::SettingsChanged => {
                "the memory settings (-m, -n, -f, -I, -C, slab_chunk_max, slab_sizes, the LRU \
                 segments) or the item layout changed since the last run"
            }
        })
    }
}

impl Cache {
    /// A cache whose item memory lives in `file`, with the items of the last run when that run
    /// stopped cleanly with the same memory settings; otherwise the file is cleared. From now
    /// on the file reads as a run in progress until [`Cache::mark_clean_stop`].
    pub fn reopen(
        config: &CacheConfig,
        clock: Arc<Clock>,
        file: &File,
    ) -> io::Result<(Cache, WarmStart)> {
        let stamp = settings_stamp(config);
        let verdict = match arena::stored_words(file)? {
            None => Err(EmptyBecause::NoCache),
            Some(w) if w[STOP_WORD] != CLEAN_STOP => Err(EmptyBecause::UncleanStop),
            Some(w) if w[SETTINGS_WORD] != stamp => Err(EmptyBecause::SettingsChanged),
            Some(w) => Ok(w[LAST_CAS_WORD]),
        };
        if verdict.is_err() {
            // Cleared before it is mapped: nothing of it is ever read.
            file.set_len(0)?;
        }
        let (cache, restored) = Cache::in_file(config, clock, file)?;
        let words = cache.arena().meta_words();
        words[STOP_WORD].store(0, Ordering::Release);
        words[SETTINGS_WORD].store(stamp, Ordering::Relaxed);
        for word in [LAST_CAS_WORD, OLDEST_LIVE_WORD, OLDEST_CAS_WORD] {
            words[word].store(0, Ordering::Relaxed);
        }
        cache.arena().flush()?;
        Ok(match verdict {
            Ok(last_cas) => {
                cache.last_cas.fetch_max(last_cas, Ordering::Relaxed);
                (cache, WarmStart::Restored(restored))
            }
            Err(why) => (cache, WarmStart::Empty(why)),
        })
    }

    /// Marks the file as cleanly stopped, for the next process to trust. Call it only once
    /// nothing writes items any more (every worker and background thread has stopped).
    /// Returns whether there was a file to mark.
    pub fn mark_clean_stop(&self) -> io::Result<bool> {
        let words = self.arena().meta_words();
        if words.len() <= OLDEST_CAS_WORD {
            return Ok(false);
        }
        let keep = |word: usize, value: u64| words[word].store(value, Ordering::Relaxed);
        keep(LAST_CAS_WORD, self.last_cas.load(Ordering::Relaxed));
        keep(
            OLDEST_LIVE_WORD,
            u64::from(self.oldest_live.load(Ordering::Acquire)),
        );
        keep(OLDEST_CAS_WORD, self.oldest_cas.load(Ordering::Acquire));
        debug_assert_ne!(words[TIME_BASE_WORD].load(Ordering::Relaxed), 0);
        // The mark last, once what it vouches for is written.
        self.arena().flush()?;
        words[STOP_WORD].store(CLEAN_STOP, Ordering::Release);
        self.arena().flush()?;
        Ok(true)
    }
}

/// A fingerprint of what decides where items sit in memory and how they are laid out: a file
/// written under another one is not read.
fn settings_stamp(config: &CacheConfig) -> u64 {
    let table = ClassTable::build(
        &config.slab_classes,
        config.slab_chunk_max,
        config.item_size_max,
    );
    let mut stamp = Fnv::default();
    for n in [
        LAYOUT_VERSION,
        item::LAYOUT_VERSION,
        config.memory_limit as u64,
        config.item_size_max as u64,
        config.slab_chunk_max as u64,
        u64::from(config.use_cas),
        u64::from(config.lru.segmented),
        table.largest() as u64,
    ] {
        stamp.add(n);
    }
    for class in 1..=table.largest() {
        stamp.add(table.chunk_size(class) as u64);
    }
    stamp.0
}

/// FNV-1a over 64-bit words.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn add(&mut self, word: u64) {
        for byte in word.to_le_bytes() {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests;
