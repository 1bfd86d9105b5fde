//! The meta protocol, part one: `mn`, `mg` (every return flag, quiet mode, opaques, base64
//! keys, touch, vivify, recache, stale items), `me`, and the `stats` counters meta commands
//! move. `ms`, `md` and `ma` are in `cases_meta_write.rs`.
//!
//! Every expectation is memcached 1.6.38's own reply; some of its quirks are worth knowing
//! when reading a failure:
//! - `q` hides only the "nothing happened" reply of `mg` (`EN`); hits, `HD W` included, show.
//! - `me` prints `exp=` as the seconds left (`exp=100` for a 100 s ttl; 1.6.18 printed
//!   `-100`), `-1` for none. The flags added since 1.6.18 (`E`, `x`, `ms s`, …) are pinned in
//!   `cases_since_1_6_18.rs`.
//! - A `T` flag turns a hit into a touch (cmd_touch, touch_hits) instead of a get; a miss stays
//!   a get miss. `cmd_meta` counts `me` commands only.
//! - `me` replies' `cls=` and `size=` depend on the item layout and are masked (`mask.rs`).
//!
//! Timing: `t`, `l`, `la=` and `exp=` are relative to memcached's one-second clock. A case's
//! commands arrive in one write and are served within microseconds, so they see one tick.

use crate::case::{rep, Case};

/// `ms <key> <len>[ <flags>]\r\n<value>\r\n`, the length computed from the value.
pub fn ms(key: &str, flags: &str, value: &str) -> String {
    let sep = if flags.is_empty() { "" } else { " " };
    format!("ms {key} {}{sep}{flags}\r\n{value}\r\n", value.len())
}

/// A case named `meta/<name>`, sent in one write.
pub fn meta(name: &str, script: impl AsRef<[u8]>) -> Case {
    Case::new(format!("meta/{name}"), script)
}

/// Server flags for cases whose `stats` count expired items (see `cases_stats.rs`): without the
/// LRU maintainer and crawler nothing reclaims them in the background.
const NO_BACKGROUND_RECLAIM: &[&str] = &["-o", "no_lru_maintainer,no_lru_crawler"];

/// Every case of this file.
pub fn cases() -> Vec<Case> {
    let mut cases = mn_cases();
    cases.extend(mg_flag_cases());
    cases.extend(mg_quiet_opaque_key_cases());
    cases.extend(mg_error_cases());
    cases.extend(mg_ttl_cases());
    cases.extend(mg_token_cases());
    cases.extend(me_cases());
    cases.extend(stats_cases());
    cases
}

fn mn_cases() -> Vec<Case> {
    vec![
        meta("mn/alone", "mn\r\n"),
        meta("mn/extra tokens ignored", "mn extra\r\nmn a b c\r\nmn \r\n"),
        meta("mn/uppercase is unknown", "MN\r\nMG foo v\r\n"),
        meta(
            "mn/bare lf line endings",
            "ms foo 2\r\nab\r\nmg foo v\nmg foo s\r\nmd foo\nmn\n",
        ),
    ]
}

fn mg_flag_cases() -> Vec<Case> {
    let hi = ms("foo", "", "hi");
    vec![
        meta("mg/miss", "mg foo\r\nmg foo v\r\nmg foo s f t c l h\r\n"),
        meta("mg/hit no flags", hi.clone() + "mg foo\r\n"),
        meta("mg/v", hi.clone() + "mg foo v\r\n"),
        meta("mg/s", hi.clone() + "mg foo s\r\nmg foo s v\r\n"),
        meta(
            "mg/f",
            ms("foo", "F42", "hi") + &ms("bar", "", "x") + "mg foo f\r\nmg bar f\r\n",
        ),
        meta("mg/t without ttl", hi.clone() + "mg foo t\r\n"),
        meta("mg/t with ttl", ms("foo", "T100", "hi") + "mg foo t v\r\n"),
        meta(
            "mg/c",
            hi.clone() + &ms("bar", "", "x") + "mg foo c\r\nmg bar c\r\n" + &hi + "mg foo c\r\n",
        ),
        meta("mg/k hit", hi.clone() + "mg foo k\r\nmg foo k v\r\n"),
        meta("mg/k miss", "mg foo k\r\nmg foo k v s\r\n"),
        meta("mg/l", hi.clone() + "mg foo l\r\nmg foo l v\r\n"),
        meta(
            "mg/h before and after a fetch",
            hi.clone() + "mg foo h\r\nmg foo h l\r\nmg foo h\r\n",
        ),
        meta(
            "mg/u does not mark fetched",
            hi.clone() + "mg foo u\r\nmg foo h\r\nmg foo u h\r\nmg foo h\r\nmg foo h\r\n",
        ),
        meta("mg/u with v", hi.clone() + "mg foo u v\r\nmg foo u v h\r\n"),
        meta(
            "mg/every flag in request order",
            ms("foo", "F3 T100", "ab") + "mg foo v s f t c k l h O1\r\n",
        ),
        meta(
            "mg/every flag reversed",
            ms("foo", "F3 T100", "ab") + "mg foo O1 h l k c t f s v\r\n",
        ),
        meta(
            "mg/k c f s v",
            ms("foo", "F3", "ab") + "mg foo k c f s v\r\nmg foo s v k\r\n",
        ),
        meta(
            "mg/after classic set",
            "set foo 7 100 2\r\nab\r\nmg foo s f t c v\r\ngets foo\r\n",
        ),
        meta(
            "mg/binary value",
            ms("foo", "", "a\r\nb\0c") + "mg foo v s\r\n",
        ),
        meta(
            "mg/empty value",
            ms("foo", "", "") + "mg foo v s\r\nmg foo\r\n",
        ),
    ]
}

