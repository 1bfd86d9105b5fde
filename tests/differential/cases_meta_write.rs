//! The meta protocol, part two: `ms` (data blocks, modes, cas, invalidation, errors and what
//! they swallow), `md` (cas, quiet mode, invalidation) and `ma` (modes, vivify, cas, limits).
//!
//! Every expectation is memcached 1.6.38's own reply. Its quirks that the cases pin down:
//! - `ms <key> <datalen> <flags>*`: the length is the second token; there is no `S` flag.
//!   The length is read as a long and truncated to 32 bits (`4294967298` stores 2 bytes).
//! - Errors found while reading the flags swallow the data block; errors in the key, the
//!   length or the token count (too long key, bad length, too many flags) do not.
//! - `q` hides `HD` (and `ma`'s `VA`) but never `NS`, `EX`, `NF` or errors.
//! - A failed `ms` with `c` returns `c0`.
//! - `ms … I` with a lower cas stores over a stale item and keeps it stale; on a fresh item an
//!   unequal cas is `EX` as usual.
//! - `ma` rewrites a shrinking number in place, padded with spaces, like `decr` — but only
//!   when no earlier reply of the same batch still references the item (an `mg` does until
//!   its reply is written); then it makes a new item instead. The cases sync to pin the first.

use crate::case::{rep, Case};
use crate::cases_meta::{meta, ms};

/// Every case of this file.
pub fn cases() -> Vec<Case> {
    let mut cases = ms_cases();
    cases.extend(ms_mode_cas_cases());
    cases.extend(ms_error_cases());
    cases.extend(md_cases());
    cases.extend(ma_cases());
    cases.extend(ma_error_cases());
    cases
}

fn ms_cases() -> Vec<Case> {
    vec![
        meta("ms/plain", ms("foo", "", "hi") + "mg foo v\r\nget foo\r\n"),
        meta(
            "ms/overwrite",
            ms("foo", "", "one") + &ms("foo", "", "three") + "mg foo v s c\r\n",
        ),
        meta("ms/zero length", ms("foo", "", "") + "mg foo v s\r\n"),
        meta(
            "ms/value with crlf inside",
            ms("foo", "", "a\r\nb") + "mg foo v\r\n",
        ),
        meta(
            "ms/F client flags",
            ms("foo", "F5", "ab") + "mg foo f v\r\nget foo\r\n",
        ),
        meta(
            "ms/F limits",
            ms("foo", "F4294967295", "ab")
                + "mg foo f\r\n"
                + &ms("foo", "F4294967296", "ab")
                + "mg foo f\r\n"
                + &ms("foo", "F0", "ab")
                + "mg foo f\r\n",
        ),
        meta(
            "ms/F bad tokens",
            ms("foo", "F", "ab")
                + &ms("foo", "F-1", "ab")
                + &ms("foo", "F12abc", "ab")
                + "mg foo f\r\n",
        ),
        meta("ms/T ttl", ms("foo", "T100", "ab") + "mg foo t v\r\n"),
        meta(
            "ms/T0 no ttl",
            ms("foo", "T0 F1", "ab") + "mg foo f t v\r\n",
        ),
        meta(
            "ms/T-1 expired at once",
            ms("foo", "T-1", "ab") + "mg foo v\r\n",
        ),
        meta(
            "ms/T bad tokens",
            ms("foo", "T", "ab") + &ms("foo", "Tx", "ab") + "mg foo\r\n",
        ),
        meta(
            "ms/c k O",
            ms("foo", "F5 T100 c k O9", "abc") + "mg foo f t v\r\n" + &ms("foo", "O1 k c", "d"),
        ),
        meta(
            "ms/c after classic set",
            "set foo 0 0 1\r\nx\r\n".to_string() + &ms("foo", "c", "y"),
        ),
        meta(
            "ms/then gets",
            ms("foo", "F3", "ab") + &ms("foo", "", "cd") + "gets foo\r\n",
        ),
        meta(
            "ms/b key",
            ms("Zm9v", "b", "hi") + "mg foo v\r\nget foo\r\n",
        ),
        meta(
            "ms/b k c O",
            ms("Zm9v", "b k c O1", "ab") + &ms("Zm9v", "b q", "ab") + "mn\r\n",
        ),
        meta(
            "ms/b invalid key swallows data",
            ms("Zm9", "b", "ab") + "mg foo v\r\nmn\r\n",
        ),
        Case::named("meta/ms/data split across writes").send_split(
            "ms foo 5 T100\r\nhello\r\nmg foo v t\r\n",
            3,
            20,
        ),
        meta(
            "ms/key 250 bytes with k",
            ms(&rep('a', 250), "k", "x") + "mn\r\n",
        ),
        meta(
            "ms/q suppresses HD",
            ms("foo", "q", "ab") + &ms("foo", "q c k", "ab") + "mg foo v\r\nmn\r\n",
        ),
        meta(
            "ms/q shows failures",
            ms("foo", "q ME", "ab")
                + &ms("foo", "q ME", "cd")
                + &ms("bar", "q MR", "xx")
                + &ms("foo", "q C99", "xx")
                + &ms("baz", "q C1", "xx")
                + "mn\r\n",
        ),
    ]
}

