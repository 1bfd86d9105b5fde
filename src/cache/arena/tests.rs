use super::*;
use std::sync::{Arc, Mutex};

#[test]
fn pages_run_out_at_the_limit() {
    let arena = Arena::new(3 * PAGE_SIZE + 100, false).expect("map");
    assert_eq!(arena.pages(), 3);
    let pages: Vec<Page> = std::iter::from_fn(|| arena.alloc_page()).collect();
    assert_eq!(pages.len(), 3);
    assert!(arena.alloc_page().is_none());
    assert_eq!(arena.pages_used(), 3);
}

#[test]
fn carving_cuts_whole_chunks_only() {
    let arena = Arena::new(PAGE_SIZE, false).expect("map");
    let page = arena.alloc_page().expect("page");
    let mut carving = arena.carve(page, 96, 1);
    assert_eq!(carving.remaining(), PAGE_SIZE / 96);
    let chunks: Vec<Chunk> = std::iter::from_fn(|| arena.cut(&mut carving)).collect();
    assert_eq!(
        chunks.len(),
        10922,
        "memcached's perslab for 96-byte chunks"
    );
    assert!(chunks
        .windows(2)
        .all(|w| w[1].offset() == w[0].offset() + 96));
    assert!(chunks
        .iter()
        .all(|c| arena.chunk_len(c) == 96 && c.page() == 0));
}

#[test]
fn chunks_keep_what_is_written() {
    let arena = Arena::new(PAGE_SIZE, false).expect("map");
    let mut carving = arena.carve(arena.alloc_page().expect("page"), 1000, 1);
    let mut a = arena.cut(&mut carving).expect("a");
    let mut b = arena.cut(&mut carving).expect("b");
    arena.bytes_mut(&mut a).fill(b'a');
    arena.bytes_mut(&mut b).fill(b'b');
    assert!(arena.bytes(&a).iter().all(|&x| x == b'a'));
    assert!(arena.bytes(&b).iter().all(|&x| x == b'b'));
}

#[test]
fn free_list_round_trips_chunks_lifo() {
    let arena = Arena::new(PAGE_SIZE, false).expect("map");
    let mut carving = arena.carve(arena.alloc_page().expect("page"), 64, 1);
    let mut list = arena.free_list(64);
    let chunks: Vec<Chunk> = (0..5)
        .map(|_| arena.cut(&mut carving).expect("chunk"))
        .collect();
    let offsets: Vec<usize> = chunks.iter().map(Chunk::offset).collect();
    for c in chunks {
        arena.push_free(&mut list, c);
    }
    assert_eq!(list.len(), 5);
    let back: Vec<usize> = std::iter::from_fn(|| arena.pop_free(&mut list))
        .map(|c| c.offset())
        .collect();
    assert_eq!(back, offsets.iter().rev().copied().collect::<Vec<_>>());
    assert!(list.is_empty());
}

#[test]
#[should_panic(expected = "another arena")]
fn handles_cannot_cross_arenas() {
    let a = Arena::new(PAGE_SIZE, false).expect("map a");
    let b = Arena::new(PAGE_SIZE, false).expect("map b");
    let mut carving = a.carve(a.alloc_page().expect("page"), 64, 1);
    let chunk = a.cut(&mut carving).expect("chunk");
    let _ = b.bytes(&chunk);
}

#[test]
fn large_pages_fall_back_and_report() {
    let arena = Arena::new(4 * PAGE_SIZE, true).expect("map");
    assert!(matches!(
        arena.backing(),
        Backing::HugeTlb | Backing::TransparentHuge | Backing::Regular
    ));
    let mut carving = arena.carve(arena.alloc_page().expect("page"), 4096, 1);
    let mut c = arena.cut(&mut carving).expect("chunk");
    arena.bytes_mut(&mut c)[0] = 7;
    assert_eq!(arena.bytes(&c)[0], 7);
}

