//! Per-slab-class counters: one shard's (grown as classes are used) and their sums for
//! `stats items`.

/// Per-class counters (for `stats items`).
#[derive(Debug, Default, Clone, Copy)]
pub struct ClassCounters {
    /// Items evicted.
    pub evicted: u64,
    /// Evicted items that had an expiry.
    pub evicted_nonzero: u64,
    /// Seconds since the last evicted item was last accessed.
    pub evicted_time: u32,
    /// Stores refused for want of memory.
    pub outofmemory: u64,
    /// Expired items reclaimed.
    pub reclaimed: u64,
    /// Reclaimed items never read.
    pub expired_unfetched: u64,
    /// Evicted items never read.
    pub evicted_unfetched: u64,
    /// Bytes the class's items occupy (header, key, value): memcached's `mem_requested`.
    pub mem_requested: u64,
    /// Expired items the crawler reclaimed.
    pub crawler_reclaimed: u64,
    /// Items the crawler looked at.
    pub crawler_items_checked: u64,
    /// Items moved from hot or warm to cold.
    pub moves_to_cold: u64,
    /// Items moved to warm.
    pub moves_to_warm: u64,
    /// Active items bumped within warm.
    pub moves_within_lru: u64,
}

impl ClassCounters {
    /// All counters at zero.
    pub(super) const ZERO: ClassCounters = ClassCounters {
        evicted: 0,
        evicted_nonzero: 0,
        evicted_time: 0,
        outofmemory: 0,
        reclaimed: 0,
        expired_unfetched: 0,
        evicted_unfetched: 0,
        mem_requested: 0,
        crawler_reclaimed: 0,
        crawler_items_checked: 0,
        moves_to_cold: 0,
        moves_to_warm: 0,
        moves_within_lru: 0,
    };

    /// Adds another shard's counters (`evicted_time` keeps the most recent, i.e. the largest).
    pub(super) fn add(&mut self, c: &ClassCounters) {
        self.evicted += c.evicted;
        self.evicted_nonzero += c.evicted_nonzero;
        self.evicted_time = self.evicted_time.max(c.evicted_time);
        self.outofmemory += c.outofmemory;
        self.reclaimed += c.reclaimed;
        self.expired_unfetched += c.expired_unfetched;
        self.evicted_unfetched += c.evicted_unfetched;
        self.mem_requested += c.mem_requested;
        self.crawler_reclaimed += c.crawler_reclaimed;
        self.crawler_items_checked += c.crawler_items_checked;
        self.moves_to_cold += c.moves_to_cold;
        self.moves_to_warm += c.moves_to_warm;
        self.moves_within_lru += c.moves_within_lru;
    }
}

/// One shard's counters per slab class, grown up to a class when it is first counted: all 64
/// classes of all 64 shards would be 425 KB written at start, a tenth of an idle daemon's RSS,
/// where most caches use a handful of classes.
#[derive(Debug, Default)]
pub(super) struct ShardClasses(Vec<ClassCounters>);

impl ShardClasses {
    pub(super) fn iter(&self) -> impl Iterator<Item = &ClassCounters> {
        self.0.iter()
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut ClassCounters> {
        self.0.iter_mut()
    }
}

impl std::ops::Index<usize> for ShardClasses {
    type Output = ClassCounters;

    fn index(&self, class: usize) -> &ClassCounters {
        self.0.get(class).unwrap_or(&ClassCounters::ZERO)
    }
}

impl std::ops::IndexMut<usize> for ShardClasses {
    fn index_mut(&mut self, class: usize) -> &mut ClassCounters {
        if class >= self.0.len() {
            self.0.resize(class + 1, ClassCounters::ZERO);
        }
        &mut self.0[class]
    }
}
