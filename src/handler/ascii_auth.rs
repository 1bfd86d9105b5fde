//! memcached's ASCII authentication (`-Y FILE`): until a connection has sent
//! `set <any> <any> <any> <n>` with `user password` as its data, every line is answered
//! `CLIENT_ERROR unauthenticated`. As memcached 1.6.18 does, the replies of this phase share one
//! reply slot: a reply not yet sent is replaced by the next one, so a pipelined burst shows only
//! its last answer.

use super::{ConnState, Handler, Next};
use crate::numparse::safe_strtoul;
use crate::protocol::text::Tokens;

const UNAUTHENTICATED: &str = "CLIENT_ERROR unauthenticated";

/// The longest authentication token read: far beyond any `user password` line.
const MAX_TOKEN: usize = 64 * 1024;

impl Handler<'_> {
    /// A request line before authentication: only `set … <n>` (announcing the token's length)
    /// goes on, to read the token.
    pub(super) fn auth_line(
        &self,
        line: &[u8],
        out: &mut Vec<u8>,
        pending: &mut ConnState,
    ) -> Next {
        let t = Tokens::new(line);
        let size = (t.count() >= 6 && t.get(0) == b"set")
            .then(|| safe_strtoul(t.get(4)))
            .flatten();
        match size {
            // A token is `user password`, as long as the file's longest line at most. A client
            // that announces more is failed and its block discarded as it arrives, never
            // buffered: an unauthenticated client must not make the server hold memory.
            Some(size) if size as usize > MAX_TOKEN => {
                self.stats.auth_cmds.incr();
                self.stats.auth_errors.incr();
                auth_reply(out, pending, "CLIENT_ERROR authentication failure");
                Next::Swallow(size as usize + 2)
            }
            Some(size) => {
                pending.ascii_auth = true;
                pending.mode = None;
                pending.length = size as usize;
                Next::ReadData
            }
            None => {
                auth_reply(out, pending, UNAUTHENTICATED);
                Next::ReadLine
            }
        }
    }

    /// The token's data block (`length + 2` bytes): `user password`, checked against the file.
    pub(super) fn auth_token(&self, pending: &mut ConnState, block: &[u8], out: &mut Vec<u8>) {
        pending.ascii_auth = false;
        let Some(data) = block.strip_suffix(b"\r\n") else {
            return auth_reply(out, pending, "CLIENT_ERROR bad command line termination");
        };
        // memcached tokenizes the token as a C string.
        let data = match data.iter().position(|&b| b == 0) {
            Some(nul) => &data[..nul],
            None => data,
        };
        let t = Tokens::new(data);
        if t.count() < 3 {
            return auth_reply(out, pending, "CLIENT_ERROR bad authentication token format");
        }
        let stats = self.stats;
        stats.auth_cmds.incr();
        let users = self.server.ascii_auth.as_ref();
        if users.is_some_and(|u| u.check(t.get(0), t.get(1))) {
            pending.authenticated = true;
            auth_reply(out, pending, "STORED");
        } else {
            stats.auth_errors.incr();
            auth_reply(out, pending, "CLIENT_ERROR authentication failure");
        }
    }
}

/// Writes an authentication-phase reply over the previous one if that is still unsent.
fn auth_reply(out: &mut Vec<u8>, pending: &mut ConnState, line: &str) {
    if let Some(at) = pending.auth_reply_at {
        if at >= pending.unsent_from() && at <= out.len() {
            pending.truncate_output(out, at);
        }
    }
    pending.auth_reply_at = Some(out.len());
    out.extend_from_slice(line.as_bytes());
    out.extend_from_slice(b"\r\n");
}
