//! A connection's protocol state machine, without a socket.
//!
//! It takes the bytes a client sent, frames them — text request lines, data blocks, refused
//! values to swallow, binary frames, a long multi-get paused between writes — hands each whole
//! request to the [`Handler`], and appends the replies to an output buffer. The transport only
//! moves bytes: TCP, TLS and unix connections ([`crate::net`]) and the stateful fuzzer drive this
//! same code, so what is fuzzed is what runs.
//!
//! The rules are memcached's: a request line longer than 2 KB without a newline closes the
//! connection unless it is a multi-get; the first byte picks the binary protocol under `-B auto`;
//! while a refused value is being swallowed its error waits, so a client that gives up halfway
//! gets the close alone; a close drops replies memcached had not yet sent.

mod verbose;

use crate::config::Protocol;
use crate::handler::pinned::PinnedValues;
use crate::handler::upload::Upload;
use crate::handler::OUTPUT_HIGH_WATER;
use crate::handler::{ConnState, Handler, Next};
use crate::protocol::binary::{self, HEADER_LEN, REQUEST_MAGIC};
use crate::protocol::scan::find_byte;
use crate::watch::CloseReason;

/// memcached closes a connection whose buffered line reaches this length without a newline,
/// unless it is a multi-get.
pub const MAX_PLAIN_LINE: usize = 2048;
/// A multi-get line may be long, but not without bound.
const MAX_GET_LINE: usize = 8 * 1024 * 1024;

/// Which protocol the connection speaks: with `-B auto`, its first byte decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// Nothing read yet.
    Undecided,
    /// Text, classic and meta.
    Text,
    /// Binary.
    Binary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    /// Waiting for a request line (text) or request header (binary).
    Line,
    /// Waiting for a storage command's data block.
    Data,
    /// Discarding a refused data block.
    Swallow(usize),
}

/// Why [`Session::feed`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Every whole request was handled: more input is needed.
    NeedInput,
    /// Enough output is queued: write it, then feed again.
    OutputFull,
    /// The request budget is spent with requests still to handle.
    OutOfBudget,
    /// Write what is queued, then close (`quit`).
    CloseAfterWrite,
    /// Close; the replies memcached would not have sent yet are already dropped.
    Close(CloseReason),
    /// Write what is queued, then hand the connection to the `watch` logger for these kinds.
    Watch(u16),
}

/// What a [`Session::feed`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fed {
    /// Input bytes used up (the caller drops them from its buffer).
    pub consumed: usize,
    /// Requests handled (a store's line and its data block count once each).
    pub requests: usize,
    /// Why it stopped.
    pub step: Step,
}

impl Fed {
    /// What a feed of no input does: nothing; it needs input.
    pub const NOTHING: Fed = Fed {
        consumed: 0,
        requests: 0,
        step: Step::NeedInput,
    };
}

/// One connection's framing state and the handler's state for it.
#[derive(Debug)]
pub struct Session {
    wire: Wire,
    input: Input,
    /// Where a paused multi-get resumes in the line at the start of the input (0: a new line).
    resume: usize,
    /// Output up to here counts as sent (see [`Next::Transmit`]); a close drops the rest, as
    /// memcached drops replies it had queued but not yet written.
    committed: usize,
    state: ConnState,
}

impl Session {
    /// A new connection's session; `fd` names it in logs and `stats conns`.
    pub fn new(fd: i32) -> Session {
        let mut state = ConnState::default();
        state.fd = fd;
        Session {
            wire: Wire::Undecided,
            input: Input::Line,
            resume: 0,
            committed: 0,
            state,
        }
    }

    /// A session for one datagram's requests: replies are cut per value of a multi-get too
    /// (see [`Session::take_reply_ends`]).
    pub fn datagram(fd: i32) -> Session {
        let mut session = Session::new(fd);
        session.state.reply_ends = Some(Vec::new());
        session
    }

