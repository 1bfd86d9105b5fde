//! `-l` addresses. (Being written: see the config helper.)

/// One `-l` entry: a host (None = every interface, memcached's `*`) and an optional port that
/// overrides `-p`/`-U` for this entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenSpec {
    /// Address or host name; `None` binds every interface.
    pub host: Option<String>,
    /// Port given with the address (`host:port`, `[v6]:port`); `None` uses `-p` / `-U`.
    pub port: Option<u16>,
}
