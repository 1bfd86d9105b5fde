//! The arena reserves `-m` up front but only memory that is written becomes resident.
//! (Its own test binary, so no other test's allocations move the process's RSS meanwhile.)

use memcached_rs::cache::arena::{Arena, PAGE_SIZE};

fn rss_kb() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line")
}

#[test]
fn resident_memory_follows_use() {
    let arena = Arena::new(256 * PAGE_SIZE, false).expect("map 256 MB");
    let before = rss_kb();
    let mut written = Vec::new();
    for _ in 0..4 {
        let page = arena.alloc_page().expect("page");
        let mut carving = arena.carve(page, PAGE_SIZE, 1);
        let mut chunk = arena.cut(&mut carving).expect("chunk");
        arena.bytes_mut(&mut chunk).fill(1);
        written.push(chunk);
    }
    let after = rss_kb();
    assert!(
        after >= before + 4 * 1000,
        "4 MB written must be resident: {before} -> {after} kB"
    );
    assert!(
        after < before + 32 * 1024,
        "reserving 256 MB must not make it resident: {before} -> {after} kB"
    );
}
