use std::sync::Arc;

use super::super::slabs::ReassignError;
use super::super::testing::{cache, class_of, read, set, two_pages, used_chunks, value, MB};
use super::super::{Cache, StoreMode, StoreOptions, StoreOutcome};
use super::Reservation;
use crate::stats::ThreadStats;

/// Reserves an item for `data` under `key` and receives `data` into it, in pieces of
/// `piece` bytes as reads would.
fn received(c: &Arc<Cache>, key: &[u8], flags: u32, data: &[u8], piece: usize) -> Reservation {
    let mut r = c.reserve(key, flags, data.len()).expect("reserved");
    assert_eq!(r.len(), data.len());
    let mut src = data;
    for dst in r.value_mut(0) {
        for chunk in dst.chunks_mut(piece) {
            let (now, later) = src.split_at(chunk.len());
            chunk.copy_from_slice(now);
            src = later;
        }
    }
    assert!(src.is_empty(), "the value's place is as long as the value");
    r
}

fn commit(c: &Cache, mode: StoreMode, r: Reservation) -> StoreOutcome {
    c.store_reserved(&ThreadStats::default(), mode, StoreOptions::default(), 0, r)
}

#[test]
fn a_received_value_is_stored_as_a_copied_one_would_be() {
    let c = cache(16 * MB);
    // One chunk; chained over several; with client flags (a longer header).
    for (len, flags, key) in [
        (100 * 1024, 0, &b"one"[..]),
        (900 * 1024, 0, &b"chained"[..]),
        (600 * 1024, 7, &b"flagged"[..]),
    ] {
        let data = value(len, 3);
        let r = received(&c, key, flags, &data, 4096);
        assert!(matches!(
            commit(&c, StoreMode::Set, r),
            StoreOutcome::Stored { .. }
        ));
        assert_eq!(read(&c, key), Some(data.clone()));
        let got = c.get(&ThreadStats::default(), key, None, |item| item.flags);
        assert_eq!(got, Some(flags));
        // The same item as one stored the usual way, to the chunk.
        let class = class_of(&c, key);
        set(&c, key, &data);
        assert_eq!(class_of(&c, key), class);
        assert_eq!(read(&c, key), Some(data));
    }
}

#[test]
fn a_dropped_or_refused_reservation_gives_its_chunks_back() {
    let c = cache(16 * MB);
    set(&c, b"old", &value(200 * 1024, 1));
    let before = used_chunks(&c);
    // A connection closed halfway.
    let r = c.reserve(b"k", 0, 700 * 1024).expect("reserved");
    assert!(used_chunks(&c) > before);
    drop(r);
    assert_eq!(used_chunks(&c), before);
    // An add of a key that exists, a replace of one that does not.
    let r = received(&c, b"old", 0, &value(200 * 1024, 2), 1000);
    assert_eq!(commit(&c, StoreMode::Add, r), StoreOutcome::NotStored);
    let r = received(&c, b"new", 0, &value(200 * 1024, 2), 1000);
    assert_eq!(commit(&c, StoreMode::Replace, r), StoreOutcome::NotStored);
    assert_eq!(used_chunks(&c), before);
    assert_eq!(read(&c, b"old"), Some(value(200 * 1024, 1)));
    assert_eq!(read(&c, b"new"), None);
}

#[test]
fn nothing_is_reserved_for_an_item_too_large_to_store() {
    let c = cache(16 * MB);
    assert!(c.reserve(b"k", 0, 2 * MB).is_none());
    assert_eq!(used_chunks(&c), 0);
}

#[test]
fn a_page_move_passes_over_pages_with_reserved_chunks() {
    let c = cache(8 * MB);
    let len = 100 * 1024;
    let class = two_pages(&c, len);
    // Free one chunk in each page, then reserve both: every page holds a reservation.
    let pages = c.slabs().class_stats(class).total_pages;
    assert_eq!(pages, 2);
    c.delete(&ThreadStats::default(), b"k0");
    let last = (1u8..)
        .map(|n| format!("k{n}"))
        .take_while(|k| read(&c, k.as_bytes()).is_some())
        .last()
        .expect("keys");
    c.delete(&ThreadStats::default(), last.as_bytes());
    let reserved: Vec<Reservation> = (0..2)
        .map(|n| {
            c.reserve(format!("r{n}").as_bytes(), 0, len)
                .expect("reserved")
        })
        .collect();
    assert_eq!(c.reassign(class as i32, 1), Err(ReassignError::Busy));
    assert_eq!(read(&c, b"k1"), Some(value(len, 1)), "nothing was evicted");
    // Once received and stored, the page moves as any other.
    for (n, mut r) in reserved.into_iter().enumerate() {
        for dst in r.value_mut(0) {
            dst.fill(n as u8);
        }
        assert!(matches!(
            commit(&c, StoreMode::Set, r),
            StoreOutcome::Stored { .. }
        ));
    }
    assert_eq!(c.reassign(class as i32, 1), Ok(()));
}

