//! Sleeping while no client asks anything.
//!
//! The daemon sits idle on many machines, and every wake-up of an idle process costs power and
//! the density of the machines it shares. So its threads wake only for work: the workers block
//! in `epoll_wait` without a timeout, and the background threads (the LRU maintainer and
//! crawler, the systemd notifier) park here once they see no request arrive, until the next
//! one does — or until a timer they truly need (the next item to expire, the watchdog).
//!
//! Whether requests arrive is read from counters each serving thread bumps on every turn of
//! its loop ([`Beat`], on a cache line of its own), never a shared one. A parking thread
//! announces itself in `parked` and then looks at the counters once more; a serving thread
//! bumps its counter and then looks at `parked`. Both sides are sequentially consistent, so
//! at least one of them sees the other: either the parker sees the new turn and does not
//! sleep, or the serving thread sees the parker and wakes it. No wake-up is lost, and while
//! nothing is parked a turn costs a store and a load of a line no one writes.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::sync::lock;

/// A serving thread's counters, alone on their cache line(s) so that bumping them does not
/// evict another thread's data.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct Beat {
    /// Turns that served something: what tells the background threads that requests come.
    turns: AtomicU64,
    /// Every wake-up, a watchdog's included: what tells a watchdog that the thread is alive.
    wakes: AtomicU64,
}

impl Beat {
    /// How many turns the thread has served something in.
    pub fn turns(&self) -> u64 {
        self.turns.load(Ordering::SeqCst)
    }

    /// How many times the thread has woken.
    pub fn wakes(&self) -> u64 {
        self.wakes.load(Ordering::Relaxed)
    }

    /// Counts a wake-up (only the owning thread calls it).
    #[inline]
    pub fn woke(&self) {
        let wakes = self.wakes.load(Ordering::Relaxed);
        self.wakes.store(wakes.wrapping_add(1), Ordering::Relaxed);
    }
}

/// The serving threads' turn counters and the background threads parked until one moves.
#[derive(Debug, Default)]
pub struct Idle {
    beats: Mutex<Vec<Arc<Beat>>>,
    /// Threads parked in [`Idle::park`], or about to be.
    parked: AtomicU32,
    /// Bumped by every wake-up, so a waiter tells a wake-up from a spurious return.
    wakeups: Mutex<u64>,
    /// Set (under `wakeups`' lock) by [`Idle::stop`]: no thread waits any more.
    stopped: AtomicBool,
    cond: Condvar,
}

impl Idle {
    /// A counter for a new serving thread to bump with [`Idle::turned`].
    pub fn register(&self) -> Arc<Beat> {
        let beat = Arc::new(Beat::default());
        lock(&self.beats).push(Arc::clone(&beat));
        beat
    }

    /// A serving thread's turn that served something: counts it and wakes whatever parked
    /// while it was idle.
    #[inline]
    pub fn turned(&self, beat: &Beat) {
        let turns = beat.turns.load(Ordering::Relaxed);
        beat.turns.store(turns.wrapping_add(1), Ordering::SeqCst);
        if self.parked.load(Ordering::SeqCst) != 0 {
            self.wake_all();
        }
    }

    /// Every serving thread's turns, summed: a sum that has not moved means no request came.
    pub fn turns(&self) -> u64 {
        lock(&self.beats)
            .iter()
            .fold(0u64, |sum, b| sum.wrapping_add(b.turns()))
    }

    /// Sleeps until a serving thread turns after [`Idle::turns`] returned `seen`, `timeout`
    /// passes (`None`: no timeout), or [`Idle::wake_all`]. Returns at once if one already has.
    pub fn park(&self, seen: u64, timeout: Option<Duration>) {
        let mut wakeups = lock(&self.wakeups);
        self.parked.fetch_add(1, Ordering::SeqCst);
        if self.turns() == seen {
            let before = *wakeups;
            wakeups = self.wait(wakeups, before, timeout);
        }
        self.parked.fetch_sub(1, Ordering::SeqCst);
        drop(wakeups);
    }

