//! The process around the server: start-up order, privileges, signals and shutdown.

mod crawler;
pub mod logging;
mod privileges;
mod process;
pub mod signals;
mod systemd;
mod warm;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;

use crate::auth::AuthFile;
use crate::config::Settings;
use crate::net;
use crate::server::Server;

/// sysexits.h codes memcached uses.
pub(crate) const EX_USAGE: u8 = 64;
pub(crate) const EX_OSERR: u8 = 71;

/// A reason the daemon could not start, with the exit status to report.
#[derive(Debug)]
pub struct DaemonError {
    /// What went wrong, for stderr.
    pub message: String,
    /// Process exit status.
    pub exit_code: u8,
}

impl fmt::Display for DaemonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DaemonError {}

use crate::os::os_reason;

fn os_error(message: String) -> DaemonError {
    DaemonError {
        message,
        exit_code: EX_OSERR,
    }
}

/// Runs the server until a signal (or the `shutdown` command) stops it.
pub fn run(mut settings: Settings) -> Result<(), DaemonError> {
    logging::init(settings.verbose);
    process::tune_malloc(settings.item_size_max);
    if settings.sasl {
        settings.sasl_pwdb = std::env::var_os("MEMCACHED_SASL_PWDB").map(Into::into);
        if settings.sasl_pwdb.is_none() {
            log::warn!("-S without MEMCACHED_SASL_PWDB: no user can authenticate");
        }
    }
    for warning in &settings.warnings {
        eprintln!("{warning}");
    }
    for option in &settings.not_implemented {
        let why = crate::config::without_effect(option).unwrap_or("not supported");
        log::warn!("{option}: accepted, without effect: {why}");
    }
    // Refuse to run as root without -u before touching anything, as memcached does.
    if is_root() && settings.user.as_deref().is_none_or(str::is_empty) {
        return Err(DaemonError {
            message: "can't run as root without the -u switch".into(),
            exit_code: EX_USAGE,
        });
    }

    if settings.core_dumps {
        process::enable_core_dumps().map_err(os_error)?;
    }
    process::raise_fd_limit(settings.max_connections);
    // The log file is opened before privileges go, as Debian's wrapper opens it as root.
    if let Some(path) = &settings.logfile {
        // A log file the service may not write (Debian's memcached.conf names
        // /var/log/memcached.log, which memcached's wrapper opened as root) must not keep the
        // cache from starting: the log goes to stderr, the journal under systemd, instead.
        if let Err(e) = logging::to_file(path) {
            log::warn!(
                "cannot open log file {}: {}; logging to stderr instead",
                path.display(),
                os_reason(&e)
            );
        }
    }

    let passed = systemd::passed_fds(settings.tls).map_err(os_error)?;
    let activated = passed.has_sockets();
    let (listeners, datagrams) = if activated {
        (passed.listeners, passed.datagrams)
    } else {
        let kept = net::KeptSockets::new(passed.kept);
        let replacing = !kept.is_empty();
        let (listeners, datagrams) = open_listeners(&settings, &kept)?;
        drop(kept);
        keep_listeners(&listeners, &datagrams, replacing);
        (listeners, datagrams)
    };
    let listeners_kept = !activated && warm::under_systemd();
    // Reached now, while the process may still open a socket only root can reach.
    systemd::connect_notify_socket();
    privileges::drop_root(settings.user.as_deref())?;
    // Under systemd the service manager supervises the process: -d means nothing there, as
    // Debian's wrapper has it.
    if settings.daemonize && std::env::var_os("NOTIFY_SOCKET").is_none() {
        process::daemonize().map_err(|e| {
            os_error(format!(
                "failed to daemon() in order to daemonize: {}",
                os_reason(&e)
            ))
        })?;
        if settings.logfile.is_none() {
            logging::to_syslog();
        }
    }
    if let Some(path) = &settings.pid_file {
        process::write_pid_file(path);
    }

    let signals = Signals::new([SIGINT, SIGTERM, SIGHUP, SIGUSR1])
        .map_err(|e| os_error(format!("failed to install signal handlers: {e}")))?;
    let listen_count = (listeners.len() + datagrams.len()) as u64;
    let listeners = Arc::new(listeners);
    let ascii_auth = match &settings.auth_file {
        Some(path) => Some(AuthFile::load(path).map_err(|message| DaemonError {
            message,
            exit_code: 1,
        })?),
        None => None,
    };
    let tls = if settings.tls {
        Some(
            net::tls::Tls::new(&settings.ssl).map_err(|message| DaemonError {
                message,
                exit_code: 64,
            })?,
        )
    } else {
        None
    };
    // The memory file stays open (and locked) until the process ends.
    let (mut server, _memory_file) = warm::build_server(settings, passed.cache)?;
    server.ascii_auth = ascii_auth;
    server.tls = tls;
    server.hooks = crate::server::ProcessHooks {
        set_verbosity: logging::set_verbosity,
        stop: signals::stop,
    };
    if server.settings.large_pages {
        prefault(&server);
    }
    if server.settings.lock_memory {
        process::lock_memory();
    }
    let server = Arc::new(server);
    // memcached counts its listening sockets as connections in `total_connections`.
    server.conns.total.store(listen_count, Ordering::Relaxed);
    register_sockets(&server, &listeners, &datagrams);
    let s = &server.settings;
    crate::watch::configure(s.worker_logbuf_size, s.threads, s.watcher_logbuf_size);
    let shutdown = Arc::new(AtomicBool::new(false));
    // No clock thread: the workers keep the time (crate::cache::clock), each on its turns.
    server.cache.clock().tick();
    crate::conn_table::tick();
    let workers = net::spawn_workers(&server, &listeners, &shutdown)
        .map_err(|e| os_error(format!("failed to start worker threads: {e}")))?;
    let udp = net::spawn_udp(&server, datagrams, &shutdown)
        .map_err(|e| os_error(format!("failed to start the UDP threads: {e}")))?;
    let crawler = crawler::spawn(Arc::clone(&server), Arc::clone(&shutdown))
        .map_err(|e| os_error(format!("failed to start the LRU crawler: {e}")))?;
    for l in listeners.iter() {
        log::info!("listening on {}", l.describe());
    }
    log_memory(&server);
    let notifier = systemd::spawn_notifier(
        Arc::clone(&server),
        workers.iter().map(net::WorkerHandle::probe).collect(),
        Arc::clone(&shutdown),
    )
    .map_err(|e| os_error(format!("failed to start the notifier thread: {e}")))?;
    systemd::ready(&server);

    wait_for_stop(&server, signals);

    systemd::stopping();
    shutdown.store(true, Ordering::Release);
    for w in &workers {
        w.wake();
    }
    for t in &udp {
        t.wake();
    }
    server.idle.stop();
    // A thread that panicked may have left an item half written: the cache is then not
    // marked as cleanly stopped, and the next run starts empty.
    let mut intact = true;
    for w in workers {
        intact &= w.join();
    }
    for t in udp {
        intact &= t.join();
    }
    crate::watch::settle(std::time::Duration::from_millis(500));
    if crawler.join().is_err() {
        log::error!("the LRU crawler thread panicked");
        intact = false;
    }
    if intact {
        warm::mark_clean_stop(&server);
    }
    if notifier.is_some_and(|n| n.join().is_err()) {
        log::error!("the notifier thread panicked");
    }
    if let Some(path) = &server.settings.pid_file {
        process::remove_pid_file(path);
    }
    if let Some(path) = server
        .settings
        .unix_socket
        .as_ref()
        .filter(|_| !listeners_kept)
    {
        // memcached leaves the socket file behind; a clean exit should not (unless the socket
        // waits in systemd's store for the next run).
        if let Err(e) = std::fs::remove_file(path) {
            log::warn!("could not remove {}: {e}", path.display());
        }
    }
    Ok(())
}

