//! Tests for `-o`, through `from_args`. Expected messages and exit statuses were taken from
//! memcached 1.6.18 run with the same arguments.

use crate::config::args::tests::{assert_error, run};
use crate::config::Settings;

#[test]
fn extended_options_we_implement() {
    let s = run(&[
        "-o",
        "idle_timeout=30,hashpower=20",
        "-o",
        "track_sizes,no_lru_crawler",
    ]);
    assert_eq!((s.idle_timeout, s.hashpower_init), (30, 20));
    assert!(s.track_sizes && !s.lru_crawler);
    let s = run(&["-o", "no_lru_crawler,lru_crawler,no_maxconns_fast"]);
    assert!(s.lru_crawler && !s.maxconns_fast);
    assert!(run(&["-o", "no_maxconns_fast,maxconns_fast"]).maxconns_fast);
    assert_eq!(run(&["-o", "idle_timeout=abc"]).idle_timeout, 0);
    assert_eq!(run(&["-o", "idle_timeout=-1"]).idle_timeout, 0);
    assert_eq!(run(&["-o", "idle_timeout=5,"]).idle_timeout, 5);
    assert_eq!(run(&["-o", ""]), Settings::default());
}

#[test]
fn slab_chunk_max_is_in_kilobytes() {
    // memcached 1.6.38's reading (1.6.18 read bytes).
    assert_eq!(run(&["-o", "slab_chunk_max=16"]).slab_chunk_max, 16384);
    assert_eq!(run(&["-o", "slab_chunk_max=1024"]).slab_chunk_max, 1 << 20);
    let s = run(&["-I", "4m", "-o", "slab_chunk_max=1024"]);
    assert_eq!(s.slab_chunk_max, 1 << 20);
    assert_error(
        &["-o", "slab_chunk_max=3"],
        "-I (item_size_max: 1048576) must be evenly divisible by slab_chunk_max (bytes: 3072)",
        64,
    );
    let in_bytes = "slab_chunk_max must be specified in kilobytes.";
    assert_error(&["-o", "slab_chunk_max=1025"], in_bytes, 1);
    assert_error(&["-o", "slab_chunk_max=16384"], in_bytes, 1);
    assert_error(
        &["-o", "slab_chunk_max"],
        "Missing slab_chunk_max argument",
        1,
    );
    let unparsable = "could not parse argument to slab_chunk_max";
    assert_error(&["-o", "slab_chunk_max=abc"], unparsable, 1);
    assert_error(&["-o", "slab_chunk_max=64k"], unparsable, 1);
    assert_error(
        &["-o", "slab_chunk_max=0"],
        "slab_chunk_max must be >= 0",
        1,
    );
    assert_error(
        &["-o", "slab_chunk_max=-1"],
        "slab_chunk_max must be >= 0",
        1,
    );
    // no_modern raises it to a page, unless it was set (before or after).
    assert_eq!(run(&["-o", "no_modern"]).slab_chunk_max, 1 << 20);
    assert_eq!(
        run(&["-o", "slab_chunk_max=16,no_modern"]).slab_chunk_max,
        16384
    );
    assert_eq!(
        run(&["-o", "no_modern,slab_chunk_max=16"]).slab_chunk_max,
        16384
    );
}

#[test]
fn no_modern_effects() {
    let s = run(&["-o", "no_modern"]);
    assert!(!s.maxconns_fast && !s.lru_crawler && !s.slab_reassign);
    assert_eq!(s.slab_automove, 0);
    assert!(s.not_implemented.is_empty(), "its effects are applied");
}

