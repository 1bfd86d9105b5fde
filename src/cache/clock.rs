//! memcached's notion of time: seconds relative to the process start.
//!
//! Items keep 32-bit relative times instead of 64-bit timestamps. As in memcached, the relative
//! clock starts at 62 (the LRU update interval plus two) so that "0 means never" and small
//! offsets never underflow, and the monotonic clock drives it so that changing the wall clock
//! does not expire or revive items.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the (back-dated) process start.
pub type RelTime = u32;

/// How far back the relative clock starts, as memcached: `ITEM_UPDATE_INTERVAL + 2`.
const START_OFFSET: u32 = 62;

/// Exptimes up to this many seconds are relative; larger ones are unix timestamps.
pub const REALTIME_MAXDELTA: i64 = 60 * 60 * 24 * 30;

/// The server clock.
#[derive(Debug)]
pub struct Clock {
    /// The coarse monotonic clock at the start ([`crate::os::coarse_monotonic`]).
    start: Duration,
    /// Unix time that relative time 0 stands for.
    process_started: i64,
    /// The relative time as last set by [`Clock::tick`]: like memcached's `current_time`,
    /// read on every request instead of asking the kernel each time. Written only when the
    /// second changes, so the workers that tick it share the line read-only nearly always.
    cached: AtomicU32,
    /// Whether something calls [`Clock::tick`]; until then `now` reads the monotonic clock.
    ticking: AtomicBool,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// Starts the clock now.
    pub fn new() -> Self {
        let unix_now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Clock {
            start: crate::os::coarse_monotonic(),
            process_started: unix_now - i64::from(START_OFFSET),
            cached: AtomicU32::new(START_OFFSET),
            ticking: AtomicBool::new(false),
        }
    }

    /// The current relative time: the ticked value once something ticks (each worker does on
    /// every turn of its loop, and each background thread before it works), else read from
    /// the monotonic clock.
    #[inline]
    pub fn now(&self) -> RelTime {
        if self.ticking.load(Ordering::Relaxed) {
            self.cached.load(Ordering::Relaxed)
        } else {
            self.read()
        }
    }

    /// Brings the cached time up to date; from then on [`Clock::now`] returns it. Cheap enough
    /// for every turn of an event loop: one coarse clock read, and a write only when the second
    /// has changed. Never moves the time back when two threads tick at once.
    #[inline]
    pub fn tick(&self) {
        self.tick_at(crate::os::coarse_monotonic());
    }

    /// [`Clock::tick`] with the coarse monotonic time already read.
    #[inline]
    pub fn tick_at(&self, monotonic: Duration) {
        let now = self.relative(monotonic);
        if now > self.cached.load(Ordering::Relaxed) {
            self.cached.fetch_max(now, Ordering::Relaxed);
        }
        if !self.ticking.load(Ordering::Relaxed) {
            self.ticking.store(true, Ordering::Relaxed);
        }
    }

    fn read(&self) -> RelTime {
        self.relative(crate::os::coarse_monotonic())
    }

    fn relative(&self, monotonic: Duration) -> RelTime {
        let secs = monotonic.saturating_sub(self.start).as_secs();
        START_OFFSET.saturating_add(u32::try_from(secs).unwrap_or(u32::MAX - START_OFFSET))
    }

    /// Seconds since start, as `stats uptime` reports it.
    pub fn uptime(&self) -> u32 {
        self.now() - (START_OFFSET - 2)
    }

    /// The unix time now, as `stats time` reports it.
    pub fn unix_now(&self) -> i64 {
        self.process_started + i64::from(self.now())
    }

    /// Unix time of relative time 0.
    pub fn process_started(&self) -> i64 {
        self.process_started
    }

    /// Turns a client's exptime into a relative expiry time, exactly as memcached does: 0 is
    /// never; negative is "already expired"; up to 30 days is relative to now; larger is an
    /// absolute unix time (one in the past means already expired).
    pub fn expiry(&self, exptime: i64) -> RelTime {
        // memcached maps negative times to REALTIME_MAXDELTA + 1, an absolute time long past.
        let exptime = if exptime < 0 {
            REALTIME_MAXDELTA + 1
        } else {
            exptime
        };
        if exptime == 0 {
            return 0;
        }
        if exptime > REALTIME_MAXDELTA {
            if exptime <= self.process_started {
                return 1;
            }
            u32::try_from(exptime - self.process_started).unwrap_or(u32::MAX)
        } else {
            // exptime <= 30 days fits in u32.
            (exptime as u32).saturating_add(self.now())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_follows_memcached_rules() {
        let c = Clock::new();
        let now = c.now();
        assert_eq!(now, 62);
        assert_eq!(c.expiry(0), 0);
        assert_eq!(c.expiry(10), now + 10);
        assert_eq!(c.expiry(-1), 1);
        assert_eq!(c.expiry(1_000_000_000), 1, "absolute time in the past");
        let future = c.unix_now() + 100;
        assert_eq!(c.expiry(future), now + 100);
        assert_eq!(c.uptime(), 2);
    }
}
