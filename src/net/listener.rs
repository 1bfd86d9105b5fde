//! Listening sockets, bound as memcached binds them.

use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::Path;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::config::Settings;

/// Listening sockets the last run left in systemd's file-descriptor store. Each is used again
/// where the settings still ask for its address, so connections that arrive while the service
/// restarts wait in its backlog instead of being refused; the rest are closed.
#[derive(Debug, Default)]
pub struct KeptSockets(RefCell<Vec<Socket>>);

impl KeptSockets {
    /// The sockets passed back.
    pub fn new(sockets: Vec<OwnedFd>) -> KeptSockets {
        KeptSockets(RefCell::new(
            sockets.into_iter().map(Socket::from).collect(),
        ))
    }

    /// Whether the last run left any.
    pub fn is_empty(&self) -> bool {
        self.0.borrow().is_empty()
    }

    /// Takes the kept socket of type `kind` bound to `addr`, if there is one. An ephemeral port
    /// (0) is never taken: it asks for a new one.
    pub(super) fn take(&self, kind: Type, addr: &SockAddr) -> Option<Socket> {
        if addr.as_socket().is_some_and(|a| a.port() == 0) {
            return None;
        }
        let mut kept = self.0.borrow_mut();
        let at = kept.iter().position(|s| {
            s.r#type().ok() == Some(kind)
                && s.local_addr().is_ok_and(|local| {
                    local.as_socket() == addr.as_socket()
                        && local.as_pathname() == addr.as_pathname()
                })
        })?;
        let socket = kept.swap_remove(at);
        socket.set_nonblocking(true).ok()?;
        Some(socket)
    }
}

/// Why listening failed, with memcached's wording.
#[derive(Debug)]
pub struct ListenError {
    /// What was being bound.
    pub what: String,
    /// The OS error.
    pub source: io::Error,
    /// A further line memcached prints after the error.
    pub then: Option<String>,
}

