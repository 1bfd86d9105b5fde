use std::collections::HashMap;

use super::*;
use crate::cache::{arena, StoreMode, StoreOutcome};
use crate::stats::ThreadStats;

const MB: usize = 1024 * 1024;

fn open(file: &File, memory: usize) -> (Cache, Restored) {
    let config = CacheConfig::with_memory(memory);
    Cache::in_file(&config, Arc::new(Clock::new()), file).expect("map the file")
}

/// Everything a reader sees of an item.
fn read(c: &Cache, key: &[u8]) -> Option<(Vec<u8>, u32, u64)> {
    c.get(&ThreadStats::default(), key, None, |i| {
        (i.data.to_vec(), i.flags, i.cas)
    })
}

fn value(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| b'a' + ((i * 7 + j) % 26) as u8).collect()
}

fn set(c: &Cache, key: &[u8], flags: u32, exptime: RelTime, data: &[u8]) -> u64 {
    match c.store(
        &ThreadStats::default(),
        StoreMode::Set,
        key,
        flags,
        exptime,
        data,
    ) {
        StoreOutcome::Stored { cas, .. } => cas,
        other => panic!("storing {}: {other:?}", String::from_utf8_lossy(key)),
    }
}

#[test]
fn every_item_comes_back_from_its_file_as_it_was() {
    let file = arena::memfd("restore-test", false).expect("memfd");
    let (c, restored) = open(&file, 64 * MB);
    assert_eq!(restored, Restored::default(), "a new file holds nothing");
    let now = c.clock().now();
    let mut want = HashMap::new();
    for i in 0..3000 {
        let key = format!("key:{i}").into_bytes();
        // Sizes over many classes, zero and other flags, with and without a TTL.
        let data = value(i, (i * 37) % 3000);
        let flags = if i % 3 == 0 { 0 } else { i as u32 * 1000 };
        let exptime = if i % 5 == 0 { now + 3600 } else { 0 };
        set(&c, &key, flags, exptime, &data);
    }
    // Chained over the largest class, and replaced, so freed chunks held items.
    set(&c, b"big", 7, 0, &value(1, 900 * 1024));
    set(&c, b"big2", 0, 0, &value(2, 700 * 1024));
    set(&c, b"big2", 0, 0, &value(3, 600 * 1024));
    for i in (0..3000).step_by(4) {
        c.delete(&ThreadStats::default(), format!("key:{i}").as_bytes());
    }
    for i in (1..3000).step_by(8) {
        set(&c, format!("key:{i}").as_bytes(), 5, 0, b"replaced");
    }
    let mut keys: Vec<Vec<u8>> = (0..3000).map(|i| format!("key:{i}").into_bytes()).collect();
    keys.extend([b"big".to_vec(), b"big2".to_vec()]);
    for key in &keys {
        if let Some(item) = read(&c, key) {
            want.insert(key.clone(), item);
        }
    }
    let highest_cas = want.values().map(|&(_, _, cas)| cas).max().expect("items");
    drop(c);

    let (c, restored) = open(&file, 64 * MB);
    assert_eq!(restored.items, want.len(), "{restored:?}");
    assert_eq!(restored.dropped, 0);
    for key in &keys {
        assert_eq!(
            read(&c, key),
            want.get(key).cloned(),
            "{}",
            String::from_utf8_lossy(key)
        );
    }
    let cas = set(&c, b"new", 0, 0, b"after the reopen");
    assert!(
        cas > highest_cas,
        "the CAS counter goes on above {highest_cas}: {cas}"
    );

    // The free space found is sound: fill the cache over and over, then every item that is
    // still there reads back as stored.
    for round in 0..8 {
        for i in 0..20_000 {
            let key = format!("fill:{round}:{i}").into_bytes();
            set(&c, &key, 1, 0, &value(i, 200 + i % 700));
        }
    }
    let mut hits = 0;
    for i in 0..20_000 {
        if let Some((data, flags, _)) = read(&c, format!("fill:7:{i}").as_bytes()) {
            assert_eq!((data, flags), (value(i, 200 + i % 700), 1));
            hits += 1;
        }
    }
    assert!(hits > 1000, "{hits} of the last round kept");
    for (key, (data, flags, _)) in &want {
        if let Some((d, f, _)) = read(&c, key) {
            assert_eq!((&d, f), (data, *flags), "{}", String::from_utf8_lossy(key));
        }
    }
}

