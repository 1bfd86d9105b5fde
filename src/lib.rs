//! memcached-rs: a memcached-compatible cache daemon.
//!
//! A request travels through the crate like this:
//!
//! ```text
//! socket ─read─▶ net::Conn ─line─▶ protocol::text::parse ─Request─▶ handler ─▶ cache ─▶ reply bytes ─write─▶ socket
//! ```
//!
//! - [`auth`]: who may use the server (`-Y`).
//! - [`config`]: settings from memcached's flags and Debian's `/etc/memcached.conf`.
//! - [`daemon`]: the process — start-up order, privileges, signals, logging.
//! - [`net`]: listeners, one epoll loop per worker thread, connection buffers. Knows no commands.
//! - [`protocol`]: pure parsers and encoders for the wire formats. No I/O, no locks.
//! - [`handler`]: executes parsed requests against the cache and counts statistics.
//! - [`cache`]: protocol-agnostic storage with memcached's CAS, expiry, flush and eviction rules.
//! - [`server`]: the state every worker shares.
//! - [`stats`]: per-thread counters.
//! - [`sync`]: locking as the whole crate does it.
//! - [`numparse`]: numbers parsed exactly as memcached's C code parses them.
//! - [`os`]: the one path for raw system calls, and the C library's wording of OS errors.

#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod auth;
pub mod cache;
pub mod config;
pub mod conn_table;
pub mod daemon;
pub mod handler;
pub mod net;
pub mod numparse;
pub mod os;
pub mod protocol;
pub mod server;
pub mod session;
pub mod stats;
pub mod sync;
pub mod watch;