impl std::fmt::Display for ListenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // perror's format.
        let reason = crate::os::os_reason(&self.source);
        write!(f, "{}: {reason}", self.what)?;
        match &self.then {
            Some(line) => write!(f, "\n{line}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for ListenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The addresses `-l` names with `port` (every interface, IPv4 and IPv6, when no `-l` is
/// given), resolved.
pub fn listen_addrs(settings: &Settings, port: i32) -> Result<Vec<SocketAddr>, ListenError> {
    Ok(tagged_listen_addrs(settings, port)?
        .into_iter()
        .map(|(addr, _)| addr)
        .collect())
}

/// [`listen_addrs`], each with whether its `-l` entry said `notls:`.
fn tagged_listen_addrs(
    settings: &Settings,
    port: i32,
) -> Result<Vec<(SocketAddr, bool)>, ListenError> {
    // -1: a port the kernel picks, per address, as memcached binds port 0 for it. (Settings
    // only hold -1 and 0..=65535.)
    let port = u16::try_from(port).unwrap_or(0);
    let mut addrs: Vec<(SocketAddr, bool)> = Vec::new();
    let wildcard = |port: u16| {
        [
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
        ]
    };
    if settings.listen.is_empty() {
        addrs.extend(wildcard(port).map(|a| (a, false)));
    }
    for spec in &settings.listen {
        let port = spec.port.unwrap_or(port);
        match &spec.host {
            None => addrs.extend(wildcard(port).map(|a| (a, spec.no_tls))),
            Some(host) => {
                let resolved =
                    (host.as_str(), port)
                        .to_socket_addrs()
                        .map_err(|e| ListenError {
                            what: format!("getaddrinfo(): {host}"),
                            source: e,
                            then: None,
                        })?;
                addrs.extend(resolved.map(|a| (a, spec.no_tls)));
            }
        }
    }
    Ok(addrs)
}

/// Binds a TCP listener on every address `-l`/`-p` name (see [`bind_each`]), each with whether
/// it speaks TLS (`-Z`, unless its `-l` entry said `notls:`).
pub fn bind_tcp(
    settings: &Settings,
    kept: &KeptSockets,
) -> Result<Vec<(TcpListener, bool)>, ListenError> {
    // memcached's two messages: one naming the -l list, one naming the port.
    let fail = |source: io::Error| ListenError {
        what: if settings.listen.is_empty() {
            format!("failed to listen on TCP port {}", settings.port)
        } else {
            format!(
                "failed to listen on one of interface(s) {}",
                settings.inter.as_deref().unwrap_or_default()
            )
        },
        source,
        then: None,
    };
    let tagged = tagged_listen_addrs(settings, settings.port)?;
    let tls_at = |addr: SocketAddr| settings.tls && !tagged.iter().any(|&(a, no)| a == addr && no);
    let addrs = tagged.iter().map(|&(a, _)| a).collect();
    bind_each(
        addrs,
        |addr| Ok((bind_one(addr, settings.backlog, kept)?, tls_at(addr))),
        fail,
    )
}

/// Binds one socket per address with `bind` (an address named twice, once). Like memcached,
/// an address in use — or an IPv6 one on a host without IPv6 — is skipped as long as another
/// one binds; any other error is `fail`ed at once.
pub(super) fn bind_each<T>(
    addrs: Vec<SocketAddr>,
    bind: impl Fn(SocketAddr) -> io::Result<T>,
    fail: impl Fn(io::Error) -> ListenError,
) -> Result<Vec<T>, ListenError> {
    let mut bound = Vec::new();
    let mut bound_addrs: Vec<SocketAddr> = Vec::new();
    let mut last_error = None;
    for addr in addrs {
        if bound_addrs.contains(&addr) {
            continue;
        }
        match bind(addr) {
            Ok(socket) => {
                bound.push(socket);
                bound_addrs.push(addr);
            }
            // Without IPv6 support on the host, the wildcard v6 bind fails harmlessly.
            Err(e)
                if e.kind() == io::ErrorKind::AddrInUse
                    || e.raw_os_error() == Some(libc::EAFNOSUPPORT)
                    || e.raw_os_error() == Some(libc::EADDRNOTAVAIL) && addr.is_ipv6() =>
            {
                last_error = Some(e)
            }
            Err(e) => return Err(fail(e)),
        }
    }
    if bound.is_empty() {
        return Err(fail(last_error.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::AddrNotAvailable, "no address to bind")
        })));
    }
    Ok(bound)
}

fn bind_one(addr: SocketAddr, backlog: i32, kept: &KeptSockets) -> io::Result<TcpListener> {
    if let Some(socket) = kept.take(Type::STREAM, &addr.into()) {
        return Ok(socket.into());
    }
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        // One socket per family, as memcached: the v4 wildcard gets its own.
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_keepalive(true)?;
    socket.set_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Binds the `-s` unix socket with mode `mask` (`-a`). A socket file left by an earlier run is
/// replaced; any other file at the path is an error, as with memcached.
pub fn bind_unix(
    path: &Path,
    mask: u32,
    backlog: i32,
    kept: &KeptSockets,
) -> Result<UnixListener, ListenError> {
    let fail = |source: io::Error| ListenError {
        what: "bind()".into(),
        source,
        // memcached then reports the failure once more, with a stale errno.
        then: Some(format!(
            "failed to listen on UNIX socket: {}: Invalid argument",
            path.display()
        )),
    };
    let addr = SockAddr::unix(path).map_err(fail)?;
    if let Some(socket) = kept.take(Type::STREAM, &addr) {
        return Ok(UnixListener::from(OwnedFd::from(socket)));
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_socket() {
            std::fs::remove_file(path).map_err(fail)?;
        }
    }
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(fail)?;
    socket.bind(&addr).map_err(fail)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mask & 0o777)).map_err(fail)?;
    socket.listen(backlog).map_err(fail)?;
    socket.set_nonblocking(true).map_err(fail)?;
    Ok(UnixListener::from(OwnedFd::from(socket)))
}