    /// For a [`Session::datagram`]: the output offsets, in order, where a multi-get's value
    /// ends and the next value's reply begins.
    pub fn take_reply_ends(&mut self) -> Vec<usize> {
        self.state
            .reply_ends
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Gives up a paused request whose reply the transport cannot send: the rest of its line
    /// is skipped. Returns the input bytes that took (from the start of `input`).
    pub fn abandon_paused(&mut self, input: &[u8]) -> usize {
        self.resume = 0;
        find_byte(b'\n', input).map_or(input.len(), |nl| nl + 1)
    }

    /// Large values are to be written from the arena, not copied into the output: replies
    /// queue them in [`Session::pinned_values`] instead. (A transport that cannot write them so —
    /// TLS, UDP — does not call this.)
    pub fn write_from_arena(&mut self) {
        self.state.pinned = Some(PinnedValues::default());
    }

    /// The values the output refers to, in order, for the transport to write and drop.
    pub fn pinned_values(&mut self) -> Option<&mut PinnedValues> {
        self.state.pinned.as_mut()
    }

    /// The value being received into its chunks, while one is: the transport reads the
    /// socket into it ([`Upload::receive`]), then feeds the session again, with or without
    /// further input.
    pub fn upload(&mut self) -> Option<&mut Upload> {
        self.state.upload.as_mut()
    }

    /// The protocol the connection speaks so far.
    pub fn wire(&self) -> Wire {
        self.wire
    }

    /// Whether the next input byte starts a new request.
    pub fn at_request_boundary(&self) -> bool {
        self.input == Input::Line && self.resume == 0
    }

    /// Whether a refused data block is being discarded: its error reply waits until it is.
    pub fn swallowing(&self) -> bool {
        matches!(self.input, Input::Swallow(_))
    }

    /// Everything queued in the output was written: the caller has cleared it.
    pub fn output_written(&mut self) {
        self.committed = 0;
        self.state.replies_written();
    }

    /// Handles every whole request at the start of `input`, at most `budget` of them (data
    /// blocks and the resumption of a paused multi-get are free), appending replies to `out`,
    /// whose first `written` bytes were already sent. `on_done` is told the output length at
    /// the end of each completed request (a store completes with its data block).
    pub fn feed(
        &mut self,
        handler: &Handler<'_>,
        input: &[u8],
        out: &mut Vec<u8>,
        written: usize,
        budget: &mut usize,
        mut on_done: impl FnMut(usize),
    ) -> Fed {
        let mut fed = Fed::NOTHING;
        fed.step = loop {
            let avail = &input[fed.consumed..];
            if self.wire == Wire::Undecided {
                let Some(&first) = avail.first() else {
                    break Step::NeedInput;
                };
                self.decide_wire(handler, first);
            }
            let next = match self.input {
                Input::Line if self.wire == Wire::Binary => {
                    let Some(need) = frame_len(avail) else {
                        break Step::NeedInput;
                    };
                    if avail[0] != REQUEST_MAGIC {
                        break self.close(out, written, CloseReason::Error);
                    }
                    if avail.len() < need {
                        break Step::NeedInput;
                    }
                    if self.state.queued(out, written) >= OUTPUT_HIGH_WATER {
                        break Step::OutputFull;
                    }
                    if *budget == 0 {
                        break Step::OutOfBudget;
                    }
                    *budget -= 1;
                    fed.consumed += need;
                    handler.handle_binary(&avail[..need], out, &mut self.state)
                }
                Input::Line => {
                    let Some(nl) = find_byte(b'\n', avail) else {
                        if avail.len() > MAX_PLAIN_LINE && !may_be_long_get(avail)
                            || avail.len() > MAX_GET_LINE
                        {
                            break self.close(out, written, CloseReason::Error);
                        }
                        break Step::NeedInput;
                    };
                    if self.state.queued(out, written) >= OUTPUT_HIGH_WATER {
                        break Step::OutputFull;
                    }
                    if self.resume == 0 {
                        if *budget == 0 {
                            break Step::OutOfBudget;
                        }
                        *budget -= 1;
                    }
                    // memcached strips the '\r' only from lines longer than one byte.
                    let end = if nl > 1 && avail[nl - 1] == b'\r' {
                        nl - 1
                    } else {
                        nl
                    };
                    let line = &avail[..end];
                    self.state
                        .set_output(out.len(), self.committed.max(written));
                    let before = out.len();
                    let logging = log::log_enabled!(log::Level::Debug);
                    if logging && self.resume == 0 {
                        verbose::command(self.state.fd, line);
                    }
                    let next = handler.handle_line(line, self.resume, out, &mut self.state);
                    if logging {
                        verbose::reply(self.state.fd, line, &out[before..]);
                    }
                    if let Next::Paused(offset) = next {
                        debug_assert!(offset > self.resume, "a paused request makes progress");
                        self.resume = offset;
                        self.committed = out.len();
                        break Step::OutputFull;
                    }
                    self.resume = 0;
                    fed.consumed += nl + 1;
                    next
                }
                Input::Data => {
                    // A value received into its chunks leaves nothing in the input.
                    let block = match &mut self.state.upload {
                        Some(upload) => {
                            fed.consumed += upload.absorb(avail);
                            if !upload.is_complete() {
                                break Step::NeedInput;
                            }
                            &[][..]
                        }
                        None => {
                            let need = self.data_len();
                            if avail.len() < need {
                                break Step::NeedInput;
                            }
                            fed.consumed += need;
                            &avail[..need]
                        }
                    };
                    self.input = Input::Line;
                    let next = if self.wire == Wire::Binary {
                        handler.complete_binary(&mut self.state, block, out)
                    } else {
                        let before = out.len();
                        // memcached logs the reply of a text store, not of a meta one.
                        let logged = !self.state.is_meta_store();
                        handler.complete_store(&mut self.state, block, out);
                        if logged && log::log_enabled!(log::Level::Debug) {
                            verbose::reply(self.state.fd, b"", &out[before..]);
                        }
                        Next::ReadLine
                    };
                    // Stored, or refused and given back.
                    self.state.upload = None;
                    next
                }
                Input::Swallow(left) => {
                    let take = left.min(avail.len());
                    fed.consumed += take;
                    if take < left {
                        self.input = Input::Swallow(left - take);
                        break Step::NeedInput;
                    }
                    self.input = Input::Line;
                    continue;
                }
            };
            fed.requests += 1;
            if next != Next::ReadData {
                on_done(out.len());
            }
            if let Some(step) = self.after_request(next, out, written) {
                break step;
            }
        };
        fed
    }

    /// Bytes still missing for the request being read, beyond the `input` buffered: a data
    /// block can be up to `-I`, a binary key up to 64 KB (so a read can be sized to it).
    pub fn missing(&self, input: &[u8]) -> usize {
        match (self.input, self.wire) {
            (Input::Data, _) if self.state.upload.is_some() => 0,
            (Input::Data, _) => self.data_len().saturating_sub(input.len()),
            (Input::Line, Wire::Binary) => {
                frame_len(input).map_or(0, |need| need.saturating_sub(input.len()))
            }
            _ => 0,
        }
    }

    fn decide_wire(&mut self, handler: &Handler<'_>, first: u8) {
        let protocol = handler.settings().protocol;
        self.wire = match protocol {
            Protocol::Ascii => Wire::Text,
            Protocol::Binary => Wire::Binary,
            Protocol::Auto if first == REQUEST_MAGIC => Wire::Binary,
            Protocol::Auto => Wire::Text,
        };
        if protocol == Protocol::Auto {
            let name = if self.wire == Wire::Binary {
                "binary"
            } else {
                "ascii"
            };
            log::debug!("{}: Client using the {name} protocol", self.state.fd);
        }
    }

    /// Applies what a handled request asks of the connection; `Some` to stop.
    fn after_request(&mut self, next: Next, out: &mut Vec<u8>, written: usize) -> Option<Step> {
        match next {
            Next::ReadLine | Next::Paused(_) => {}
            Next::Transmit => self.committed = out.len(),
            Next::ReadData => self.input = Input::Data,
            Next::Swallow(0) => {}
            Next::Swallow(n) => self.input = Input::Swallow(n),
            Next::CloseAfterWrite => return Some(Step::CloseAfterWrite),
            Next::Watch(kinds) => return Some(Step::Watch(kinds)),
            Next::Close => return Some(self.close(out, written, CloseReason::Error)),
            Next::Shutdown => return Some(self.close(out, written, CloseReason::Shutdown)),
        }
        None
    }

    /// Drops the replies not yet committed (as memcached drops what it had queued) and asks
    /// for the close.
    fn close(&mut self, out: &mut Vec<u8>, written: usize, reason: CloseReason) -> Step {
        self.state.truncate_output(out, self.committed.max(written));
        Step::Close(reason)
    }

    /// Bytes of the data block the pending store waits for: a text block ends in `\r\n`, a
    /// binary value does not.
    fn data_len(&self) -> usize {
        match self.wire {
            Wire::Binary => self.state.length,
            _ => self.state.length + 2,
        }
    }
}

/// A binary request's header, extras and key length, once its header is buffered.
fn frame_len(input: &[u8]) -> Option<usize> {
    binary::header_bytes(input).map(|head| HEADER_LEN + binary::Header::parse(head).prefix_len())
}

/// memcached keeps reading a newline-less line past 2 KB only if it is a `get`/`gets` (after at
/// most 100 leading spaces), since only a multi-get can legitimately be that long.
fn may_be_long_get(line: &[u8]) -> bool {
    let spaces = line.iter().take_while(|&&b| b == b' ').count();
    let rest = &line[spaces..];
    spaces <= 100 && (rest.starts_with(b"get ") || rest.starts_with(b"gets "))
}

#[cfg(test)]
mod tests;
