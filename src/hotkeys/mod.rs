//! Hot keys: which keys take the most reads, writes and bytes right now (`stats hotkeys`).
//!
//! Each worker samples about 1 request in N (a random gap, so that no periodic workload hides
//! from it) into [`SpaceSaving`] sketches kept per second and per ten seconds; a sampled
//! request counts N, so the sketches estimate whole traffic. A report merges the sketches of
//! every worker for the last complete 1, 10 or 60 seconds. Nothing runs in the background: the
//! buckets turn over when a sampled request finds its second is a new one, and a report reads
//! only buckets whose time is in its window, so an idle server does no work for this.

mod space_saving;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

pub use space_saving::{key_hash, merge, Merged, SpaceSaving, K};

use crate::cache::RelTime;
use crate::sync::lock;

/// The sampling period when none is given: 1 request in 100.
pub const DEFAULT_SAMPLE: u32 = 100;

/// The largest sampling period `hotkeys sample` and `-o hotkeys` accept.
pub const MAX_SAMPLE: u32 = 1_000_000;

/// A sampling period as `-o hotkeys=N` and `hotkeys sample N` take it: 0 to [`MAX_SAMPLE`]
/// (0 turns sampling off; the command refuses it).
pub fn parse_sample(text: &[u8]) -> Option<u32> {
    crate::numparse::safe_strtoull(text)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|&n| n <= MAX_SAMPLE)
}

/// What a key is ranked by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Retrievals (get, gets, gat, gats, mg, binary gets), hits and misses.
    Reads,
    /// Changes (storage commands, delete, touch, incr, decr and their meta and binary forms).
    Writes,
    /// Key and value bytes received and sent.
    Bytes,
}

impl Metric {
    /// The metric a `stats hotkeys` argument names.
    pub fn parse(name: &[u8]) -> Option<Metric> {
        match name {
            b"reads" => Some(Metric::Reads),
            b"writes" => Some(Metric::Writes),
            b"bytes" => Some(Metric::Bytes),
            _ => None,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The stretch of time a report covers: the last complete second, ten seconds, or minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The last complete second.
    Second,
    /// The last ten complete seconds.
    TenSeconds,
    /// The last six complete ten-second periods.
    Minute,
}

impl Window {
    /// The window a `stats hotkeys` argument names (`1s`, `10s`, `60s`).
    pub fn parse(name: &[u8]) -> Option<Window> {
        match name {
            b"1s" => Some(Window::Second),
            b"10s" => Some(Window::TenSeconds),
            b"60s" => Some(Window::Minute),
            _ => None,
        }
    }

    /// Its length in seconds.
    pub fn seconds(self) -> u32 {
        match self {
            Window::Second => 1,
            Window::TenSeconds => 10,
            Window::Minute => 60,
        }
    }
}

/// Whether hot keys are sampled, and how often: shared by every worker.
#[derive(Debug)]
pub struct Switch {
    /// 1 request in this many is sampled; 0 when off.
    sample: AtomicU32,
    /// The period `hotkeys on` restores.
    period: AtomicU32,
    /// What `watch hotkeys` last reported.
    pub entrants: Entrants,
}

impl Switch {
    /// Sampling 1 request in `sample`, or off for 0.
    pub fn new(sample: u32) -> Switch {
        Switch {
            sample: AtomicU32::new(sample),
            period: AtomicU32::new(if sample == 0 { DEFAULT_SAMPLE } else { sample }),
            entrants: Entrants::default(),
        }
    }

    /// The sampling period, 0 when off.
    #[inline]
    pub fn sample(&self) -> u32 {
        self.sample.load(Ordering::Relaxed)
    }

    /// The period sampling runs (or would run) at.
    pub fn period(&self) -> u32 {
        self.period.load(Ordering::Relaxed)
    }

    /// `hotkeys on`.
    pub fn on(&self) {
        self.sample.store(self.period(), Ordering::Relaxed);
    }

    /// `hotkeys off`.
    pub fn off(&self) {
        self.sample.store(0, Ordering::Relaxed);
    }

    /// `hotkeys sample N`: sampling on, 1 request in `n`.
    pub fn set_sample(&self, n: u32) {
        self.period.store(n, Ordering::Relaxed);
        self.sample.store(n, Ordering::Relaxed);
    }
}

/// Sketches of one stretch of time, one per metric.
#[derive(Debug, Default)]
struct Bucket {
    /// The second (or ten-second period) counted; buckets of other times are stale.
    at: RelTime,
    metrics: [SpaceSaving; 3],
}

/// The buckets of one worker.
#[derive(Debug)]
struct Buckets {
    /// By second, the current one and the ten before it.
    seconds: Vec<Bucket>,
    /// By ten seconds, the current period and the six before it.
    tens: Vec<Bucket>,
}

const SECOND_BUCKETS: usize = 11;
const TEN_BUCKETS: usize = 7;

impl Default for Buckets {
    fn default() -> Self {
        Buckets {
            seconds: (0..SECOND_BUCKETS).map(|_| Bucket::default()).collect(),
            tens: (0..TEN_BUCKETS).map(|_| Bucket::default()).collect(),
        }
    }
}

/// The bucket for `at` in `ring`, emptied first if it held an earlier time; `None` when it
/// already holds a later one (a sample that raced the turn of a second counts nowhere).
fn bucket_at(ring: &mut [Bucket], at: RelTime) -> Option<&mut Bucket> {
    let len = ring.len();
    let bucket = &mut ring[at as usize % len];
    if bucket.at > at {
        return None;
    }
    if bucket.at != at {
        bucket.at = at;
        for m in &mut bucket.metrics {
            m.clear();
        }
    }
    Some(bucket)
}

/// One worker's sampler: written by its worker, read by reports.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Requests until the next sample (single writer: the worker).
    countdown: AtomicU32,
    /// The sampler's random state (single writer).
    random: AtomicU64,
    buckets: Mutex<Buckets>,
}

impl Recorder {
    /// Counts a request for `key` that moved `bytes` of key and value; `now` gives the server's
    /// relative time. Most calls only count down to the next sample.
    #[inline]
    pub fn record(
        &self,
        switch: &Switch,
        metric: Metric,
        key: &[u8],
        bytes: usize,
        now: impl FnOnce() -> RelTime,
    ) {
        let sample = switch.sample();
        if sample == 0 {
            return;
        }
        let left = self.countdown.load(Ordering::Relaxed);
        if left > 1 {
            self.countdown.store(left - 1, Ordering::Relaxed);
            return;
        }
        self.countdown
            .store(self.next_gap(sample), Ordering::Relaxed);
        self.sampled(metric, key, bytes, u64::from(sample), now());
    }

