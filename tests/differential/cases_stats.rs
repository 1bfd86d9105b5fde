//! `stats` counters after sequences of operations, `stats reset`, bad `stats` arguments, and
//! expiry with real (short) waits.
//!
//! The waiting cases pause 2.1 s and do not look at `stats`: while they wait, memcached's LRU
//! maintainer and crawler may or may not reclaim the expired items, which moves get_expired,
//! get_flushed, curr_items and reclaimed at random. Counters of expired and flushed items are
//! checked without waiting instead (negative exptime, plain `flush_all`).
//!
//! The waiting cases pause 2.1 s: memcached's clock ticks once a second and an item with
//! exptime 1 is gone once the clock has passed it, which 2.1 s guarantees. The runner starts
//! them first and in parallel, so together they cost about one pause of wall time.

use crate::case::Case;

/// Server flags for cases whose `stats` count expired or flushed items: without the LRU
/// maintainer and crawler nothing reclaims such items in the background, so whether a get
/// finds one (get_expired, get_flushed, curr_items) no longer depends on thread timing. Seen
/// without them: memcached under load reclaimed an item between `touch k -1` and `get k`.
const NO_BACKGROUND_RECLAIM: &[&str] = &["-o", "no_lru_maintainer,no_lru_crawler"];

/// A pause long enough for an item with exptime 1 (or `flush_all 1`) to have expired.
const EXPIRY_WAIT_MS: u64 = 2100;

/// Every case of this file.
pub fn cases() -> Vec<Case> {
    let mut cases = counter_cases();
    cases.extend(stats_command_cases());
    cases.extend(expiry_cases());
    cases
}

fn counter_cases() -> Vec<Case> {
    vec![
        Case::new("stats/fresh server", "stats\r\n"),
        Case::new(
            "stats/get hits and misses",
            "set a 0 0 1\r\n1\r\nget a\r\nget b\r\nget a b c\r\ngets a\r\nstats\r\n",
        ),
        Case::new(
            "stats/sets of every kind",
            "set a 0 0 1\r\n1\r\nadd a 0 0 1\r\n1\r\nadd b 0 0 1\r\n1\r\nreplace c 0 0 1\r\n1\r\n\
             append a 0 0 1\r\n1\r\nprepend d 0 0 1\r\n1\r\nset e 0 0 z\r\nstats\r\n",
        ),
        Case::new(
            "stats/delete hits and misses",
            "set a 0 0 1\r\n1\r\ndelete a\r\ndelete a\r\ndelete b noreply\r\nstats\r\n",
        ),
        Case::new(
            "stats/incr and decr",
            "set a 0 0 1\r\n1\r\nincr a 1\r\ndecr a 1\r\nincr b 1\r\ndecr b 1\r\ndecr b 1\r\n\
             set c 0 0 1\r\nx\r\nincr c 1\r\nstats\r\n",
        ),
        Case::new(
            "stats/cas hits misses badval",
            "set a 0 0 1\r\n1\r\ncas a 0 0 1 1\r\n2\r\ncas a 0 0 1 1\r\n3\r\ncas b 0 0 1 1\r\n4\r\nstats\r\n",
        ),
        Case::new(
            "stats/touch and gat",
            "set a 0 0 1\r\n1\r\ntouch a 10\r\ntouch b 10\r\ngat 10 a b\r\ngats 10 a\r\nstats\r\n",
        ),
        Case::new(
            "stats/expired and flushed gets",
            "set a 0 -1 1\r\n1\r\nget a\r\nset b 0 0 1\r\n2\r\nflush_all\r\nget b\r\nstats\r\n",
        )
        .args(NO_BACKGROUND_RECLAIM),
        Case::new(
            "stats/cmd_flush",
            "flush_all\r\nflush_all 0\r\nflush_all noreply\r\nflush_all x\r\nstats\r\n",
        ),
        Case::new(
            "stats/item counts after replace and append",
            "set a 0 0 1\r\n1\r\nset a 0 0 1\r\n2\r\nappend a 0 0 1\r\n3\r\nset b 0 0 2\r\n99\r\n\
             incr b 1\r\nincr b 1\r\ndecr b 100\r\ndelete a\r\nstats\r\n",
        ),
        Case::new(
            "stats/too large and errors",
            format!(
                "set a 0 0 1048577\r\n{}\r\nget\r\nset a 0 0\r\nstats\r\n",
                "x".repeat(1048577)
            ),
        ),
        Case::new(
            "stats/noreply commands count",
            "set a 0 0 1 noreply\r\n1\r\nincr a 1 noreply\r\ndelete a noreply\r\ntouch a 1 noreply\r\nstats\r\n",
        ),
    ]
}

fn stats_command_cases() -> Vec<Case> {
    vec![
        Case::new(
            "stats/reset",
            "set a 0 0 1\r\n1\r\nget a\r\nget b\r\nstats reset\r\nstats\r\n",
        ),
        Case::new("stats/reset noreply", "stats reset noreply\r\n"),
        Case::new("stats/nonsense", "stats nonsense\r\n"),
        Case::new("stats/too many tokens", "stats a b c d e\r\n"),
        Case::new("stats/detail no argument", "stats detail\r\n"),
        Case::new("stats/detail bogus", "stats detail bogus\r\n"),
        Case::new(
            "stats/detail on off",
            "stats detail on\r\nstats detail off\r\n",
        ),
        Case::new("stats/detail dump empty", "stats detail dump\r\n"),
        Case::new("stats/uppercase", "STATS\r\n"),
    ]
}

fn expiry_cases() -> Vec<Case> {
    vec![
        Case::new("expiry/item expires", "set k 0 1 1\r\nx\r\nget k\r\n")
            .pause(EXPIRY_WAIT_MS)
            .send("get k\r\nadd k 0 0 1\r\ny\r\ngets k\r\n"),
        Case::new(
            "expiry/gat extends ttl",
            "set k 0 1 1\r\nx\r\nset j 0 1 1\r\ny\r\ngat 100 k\r\n",
        )
        .pause(EXPIRY_WAIT_MS)
        .send("get k j\r\n"),
        Case::new(
            "expiry/touch extends ttl",
            "set k 0 1 1\r\nx\r\ntouch k 100\r\nset j 0 100 1\r\ny\r\ntouch j 1\r\n",
        )
        .pause(EXPIRY_WAIT_MS)
        .send("get k j\r\nincr k 1\r\n"),
        Case::new(
            "expiry/flush_all with delay",
            "set k 0 0 1\r\nx\r\nflush_all 1\r\nget k\r\n",
        )
        .pause(EXPIRY_WAIT_MS)
        .send("get k\r\nset k 0 0 1\r\nz\r\ngets k\r\n"),
        Case::new(
            "expiry/touch -1 then get",
            "set k 0 100 1\r\nx\r\ntouch k -1\r\nget k\r\nstats\r\n",
        )
        .args(NO_BACKGROUND_RECLAIM),
    ]
}
