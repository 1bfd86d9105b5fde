//! The two kinds of stream socket a client can reach us on — TCP and unix — behind one type, so
//! the workers and connections do not care which.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};

use super::tls::{Tls, TlsStream};

/// A listening socket.
#[derive(Debug)]
pub enum Listener {
    /// `-l`/`-p`, or a TCP socket handed over by systemd.
    Tcp(TcpListener),
    /// The same with `-Z`: connections speak TLS.
    Tls(TcpListener),
    /// `-s`, or a unix socket handed over by systemd.
    Unix(UnixListener),
}

impl Listener {
    /// Accepts one connection (the listener is non-blocking); a TLS listener's starts its
    /// session with `tls`.
    pub fn accept(&self, tls: Option<&Tls>) -> io::Result<Stream> {
        match self {
            Listener::Tcp(l) => {
                let (s, _) = l.accept()?;
                s.set_nodelay(true)?;
                Ok(Stream::Tcp(s))
            }
            Listener::Tls(l) => {
                let (s, _) = l.accept()?;
                s.set_nodelay(true)?;
                let tls = tls.ok_or_else(|| io::Error::other("TLS listener without TLS"))?;
                Ok(Stream::Tls(Box::new(tls.accept(s)?)))
            }
            Listener::Unix(l) => l.accept().map(|(s, _)| Stream::Unix(s)),
        }
    }

    /// What it listens on, for the log.
    pub fn describe(&self) -> String {
        match self {
            Listener::Tcp(l) => l
                .local_addr()
                .map_or_else(|_| "tcp ?".into(), |a| format!("tcp {a}")),
            Listener::Tls(l) => l
                .local_addr()
                .map_or_else(|_| "tls ?".into(), |a| format!("tls {a}")),
            Listener::Unix(l) => l
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(|p| format!("unix {}", p.display())))
                .unwrap_or_else(|| "unix ?".into()),
        }
    }

    /// Its address as `stats conns` shows it (`tcp:127.0.0.1:11211`, `unix:/path`).
    pub fn table_addr(&self) -> String {
        match self {
            Listener::Tcp(l) | Listener::Tls(l) => l
                .local_addr()
                .map_or_else(|_| "?".into(), |a| crate::conn_table::inet_addr("tcp", &a)),
            Listener::Unix(l) => l
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(|p| format!("unix:{}", p.display())))
                .unwrap_or_else(|| "?".into()),
        }
    }

    /// The TCP port, if this is a TCP listener.
    pub fn tcp_port(&self) -> Option<u16> {
        match self {
            Listener::Tcp(l) | Listener::Tls(l) => l.local_addr().ok().map(|a| a.port()),
            Listener::Unix(_) => None,
        }
    }
}

impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Listener::Tcp(l) | Listener::Tls(l) => l.as_raw_fd(),
            Listener::Unix(l) => l.as_raw_fd(),
        }
    }
}

/// A client connection's socket.
#[derive(Debug)]
pub enum Stream {
    /// Over TCP.
    Tcp(TcpStream),
    /// Over a unix socket.
    Unix(UnixStream),
    /// TLS over TCP (`-Z`).
    Tls(Box<TlsStream>),
}

impl Stream {
    /// The peer's address as `stats conns` shows it, from `peer` (the TCP peer as asked at
    /// accept); memcached prints an unnamed unix peer as `?:<AF 0>`.
    pub fn table_addr(&self, peer: Option<std::net::SocketAddr>) -> String {
        match (self, peer) {
            (Stream::Unix(_), _) => "?:<AF 0>".into(),
            (_, Some(a)) => crate::conn_table::inet_addr("tcp", &a),
            (_, None) => "?".into(),
        }
    }

    /// Whether the client came over a unix socket.
    pub fn is_unix(&self) -> bool {
        matches!(self, Stream::Unix(_))
    }

    /// Whether the client speaks TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// The TCP socket under the stream, if it is one.
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Stream::Tcp(s) => Some(s),
            Stream::Tls(s) => Some(s.tcp()),
            Stream::Unix(_) => None,
        }
    }

    /// Switches the socket to non-blocking mode.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_nonblocking(on),
            Stream::Tls(s) => s.tcp().set_nonblocking(on),
            Stream::Unix(s) => s.set_nonblocking(on),
        }
    }

    /// Reads into `buf`'s spare room (at least `min_room` of it). Returns the bytes read and
    /// whether the socket may hold more: a short read drains a plain socket, but TLS may
    /// have decrypted less than it pulled in.
    pub fn read_to_spare(
        &mut self,
        buf: &mut Vec<u8>,
        min_room: usize,
    ) -> io::Result<(usize, bool)> {
        match self {
            Stream::Tls(s) => {
                // rustls hands back about one record a read: zero only that much room, not
                // the whole value still to come (which made a large value quadratic).
                const TLS_READ_ROOM: usize = 64 * 1024;
                let start = buf.len();
                buf.reserve(min_room);
                buf.resize(start + min_room.min(TLS_READ_ROOM), 0);
                let got = s.read(&mut buf[start..]);
                let n = *got.as_ref().unwrap_or(&0);
                buf.truncate(start + n);
                got.map(|n| (n, true))
            }
            _ => {
                let n = super::sys::read_to_spare(&*self, buf, min_room)?;
                Ok((n, buf.len() == buf.capacity()))
            }
        }
    }

    /// Shuts the sending side (after TLS's close_notify): the client reads to the end of what
    /// was sent, then end-of-file.
    pub fn shutdown_write(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
            Stream::Tls(s) => s.close(),
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Write),
        }
    }

    /// Pushes out output the stream itself still holds (TLS records). `Ok(true)` when none is
    /// left; plain sockets hold nothing.
    pub fn flush_pending(&mut self) -> io::Result<bool> {
        match self {
            Stream::Tls(s) => s.flush_pending(),
            _ => Ok(true),
        }
    }
}

impl crate::watch::WatcherStream for Stream {
    fn flush_pending(&mut self) -> io::Result<bool> {
        Stream::flush_pending(self)
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Tls(s) => s.tcp().as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tls(s) => s.flush(),
            _ => Ok(()),
        }
    }
}