    /// A gap uniform in 1..=2N-1: 1 request in N on average, at no fixed period.
    fn next_gap(&self, sample: u32) -> u32 {
        let mut x = self.random.load(Ordering::Relaxed);
        if x == 0 {
            // Seeded from the recorder's address: each worker its own sequence.
            x = 0x9E37_79B9_7F4A_7C15 ^ (self as *const Self as u64);
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random.store(x, Ordering::Relaxed);
        let span = u64::from(sample) * 2 - 1;
        (1 + x % span) as u32
    }

    #[cold]
    fn sampled(&self, metric: Metric, key: &[u8], bytes: usize, weight: u64, now: RelTime) {
        let hash = key_hash(key);
        let mut guard = lock(&self.buckets);
        let Buckets { seconds, tens } = &mut *guard;
        for bucket in [bucket_at(seconds, now), bucket_at(tens, now / 10)]
            .into_iter()
            .flatten()
        {
            bucket.metrics[metric.index()].add_hashed(key, hash, weight);
            let byte_weight = weight * bytes as u64;
            bucket.metrics[Metric::Bytes.index()].add_hashed(key, hash, byte_weight);
        }
    }

    /// Forgets everything sampled (`hotkeys off`, so that turning it on again starts afresh).
    pub fn clear(&self) {
        *lock(&self.buckets) = Buckets::default();
    }
}

/// One line of a report: a key, its estimated rate per second, and how far off that may be.
#[derive(Debug, Clone, PartialEq)]
pub struct HotKey {
    /// The key.
    pub key: Vec<u8>,
    /// Estimated requests (or bytes) per second.
    pub rate: f64,
    /// The bound on the estimate's error, per second: the sketches' own bound, plus (when
    /// sampling) four standard deviations of the sampling's.
    pub error: f64,
}

/// What a report found: the hottest keys, and the rate of everything in the window.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Report {
    /// The hottest keys, hottest first, at most [`K`].
    pub keys: Vec<HotKey>,
    /// The estimated rate of all requests (or bytes) of the metric, per second.
    pub total_rate: f64,
}

/// The hottest keys of `recorders` by `metric` over `window`, hottest first, at most [`K`].
pub fn report<'a>(
    recorders: impl IntoIterator<Item = &'a Recorder>,
    metric: Metric,
    window: Window,
    now: RelTime,
    sample: u32,
) -> Report {
    // The times of the buckets the window covers: complete ones only (a minute's buckets are
    // ten seconds each, the others one).
    let wanted = |bucket: &Bucket| -> bool {
        let at = bucket.at;
        match window {
            Window::Second => at + 1 == now,
            Window::TenSeconds => at < now && at + 10 >= now,
            Window::Minute => at < now / 10 && at + 6 >= now / 10,
        }
    };
    let tens = matches!(window, Window::Minute);
    let guards: Vec<_> = recorders.into_iter().map(|r| lock(&r.buckets)).collect();
    let sketches: Vec<&SpaceSaving> = guards
        .iter()
        .flat_map(|b| {
            let ring = if tens { &b.tens } else { &b.seconds };
            ring.iter()
                .filter(move |bucket| bucket.at != 0 && wanted(bucket))
                .map(move |bucket| &bucket.metrics[metric.index()])
        })
        .collect();
    let total: u64 = sketches.iter().map(|s| s.total()).sum();
    let merged = merge(sketches);
    drop(guards);
    let seconds = f64::from(window.seconds());
    let keys = merged
        .into_iter()
        .take(K)
        .map(|m| {
            // A key sampled c times at 1 in N was requested about c·N times, give or take
            // √c·N: the estimate is off by about its weight over √c.
            let sampling = if sample > 1 && m.adds > 0 {
                4.0 * (m.weight - m.error) as f64 / (m.adds as f64).sqrt()
            } else {
                0.0
            };
            HotKey {
                key: m.key,
                rate: m.weight as f64 / seconds,
                error: (m.error as f64 + sampling) / seconds,
            }
        })
        .collect();
    Report {
        keys,
        total_rate: total as f64 / seconds,
    }
}

