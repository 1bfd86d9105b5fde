//! The logger thread: formats queued events and writes them to the watchers.

use std::io::{self, Read, Write};
use std::mem;
use std::sync::atomic::Ordering;
use std::sync::{Condvar, Mutex, Once};
use std::time::{Duration, Instant};

use super::format::format_record;
use super::{lock, release, NewWatcher, Queue, LOGGER};

/// How often the thread looks for events while someone watches. Events wait at most this long.
const POLL_INTERVAL: Duration = Duration::from_millis(10);
/// Room kept for a `skipped=N` line in front of the next line (memcached keeps 128 bytes).
const SKIP_LINE_ROOM: usize = 128;

/// Rounds the thread has completed (take the queue, deliver it, write to the watchers).
static ROUNDS: Mutex<u64> = Mutex::new(0);
/// Signalled at the end of every round.
static ROUND_DONE: Condvar = Condvar::new();

/// Waits until everything queued before the call has been delivered and written as far as
/// the sockets take it, or `limit` has passed. Two rounds: the one under way may have taken the
/// queue before the last events arrived; the next takes them.
pub(super) fn settle(limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut rounds = lock(&ROUNDS);
    let target = *rounds + 2;
    // Once nobody watches there is nothing to deliver, and an idle logger completes no rounds.
    while *rounds < target && LOGGER.reserved.load(Ordering::Acquire) > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        // Waking the thread spares waiting out its poll interval.
        LOGGER.wake.notify_one();
        rounds = ROUND_DONE
            .wait_timeout(rounds, left)
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0;
    }
}

/// Starts the thread the first time a watcher arrives.
pub(super) fn ensure_started() {
    static START: Once = Once::new();
    START.call_once(|| {
        let spawned = std::thread::Builder::new().name("mc-log".into()).spawn(run);
        if let Err(e) = spawned {
            log::error!("could not start the watch logger thread: {e}");
        }
    });
}

/// A connection receiving events.
#[derive(Debug)]
struct Watcher {
    stream: Box<dyn super::WatcherStream>,
    kinds: u16,
    min_gid: u64,
    /// Lines not yet written, from `written` on.
    buf: Vec<u8>,
    written: usize,
    /// Lines lost to a full buffer since the last one that fitted.
    skipped: u64,
    gone: Option<super::Gone>,
}

impl Watcher {
    fn new(w: NewWatcher) -> Watcher {
        let mut buf = w.unsent;
        buf.extend_from_slice(b"OK\r\n");
        Watcher {
            stream: w.stream,
            kinds: w.kinds,
            min_gid: w.min_gid,
            buf,
            written: 0,
            skipped: 0,
            gone: Some(w.gone),
        }
    }

    /// Queues a line, or counts it as skipped if the buffer is full.
    fn offer(&mut self, line: &str, capacity: usize) {
        if self.buf.len() - self.written + line.len() + SKIP_LINE_ROOM > capacity {
            self.skipped += 1;
            LOGGER.skipped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.skipped > 0 {
            self.buf
                .extend_from_slice(format!("skipped={}\n", self.skipped).as_bytes());
            self.skipped = 0;
        }
        self.buf.extend_from_slice(line.as_bytes());
        LOGGER.sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Writes what it can and notices a closed peer. `false` when the watcher is gone.
    fn service(&mut self) -> bool {
        while self.written < self.buf.len() {
            match self.stream.write(&self.buf[self.written..]) {
                Ok(0) => return false,
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        self.buf.drain(..self.written);
        self.written = 0;
        // TLS may still hold records of what it took.
        if self.stream.flush_pending().is_err() {
            return false;
        }
        // Whatever a watcher sends is ignored; reading tells when it has gone.
        let mut scratch = [0u8; 512];
        loop {
            match self.stream.read(&mut scratch) {
                Ok(0) => return false,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }
}

fn run() {
    let mut watchers: Vec<Watcher> = Vec::new();
    let mut line = String::new();
    loop {
        {
            let mut adopted = lock(&LOGGER.adopted);
            if watchers.is_empty() {
                while adopted.is_empty() {
                    adopted = LOGGER
                        .wake
                        .wait(adopted)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
            } else if adopted.is_empty() {
                adopted = LOGGER
                    .wake
                    .wait_timeout(adopted, POLL_INTERVAL)
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0;
            }
            for w in adopted.drain(..) {
                LOGGER.watchers.fetch_add(1, Ordering::Relaxed);
                watchers.push(Watcher::new(w));
            }
        }
        let queue = mem::take(&mut *lock(&LOGGER.queue));
        deliver(queue, &mut watchers, &mut line);
        watchers.retain_mut(|w| {
            let alive = w.service();
            if !alive {
                LOGGER.watchers.fetch_sub(1, Ordering::Relaxed);
                release();
                if let Some(gone) = w.gone.take() {
                    (gone.0)();
                }
            }
            alive
        });
        // Under the `adopted` lock, so a watcher being handed over keeps its kinds on.
        let adopted = lock(&LOGGER.adopted);
        let kinds = watchers
            .iter()
            .map(|w| w.kinds)
            .chain(adopted.iter().map(|w| w.kinds))
            .fold(0, |a, k| a | k);
        LOGGER.kinds.0.store(kinds, Ordering::Relaxed);
        drop(adopted);
        *lock(&ROUNDS) += 1;
        ROUND_DONE.notify_all();
    }
}

/// Formats each queued event once and offers it to the watchers that asked for its kind.
fn deliver(queue: Queue, watchers: &mut [Watcher], line: &mut String) {
    let capacity = LOGGER.watcher_buf.load(Ordering::Relaxed);
    for record in &queue.records {
        line.clear();
        for w in watchers.iter_mut() {
            if record.kind & w.kinds == 0 || record.gid <= w.min_gid {
                continue;
            }
            if line.is_empty() {
                format_record(record, line);
            }
            w.offer(line, capacity);
        }
    }
}
