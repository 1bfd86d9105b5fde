//! Spreading connections evenly over the workers.
//!
//! Every worker watches the listeners (`EPOLLEXCLUSIVE`), but the kernel tends to wake the same
//! worker again, and a woken worker accepts a whole burst: 50 clients connecting at once could
//! land 40 on one worker and 10 on the other, leaving one core idle while the other queues. So
//! the worker that accepts a connection gives it to the worker serving the fewest (itself when
//! tied), the way memcached's dispatcher deals connections out round-robin — but by load, so
//! that closed connections are made up for.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::stream::Stream;
use super::sys::Waker;

/// A connection handed from the worker that accepted it to the one that will serve it.
pub struct Handoff {
    pub stream: Stream,
    /// Which listener accepted it (for `stats conns`).
    pub listener: usize,
}

/// One worker's share: how many connections it serves, and its inbox.
#[repr(align(64))] // The counts change on every accept and close: one cache line each.
struct Share {
    serving: AtomicUsize,
    inbox: Mutex<Inbox>,
    waker: Arc<Waker>,
}

/// Connections handed to a worker and not yet taken in.
#[derive(Default)]
struct Inbox {
    handoffs: Vec<Handoff>,
    /// The worker is stopping and takes no more.
    closed: bool,
}

/// The shares of all workers, indexed by worker id.
pub struct Balance {
    shares: Vec<Share>,
}

impl Balance {
    /// One share per worker, each woken through its waker when a connection is handed to it.
    pub fn new(wakers: &[Arc<Waker>]) -> Balance {
        Balance {
            shares: wakers
                .iter()
                .map(|w| Share {
                    serving: AtomicUsize::new(0),
                    inbox: Mutex::new(Inbox::default()),
                    waker: Arc::clone(w),
                })
                .collect(),
        }
    }

    /// Which worker should serve a connection worker `me` just accepted: the one serving the
    /// fewest, `me` when it is among them. The choice is counted at once, so a burst of
    /// accepts alternates.
    pub fn choose(&self, me: usize) -> usize {
        let counts = self
            .shares
            .iter()
            .map(|s| s.serving.load(Ordering::Relaxed));
        let target = least_loaded(me, counts);
        if let Some(share) = self.shares.get(target) {
            share.serving.fetch_add(1, Ordering::Relaxed);
        }
        target
    }

    /// Counts a connection for `me` without choosing (it came back from a stopping worker).
    pub fn choose_self(&self, me: usize) {
        if let Some(share) = self.shares.get(me) {
            share.serving.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Gives an accepted connection to `worker` (chosen by [`Balance::choose`]) and wakes it.
    /// A worker that is stopping takes none: the connection comes back (uncounted there), for
    /// the caller to serve itself. If the worker cannot be woken (its eventfd's counter full:
    /// not in practice), the connection waits in its inbox until the worker next wakes.
    pub fn hand_to(&self, worker: usize, handoff: Handoff) -> Result<(), Handoff> {
        let Some(share) = self.shares.get(worker) else {
            return Err(handoff);
        };
        {
            let mut inbox = lock(&share.inbox);
            if inbox.closed {
                drop(inbox);
                self.release(worker);
                return Err(handoff);
            }
            inbox.handoffs.push(handoff);
        }
        if let Err(e) = share.waker.wake() {
            log::warn!("could not wake worker {worker} for a new connection: {e}");
        }
        Ok(())
    }

    /// The connections handed to `worker` since it last looked.
    pub fn take_inbox(&self, worker: usize) -> Vec<Handoff> {
        self.shares
            .get(worker)
            .map(|share| std::mem::take(&mut lock(&share.inbox).handoffs))
            .unwrap_or_default()
    }

    /// `worker` is stopping: it takes no more connections, and gets those already handed to it
    /// (to finish them with the rest).
    pub fn close_inbox(&self, worker: usize) -> Vec<Handoff> {
        self.shares
            .get(worker)
            .map(|share| {
                let mut inbox = lock(&share.inbox);
                inbox.closed = true;
                std::mem::take(&mut inbox.handoffs)
            })
            .unwrap_or_default()
    }

    /// `worker` no longer serves one of its connections (closed, refused, or handed to the
    /// logger as a watcher).
    pub fn release(&self, worker: usize) {
        if let Some(share) = self.shares.get(worker) {
            // Never below zero, even if a release were counted twice.
            let _ = share
                .serving
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
    }
}

fn lock(inbox: &Mutex<Inbox>) -> std::sync::MutexGuard<'_, Inbox> {
    // An inbox is a plain list: consistent even if a holder panicked.
    inbox
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The index of the smallest count, preferring `me` among equals (no hand-off when it would
/// not even out anything), then the lowest index.
fn least_loaded(me: usize, counts: impl Iterator<Item = usize>) -> usize {
    let mut best: Option<(usize, usize)> = None;
    for (i, n) in counts.enumerate() {
        let better = match best {
            None => true,
            Some((b, bn)) => n < bn || (n == bn && i == me && b != me),
        };
        if better {
            best = Some((i, n));
        }
    }
    best.map_or(me, |(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_fewest_and_keeps_ties_at_home() {
        assert_eq!(least_loaded(0, [3, 2].into_iter()), 1);
        assert_eq!(least_loaded(1, [2, 3].into_iter()), 0);
        assert_eq!(least_loaded(1, [2, 2].into_iter()), 1);
        assert_eq!(least_loaded(0, [2, 2].into_iter()), 0);
        assert_eq!(least_loaded(2, [1, 4, 1, 1].into_iter()), 2);
        assert_eq!(least_loaded(1, [1, 4, 1, 1].into_iter()), 0);
        assert_eq!(least_loaded(0, std::iter::empty()), 0);
    }

    fn two_workers() -> Balance {
        let wakers: Vec<Arc<Waker>> = (0..2)
            .map(|_| Arc::new(Waker::new().expect("eventfd")))
            .collect();
        Balance::new(&wakers)
    }

    #[test]
    fn a_burst_of_accepts_alternates() {
        let balance = two_workers();
        // Worker 0 accepts all 50: they are dealt 25 and 25.
        let chosen: Vec<usize> = (0..50).map(|_| balance.choose(0)).collect();
        assert_eq!(chosen.iter().filter(|&&w| w == 0).count(), 25);
        assert_eq!(chosen[..4], [0, 1, 0, 1]);
        // Worker 1 loses 5: the next five go to it, whoever accepts them.
        for _ in 0..5 {
            balance.release(1);
        }
        assert!((0..5).all(|_| balance.choose(0) == 1));
        assert_eq!(balance.choose(1), 1);
        // Releasing more than was counted stays at zero.
        for _ in 0..100 {
            balance.release(1);
        }
        assert_eq!(balance.choose(0), 1);
    }

    #[test]
    fn a_stopping_worker_takes_no_more() {
        let balance = two_workers();
        assert!(balance.close_inbox(1).is_empty());
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        drop(theirs);
        let handoff = Handoff {
            stream: Stream::Unix(ours),
            listener: 0,
        };
        assert_eq!(balance.choose(0), 0);
        assert_eq!(balance.choose(0), 1);
        let back = balance
            .hand_to(1, handoff)
            .expect_err("worker 1 is stopping");
        assert_eq!(back.listener, 0);
        // Its count was given back: worker 1 is the least loaded again.
        assert_eq!(balance.choose(0), 1);
    }
}
