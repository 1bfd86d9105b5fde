//! What memcached changed between Debian 12's 1.6.18 and Debian 13's 1.6.38, the reference:
//! each case here fails against 1.6.18's behaviour.
//!
//! - CAS ids: the first is 2; every store attempt spends one, refused ones too (`add` of a
//!   present key, a `cas` mismatch, `append` to nothing); `flush_all` spends none.
//! - `flush_all` that takes effect at once removes the items at once: `curr_items` is 0 and a
//!   later get is a plain miss, not `get_flushed`.
//! - Meta `E(token)`: the CAS id a created or modified item gets instead of the counter's (which
//!   is then not advanced — except by `ma`, which spends one anyway). `mg` ignores it on a hit.
//!   A missing or bad token is `CLIENT_ERROR bad token in command line format` (`md`/`ma` say
//!   `invalid or duplicate flag` for every flag error). `E0` counts as absent.
//! - `ms s` returns the stored size (the joined size after append), or the size sent when
//!   nothing was stored.
//! - `ms` in append/prepend mode with `N(ttl)` creates a missing item from the data.
//! - `md x` empties the value but keeps the item (flags 0, no expiry, same CAS id; `I` makes
//!   it stale with a new one). The other meta commands accept `x` and ignore it.
//! - `me` prints `exp=` as the seconds left, no longer negated.
//! - `R(token)` wins when the seconds left are below the token (as 1.6.38's document now says).
//! - `stats sizes_enable`/`sizes_disable` are gone; `slabs automove 2` is accepted; `stats
//!   extstore` lists nothing without extstore; `lru_crawler enable` fails while the crawler runs
//!   (`ERROR failed to start lru crawler thread`).
//!
//! Elsewhere: `lru_crawler mgdump` and metadump's `flags=` in `cases_crawler.rs`, the stats
//! names in `cases_stats.rs`, `watch deletions` in tests/watch.rs, `ssl_proto_errors` in
//! tests/tls.rs.

use crate::case::Case;
use crate::cases_meta::{meta, ms};

/// Every case of this file.
pub fn cases() -> Vec<Case> {
    let mut cases = cas_id_cases();
    cases.extend(flush_cases());
    cases.extend(e_flag_cases());
    cases.extend(ms_cases());
    cases.extend(md_x_cases());
    cases.extend(admin_cases());
    cases
}

fn admin_cases() -> Vec<Case> {
    vec![
        meta(
            "1.6.38/R/the boundary",
            ms("a", "T10", "1") + "mg a R10 c\r\nmg a R11 c t\r\nmg a R9 c\r\n",
        ),
        Case::new(
            "1.6.38/stats sizes_enable is gone",
            "stats sizes_enable\r\nstats sizes_disable\r\nstats sizes\r\n",
        ),
        Case::new(
            "1.6.38/lru_crawler enable while it runs",
            "lru_crawler enable\r\n",
        ),
        Case::new(
            "1.6.38/lru_crawler enable when off, then again",
            "lru_crawler enable\r\nlru_crawler enable\r\n",
        )
        .args(&["-o", "no_lru_crawler"]),
        Case::new(
            "1.6.38/stats extstore without extstore",
            "stats extstore\r\n",
        ),
        Case::new(
            "1.6.38/slabs automove 2",
            "slabs automove 2\r\nslabs automove 3\r\nslabs automove 0\r\n",
        ),
    ]
}

fn cas_id_cases() -> Vec<Case> {
    vec![
        Case::new("1.6.38/cas/first id is 2", "set a 0 0 1\r\nx\r\ngets a\r\n"),
        Case::new(
            "1.6.38/cas/refused stores spend an id",
            "set a 0 0 1\r\nx\r\ncas a 0 0 1 99\r\ny\r\nadd a 0 0 1\r\nz\r\n\
             append nope 0 0 1\r\nz\r\nprepend nope 0 0 1\r\nz\r\ncas nope 0 0 1 5\r\nz\r\n\
             replace nope 0 0 1\r\nz\r\nset b 0 0 1\r\nq\r\ngets a b\r\n",
        ),
        Case::new(
            "1.6.38/cas/misses and touches spend none",
            "incr nope 1\r\ndecr nope 1\r\ntouch nope 10\r\ndelete nope\r\nget nope\r\n\
             set n 0 0 1\r\n5\r\ntouch n 10\r\nincr n 1\r\nset big 0 0 2\r\nab\r\ngets n big\r\n",
        ),
        Case::new(
            "1.6.38/cas/too large spends none",
            "set big 0 0 2000000 noreply\r\n",
        )
        .send(vec![b'x'; 2_000_000])
        .send("\r\nset a 0 0 1\r\n1\r\ngets a\r\n"),
        // The binary protocol's refused stores: see binary/add replace and quiet forms.
    ]
}

fn flush_cases() -> Vec<Case> {
    let stats = "stats\r\n";
    vec![
        meta(
            "1.6.38/flush_all/spends no cas id",
            "set a 0 0 1\r\nx\r\nflush_all\r\nset b 0 0 1\r\nx\r\ngets a b\r\n\
             flush_all 0\r\nset c 0 0 1\r\nx\r\ngets b c\r\n",
        ),
        meta(
            "1.6.38/flush_all/removes the items at once",
            format!(
                "set a 0 0 1\r\nx\r\nset b 0 0 1\r\nx\r\nflush_all\r\n{stats}stats items\r\n\
                 mg a v\r\nget b\r\n{stats}"
            ),
        )
        .args(&["-o", "no_lru_maintainer,no_lru_crawler"]),
        meta(
            "1.6.38/flush_all/removes at once without cas",
            format!("set a 0 0 1\r\nx\r\nflush_all\r\n{stats}get a\r\n{stats}"),
        )
        .args(&["-C", "-o", "no_lru_maintainer,no_lru_crawler"]),
        meta(
            "1.6.38/flush_all/a delayed flush is lazy",
            format!("set a 0 0 1\r\nx\r\nflush_all 10\r\n{stats}get a\r\n"),
        )
        .args(&["-o", "no_lru_maintainer,no_lru_crawler"]),
    ]
}