/// Lists the listeners and UDP sockets in the connection table (`stats conns`).
fn register_sockets(
    server: &Server,
    listeners: &[net::Listener],
    datagrams: &[std::net::UdpSocket],
) {
    use crate::conn_table::{inet_addr, ConnEntry, ConnKind};
    use std::os::fd::AsRawFd;
    let entry = |kind, addr| ConnEntry {
        kind,
        addr,
        last_cmd: Arc::default(),
    };
    for l in listeners {
        server
            .conn_table
            .insert(l.as_raw_fd(), entry(ConnKind::Listening, l.table_addr()));
    }
    for s in datagrams {
        let addr = s
            .local_addr()
            .map_or_else(|_| "?".into(), |a| inet_addr("udp", &a));
        server
            .conn_table
            .insert(s.as_raw_fd(), entry(ConnKind::Udp, addr));
    }
}

/// memcached's `MEMCACHED_PORT_FILENAME`: when set, the bound ports go to that file (`TCP
/// INET: 11211` lines, `INET6` for IPv6), written beside it first and renamed into place, so a
/// reader never sees half of it. Test suites use it to find servers started on port 0.
fn write_port_file(tcp: &[&std::net::TcpListener], udp: &[std::net::UdpSocket]) {
    let Some(path) = std::env::var_os("MEMCACHED_PORT_FILENAME") else {
        return;
    };
    let family = |a: &std::net::SocketAddr| if a.is_ipv6() { "INET6" } else { "INET" };
    let mut text = String::new();
    for addr in tcp.iter().filter_map(|l| l.local_addr().ok()) {
        text.push_str(&format!("TCP {}: {}\n", family(&addr), addr.port()));
    }
    for addr in udp.iter().filter_map(|s| s.local_addr().ok()) {
        text.push_str(&format!("UDP {}: {}\n", family(&addr), addr.port()));
    }
    let path = std::path::PathBuf::from(path);
    let mut temp = path.clone().into_os_string();
    temp.push(".lck");
    if let Err(e) = std::fs::write(&temp, text).and_then(|()| std::fs::rename(&temp, &path)) {
        log::warn!("could not write the port file {}: {e}", path.display());
    }
}