fn mg_quiet_opaque_key_cases() -> Vec<Case> {
    let hi = ms("foo", "", "hi");
    vec![
        meta("mg/q miss suppressed", "mg foo q\r\nmg foo q v\r\nmn\r\n"),
        meta(
            "mg/q hit shown",
            hi.clone() + "mg foo q v\r\nmg foo q\r\nmn\r\n",
        ),
        meta(
            "mg/q pipeline ends with mn",
            ms("b", "", "2") + "mg a q v k\r\nmg b q v k\r\nmg c q v k\r\nmn\r\n",
        ),
        meta(
            "mg/q k O miss suppressed",
            hi.clone() + "mg bar q k O5\r\nmg foo q k O5\r\nmn\r\n",
        ),
        meta("mg/O hit", hi.clone() + "mg foo O123 v\r\nmg foo Oabc\r\n"),
        meta("mg/O miss", "mg foo O123\r\nmg foo v O9 k\r\n"),
        meta("mg/O empty", hi.clone() + "mg foo O\r\nmg bar O\r\n"),
        meta(
            "mg/O 32 bytes fits",
            hi.clone() + &format!("mg foo O{} v\r\nmg bar O{}\r\n", rep('1', 31), rep('2', 31)),
        ),
        meta(
            "mg/O 33 bytes too long",
            hi.clone() + &format!("mg foo O{} v\r\nmg bar O{}\r\n", rep('1', 32), rep('2', 32)),
        ),
        meta(
            "mg/b key set with b",
            ms("Zm9v", "b", "hi") + "mg foo v\r\nmg Zm9v b v k\r\nmg Zm9v b k\r\n",
        ),
        meta(
            "mg/b key set plain keeps raw k",
            hi.clone() + "mg Zm9v b k v\r\nmg foo k\r\n",
        ),
        meta(
            "mg/b then plain k shows encoded",
            ms("Zm9v", "b", "hi") + "mg foo k\r\nget foo\r\n",
        ),
        meta(
            "mg/b invalid base64",
            hi.clone() + "mg Zm9 b\r\nmg Zm9v! b k\r\nmg foo b v\r\nmg = b\r\n",
        ),
        meta(
            "mg/b miss with k",
            "mg YmFy b k O1\r\nmg YmFy b k q\r\nmn\r\n",
        ),
        meta(
            "mg/b binary key",
            ms("AAEC", "b", "y") + "mg AAEC b k v\r\nmg AAEC b k q v\r\n",
        ),
        meta(
            "mg/b decoded key length",
            format!(
                "mg {} b k\r\nmg {} b v\r\n",
                "QUFB".repeat(62),
                "QUFB".repeat(63)
            ),
        ),
    ]
}

fn mg_error_cases() -> Vec<Case> {
    let hi = ms("foo", "", "hi");
    vec![
        meta("mg/no key", "mg\r\nmg \r\n"),
        meta(
            "mg/duplicate flag",
            hi.clone() + "mg foo v v\r\nmg foo s s v\r\nmg foo O1 O2\r\nmg bar k k\r\n",
        ),
        meta(
            "mg/unknown flag",
            hi.clone() + "mg foo zz\r\nmg foo x\r\nmg foo v y\r\nmg bar z\r\n",
        ),
        meta(
            "mg/noreply is not a flag",
            hi.clone() + "mg foo noreply\r\n",
        ),
        meta("mg/numeric flag", hi.clone() + "mg foo 1\r\nmg foo -\r\n"),
        meta(
            "mg/E ignored on a hit",
            hi.clone() + "mg foo E5\r\nmg bar E5 v\r\n",
        ),
        meta("mg/key 250 bytes", format!("mg {} v k\r\n", rep('a', 250))),
        meta(
            "mg/key 251 bytes",
            format!("mg {} v\r\nmg {} q\r\nmn\r\n", rep('a', 251), rep('a', 251)),
        ),
        meta(
            "mg/17 flags vs 18",
            format!("mg foo{}\r\nmg foo{}\r\n", " v".repeat(17), " v".repeat(18)),
        ),
        meta(
            "mg/extra spaces",
            hi.clone() + "mg foo  v\r\nmg  foo v \r\n",
        ),
        meta(
            "mg/flag errors on miss",
            "mg foo x\r\nmg foo v v\r\nmg foo Tx\r\n",
        ),
    ]
}

