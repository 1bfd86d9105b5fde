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
use super::output;
use super::stream::Stream;
use crate::handler::Handler;
use crate::session::{Fed, Session, Step, MAX_PLAIN_LINE};
use crate::stats::ThreadStats;
use crate::watch::CloseReason;

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

/// A client connection.
#[derive(Debug)]
pub struct Conn {
    stream: Stream,
    peer: Option<SocketAddr>,
    rbuf: Vec<u8>,
    rpos: usize,
    wbuf: Vec<u8>,
    /// Bytes of `wbuf` written (the pinned values it refers to count their own).
    wpos: usize,
    session: Session,
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
    /// When the connection was admitted, until its first bytes arrive: at shutdown a client
    /// that connected a moment ago gets a short grace for its first request.
    silent_since: Option<Instant>,
}

impl Conn {
    /// Wraps an accepted, non-blocking stream.
    pub fn new(stream: Stream, peer: Option<SocketAddr>, last_cmd: Arc<AtomicU64>) -> Conn {
        let mut session = Session::new(std::os::fd::AsRawFd::as_raw_fd(&stream));
        // TLS encrypts what it sends, from a copy: only a plain socket writes from the arena.
        if !stream.is_tls() {
            session.write_from_arena();
        }
        Conn {
            stream,
            peer,
            rbuf: Vec::new(),
            rpos: 0,
            wbuf: Vec::new(),
            wpos: 0,
            session,
            close_after_write: None,
            hangup: false,
            last_cmd,
            counted: (0, 0),
            silent_since: Some(Instant::now()),
        }
    }

    /// Whether the client connected less than `within` ago and has sent nothing yet.
    pub fn awaiting_first_request(&self, within: std::time::Duration) -> bool {
        self.silent_since.is_some_and(|at| at.elapsed() < within)
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
        stats
            .client_fd
            .set(std::os::fd::AsRawFd::as_raw_fd(&self.stream));
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
            // With no input a feed does nothing (a paused multi-get keeps its line in the
            // input; a value received into its chunks is the exception), so the call is
            // skipped: every request would otherwise pay for two.
            let received = self.session.upload().is_some_and(|u| u.is_complete());
            let fed = if self.rpos == self.rbuf.len() && !received {
                Fed::NOTHING
            } else {
                self.session.feed(
                    handler,
                    &self.rbuf[self.rpos..],
                    &mut self.wbuf,
                    self.wpos,
                    &mut budget,
                    |_| {},
                )
            };
            self.rpos += fed.consumed;
            if fed.requests > 0 {
                self.touch();
            }
            let processed = fed.step;
            if let Step::Watch(kinds) = processed {
                // What is still queued goes to the logger with the socket.
                return Drive::Watch(kinds);
            }
            // While a refused value is being swallowed its error waits, as in memcached: a
            // client that gives up halfway gets the close alone.
            let swallowing = self.session.swallowing() && processed == Step::NeedInput;
            match if swallowing {
                Ok(true)
            } else {
                self.flush(stats)
            } {
                Ok(true) => {}
                Ok(false) => {
                    // The rest goes out on the next writable edge; remember to close after it.
                    match processed {
                        Step::CloseAfterWrite => {
                            self.close_after_write = Some(CloseReason::Normal);
                        }
                        Step::Close(reason) => self.close_after_write = Some(reason),
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
                Step::Close(reason) => return Drive::Close(reason),
                Step::CloseAfterWrite => return Drive::Close(CloseReason::Normal),
                Step::Watch(kinds) => return Drive::Watch(kinds),
                Step::OutOfBudget => {
                    stats.conn_yields.incr();
                    return Drive::Yield;
                }
                Step::OutputFull => continue,
                Step::NeedInput => {}
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

    /// Gives up the connection to become a `watch` receiver: its socket, and the output it
    /// still owed.
    pub fn into_watcher(mut self) -> (Stream, Vec<u8>) {
        let unsent = match self.session.pinned_values() {
            Some(pinned) => pinned.unsent(&self.wbuf, self.wpos),
            None => self.wbuf[self.wpos..].to_vec(),
        };
        (self.stream, unsent)
    }

    /// Whether pinned values wait to be written.
    fn has_pinned(&mut self) -> bool {
        self.session.pinned_values().is_some_and(|p| !p.is_empty())
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
        if let Some(upload) = self.session.upload().filter(|u| !u.is_complete()) {
            // The session took every buffered byte of the value: the rest goes straight into
            // its chunks, and what follows it (the next requests) into the input, so that the
            // read can come up short, which says the socket is drained, as any other read.
            // (Only a plain socket receives values so: TLS decrypts into the input.)
            debug_assert!(self.rbuf.is_empty() && !self.stream.is_tls());
            let stream = &self.stream;
            let rbuf = &mut self.rbuf;
            let mut asked = 0;
            let into_block = upload.receive(|pieces, to_the_end| {
                let room = if to_the_end {
                    rbuf.capacity().max(READ_CHUNK)
                } else {
                    0
                };
                asked = pieces.iter().map(|p| p.len()).sum::<usize>() + room;
                let spill = to_the_end.then_some((&mut *rbuf, READ_CHUNK));
                super::sys::read_pieces(stream, pieces, spill)
            })?;
            // What came after the block went to the (empty) input buffer.
            let n = into_block + self.rbuf.len();
            if n > 0 {
                self.silent_since = None;
            }
            return Ok((n, n < asked));
        }
        let missing = self.session.missing(&self.rbuf);
        if missing == 0 && self.rbuf.capacity() > KEEP_CAPACITY && self.rbuf.len() < READ_CHUNK {
            self.rbuf.shrink_to(READ_CHUNK);
        }
        let (n, more) = self
            .stream
            .read_to_spare(&mut self.rbuf, missing.max(READ_CHUNK))?;
        if n > 0 {
            self.silent_since = None;
        }
        Ok((n, !more))
    }

    /// Writes queued output. `Ok(true)` when everything went out.
    fn flush(&mut self, stats: &ThreadStats) -> io::Result<bool> {
        while self.wpos < self.wbuf.len() || self.has_pinned() {
            let wrote = match self.session.pinned_values() {
                Some(pinned) if !pinned.is_empty() => {
                    output::write(&self.stream, &self.wbuf, pinned, &mut self.wpos)
                }
                _ => self
                    .stream
                    .write(&self.wbuf[self.wpos..])
                    .inspect(|&n| self.wpos += n),
            };
            match wrote {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => stats.bytes_written.add(n as u64),
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
        self.session.output_written();
        if self.wbuf.capacity() > KEEP_CAPACITY {
            self.wbuf.shrink_to(READ_CHUNK);
        }
        Ok(true)
    }
}
