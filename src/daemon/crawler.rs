//! The cache's background thread: once a second while requests arrive it runs the LRU
//! maintainer's pass over the segmented LRU and lets `slabs automove` move a page to a class
//! that is evicting; every few seconds, while `lru_crawler` is enabled, it walks every class and
//! reclaims expired items, so their memory is free before an eviction would have to take a live
//! item instead.
//!
//! While no request arrives nothing of that changes but the clock, so the thread sleeps
//! ([`crate::idle`]) until a request comes or the next item it saw can have expired: an idle
//! server with items that never expire does not wake at all.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::cache::crawler::Crawl;
use crate::cache::slabs::MAX_CLASSES;
use crate::server::Server;

/// Time between automatic crawls.
const INTERVAL: Duration = Duration::from_secs(10);
/// Time between LRU maintainer passes and slab automove decisions while requests arrive.
const PASS_INTERVAL: Duration = Duration::from_secs(1);

/// Starts the crawler thread; it ends when `shutdown` is set (and the idle hub woken).
pub fn spawn(server: Arc<Server>, shutdown: Arc<AtomicBool>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("lru-crawler".into())
        .spawn(move || {
            let mut all = vec![true; MAX_CLASSES];
            all[0] = false;
            let idle = &server.idle;
            let mut seen = idle.turns();
            let mut next_crawl = Instant::now() + INTERVAL;
            // The last crawl's findings, and the turns when it ran: they hold while no request
            // has come since.
            let mut last_crawl: Option<(Crawl, u64)> = None;
            while !shutdown.load(Ordering::Acquire) {
                server.cache.clock().tick();
                let turns = idle.turns();
                let active = turns != seen;
                seen = turns;
                if active {
                    server.cache.maintain_lru();
                    server.cache.automove();
                }
                let crawler = server.cache.crawler();
                let enabled = crawler.enabled.load(Ordering::Relaxed);
                let now = Instant::now();
                if enabled && now >= next_crawl {
                    next_crawl = now + INTERVAL;
                    if !crawler.running.load(Ordering::Relaxed) {
                        // Counted before: an item stored while the crawl runs (perhaps in a
                        // shard it has passed) makes the count differ from this.
                        let crawl_turns = idle.turns();
                        let crawl = server
                            .cache
                            .crawl(&all, crawler.tocrawl.load(Ordering::Relaxed));
                        if crawl.reclaimed > 0 {
                            log::debug!(
                                "lru crawler: {} of {} items had expired",
                                crawl.reclaimed,
                                crawl.checked
                            );
                        }
                        last_crawl = Some((crawl, crawl_turns));
                    }
                }
                if active {
                    idle.sleep(PASS_INTERVAL);
                } else {
                    let crawl_in = enabled
                        .then(|| crawl_due(&server, last_crawl, next_crawl, seen))
                        .flatten();
                    idle.park(seen, crawl_in);
                }
            }
        })
}

/// While idle: how long until a crawl can reclaim something — the regular interval if requests
/// came since the last crawl (they may have stored items with a TTL), else not before the
/// earliest expiry it saw; `None` if nothing it saw will ever expire.
fn crawl_due(
    server: &Server,
    last_crawl: Option<(Crawl, u64)>,
    next_crawl: Instant,
    turns: u64,
) -> Option<Duration> {
    let now = Instant::now();
    let regular = next_crawl.saturating_duration_since(now);
    match last_crawl {
        Some((crawl, crawl_turns)) if crawl_turns == turns => {
            let expiry = crawl.next_expiry?;
            let secs = expiry.saturating_sub(server.cache.clock().now());
            // An expiry time is the second an item dies in: crawl just after it.
            Some(regular.max(Duration::from_secs(u64::from(secs) + 1)))
        }
        _ => Some(regular),
    }
}
