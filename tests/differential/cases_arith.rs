//! incr and decr: 64-bit unsigned arithmetic on decimal values, wrap and clamp, malformed
//! values and deltas, and how the stored value's length changes (memcached pads with spaces
//! when a decr shortens the number in place, and reallocates when an incr lengthens it).

use crate::case::{rep, Case};

/// `set k 0 0 <len>\r\n<value>\r\n` followed by `rest`.
fn with_value(value: &str, rest: &str) -> String {
    format!("set k 0 0 {}\r\n{value}\r\n{rest}", value.len())
}

/// Every case of this file.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new("incr/basic", with_value("5", "incr k 3\r\nget k\r\n")),
        Case::new("decr/basic", with_value("5", "decr k 3\r\nget k\r\n")),
        Case::new("incr/miss", "incr k 1\r\n"),
        Case::new("decr/miss", "decr k 1\r\n"),
        Case::new(
            "incr/noreply",
            with_value("5", "incr k 3 noreply\r\nincr j 1 noreply\r\nget k\r\n"),
        ),
        Case::new(
            "incr/noreply hides errors",
            with_value("a", "incr k 1 noreply\r\nincr k x noreply\r\nget k\r\n"),
        ),
        Case::new(
            "decr/noreply",
            with_value("5", "decr k 3 noreply\r\ndecr j 1 noreply\r\nget k\r\n"),
        ),
        Case::new(
            "incr/wraps at 2^64",
            with_value("18446744073709551615", "incr k 1\r\nget k\r\n"),
        ),
        Case::new(
            "incr/wraps by max delta",
            with_value("2", "incr k 18446744073709551615\r\nget k\r\n"),
        ),
        Case::new(
            "decr/clamps at 0",
            with_value("5", "decr k 10\r\nget k\r\ndecr k 1\r\n"),
        ),
        Case::new(
            "incr/non-numeric value",
            with_value("abc", "incr k 1\r\ndecr k 1\r\n"),
        ),
        Case::new("incr/negative value", with_value("-5", "incr k 1\r\n")),
        Case::new("incr/empty value", with_value("", "incr k 1\r\nget k\r\n")),
        Case::new(
            "incr/value over 20 digits",
            with_value("123456789012345678901234", "incr k 1\r\n"),
        ),
        Case::new(
            "incr/value 2^64 overflows",
            with_value("18446744073709551616", "incr k 1\r\n"),
        ),
        Case::new(
            "incr/non-numeric delta",
            with_value("5", "incr k x\r\ndecr k 1x\r\nget k\r\n"),
        ),
        Case::new(
            "incr/negative delta",
            with_value("5", "incr k -1\r\ndecr k -1\r\nget k\r\n"),
        ),
        Case::new(
            "incr/delta 2^64",
            with_value("5", "incr k 18446744073709551616\r\n"),
        ),
        Case::new(
            "incr/delta with plus sign",
            with_value("5", "incr k +2\r\n"),
        ),
        Case::new(
            "incr/value with leading spaces",
            with_value("  5", "incr k 1\r\nget k\r\n"),
        ),
        Case::new(
            "incr/value with trailing spaces",
            with_value("5  ", "incr k 1\r\nget k\r\n"),
        ),
        Case::new(
            "incr/value with leading zeros",
            with_value("007", "incr k 1\r\nget k\r\n"),
        ),
        Case::new(
            "incr/grows 99 to 100",
            with_value("99", "incr k 1\r\ngets k\r\n"),
        ),
        Case::new(
            "decr/shrinks 100 to 99 padded",
            with_value("100", "decr k 1\r\ngets k\r\nincr k 1\r\nget k\r\n"),
        ),
        Case::new(
            "decr/shrinks 10000 to 0 padded",
            with_value(
                "10000",
                "decr k 10000\r\nget k\r\nincr k 12345\r\nget k\r\n",
            ),
        ),
        Case::new(
            "incr/keeps flags",
            "set k 42 0 1\r\n1\r\nincr k 1\r\nget k\r\n",
        ),
        Case::new(
            "incr/changes cas",
            with_value("1", "gets k\r\nincr k 1\r\ngets k\r\n"),
        ),
        Case::new("incr/no delta", with_value("1", "incr k\r\n")),
        Case::new("incr/no arguments", "incr\r\ndecr\r\n"),
        Case::new("decr/no delta", with_value("1", "decr k\r\n")),
        Case::new(
            "decr/too many tokens",
            with_value("1", "decr k 1 noreply x\r\nget k\r\n"),
        ),
        Case::new("decr/non-numeric value", with_value("1a", "decr k 1\r\n")),
        Case::new(
            "incr/too many tokens",
            with_value("1", "incr k 1 noreply x\r\nget k\r\n"),
        ),
        Case::new(
            "incr/key 251 bytes",
            format!("incr {} 1\r\n", rep('i', 251)),
        ),
        Case::new(
            "incr/expired item",
            "set k 0 -1 1\r\n1\r\nincr k 1\r\ndecr k 1\r\n",
        ),
        Case::new(
            "incr/after append",
            with_value("1", "append k 0 0 1\r\n0\r\nincr k 5\r\nget k\r\n"),
        ),
        Case::new(
            "incr/binary value with crlf",
            with_value("1\r\n2", "incr k 1\r\n"),
        ),
    ]
}
