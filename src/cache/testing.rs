//! Helpers for the cache's unit tests.

use std::sync::Arc;

use super::{Cache, CacheConfig, Clock, StoreMode, StoreOutcome};
use crate::stats::ThreadStats;

pub const MB: usize = 1024 * 1024;

pub fn cache(memory: usize) -> Arc<Cache> {
    let config = CacheConfig::with_memory(memory);
    Arc::new(Cache::new(&config, Arc::new(Clock::new())).expect("map the arena"))
}

pub fn value(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

pub fn set(c: &Cache, key: &[u8], data: &[u8]) {
    let stored = c.store(&ThreadStats::default(), StoreMode::Set, key, 0, 0, data);
    assert!(matches!(stored, StoreOutcome::Stored { .. }), "{stored:?}");
}

pub fn read(c: &Cache, key: &[u8]) -> Option<Vec<u8>> {
    c.get(&ThreadStats::default(), key, None, |item| {
        item.data.to_vec()
    })
}

pub fn used_chunks(c: &Cache) -> usize {
    let largest = c.slabs().table().largest();
    (1..=largest)
        .map(|k| c.slabs().class_stats(k).used_chunks)
        .sum()
}

/// Stores 100 KB values until their class has two pages; returns the class. `k0` is in the
/// first page.
pub fn two_pages(c: &Cache, len: usize) -> usize {
    set(c, b"k0", &value(len, 0));
    let class = class_of(c, b"k0");
    for n in 1u8.. {
        set(c, format!("k{n}").as_bytes(), &value(len, n));
        if c.slabs().class_stats(class).total_pages == 2 {
            break;
        }
    }
    class
}

pub fn class_of(c: &Cache, key: &[u8]) -> usize {
    c.debug_item(&ThreadStats::default(), key, |i| usize::from(i.class()))
        .expect("stored")
}
