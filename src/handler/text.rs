//! The text protocol's dispatch: each request line goes to its command family.

use super::{reply, ConnState, Handler, Next};
use crate::config::PROTOCOL_VERSION;
use crate::protocol::text::{self, Request, Tokens};

impl Handler<'_> {
    /// Executes one request line, appending its reply to `out`. A storage command fills
    /// `pending` and returns [`Next::ReadData`]. `resume` is 0 for a new line, or the offset a
    /// [`Next::Paused`] returned for the same line.
    pub fn handle_line(
        &self,
        line: &[u8],
        resume: usize,
        out: &mut Vec<u8>,
        pending: &mut ConnState,
    ) -> Next {
        if self.server.ascii_auth.is_some() && !pending.authenticated {
            return self.auth_line(line, out, pending);
        }
        match text::parse(line) {
            Request::Get {
                keys,
                with_cas,
                touch,
            } => self.get(keys, with_cas, touch, resume, out, pending),
            Request::Store(line) => self.store_line(&line, out, pending),
            Request::Delete { key, noreply } => self.delete(key, noreply, out),
            Request::Arithmetic {
                key,
                increment,
                delta,
                noreply,
            } => self.arithmetic(key, increment, delta, noreply, out, pending),
            Request::Touch {
                key,
                exptime,
                noreply,
            } => self.touch(key, exptime, noreply, out),
            Request::FlushAll { delay, noreply } => self.flush_all(delay, noreply, out),
            Request::Version => {
                out.extend_from_slice(b"VERSION ");
                out.extend_from_slice(PROTOCOL_VERSION.as_bytes());
                out.extend_from_slice(b"\r\n");
                Next::ReadLine
            }
            Request::Quit => Next::CloseAfterWrite,
            Request::Verbosity { level, noreply } => self.verbosity(level, noreply, out),
            Request::Shutdown(mode) => self.shutdown(mode, out),
            Request::CacheMemlimit { megabytes, noreply } => {
                self.cache_memlimit(megabytes, noreply, out)
            }
            Request::Stats(tokens) => {
                self.stats_command(&tokens, pending.fd, out);
                Next::ReadLine
            }
            Request::Meta(kind, tokens) => self.meta(kind, tokens, out, pending),
            Request::LruCrawler(tokens) => self.lru_crawler(&tokens, resume, out, pending),
            Request::Slabs(tokens) => {
                self.slabs(&tokens, out);
                Next::ReadLine
            }
            Request::Lru(tokens) => {
                self.lru(&tokens, out);
                Next::ReadLine
            }
            Request::Watch(tokens) => self.watch(&tokens, out, pending),
            Request::Hotkeys(tokens) => {
                self.hotkeys_switch(&tokens, out);
                Next::ReadLine
            }
            Request::RefreshCerts { noreply } => self.refresh_certs(noreply, out),
            Request::Error {
                reply: line,
                noreply,
            } => {
                reply(out, line, noreply);
                Next::ReadLine
            }
            Request::Close => Next::Close,
        }
    }

    fn stats_command(&self, tokens: &Tokens<'_>, fd: i32, out: &mut Vec<u8>) {
        if tokens.count() > 2 && tokens.get(1) == b"cachedump" {
            return self.cachedump(tokens, out);
        }
        if tokens.count() > 2 && tokens.get(1) == b"hotkeys" {
            return self.stats_hotkeys(tokens, out);
        }
        if tokens.count() > 2 && tokens.get(1) == b"conns" {
            return super::stats::conns(self.server, fd, out);
        }
        super::stats::stats_command(self.server, tokens, out);
    }
}
