//! A connection without a socket: the read → parse → execute → write cycle of
//! `src/net/conn.rs`, driven by byte buffers instead of a socket.
//!
//! `net::Conn` is private to the crate (and needs a real socket), so this copies its `process`
//! loop over the public handler API (`Handler::handle_line`, `complete_store`,
//! `handle_binary`, `complete_binary`, `Session`). Keep it in step with `conn.rs`: every rule
//! here names the one it mirrors. What it leaves out is socket I/O: every write succeeds at
//! once, so output is "flushed" whenever `conn.rs` would flush.

use memcached_rs::config::Protocol;
use memcached_rs::handler::text::OUTPUT_HIGH_WATER;
use memcached_rs::handler::{Handler, Next, Session};
use memcached_rs::protocol::binary::{self, HEADER_LEN, REQUEST_MAGIC};

/// conn.rs `MAX_PLAIN_LINE`.
const MAX_PLAIN_LINE: usize = 2048;
/// conn.rs `MAX_GET_LINE`.
const MAX_GET_LINE: usize = 8 * 1024 * 1024;

/// Which protocol the connection speaks (conn.rs `Wire`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// Not decided: the first byte decides under `-B auto`.
    Undecided,
    /// Text (classic and meta).
    Text,
    /// Binary.
    Binary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    Line,
    Data,
    Swallow(usize),
}

