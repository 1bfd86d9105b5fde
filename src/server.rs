//! The state every worker thread shares: settings, the cache, counters and runtime knobs.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::cache::{Cache, CacheConfig, Clock};
use crate::config::Settings;
use crate::conn_table::ConnTable;
use crate::handler::ascii_auth::AuthFile;
use crate::handler::prefix_stats::PrefixStats;
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
    /// Workers not accepting right now (out of descriptors): `accepting_conns` is 0 while any.
    pub paused_workers: AtomicU64,
    /// Times a worker stopped accepting (memcached's `listen_disabled_num`).
    pub listen_disabled: AtomicU64,
    /// Microseconds workers spent not accepting, over finished pauses
    /// (`time_in_listen_disabled_us`).
    pub listen_disabled_us: AtomicU64,
}

/// Shared server state.
#[derive(Debug)]
pub struct Server {
    /// The settings the server started with.
    pub settings: Settings,
    /// The items.
    pub cache: Cache,
    /// Per-thread counters.
    pub stats: StatsRegistry,
    /// Connection counters.
    pub conns: ConnCounters,
    /// The current verbosity (`-v`, changed by the `verbosity` command).
    pub verbosity: AtomicU32,
    /// `stats detail` counts.
    pub prefix_stats: PrefixStats,
    /// The process id, for `stats`.
    pub pid: u32,
    /// `-Y`: the users of the text protocol's authentication.
    pub ascii_auth: Option<AuthFile>,
    /// Every socket, for `stats conns`.
    pub conn_table: ConnTable,
    /// `-Z`: the TLS configuration.
    pub tls: Option<crate::net::tls::Tls>,
}

impl Server {
    /// Builds the shared state from settings, mapping the cache's memory.
    pub fn new(settings: Settings) -> std::io::Result<Server> {
        let clock = Arc::new(Clock::new());
        let cache = Cache::new(
            &CacheConfig {
                memory_limit: settings.memory_limit,
                item_size_max: settings.item_size_max,
                use_cas: settings.use_cas,
                evictions: settings.evictions,
                hashpower_init: settings.hashpower_init,
                chunk_size: settings.chunk_size,
                growth_factor: settings.growth_factor,
                slab_chunk_max: settings.slab_chunk_max,
                large_pages: settings.large_pages,
                track_sizes: settings.track_sizes,
                lru_crawler: settings.lru_crawler,
                lru_crawler_sleep: settings.lru_crawler_sleep,
                lru_crawler_tocrawl: settings.lru_crawler_tocrawl,
                slab_automove: settings.slab_automove,
                lru: settings.lru,
            },
            clock,
        )?;
        Ok(Server {
            prefix_stats: PrefixStats::new(settings.prefix_delimiter),
            verbosity: AtomicU32::new(settings.verbose),
            settings,
            cache,
            stats: StatsRegistry::default(),
            conns: ConnCounters::default(),
            pid: std::process::id(),
            ascii_auth: None,
            tls: None,
            conn_table: ConnTable::default(),
        })
    }

    /// Current verbosity level.
    pub fn verbosity(&self) -> u32 {
        self.verbosity.load(Ordering::Relaxed)
    }
}
