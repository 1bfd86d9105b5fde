//! A worker thread: one epoll loop that accepts connections and serves them.
//!
//! Every worker watches every listening socket (`EPOLLEXCLUSIVE`, so the kernel wakes one worker
//! per incoming connection). The worker that accepts a connection gives it to the worker serving
//! the fewest ([`Balance`], usually itself or the other one in turn), which serves it until it
//! closes: there is no dispatcher thread.

use std::collections::VecDeque;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::balance::{Balance, Handoff};
use super::buffers::ReadBuffers;
use super::conn::{Conn, Drive};
use super::stream::{Listener, Stream};
use super::sys::{event_buffer, Epoll, Waker, HANGUP};
use crate::conn_table::{ConnEntry, ConnKind};
use crate::handler::Handler;
use crate::idle::Beat;
use crate::server::Server;
use crate::stats::ThreadStats;
use crate::watch::CloseReason;

const WAKER_TOKEN: u64 = u64::MAX;
const LISTENER_TOKEN_BASE: u64 = u64::MAX - 1024;
/// How long to stop accepting after the process ran out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Connections accepted per wake-up before serving others.
const ACCEPT_BATCH: usize = 64;
/// At shutdown, how long queued replies may take to go out before connections are closed.
const FINISH_TIMEOUT: Duration = Duration::from_millis(500);
/// At shutdown, how long a client that connected just before may take to send its first
/// request and still be answered (shutdown waits only while there is such a client).
const FIRST_REQUEST_GRACE: Duration = Duration::from_millis(250);
/// "Just before": a silent connection admitted this recently is waited for.
const JUST_CONNECTED: Duration = Duration::from_secs(1);

/// A running worker: wake it to make it notice shutdown.
#[derive(Debug)]
pub struct WorkerHandle {
    probe: WorkerProbe,
    thread: JoinHandle<()>,
}

/// A worker as another thread watches it: its wake-up count, and a way to wake it. An idle
/// worker sleeps without a timeout, so a watchdog wakes it and then expects the count to have
/// moved; a count that does not means the worker is stuck. A count, not a time: reading the
/// clock on every turn cost more than the rest of the loop's bookkeeping.
#[derive(Debug, Clone)]
pub struct WorkerProbe {
    beat: Arc<Beat>,
    waker: Arc<Waker>,
}

impl WorkerProbe {
    /// How many times the worker has woken.
    pub fn wakes(&self) -> u64 {
        self.beat.wakes()
    }

    /// Wakes the worker (it then checks the shutdown flag, and counts a wake-up).
    pub fn wake(&self) {
        if let Err(e) = self.waker.wake() {
            log::warn!("could not wake a worker: {e}");
        }
    }
}

impl WorkerHandle {
    /// What a watchdog watches of the worker.
    pub fn probe(&self) -> WorkerProbe {
        self.probe.clone()
    }

    /// Wakes the worker (it then checks the shutdown flag).
    pub fn wake(&self) {
        self.probe.wake();
    }

    /// Waits for the worker to finish; `false` if it panicked.
    pub fn join(self) -> bool {
        let finished = self.thread.join().is_ok();
        if !finished {
            log::error!("a worker thread panicked");
        }
        finished
    }
}

