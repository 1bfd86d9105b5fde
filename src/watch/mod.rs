//! `watch`: memcached's live log stream. A client that sends `watch [kinds…]` stops being served
//! and instead receives one line per event of the kinds it asked for — items fetched
//! (`fetchers`), stored (`mutations`), evicted (`evictions`), deleted (`deletions`),
//! connections opened and closed (`connevents`) — in memcached's `key=value` format.
//!
//! As in memcached, the process has one logger: the places that produce events (the cache, the
//! workers) check one atomic word first, so while nobody watches an event costs a relaxed load
//! and a branch. Events are queued (bounded, like memcached's per-worker log buffers: beyond the
//! bound they are dropped and counted) and a background thread formats them and writes them to
//! each watcher through a bounded buffer of its own (a watcher that does not read loses lines,
//! announced by a `skipped=N` line, rather than making the server hold more memory).

mod format;
mod thread;

use format::{Event, Peer, Record};

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

/// What the logger needs of a connection that becomes a watcher: the network layer's stream
/// implements it, so the logger knows nothing of sockets beyond this.
pub trait WatcherStream: std::io::Read + std::io::Write + Send + std::fmt::Debug {
    /// Writes out what a layer under the socket (TLS) still holds; `Ok(false)` while some is
    /// left.
    fn flush_pending(&mut self) -> std::io::Result<bool>;
}

/// Event kinds a watcher can ask for, as bits (memcached's `LOG_*` flags).
pub mod kind {
    /// `rawcmds` (memcached 1.6.38 accepts it but logs nothing under it).
    pub const RAWCMDS: u16 = 1 << 0;
    /// `evictions`: items evicted to make room.
    pub const EVICTIONS: u16 = 1 << 1;
    /// `fetchers`: every item lookup a command makes.
    pub const FETCHERS: u16 = 1 << 2;
    /// `mutations`: every store attempt.
    pub const MUTATIONS: u16 = 1 << 3;
    /// `sysevents`: background work (the crawler, the slab mover).
    pub const SYSEVENTS: u16 = 1 << 4;
    /// `connevents`: connections opened and closed.
    pub const CONNEVENTS: u16 = 1 << 5;
    /// `proxyreqs`, `proxyevents`, `proxyuser`: memcached's proxy, which we do not have.
    pub const PROXY: u16 = 1 << 6;
    /// `deletions`: items removed by `delete` and `md` (memcached 1.6.38).
    pub const DELETIONS: u16 = 1 << 7;
    /// `hotkeys` (not memcached's): a key entering the ten hottest of the last ten seconds.
    pub const HOTKEYS: u16 = 1 << 8;
}

/// memcached's `WATCHER_LIMIT`.
pub const MAX_WATCHERS: usize = 20;
/// memcached's default `-o worker_logbuf_size`: what one worker may have queued.
pub const DEFAULT_WORKER_BUF: usize = 64 * 1024;
/// memcached's default `-o watcher_logbuf_size`: what one watcher may have unsent.
pub const DEFAULT_WATCHER_BUF: usize = 256 * 1024;
/// What an event costs in the queue besides its key (an estimate of memcached's entry size).
const ENTRY_OVERHEAD: usize = 64;

/// The kinds a `watch` command asks for: `None` if a token names no kind (memcached's `ERROR`).
/// No tokens means `fetchers`.
pub fn parse_kinds<'a>(tokens: impl IntoIterator<Item = &'a [u8]>) -> Option<u16> {
    let mut kinds = 0;
    let mut any = false;
    for token in tokens {
        any = true;
        kinds |= match token {
            b"rawcmds" => kind::RAWCMDS,
            b"evictions" => kind::EVICTIONS,
            b"fetchers" => kind::FETCHERS,
            b"mutations" => kind::MUTATIONS,
            b"sysevents" => kind::SYSEVENTS,
            b"connevents" => kind::CONNEVENTS,
            b"deletions" => kind::DELETIONS,
            b"hotkeys" => kind::HOTKEYS,
            b"proxyreqs" | b"proxyevents" | b"proxyuser" => kind::PROXY,
            _ => return None,
        };
    }
    Some(if any { kinds } else { kind::FETCHERS })
}

/// How a lookup ended (memcached's `was_found`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetStatus {
    /// No such item.
    NotFound,
    /// A live item.
    Found,
    /// An item older than the last `flush_all` (it is removed).
    Flushed,
    /// An expired item (it is removed).
    Expired,
}

