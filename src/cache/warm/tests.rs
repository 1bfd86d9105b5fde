use super::*;
use crate::cache::{StoreMode, StoreOutcome};
use crate::stats::ThreadStats;

const MB: usize = 1024 * 1024;

fn open_with(file: &File, config: &CacheConfig) -> (Cache, WarmStart) {
    Cache::reopen(config, Arc::new(Clock::new()), file).expect("map the file")
}

fn open(file: &File) -> (Cache, WarmStart) {
    open_with(file, &CacheConfig::with_memory(16 * MB))
}

fn set(c: &Cache, key: &str, data: &[u8]) -> u64 {
    match c.store(
        &ThreadStats::default(),
        StoreMode::Set,
        key.as_bytes(),
        5,
        0,
        data,
    ) {
        StoreOutcome::Stored { cas, .. } => cas,
        other => panic!("storing {key}: {other:?}"),
    }
}

fn get(c: &Cache, key: &str) -> Option<(Vec<u8>, u32, u64)> {
    c.get(&ThreadStats::default(), key.as_bytes(), None, |i| {
        (i.data.to_vec(), i.flags, i.cas)
    })
}

/// A cache with a few items, one deleted after the others (so the highest CAS handed out
/// belongs to no item).
fn filled(file: &File) -> (Cache, u64) {
    let (c, start) = open(file);
    assert_eq!(start, WarmStart::Empty(EmptyBecause::NoCache));
    for i in 0..100 {
        set(&c, &format!("k{i}"), format!("value {i}").as_bytes());
    }
    let gone = set(&c, "gone", b"x");
    c.delete(&ThreadStats::default(), b"gone");
    (c, gone)
}

#[test]
fn a_clean_stop_keeps_every_item_and_the_cas_counter_continues_above_it() {
    let file = arena::memfd("warm-clean", false).expect("memfd");
    let (c, highest) = filled(&file);
    let before: Vec<_> = (0..100).map(|i| get(&c, &format!("k{i}"))).collect();
    assert!(c.mark_clean_stop().expect("mark"));
    drop(c);

    let (c, start) = open(&file);
    assert_eq!(
        start,
        WarmStart::Restored(Restored {
            items: 100,
            dropped: 0
        })
    );
    let after: Vec<_> = (0..100).map(|i| get(&c, &format!("k{i}"))).collect();
    assert_eq!(after, before, "values, flags and CAS");
    assert_eq!(get(&c, "gone"), None);
    assert!(
        set(&c, "new", b"n") > highest,
        "CAS continues above every one handed out"
    );
}

#[test]
fn a_run_that_did_not_mark_its_stop_leaves_nothing_to_read() {
    let file = arena::memfd("warm-unclean", false).expect("memfd");
    let (c, _) = filled(&file);
    // As kill -9 leaves it: no mark.
    drop(c);
    let (c, start) = open(&file);
    assert_eq!(start, WarmStart::Empty(EmptyBecause::UncleanStop));
    assert_eq!(get(&c, "k1"), None);
    assert_eq!(c.stats().curr_items, 0);

    // A restored run reads as running again until it stops cleanly itself.
    set(&c, "a", b"1");
    assert!(c.mark_clean_stop().expect("mark"));
    drop(c);
    let (c, start) = open(&file);
    assert!(matches!(start, WarmStart::Restored(r) if r.items == 1));
    drop(c);
    let (_, start) = open(&file);
    assert_eq!(start, WarmStart::Empty(EmptyBecause::UncleanStop));
}

#[test]
fn other_memory_settings_start_empty() {
    let changes: [fn(&mut CacheConfig); 4] = [
        |c| c.item_size_max = 2 * MB,
        |c| c.use_cas = false,
        |c| {
            c.slab_classes = crate::cache::SlabClasses::Memcached {
                min_size: 48,
                factor: 1.25,
            }
        },
        |c| c.memory_limit = 32 * MB,
    ];
    for change in changes {
        let file = arena::memfd("warm-settings", false).expect("memfd");
        let (c, _) = filled(&file);
        assert!(c.mark_clean_stop().expect("mark"));
        drop(c);
        let mut config = CacheConfig::with_memory(16 * MB);
        change(&mut config);
        let (c, start) = open_with(&file, &config);
        assert_eq!(start, WarmStart::Empty(EmptyBecause::SettingsChanged));
        assert_eq!(get(&c, "k1"), None);
    }
}

#[test]
fn a_flush_before_the_stop_stays_done_and_a_delayed_one_still_comes() {
    let file = arena::memfd("warm-flush", false).expect("memfd");
    let (c, _) = filled(&file);
    c.flush_all(0);
    set(&c, "after", b"kept");
    assert!(c.mark_clean_stop().expect("mark"));
    drop(c);
    let (c, start) = open(&file);
    assert!(
        matches!(start, WarmStart::Restored(r) if r.items == 1),
        "{start:?}"
    );
    assert_eq!(get(&c, "k1"), None);
    assert_eq!(get(&c, "after").map(|v| v.0), Some(b"kept".to_vec()));

    // flush_all 100: still to come after the restart.
    c.flush_all(100);
    assert!(c.mark_clean_stop().expect("mark"));
    drop(c);
    let (c, _) = open(&file);
    assert!(get(&c, "after").is_some(), "not yet flushed");
    assert!(c.oldest_live.load(Ordering::Relaxed) > c.clock().now());
}

#[test]
fn anonymous_memory_has_no_stop_to_mark() {
    let c = Cache::new(&CacheConfig::with_memory(4 * MB), Arc::new(Clock::new())).expect("map");
    assert!(!c.mark_clean_stop().expect("nothing to write"));
}
