//! One client connection: its buffers and the read → parse → execute → write cycle.
//!
//! The connection reads only when every reply it owes has been written, as memcached does: the
//! output a client can make us hold is bounded by what one buffer of its requests produces, and
//! a client that stops reading stops being read.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::buffers::{ReadBuffers, KEEP_CAPACITY, READ_CHUNK};
use super::stream::Stream;
use crate::config::Protocol;
use crate::handler::text::OUTPUT_HIGH_WATER;
use crate::handler::{Handler, Next, Session};
use crate::protocol::binary::{self, HEADER_LEN, REQUEST_MAGIC};
use crate::stats::ThreadStats;
use crate::watch::CloseReason;

/// memcached closes a connection whose buffered line reaches this length without a newline,
/// unless it is a multi-get.
const MAX_PLAIN_LINE: usize = 2048;
/// A multi-get line may be long, but not without bound.
const MAX_GET_LINE: usize = 8 * 1024 * 1024;

/// Which protocol the connection speaks: with `-B auto`, its first byte decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    Undecided,
    Text,
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

/// What the worker should do with a connection after driving it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drive {
    /// Nothing more to do until the socket is ready again.
    Wait,
    /// The per-wake-up request budget ran out with input still buffered: drive again soon.
    Yield,
    /// Close the connection, for this reason.
    Close(CloseReason),
    /// Hand the socket to the `watch` logger, for these event kinds.
    Watch(u16),
}

enum Processed {
    NeedInput,
    /// Enough output is queued: write it before executing more.
    OutputFull,
    OutOfBudget,
    CloseAfterWrite,
    Close(CloseReason),
    Watch(u16),
}

/// A client connection.
#[derive(Debug)]
pub struct Conn {
    stream: Stream,
    peer: Option<SocketAddr>,
    rbuf: Vec<u8>,
    rpos: usize,
    wbuf: Vec<u8>,
    wpos: usize,
    /// Output up to here counts as sent (see [`Next::Transmit`]); an abrupt close drops the rest,
    /// as memcached drops replies it had queued but not yet written.
    committed: usize,
    wire: Wire,
    input: Input,
    /// Where a paused multi-get resumes in the line at `rpos` (0: the line is new).
    resume: usize,
    pending: Session,
    /// Close once the queued output is written, for this reason.
    close_after_write: Option<CloseReason>,
    /// The peer shut down its side (or the socket failed): read until EOF, since no further
    /// edge will announce it.
    hangup: bool,
    /// When a request was last handled ([`crate::conn_table::coarse_now_ms`]), shared with
    /// `stats conns`; the idle timeout reads it too.
    last_cmd: Arc<AtomicU64>,
    /// Buffer capacities last added to the thread's gauges.
    counted: (usize, usize),
}

impl Conn {
    /// Wraps an accepted, non-blocking stream.
    pub fn new(stream: Stream, peer: Option<SocketAddr>, last_cmd: Arc<AtomicU64>) -> Conn {
        let mut pending = Session::default();
        pending.fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
        Conn {
            stream,
            peer,
            rbuf: Vec::new(),
            rpos: 0,
            wbuf: Vec::new(),
            wpos: 0,
            committed: 0,
            wire: Wire::Undecided,
            input: Input::Line,
            resume: 0,
            pending,
            close_after_write: None,
            hangup: false,
            last_cmd,
            counted: (0, 0),
        }
    }

    /// The socket.
    pub fn stream(&self) -> &Stream {
        &self.stream
    }

    /// The TCP peer's address, as it was at accept.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// When the connection last completed a request ([`crate::conn_table::coarse_now_ms`]).
    pub fn last_active_ms(&self) -> u64 {
        self.last_cmd.load(Ordering::Relaxed)
    }

    /// Reads, executes and writes until the socket would block, the request budget is spent,
    /// or the connection should close.
    pub fn drive(
        &mut self,
        handler: &Handler<'_>,
        stats: &ThreadStats,
        budget: usize,
        buffers: &mut ReadBuffers,
    ) -> Drive {
        crate::watch::set_client_fd(self.pending.fd);
        let drive = self.drive_inner(handler, stats, budget, buffers);
        // A connection that yielded is served again soon, with its buffer as it is.
        if !matches!(drive, Drive::Yield) {
            self.park_input(buffers, stats);
        }
        self.count_buffers(stats, (self.rbuf.capacity(), self.wbuf.capacity()));
        drive
    }