#[test]
fn items_that_expired_while_the_cache_was_down_are_left_out() {
    let file = arena::memfd("restore-expiry", false).expect("memfd");
    let (c, _) = open(&file, 4 * MB);
    let now = c.clock().now();
    set(&c, b"short", 0, now + 100, b"gone after the downtime");
    set(&c, b"long", 0, now + 100_000, b"kept");
    set(&c, b"forever", 0, 0, b"kept too");
    // As if the process had started 1000 s earlier: its relative times are 1000 s behind.
    let base = &c.arena().meta_words()[TIME_BASE_WORD];
    base.store(base.load(Ordering::Relaxed) - 1000, Ordering::Relaxed);
    drop(c);

    let (c, restored) = open(&file, 4 * MB);
    assert_eq!((restored.items, restored.dropped), (2, 1));
    assert_eq!(read(&c, b"short"), None);
    assert_eq!(
        read(&c, b"forever").map(|i| i.0),
        Some(b"kept too".to_vec())
    );
    // The TTL kept counting: about 100_000 - 1000 s are left.
    let left = c
        .get(&ThreadStats::default(), b"long", None, |i| i.exptime)
        .expect("kept")
        - c.clock().now();
    assert!((98_990..=99_010).contains(&left), "{left} s left");
}

#[test]
fn a_file_of_another_size_starts_empty() {
    let file = arena::memfd("restore-size", false).expect("memfd");
    let (c, _) = open(&file, 4 * MB);
    set(&c, b"k", 0, 0, b"v");
    drop(c);
    let (c, restored) = open(&file, 8 * MB);
    assert_eq!(restored, Restored::default());
    assert_eq!(read(&c, b"k"), None);
    assert_eq!(file.metadata().expect("stat").len() % MB as u64, 0);
}

#[test]
fn a_page_that_moved_to_another_class_brings_back_nothing_it_held() {
    let file = arena::memfd("restore-move", false).expect("memfd");
    let (c, _) = open(&file, 8 * MB);
    // Values full of the LIVE mark: what a page's old bytes hold where its new chunks start.
    let small = |i: usize| [vec![item::LIVE; 96], value(i, 4)].concat();
    let keys: Vec<Vec<u8>> = (0..12_000)
        .map(|i| format!("s:{i:05}").into_bytes())
        .collect();
    for (i, key) in keys.iter().enumerate() {
        set(&c, key, 0, 0, &small(i));
    }
    let class = c
        .slabs()
        .table()
        .class_for(item::header_len_for(0, true) + keys[0].len() + 100);
    let class = class.expect("a class for the small items");
    assert!(c.slabs().class_stats(class).total_pages >= 2);
    for key in keys.iter().step_by(2) {
        c.delete(&ThreadStats::default(), key);
    }
    let big_class = c.slabs().table().class_for(5000).expect("a class for 5 KB");
    c.reassign(class as i32, big_class).expect("the page moves");
    for i in 0..100 {
        set(&c, format!("b:{i}").as_bytes(), 0, 0, &value(i, 4000));
    }
    let all: Vec<Vec<u8>> = keys
        .iter()
        .cloned()
        .chain((0..100).map(|i| format!("b:{i}").into_bytes()))
        .collect();
    let before: Vec<_> = all.iter().map(|k| read(&c, k)).collect();
    assert!(before.iter().any(Option::is_some));
    drop(c);

    let (c, restored) = open(&file, 8 * MB);
    assert_eq!(restored.dropped, 0);
    let after: Vec<_> = all.iter().map(|k| read(&c, k)).collect();
    assert_eq!(restored.items, before.iter().flatten().count());
    for ((key, b), a) in all.iter().zip(&before).zip(&after) {
        assert_eq!(b, a, "{}", String::from_utf8_lossy(key));
    }
}

#[test]
fn the_lru_order_comes_back_not_the_memory_order() {
    let file = arena::memfd("restore-lru", false).expect("memfd");
    let (c, _) = open(&file, 8 * MB);
    let data = value(0, 300);
    for i in 0..4000 {
        set(&c, format!("old:{i}").as_bytes(), 0, 0, &data);
    }
    // The newest items take the chunks the oldest freed: low in memory, last in the LRU.
    for i in 0..1000 {
        c.delete(&ThreadStats::default(), format!("old:{i}").as_bytes());
    }
    for i in 0..1000 {
        set(&c, format!("new:{i}").as_bytes(), 0, 0, &data);
    }
    drop(c);

    let (c, restored) = open(&file, 8 * MB);
    assert_eq!(restored.items, 4000);
    // Fill until about as many items as "new" holds have been evicted, without reading
    // (a read would move what it finds up the LRU).
    let stats = ThreadStats::default();
    let mut round = 0;
    while c.stats().evictions < 1000 {
        for i in 0..100 {
            let key = format!("fill:{round}:{i}").into_bytes();
            c.store(&stats, StoreMode::Set, &key, 0, 0, &data);
        }
        round += 1;
        assert!(round < 1000, "nothing evicted");
    }
    let gone = |prefix: &str, range: std::ops::Range<usize>| {
        range
            .filter(|i| read(&c, format!("{prefix}:{i}").as_bytes()).is_none())
            .count()
    };
    let (new_gone, old_gone) = (gone("new", 0..1000), gone("old", 1000..4000));
    assert!(
        new_gone * 10 < old_gone,
        "the items stored last go last: {new_gone} of them evicted, {old_gone} older ones"
    );
}
