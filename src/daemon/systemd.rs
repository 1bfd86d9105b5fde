//! systemd integration: sockets handed over by socket activation, and the notifications of
//! `Type=notify` — `READY=1` once serving, a `STATUS=` summary kept fresh, `WATCHDOG=1` while the
//! workers are alive, `RELOADING=1`/`STOPPING=1` around SIGHUP and shutdown. Outside systemd
//! (no `NOTIFY_SOCKET`, no `LISTEN_FDS`) every function here does nothing.

use std::fs::File;
use std::net::{TcpListener, UdpSocket};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sd_notify::NotifyState;
use socket2::{Domain, Socket, Type};

use crate::net::{self, Listener, WorkerProbe};
use crate::server::Server;

/// How often `STATUS=` is refreshed while requests arrive.
const STATUS_INTERVAL: Duration = Duration::from_secs(2);
/// How long after the first request that ends an idle spell the status is refreshed.
const STATUS_SETTLE: Duration = Duration::from_millis(500);

/// The name of the cache's memory in systemd's file-descriptor store (`FDNAME=`).
pub const CACHE_FD_NAME: &str = "cache";
/// The name of the listening sockets kept there.
const LISTENER_FD_NAME: &str = "listener";

/// What systemd passed: stream sockets to accept on, datagram sockets for UDP, and the cache's
/// memory kept in the file-descriptor store by the last run.
#[derive(Default)]
pub struct Passed {
    /// TCP and unix stream sockets, listening.
    pub listeners: Vec<Listener>,
    /// UDP sockets.
    pub datagrams: Vec<UdpSocket>,
    /// The memfd named [`CACHE_FD_NAME`].
    pub cache: Option<File>,
    /// The listening sockets the last run kept in the store.
    pub kept: Vec<OwnedFd>,
}

impl Passed {
    /// Whether systemd passed sockets (socket activation): then they are all the server
    /// listens on.
    pub fn has_sockets(&self) -> bool {
        !self.listeners.is_empty() || !self.datagrams.is_empty()
    }
}

/// What systemd passed (`LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES`): nothing when the
/// process was neither socket-activated nor given back its file-descriptor store. With `tls`
/// (`-Z`) the TCP sockets speak TLS, except those whose name starts with `notls` (the `-l
/// notls:` of a passed socket).
pub fn passed_fds(tls: bool) -> Result<Passed, String> {
    let fds = sd_notify::listen_fds_with_names()
        .map_err(|e| format!("socket activation: bad LISTEN_FDS/LISTEN_PID: {e}"))?;
    let mut passed = Passed::default();
    let Passed {
        listeners,
        datagrams,
        cache,
        kept,
    } = &mut passed;
    for (fd, name) in fds {
        let what = format!("socket activation: fd {fd} ({name})");
        let owned = net::adopt_inherited_fd(fd).map_err(|e| format!("{what}: {e}"))?;
        if name == CACHE_FD_NAME {
            *cache = Some(File::from(owned));
            continue;
        }
        if name == LISTENER_FD_NAME {
            kept.push(owned);
            continue;
        }
        let socket = Socket::from(owned);
        let kind = socket.r#type().map_err(|e| format!("{what}: {e}"))?;
        let domain = socket.domain().map_err(|e| format!("{what}: {e}"))?;
        socket
            .set_nonblocking(true)
            .map_err(|e| format!("{what}: {e}"))?;
        let inet = domain == Domain::IPV4 || domain == Domain::IPV6;
        if kind == Type::STREAM && (inet || domain == Domain::UNIX) {
            if !socket.is_listener().map_err(|e| format!("{what}: {e}"))? {
                return Err(format!("{what}: a stream socket that is not listening"));
            }
            let fd = OwnedFd::from(socket);
            let listener = if inet && tls && !name.starts_with("notls") {
                Listener::Tls(TcpListener::from(fd))
            } else if inet {
                Listener::Tcp(TcpListener::from(fd))
            } else {
                Listener::Unix(UnixListener::from(fd))
            };
            log::info!("{what}: {}", listener.describe());
            listeners.push(listener);
        } else if kind == Type::DGRAM && inet {
            log::info!("{what}: udp");
            datagrams.push(UdpSocket::from(OwnedFd::from(socket)));
        } else {
            return Err(format!(
                "{what}: not a TCP, UDP or unix stream socket ({domain:?}, {kind:?})"
            ));
        }
    }
    Ok(passed)
}