#[test]
fn extended_option_errors() {
    let cases: &[(&str, &str, u8)] = &[
        ("foo", "Illegal suboption \"foo\"", 1),
        ("foo=bar", "Illegal suboption \"foo=bar\"", 1),
        (",", "Illegal suboption \"\"", 1),
        ("idle_timeout=5,,track_sizes", "Illegal suboption \"\"", 1),
        ("ext_foo", "Illegal suboption \"ext_foo\"", 1),
        (
            "idle_timeout",
            "Missing numeric argument for idle_timeout",
            1,
        ),
        ("hashpower", "Missing numeric argument for hashpower", 1),
        (
            "hashpower=5",
            "Initial hashtable multiplier of 5 is too low",
            1,
        ),
        (
            "hashpower=abc",
            "Initial hashtable multiplier of 0 is too low",
            1,
        ),
        (
            "hashpower=70",
            "Initial hashtable multiplier of 70 is too high\n\
             Choose a value based on \"STAT hash_power_level\" from a running instance",
            1,
        ),
        (
            "slab_automove=3",
            "slab_automove must be between 0 and 2",
            1,
        ),
        (
            "slab_automove_ratio",
            "Missing slab_automove_ratio argument",
            1,
        ),
        (
            "slab_automove_ratio=0",
            "slab_automove_ratio must be > 0 and < 1",
            1,
        ),
        (
            "slab_automove_window=2",
            "slab_automove_window must be > 2",
            1,
        ),
        (
            "tail_repair_time",
            "Missing numeric argument for tail_repair_time",
            1,
        ),
        (
            "tail_repair_time=5",
            "Cannot set tail_repair_time to less than 10 seconds",
            1,
        ),
        ("hash_algorithm", "Missing hash_algorithm argument", 1),
        (
            "hash_algorithm=foo",
            "Unknown hash_algorithm option (jenkins, murmur3, xxh3)",
            1,
        ),
        ("lru_crawler_sleep", "Missing lru_crawler_sleep value", 1),
        (
            "lru_crawler_sleep=-1",
            "LRU crawler sleep must be between 0 and 1 second",
            1,
        ),
        (
            "lru_crawler_tocrawl=-1",
            "lru_crawler_tocrawl takes a numeric 32bit value",
            1,
        ),
        ("hot_lru_pct=0", "hot_lru_pct must be > 1 and < 80", 1),
        ("warm_lru_pct=80", "warm_lru_pct must be > 1 and < 80", 1),
        ("hot_max_factor=0", "hot_max_factor must be > 0", 1),
        ("warm_max_factor", "Missing warm_max_factor argument", 1),
        ("temporary_ttl", "Missing temporary_ttl argument", 1),
        (
            "watcher_logbuf_size=abc",
            "could not parse argument to watcher_logbuf_size",
            1,
        ),
        (
            "read_buf_mem_limit",
            "Missing read_buf_mem_limit argument",
            1,
        ),
        (
            "ext_path",
            "missing argument to ext_path, ie: ext_path=/d/file:5G",
            1,
        ),
        ("ext_page_size", "Missing ext_page_size argument", 1),
        ("ssl_key", "Missing ssl_key argument", 1),
        (
            "hot_lru_pct=79",
            "hot_lru_pct + warm_lru_pct cannot be more than 80% combined",
            64,
        ),
        (
            "temporary_ttl=61,no_lru_maintainer",
            "temporary_ttl requires lru_maintainer to be enabled",
            64,
        ),
        ("slab_sizes=abc", "slab size 0 is out of valid range", 64),
        (
            "slab_sizes=100-50",
            "slab size 50 cannot be lower than or equal to a previous class size",
            64,
        ),
        (
            "slab_sizes=100-104",
            "slab size 104 must be at least 8 bytes larger than previous class",
            64,
        ),
    ];
    for &(o, message, code) in cases {
        assert_error(&["-o", o], message, code);
    }
}

#[test]
fn recorded_extended_options_accept_memcached_values() {
    for o in [
        "slab_automove",
        "slab_automove=abc",
        "slab_automove_ratio=1",
        "hot_lru_pct=1",
        "hash_algorithm=jenkins",
        "lru_crawler_tocrawl=5",
        "temporary_ttl=abc",
        "watcher_logbuf_size=0",
        "slab_sizes=100-200",
        "maxconns_fast=5",
        "track_sizes=1",
        "ext_path=/tmp/x:64M",
        "ssl_session_cache",
        "sock_cookie_id=abc",
        "drop_privileges=3",
        "no_lru_maintainer,lru_maintainer,temporary_ttl=5",
    ] {
        run(&["-o", o]);
    }
    let s = run(&["-o", "resp_obj_mem_limit"]);
    assert_eq!(
        s.warnings,
        vec!["DEPRECATED: resp_obj_mem_limit no longer used. See read_buf_mem_limit,".to_string()]
    );
}
