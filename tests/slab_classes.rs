//! The slab class table is memcached's once a flag that shapes it is given: for the same `-n -f
//! -I -o slab_chunk_max,slab_sizes,no_modern`, the chunk sizes memcached prints at start-up
//! with `-vv` are ours. Without them it is finer for small items.

mod common;

use memcached_rs::cache::slabs::ClassTable;
use memcached_rs::config::{self, Invocation};
use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

/// memcached's `slab class N: chunk size S perslab P` lines for these flags.
fn memcached_classes(flags: &[&str]) -> Vec<(usize, usize, usize)> {
    let mut args = vec!["-p", "0", "-U", "0", "-vv"];
    if common::running_as_root() {
        args.extend(["-u", "root"]);
    }
    args.extend(flags);
    let mut child = common::ServerKind::Memcached
        .command()
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start memcached");
    // It prints the table at once and then serves; give it a moment, then stop it.
    std::thread::sleep(Duration::from_millis(300));
    child.kill().expect("stop memcached");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    child.wait().expect("reap memcached");
    stderr
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            match w.as_slice() {
                ["slab", "class", id, "chunk", "size", size, "perslab", per] => Some((
                    id.trim_end_matches(':').parse().ok()?,
                    size.parse().ok()?,
                    per.parse().ok()?,
                )),
                _ => None,
            }
        })
        .collect()
}

fn our_classes(flags: &[&str]) -> Vec<(usize, usize, usize)> {
    let mut args = vec!["memcached-rs".to_string()];
    args.extend(flags.iter().map(|s| s.to_string()));
    let Ok(Invocation::Run(s)) = config::from_args(&args) else {
        panic!("flags {flags:?} refused");
    };
    let t = ClassTable::build(&s.slab_classes, s.slab_chunk_max, s.item_size_max);
    (1..=t.largest())
        .map(|c| (c, t.chunk_size(c), t.per_page(c)))
        .collect()
}

#[test]
fn class_tables_match_memcached_once_a_flag_shapes_them() {
    let cases: &[&[&str]] = &[
        &["-n", "48"],
        &["-f", "1.25"],
        &["-n", "10", "-f", "2"],
        &["-f", "1.05"],
        &["-n", "100", "-f", "1.5", "-I", "2m"],
        &["-I", "256k", "-o", "slab_chunk_max=128"],
        &["-n", "1", "-f", "3.7"],
        &["-o", "slab_chunk_max=128"],
        &["-o", "no_modern"],
        &["-o", "slab_sizes=100-200-300-1000-5001"],
        &["-n", "10", "-o", "slab_sizes=64-96-1000"],
    ];
    for flags in cases {
        let theirs = memcached_classes(flags);
        assert!(
            !theirs.is_empty(),
            "memcached printed no classes for {flags:?}"
        );
        assert_eq!(our_classes(flags), theirs, "slab classes for {flags:?}");
    }
}

/// Without those flags the table is finer where items are small: 8-byte steps, so a small
/// item loses at most 7 bytes to rounding (memcached's ×1.25 steps lose up to a fifth), and
/// no more classes than memcached has.
#[test]
fn the_default_table_is_finer_for_small_items() {
    for flags in [&[][..], &["-I", "4m", "-m", "64"]] {
        let ours = our_classes(flags);
        let theirs = memcached_classes(flags);
        assert!(
            ours.len() <= theirs.len().max(63),
            "{flags:?}: {} classes",
            ours.len()
        );
        let small: Vec<usize> = ours.iter().map(|c| c.1).take_while(|&s| s <= 256).collect();
        assert_eq!(small.first(), Some(&32), "{flags:?}");
        assert!(
            small.windows(2).all(|w| w[1] - w[0] == 8),
            "{flags:?}: {small:?}"
        );
        assert_eq!(
            ours.last().map(|c| c.1),
            theirs.last().map(|c| c.1),
            "{flags:?}"
        );
    }
}