/// How many of the hottest keys `watch hotkeys` follows.
pub const WATCH_TOP: usize = 10;

/// The share of all traffic a key must take to be reported by `watch hotkeys`: 1%, the
/// threshold twemcache and Pelikan log hot keys above.
pub const WATCH_SHARE: f64 = 0.01;

/// `watch hotkeys`' memory: which keys were among the hottest at the last look, per metric.
#[derive(Debug, Default)]
pub struct Entrants {
    /// The second last looked at.
    last: AtomicU32,
    tops: Mutex<[Vec<Vec<u8>>; 3]>,
}

impl Entrants {
    /// Whether the caller is the one to look at second `now`: the first to ask in a second.
    pub fn due(&self, now: RelTime) -> bool {
        let last = self.last.load(Ordering::Relaxed);
        now > last
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// The keys of `report` now among the [`WATCH_TOP`] hottest with at least [`WATCH_SHARE`]
    /// of the traffic (less their error bound) that were not at the last look, with their ranks from 1; remembers the
    /// new top.
    pub fn entered(&self, metric: Metric, report: &Report) -> Vec<(usize, HotKey)> {
        let threshold = report.total_rate * WATCH_SHARE;
        let top: Vec<(usize, &HotKey)> = report
            .keys
            .iter()
            .take(WATCH_TOP)
            .enumerate()
            // Certainly above the threshold: its rate less the bound on its error.
            .filter(|(_, k)| k.rate > 0.0 && k.rate - k.error >= threshold)
            .map(|(i, k)| (i + 1, k))
            .collect();
        let mut tops = lock(&self.tops);
        let before = &mut tops[metric.index()];
        let entered = top
            .iter()
            .filter(|(_, k)| !before.contains(&k.key))
            .map(|&(rank, k)| (rank, k.clone()))
            .collect();
        *before = top.into_iter().map(|(_, k)| k.key.clone()).collect();
        entered
    }
}

#[cfg(test)]
mod tests;