/// Threads allocate, fill with their own pattern, check and free concurrently: any overlap
/// between two live chunks would show up as a foreign byte.
#[test]
fn concurrent_owners_never_overlap() {
    let arena = Arc::new(Arena::new(8 * PAGE_SIZE, false).expect("map"));
    let free = Arc::new(Mutex::new(arena.free_list(512)));
    let carving = Arc::new(Mutex::new(None::<Carving>));
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let (arena, free, carving) = (arena.clone(), free.clone(), carving.clone());
            std::thread::spawn(move || {
                let mut held = Vec::new();
                for round in 0..2000 {
                    let popped = arena.pop_free(&mut free.lock().expect("free"));
                    let chunk = popped.or_else(|| {
                        let mut c = carving.lock().expect("carving");
                        if let Some(chunk) = c.as_mut().and_then(|c| arena.cut(c)) {
                            return Some(chunk);
                        }
                        let page = arena.alloc_page()?;
                        let mut new = arena.carve(page, 512, 1);
                        let chunk = arena.cut(&mut new);
                        *c = Some(new);
                        chunk
                    });
                    let Some(mut chunk) = chunk else { continue };
                    arena.bytes_mut(&mut chunk).fill(t);
                    held.push(chunk);
                    if round % 3 == 0 {
                        for c in held.drain(..) {
                            assert!(arena.bytes(&c).iter().all(|&b| b == t));
                            arena.push_free(&mut free.lock().expect("free"), c);
                        }
                    }
                }
                for c in &held {
                    assert!(arena.bytes(c).iter().all(|&b| b == t));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
}

#[test]
fn handles_are_small_and_pages_can_be_joined_and_recarved() {
    assert_eq!(std::mem::size_of::<Chunk>(), 8);
    assert_eq!(
        std::mem::size_of::<Option<Chunk>>(),
        8,
        "the arena id is the niche"
    );
    let arena = Arena::new(2 * PAGE_SIZE, false).expect("map");
    let mut carving = arena.carve(arena.alloc_page().expect("page"), 256 * 1024, 1);
    let mut chunks = arena.cut_rest(&mut carving);
    assert_eq!(chunks.len(), 4);
    let last = chunks.pop().expect("chunk");
    let chunks = arena.join(chunks).expect_err("a chunk is missing");
    let mut all = chunks;
    all.push(last);
    let page = arena.join(all).expect("every chunk is back");
    let mut carving = arena.carve(page, 1024, 1);
    let c = arena.cut(&mut carving).expect("chunk");
    assert_eq!(arena.chunk_len(&c), 1024);
    assert_eq!(arena.bytes(&c).len(), 1024);
}

#[test]
fn a_used_page_cut_anew_has_no_chunk_that_looks_live() {
    let arena = Arena::new(PAGE_SIZE, false).expect("map");
    let mut carving = arena.carve(arena.alloc_page().expect("page"), 96, 1);
    let mut chunks = arena.cut_rest(&mut carving);
    // Stale bytes everywhere: what a page's old items leave behind.
    for c in &mut chunks {
        arena.bytes_mut(c).fill(0xA7);
    }
    let mut page = arena.join(chunks).expect("whole page");
    arena.assign(&mut page, 1024, 2);
    assert_eq!(arena.page_owner(0), 2);
    let mut carving = arena.carve(page, 1024, 2);
    let chunks = arena.cut_rest(&mut carving);
    assert_eq!(chunks.len(), 1024);
    assert!(chunks.iter().all(|c| arena.bytes(c)[STATE_AT] == FREE));
    // A free chunk reads free too, whatever it held.
    let mut list = arena.free_list(1024);
    let mut chunks = chunks;
    for c in &mut chunks {
        arena.bytes_mut(c).fill(0xA7);
    }
    for chunk in chunks {
        arena.push_free(&mut list, chunk);
    }
    while let Some(c) = arena.pop_free(&mut list) {
        assert_eq!(arena.bytes(&c)[STATE_AT], FREE);
    }
}

#[test]
fn an_arena_in_a_file_is_found_again_chunk_for_chunk() {
    let file = memfd("arena-test", false).expect("memfd");
    let (arena, adoption) = Arena::in_file(&file, 3 * PAGE_SIZE).expect("map");
    assert!(adoption.is_none(), "a new file has nothing to adopt");
    let mut carving = arena.carve(arena.alloc_page().expect("page"), 4096, 5);
    let mut first = arena.cut(&mut carving).expect("chunk");
    arena.bytes_mut(&mut first)[..8].copy_from_slice(b"hello!!!");
    let mut carving = arena.carve(arena.alloc_page().expect("page"), 128 * 1024, 9);
    let mut big = arena.cut(&mut carving).expect("chunk");
    arena.bytes_mut(&mut big).fill(b'z');
    arena.meta_words()[3].store(42, Ordering::Relaxed);
    drop((first, big, carving, arena));

    let (arena, adoption) = Arena::in_file(&file, 3 * PAGE_SIZE).expect("map again");
    let mut adoption = adoption.expect("the same layout and size is reopened");
    assert_eq!(arena.pages_used(), 2);
    assert_eq!(arena.meta_words()[3].load(Ordering::Relaxed), 42);
    let first_page = arena.adopt_next(&mut adoption).expect("page 0");
    assert_eq!((first_page.index, first_page.owner), (0, 5));
    assert_eq!(first_page.chunks.len(), PAGE_SIZE / 4096);
    assert_eq!(&arena.bytes(&first_page.chunks[0])[..8], b"hello!!!");
    let second = arena.adopt_next(&mut adoption).expect("page 1");
    assert_eq!((second.index, second.owner, second.chunks.len()), (1, 9, 8));
    assert!(arena.bytes(&second.chunks[0]).iter().all(|&b| b == b'z'));
    assert!(
        arena.adopt_next(&mut adoption).is_none(),
        "page 2 was never used"
    );
    assert!(arena.alloc_page().is_some_and(|p| p.index() == 2));

    // Another size is another arena: the file is cleared.
    drop((first_page, second, arena));
    let (arena, adoption) = Arena::in_file(&file, 2 * PAGE_SIZE).expect("map smaller");
    assert!(adoption.is_none());
    assert_eq!(arena.pages_used(), 0);
    assert_eq!(arena.meta_words()[3].load(Ordering::Relaxed), 0);
}
