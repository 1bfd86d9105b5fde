//! `stats hotkeys [reads|writes|bytes] [1s|10s|60s]` and the `hotkeys on|off|sample N` switch.

use std::io::Write;

use super::{reply, Handler};
use crate::hotkeys::{parse_sample, Metric, Window};
use crate::protocol::base64;
use crate::protocol::text::Tokens;

impl Handler<'_> {
    /// `stats hotkeys`: one `STAT <key> <rate> <error>` line per key, hottest first, the rate
    /// in requests (or bytes) per second and the error its bound; a key that is not printable
    /// is shown in base64 with a trailing ` b`, as the meta protocol shows keys. Reads over the
    /// last ten seconds unless the arguments say otherwise; hidden by `-X`, like `stats
    /// cachedump`, as it shows keys.
    pub(super) fn stats_hotkeys(&self, t: &Tokens<'_>, out: &mut Vec<u8>) {
        let server = self.server;
        if !server.settings.dump_enabled {
            return reply(out, "CLIENT_ERROR stats hotkeys not allowed", false);
        }
        let (mut metric, mut window) = (Metric::Reads, Window::TenSeconds);
        // The tokens after `stats hotkeys`, in any order, each at most once.
        let (mut metric_given, mut window_given) = (false, false);
        for i in 2..t.count().saturating_sub(1) {
            let arg = t.get(i);
            match (Metric::parse(arg), Window::parse(arg)) {
                (Some(m), _) if !metric_given => (metric, metric_given) = (m, true),
                (_, Some(w)) if !window_given => (window, window_given) = (w, true),
                _ => return reply(out, "CLIENT_ERROR bad command line format", false),
            }
        }
        let now = server.cache.clock().now();
        let sample = server.hotkeys.sample();
        for hot in server.stats.hot_keys(metric, window, now, sample).keys {
            out.extend_from_slice(b"STAT ");
            let printable = hot.key.iter().all(|b| (0x21..0x7f).contains(b));
            if printable {
                out.extend_from_slice(&hot.key);
            } else {
                base64::encode_into(&hot.key, out);
            }
            // Writing to a Vec cannot fail.
            let _ = write!(out, " {:.1} {:.1}", hot.rate, hot.error);
            if !printable {
                out.extend_from_slice(b" b");
            }
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"END\r\n");
    }

    /// `watch hotkeys`: once a second (the first request of a second does it, so an idle
    /// server does nothing), a line for each key that entered the hottest of the last ten
    /// seconds' reads or writes.
    pub(super) fn watch_hot_keys(&self) {
        let server = self.server;
        let now = server.cache.clock().now();
        if !server.hotkeys.entrants.due(now) {
            return;
        }
        let sample = server.hotkeys.sample();
        for (metric, name) in [(Metric::Reads, "reads"), (Metric::Writes, "writes")] {
            let report = server
                .stats
                .hot_keys(metric, Window::TenSeconds, now, sample);
            for (rank, hot) in server.hotkeys.entrants.entered(metric, &report) {
                crate::watch::hot_key(crate::watch::HotKeyEvent {
                    key: &hot.key,
                    metric: name,
                    window: "10s",
                    rank,
                    rate: hot.rate,
                    error: hot.error,
                });
            }
        }
    }

    /// `hotkeys on|off|sample N [noreply]`: whether and how often requests are sampled.
    /// Turning it off forgets what was sampled.
    pub(super) fn hotkeys_switch(&self, t: &Tokens<'_>, out: &mut Vec<u8>) {
        let noreply = t.noreply();
        let args = t.count().saturating_sub(1) - usize::from(noreply);
        let switch = &self.server.hotkeys;
        let line = match (args, t.get(1)) {
            (2, b"on") => {
                switch.on();
                "OK"
            }
            (2, b"off") => {
                switch.off();
                self.server.stats.clear_hot_keys();
                "OK"
            }
            (3, b"sample") => match parse_sample(t.get(2)).filter(|&n| n != 0) {
                Some(n) => {
                    switch.set_sample(n);
                    "OK"
                }
                _ => "CLIENT_ERROR bad command line format",
            },
            _ => "CLIENT_ERROR usage: hotkeys on|off|sample N",
        };
        reply(out, line, noreply);
    }
}
