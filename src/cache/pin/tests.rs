use std::sync::Arc;

use super::super::slabs::ReassignError;
use super::super::testing::{cache, read, set, two_pages, used_chunks, value, MB};
use super::super::{ArithOutcome, Cache, CacheConfig, Clock};
use super::Pin;
use crate::stats::ThreadStats;

/// Pins `key`'s value (any size); `read` is told it is pinned.
fn pin(c: &Arc<Cache>, key: &[u8], from: usize) -> Option<Pin> {
    let (told, pin) = c.get_pinned(&ThreadStats::default(), key, None, from, |_, pinned| pinned)?;
    assert_eq!(told, pin.is_some());
    pin
}

fn copied(pin: &Pin) -> Vec<u8> {
    let mut out = Vec::new();
    pin.copy_to(&mut out);
    out
}

#[test]
fn a_pinned_value_stays_readable_after_overwrite_and_delete_and_is_freed_after() {
    let c = cache(16 * MB);
    // One chunk, and chained over several.
    for (len, key) in [(100 * 1024, &b"one"[..]), (900 * 1024, &b"chained"[..])] {
        let old = value(len, 1);
        set(&c, key, &old);
        let used = used_chunks(&c);
        assert!(used > 0);
        let first = pin(&c, key, 16 * 1024).expect("pinned");
        let second = pin(&c, key, 16 * 1024).expect("pinned twice");
        assert_eq!(first.len(), len);
        assert!(first.parts().len() > usize::from(len > 512 * 1024));
        assert_eq!(copied(&first), old);
        assert_eq!(c.pin_counts(), (1, 0));

        let new = value(len, 2);
        set(&c, key, &new);
        assert_eq!(
            read(&c, key),
            Some(new),
            "readers see the new value at once"
        );
        assert_eq!(
            copied(&first),
            old,
            "the reply in flight still reads the old one"
        );
        assert_eq!(c.pin_counts(), (1, 1));
        assert!(used_chunks(&c) > used, "the old chunks wait");

        drop(first);
        assert_eq!(copied(&second), old);
        c.delete(&ThreadStats::default(), key);
        drop(second);
        assert_eq!(c.pin_counts(), (0, 0));
        assert_eq!(used_chunks(&c), 0, "everything given back");

        // Deleted while pinned.
        set(&c, key, &value(len, 3));
        let third = pin(&c, key, 16 * 1024).expect("pinned");
        assert!(c.delete(&ThreadStats::default(), key));
        assert_eq!(read(&c, key), None);
        assert_eq!(copied(&third), value(len, 3));
        drop(third);
        assert_eq!((c.pin_counts(), used_chunks(&c)), ((0, 0), 0));
    }
}

#[test]
fn small_values_are_not_pinned() {
    let c = cache(4 * MB);
    set(&c, b"small", &value(1000, 1));
    assert!(pin(&c, b"small", 16 * 1024).is_none());
    assert_eq!(c.pin_counts(), (0, 0));
    assert!(pin(&c, b"absent", 0).is_none());
}

#[test]
fn incr_of_a_pinned_number_copies_it() {
    let c = cache(4 * MB);
    set(&c, b"n", b"100");
    let pinned = pin(&c, b"n", 0).expect("pinned");
    let s = ThreadStats::default();
    assert_eq!(
        c.arithmetic(&s, b"n", true, 5, true),
        ArithOutcome::Value(105)
    );
    assert_eq!(copied(&pinned), b"100");
    assert_eq!(read(&c, b"n"), Some(b"105".to_vec()));
    drop(pinned);
    // Unpinned, a shorter result is written in place again (padded with spaces).
    assert_eq!(
        c.arithmetic(&s, b"n", false, 100, true),
        ArithOutcome::Value(5)
    );
    assert_eq!(read(&c, b"n"), Some(b"5  ".to_vec()));
}

