//! The LRU crawler: walks the LRUs reclaiming expired and flushed items before anyone asks for
//! them (memcached's `crawler.c`), and walks all items for `lru_crawler metadump` and
//! `stats cachedump`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::item;
use super::table::{self, Lru, SEGMENTS};
use super::{Cache, Found, RelTime, SHARDS};

/// Crawler settings and figures, shared by the commands and the background thread.
#[derive(Debug)]
pub struct CrawlerState {
    /// `lru_crawler enable|disable`.
    pub enabled: AtomicBool,
    /// `lru_crawler sleep`: microseconds to pause every 1000 items.
    pub sleep_us: AtomicU64,
    /// `lru_crawler tocrawl`: items to check per class per run (0 = all).
    pub tocrawl: AtomicU64,
    /// A crawl is in progress.
    pub running: AtomicBool,
    /// Crawls started (`lru_crawler_starts`).
    pub starts: AtomicU64,
}

impl CrawlerState {
    /// The state the settings ask for.
    pub fn new(config: &super::CacheConfig) -> CrawlerState {
        CrawlerState {
            enabled: AtomicBool::new(config.lru_crawler),
            sleep_us: AtomicU64::new(u64::from(config.lru_crawler_sleep)),
            tocrawl: AtomicU64::new(u64::from(config.lru_crawler_tocrawl)),
            running: AtomicBool::new(false),
            starts: AtomicU64::new(0),
        }
    }
}

/// One item's metadata, as the dumps print it.
#[derive(Debug, Clone)]
pub struct DumpedItem {
    /// The key.
    pub key: Vec<u8>,
    /// Expiry as a unix time, -1 for never.
    pub exptime: i64,
    /// Last access as a unix time.
    pub last_access: i64,
    /// CAS id.
    pub cas: u64,
    /// Read since stored.
    pub fetched: bool,
    /// Slab class.
    pub class: u8,
    /// Bytes in its chunks.
    pub size: usize,
    /// Client flags (metadump's `flags=`).
    pub flags: u32,
    /// The key was given base64-encoded (meta `b`): mgdump prints it encoded again.
    pub binary_key: bool,
}

/// What a crawl did, and when the next one could find something.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Crawl {
    /// Items looked at.
    pub checked: u64,
    /// Expired or flushed items reclaimed.
    pub reclaimed: u64,
    /// The earliest time a live item it looked at expires (or a delayed `flush_all` takes
    /// effect); `None` if none ever will. When a limit stopped it short of some items, the
    /// time it ran: those are not known.
    pub next_expiry: Option<RelTime>,
}

/// Where a paused item walk resumes: shard and entry number, packed.
pub type WalkCursor = u64;

impl Cache {
    /// Reclaims the expired and flushed items of the classes selected in `classes` (indexed by
    /// class id), checking at most `limit` items per class and shard (0 = all).
    pub fn crawl(&self, classes: &[bool], limit: u64) -> Crawl {
        let state = &self.crawler;
        state.running.store(true, Ordering::Relaxed);
        state.starts.fetch_add(1, Ordering::Relaxed);
        let sleep = std::time::Duration::from_micros(state.sleep_us.load(Ordering::Relaxed));
        let (mut checked, mut reclaimed) = (0, 0);
        let mut next_expiry: Option<RelTime> = None;
        let mut expires_at = |at: RelTime| {
            next_expiry = Some(next_expiry.map_or(at, |next| next.min(at)));
        };
        let flush_at = self.oldest_live.load(Ordering::Acquire);
        if flush_at > self.clock.now() {
            expires_at(flush_at);
        }
        for (class, _) in classes.iter().enumerate().filter(|(_, &on)| on) {
            for s in 0..SHARDS {
                let now = self.clock.now();
                let mut shard = self.shard(s);
                let mut seen = 0;
                for seg in 0..SEGMENTS as u8 {
                    let mut cursor = shard.table.lru_tail(Lru {
                        class: class as u8,
                        seg,
                    });
                    while let Some(idx) = cursor {
                        if limit != 0 && seen >= limit {
                            expires_at(now);
                            break;
                        }
                        seen += 1;
                        cursor = shard.table.lru_newer(idx);
                        let header = self.header_of(&shard.table.entry(idx).chunk);
                        let dead = self.is_dead(&header, now);
                        let c = &mut shard.classes[class];
                        c.crawler_items_checked += 1;
                        if dead {
                            c.crawler_reclaimed += 1;
                            c.reclaimed += 1;
                            c.expired_unfetched += u64::from(!header.has(item::FETCHED));
                            self.unlink(&mut shard, idx, &header);
                            reclaimed += 1;
                        } else if header.exptime != 0 {
                            expires_at(header.exptime);
                        }
                    }
                }
                drop(shard);
                checked += seen;
                if !sleep.is_zero() && seen >= 1000 {
                    std::thread::sleep(sleep);
                }
            }
        }
        state.running.store(false, Ordering::Relaxed);
        Crawl {
            checked,
            reclaimed,
            next_expiry,
        }
    }

    /// The crawler's settings and figures.
    pub fn crawler(&self) -> &CrawlerState {
        &self.crawler
    }

    /// `stats cachedump`: calls `visit` with the key, value length and expiry of the items in
    /// a class's cold LRU, newest first, shard by shard — expired ones included, as memcached
    /// lists them. `visit` returns false to stop.
    pub fn cold_items(&self, class: u8, mut visit: impl FnMut(&[u8], u32, RelTime) -> bool) {
        let cold = Lru {
            class,
            seg: table::COLD,
        };
        for s in 0..SHARDS {
            let shard = self.shard(s);
            let mut cursor = shard.table.lru_head(cold);
            while let Some(idx) = cursor {
                let chunk = &shard.table.entry(idx).chunk;
                let header = self.header_of(chunk);
                if !visit(self.key_of(chunk), header.nbytes, header.exptime) {
                    return;
                }
                cursor = shard.table.lru_older(idx);
            }
        }
    }

    /// Calls `visit` for live items of the selected classes, shard by shard, from `cursor` on;
    /// `visit` returns false to stop, and the cursor to resume from is returned (`None` when
    /// the walk is done). Items are not bumped.
    pub fn walk_items(
        &self,
        classes: &[bool],
        cursor: WalkCursor,
        mut visit: impl FnMut(&DumpedItem) -> bool,
    ) -> Option<WalkCursor> {
        let started = self.clock.process_started();
        let (first_shard, mut from) = ((cursor >> 32) as usize, cursor as u32);
        for s in first_shard..SHARDS {
            let now = self.clock.now();
            let shard = self.shard(s);
            while let Some(idx) = shard.table.next_entry(from) {
                from = idx + 1;
                let entry = shard.table.entry(idx);
                let header = self.header_of(&entry.chunk);
                let live =
                    !self.is_flushed(&header, now) && (header.exptime == 0 || header.exptime > now);
                if !live || !classes.get(header.class as usize).copied().unwrap_or(false) {
                    continue;
                }
                let found = Found { idx, header };
                let item = DumpedItem {
                    key: self.key_of(&entry.chunk).to_vec(),
                    exptime: match header.exptime {
                        0 => -1,
                        e => started + i64::from(e),
                    },
                    last_access: started + i64::from(header.time),
                    cas: header.cas,
                    fetched: header.has(item::FETCHED),
                    class: header.class,
                    size: self.footprint(&found.header),
                    flags: header.flags,
                    binary_key: header.has(item::KEY_BINARY),
                };
                if !visit(&item) {
                    return Some(((s as u64) << 32) | u64::from(from));
                }
            }
            from = 0;
        }
        None
    }
}
