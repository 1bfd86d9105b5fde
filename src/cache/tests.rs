use super::*;
use crate::cache::arena;

fn cache_with(memory_limit: usize, evictions: bool) -> Cache {
    let config = CacheConfig {
        evictions,
        ..CacheConfig::with_memory(memory_limit)
    };
    Cache::new(&config, Arc::new(Clock::new())).expect("map the arena")
}

fn read(cache: &Cache, stats: &ThreadStats, key: &[u8]) -> Option<Vec<u8>> {
    cache.get(stats, key, None, |item| item.data.to_vec())
}

#[test]
fn store_modes_follow_memcached() {
    // Room for the classes the appended item passes through (one page each).
    let c = cache_with(4 << 20, true);
    let s = ThreadStats::default();
    assert_eq!(
        c.store(&s, StoreMode::Replace, b"k", 0, 0, b"x"),
        StoreOutcome::NotStored
    );
    assert_eq!(
        c.store(&s, StoreMode::Append, b"k", 0, 0, b"x"),
        StoreOutcome::NotStored
    );
    assert_eq!(
        c.store_with(
            &s,
            StoreMode::Cas,
            StoreOptions {
                cas: 1,
                ..StoreOptions::default()
            },
            b"k",
            0,
            0,
            b"x"
        ),
        StoreOutcome::NotFound
    );
    assert_eq!(
        c.store(&s, StoreMode::Add, b"k", 3, 0, b"mid"),
        StoreOutcome::Stored { cas: 5, len: 3 }
    );
    assert_eq!(
        c.store(&s, StoreMode::Add, b"k", 0, 0, b"x"),
        StoreOutcome::NotStored
    );
    assert!(matches!(
        c.store(&s, StoreMode::Append, b"k", 9, 0, b">"),
        StoreOutcome::Stored { .. }
    ));
    assert!(matches!(
        c.store(&s, StoreMode::Prepend, b"k", 9, 0, b"<"),
        StoreOutcome::Stored { .. }
    ));
    let (data, flags, cas) = c
        .get(&s, b"k", None, |i| (i.data.to_vec(), i.flags, i.cas))
        .expect("hit");
    assert_eq!(data, b"<mid>");
    assert_eq!(flags, 3, "append keeps the old flags");
    assert_eq!(
        c.store_with(
            &s,
            StoreMode::Cas,
            StoreOptions {
                cas: cas + 1,
                ..StoreOptions::default()
            },
            b"k",
            0,
            0,
            b"x"
        ),
        StoreOutcome::Exists
    );
    assert_eq!(
        c.store_with(
            &s,
            StoreMode::Cas,
            StoreOptions {
                cas: 0,
                ..StoreOptions::default()
            },
            b"k",
            0,
            0,
            b"x"
        ),
        StoreOutcome::Exists
    );
    assert!(matches!(
        c.store_with(
            &s,
            StoreMode::Cas,
            StoreOptions {
                cas,
                ..StoreOptions::default()
            },
            b"k",
            0,
            0,
            b"new"
        ),
        StoreOutcome::Stored { .. }
    ));
    assert_eq!(read(&c, &s, b"k").as_deref(), Some(&b"new"[..]));
    assert!(c.delete(&s, b"k"));
    assert!(!c.delete(&s, b"k"));
    assert_eq!(c.stats().curr_items, 0);
}

#[test]
fn arithmetic_wraps_clamps_and_pads_in_place() {
    let c = cache_with(1 << 20, true);
    let s = ThreadStats::default();
    c.store(&s, StoreMode::Set, b"n", 0, 0, b"18446744073709551615");
    assert_eq!(
        c.arithmetic(&s, b"n", true, 2, true),
        ArithOutcome::Value(1)
    );
    assert_eq!(
        read(&c, &s, b"n").expect("hit").len(),
        20,
        "shorter result is padded"
    );
    c.store(&s, StoreMode::Set, b"n", 0, 0, b"100");
    assert_eq!(
        c.arithmetic(&s, b"n", false, 1, true),
        ArithOutcome::Value(99)
    );
    assert_eq!(read(&c, &s, b"n").as_deref(), Some(&b"99 "[..]));
    assert_eq!(
        c.arithmetic(&s, b"n", false, 1000, true),
        ArithOutcome::Value(0)
    );
    c.store(&s, StoreMode::Set, b"n", 0, 0, b"99");
    assert_eq!(
        c.arithmetic(&s, b"n", true, 1, true),
        ArithOutcome::Value(100)
    );
    assert_eq!(read(&c, &s, b"n").as_deref(), Some(&b"100"[..]));
    c.store(&s, StoreMode::Set, b"t", 0, 0, b"abc");
    assert_eq!(
        c.arithmetic(&s, b"t", true, 1, true),
        ArithOutcome::NonNumeric
    );
    c.store(&s, StoreMode::Set, b"e", 0, 0, b"");
    assert_eq!(
        c.arithmetic(&s, b"e", true, 1, true),
        ArithOutcome::NonNumeric
    );
    assert_eq!(
        c.arithmetic(&s, b"missing", true, 1, true),
        ArithOutcome::NotFound
    );
}