#[test]
fn eviction_passes_over_a_pinned_item() {
    // Two pages: storing 300 KB values over and over evicts everything but the pinned one.
    let c = cache(2 * MB);
    let first = value(300 * 1024, 7);
    set(&c, b"k0", &first);
    let pinned = pin(&c, b"k0", 16 * 1024).expect("pinned");
    let others = |round: u8| {
        for i in 1..20u8 {
            set(&c, &[b'k', b'0' + i], &value(300 * 1024, i ^ round));
        }
    };
    others(0);
    assert_eq!(
        read(&c, b"k0"),
        Some(first.clone()),
        "a reply reads it: not evicted"
    );
    assert_eq!(copied(&pinned), first);
    drop(pinned);
    others(1);
    assert_eq!(read(&c, b"k0"), None, "evicted once the reply is done");
    assert_eq!(c.pin_counts(), (0, 0));
}

#[test]
fn a_page_move_passes_over_pages_that_replies_pin() {
    let c = cache(8 * MB);
    let len = 100 * 1024;
    let class = two_pages(&c, len);
    let first = c.slabs().first_page(class, &[]).expect("a page");
    let pinned = pin(&c, b"k0", 16 * 1024).expect("pinned");
    assert_eq!(c.reassign(class as i32, 1), Ok(()));
    assert_eq!(
        c.slabs().first_page(class, &[]),
        Some(first),
        "the other page moved"
    );
    assert_eq!(copied(&pinned), value(len, 0));
    assert_eq!(read(&c, b"k0"), Some(value(len, 0)));
    // Every page pinned: nothing to move, at once.
    let class = two_pages(&c, len);
    let pins: Vec<Pin> = (0..40u8)
        .filter_map(|n| pin(&c, format!("k{n}").as_bytes(), 16 * 1024))
        .collect();
    assert!(!pins.is_empty());
    assert_eq!(c.reassign(class as i32, 1), Err(ReassignError::Busy));
}

#[test]
fn an_item_pinned_during_a_page_move_is_copied_and_its_old_copy_waited_for() {
    let c = cache(8 * MB);
    let len = 100 * 1024;
    let class = two_pages(&c, len);
    let page = c.slabs().first_page(class, &[]).expect("a page");
    let page = c
        .slabs()
        .start_move_page(class, 1, page)
        .expect("move begins");
    // A get arrives while the page empties.
    let pinned = pin(&c, b"k0", 16 * 1024).expect("pinned");
    let mover = {
        let c = Arc::clone(&c);
        std::thread::spawn(move || c.complete_move(class, 1, page))
    };
    // Once the item is copied out, the old copy waits for the pin (and the move for it).
    wait_until("the rescue", || c.pin_counts() == (1, 1));
    assert_eq!(copied(&pinned), value(len, 0));
    assert_eq!(read(&c, b"k0"), Some(value(len, 0)), "the copy is live");
    drop(pinned);
    assert_eq!(mover.join().expect("mover"), Ok(()));
    assert_eq!(
        c.mover().moved.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(read(&c, b"k0"), Some(value(len, 0)));
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "waited too long for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

#[test]
fn a_restart_does_not_bring_back_an_item_unlinked_while_pinned() {
    let file = crate::cache::arena::memfd("pinned-restart", false).expect("memfd");
    let config = CacheConfig::with_memory(16 * MB);
    let (c, _) = Cache::reopen(&config, Arc::new(Clock::new()), &file).expect("map");
    let c = Arc::new(c);
    set(&c, b"k", &value(600 * 1024, 1));
    let pinned = pin(&c, b"k", 16 * 1024).expect("pinned");
    set(&c, b"k", &value(600 * 1024, 2));
    // Stopped while a reply still held the old copy.
    assert!(c.mark_clean_stop().expect("mark"));
    let (again, start) = Cache::reopen(&config, Arc::new(Clock::new()), &file).expect("map");
    assert_eq!(read(&again, b"k"), Some(value(600 * 1024, 2)));
    match start {
        crate::cache::WarmStart::Restored(r) => assert_eq!(r.items, 1),
        other => panic!("{other:?}"),
    }
    drop(pinned);
}
