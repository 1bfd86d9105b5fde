//! The state every worker thread shares: settings, the cache, counters and runtime knobs.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use crate::auth::AuthFile;
use crate::cache::{Cache, CacheConfig, Clock, WarmStart};
use crate::config::Settings;
use crate::conn_table::ConnTable;
use crate::stats::PrefixStats;
use crate::stats::StatsRegistry;
use std::sync::Arc;

/// Connection counters for `stats`.
#[derive(Debug, Default)]
pub struct ConnCounters {
    /// Client connections open now.
    pub current: AtomicU64,
    /// Connections ever opened (memcached counts its listening sockets too).
    pub total: AtomicU64,
    /// Connections refused because of `-c`.
    pub rejected: AtomicU64,
    /// Connection objects allocated (the most ever open at once).
    pub structures: AtomicU64,
    /// Accepting fails for want of descriptors (`accepting_conns` is 0 meanwhile).
    starved: AtomicBool,
    /// Since when, while it does.
    starved_at: Mutex<Option<Instant>>,
    /// Shortages so far (memcached's `listen_disabled_num`).
    pub listen_disabled: AtomicU64,
    /// Microseconds of finished shortages (`time_in_listen_disabled_us`).
    pub listen_disabled_us: AtomicU64,
}

impl ConnCounters {
    /// An accept failed for want of descriptors. `true` if that starts a shortage (the first
    /// failure, process-wide, since the last accept or close): the caller logs it.
    pub fn begin_shortage(&self) -> bool {
        let mut at = self.starved_at.lock().unwrap_or_else(|e| e.into_inner());
        if at.is_some() {
            return false;
        }
        *at = Some(Instant::now());
        self.starved.store(true, Ordering::Relaxed);
        self.listen_disabled.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// A connection was accepted or closed: a descriptor shortage, if any, is over (memcached
    /// re-enables its listeners on every close).
    pub fn end_shortage(&self) {
        if !self.starved.load(Ordering::Relaxed) {
            return;
        }
        let mut at = self.starved_at.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(since) = at.take() {
            self.starved.store(false, Ordering::Relaxed);
            let us = u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX);
            self.listen_disabled_us.fetch_add(us, Ordering::Relaxed);
        }
    }

    /// Whether connections are being accepted (`accepting_conns`).
    pub fn accepting(&self) -> bool {
        !self.starved.load(Ordering::Relaxed)
    }
}

/// What the process around the server does when a client asks it to: the daemon installs its
/// own ([`Server::hooks`]); a server built alone (tests, fuzzing) changes nothing outside.
#[derive(Debug, Clone, Copy)]
pub struct ProcessHooks {
    /// `verbosity N`: the log's new level.
    pub set_verbosity: fn(u32),
    /// `shutdown` (`graceful`: `shutdown graceful`): stop the process as its signals do.
    pub stop: fn(graceful: bool),
}

impl Default for ProcessHooks {
    fn default() -> Self {
        ProcessHooks {
            set_verbosity: |_| {},
            stop: |_| {},
        }
    }
}

/// Shared server state.
#[derive(Debug)]
pub struct Server {
    /// The settings the server started with.
    pub settings: Settings,
    /// The items (shared with the replies that refer to pinned values, [`crate::cache::Pin`]).
    pub cache: Arc<Cache>,
    /// Per-thread counters.
    pub stats: StatsRegistry,
    /// Connection counters.
    pub conns: ConnCounters,
    /// The current verbosity (`-v`, changed by the `verbosity` command).
    pub verbosity: AtomicU32,
    /// `stats detail` counts.
    pub prefix_stats: PrefixStats,
    /// Whether and how often hot keys are sampled (`hotkeys`, `-o hotkeys`).
    pub hotkeys: crate::hotkeys::Switch,
    /// The process id, for `stats`.
    pub pid: u32,
    /// `-Y`: the users of the text protocol's authentication.
    pub ascii_auth: Option<AuthFile>,
    /// Every socket, for `stats conns`.
    pub conn_table: ConnTable,
    /// `-Z`: the TLS configuration.
    pub tls: Option<crate::net::tls::Tls>,
    /// What `verbosity` and `shutdown` do to the process.
    pub hooks: ProcessHooks,
    /// Where the background threads sleep while no request comes ([`crate::idle`]).
    pub idle: crate::idle::Idle,
}

impl Server {
    /// Builds the shared state from settings, mapping the cache's memory.
    pub fn new(settings: Settings) -> std::io::Result<Server> {
        let cache = Cache::new(&cache_config(&settings), Arc::new(Clock::new()))?;
        Ok(Server::around(settings, cache))
    }

    /// Builds the shared state with the cache's memory in `file` (a memfd kept by systemd, or
    /// `-e`'s memory file), keeping the items of a clean stop.
    pub fn with_cache_file(
        settings: Settings,
        file: &std::fs::File,
    ) -> std::io::Result<(Server, WarmStart)> {
        let (cache, start) = Cache::reopen(&cache_config(&settings), Arc::new(Clock::new()), file)?;
        Ok((Server::around(settings, cache), start))
    }

    fn around(settings: Settings, cache: Cache) -> Server {
        Server {
            prefix_stats: PrefixStats::new(settings.prefix_delimiter),
            hotkeys: crate::hotkeys::Switch::new(settings.hotkeys_sample),
            verbosity: AtomicU32::new(settings.verbose),
            settings,
            cache: Arc::new(cache),
            stats: StatsRegistry::default(),
            conns: ConnCounters::default(),
            pid: std::process::id(),
            ascii_auth: None,
            tls: None,
            conn_table: ConnTable::default(),
            hooks: ProcessHooks::default(),
            idle: crate::idle::Idle::default(),
        }
    }

    /// Current verbosity level.
    pub fn verbosity(&self) -> u32 {
        self.verbosity.load(Ordering::Relaxed)
    }
}

/// What the cache is built with, from the settings.
fn cache_config(settings: &Settings) -> CacheConfig {
    CacheConfig {
        memory_limit: settings.memory_limit,
        item_size_max: settings.item_size_max,
        use_cas: settings.use_cas,
        evictions: settings.evictions,
        hashpower_init: settings.hashpower_init,
        slab_classes: settings.slab_classes.clone(),
        slab_chunk_max: settings.slab_chunk_max,
        large_pages: settings.large_pages,
        track_sizes: settings.track_sizes,
        lru_crawler: settings.lru_crawler,
        lru_crawler_sleep: settings.lru_crawler_sleep,
        lru_crawler_tocrawl: settings.lru_crawler_tocrawl,
        slab_automove: settings.slab_automove,
        lru: settings.lru,
    }
}