#[test]
fn expired_and_flushed_items_are_gone_and_counted() {
    let c = cache_with(1 << 20, true);
    let s = ThreadStats::default();
    let past = c.clock().expiry(-1);
    c.store(&s, StoreMode::Set, b"old", 0, past, b"v");
    assert_eq!(read(&c, &s, b"old"), None);
    assert_eq!(s.get_expired.get(), 1);
    c.store(&s, StoreMode::Set, b"k", 0, 0, b"v");
    // A flush that takes effect at once removes the items at once (memcached 1.6.38): the
    // get is a plain miss.
    c.flush_all(0);
    assert_eq!(c.stats().curr_items, 0);
    assert_eq!(read(&c, &s, b"k"), None);
    assert_eq!(s.get_flushed.get(), 0);
    // A delayed one lets them go as they are seen.
    c.store(&s, StoreMode::Set, b"k", 0, 0, b"v");
    c.flush_all(10);
    assert_eq!(read(&c, &s, b"k").as_deref(), Some(&b"v"[..]));
    c.store(&s, StoreMode::Set, b"k", 0, 0, b"after");
    assert_eq!(read(&c, &s, b"k").as_deref(), Some(&b"after"[..]));
}

#[test]
fn memory_limit_evicts_least_recently_used() {
    let limit = 2 * arena::PAGE_SIZE;
    let c = cache_with(limit, true);
    let s = ThreadStats::default();
    let value = vec![b'x'; 1000];
    for i in 0..4000 {
        let key = format!("key{i}");
        assert!(matches!(
            c.store(&s, StoreMode::Set, key.as_bytes(), 0, 0, &value),
            StoreOutcome::Stored { .. }
        ));
        if i == 10 {
            // Read the early item now and then: it stays among the most recently used.
            assert!(read(&c, &s, b"key5").is_some());
        }
    }
    let st = c.stats();
    assert!(st.pages_used <= 2, "{} pages", st.pages_used);
    assert!(st.bytes as usize <= limit);
    assert!(st.evictions > 0);
    assert_eq!(st.curr_items + st.evictions, 4000);
    assert!(
        read(&c, &s, b"key3999").is_some(),
        "the newest item survives"
    );
    assert!(
        read(&c, &s, b"key0").is_none(),
        "the oldest item went first"
    );
}

#[test]
fn without_evictions_a_full_cache_refuses() {
    let c = cache_with(arena::PAGE_SIZE, false);
    let s = ThreadStats::default();
    let value = vec![b'x'; 1000];
    let mut refused = false;
    for i in 0..2000 {
        let key = format!("key{i}");
        if c.store(&s, StoreMode::Set, key.as_bytes(), 0, 0, &value) == StoreOutcome::NoMemory {
            refused = true;
            break;
        }
    }
    assert!(refused);
    assert_eq!(c.stats().evictions, 0);
    assert!(read(&c, &s, b"key0").is_some(), "nothing was evicted");
}

#[test]
fn large_values_are_chained_and_read_back_whole() {
    let c = cache_with(8 * arena::PAGE_SIZE, true);
    let s = ThreadStats::default();
    for len in [0, 1, 1000, 524_288, 700_000, 1_048_000] {
        let value: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let key = format!("big{len}");
        assert!(
            matches!(
                c.store(&s, StoreMode::Set, key.as_bytes(), 3, 0, &value),
                StoreOutcome::Stored { .. }
            ),
            "{len}"
        );
        assert_eq!(
            read(&c, &s, key.as_bytes()).as_deref(),
            Some(&value[..]),
            "{len}"
        );
    }
    assert!(matches!(
        c.store(&s, StoreMode::Append, b"big700000", 0, 0, b"tail"),
        StoreOutcome::Stored { .. }
    ));
    let got = read(&c, &s, b"big700000").expect("appended");
    assert_eq!(got.len(), 700_004);
    assert!(got.ends_with(b"tail"));
}

