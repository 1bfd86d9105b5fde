//! `incr` and `decr`.

use super::{reply, ConnState, Handler, Next};
use crate::cache::ArithOutcome;
use crate::protocol::text;

impl Handler<'_> {
    /// `incr`/`decr`: the new value, or why there is none.
    pub(super) fn arithmetic(
        &self,
        key: &[u8],
        increment: bool,
        delta: u64,
        noreply: bool,
        out: &mut Vec<u8>,
        pending: &ConnState,
    ) -> Next {
        let cache = &self.server.cache;
        let stats = self.stats;
        let in_place = pending.in_place_ok(key);
        self.hot(crate::hotkeys::Metric::Writes, key, 0);
        match cache.arithmetic(stats, key, increment, delta, in_place) {
            ArithOutcome::Value(v) => {
                if increment {
                    stats.incr_hits.incr();
                } else {
                    stats.decr_hits.incr();
                }
                if !noreply {
                    text::write_u64(out, v);
                    out.extend_from_slice(b"\r\n");
                }
            }
            ArithOutcome::NotFound => {
                if increment {
                    stats.incr_misses.incr();
                } else {
                    stats.decr_misses.incr();
                }
                reply(out, "NOT_FOUND", noreply);
            }
            ArithOutcome::NoMemory => reply(out, "SERVER_ERROR out of memory", noreply),
            ArithOutcome::NonNumeric => reply(
                out,
                "CLIENT_ERROR cannot increment or decrement non-numeric value",
                noreply,
            ),
        }
        Next::ReadLine
    }
}
