//! memcached-rs: a memcached-compatible cache daemon.
//!
//! A request travels through the crate like this:
//!
//! ```text
//! socket ─read─▶ net::Conn ─bytes─▶ session::Session::feed ─line/frame─▶ protocol ─Request─▶ handler ─▶ cache
//!                                                          ◀──────────── reply bytes ─────────────┘
//! ```
//!
//! - [`net`]: listeners, one epoll loop per worker thread, connection buffers. Moves bytes only.
//! - [`session`]: a connection's protocol state machine without a socket (framing, pauses,
//!   swallowing); TCP, TLS, unix sockets, UDP and the fuzzer drive the same one.
//! - [`protocol`]: pure parsers and encoders for the wire formats. No I/O, no locks.
//! - [`handler`]: executes parsed requests against the cache, one module per command family.
//! - [`cache`]: protocol-agnostic storage with memcached's CAS, expiry, flush and eviction rules.
//! - [`server`]: the state every worker shares, and the hooks the process installs.
//! - [`config`]: settings from memcached's flags and Debian's `/etc/memcached.conf`.
//! - [`daemon`]: the process — start-up order, privileges, signals, logging, systemd.
//! - [`auth`]: who may use the server (`-Y`), and constant-time comparison.
//! - [`stats`]: per-thread counters; [`conn_table`]: every socket, for `stats conns`.
//! - [`watch`]: the `watch` command's log streams.
//! - [`sync`]: locking as the whole crate does it; [`os`]: the one path for raw system calls.
//! - [`numparse`]: numbers parsed exactly as memcached's C code parses them.

#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod auth;
pub mod cache;
pub mod config;
pub mod conn_table;
pub mod daemon;
pub mod handler;
pub mod hotkeys;
pub mod idle;
pub mod net;
pub mod numparse;
pub mod os;
pub mod protocol;
pub mod server;
pub mod session;
pub mod stats;
pub mod sync;
pub mod tool;
pub mod watch;