/// memcached stores an item just over its largest chunk as one of those and a small tail; two
/// chunks of the largest class would take nearly twice its size.
#[test]
fn an_item_over_the_largest_chunk_takes_little_more_than_its_size() {
    let c = cache_with(16 * arena::PAGE_SIZE, true);
    let s = ThreadStats::default();
    let table = c.slabs.table();
    let largest = table.chunk_size(table.largest());
    for len in [largest, largest + 50_000, 2 * largest - 1000] {
        let value: Vec<u8> = (0..len).map(|i| (i * 13 % 251) as u8).collect();
        let key = format!("k{len}");
        assert!(matches!(
            c.store(&s, StoreMode::Set, key.as_bytes(), 0, 0, &value),
            StoreOutcome::Stored { .. }
        ));
        assert_eq!(read(&c, &s, key.as_bytes()).as_deref(), Some(&value[..]));
        let (class, n) = c.layout(0, key.len(), len).expect("fits");
        let taken = n * table.chunk_size(class as usize);
        assert!(n >= 2, "{len}: chained");
        assert!(
            taken * 4 <= len * 5,
            "{len} bytes take {n} chunks of {}",
            table.chunk_size(class as usize)
        );
    }
}

#[test]
fn size_limit_matches_memcached_arithmetic() {
    let c = cache_with(64 << 20, true);
    // 1 MB item: 48-byte header, key + NUL, value + CRLF, 8-byte CAS.
    let max = 1024 * 1024 - 48 - 2 - 2 - 8;
    assert!(c.item_size_ok(1, 0, max));
    assert!(!c.item_size_ok(1, 0, max + 1));
    assert!(
        !c.item_size_ok(1, 1, max),
        "non-zero flags take 4 more bytes"
    );
}

#[test]
fn stale_cas_writes_need_invalidate_and_mark_the_item() {
    let c = cache_with(1 << 20, true);
    let s = ThreadStats::default();
    let StoreOutcome::Stored { cas: first, .. } = c.store(&s, StoreMode::Set, b"k", 0, 0, b"v1")
    else {
        panic!("set");
    };
    c.store(&s, StoreMode::Set, b"k", 0, 0, b"v2");
    let old = StoreOptions {
        cas: first,
        ..StoreOptions::default()
    };
    assert_eq!(
        c.store_with(&s, StoreMode::Cas, old, b"k", 0, 0, b"x"),
        StoreOutcome::Exists
    );
    let stale = StoreOptions {
        invalidate: true,
        ..old
    };
    assert!(matches!(
        c.store_with(&s, StoreMode::Cas, stale, b"k", 0, 0, b"v3"),
        StoreOutcome::Stored { .. }
    ));
    let seen = c.meta_get(&s, b"k", MetaGetOptions::default(), |item| {
        let item = item.expect("hit");
        (item.data().to_vec(), item.stale())
    });
    assert_eq!(seen, (b"v3".to_vec(), true));
}

#[test]
fn meta_get_vivifies_and_tokens_once() {
    let c = cache_with(1 << 20, true);
    let s = ThreadStats::default();
    let opts = MetaGetOptions {
        vivify: true,
        ..MetaGetOptions::default()
    };
    let first = c.meta_get(&s, b"v", opts, |item| {
        let item = item.expect("vivified");
        let won = item.created() && !item.token_sent();
        item.set_token_sent();
        won
    });
    assert!(first);
    let second = c.meta_get(&s, b"v", opts, |item| {
        let item = item.expect("present");
        (item.created(), item.token_sent(), item.data().len())
    });
    assert_eq!(second, (false, true, 0));
}

#[test]
fn meta_delete_invalidates_or_removes() {
    let c = cache_with(1 << 20, true);
    let s = ThreadStats::default();
    c.store(&s, StoreMode::Set, b"k", 0, 0, b"v");
    assert_eq!(
        c.meta_delete(
            &s,
            b"k",
            MetaDeleteOptions {
                cas: Some(999),
                ..MetaDeleteOptions::default()
            }
        ),
        MetaDelete::CasMismatch
    );
    let later = c.clock().now() + 100;
    assert_eq!(
        c.meta_delete(
            &s,
            b"k",
            MetaDeleteOptions {
                invalidate: true,
                new_exptime: Some(later),
                ..MetaDeleteOptions::default()
            }
        ),
        MetaDelete::Invalidated
    );
    let (stale, exptime) = c.meta_get(&s, b"k", MetaGetOptions::default(), |i| {
        let i = i.expect("still there");
        (i.stale(), i.exptime())
    });
    assert!(stale);
    assert_eq!(exptime, later);
    assert!(matches!(
        c.meta_delete(&s, b"k", MetaDeleteOptions::default()),
        MetaDelete::Deleted { .. }
    ));
    assert_eq!(
        c.meta_delete(&s, b"k", MetaDeleteOptions::default()),
        MetaDelete::NotFound
    );
}