fn mg_ttl_cases() -> Vec<Case> {
    let hi = ms("foo", "", "hi");
    vec![
        meta(
            "mg/T sets ttl",
            ms("foo", "T100", "hi") + "mg foo T50 t\r\nmg foo t\r\nmg foo T0 t\r\n",
        ),
        meta(
            "mg/T on item without ttl",
            hi.clone() + "mg foo T30 v t\r\nmg foo t\r\n",
        ),
        meta("mg/T miss", "mg foo T30 t\r\nmg foo T30 q\r\nmn\r\n"),
        meta(
            "mg/T bad tokens",
            hi.clone() + "mg foo T\r\nmg foo Tx\r\nmg foo T5 T6\r\nmg foo T1x\r\n",
        ),
        meta(
            "mg/T-1 expires the item",
            hi.clone() + "mg foo T-1 v\r\nmg foo v\r\nmg foo T-1\r\n",
        ),
        meta(
            "mg/ms T-1 is expired",
            ms("foo", "T-1", "hi") + "mg foo v\r\nmg foo N30 v\r\n",
        ),
        Case::named("meta/mg/T1 expires after a wait")
            .send(hi.clone() + &ms("bar", "T1", "x") + "mg foo T1 t\r\n")
            .pause(2100)
            .send("mg foo v\r\nmg bar v\r\n"),
        meta(
            "mg/N vivifies on miss",
            "mg foo N30 s t c v\r\nmg foo N30 t c v\r\nmg foo v\r\nmg foo N30\r\n",
        ),
        meta("mg/N with q", "mg foo N30 q\r\nmg foo N30 q\r\nmn\r\n"),
        meta("mg/N0 has no ttl", "mg foo N0 t\r\nmg foo t\r\n"),
        meta(
            "mg/N bad tokens",
            "mg foo N t\r\nmg foo Nx t\r\nmg foo N1 N1\r\n",
        ),
        meta(
            "mg/N on a hit wins nothing",
            hi.clone() + "mg foo N30 v t\r\nmg foo N30\r\n",
        ),
        meta(
            "mg/N then ms clears the token",
            "mg foo N30\r\nms foo 3\r\nnew\r\nmg foo v c\r\nmg foo N30 c\r\n",
        ),
        meta("mg/N with T", "mg foo N5 T10 t\r\nmg foo t\r\n"),
        meta(
            "mg/N with k and O",
            "mg foo N30 k O7\r\nmg foo N30 k O8\r\n",
        ),
        meta(
            "mg/R wins below threshold",
            ms("foo", "T10", "x") + "mg foo R30 v t\r\nmg foo R30 v\r\nmg foo R5\r\n",
        ),
        meta(
            "mg/R above threshold",
            ms("foo", "T100", "x") + "mg foo R30 t\r\nmg foo R30\r\n",
        ),
        meta(
            "mg/R item without ttl",
            hi.clone() + "mg foo R30\r\nmg foo R30 t\r\n",
        ),
        meta(
            "mg/R miss",
            "mg foo R30\r\nmg foo R30 N30\r\nmg foo R30\r\n",
        ),
        meta(
            "mg/R bad token",
            hi.clone() + "mg foo R\r\nmg foo R5 N\r\nmg foo Rx\r\n",
        ),
    ]
}

fn mg_token_cases() -> Vec<Case> {
    let old = ms("foo", "", "old");
    vec![
        meta(
            "mg/stale after md I",
            old.clone() + "md foo I\r\nmg foo v c\r\nmg foo v c\r\nmg foo\r\n",
        ),
        meta(
            "mg/stale with T",
            old.clone() + "md foo I T30\r\nmg foo t c v\r\nmg foo t\r\n",
        ),
        meta(
            "mg/stale then recache threshold",
            ms("foo", "T10", "old") + "md foo I\r\nmg foo R30 t\r\nmg foo R30\r\n",
        ),
        meta(
            "mg/stale q hit shown",
            old.clone() + "md foo I\r\nmg foo q\r\nmg foo q v\r\nmn\r\n",
        ),
        meta(
            "mg/stale then ms replaces",
            old.clone() + "md foo I\r\nmg foo c\r\n" + &ms("foo", "", "new") + "mg foo v c\r\n",
        ),
        meta(
            "mg/stale then ms I lower cas",
            old.clone()
                + "md foo I T30\r\nmg foo c\r\n"
                + &ms("foo", "I C1", "new")
                + "mg foo v c t\r\n"
                + &ms("foo", "I C99", "nw2")
                + "mg foo v c\r\n",
        ),
        meta(
            "mg/stale then ms I equal cas",
            old.clone() + "md foo I\r\n" + &ms("foo", "I C2", "new") + "mg foo v c\r\n",
        ),
        meta(
            "mg/stale then ms I higher cas",
            old.clone() + "md foo I\r\n" + &ms("foo", "I C3", "new") + "mg foo v c\r\n",
        ),
        meta(
            "mg/stale then ms without cas",
            old.clone()
                + "md foo I\r\n"
                + &ms("foo", "I", "new")
                + "mg foo v c\r\nmd foo\r\nmg foo\r\n",
        ),
        meta(
            "mg/stale then ma",
            ms("n", "", "5") + "md n I\r\nma n v c\r\nmg n v c\r\n",
        ),
    ]
}