/// Keeps the listening sockets in systemd's file-descriptor store, in place of those the last
/// run kept (the ones no longer listened on are closed with it): the next run listens on the
/// same sockets, so a client connecting while the service restarts waits in the backlog
/// instead of being refused. Returns whether they were handed over.
pub fn store_listeners(fds: &[std::os::fd::RawFd], replacing: bool) -> bool {
    let Some(socket) = connect_notify_socket() else {
        return false;
    };
    if replacing {
        remove_stored(LISTENER_FD_NAME);
    }
    let message = format!("FDSTORE=1\nFDNAME={LISTENER_FD_NAME}\n");
    for batch in fds.chunks(crate::os::FDS_MAX) {
        if let Err(e) = crate::os::send_with_fds(socket, message.as_bytes(), batch) {
            log::warn!("sd_notify: FDSTORE of the listening sockets: {e}");
            return false;
        }
    }
    !fds.is_empty()
}

/// Drops every descriptor systemd's file-descriptor store keeps under `name` (closing them).
pub fn remove_stored(name: &str) {
    let Some(socket) = connect_notify_socket() else {
        return;
    };
    let remove = format!("FDSTOREREMOVE=1\nFDNAME={name}\n");
    if let Err(e) = socket.send(remove.as_bytes()) {
        log::warn!("sd_notify: FDSTOREREMOVE of {name}: {e}");
    }
}

/// Hands `file` to systemd's file-descriptor store under `name`, to be passed back to the
/// next run of the service (`FileDescriptorStoreMax=` in the unit). Returns whether there was
/// a service manager to hand it to; it says nothing back, so a unit without a store simply
/// drops it.
pub fn store_fd(name: &str, file: &File) -> bool {
    use std::os::fd::AsRawFd;
    let Some(socket) = connect_notify_socket() else {
        return false;
    };
    let message = format!("FDSTORE=1\nFDNAME={name}\n");
    match crate::os::send_with_fds(socket, message.as_bytes(), &[file.as_raw_fd()]) {
        Ok(()) => true,
        Err(e) => {
            log::warn!("sd_notify: FDSTORE of {name}: {e}");
            false
        }
    }
}

/// The notification socket, connected once and kept for the life of the process: it may sit
/// where only root can reach it (a private directory, as systemd-nspawn and test harnesses
/// make), and after `-u` drops privileges a new connection there would be refused.
static NOTIFY_SOCKET: OnceLock<Option<UnixDatagram>> = OnceLock::new();

/// Connects to `NOTIFY_SOCKET` now, while the process still has the privileges it started
/// with. Call it before dropping them; later notifications reuse this connection.
pub fn connect_notify_socket() -> Option<&'static UnixDatagram> {
    NOTIFY_SOCKET
        .get_or_init(|| {
            let path = std::env::var_os("NOTIFY_SOCKET")?;
            connect(&path)
                .map_err(|e| log::warn!("sd_notify: {}: {e}", path.to_string_lossy()))
                .ok()
        })
        .as_ref()
}

/// A datagram socket connected to `path`; `@name` is a socket in the abstract namespace.
fn connect(path: &std::ffi::OsStr) -> std::io::Result<UnixDatagram> {
    use std::os::unix::ffi::OsStrExt;
    let socket = UnixDatagram::unbound()?;
    match path.as_bytes().strip_prefix(b"@") {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            socket.connect_addr(&addr)?;
        }
        None => socket.connect(path)?,
    }
    Ok(socket)
}