    /// Gives the read buffer back to the worker's spares when what is left unread is at most
    /// a line's worth (kept in a buffer of its own size): an idle or slowly typing client holds
    /// no 16 KB buffer. More than that (most of a partly read value) keeps its buffer, to be
    /// filled in place.
    fn park_input(&mut self, buffers: &mut ReadBuffers, stats: &ThreadStats) {
        let unread = self.rbuf.len() - self.rpos;
        if self.rbuf.capacity() < READ_CHUNK || unread > MAX_PLAIN_LINE {
            return;
        }
        let rest = if unread == 0 {
            Vec::new()
        } else {
            self.rbuf[self.rpos..].to_vec()
        };
        let buf = std::mem::replace(&mut self.rbuf, rest);
        self.rpos = 0;
        // The buffer was uncounted while lent (taking it uncounted it from the spares); the
        // drive's recount sees the connection without it.
        buffers.give(buf, stats);
    }

    /// At shutdown: writes what is still queued for the client, until `deadline`, then shuts
    /// the sending side so the client sees the end after the last whole reply. Nothing more is
    /// executed.
    pub fn finish(&mut self, stats: &ThreadStats, deadline: Instant) {
        loop {
            match self.flush(stats) {
                Ok(false) if Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                Ok(true) => {
                    let _ = self.stream.shutdown_write();
                    return;
                }
                _ => return,
            }
        }
    }