/// Starts `settings.threads` workers serving `listeners`.
pub fn spawn_workers(
    server: &Arc<Server>,
    listeners: &Arc<Vec<Listener>>,
    shutdown: &Arc<AtomicBool>,
) -> io::Result<Vec<WorkerHandle>> {
    let mut loops = Vec::new();
    for _ in 0..server.settings.threads {
        let epoll = Epoll::new()?;
        let waker = Arc::new(Waker::new()?);
        epoll.add_waker(waker.as_raw_fd(), WAKER_TOKEN)?;
        for (i, l) in listeners.iter().enumerate() {
            epoll.add_listener(l.as_raw_fd(), LISTENER_TOKEN_BASE + i as u64)?;
        }
        loops.push((epoll, waker));
    }
    let wakers: Vec<Arc<Waker>> = loops.iter().map(|(_, w)| Arc::clone(w)).collect();
    let balance = Arc::new(Balance::new(&wakers));
    let mut handles = Vec::new();
    for (id, (epoll, waker)) in loops.into_iter().enumerate() {
        let beat = server.idle.register();
        let worker = Worker {
            id,
            balance: Arc::clone(&balance),
            beat: Arc::clone(&beat),
            stats: server.stats.register(),
            server: Arc::clone(server),
            listeners: Arc::clone(listeners),
            shutdown: Arc::clone(shutdown),
            epoll,
            waker: Arc::clone(&waker),
            conns: Vec::new(),
            free: Vec::new(),
            ready: VecDeque::new(),
            buffers: ReadBuffers::default(),
            accept_paused_until: None,
            next_idle_sweep_ms: None,
        };
        let thread = std::thread::Builder::new()
            .name(format!("worker-{id}"))
            .spawn(move || worker.run())?;
        handles.push(WorkerHandle {
            probe: WorkerProbe { beat, waker },
            thread,
        });
    }
    Ok(handles)
}

struct Worker {
    /// This worker's index in [`Balance`].
    id: usize,
    balance: Arc<Balance>,
    /// Counts the loop's turns ([`crate::idle`]).
    beat: Arc<Beat>,
    server: Arc<Server>,
    stats: Arc<ThreadStats>,
    listeners: Arc<Vec<Listener>>,
    shutdown: Arc<AtomicBool>,
    epoll: Epoll,
    waker: Arc<Waker>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    /// Connections that yielded with input still buffered.
    ready: VecDeque<usize>,
    /// Read buffers not lent to a connection.
    buffers: ReadBuffers,
    accept_paused_until: Option<Instant>,
    /// Under `-o idle_timeout`, when [`Worker::close_idle`] should next look (the clock of
    /// [`crate::conn_table::now_ms`]); `None` while there is no connection to watch.
    next_idle_sweep_ms: Option<u64>,
}

impl Worker {
    fn run(mut self) {
        let mut events = event_buffer(256);
        while !self.shutdown.load(Ordering::Acquire) {
            // Idle, the worker sleeps until a socket or its waker has something: no timer
            // wakes it but the accept back-off and, under -o idle_timeout, the moment the
            // longest-quiet connection would have been quiet that long.
            let timeout = if !self.ready.is_empty() {
                Some(Duration::ZERO)
            } else if self.accept_paused_until.is_some() {
                Some(ACCEPT_BACKOFF)
            } else {
                self.next_idle_sweep_ms
                    .map(|at| Duration::from_millis(at.saturating_sub(crate::conn_table::now_ms())))
            };
            let n = match self.epoll.wait(&mut events, timeout) {
                Ok(n) => n,
                Err(e) => {
                    log::error!("epoll_wait failed: {e}");
                    break;
                }
            };
            self.beat.woke();
            // A wake-up by the waker alone (a watchdog's, a hand-off's: its connection's data
            // comes as events of its own) or by a timeout serves no request. One that will is
            // counted now, so that whatever sleeps wakes at once, and again once served (below).
            let mut served = n > 1 || (n == 1 && events[0].u64 != WAKER_TOKEN);
            if served {
                self.server.idle.turned(&self.beat);
            }
            // The worker keeps the time its requests read (memcached's clock thread's job).
            let now = crate::os::coarse_monotonic();
            self.server.cache.clock().tick_at(now);
            crate::conn_table::tick_at(now);
            for ev in &events[..n] {
                let token = ev.u64;
                if token == WAKER_TOKEN {
                    self.waker.drain();
                    for handoff in self.balance.take_inbox(self.id) {
                        self.admit(handoff.stream, handoff.listener);
                    }
                } else if token >= LISTENER_TOKEN_BASE {
                    self.accept((token - LISTENER_TOKEN_BASE) as usize);
                } else {
                    if ev.events & HANGUP != 0 {
                        if let Some(conn) =
                            self.conns.get_mut(token as usize).and_then(Option::as_mut)
                        {
                            conn.note_hangup();
                        }
                    }
                    self.serve(token as usize);
                }
            }
            for _ in 0..self.ready.len() {
                if let Some(idx) = self.ready.pop_front() {
                    self.serve(idx);
                    served = true;
                }
            }
            // Counted after serving too: a background thread that looked at the counts while
            // these requests were being served (the crawler, between passes over the shards)
            // must see that they were.
            if served {
                self.server.idle.turned(&self.beat);
            }
            self.resume_accepting();
            if self
                .next_idle_sweep_ms
                .is_some_and(|at| crate::conn_table::now_ms() >= at)
            {
                self.next_idle_sweep_ms = self.close_idle();
            }
        }
        self.finish();
    }