impl GetStatus {
    fn name(self) -> &'static str {
        match self {
            GetStatus::NotFound => "not_found",
            GetStatus::Found => "found",
            GetStatus::Flushed => "flushed",
            GetStatus::Expired => "expired",
        }
    }
}

/// Why a connection closed (memcached's `close_reasons`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// A protocol or socket error.
    Error,
    /// The client closed or sent `quit`.
    Normal,
    /// `-o idle_timeout` ran out.
    IdleTimeout,
    /// The server is stopping.
    Shutdown,
}

impl CloseReason {
    fn name(self) -> &'static str {
        match self {
            CloseReason::Error => "error",
            CloseReason::Normal => "normal",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::Shutdown => "shutdown",
        }
    }
}

/// A store attempt as a `mutations` line shows it.
#[derive(Debug, Clone, Copy)]
pub struct StoreEvent<'a> {
    /// The client's descriptor.
    pub fd: i32,
    /// The key.
    pub key: &'a [u8],
    /// memcached's status name: `stored`, `not_stored`, `exists`, `not_found`, `too_large`,
    /// `no_memory`.
    pub status: &'static str,
    /// The command: `set`, `add`, `replace`, `append`, `prepend` or `cas`.
    pub command: &'static str,
    /// Seconds the item has left (0: none; memcached prints the difference unsigned).
    pub ttl: u32,
    /// Slab class of the item.
    pub class: u8,
    /// Value length.
    pub size: u32,
}

/// An evicted item as an `evictions` line shows it.
#[derive(Debug, Clone, Copy)]
pub struct EvictionEvent<'a> {
    /// The key.
    pub key: &'a [u8],
    /// Whether it was ever read.
    pub fetched: bool,
    /// Seconds it had left, -1 for none.
    pub ttl: i64,
    /// Seconds since it was last accessed.
    pub last_access: u32,
    /// Slab class.
    pub class: u8,
    /// Value length.
    pub size: u32,
}

#[derive(Debug, Default)]
struct Queue {
    records: Vec<Record>,
    bytes: usize,
}

/// A connection handed over by a worker to become a watcher.
#[derive(Debug)]
struct NewWatcher {
    stream: Box<dyn WatcherStream>,
    kinds: u16,
    /// Replies the connection still owed when it became a watcher.
    unsent: Vec<u8>,
    /// Events before this id predate the watcher.
    min_gid: u64,
    /// Called once the watcher has gone (the server's connection bookkeeping).
    gone: Gone,
}

/// What to do when a watcher's connection ends.
pub struct Gone(pub Box<dyn FnOnce() + Send>);

impl std::fmt::Debug for Gone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gone")
    }
}

/// Figures for `stats` (memcached's `log_*` counters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Events dropped because the queue was full.
    pub worker_dropped: u64,
    /// Events queued.
    pub worker_written: u64,
    /// Lines a watcher missed because its buffer was full.
    pub watcher_skipped: u64,
    /// Lines put in watchers' buffers.
    pub watcher_sent: u64,
    /// Watchers connected.
    pub watchers: u64,
}

/// A value alone on its cache line.
#[derive(Debug)]
#[repr(align(64))]
struct CacheLine<T>(T);

/// The process's logger.
#[derive(Debug)]
struct Logger {
    /// Union of the kinds every watcher asked for: what producers check first. On a cache line
    /// of its own, so the counters producers write while someone watches do not make every
    /// lookup's check miss.
    kinds: CacheLine<AtomicU16>,
    gid: AtomicU64,
    /// Watchers connected or being handed over (for the limit).
    reserved: AtomicUsize,
    queue: Mutex<Queue>,
    adopted: Mutex<Vec<NewWatcher>>,
    /// Wakes the logger thread when a watcher arrives.
    wake: Condvar,
    queue_limit: AtomicUsize,
    watcher_buf: AtomicUsize,
    dropped: AtomicU64,
    written: AtomicU64,
    skipped: AtomicU64,
    sent: AtomicU64,
    watchers: AtomicU64,
}

