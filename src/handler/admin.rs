//! The commands that manage the server rather than items: flush_all, verbosity, shutdown,
//! cache_memlimit, refresh_certs.

use std::sync::atomic::Ordering;

use super::{reply, Handler, Next};
use crate::protocol::text::{FlushDelay, ShutdownMode};

/// memcached's `MAX_VERBOSITY_LEVEL`.
const MAX_VERBOSITY: u32 = 2;

impl Handler<'_> {
    /// `flush_all [delay]`.
    pub(super) fn flush_all(&self, delay: FlushDelay, noreply: bool, out: &mut Vec<u8>) -> Next {
        let cache = &self.server.cache;
        let stats = self.stats;
        stats.flush_cmds.incr();
        if !self.server.settings.flush_enabled {
            reply(out, "CLIENT_ERROR flush_all not allowed", noreply);
            return Next::ReadLine;
        }
        match delay {
            FlushDelay::Invalid => {
                reply(out, "CLIENT_ERROR invalid exptime argument", noreply);
                return Next::ReadLine;
            }
            FlushDelay::Now => cache.flush_all(0),
            FlushDelay::Seconds(s) => cache.flush_all(i64::from(s)),
        }
        reply(out, "OK", noreply);
        Next::ReadLine
    }

    /// `verbosity N`.
    pub(super) fn verbosity(&self, level: u32, noreply: bool, out: &mut Vec<u8>) -> Next {
        let level = level.min(MAX_VERBOSITY);
        self.server.verbosity.store(level, Ordering::Relaxed);
        (self.server.hooks.set_verbosity)(level);
        reply(out, "OK", noreply);
        Next::ReadLine
    }

    /// `shutdown [graceful]`, with `-A`.
    pub(super) fn shutdown(&self, mode: ShutdownMode, out: &mut Vec<u8>) -> Next {
        if !self.server.settings.shutdown_command {
            reply(out, "ERROR: shutdown not enabled", false);
            return Next::ReadLine;
        }
        match mode {
            ShutdownMode::Now => {
                (self.server.hooks.stop)(false);
                Next::Shutdown
            }
            ShutdownMode::Graceful => {
                (self.server.hooks.stop)(true);
                Next::Shutdown
            }
            ShutdownMode::Invalid => {
                reply(out, "CLIENT_ERROR invalid shutdown mode", false);
                Next::ReadLine
            }
        }
    }

    /// `cache_memlimit N`.
    pub(super) fn cache_memlimit(
        &self,
        megabytes: Option<u32>,
        noreply: bool,
        out: &mut Vec<u8>,
    ) -> Next {
        let cache = &self.server.cache;
        let line = match megabytes {
            None => "ERROR",
            Some(mb) if mb < 8 => "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m",
            Some(mb) if mb > 1_000_000_000 => {
                "MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes"
            }
            Some(mb) => {
                if cache.set_memory_limit(mb as usize * 1024 * 1024) {
                    log::info!("maxbytes adjusted to {mb}m");
                    "OK"
                } else {
                    "MEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust"
                }
            }
        };
        reply(out, line, noreply);
        Next::ReadLine
    }

    /// `refresh_certs` (`-Z`).
    pub(super) fn refresh_certs(&self, noreply: bool, out: &mut Vec<u8>) -> Next {
        // memcached writes a failure past noreply.
        match self.server.tls.as_ref().map(|tls| tls.refresh()) {
            None => reply(out, "Error TLS not enabled", false),
            Some(Ok(())) => reply(out, "OK", noreply),
            Some(Err(message)) => reply(out, &message, false),
        }
        Next::ReadLine
    }
}
