//! `get`, `gets`, `gat` and `gats`.

use super::{reply, ConnState, Handler, Next, OUTPUT_HIGH_WATER};
use crate::protocol::text;
use crate::protocol::KEY_MAX_LENGTH;

impl Handler<'_> {
    /// `get`/`gets`/`gat`/`gats`: values for the keys that are present, then `END`.
    pub(super) fn get(
        &self,
        keys: text::Keys<'_>,
        with_cas: bool,
        touch: Option<i32>,
        resume: usize,
        out: &mut Vec<u8>,
        pending: &mut ConnState,
    ) -> Next {
        let cache = &self.server.cache;
        let exptime = touch.map(|t| cache.clock().expiry(i64::from(t)));
        if resume == 0 {
            // memcached looks up the keys before a too-long one (counting them) and then sends
            // only the error, dropping the values it had queued. (It also drops the unsent
            // replies of earlier pipelined commands; deliberately not here — see
            // tests/connections.rs `replies_before_a_get_with_a_too_long_key_are_kept`.)
            let too_long = keys.iter().position(|k| k.len() > KEY_MAX_LENGTH);
            if let Some(bad) = too_long {
                for key in keys.iter().take(bad) {
                    let hit = cache.get(self.stats, key, exptime, |item| item.data.len());
                    self.count_get(key, hit, touch.is_some());
                }
                reply(out, "CLIENT_ERROR bad command line format", false);
                return Next::ReadLine;
            }
        }
        // `-vv` logs a text get's reply by walking its values, whose bytes it needs: copied.
        let pin_from = if log::log_enabled!(log::Level::Debug) {
            usize::MAX
        } else {
            pending.pin_from()
        };
        let mut keys = keys.iter_from(resume).peekable();
        let mut first = true;
        while let Some((offset, key)) = keys.next() {
            // The session let this call in below the mark (counting only unwritten output);
            // each call answers at least one key, so a paused get always moves on.
            if !first && pending.queued(out, 0) >= OUTPUT_HIGH_WATER {
                return Next::Paused(offset);
            }
            first = false;
            let found = cache.get_pinned(self.stats, key, exptime, pin_from, |item, pinned| {
                let cas = with_cas.then_some(item.cas);
                text::write_value_header(out, item.key, item.flags, item.data.len(), cas);
                if !pinned {
                    item.data.write_to(out);
                }
                item.data.len()
            });
            let hit = found.map(|(len, pin)| {
                if let Some(pin) = pin {
                    pending.push_pinned(out, pin);
                }
                out.extend_from_slice(b"\r\n");
                len
            });
            self.count_get(key, hit, touch.is_some());
            if hit.is_some() {
                // The reply refers to the item until it is written (memcached 1.6.38 holds a
                // reference), so an incr/decr in the same batch copies it instead of
                // rewriting it in place.
                pending.referenced.push(crate::cache::hash::hash_key(key));
            }
            if let Some(ends) = &mut pending.reply_ends {
                if keys.peek().is_some() {
                    ends.push(out.len());
                }
            }
        }
        out.extend_from_slice(b"END\r\n");
        Next::Transmit
    }

    /// Counts a retrieval of `key`: `hit` with the value's length, or a miss.
    pub(super) fn count_get(&self, key: &[u8], hit: Option<usize>, touch: bool) {
        self.hot(crate::hotkeys::Metric::Reads, key, hit.unwrap_or(0));
        let hit = hit.is_some();
        let stats = self.stats;
        if self.server.prefix_stats.enabled() {
            self.server.prefix_stats.record_get(key, hit);
        }
        let (cmds, hits, misses) = if touch {
            (&stats.touch_cmds, &stats.touch_hits, &stats.touch_misses)
        } else {
            (&stats.get_cmds, &stats.get_hits, &stats.get_misses)
        };
        cmds.incr();
        if hit {
            hits.incr();
        } else {
            misses.incr();
        }
    }
}