    /// Sleeps for `timeout` or until [`Idle::wake_all`] (at shutdown); requests do not wake it.
    pub fn sleep(&self, timeout: Duration) {
        let wakeups = lock(&self.wakeups);
        let before = *wakeups;
        drop(self.wait(wakeups, before, Some(timeout)));
    }

    /// Shutdown: wakes every waiting thread, and from now on [`Idle::park`] and [`Idle::sleep`]
    /// return at once — a thread that looked at its shutdown flag just before it was set does
    /// not then sleep through the shutdown.
    pub fn stop(&self) {
        let mut wakeups = lock(&self.wakeups);
        self.stopped.store(true, Ordering::SeqCst);
        *wakeups = wakeups.wrapping_add(1);
        self.cond.notify_all();
    }

    /// Wakes every thread in [`Idle::park`] or [`Idle::sleep`]: at the first request after an
    /// idle spell.
    #[cold]
    pub fn wake_all(&self) {
        let mut wakeups = lock(&self.wakeups);
        *wakeups = wakeups.wrapping_add(1);
        self.cond.notify_all();
    }

    fn wait<'a>(
        &self,
        mut wakeups: std::sync::MutexGuard<'a, u64>,
        before: u64,
        timeout: Option<Duration>,
    ) -> std::sync::MutexGuard<'a, u64> {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        while *wakeups == before && !self.stopped.load(Ordering::SeqCst) {
            wakeups = match deadline {
                None => self
                    .cond
                    .wait(wakeups)
                    .unwrap_or_else(|poisoned| poisoned.into_inner()),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    self.cond
                        .wait_timeout(wakeups, left)
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .0
                }
            };
        }
        wakeups
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_turn_wakes_a_parked_thread() {
        let idle = Arc::new(Idle::default());
        let beat = idle.register();
        let seen = idle.turns();
        let parker = {
            let idle = Arc::clone(&idle);
            std::thread::spawn(move || {
                idle.park(seen, None);
                idle.turns()
            })
        };
        while idle.parked.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        idle.turned(&beat);
        assert_eq!(parker.join().ok(), Some(seen + 1));
    }

    #[test]
    fn park_returns_at_once_after_a_turn() {
        let idle = Idle::default();
        let beat = idle.register();
        let seen = idle.turns();
        idle.turned(&beat);
        idle.park(seen, None);
        assert_eq!(idle.turns(), seen + 1);
    }

    #[test]
    fn park_and_sleep_end_at_their_timeout() {
        let idle = Idle::default();
        let _beat = idle.register();
        let t0 = Instant::now();
        idle.park(idle.turns(), Some(Duration::from_millis(20)));
        idle.sleep(Duration::from_millis(20));
        assert!(t0.elapsed() >= Duration::from_millis(40));
    }

    /// Many turns racing one parker that parks again and again: it must never sleep through a
    /// turn (the test would hang on the last park).
    #[test]
    fn no_wakeup_is_lost() {
        let idle = Arc::new(Idle::default());
        let beat = idle.register();
        let rounds = 20_000;
        let parker = {
            let idle = Arc::clone(&idle);
            std::thread::spawn(move || {
                let mut seen = 0;
                while seen < rounds {
                    idle.park(seen, None);
                    seen = idle.turns();
                }
            })
        };
        for _ in 0..rounds {
            idle.turned(&beat);
        }
        assert!(parker.join().is_ok());
    }

    #[test]
    fn after_stop_nothing_sleeps() {
        let idle = Idle::default();
        let _beat = idle.register();
        idle.stop();
        let t0 = Instant::now();
        idle.park(idle.turns(), None);
        idle.sleep(Duration::from_secs(600));
        assert!(t0.elapsed() < Duration::from_secs(60));
    }

    #[test]
    fn wake_all_ends_a_sleep() {
        let idle = Arc::new(Idle::default());
        let sleeper = {
            let idle = Arc::clone(&idle);
            std::thread::spawn(move || idle.sleep(Duration::from_secs(600)))
        };
        // The sleeper may not be waiting yet: wake until it has finished.
        while !sleeper.is_finished() {
            idle.wake_all();
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(sleeper.join().is_ok());
    }
}