/// The sockets to serve: the `-s` unix socket (which, as in memcached, turns the network
/// off), else TCP on every `-l` address and, with `-U`, UDP on the same addresses.
/// Under systemd, hands the listening sockets to its file-descriptor store, so that they
/// outlive this run (`replacing` those the last run left there).
fn keep_listeners(listeners: &[net::Listener], datagrams: &[std::net::UdpSocket], replacing: bool) {
    use std::os::fd::AsRawFd;
    if !warm::under_systemd() {
        return;
    }
    let fds: Vec<_> = listeners
        .iter()
        .map(AsRawFd::as_raw_fd)
        .chain(datagrams.iter().map(AsRawFd::as_raw_fd))
        .collect();
    if systemd::store_listeners(&fds, replacing) {
        log::info!("listening sockets handed to systemd's file-descriptor store");
    }
}

fn open_listeners(
    settings: &Settings,
    kept: &net::KeptSockets,
) -> Result<(Vec<net::Listener>, Vec<std::net::UdpSocket>), DaemonError> {
    if let Some(path) = &settings.unix_socket {
        let l = net::bind_unix(path, settings.unix_mask, settings.backlog, kept)
            .map_err(|e| os_error(e.to_string()))?;
        return Ok((vec![net::Listener::Unix(l)], Vec::new()));
    }
    // Port 0 turns a transport off, as in memcached.
    let tcp = if settings.port == 0 {
        Vec::new()
    } else {
        net::bind_tcp(settings, kept).map_err(|e| os_error(e.to_string()))?
    };
    let udp = if settings.udp_port == 0 {
        Vec::new()
    } else {
        net::bind_udp(settings, kept).map_err(|e| os_error(e.to_string()))?
    };
    write_port_file(&tcp.iter().map(|(l, _)| l).collect::<Vec<_>>(), &udp);
    let listeners = tcp
        .into_iter()
        .map(|(l, tls)| {
            if tls {
                net::Listener::Tls(l)
            } else {
                net::Listener::Tcp(l)
            }
        })
        .collect();
    Ok((listeners, udp))
}

/// Blocks until a signal asks the server to stop.
fn wait_for_stop(server: &Server, mut signals: Signals) {
    for signal in signals.forever() {
        match signal {
            SIGHUP => systemd::reload(server, || {
                let what = logging::reopen();
                log::info!("{what}");
            }),
            // What memcached 1.6.18 prints with -v.
            SIGUSR1 => {
                log::info!("Gracefully stopping");
                return;
            }
            _ => {
                log::info!("Exiting normally");
                return;
            }
        }
    }
}

/// `-L`: faults the whole item memory in before the first request (memcached preallocates
/// it), telling systemd at once and then every second that start-up goes on, so a large arena
/// does not run into `TimeoutStartSec=`.
fn prefault(server: &Server) {
    const STEP: usize = 64 * 1024 * 1024;
    let started = std::time::Instant::now();
    let mut told: Option<std::time::Instant> = None;
    let arena = server.cache.slabs().arena();
    let result = arena.prefault(STEP, |done, total| {
        if told.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(1)) {
            told = Some(std::time::Instant::now());
            // Enough for the rest at the pace so far, and then some.
            let per_byte = started.elapsed().as_secs_f64() / done as f64;
            let rest = per_byte * (total - done) as f64;
            systemd::extend_timeout(std::time::Duration::from_secs_f64(rest * 2.0 + 5.0));
        }
    });
    match result {
        Ok(()) => log::info!(
            "item memory prefaulted in {} ms",
            started.elapsed().as_millis()
        ),
        Err(e) => log::warn!("-L: could not prefault the item memory: {e}"),
    }
}

/// Start-up report of the item memory: the page backing (`-L`), and with `-vv` the slab
/// classes in memcached's own format.
fn log_memory(server: &Server) {
    let slabs = server.cache.slabs();
    let arena = slabs.arena();
    log::info!(
        "item memory: {} MB in {} pages, backed by {} pages",
        server.settings.memory_limit / (1024 * 1024),
        arena.pages(),
        arena.backing().name()
    );
    if server.settings.large_pages && *arena.backing() == crate::cache::arena::Backing::Regular {
        log::warn!("-L: large pages are not available; using regular pages");
    }
    let table = slabs.table();
    for class in 1..=table.largest() {
        log::debug!(
            "slab class {:3}: chunk size {:9} perslab {:7}",
            class,
            table.chunk_size(class),
            table.per_page(class)
        );
    }
}

fn is_root() -> bool {
    // SAFETY: getuid/geteuid have no preconditions.
    unsafe { libc::getuid() == 0 || libc::geteuid() == 0 }
}