fn ms_mode_cas_cases() -> Vec<Case> {
    vec![
        meta(
            "ms/ME add",
            ms("foo", "ME", "ab") + &ms("foo", "ME", "cd") + "mg foo v\r\n",
        ),
        meta(
            "ms/MA append",
            ms("foo", "MA", "xx")
                + &ms("foo", "", "ab")
                + &ms("foo", "MA", "ef")
                + "mg foo v c\r\n",
        ),
        meta(
            "ms/MP prepend",
            ms("foo", "MP", "xx") + &ms("foo", "", "ab") + &ms("foo", "MP", "01") + "mg foo v\r\n",
        ),
        meta(
            "ms/MR replace",
            ms("foo", "MR", "xx") + &ms("foo", "", "ab") + &ms("foo", "MR", "yy") + "mg foo v\r\n",
        ),
        meta(
            "ms/MS set",
            ms("foo", "MS", "ab") + &ms("foo", "MS", "cd") + "mg foo v\r\n",
        ),
        meta(
            "ms/MA keeps flags and ttl",
            ms("foo", "F9 T100", "ab") + &ms("foo", "MA F1 T5", "cd") + "mg foo v f t\r\n",
        ),
        meta(
            "ms/invalid modes",
            ms("foo", "", "ab")
                + &ms("foo", "MX", "cd")
                + &ms("foo", "Ms", "cd")
                + &ms("foo", "MSS", "cd")
                + &ms("foo", "M", "cd")
                + &ms("foo", "Ma q", "cd")
                + "mg foo v\r\n",
        ),
        meta(
            "ms/C match",
            ms("foo", "", "ab") + &ms("foo", "C1 c", "cd") + "mg foo v c\r\n",
        ),
        meta(
            "ms/C mismatch",
            ms("foo", "", "ab")
                + &ms("foo", "C2 c", "cd")
                + &ms("foo", "C2 c k O1", "ef")
                + "mg foo v c\r\n",
        ),
        meta(
            "ms/C missing",
            ms("foo", "C5", "ab") + &ms("foo", "C5 c k", "ab") + "mg foo v\r\n",
        ),
        meta(
            "ms/C0",
            ms("foo", "C0", "ab")
                + &ms("foo", "", "ab")
                + &ms("foo", "C0", "cd")
                + "mg foo v c\r\n",
        ),
        meta(
            "ms/C bad token",
            ms("foo", "", "ab") + &ms("foo", "Cx", "ij") + &ms("foo", "C", "ij") + "mg foo v\r\n",
        ),
        meta(
            "ms/C with modes",
            ms("bar", "C0 ME", "x")
                + &ms("bar", "C1 MA", "y")
                + "mg bar v c\r\n"
                + &ms("bar", "C9 MA", "z")
                + &ms("bar", "C9 ME", "z")
                + &ms("bar", "C2 MR", "z")
                + "mg bar v c\r\n",
        ),
        meta(
            "ms/c on failures",
            ms("foo", "c", "old") + &ms("foo", "c C9", "new") + &ms("bar", "c k O1 MR", "x"),
        ),
        meta(
            "ms/I on a fresh item",
            ms("foo", "", "old")
                + &ms("foo", "I C1", "new")
                + "mg foo v c\r\n"
                + &ms("foo", "I C0", "nw2")
                + &ms("foo", "I C5", "nw3")
                + "mg foo v c\r\n",
        ),
        meta(
            "ms/I without cas",
            ms("foo", "", "old") + &ms("foo", "I", "new") + "mg foo v c\r\n",
        ),
        meta(
            "ms/I miss",
            ms("foo", "I", "new") + "mg foo v c\r\n" + &ms("bar", "I C5", "x") + "mg bar v\r\n",
        ),
    ]
}

