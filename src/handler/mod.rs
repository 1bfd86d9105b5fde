//! Executes parsed requests against the cache and writes the replies.
//!
//! This is the seam between the pure protocol parsers and the cache: it owns the command
//! semantics that are neither parsing nor storage — statistics, `noreply`, the order in which
//! memcached checks things, and what happens to the connection next.

mod ascii_auth;
pub mod binary;
mod crawler;
mod meta;
mod sasl;
mod stats;
pub mod text;
mod watch;

pub use text::{ConnState, Handler, Next};
