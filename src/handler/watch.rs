//! `watch`: turning a connection into a receiver of the live log stream (see [`crate::watch`]).

use super::{reply, ConnState, Handler, Next};
use crate::protocol::text::Tokens;
use crate::watch;

impl Handler<'_> {
    /// memcached 1.6.38's checks, in its order: `-W`, replies still queued, the kinds, the
    /// watcher limit. On success nothing is written: the logger sends `OK`.
    pub(super) fn watch(&self, t: &Tokens<'_>, out: &mut Vec<u8>, pending: &ConnState) -> Next {
        let n = t.count();
        // memcached's `set_noreply_maybe`; the `noreply` token is then still read as a kind.
        let noreply = t.get(n - 2) == b"noreply";
        if !self.server.settings.watch_enabled {
            reply(out, "CLIENT_ERROR watch commands not allowed", noreply);
            return Next::ReadLine;
        }
        if pending.stacked() {
            reply(
                out,
                "ERROR cannot pipeline other commands before watch",
                noreply,
            );
            return Next::ReadLine;
        }
        let Some(kinds) = watch::parse_kinds((1..n - 1).map(|i| t.get(i))) else {
            reply(out, "ERROR", noreply);
            return Next::ReadLine;
        };
        if !watch::try_reserve() {
            reply(out, "WATCHER_TOO_MANY log watcher limit reached", noreply);
            return Next::ReadLine;
        }
        Next::Watch(kinds)
    }
}