static LOGGER: Logger = Logger {
    kinds: CacheLine(AtomicU16::new(0)),
    gid: AtomicU64::new(0),
    reserved: AtomicUsize::new(0),
    queue: Mutex::new(Queue {
        records: Vec::new(),
        bytes: 0,
    }),
    adopted: Mutex::new(Vec::new()),
    wake: Condvar::new(),
    queue_limit: AtomicUsize::new(DEFAULT_WORKER_BUF * 4),
    watcher_buf: AtomicUsize::new(DEFAULT_WATCHER_BUF),
    dropped: AtomicU64::new(0),
    written: AtomicU64::new(0),
    skipped: AtomicU64::new(0),
    sent: AtomicU64::new(0),
    watchers: AtomicU64::new(0),
};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The logger's state stays consistent across a panic elsewhere: keep logging.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sizes the buffers: `worker_buf` per worker thread (memcached's `worker_logbuf_size`), and
/// `watcher_buf` per watcher (`watcher_logbuf_size`).
pub fn configure(worker_buf: usize, workers: usize, watcher_buf: usize) {
    LOGGER
        .queue_limit
        .store(worker_buf.saturating_mul(workers.max(1)), Ordering::Relaxed);
    LOGGER.watcher_buf.store(watcher_buf, Ordering::Relaxed);
}

/// Whether some watcher wants events of `kind`: producers check this before building one.
#[inline]
pub fn watching(kind: u16) -> bool {
    LOGGER.kinds.0.load(Ordering::Relaxed) & kind != 0
}

fn push(kind: u16, event: Event, key_len: usize) {
    if !watching(kind) {
        return;
    }
    let cost = key_len + ENTRY_OVERHEAD;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut queue = lock(&LOGGER.queue);
    if queue.bytes + cost > LOGGER.queue_limit.load(Ordering::Relaxed) {
        LOGGER.dropped.fetch_add(1, Ordering::Relaxed);
        return;
    }
    queue.bytes += cost;
    queue.records.push(Record {
        secs: now.as_secs(),
        micros: now.subsec_micros(),
        gid: LOGGER.gid.fetch_add(1, Ordering::Relaxed) + 1,
        kind,
        event,
    });
    LOGGER.written.fetch_add(1, Ordering::Relaxed);
}

/// A cache lookup's outcome: the `item_get` line for `watch fetchers` and memcached's `-vvv`
/// trace of it. Costs two relaxed loads when neither is on.
#[inline]
pub fn lookup_done(fd: i32, key: &[u8], status: GetStatus, class: u8, size: u32) {
    if watching(kind::FETCHERS) {
        item_get(fd, key, status, class, size);
    }
    if log::log_enabled!(log::Level::Trace) {
        let key = String::from_utf8_lossy(key);
        match status {
            GetStatus::NotFound => log::trace!("> NOT FOUND {key}"),
            // memcached 1.6.38 prints a found key bare (1.6.18 said `> FOUND KEY <key>`).
            GetStatus::Found => log::trace!("{key}"),
            GetStatus::Flushed => log::trace!("{key} -nuked by flush"),
            GetStatus::Expired => log::trace!("{key} -nuked by expire"),
        }
    }
}

/// An item lookup (memcached's `item_get` line) by the client on `fd`. `class` and `size` are
/// 0 unless found.
pub fn item_get(fd: i32, key: &[u8], status: GetStatus, class: u8, size: u32) {
    let event = Event::ItemGet {
        key: key.into(),
        status,
        class,
        fd,
        size,
    };
    push(kind::FETCHERS, event, key.len());
}

/// A store attempt (memcached's `item_store` line).
pub fn item_store(e: StoreEvent<'_>) {
    let event = Event::ItemStore {
        key: e.key.into(),
        status: e.status,
        command: e.command,
        ttl: e.ttl,
        class: e.class,
        fd: e.fd,
        size: e.size,
    };
    push(kind::MUTATIONS, event, e.key.len());
}

/// An eviction (memcached's `eviction` line).
pub fn eviction(e: EvictionEvent<'_>) {
    let event = Event::Eviction {
        key: e.key.into(),
        fetched: e.fetched,
        ttl: e.ttl,
        last_access: e.last_access,
        class: e.class,
        size: e.size,
    };
    push(kind::EVICTIONS, event, e.key.len());
}

/// A successful delete (memcached 1.6.38's `deleted` line): `command` is `delete` or `md`,
/// `size` the value length of the item removed (0 after `md x`, which logs the emptied item).
/// memcached logs no other removal: not binary deletes, not `md I` alone, not misses.
pub fn deleted(key: &[u8], command: &'static str, class: u8, size: u32) {
    if watching(kind::DELETIONS) {
        let event = Event::Deleted {
            key: key.into(),
            command,
            class,
            size,
        };
        push(kind::DELETIONS, event, key.len());
    }
}