fn me_cases() -> Vec<Case> {
    vec![
        meta("me/miss", "me foo\r\n"),
        meta("me/hit", ms("foo", "", "x") + "me foo\r\n"),
        meta(
            "me/flags ttl and fetch",
            ms("foo", "F7 T100", "hello") + "me foo\r\nmg foo\r\nme foo\r\nmg foo T1\r\nme foo\r\n",
        ),
        meta(
            "me/larger item",
            ms(&rep('b', 100), "T100", &rep('x', 5000)) + &format!("me {}\r\n", rep('b', 100)),
        ),
        meta("me/no key", "me\r\nme \r\n"),
        meta(
            "me/extra token",
            ms("foo", "", "x") + "me foo x\r\nme foo x y\r\n",
        ),
        meta(
            "me/b key",
            ms("Zm9v", "b", "x") + "me Zm9v b\r\nme foo\r\nme Zm9 b\r\nme a b\r\n",
        ),
        meta("me/b binary key", ms("AAEC", "b", "x") + "me AAEC b\r\n"),
        meta(
            "me/key length",
            format!("me {}\r\nme {}\r\n", rep('a', 251), rep('a', 250)),
        ),
        meta("me/expired item", ms("foo", "T-1", "x") + "me foo\r\n"),
        meta(
            "me/after md I and ma",
            ms("foo", "", "1") + "md foo I\r\nme foo\r\nma foo\r\nme foo\r\n",
        ),
        meta("me/vivified item", "mg foo N30\r\nme foo\r\n"),
    ]
}

fn stats_cases() -> Vec<Case> {
    vec![
        meta(
            "stats/mg hits and misses",
            ms("a", "", "1") + "mg a v\r\nmg a\r\nmg b v\r\nmg b q\r\nmg a k c\r\nstats\r\n",
        ),
        meta(
            "stats/mg T counts as touch",
            ms("a", "T100", "1") + "mg a T50 t\r\nmg b T5\r\nmg a t\r\nstats\r\n",
        ),
        meta(
            "stats/mg vivify counts",
            "mg a N30\r\nmg a N30\r\nmg a T10 t\r\nmg b T10\r\nmg b N5 T10 t\r\nstats\r\n",
        ),
        meta(
            "stats/mg T-1 then expired get",
            ms("a", "", "1") + "mg a T-1 v\r\nmg a v\r\nstats\r\n",
        )
        .args(NO_BACKGROUND_RECLAIM),
        meta(
            "stats/ms modes",
            ms("a", "", "1")
                + &ms("a", "MR", "x")
                + &ms("b", "MR", "x")
                + &ms("a", "ME", "x")
                + &ms("c", "ME", "x")
                + &ms("a", "MA", "x")
                + &ms("d", "MP", "x")
                + "stats\r\n",
        ),
        meta(
            "stats/ms cas",
            ms("a", "", "1")
                + &ms("a", "C1", "2")
                + &ms("a", "C1", "3")
                + &ms("b", "C1", "4")
                + &ms("a", "C99 q", "5")
                + "stats\r\n",
        ),
        meta(
            "stats/md",
            ms("a", "", "1") + &ms("b", "", "2") + "md a\r\nmd a\r\nmd b I\r\nmd b C1\r\nmd c q\r\nstats\r\n",
        ),
        meta(
            "stats/ma",
            ms("a", "", "1")
                + "ma a\r\nma a MD\r\nma b\r\nma b MD\r\nma c N0 J5\r\nma c\r\nma a C99\r\nstats\r\n",
        ),
        meta(
            "stats/me counts cmd_meta",
            "me a\r\n".to_string() + &ms("a", "", "1") + "me a\r\nme\r\nme a b\r\nmn\r\nstats\r\n",
        ),
        meta(
            "stats/errors count nothing",
            "mg a x\r\nmg\r\nms a\r\nmd a x\r\nma a x\r\nmn\r\nstats\r\n",
        ),
    ]
}
