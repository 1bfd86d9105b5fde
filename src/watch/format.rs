//! Events as the logger queues them, and their lines as watchers receive them (memcached's
//! `_logger_parse_*` formats).

use std::net::SocketAddr;

use super::{CloseReason, GetStatus};

/// A client's address as connection events show it.
#[derive(Debug, Clone)]
pub(super) struct Peer {
    ip: String,
    port: u16,
    transport: &'static str,
}

impl Peer {
    /// A TCP client at `addr` (as noted at accept), or (`None`) a unix one.
    pub(super) fn of(addr: Option<SocketAddr>, unix: bool) -> Peer {
        if unix {
            Peer {
                ip: "unix".into(),
                port: 0,
                transport: "local",
            }
        } else {
            Peer::inet(addr, "tcp")
        }
    }

    pub(super) fn inet(addr: Option<SocketAddr>, transport: &'static str) -> Peer {
        Peer {
            ip: addr.map_or_else(String::new, |a| a.ip().to_string()),
            port: addr.map_or(0, |a| a.port()),
            transport,
        }
    }
}

/// One logged event, not yet formatted.
#[derive(Debug)]
pub(super) enum Event {
    ItemGet {
        key: Box<[u8]>,
        status: GetStatus,
        class: u8,
        fd: i32,
        size: u32,
    },
    ItemStore {
        key: Box<[u8]>,
        status: &'static str,
        command: &'static str,
        ttl: u32,
        class: u8,
        fd: i32,
        size: u32,
    },
    Eviction {
        key: Box<[u8]>,
        fetched: bool,
        ttl: i64,
        last_access: u32,
        class: u8,
        size: u32,
    },
    Deleted {
        key: Box<[u8]>,
        command: &'static str,
        class: u8,
        size: u32,
    },
    HotKey {
        key: Box<[u8]>,
        metric: &'static str,
        window: &'static str,
        rank: usize,
        rate: f64,
        error: f64,
    },
    ConnNew {
        peer: Peer,
        fd: i32,
    },
    ConnClose {
        peer: Peer,
        reason: CloseReason,
        fd: i32,
    },
}

/// An event with its time, global id and kind.
#[derive(Debug)]
pub(super) struct Record {
    pub(super) secs: u64,
    pub(super) micros: u32,
    pub(super) gid: u64,
    pub(super) kind: u16,
    pub(super) event: Event,
}

/// memcached's `uriencode`: key bytes outside `[A-Za-z0-9._~-]` as `%XX`.
fn uriencode(key: &[u8], out: &mut String) {
    use std::fmt::Write;
    for &b in key {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// One record as the line watchers receive (memcached's `_logger_parse_*`).
pub(super) fn format_record(r: &Record, out: &mut String) {
    use std::fmt::Write;
    // memcached prints the microseconds with %d: not zero-padded.
    let _ = write!(out, "ts={}.{} gid={} ", r.secs, r.micros, r.gid);
    match &r.event {
        Event::ItemGet {
            key,
            status,
            class,
            fd,
            size,
        } => {
            out.push_str("type=item_get key=");
            uriencode(key, out);
            let _ = writeln!(
                out,
                " status={} clsid={class} cfd={fd} size={size}",
                status.name()
            );
        }
        Event::ItemStore {
            key,
            status,
            command,
            ttl,
            class,
            fd,
            size,
        } => {
            out.push_str("type=item_store key=");
            uriencode(key, out);
            let _ = writeln!(
                out,
                " status={status} cmd={command} ttl={ttl} clsid={class} cfd={fd} size={size}"
            );
        }
        Event::Eviction {
            key,
            fetched,
            ttl,
            last_access,
            class,
            size,
        } => {
            out.push_str("type=eviction key=");
            uriencode(key, out);
            let fetch = if *fetched { "yes" } else { "no" };
            let _ = writeln!(
                out,
                " fetch={fetch} ttl={ttl} la={last_access} clsid={class} size={size}"
            );
        }
        Event::Deleted {
            key,
            command,
            class,
            size,
        } => {
            out.push_str("type=deleted key=");
            uriencode(key, out);
            let _ = writeln!(out, " cmd={command} clsid={class} size={size}");
        }
        Event::HotKey {
            key,
            metric,
            window,
            rank,
            rate,
            error,
        } => {
            let _ = write!(
                out,
                "type=hotkey metric={metric} window={window} rank={rank} key="
            );
            uriencode(key, out);
            let _ = writeln!(out, " rate={rate:.1} error={error:.1}");
        }
        Event::ConnNew { peer, fd } => {
            let _ = writeln!(
                out,
                "type=conn_new rip={} rport={} transport={} cfd={fd}",
                peer.ip, peer.port, peer.transport
            );
        }
        Event::ConnClose { peer, reason, fd } => {
            let _ = writeln!(
                out,
                "type=conn_close rip={} rport={} transport={} reason={} cfd={fd}",
                peer.ip,
                peer.port,
                peer.transport,
                reason.name()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::kind;

    #[test]
    fn keys_are_uri_encoded() {
        let mut s = String::new();
        uriencode(b"a b/c%~_.-Z9\x01", &mut s);
        assert_eq!(s, "a%20b%2Fc%25~_.-Z9%01");
    }

    #[test]
    fn lines_have_memcached_fields() {
        let mut s = String::new();
        let r = Record {
            secs: 1700000000,
            micros: 4207,
            gid: 9,
            kind: kind::MUTATIONS,
            event: Event::ItemStore {
                key: b"k"[..].into(),
                status: "stored",
                command: "set",
                ttl: 0,
                class: 1,
                fd: 25,
                size: 1,
            },
        };
        format_record(&r, &mut s);
        assert_eq!(
            s,
            "ts=1700000000.4207 gid=9 type=item_store key=k status=stored cmd=set ttl=0 clsid=1 cfd=25 size=1\n"
        );
        s.clear();
        let r = Record {
            secs: 1700000000,
            micros: 17,
            gid: 3,
            kind: kind::DELETIONS,
            event: Event::Deleted {
                key: b"a%b"[..].into(),
                command: "md",
                class: 2,
                size: 5,
            },
        };
        format_record(&r, &mut s);
        assert_eq!(
            s,
            "ts=1700000000.17 gid=3 type=deleted key=a%25b cmd=md clsid=2 size=5\n"
        );
        s.clear();
        let r = Record {
            secs: 1,
            micros: 0,
            gid: 2,
            kind: kind::CONNEVENTS,
            event: Event::ConnClose {
                peer: Peer::inet(Some("127.0.0.1:5000".parse().unwrap()), "tcp"),
                reason: CloseReason::IdleTimeout,
                fd: 7,
            },
        };
        format_record(&r, &mut s);
        assert_eq!(
            s,
            "ts=1.0 gid=2 type=conn_close rip=127.0.0.1 rport=5000 transport=tcp reason=idle_timeout cfd=7\n"
        );
    }
}