fn ms_error_cases() -> Vec<Case> {
    let big = rep('x', 1024 * 1024 + 1);
    vec![
        meta("ms/no length", "ms foo\r\nms\r\nms \r\n"),
        meta(
            "ms/S flag unsupported",
            "ms foo 3 S3\r\nabc\r\nmg foo v\r\n",
        ),
        meta("ms/S as length", "ms foo S3\r\nabc\r\nmg foo v\r\n"),
        meta(
            "ms/negative length",
            "ms foo -1\r\nms foo -1 T5\r\nab\r\nmn\r\n",
        ),
        meta(
            "ms/non-numeric length",
            "ms foo abc\r\nab\r\nms foo 3x\r\nabc\r\nmn\r\n",
        ),
        meta(
            "ms/length with sign or zeros",
            "ms foo +2\r\nab\r\nms bar 02\r\ncd\r\nmg foo v\r\nmg bar v\r\n",
        ),
        meta(
            "ms/length truncated to 32 bits",
            "ms foo 4294967298\r\nab\r\nmg foo v s\r\n",
        ),
        meta(
            "ms/length near 2^31",
            "ms foo 2147483647\r\nms foo 2147483646\r\nmn\r\n",
        ),
        meta("ms/bad data chunk", "ms foo 2\r\nabc\r\nmg foo v\r\n"),
        meta("ms/bad data chunk lf", "ms foo 2\r\nab\nmg foo v\r\nmn\r\n"),
        meta("ms/bad data chunk q", "ms foo 2 q\r\nabc\r\nmn\r\n"),
        meta(
            "ms/bad data chunk keeps old value",
            ms("foo", "", "ok") + "ms foo 2\r\nabcd\r\nmg foo v\r\n",
        ),
        meta(
            "ms/too large",
            format!("ms foo {}\r\n{big}\r\nmg foo v\r\nmn\r\n", big.len()),
        ),
        meta(
            "ms/too large q O k",
            ms("foo", "", "ok") + &format!("ms foo {} q O5 k\r\n{big}\r\nmg foo v\r\n", big.len()),
        ),
        meta(
            "ms/noreply is not a flag",
            "ms foo 2 noreply\r\nab\r\nmg foo v\r\n",
        ),
        meta(
            "ms/unknown flag swallows data",
            "ms foo 2 z\r\nab\r\nms foo 2 S2\r\nab\r\nms foo 2 x\r\nab\r\nmg foo v\r\n",
        ),
        meta(
            "ms/duplicate flag swallows data",
            "ms foo 2 T1 T2\r\nab\r\nms foo 2 c c\r\nab\r\nmn\r\n",
        ),
        meta(
            "ms/too many flags keeps data",
            format!(
                "ms foo 1{}\r\nx\r\nms foo 1{}\r\nx\r\nmn\r\n",
                " c".repeat(16),
                " c".repeat(17)
            ),
        ),
        meta(
            "ms/key 251 bytes keeps data",
            format!("ms {} 1\r\nx\r\nmn\r\n", rep('a', 251)),
        ),
        meta(
            "ms/O too long swallows data",
            format!("ms foo 2 O{}\r\nab\r\nmg foo v\r\n", rep('1', 32)),
        ),
    ]
}

