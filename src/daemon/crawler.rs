//! The cache's background thread: every few seconds, while `lru_crawler` is enabled, it walks
//! every class and reclaims expired items, so their memory is free before an eviction would
//! have to take a live item instead; every second it runs the LRU maintainer's pass over the
//! segmented LRU and lets `slabs automove` move a page to a class that is evicting.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::cache::slabs::MAX_CLASSES;
use crate::server::Server;

/// Time between automatic crawls.
const INTERVAL: Duration = Duration::from_secs(10);
/// Time between slab automove decisions.
const AUTOMOVE_INTERVAL: Duration = Duration::from_secs(1);
/// How often the thread looks at the shutdown flag while it waits.
const TICK: Duration = Duration::from_millis(200);

/// Starts the crawler thread; it ends when `shutdown` is set.
pub fn spawn(server: Arc<Server>, shutdown: Arc<AtomicBool>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("lru-crawler".into())
        .spawn(move || {
            let mut all = vec![true; MAX_CLASSES];
            all[0] = false;
            let mut last = Instant::now();
            let mut last_automove = Instant::now();
            while !shutdown.load(Ordering::Acquire) {
                std::thread::sleep(TICK);
                if last_automove.elapsed() >= AUTOMOVE_INTERVAL {
                    last_automove = Instant::now();
                    server.cache.maintain_lru();
                    server.cache.automove();
                }
                let crawler = server.cache.crawler();
                if last.elapsed() < INTERVAL || !crawler.enabled.load(Ordering::Relaxed) {
                    continue;
                }
                last = Instant::now();
                if crawler.running.load(Ordering::Relaxed) {
                    continue;
                }
                let (checked, reclaimed) = server
                    .cache
                    .crawl(&all, crawler.tocrawl.load(Ordering::Relaxed));
                if reclaimed > 0 {
                    log::debug!("lru crawler: {reclaimed} of {checked} items had expired");
                }
            }
        })
}
