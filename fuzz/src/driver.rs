//! A connection without a socket: the crate's own [`Session`] (the framing `net::Conn` runs),
//! fed from byte buffers, with every write succeeding at once — so output is "flushed" whenever
//! `net::Conn` would flush, and what the fuzzer drives is the code that runs.

use memcached_rs::handler::Handler;
use memcached_rs::session::{Session, Step};

pub use memcached_rs::session::Wire;

/// What a [`Connection::feed`] left the connection in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Still open, waiting for more input.
    Open,
    /// The server closed it (quit, a protocol error, an over-long line…).
    Closed,
}

/// One client connection's server-side state.
#[derive(Debug)]
pub struct Connection {
    session: Session,
    /// Input not consumed yet.
    rbuf: Vec<u8>,
    closed: bool,
    /// Output offsets (in the stream [`Connection::feed`] appends to) at which a request
    /// completed, in order.
    pub completions: Vec<usize>,
}

impl Default for Connection {
    fn default() -> Self {
        Connection::new()
    }
}

impl Connection {
    /// A fresh connection (named fd 7 in logs and `stats conns`).
    pub fn new() -> Connection {
        let mut session = Session::new(7);
        // As a TCP connection: large values are pinned and written from the arena.
        session.write_from_arena();
        Connection {
            session,
            rbuf: Vec::new(),
            closed: false,
            completions: Vec::new(),
        }
    }

    /// Whether the server has closed the connection.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The protocol the connection speaks so far.
    pub fn wire(&self) -> Wire {
        self.session.wire()
    }

    /// At a request boundary with nothing buffered: the next bytes start a new request.
    pub fn is_idle(&self) -> bool {
        !self.closed && self.rbuf.is_empty() && self.session.at_request_boundary()
    }

    /// One read of `bytes`: executes every complete request, appending the replies the client
    /// would receive to `sink`.
    pub fn feed(&mut self, handler: &Handler<'_>, bytes: &[u8], sink: &mut Vec<u8>) -> Fate {
        if self.closed {
            return Fate::Closed;
        }
        self.rbuf.extend_from_slice(bytes);
        let fresh_budget = handler.settings().reqs_per_event.max(1);
        let mut budget = fresh_budget;
        let mut out = Vec::new();
        loop {
            let base = sink.len();
            let mut done_at = Vec::new();
            let fed = self
                .session
                .feed(handler, &self.rbuf, &mut out, 0, &mut budget, |at| {
                    done_at.push(at)
                });
            self.rbuf.drain(..fed.consumed);
            // net::Conn writes after every feed; here every write succeeds whole, the pinned
            // values with the rest.
            match self.session.pinned_values() {
                Some(pinned) => {
                    let done = done_at.iter().map(|&at| base + pinned.offset_with_values(at));
                    self.completions.extend(done);
                    sink.extend_from_slice(&pinned.unsent(&out, 0));
                    pinned.clear();
                    out.clear();
                }
                None => {
                    self.completions.extend(done_at.iter().map(|&at| base + at));
                    sink.append(&mut out);
                }
            }
            self.session.output_written();
            match fed.step {
                Step::Close(_) | Step::CloseAfterWrite | Step::Watch(_) => {
                    self.closed = true;
                    return Fate::Closed;
                }
                // net::Conn yields and is driven again with a fresh budget.
                Step::OutOfBudget => budget = fresh_budget,
                Step::OutputFull => {}
                Step::NeedInput => return Fate::Open,
            }
        }
    }
}