fn md_cases() -> Vec<Case> {
    let ab = ms("foo", "", "ab");
    vec![
        meta(
            "md/hit and miss",
            ab.clone() + "md foo\r\nmd foo\r\nmg foo v\r\n",
        ),
        meta("md/C match", ab.clone() + "md foo C1\r\nmg foo\r\n"),
        meta(
            "md/C mismatch",
            ab.clone() + "md foo C2\r\nmg foo c\r\nmd bar C1\r\n",
        ),
        meta(
            "md/C bad token",
            ab.clone() + "md foo Cx\r\nmd foo C\r\nmg foo\r\n",
        ),
        meta(
            "md/q",
            ab.clone() + "md foo q\r\nmd foo q\r\nmd foo q O1 k\r\nmn\r\n",
        ),
        meta(
            "md/q C mismatch shown",
            ab.clone() + "md foo q C9\r\nmd foo q C1\r\nmn\r\n",
        ),
        meta(
            "md/O k",
            ab.clone() + "md foo O7 k\r\nmd foo O7 k\r\nmd foo k O8\r\n",
        ),
        meta(
            "md/b",
            ms("Zm9v", "b", "ab") + "md Zm9v b k\r\nmd Zm9v b k\r\nmd foo\r\n",
        ),
        meta("md/b invalid", ab.clone() + "md Zm9 b\r\nmd foo\r\n"),
        meta("md/no key", "md\r\nmd \r\n"),
        meta(
            "md/unknown flag",
            ab.clone() + "md foo x\r\nmd foo v\r\nmd foo E1\r\nmg foo\r\n",
        ),
        meta(
            "md/duplicate flag",
            ab.clone() + "md foo q q\r\nmd foo I I\r\nmg foo\r\n",
        ),
        meta(
            "md/key length",
            format!("md {}\r\nmd {} k\r\n", rep('a', 251), rep('a', 250)),
        ),
        meta(
            "md/too many flags and long O",
            format!("md a{}\r\nmd a O{}\r\n", " O1".repeat(30), rep('1', 32)),
        ),
        meta(
            "md/noreply is not a flag",
            ab.clone() + "md foo noreply\r\nmg foo\r\n",
        ),
        meta(
            "md/I marks stale",
            ab.clone() + "md foo I\r\nmg foo v c\r\nmg foo v c\r\nme foo\r\n",
        ),
        meta("md/I miss", "md foo I\r\nmd foo I q\r\nmn\r\n"),
        meta(
            "md/I twice then delete",
            ab.clone() + "md foo I\r\nmd foo I\r\nmd foo\r\nmg foo\r\n",
        ),
        meta(
            "md/I T sets ttl",
            ms("foo", "T100", "ab") + "md foo I T30\r\nmg foo t v c\r\nmd foo I T30 q\r\nmn\r\n",
        ),
        meta(
            "md/T without I deletes",
            ab.clone() + "md foo T30\r\nmg foo\r\n",
        ),
        meta(
            "md/I C",
            ab.clone()
                + "md foo I C9\r\nmd foo I C1\r\nmd foo I C1\r\nmd foo I C2 q\r\nmg foo t c\r\n",
        ),
        meta(
            "md/I then classic get",
            ab.clone() + "md foo I\r\nget foo\r\ngets foo\r\n",
        ),
        meta("md/then classic get", ab.clone() + "md foo\r\nget foo\r\n"),
    ]
}

