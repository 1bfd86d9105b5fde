//! Per-thread counters, summed only when a client asks for `stats`.
//!
//! Each worker thread owns one [`ThreadStats`] and is its only writer, so an increment is a
//! relaxed load and store on a cache line no other thread writes: no lock and no atomic
//! read-modify-write on the hot path. Readers (the `stats` command, the status line) sum every
//! thread's counters. `stats reset` does not write the counters (that would race the owner);
//! it records a baseline that later reports subtract.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::sync::lock;

mod prefix;
pub use prefix::PrefixStats;

/// memcached's `MAX_NUMBER_OF_SLAB_CLASSES`: class ids are 1..=63.
pub const MAX_CLASSES: usize = 64;

macro_rules! counters {
    ($(#[$meta:meta])* $name:ident, $snap:ident { $($(#[$fmeta:meta])* $field:ident),* $(,)? }
     $(extra { $($(#[$xmeta:meta])* $xfield:ident : $xty:ty),* $(,)? })?) => {
        $(#[$meta])*
        #[derive(Debug, Default)]
        #[repr(align(128))]
        pub struct $name {
            $($(#[$fmeta])* #[doc = concat!("memcached's `", stringify!($field), "` counter.")] pub $field: Counter,)*
            $($($(#[$xmeta])* pub $xfield: $xty,)*)?
        }

        /// A point-in-time copy of the counters, as plain numbers.
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
        pub struct $snap {
            $($(#[$fmeta])* #[doc = concat!("memcached's `", stringify!($field), "` counter.")] pub $field: u64,)*
        }

        impl $name {
            /// Copies every counter.
            pub fn snapshot(&self) -> $snap {
                $snap { $($field: self.$field.get(),)* }
            }
        }

        impl $snap {
            /// Adds `other` field by field (used to sum threads).
            pub fn add(&mut self, other: &$snap) {
                $(self.$field = self.$field.wrapping_add(other.$field);)*
            }

            /// Subtracts a baseline field by field (used by `stats reset`).
            pub fn sub(&mut self, base: &$snap) {
                $(self.$field = self.$field.wrapping_sub(base.$field);)*
            }
        }
    };
}

/// A counter with a single writer thread.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one. Only the owning thread calls this, so load + store cannot lose an update.
    #[inline]
    pub fn incr(&self) {
        self.add(1);
    }

    /// Adds `n`. Only the owning thread calls this.
    #[inline]
    pub fn add(&self, n: u64) {
        let v = self.0.load(Ordering::Relaxed);
        self.0.store(v.wrapping_add(n), Ordering::Relaxed);
    }

    /// Adds a possibly negative amount (for gauges such as buffer bytes). Only the owning
    /// thread calls this.
    #[inline]
    pub fn adjust(&self, delta: i64) {
        self.add(delta as u64);
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

counters!(
    /// The counters one worker thread keeps; names follow memcached's `stats` fields.
    ThreadStats, ThreadStatsSnapshot {
        get_cmds, get_hits, get_misses, get_expired, get_flushed,
        touch_cmds, touch_hits, touch_misses,
        set_cmds,
        delete_hits, delete_misses,
        incr_hits, incr_misses, decr_hits, decr_misses,
        cas_hits, cas_misses, cas_badval,
        flush_cmds, meta_cmds,
        store_too_large, store_no_memory,
        auth_cmds, auth_errors,
        idle_kicks,
        bytes_read, bytes_written,
        conn_yields,
        read_buf_count, read_buf_bytes, read_buf_bytes_free,
        response_obj_count, response_obj_bytes,
    }
    extra {
        /// Per slab class operation counters (memcached's `slab_stats`), for `stats slabs`.
        classes: ClassOpsTable,
        /// The connection the thread is serving now, for the `cfd=` of the `watch` events it
        /// causes.
        client_fd: ClientFd,
        /// The thread's hot key sampler (`stats hotkeys`).
        hot: crate::hotkeys::Recorder,
    }
);

counters!(
    /// Operation counters of one slab class on one thread.
    ClassOps, ClassOpsSnapshot {
        get_hits, set_cmds, delete_hits, incr_hits, decr_hits, cas_hits, cas_badval, touch_hits,
        hits_to_hot, hits_to_warm, hits_to_cold, hits_to_temp,
    }
);

/// The descriptor of the connection a worker is serving (`cfd=` in `watch` lines). Written by
/// its worker only, read by that worker only: it travels with the thread's counters so that
/// the code far from the socket (the cache) can name the client without a global.
#[derive(Debug, Default)]
pub struct ClientFd(std::sync::atomic::AtomicI32);

impl ClientFd {
    /// The worker now serves `fd`.
    #[inline]
    pub fn set(&self, fd: i32) {
        self.0.store(fd, Ordering::Relaxed);
    }

    /// The connection being served.
    #[inline]
    pub fn get(&self) -> i32 {
        self.0.load(Ordering::Relaxed)
    }
}

/// One [`ClassOps`] per slab class id.
#[derive(Debug)]
pub struct ClassOpsTable(Box<[ClassOps]>);

impl Default for ClassOpsTable {
    fn default() -> Self {
        ClassOpsTable((0..MAX_CLASSES).map(|_| ClassOps::default()).collect())
    }
}

impl ClassOpsTable {
    /// The counters of a class (ids out of range share the last slot, which no class uses).
    #[inline]
    pub fn class(&self, class: usize) -> &ClassOps {
        &self.0[class.min(self.0.len() - 1)]
    }
}

/// Every thread's counters, and the baseline `stats reset` set.
#[derive(Debug, Default)]
pub struct StatsRegistry {
    threads: Mutex<Vec<Arc<ThreadStats>>>,
    baseline: Mutex<ThreadStatsSnapshot>,
    class_baseline: Mutex<Vec<ClassOpsSnapshot>>,
}

impl StatsRegistry {
    /// Creates the counters for one more thread.
    pub fn register(&self) -> Arc<ThreadStats> {
        let stats = Arc::new(ThreadStats::default());
        lock(&self.threads).push(Arc::clone(&stats));
        stats
    }

    /// The sum over every thread, less the baseline of the last `stats reset`.
    pub fn totals(&self) -> ThreadStatsSnapshot {
        let mut sum = ThreadStatsSnapshot::default();
        for t in lock(&self.threads).iter() {
            sum.add(&t.snapshot());
        }
        sum.sub(&lock(&self.baseline));
        sum
    }

    /// One slab class's counters summed over threads, less the last reset's baseline.
    pub fn class_totals(&self, class: usize) -> ClassOpsSnapshot {
        let mut sum = self.class_raw(class);
        if let Some(base) = lock(&self.class_baseline).get(class) {
            sum.sub(base);
        }
        sum
    }

    fn class_raw(&self, class: usize) -> ClassOpsSnapshot {
        let mut sum = ClassOpsSnapshot::default();
        for t in lock(&self.threads).iter() {
            sum.add(&t.classes.class(class).snapshot());
        }
        sum
    }

    /// `stats hotkeys`: the hottest keys over every thread's samples.
    pub fn hot_keys(
        &self,
        metric: crate::hotkeys::Metric,
        window: crate::hotkeys::Window,
        now: crate::cache::RelTime,
        sample: u32,
    ) -> crate::hotkeys::Report {
        let threads = lock(&self.threads).clone();
        crate::hotkeys::report(threads.iter().map(|t| &t.hot), metric, window, now, sample)
    }

    /// Forgets every thread's hot key samples.
    pub fn clear_hot_keys(&self) {
        for t in lock(&self.threads).iter() {
            t.hot.clear();
        }
    }

    /// `stats reset`: from now on report counts from zero.
    pub fn reset(&self) {
        let mut sum = ThreadStatsSnapshot::default();
        for t in lock(&self.threads).iter() {
            sum.add(&t.snapshot());
        }
        // Gauges (buffers held now) are not counts since the reset: a baseline would make them
        // wrap below zero once the buffers held at the reset are given back.
        sum.read_buf_count = 0;
        sum.read_buf_bytes = 0;
        sum.read_buf_bytes_free = 0;
        sum.response_obj_count = 0;
        sum.response_obj_bytes = 0;
        *lock(&self.baseline) = sum;
        let classes = (0..MAX_CLASSES).map(|c| self.class_raw(c)).collect();
        *lock(&self.class_baseline) = classes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_sum_threads_and_reset_starts_from_zero() {
        let reg = StatsRegistry::default();
        let a = reg.register();
        let b = reg.register();
        a.get_cmds.add(3);
        b.get_cmds.add(4);
        b.bytes_read.add(10);
        assert_eq!(reg.totals().get_cmds, 7);
        reg.reset();
        assert_eq!(reg.totals().get_cmds, 0);
        a.get_cmds.incr();
        let t = reg.totals();
        assert_eq!(t.get_cmds, 1);
        assert_eq!(t.bytes_read, 0);
    }

    #[test]
    fn reset_leaves_the_buffer_gauges_alone() {
        let reg = StatsRegistry::default();
        let a = reg.register();
        a.read_buf_count.adjust(2);
        a.read_buf_bytes.adjust(32768);
        a.response_obj_bytes.adjust(100);
        reg.reset();
        assert_eq!(reg.totals().read_buf_bytes, 32768);
        a.read_buf_count.adjust(-2);
        a.read_buf_bytes.adjust(-32768);
        a.response_obj_bytes.adjust(-100);
        let t = reg.totals();
        assert_eq!(
            (t.read_buf_count, t.read_buf_bytes, t.response_obj_bytes),
            (0, 0, 0)
        );
    }
}