fn e_flag_cases() -> Vec<Case> {
    vec![
        meta(
            "1.6.38/E/ms sets the cas and spends none",
            ms("a", "E500", "hi") + "mg a c v\r\n" + &ms("b", "", "hi") + "mg b c\r\n",
        ),
        meta(
            "1.6.38/E/ms with C compares then sets",
            ms("a", "E500", "hi")
                + &ms("a", "C500 E600", "yo")
                + "mg a c\r\n"
                + &ms("a", "C500 E700", "zz")
                + &ms("a", "C9 E800 I", "zz")
                + "mg a c v\r\n"
                + &ms("z", "", "1")
                + "mg z c\r\n",
        ),
        meta(
            "1.6.38/E/ms append and add",
            ms("a", "E50", "1")
                + &ms("a", "MA E77 c", "2")
                + &ms("a", "ME E78 c", "3")
                + &ms("n", "MA E79 c", "4")
                + "mg a c v\r\n"
                + &ms("z", "", "1")
                + "mg z c\r\n",
        ),
        meta(
            "1.6.38/E/mg ignores it on a hit and vivifies with it",
            ms("a", "E500", "hi")
                + "mg a E77 c\r\nmg a c\r\nmg nv N30 E900 c v t\r\nmg nv c v t\r\n\
                   mg nv2 N30 c\r\n",
        ),
        meta(
            "1.6.38/E/ma vivifies with it and spends an id when it counts",
            "ma n N0 E1000\r\nmg n c v\r\nma n E2000 c v\r\nma n c\r\nms z 1\r\n1\r\n\
             mg z c\r\n",
        ),
        meta(
            "1.6.38/E/md with I sets it, a plain md ignores it",
            ms("a", "E50", "1")
                + "md a I E3000\r\nmg a c v\r\nmd a E4000\r\nmg a c\r\n"
                + &ms("z", "", "1")
                + "mg z c\r\n",
        ),
        meta(
            "1.6.38/E/bad tokens",
            ms("a", "", "hi")
                + "mg a E\r\nmg a Eabc\r\nmg a E-1\r\n"
                + &ms("a", "E", "hi")
                + &ms("a", "E-5", "hi")
                + "ma a E-1\r\nmd a E99999999999999999999\r\nmg a c v\r\n",
        ),
        meta(
            "1.6.38/E/zero is absent and the top value is kept",
            ms("e0", "E0", "1")
                + "mg e0 c\r\n"
                + &ms("top", "E18446744073709551615", "1")
                + "mg top c\r\n",
        ),
    ]
}

fn ms_cases() -> Vec<Case> {
    vec![
        meta(
            "1.6.38/ms/s returns the size",
            ms("p", "s", "abc")
                + &ms("p", "MA s c", "de")
                + &ms("p", "MP s q", "xy")
                + "mg p s v\r\n"
                + &ms("p", "ME s", "a")
                + &ms("p", "C99 s", "abcd")
                + &ms("q", "MR s k", "ab")
                + &ms("q", "MA s", "abcdef")
                + "mn\r\n",
        ),
        meta(
            "1.6.38/ms/N vivifies an append or prepend",
            ms("viv", "MA N60 c t s", "abc")
                + "mg viv v t c f\r\n"
                + &ms("viv2", "MP N0 F5", "abc")
                + "mg viv2 v t f\r\n"
                + &ms("viv3", "MA T60", "abc")
                + &ms("viv4", "MA N60 q", "abc")
                + "mn\r\nmg viv4 v t\r\n"
                + &ms("viv", "MA N60 s", "de")
                + "mg viv v\r\n",
        ),
        meta(
            "1.6.38/ms/N is ignored outside append modes",
            ms("a", "N60", "abc") + "mg a t v\r\n" + &ms("b", "MR N60", "abc") + "mg b v\r\n",
        ),
        meta(
            "1.6.38/x is accepted and ignored outside md",
            ms("a", "x", "abc") + "mg a x v\r\nmg miss x\r\nma a x\r\nma n x\r\nmg a v\r\n",
        ),
        meta(
            "1.6.38/me/exp counts the seconds left",
            ms("foo", "F7 T100", "hello") + "me foo\r\nmg foo T1\r\nme foo\r\n",
        ),
    ]
}

fn md_x_cases() -> Vec<Case> {
    vec![
        meta(
            "1.6.38/md x/empties the value and keeps the cas",
            ms("x1", "F7 T100", "abc")
                + "md x1 x\r\nmg x1 v f t c s\r\nget x1\r\n"
                + &ms("z", "", "1")
                + "mg z c\r\n",
        ),
        meta(
            "1.6.38/md x/with I leaves a stale tombstone",
            ms("x1", "F7 T100", "abc") + "md x1 x I\r\nmg x1 v f t c\r\nmg x1 v c\r\n",
        ),
        meta(
            "1.6.38/md x/misses, cas, quiet and E",
            ms("x2", "F7", "abc")
                + "md nope x\r\nmd x2 x C1\r\nmd x2 x E42\r\nmg x2 c v\r\nmd x2 x q\r\nmn\r\n\
                   md x2 x k O123\r\n",
        ),
        meta(
            "1.6.38/md x/counts a delete hit",
            ms("a", "", "abc") + "md a x\r\nmd nope x\r\nstats\r\n",
        ),
    ]
}