fn ma_cases() -> Vec<Case> {
    let ten = ms("n", "", "10");
    vec![
        meta("ma/default incr", ten.clone() + "ma n\r\nmg n v\r\n"),
        meta("ma/v", ten.clone() + "ma n v\r\nma n v\r\n"),
        meta("ma/D delta", ten.clone() + "ma n D5 v\r\nma n D0 v\r\n"),
        meta(
            "ma/modes",
            ten.clone()
                + "ma n MI D2 v\r\nma n M+ v\r\nma n MD D3 v\r\nma n M- v\r\nma n v MD D3\r\n",
        ),
        meta("ma/miss", "ma n\r\nma n v\r\nma n D5 MD\r\n"),
        meta("ma/J without N", "ma n J5 v\r\nmg n\r\n"),
        meta(
            "ma/N vivifies",
            "ma n N0 v\r\nma m N0 J10 v t\r\nma m N0 J10 v t\r\nmg m v t\r\n",
        ),
        meta(
            "ma/N with ttl and MD",
            "ma o N100 J5 MD v t c\r\nma o MD v\r\n",
        ),
        meta("ma/N with q", "ma q N0 J99 q\r\nmg q v\r\nma r q\r\nmn\r\n"),
        meta(
            "ma/q",
            ten.clone() + "ma n q\r\nma n MD D3 q v\r\nmg n v\r\nma n q C99\r\nmn\r\n",
        ),
        meta(
            "ma/decr below zero",
            ms("n", "", "5") + "ma n MD D10 v\r\nma n MD v\r\n",
        ),
        meta(
            "ma/wraps at 2^64",
            ms("m", "", "18446744073709551615") + "ma m v\r\nma m D18446744073709551615 v\r\n",
        ),
        meta(
            "ma/grows 99 to 100",
            ms("n", "F9", "99") + "ma n v c\r\nmg n v s f c\r\n",
        ),
        // The syncs let memcached release the `mg` reply's reference to the item first: only
        // then does it rewrite a shrinking number in place, padded with spaces.
        Case::named("meta/ma/shrinks in place padded")
            .send(ms("n", "F9", "100") + "mg n v s f\r\n")
            .sync()
            .send("ma n MD D91 v\r\n")
            .sync()
            .send("mg n v s f\r\n"),
        meta(
            "ma/C",
            ms("n", "", "5") + "ma n C1 c v\r\nma n C1 c v\r\nma n C9 q\r\nma m C1\r\n",
        ),
        meta("ma/C bad token", ms("n", "", "5") + "ma n Cx\r\nmg n v\r\n"),
        meta(
            "ma/t and T",
            ms("n", "", "5") + "ma n t v\r\nma n T30 t v\r\nmg n t\r\n",
        ),
        meta(
            "ma/O k",
            ms("n", "", "5") + "ma n O5 k\r\nma m O5 k\r\nma m O5 k q\r\nmn\r\n",
        ),
        meta(
            "ma/b",
            ms("bg==", "b", "5")
                + "ma bg== b k v\r\nma bQ== b k\r\nma bQ== b k N0 J3 v\r\nmg m v\r\n",
        ),
        meta(
            "ma/other flags ignored",
            ms("n", "", "5") + "ma n t c s f v k l h\r\nma n s\r\n",
        ),
        meta(
            "ma/then classic incr",
            ms("n", "", "5") + "ma n\r\nincr n 1\r\nget n\r\n",
        ),
    ]
}

fn ma_error_cases() -> Vec<Case> {
    vec![
        meta(
            "ma/invalid modes",
            ms("n", "", "10")
                + "ma n MX v\r\nma n Md v\r\nma n Mi v\r\nma n MDD v\r\nma n M\r\nmg n v\r\n",
        ),
        meta(
            "ma/non-numeric value",
            ms("n", "", "abc") + "ma n\r\nma n q\r\nma n N0 J1\r\nmn\r\n",
        ),
        meta("ma/negative value", ms("m", "", "-1") + "ma m\r\n"),
        meta(
            "ma/empty value",
            "mg a N30 v\r\nma a v\r\n".to_string() + &ms("b", "", "") + "ma b v\r\n",
        ),
        meta(
            "ma/value 2^64",
            ms("z", "", "18446744073709551616") + "ma z v\r\n",
        ),
        meta(
            "ma/value with spaces",
            ms("n", "", "5 ") + "ma n v\r\n" + &ms("m", "", " 5") + "ma m v\r\n",
        ),
        meta(
            "ma/bad deltas",
            ms("n", "", "1")
                + "ma n Dx\r\nma n D-1\r\nma n D\r\nma n D18446744073709551616\r\nmg n v\r\n",
        ),
        meta(
            "ma/bad initial",
            "ma x Jx N0\r\nma x N0 J-1\r\nma x N0 J\r\nma x Nx\r\nmg x\r\n",
        ),
        meta(
            "ma/duplicate flags",
            ms("n", "", "1") + "ma n N0 N0\r\nma n D1 D2\r\nma n v v\r\n",
        ),
        meta("ma/no key", "ma\r\nma \r\n"),
        meta(
            "ma/unknown flag",
            ms("n", "", "1") + "ma n x\r\nma n E1\r\nma n noreply\r\n",
        ),
        meta(
            "ma/key length",
            format!("ma {}\r\nma {} k\r\n", rep('a', 251), rep('a', 250)),
        ),
        meta(
            "ma/too many flags and long O",
            format!("ma a{}\r\nma a O{}\r\n", " O1".repeat(30), rep('1', 32)),
        ),
    ]
}