    /// After [`Conn::finish`]: reads and discards what the client still sends. `true` once
    /// it has closed (or the socket failed). Closing a socket with unread input makes the
    /// kernel reset the connection and drop replies it has not delivered yet, so a finished
    /// connection is closed only after this, or at a deadline.
    pub fn discard_input(&mut self) -> bool {
        let mut scratch = [0u8; 4096];
        loop {
            match self.stream.read(&mut scratch) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
    }

    /// Removes this connection's buffers from the thread's gauges (when it closes).
    pub fn uncount_buffers(&mut self, stats: &ThreadStats) {
        self.count_buffers(stats, (0, 0));
    }

    /// Keeps `read_buf_*` and `response_obj_*` (memcached's names for the per-connection read
    /// and reply buffers) equal to the capacities this connection holds.
    fn count_buffers(&mut self, stats: &ThreadStats, now: (usize, usize)) {
        let (r0, w0) = self.counted;
        let (r1, w1) = now;
        if (r0, w0) == (r1, w1) {
            return;
        }
        stats
            .read_buf_count
            .adjust(i64::from(r1 > 0) - i64::from(r0 > 0));
        stats.read_buf_bytes.adjust(r1 as i64 - r0 as i64);
        stats
            .response_obj_count
            .adjust(i64::from(w1 > 0) - i64::from(w0 > 0));
        stats.response_obj_bytes.adjust(w1 as i64 - w0 as i64);
        self.counted = now;
    }

    fn drive_inner(
        &mut self,
        handler: &Handler<'_>,
        stats: &ThreadStats,
        budget: usize,
        buffers: &mut ReadBuffers,
    ) -> Drive {
        let mut budget = budget;
        let mut drained = false;
        loop {
            let processed = self.process(handler, &mut budget);
            if let Processed::Watch(kinds) = processed {
                // What is still queued goes to the logger with the socket.
                return Drive::Watch(kinds);
            }
            // While a refused value is being swallowed its error waits, as in memcached: a
            // client that gives up halfway gets the close alone.
            let swallowing = matches!(self.input, Input::Swallow(_))
                && matches!(processed, Processed::NeedInput);
            match if swallowing {
                Ok(true)
            } else {
                self.flush(stats)
            } {
                Ok(true) => {}
                Ok(false) => {
                    // The rest goes out on the next writable edge; remember to close after it.
                    match processed {
                        Processed::CloseAfterWrite => {
                            self.close_after_write = Some(CloseReason::Normal);
                        }
                        Processed::Close(reason) => self.close_after_write = Some(reason),
                        _ => {}
                    }
                    return Drive::Wait;
                }
                Err(_) => return Drive::Close(CloseReason::Error),
            }
            if let Some(reason) = self.close_after_write {
                return Drive::Close(reason);
            }
            match processed {
                Processed::Close(reason) => return Drive::Close(reason),
                Processed::CloseAfterWrite => return Drive::Close(CloseReason::Normal),
                Processed::Watch(kinds) => return Drive::Watch(kinds),
                Processed::OutOfBudget => {
                    stats.conn_yields.incr();
                    return Drive::Yield;
                }
                Processed::OutputFull => continue,
                Processed::NeedInput => {}
            }
            if drained && !self.hangup {
                // The last read emptied the socket: wait for the next edge instead of a read
                // that would only say EAGAIN (epoll(7) allows this for stream sockets).
                return Drive::Wait;
            }
            match self.fill(buffers, stats) {
                Ok((0, _)) => return Drive::Close(CloseReason::Normal),
                Ok((n, short)) => {
                    stats.bytes_read.add(n as u64);
                    drained = short;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Drive::Wait,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Drive::Close(CloseReason::Error),
            }
        }
    }

    /// Executes every complete request in the read buffer, within the budget.
    fn process(&mut self, handler: &Handler<'_>, budget: &mut usize) -> Processed {
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
                if handler.settings().protocol == Protocol::Auto {
                    let name = if self.wire == Wire::Binary {
                        "binary"
                    } else {
                        "ascii"
                    };
                    log::debug!("{}: Client using the {name} protocol", self.pending.fd);
                }
            }
            match self.input {
                Input::Line if self.wire == Wire::Binary => {
                    if let Some(done) = self.process_frame(handler, budget) {
                        return done;
                    }
                }
                Input::Line => {
                    let Some(nl) = avail.iter().position(|&b| b == b'\n') else {
                        if avail.len() > MAX_PLAIN_LINE && !may_be_long_get(avail)
                            || avail.len() > MAX_GET_LINE
                        {
                            return self.close_at_once(CloseReason::Error);
                        }
                        return Processed::NeedInput;
                    };
                    if self.wbuf.len() - self.wpos >= OUTPUT_HIGH_WATER {
                        return Processed::OutputFull;
                    }
                    if self.resume == 0 {
                        if *budget == 0 {
                            return Processed::OutOfBudget;
                        }
                        *budget -= 1;
                    }
                    // memcached strips the '\r' only from lines longer than one byte.
                    let end = if nl > 1 && avail[nl - 1] == b'\r' {
                        nl - 1
                    } else {
                        nl
                    };
                    self.pending
                        .set_output(self.wbuf.len(), self.committed.max(self.wpos));
                    let before = self.wbuf.len();
                    let verbose = log::log_enabled!(log::Level::Debug);
                    if verbose && self.resume == 0 {
                        log_command(&self.stream, &avail[..end]);
                    }
                    let next = handler.handle_line(
                        &avail[..end],
                        self.resume,
                        &mut self.wbuf,
                        &mut self.pending,
                    );
                    if verbose {
                        log_reply(&self.stream, &avail[..end], &self.wbuf[before..]);
                    }
                    if let Next::Paused(offset) = next {
                        self.resume = offset;
                        self.committed = self.wbuf.len();
                        return Processed::OutputFull;
                    }
                    self.resume = 0;
                    self.rpos += nl + 1;
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
                        if let Some(done) = self.after_request(next) {
                            return done;
                        }
                    } else {
                        let before = self.wbuf.len();
                        // memcached logs the reply of a text store, not of a meta one.
                        let logged = !self.pending.is_meta_store();
                        handler.complete_store(&mut self.pending, &avail[..need], &mut self.wbuf);
                        if logged && log::log_enabled!(log::Level::Debug) {
                            log_reply(&self.stream, b"", &self.wbuf[before..]);
                        }
                        self.rpos += need;
                        self.touch();
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

    /// One binary request: its header, extras and key once buffered (a wrong magic byte closes
    /// the connection without a reply, as memcached does). `None`: go on with the next input.
    fn process_frame(&mut self, handler: &Handler<'_>, budget: &mut usize) -> Option<Processed> {
        let avail = &self.rbuf[self.rpos..];
        let Some(head) = binary::header_bytes(avail) else {
            return Some(Processed::NeedInput);
        };
        if head[0] != REQUEST_MAGIC {
            return Some(self.close_at_once(CloseReason::Error));
        }
        let need = HEADER_LEN + binary::Header::parse(head).prefix_len();
        if avail.len() < need {
            return Some(Processed::NeedInput);
        }
        if self.wbuf.len() - self.wpos >= OUTPUT_HIGH_WATER {
            return Some(Processed::OutputFull);
        }
        if *budget == 0 {
            return Some(Processed::OutOfBudget);
        }
        *budget -= 1;
        let next = handler.handle_binary(&avail[..need], &mut self.wbuf, &mut self.pending);
        self.rpos += need;
        self.after_request(next)
    }

    /// Applies what a handled request asks of the connection; `Some` to stop processing.
    fn after_request(&mut self, next: Next) -> Option<Processed> {
        self.touch();
        match next {
            Next::ReadLine | Next::Paused(_) => {}
            Next::Transmit => self.committed = self.wbuf.len(),
            Next::ReadData => self.input = Input::Data,
            Next::Swallow(0) => {}
            Next::Swallow(n) => self.input = Input::Swallow(n),
            Next::CloseAfterWrite => return Some(Processed::CloseAfterWrite),
            Next::Watch(kinds) => return Some(Processed::Watch(kinds)),
            Next::Close => return Some(self.close_at_once(CloseReason::Error)),
            Next::Shutdown => return Some(self.close_at_once(CloseReason::Shutdown)),
        }
        None
    }

    /// Drops the replies not yet committed (as memcached drops what it had queued) and asks
    /// for the close.
    fn close_at_once(&mut self, reason: CloseReason) -> Processed {
        self.wbuf.truncate(self.committed.max(self.wpos));
        Processed::Close(reason)
    }

    /// Gives up the connection to become a `watch` receiver: its socket, and the output it
    /// still owed.
    pub fn into_watcher(self) -> (Stream, Vec<u8>) {
        let unsent = self.wbuf[self.wpos..].to_vec();
        (self.stream, unsent)
    }

    /// epoll reported a hang-up or an error on the socket.
    pub fn note_hangup(&mut self) {
        self.hangup = true;
    }

    /// Records that a request was handled now.
    fn touch(&mut self) {
        self.last_cmd
            .store(crate::conn_table::coarse_now_ms(), Ordering::Relaxed);
    }

    /// Bytes of the data block the pending store waits for: a text block ends in `\r\n`, a
    /// binary value does not.
    fn data_len(&self) -> usize {
        match self.wire {
            Wire::Binary => self.pending.length,
            _ => self.pending.length + 2,
        }
    }

    /// Bytes still missing for the request being read, beyond what is buffered: a data block
    /// can be up to `-I`, a binary key up to 64 KB.
    fn missing(&self) -> usize {
        let avail = &self.rbuf[self.rpos..];
        match (self.input, self.wire) {
            (Input::Data, _) => self.data_len().saturating_sub(avail.len()),
            (Input::Line, Wire::Binary) => match binary::header_bytes(avail) {
                Some(head) => {
                    let need = HEADER_LEN + binary::Header::parse(head).prefix_len();
                    need.saturating_sub(avail.len())
                }
                None => 0,
            },
            _ => 0,
        }
    }

    /// Reads once into the buffer, first moving unread bytes to its front. The buffer grows
    /// only as far as the request being read needs (a data block can be up to `-I`), and gives
    /// the memory back once such a request is done.
    /// Returns the bytes read and whether that was less than there was room for, which on a
    /// stream socket means it is drained.
    fn fill(
        &mut self,
        buffers: &mut ReadBuffers,
        stats: &ThreadStats,
    ) -> io::Result<(usize, bool)> {
        self.rbuf.drain(..self.rpos);
        self.rpos = 0;
        if self.rbuf.capacity() < READ_CHUNK {
            // A partial line (or nothing) parked in a small buffer: read into a spare.
            let mut buf = buffers.take(stats);
            if !self.rbuf.is_empty() {
                buf.extend_from_slice(&self.rbuf);
            }
            self.rbuf = buf;
        }
        let missing = self.missing();
        if missing == 0 && self.rbuf.capacity() > KEEP_CAPACITY && self.rbuf.len() < READ_CHUNK {
            self.rbuf.shrink_to(READ_CHUNK);
        }
        let (n, more) = self
            .stream
            .read_to_spare(&mut self.rbuf, missing.max(READ_CHUNK))?;
        Ok((n, !more))
    }

    /// Writes queued output. `Ok(true)` when everything went out.
    fn flush(&mut self, stats: &ThreadStats) -> io::Result<bool> {
        while self.wpos < self.wbuf.len() {
            match self.stream.write(&self.wbuf[self.wpos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.wpos += n;
                    stats.bytes_written.add(n as u64);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // TLS keeps encrypted records of its own until the socket takes them.
        if !self.stream.flush_pending()? {
            return Ok(false);
        }
        self.wbuf.clear();
        self.wpos = 0;
        self.committed = 0;
        self.pending.replies_written();
        if self.wbuf.capacity() > KEEP_CAPACITY {
            self.wbuf.shrink_to(READ_CHUNK);
        }
        Ok(true)
    }
}

/// `-vv`: each command (before it runs) and its reply as memcached logs them: `<fd command`, then `>fd line`
/// for a reply line — except that a retrieval logs `>fd sending key K` per hit and `>fd END`,
/// and meta and `stats` replies are not logged at all (memcached writes those without its
/// `out_string`, which is where its logging is).
fn log_command(stream: &Stream, line: &[u8]) {
    use std::os::fd::AsRawFd;
    let fd = stream.as_raw_fd();
    log::debug!("<{fd} {}", String::from_utf8_lossy(line));
}

/// The reply half of [`log_command`]; `line` is the command it answers (empty after a data
/// block).
fn log_reply(stream: &Stream, line: &[u8], reply: &[u8]) {
    use std::os::fd::AsRawFd;
    let fd = stream.as_raw_fd();
    let first_line = || {
        let first = reply.split(|&b| b == b'\n').next().unwrap_or(b"");
        first.strip_suffix(b"\r").unwrap_or(first)
    };
    let command = line.split(|&b| b == b' ').find(|t| !t.is_empty());
    match command {
        Some(b"get" | b"gets" | b"gat" | b"gats" | b"bget") => {
            // Walk the values (their data may hold anything) to name each key sent.
            let mut rest = reply;
            while let Some(header) = rest.strip_prefix(b"VALUE ") {
                let Some(eol) = header.iter().position(|&b| b == b'\n') else {
                    break;
                };
                let mut fields = header[..eol].split(|&b| b == b' ');
                let key = fields.next().unwrap_or(b"");
                let len: usize = fields
                    .nth(1)
                    .and_then(|l| std::str::from_utf8(l).ok())
                    .and_then(|l| l.trim_end().parse().ok())
                    .unwrap_or(0);
                log::debug!(">{fd} sending key {}", String::from_utf8_lossy(key));
                rest = header.get(eol + 1 + len + 2..).unwrap_or(b"");
            }
            if rest == b"END\r\n" {
                log::debug!(">{fd} END");
            } else if rest.starts_with(b"CLIENT_ERROR") || rest.starts_with(b"SERVER_ERROR") {
                // memcached logs the END it then throws away, then the error.
                log::debug!(">{fd} END");
                log::debug!(">{fd} {}", String::from_utf8_lossy(first_line()));
            }
        }
        Some(b"mg" | b"ms" | b"md" | b"ma" | b"mn" | b"me") => {}
        // A statistics listing is not logged, a one-line answer (`stats detail on`) is.
        Some(b"stats") if reply.starts_with(b"STAT ") || reply.starts_with(b"END") => {}
        _ => {
            let first = first_line();
            if !first.is_empty() {
                log::debug!(">{fd} {}", String::from_utf8_lossy(first));
            }
        }
    }
}

/// memcached keeps reading a newline-less line past 2 KB only if it is a `get`/`gets` (after at
/// most 100 leading spaces), since only a multi-get can legitimately be that long.
fn may_be_long_get(line: &[u8]) -> bool {
    let spaces = line.iter().take_while(|&&b| b == b' ').count();
    let rest = &line[spaces..];
    spaces <= 100 && (rest.starts_with(b"get ") || rest.starts_with(b"gets "))
}

#[cfg(test)]
mod tests {
    use super::may_be_long_get;

    #[test]
    fn only_gets_may_be_long() {
        assert!(may_be_long_get(b"get a b c"));
        assert!(may_be_long_get(b"   gets a"));
        assert!(!may_be_long_get(b"set a 0 0 1"));
        assert!(!may_be_long_get(&[b' '; 200]));
    }
}