#[test]
fn a_move_begun_before_a_reservation_was_listed_gives_up_at_once() {
    let c = cache(8 * MB);
    let len = 100 * 1024;
    let class = two_pages(&c, len);
    c.delete(&ThreadStats::default(), b"k0");
    let page = c.slabs().first_page(class, &[]).expect("a page");
    // The reservation takes the free chunk in the first page, then the move begins on it.
    let r = c.reserve(b"r", 0, len).expect("reserved");
    let page = c
        .slabs()
        .start_move_page(class, 1, page)
        .expect("move begins");
    // (It gives up at once, not after the patience it has for stores about to link.)
    assert_eq!(c.complete_move(class, 1, page), Err(ReassignError::Busy));
    assert_eq!(
        c.slabs().class_stats(class).total_pages,
        2,
        "the page stayed"
    );
    drop(r);
    assert_eq!(c.reassign(class as i32, 1), Ok(()));
}

#[test]
fn a_restart_finds_no_item_in_reserved_chunks() {
    let file = crate::cache::arena::memfd("reserved-restart", false).expect("memfd");
    let config = super::super::CacheConfig::with_memory(16 * MB);
    let clock = || Arc::new(super::super::Clock::new());
    let (c, _) = Cache::reopen(&config, clock(), &file).expect("map");
    let c = Arc::new(c);
    set(&c, b"kept", &value(300 * 1024, 1));
    // Its value arrived, its store had not happened.
    let r = received(&c, b"half", 0, &value(300 * 1024, 2), 512);
    assert!(c.mark_clean_stop().expect("mark"));
    let (again, start) = Cache::reopen(&config, clock(), &file).expect("map");
    assert_eq!(read(&again, b"kept"), Some(value(300 * 1024, 1)));
    assert_eq!(read(&again, b"half"), None);
    match start {
        crate::cache::WarmStart::Restored(restored) => assert_eq!(restored.items, 1),
        other => panic!("{other:?}"),
    }
    drop(r);
}

#[test]
fn the_value_after_any_byte_is_found_without_walking_the_chunks_before_it() {
    let c = cache(16 * MB);
    let data = value(900 * 1024 + 17, 5);
    let mut r = received(&c, b"k", 3, &data, 777);
    for skip in [
        0,
        1,
        4000,
        500 * 1024,
        800 * 1024 + 3,
        data.len() - 1,
        data.len(),
    ] {
        let tail: Vec<u8> = r.value_mut(skip).flatten().map(|b| *b).collect();
        assert!(tail == data[skip..], "after {skip} bytes");
    }
}

/// Reserves a 900 KB value, then chunks of its class until none is left, and gives one of
/// those back: a two-chunk store finds one free and nothing to evict. Returns the big one
/// and the rest.
fn reserve_all_but_one_chunk(c: &Arc<Cache>) -> (Reservation, Vec<Reservation>) {
    let big = c.reserve(b"big", 0, 900 * 1024).expect("reserved");
    let size = c.slabs().table().chunk_size(big.class as usize);
    let mut held: Vec<Reservation> = (0..)
        .map_while(|n| c.reserve(format!("r{n}").as_bytes(), 0, size - 100))
        .collect();
    assert!(held.iter().all(|r| r.class == big.class));
    assert!(held.pop().is_some());
    (big, held)
}

/// Runs a store on a thread of its own and returns its outcome, failing if it never returns.
fn outcome_of(
    c: &Arc<Cache>,
    store: impl FnOnce(&Cache) -> StoreOutcome + Send + 'static,
) -> StoreOutcome {
    let c = Arc::clone(c);
    let thread = std::thread::spawn(move || store(&c));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !thread.is_finished() {
        assert!(
            std::time::Instant::now() < deadline,
            "the store never returned"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    thread.join().expect("store")
}

#[test]
fn a_chained_store_fails_rather_than_spins_when_reservations_hold_its_class() {
    let c = cache(4 * MB);
    // Every page of the arena in the class, every chunk of it reserved but one.
    let (big, _held) = reserve_all_but_one_chunk(&c);
    let stored = outcome_of(&c, |c| {
        let stats = ThreadStats::default();
        c.store(
            &stats,
            StoreMode::Set,
            b"another",
            0,
            0,
            &value(900 * 1024, 1),
        )
    });
    assert_eq!(stored, StoreOutcome::NoMemory);
    drop(big);
    set(&c, b"another", &value(900 * 1024, 1));
}

#[test]
fn a_chained_append_fails_rather_than_spins_when_reservations_hold_its_class() {
    let c = cache(4 * MB);
    // The item appended to, held by a reply, so that no move takes its page...
    set(&c, b"old", &value(1000, 1));
    let stats = ThreadStats::default();
    let (_, pin) = c
        .get_pinned(&stats, b"old", None, 0, |_, pinned| pinned)
        .expect("found");
    assert!(pin.is_some());
    // ...and the rest of the arena reserved in the class of the joined item, but one chunk.
    let (_big, _held) = reserve_all_but_one_chunk(&c);
    let appended = outcome_of(&c, |c| {
        let stats = ThreadStats::default();
        let data = value(900 * 1024 - 1000, 2);
        c.store(&stats, StoreMode::Append, b"old", 0, 0, &data)
    });
    assert_eq!(appended, StoreOutcome::NotStored);
    assert_eq!(read(&c, b"old"), Some(value(1000, 1)));
}