enum Processed {
    NeedInput,
    OutputFull,
    OutOfBudget,
    CloseAfterWrite,
    Close,
}

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
    rbuf: Vec<u8>,
    rpos: usize,
    wbuf: Vec<u8>,
    committed: usize,
    wire: Wire,
    input: Input,
    resume: usize,
    pending: Session,
    closed: bool,
    budget: usize,
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
    /// A fresh connection (its `Session` as `Conn::new` makes it, with fd 7).
    pub fn new() -> Connection {
        let mut pending = Session::default();
        pending.fd = 7;
        Connection {
            rbuf: Vec::new(),
            rpos: 0,
            wbuf: Vec::new(),
            committed: 0,
            wire: Wire::Undecided,
            input: Input::Line,
            resume: 0,
            pending,
            closed: false,
            budget: 0,
            completions: Vec::new(),
        }
    }

    /// Whether the server has closed the connection.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The protocol the connection speaks so far.
    pub fn wire(&self) -> Wire {
        self.wire
    }

    /// At a request boundary with nothing buffered: the next bytes start a new request.
    pub fn is_idle(&self) -> bool {
        !self.closed
            && self.input == Input::Line
            && self.rpos == self.rbuf.len()
            && self.resume == 0
    }

    /// One read of `bytes`: executes every complete request, appending the replies the client
    /// would receive to `sink`.
    pub fn feed(&mut self, handler: &Handler<'_>, bytes: &[u8], sink: &mut Vec<u8>) -> Fate {
        if self.closed {
            return Fate::Closed;
        }
        // conn.rs `fill`: unread bytes move to the front, then the read appends.
        self.rbuf.drain(..self.rpos);
        self.rpos = 0;
        self.rbuf.extend_from_slice(bytes);
        self.budget = handler.settings().reqs_per_event.max(1);
        loop {
            let processed = self.process(handler, sink);
            // conn.rs `drive_inner`: flush after every `process`.
            self.flush(sink);
            match processed {
                Processed::Close | Processed::CloseAfterWrite => {
                    self.closed = true;
                    return Fate::Closed;
                }
                Processed::OutOfBudget => {
                    // conn.rs yields and is driven again with a fresh budget.
                    self.budget = handler.settings().reqs_per_event.max(1);
                }
                Processed::OutputFull => {}
                Processed::NeedInput => return Fate::Open,
            }
        }
    }

    /// conn.rs `flush` when every write succeeds.
    fn flush(&mut self, sink: &mut Vec<u8>) {
        sink.extend_from_slice(&self.wbuf);
        self.wbuf.clear();
        self.committed = 0;
        self.pending.replies_written();
    }

    fn completed(&mut self, sink: &[u8]) {
        self.completions.push(sink.len() + self.wbuf.len());
    }

    /// conn.rs `process` (`wpos` is always 0 here: output is flushed whole).
    fn process(&mut self, handler: &Handler<'_>, sink: &[u8]) -> Processed {
        loop {
            let avail = &self.rbuf[self.rpos..];
            if self.wire == Wire::Undecided {
                let Some(&first) = avail.first() else {
                    return Processed::NeedInput;
                };
                self.wire = match handler.settings().protocol {
                    Protocol::Ascii => Wire::Text,
                    Protocol::Binary => Wire::Binary,
                    Protocol::Auto if first == REQUEST_MAGIC => Wire::Binary,
                    Protocol::Auto => Wire::Text,
                };
            }
            match self.input {
                Input::Line if self.wire == Wire::Binary => {
                    if let Some(done) = self.process_frame(handler, sink) {
                        return done;
                    }
                }
                Input::Line => {
                    let Some(nl) = avail.iter().position(|&b| b == b'\n') else {
                        if avail.len() > MAX_PLAIN_LINE && !may_be_long_get(avail)
                            || avail.len() > MAX_GET_LINE
                        {
                            self.wbuf.truncate(self.committed);
                            return Processed::Close;
                        }
                        return Processed::NeedInput;
                    };
                    if self.wbuf.len() >= OUTPUT_HIGH_WATER {
                        return Processed::OutputFull;
                    }
                    if self.resume == 0 {
                        if self.budget == 0 {
                            return Processed::OutOfBudget;
                        }
                        self.budget -= 1;
                    }
                    let end = if nl > 1 && avail[nl - 1] == b'\r' {
                        nl - 1
                    } else {
                        nl
                    };
                    self.pending.set_output(self.wbuf.len(), self.committed);
                    let next = handler.handle_line(
                        &avail[..end],
                        self.resume,
                        &mut self.wbuf,
                        &mut self.pending,
                    );
                    if let Next::Paused(offset) = next {
                        assert!(
                            offset > self.resume,
                            "a paused request must make progress: resume {} then {offset}",
                            self.resume
                        );
                        self.resume = offset;
                        self.committed = self.wbuf.len();
                        return Processed::OutputFull;
                    }
                    self.resume = 0;
                    self.rpos += nl + 1;
                    if next != Next::ReadData {
                        self.completed(sink);
                    }
                    if let Some(done) = self.after_request(next) {
                        return done;
                    }
                }
                Input::Data => {
                    let need = self.data_len();
                    if avail.len() < need {
                        return Processed::NeedInput;
                    }
                    self.input = Input::Line;
                    if self.wire == Wire::Binary {
                        let next = handler.complete_binary(
                            &mut self.pending,
                            &avail[..need],
                            &mut self.wbuf,
                        );
                        self.rpos += need;
                        if next != Next::ReadData {
                            self.completed(sink);
                        }
                        if let Some(done) = self.after_request(next) {
                            return done;
                        }
                    } else {
                        handler.complete_store(&mut self.pending, &avail[..need], &mut self.wbuf);
                        self.rpos += need;
                        self.completed(sink);
                    }
                }
                Input::Swallow(left) => {
                    let take = left.min(avail.len());
                    self.rpos += take;
                    if take < left {
                        self.input = Input::Swallow(left - take);
                        return Processed::NeedInput;
                    }
                    self.input = Input::Line;
                }
            }
        }
    }

    /// conn.rs `process_frame`.
    fn process_frame(&mut self, handler: &Handler<'_>, sink: &[u8]) -> Option<Processed> {
        let avail = &self.rbuf[self.rpos..];
        let Some(head) = binary::header_bytes(avail) else {
            return Some(Processed::NeedInput);
        };
        if head[0] != REQUEST_MAGIC {
            self.wbuf.truncate(self.committed);
            return Some(Processed::Close);
        }
        let need = HEADER_LEN + binary::Header::parse(head).prefix_len();
        if avail.len() < need {
            return Some(Processed::NeedInput);
        }
        if self.wbuf.len() >= OUTPUT_HIGH_WATER {
            return Some(Processed::OutputFull);
        }
        if self.budget == 0 {
            return Some(Processed::OutOfBudget);
        }
        self.budget -= 1;
        let next = handler.handle_binary(&avail[..need], &mut self.wbuf, &mut self.pending);
        self.rpos += need;
        if next != Next::ReadData {
            self.completed(sink);
        }
        self.after_request(next)
    }

    /// conn.rs `after_request`. Variants this copy does not know (a later `Next`) end the
    /// connection's request processing, as a close.
    #[allow(unreachable_patterns)]
    fn after_request(&mut self, next: Next) -> Option<Processed> {
        match next {
            Next::ReadLine | Next::Paused(_) => {}
            Next::Transmit => self.committed = self.wbuf.len(),
            Next::ReadData => self.input = Input::Data,
            Next::Swallow(0) => {}
            Next::Swallow(n) => self.input = Input::Swallow(n),
            Next::CloseAfterWrite => return Some(Processed::CloseAfterWrite),
            Next::Close | Next::Shutdown => {
                self.wbuf.truncate(self.committed);
                return Some(Processed::Close);
            }
            _ => return Some(Processed::CloseAfterWrite),
        }
        None
    }

    /// conn.rs `data_len`.
    fn data_len(&self) -> usize {
        match self.wire {
            Wire::Binary => self.pending.length,
            _ => self.pending.length + 2,
        }
    }
}

/// conn.rs `may_be_long_get`.
fn may_be_long_get(line: &[u8]) -> bool {
    let spaces = line.iter().take_while(|&&b| b == b' ').count();
    let rest = &line[spaces..];
    spaces <= 100 && (rest.starts_with(b"get ") || rest.starts_with(b"gets "))
}