#[test]
fn meta_arithmetic_checks_cas_and_vivifies() {
    let c = cache_with(1 << 20, true);
    let s = ThreadStats::default();
    let got = c.meta_arithmetic(&s, b"n", (true, 5, true), (0, 0), Some(10), |i, v| {
        (i.created(), v)
    });
    assert_eq!(got, MetaArith::Done((true, 10)));
    let got = c.meta_arithmetic(&s, b"n", (true, 5, true), (0, 0), None, |i, v| {
        (i.created(), v, i.cas())
    });
    let MetaArith::Done((false, 15, cas)) = got else {
        panic!("{got:?}");
    };
    assert_eq!(
        c.meta_arithmetic(&s, b"n", (true, 1, true), (cas + 7, 0), None, |_, v| v),
        MetaArith::CasMismatch
    );
    assert_eq!(
        c.meta_arithmetic(&s, b"n", (false, 1, true), (cas, 0), None, |_, v| v),
        MetaArith::Done(14)
    );
    assert_eq!(
        c.meta_arithmetic(&s, b"missing", (true, 1, true), (0, 0), None, |_, v| v),
        MetaArith::NotFound
    );
}

#[test]
fn appending_to_a_chained_item() {
    let c = cache_with(64 << 20, true);
    let s = ThreadStats::default();
    let big = vec![b'z'; 600_000];
    assert!(matches!(
        c.store(&s, StoreMode::Set, b"key:5", 0, 0, &big),
        StoreOutcome::Stored { .. }
    ));
    assert!(matches!(
        c.store(&s, StoreMode::Append, b"key:5", 0, 0, b""),
        StoreOutcome::Stored { .. }
    ));
    assert!(matches!(
        c.store(&s, StoreMode::Prepend, b"key:5", 0, 0, b"ab"),
        StoreOutcome::Stored { .. }
    ));
    let got = read(&c, &s, b"key:5").expect("hit");
    assert_eq!(got.len(), 600_002);
    assert_eq!(&got[..3], b"abz");
    let small = vec![b'z'; 3000];
    assert!(matches!(
        c.store(&s, StoreMode::Set, b"key:6", 0, 0, &small),
        StoreOutcome::Stored { .. }
    ));
    assert!(matches!(
        c.store(&s, StoreMode::Append, b"key:6", 0, 0, b""),
        StoreOutcome::Stored { .. }
    ));
}

#[test]
fn segmented_lru_keeps_items_read_again_through_a_scan() {
    let c = cache_with(2 * arena::PAGE_SIZE, true);
    let s = ThreadStats::default();
    let value = vec![b'x'; 1000];
    // A working set that is read repeatedly...
    for i in 0..100 {
        c.store(
            &s,
            StoreMode::Set,
            format!("hot{i}").as_bytes(),
            0,
            0,
            &value,
        );
    }
    for round in 0..3 {
        // A plain LRU would have lost all of them to the previous scan.
        let present = (0..100)
            .filter(|i| read(&c, &s, format!("hot{i}").as_bytes()).is_some())
            .count();
        assert!(present >= 90, "round {round}: {present} of 100 survived");
        // As in memcached, an item counts as active from its second read on.
        for i in 0..100 {
            read(&c, &s, format!("hot{i}").as_bytes());
        }
        // ...survives a scan of items read once, larger than the cache.
        for j in 0..2500 {
            let key = format!("scan{round}:{j}");
            c.store(&s, StoreMode::Set, key.as_bytes(), 0, 0, &value);
        }
    }
    let kept = (0..100)
        .filter(|i| read(&c, &s, format!("hot{i}").as_bytes()).is_some())
        .count();
    assert!(
        kept >= 90,
        "only {kept} of the working set survived the scans"
    );
    let (counters, lru) = c.class_counters(c.slabs().table().class_for(1000 + 40).expect("class"));
    assert!(counters.evicted > 0);
    assert!(lru.number[1] > 0, "read items live in warm");
    assert!(counters.moves_to_cold > 0 && counters.moves_to_warm > 0);
}