    /// Shutdown: stop accepting, send every connection what it is owed (within a bound), close.
    fn finish(&mut self) {
        for l in self.listeners.iter() {
            let _ = self.epoll.remove(l.as_raw_fd());
        }
        // Connections another worker handed over just now are finished with the rest.
        for handoff in self.balance.close_inbox(self.id) {
            self.admit(handoff.stream, handoff.listener);
        }
        self.answer_last_requests();
        let deadline = Instant::now() + FINISH_TIMEOUT;
        for conn in self.conns.iter_mut().flatten() {
            conn.finish(&self.stats, deadline);
        }
        // Wait (bounded) for the clients to close their side, so none of them is reset with
        // replies still in flight.
        let mut open: Vec<usize> = (0..self.conns.len())
            .filter(|&i| self.conns[i].is_some())
            .collect();
        while !open.is_empty() && Instant::now() < deadline {
            open.retain(|&idx| {
                let done = self
                    .conns
                    .get_mut(idx)
                    .and_then(Option::as_mut)
                    .is_none_or(Conn::discard_input);
                !done
            });
            if !open.is_empty() {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        for idx in 0..self.conns.len() {
            self.close(idx, CloseReason::Shutdown);
        }
        self.buffers.clear(&self.stats);
    }

    /// Shutdown, before the last flush: answers the requests that already arrived, and waits
    /// (briefly) for the first request of a client that connected a moment ago — during a
    /// restart that client reached this process in its last moment and would otherwise be
    /// closed unanswered.
    fn answer_last_requests(&mut self) {
        let grace_end = Instant::now() + FIRST_REQUEST_GRACE;
        loop {
            for idx in 0..self.conns.len() {
                if self.conns[idx].is_some() {
                    self.serve(idx);
                }
            }
            // Connections that yielded (a long pipeline) are served until done or out of time.
            while let Some(idx) = self.ready.pop_front() {
                if Instant::now() >= grace_end {
                    break;
                }
                self.serve(idx);
            }
            let waiting = self
                .conns
                .iter()
                .flatten()
                .any(|c| c.awaiting_first_request(JUST_CONNECTED));
            if !waiting || Instant::now() >= grace_end {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn accept(&mut self, listener: usize) {
        for _ in 0..ACCEPT_BATCH {
            let Some(l) = self.listeners.get(listener) else {
                return;
            };
            match l.accept(self.server.tls.as_ref()) {
                Ok(stream) => {
                    self.server.conns.end_shortage();
                    let worker = self.balance.choose(self.id);
                    if worker == self.id {
                        self.admit(stream, listener);
                    } else if let Err(back) =
                        self.balance.hand_to(worker, Handoff { stream, listener })
                    {
                        // That worker is stopping: serve it here (it is counted again).
                        self.balance.choose_self(self.id);
                        self.admit(back.stream, back.listener);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The peer gave up before we took it: the next one may be fine.
                Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => {}
                Err(e) => {
                    // Out of descriptors (or memory): stop accepting for a moment instead of
                    // spinning on a listener that stays readable.
                    let shortage = matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
                    if !shortage {
                        log::warn!("accept failed: {e}; retrying in a moment");
                    } else if self.server.conns.begin_shortage() {
                        log::warn!("accept failed: {e}; retrying until descriptors are free");
                    }
                    self.pause_accepting();
                    return;
                }
            }
        }
    }

    fn admit(&mut self, mut stream: Stream, listener: usize) {
        let conns = &self.server.conns;
        // The slot is taken before anything else, in one atomic step: two workers admitting at
        // once must not both see room for the last connection.
        let limit = self.server.settings.max_connections as u64;
        let fast_refusal = self.server.settings.maxconns_fast;
        let taken = conns
            .current
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |open| {
                (!fast_refusal || open < limit).then_some(open + 1)
            });
        let Ok(before) = taken else {
            // memcached's fast refusal: tell the client why, then close.
            use std::io::Write;
            let _ = stream.write(b"ERROR Too many open connections\r\n");
            // memcached counts it as rejected, not in total_connections.
            conns.rejected.fetch_add(1, Ordering::Relaxed);
            self.balance.release(self.id);
            return;
        };
        let give_back = |worker: &mut Self| {
            worker.server.conns.current.fetch_sub(1, Ordering::Relaxed);
            worker.balance.release(worker.id);
        };
        if let Err(e) = stream.set_nonblocking(true) {
            log::warn!("could not set up a new connection: {e}");
            give_back(self);
            return;
        }
        let idx = match self.free.pop() {
            Some(idx) => idx,
            None => {
                self.conns.push(None);
                self.conns.len() - 1
            }
        };
        if let Err(e) = self.epoll.add_connection(stream.as_raw_fd(), idx as u64) {
            log::warn!("could not watch a new connection: {e}");
            self.free.push(idx);
            give_back(self);
            return;
        }
        let conns = &self.server.conns;
        let now_open = before + 1;
        conns.total.fetch_add(1, Ordering::Relaxed);
        conns.structures.fetch_max(now_open, Ordering::Relaxed);
        let fd = stream.as_raw_fd();
        log::debug!("<{fd} new auto-negotiating client connection");
        let last_cmd = Arc::new(AtomicU64::new(crate::conn_table::coarse_now_ms()));
        if self.next_idle_sweep_ms.is_none() {
            self.next_idle_sweep_ms = self
                .idle_limit_ms()
                .map(|limit| crate::conn_table::coarse_now_ms() + limit + 1);
        }
        let listen_addr = self
            .listeners
            .get(listener)
            .map_or_else(String::new, Listener::table_addr);
        // Asked once: after a reset the socket no longer knows its peer, and the close is logged.
        let peer = stream.tcp().and_then(|s| s.peer_addr().ok());
        let addr = stream.table_addr(peer);
        self.server.conn_table.insert(
            fd,
            ConnEntry {
                kind: ConnKind::Client { listen_addr },
                addr,
                last_cmd: Arc::clone(&last_cmd),
            },
        );
        crate::watch::conn_new(fd, peer, stream.is_unix());
        self.conns[idx] = Some(Conn::new(stream, peer, last_cmd));
        // The first edge may already have passed: serve at once.
        self.serve(idx);
    }

    fn serve(&mut self, idx: usize) {
        let Some(conn) = self.conns.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        let handler = Handler::new(&self.server, &self.stats);
        match conn.drive(
            &handler,
            &self.stats,
            self.server.settings.reqs_per_event,
            &mut self.buffers,
        ) {
            Drive::Wait => {}
            Drive::Yield => {
                if !self.ready.contains(&idx) {
                    self.ready.push_back(idx);
                }
            }
            Drive::Close(reason) => self.close(idx, reason),
            Drive::Watch(kinds) => {
                // The logger owns the socket from now on. As in memcached it still counts as a
                // connection (`conn_watch` in `stats conns`) until the watcher goes.
                if let Some(mut conn) = self.conns.get_mut(idx).and_then(Option::take) {
                    let fd = conn.stream().as_raw_fd();
                    conn.uncount_buffers(&self.stats);
                    let _ = self.epoll.remove(fd);
                    self.free.push(idx);
                    self.balance.release(self.id);
                    self.server.conn_table.set_watching(fd);
                    let server = Arc::clone(&self.server);
                    let gone = crate::watch::Gone(Box::new(move || {
                        server.conn_table.remove(fd);
                        server.conns.current.fetch_sub(1, Ordering::Relaxed);
                    }));
                    let (stream, unsent) = conn.into_watcher();
                    crate::watch::adopt(Box::new(stream), kinds, unsent, gone);
                }
            }
        }
    }

    fn close(&mut self, idx: usize, reason: CloseReason) {
        if let Some(conn) = self.detach(idx) {
            // A descriptor is free: try accepting again at once (memcached re-enables its
            // listeners on every close).
            self.server.conns.end_shortage();
            if self.accept_paused_until.is_some() {
                self.accept_paused_until = Some(Instant::now());
            }
            let fd = conn.stream().as_raw_fd();
            log::debug!("<{fd} connection closed.");
            crate::watch::conn_close(fd, conn.peer(), conn.stream().is_unix(), reason);
        }
    }

    /// Takes a connection out of this worker's care (and out of `stats conns` and the counts).
    fn detach(&mut self, idx: usize) -> Option<Conn> {
        let mut conn = self.conns.get_mut(idx).and_then(Option::take)?;
        let fd = conn.stream().as_raw_fd();
        self.server.conn_table.remove(fd);
        conn.uncount_buffers(&self.stats);
        let _ = self.epoll.remove(fd);
        self.server.conns.current.fetch_sub(1, Ordering::Relaxed);
        self.free.push(idx);
        self.balance.release(self.id);
        Some(conn)
    }

    /// `-o idle_timeout`: closes the connections quiet for longer, and returns when the next
    /// of the others would have been (`None` if none is left).
    fn close_idle(&mut self) -> Option<u64> {
        let limit = self.idle_limit_ms()?;
        // The time the deadline was computed against (up to 50 ms ahead of the coarse one the
        // connections record): with the coarse one a connection due now would not be, and the
        // worker would spin until it was.
        let now = crate::conn_table::now_ms();
        let mut idle = Vec::new();
        let mut next: Option<u64> = None;
        for (i, conn) in self.conns.iter().enumerate() {
            let Some(conn) = conn else { continue };
            let quiet_until = conn.last_active_ms().saturating_add(limit);
            if now > quiet_until {
                idle.push(i);
            } else {
                next = Some(next.map_or(quiet_until, |n| n.min(quiet_until)));
            }
        }
        for idx in idle {
            log::debug!("closing idle connection");
            self.stats.idle_kicks.incr();
            self.close(idx, CloseReason::IdleTimeout);
        }
        next.map(|at| at + 1)
    }

    /// `-o idle_timeout` in milliseconds, `None` when it is off.
    fn idle_limit_ms(&self) -> Option<u64> {
        let secs = self.server.settings.idle_timeout;
        (secs > 0).then(|| u64::from(secs) * 1000)
    }

    fn pause_accepting(&mut self) {
        if self.accept_paused_until.is_none() {
            for l in self.listeners.iter() {
                let _ = self.epoll.remove(l.as_raw_fd());
            }
        }
        self.accept_paused_until = Some(Instant::now() + ACCEPT_BACKOFF);
    }

    fn resume_accepting(&mut self) {
        if let Some(until) = self.accept_paused_until {
            if Instant::now() >= until {
                self.accept_paused_until = None;
                for (i, l) in self.listeners.iter().enumerate() {
                    if let Err(e) = self
                        .epoll
                        .add_listener(l.as_raw_fd(), LISTENER_TOKEN_BASE + i as u64)
                    {
                        log::error!("could not resume accepting: {e}");
                    }
                }
            }
        }
    }
}