/// Sends notifications; failures are logged, never fatal (the manager may be gone).
fn notify(states: &[NotifyState<'_>]) {
    let Some(socket) = connect_notify_socket() else {
        return;
    };
    let mut message = String::new();
    for state in states {
        message.push_str(&state.to_string());
        message.push('\n');
    }
    if let Err(e) = socket.send(message.as_bytes()) {
        log::warn!("sd_notify: {e}");
    }
}

/// Every listener is bound and the cache mapped: tell systemd, with a first status.
pub fn ready(server: &Server) {
    let status = status_line(server);
    notify(&[NotifyState::Ready, NotifyState::Status(&status)]);
}

/// SIGHUP: reloading (with the monotonic time systemd wants for `Type=notify-reload`), then
/// ready again once `reload` has run.
pub fn reload(server: &Server, reload: impl FnOnce()) {
    let mut states = vec![NotifyState::Reloading];
    if let Ok(now) = NotifyState::monotonic_usec_now() {
        states.push(now);
    }
    notify(&states);
    reload();
    ready(server);
}

/// Start-up work that takes long (prefaulting a large arena): ask systemd for `more` time
/// beyond its start timeout.
pub fn extend_timeout(more: std::time::Duration) {
    let usec = u32::try_from(more.as_micros()).unwrap_or(u32::MAX);
    notify(&[
        NotifyState::ExtendTimeoutUsec(usec),
        NotifyState::Status("prefaulting item memory"),
    ]);
}

/// Shutdown has begun.
pub fn stopping() {
    notify(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// Under systemd (`NOTIFY_SOCKET`), starts the thread that refreshes `STATUS=` and, under
/// `WatchdogSec=`, pings the watchdog at half its interval while every worker is alive; outside
/// it, no thread. The thread wakes only for that: the status is recomputed every
/// [`STATUS_INTERVAL`] while requests arrive (and sent when it changed), and when none do it
/// sleeps until one does or the watchdog is due.
pub fn spawn_notifier(
    server: Arc<Server>,
    workers: Vec<WorkerProbe>,
    shutdown: Arc<AtomicBool>,
) -> std::io::Result<Option<JoinHandle<()>>> {
    if connect_notify_socket().is_none() {
        return Ok(None);
    }
    let watchdog = sd_notify::watchdog_enabled().map(|d| d / 2);
    std::thread::Builder::new()
        .name("notifier".into())
        .spawn(move || {
            let mut liveness = Liveness::new(workers);
            // READY=1 carried the first status; the next is computed an interval later (the
            // turns start unknown, so the thread does not park before it has computed one:
            // requests may already have come), then whenever requests have come.
            let mut status = Status {
                line: String::new(),
                due: Instant::now() + STATUS_INTERVAL,
                turns: u64::MAX,
            };
            let mut ping_due = Instant::now();
            while !shutdown.load(Ordering::Acquire) {
                let now = Instant::now();
                if let Some(every) = watchdog {
                    if now >= ping_due {
                        if liveness.all_woke() {
                            notify(&[NotifyState::Watchdog]);
                        } else {
                            log::warn!("a worker has not answered the watchdog's wake-up");
                        }
                        liveness.poke();
                        ping_due = now + every;
                    }
                }
                status.refresh(&server, now);
                let ping_in = watchdog.map(|_| ping_due.saturating_duration_since(now));
                if status.turns == server.idle.turns() {
                    // Nothing served since the status was computed: nothing in it changes
                    // until a request comes.
                    server.idle.park(status.turns, ping_in);
                    status.settle();
                } else {
                    let status_in = status.due.saturating_duration_since(now);
                    server
                        .idle
                        .sleep(ping_in.map_or(status_in, |p| p.min(status_in)));
                }
            }
        })
        .map(Some)
}

/// The last `STATUS=` sent, when it is next due, and the serving threads' turns when it was
/// computed.
struct Status {
    line: String,
    due: Instant,
    turns: u64,
}

impl Status {
    /// After an idle spell: the first request of a burst woke the notifier, so the next status
    /// waits for the burst to land ([`STATUS_SETTLE`]) instead of showing its first request.
    fn settle(&mut self) {
        self.due = self.due.max(Instant::now() + STATUS_SETTLE);
    }

    fn refresh(&mut self, server: &Server, now: Instant) {
        if now < self.due {
            return;
        }
        self.turns = server.idle.turns();
        self.due = now + STATUS_INTERVAL;
        let line = status_line(server);
        if line != self.line {
            notify(&[NotifyState::Status(&line)]);
            self.line = line;
        }
    }
}

/// The workers' wake-up counts when the notifier last woke them: a worker alive wakes at once.
struct Liveness {
    workers: Vec<WorkerProbe>,
    poked_at: Option<Vec<u64>>,
}

impl Liveness {
    fn new(workers: Vec<WorkerProbe>) -> Self {
        Liveness {
            workers,
            poked_at: None,
        }
    }

    /// Whether every worker has woken since the last [`Liveness::poke`] (the first time: yes).
    fn all_woke(&self) -> bool {
        self.poked_at.as_ref().is_none_or(|before| {
            self.workers
                .iter()
                .zip(before)
                .all(|(w, &wakes)| w.wakes() != wakes)
        })
    }

    /// Wakes every worker, noting its count first.
    fn poke(&mut self) {
        self.poked_at = Some(self.workers.iter().map(WorkerProbe::wakes).collect());
        for w in &self.workers {
            w.wake();
        }
    }
}

/// One line for `systemctl status`: where, how many threads, memory, items, connections and
/// the hit ratio.
fn status_line(server: &Server) -> String {
    let s = &server.settings;
    let cache = server.cache.stats();
    let totals = server.stats.totals();
    let lookups = totals.get_hits + totals.get_misses;
    let hits = if lookups == 0 {
        "no gets yet".to_string()
    } else {
        format!(
            "{:.1}% hits of {lookups} gets",
            totals.get_hits as f64 * 100.0 / lookups as f64
        )
    };
    let mb = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    format!(
        "{} threads, {:.1} of {:.0} MB in {} items, {} connections, {hits}",
        s.threads,
        mb(cache.bytes),
        mb(cache.limit_maxbytes),
        cache.curr_items,
        server.conns.current.load(Ordering::Relaxed)
    )
}
