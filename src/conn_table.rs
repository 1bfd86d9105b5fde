//! Every socket the server holds, for `stats conns`: listeners, UDP sockets and client
//! connections, by descriptor, with their addresses and when each client last sent a command.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::sync::lock;

/// What a socket is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnKind {
    /// A listening socket.
    Listening,
    /// A UDP socket.
    Udp,
    /// A client connection, accepted on the listener with this address.
    Client {
        /// The listener's address, as `addr` lines show addresses.
        listen_addr: String,
    },
    /// A client connection that became a `watch` receiver.
    Watcher {
        /// The listener's address.
        listen_addr: String,
    },
}

/// One socket.
#[derive(Debug, Clone)]
pub struct ConnEntry {
    /// What it is.
    pub kind: ConnKind,
    /// Its address (a client's is the peer's), memcached-style: `tcp:1.2.3.4:5`,
    /// `tcp6:[::1]:5`, `udp:…`, `unix:/path`.
    pub addr: String,
    /// When the client last sent a command ([`now_ms`]).
    pub last_cmd: Arc<AtomicU64>,
}

/// The table, shared by the workers.
#[derive(Debug, Default)]
pub struct ConnTable {
    entries: Mutex<BTreeMap<RawFd, ConnEntry>>,
}

impl ConnTable {
    /// Adds (or replaces) the socket `fd`.
    pub fn insert(&self, fd: RawFd, entry: ConnEntry) {
        lock(&self.entries).insert(fd, entry);
    }

    /// Marks client `fd` as a `watch` receiver (`conn_watch` in `stats conns`).
    pub fn set_watching(&self, fd: RawFd) {
        if let Some(e) = lock(&self.entries).get_mut(&fd) {
            if let ConnKind::Client { listen_addr } = &e.kind {
                e.kind = ConnKind::Watcher {
                    listen_addr: listen_addr.clone(),
                };
            }
        }
    }

    /// Forgets the socket `fd`.
    pub fn remove(&self, fd: RawFd) {
        lock(&self.entries).remove(&fd);
    }

    /// A copy of every entry, by descriptor.
    pub fn snapshot(&self) -> Vec<(RawFd, ConnEntry)> {
        lock(&self.entries)
            .iter()
            .map(|(fd, e)| (*fd, e.clone()))
            .collect()
    }
}

/// memcached's address format for a socket of `transport` (`tcp` or `udp`).
pub fn inet_addr(transport: &str, addr: &SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("{transport}:{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("{transport}6:[{}]:{}", a.ip(), a.port()),
    }
}

/// A client's idle time in whole seconds, from its last command.
pub fn secs_since(last_cmd: &AtomicU64, now_ms: u64) -> u64 {
    now_ms.saturating_sub(last_cmd.load(Ordering::Relaxed)) / 1000
}

fn epoch() -> Duration {
    static EPOCH: OnceLock<Duration> = OnceLock::new();
    *EPOCH.get_or_init(crate::os::coarse_monotonic)
}

/// Milliseconds from the table's epoch to now (the clock of [`ConnEntry::last_cmd`]), to the
/// kernel's last timer tick.
pub fn now_ms() -> u64 {
    ms_at(crate::os::coarse_monotonic())
}

/// Milliseconds from the table's epoch to `monotonic` (a coarse monotonic time).
fn ms_at(monotonic: Duration) -> u64 {
    u64::try_from(monotonic.saturating_sub(epoch()).as_millis()).unwrap_or(u64::MAX)
}

static COARSE_MS: AtomicU64 = AtomicU64::new(0);
static TICKING: AtomicBool = AtomicBool::new(false);
/// How stale [`coarse_now_ms`] may get while something ticks: fine for `stats conns`' seconds
/// and the idle timeout, and rare enough that ticking on every turn of every worker's loop
/// seldom writes the shared line.
const TICK_MS: u64 = 50;

/// Brings the time [`coarse_now_ms`] returns up to date if it is [`TICK_MS`] old. Every worker
/// calls it on each turn of its loop.
#[inline]
pub fn tick() {
    tick_at(crate::os::coarse_monotonic());
}

/// [`tick`] with the coarse monotonic time already read.
#[inline]
pub fn tick_at(monotonic: Duration) {
    let now = ms_at(monotonic);
    if now >= COARSE_MS.load(Ordering::Relaxed) + TICK_MS {
        COARSE_MS.fetch_max(now, Ordering::Relaxed);
    }
    if !TICKING.load(Ordering::Relaxed) {
        TICKING.store(true, Ordering::Relaxed);
    }
}

/// Now, to the last tick (exact when nothing ticks): what connections record per request,
/// without a clock read each time.
pub fn coarse_now_ms() -> u64 {
    if TICKING.load(Ordering::Relaxed) {
        COARSE_MS.load(Ordering::Relaxed)
    } else {
        now_ms()
    }
}