/// A key that entered the hottest of a window (`watch hotkeys`).
pub fn hot_key(e: HotKeyEvent<'_>) {
    if watching(kind::HOTKEYS) {
        let event = Event::HotKey {
            key: e.key.into(),
            metric: e.metric,
            window: e.window,
            rank: e.rank,
            rate: e.rate,
            error: e.error,
        };
        push(kind::HOTKEYS, event, e.key.len());
    }
}

/// What a `watch hotkeys` line tells.
#[derive(Debug, Clone, Copy)]
pub struct HotKeyEvent<'a> {
    /// The key.
    pub key: &'a [u8],
    /// `reads`, `writes` or `bytes`.
    pub metric: &'static str,
    /// `10s`.
    pub window: &'static str,
    /// Its place among the hottest, from 1.
    pub rank: usize,
    /// Its estimated rate per second.
    pub rate: f64,
    /// The bound on the estimate's error, per second.
    pub error: f64,
}

/// A connection accepted on `fd` (memcached's `conn_new` line); `peer` is the TCP client's
/// address, `unix` says it came over a unix socket.
pub fn conn_new(fd: i32, peer: Option<SocketAddr>, unix: bool) {
    if watching(kind::CONNEVENTS) {
        let event = Event::ConnNew {
            peer: Peer::of(peer, unix),
            fd,
        };
        push(kind::CONNEVENTS, event, 0);
    }
}

/// A connection on `fd` closing (memcached's `conn_close` line); `peer` and `unix` as noted
/// at accept.
pub fn conn_close(fd: i32, peer: Option<SocketAddr>, unix: bool, reason: CloseReason) {
    if watching(kind::CONNEVENTS) {
        let event = Event::ConnClose {
            peer: Peer::of(peer, unix),
            reason,
            fd,
        };
        push(kind::CONNEVENTS, event, 0);
    }
}

/// Claims one of the [`MAX_WATCHERS`] places; `false` if all are taken. A claim is given back
/// by [`adopt`] (when that watcher goes) or [`release`].
pub fn try_reserve() -> bool {
    LOGGER
        .reserved
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < MAX_WATCHERS).then_some(n + 1)
        })
        .is_ok()
}

/// Gives back a claim that did not become a watcher.
pub fn release() {
    LOGGER.reserved.fetch_sub(1, Ordering::AcqRel);
}

/// Turns a connection (with a claim from [`try_reserve`]) into a watcher of `kinds`. `unsent`
/// is output it still owed; `OK` follows it, then the events. `gone` runs when it ends.
pub fn adopt(stream: Box<dyn WatcherStream>, kinds: u16, unsent: Vec<u8>, gone: Gone) {
    thread::ensure_started();
    // As memcached, the watcher takes an id of its own; it sees the events after it.
    let min_gid = LOGGER.gid.fetch_add(1, Ordering::Relaxed) + 1;
    lock(&LOGGER.adopted).push(NewWatcher {
        stream,
        kinds,
        unsent,
        min_gid,
        gone,
    });
    // Producers start queueing at once, so no event after the `OK` is missed.
    LOGGER.kinds.0.fetch_or(kinds, Ordering::Relaxed);
    LOGGER.wake.notify_one();
}

/// At exit, once the workers have stopped: lets the logger deliver the events queued so far
/// (within `limit`), so watchers see the server's last closes. memcached exits without
/// waiting, and its watchers miss them about half the time.
pub fn settle(limit: std::time::Duration) {
    if LOGGER.reserved.load(Ordering::Acquire) > 0 {
        thread::settle(limit);
    }
}

/// The `log_*` figures for `stats`.
pub fn stats() -> LogStats {
    LogStats {
        worker_dropped: LOGGER.dropped.load(Ordering::Relaxed),
        worker_written: LOGGER.written.load(Ordering::Relaxed),
        watcher_skipped: LOGGER.skipped.load(Ordering::Relaxed),
        watcher_sent: LOGGER.sent.load(Ordering::Relaxed),
        watchers: LOGGER.watchers.load(Ordering::Relaxed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_as_memcached() {
        let none: [&[u8]; 0] = [];
        assert_eq!(parse_kinds(none), Some(kind::FETCHERS));
        assert_eq!(
            parse_kinds([&b"mutations"[..], b"evictions"]),
            Some(kind::MUTATIONS | kind::EVICTIONS)
        );
        assert_eq!(parse_kinds([&b"deletions"[..]]), Some(kind::DELETIONS));
        assert_eq!(parse_kinds([&b"proxytrace"[..]]), None);
        assert_eq!(parse_kinds([&b"fetchers"[..], b"noreply"]), None);
    }
}
