//! Number parsing exactly as memcached does it: C's `strtol`/`strtoul`/`strtoull` wrapped in
//! memcached's `safe_strto*` checks.
//!
//! The quirks are part of the protocol clients see, so they are reproduced on purpose: leading
//! whitespace and a sign are accepted, trailing whitespace ends the number, a 32-bit field
//! silently keeps the low 32 bits of a larger number (flags `4294967297` is 1, exptime
//! `4294967295` is -1), and `strtoull` negates a `-` number modulo 2^64 (so `-18446744073709551615`
//! is 1) unless the result looks negative.

/// C's `isspace` in the "C" locale.
#[inline]
pub fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The result of scanning a decimal number the way `strto*` does.
struct Scan {
    negative: bool,
    /// The digits' value, or `None` if it exceeds `u64`.
    magnitude: Option<u64>,
    /// Index just past the last digit (`endptr`).
    end: usize,
}

/// Scans like `strtoull(s, &end, 10)`; `None` when there are no digits (`end == s`).
fn scan(s: &[u8]) -> Option<Scan> {
    let mut i = 0;
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    let mut negative = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        negative = s[i] == b'-';
        i += 1;
    }
    let digits_start = i;
    let mut magnitude = Some(0u64);
    while i < s.len() && s[i].is_ascii_digit() {
        magnitude = magnitude
            .and_then(|m| m.checked_mul(10))
            .and_then(|m| m.checked_add(u64::from(s[i] - b'0')));
        i += 1;
    }
    if i == digits_start {
        return None;
    }
    Some(Scan {
        negative,
        magnitude,
        end: i,
    })
}

/// memcached accepts a number only if it is followed by whitespace or the end of the string
/// (a NUL ends a C string too).
fn ends_cleanly(s: &[u8], end: usize) -> bool {
    end == s.len() || s[end] == 0 || is_c_space(s[end])
}

/// memcached's `safe_strtoull`.
pub fn safe_strtoull(s: &[u8]) -> Option<u64> {
    let scan = scan(s)?;
    let magnitude = scan.magnitude?; // ERANGE
    if !ends_cleanly(s, scan.end) {
        return None;
    }
    let value = if scan.negative {
        magnitude.wrapping_neg()
    } else {
        magnitude
    };
    // memcached rejects a result that looks negative as a signed number if a '-' was given.
    if (value as i64) < 0 && scan.negative {
        return None;
    }
    Some(value)
}

/// memcached's `safe_strtoul`: `strtoul` on a 64-bit system, then truncated to 32 bits.
pub fn safe_strtoul(s: &[u8]) -> Option<u32> {
    safe_strtoull(s).map(|v| v as u32)
}

/// memcached's `safe_strtol`: `strtol` (64-bit `long`), then truncated to 32 bits.
pub fn safe_strtol(s: &[u8]) -> Option<i32> {
    let scan = scan(s)?;
    let magnitude = scan.magnitude?;
    let value: i64 = if scan.negative {
        if magnitude > 1u64 << 63 {
            return None; // ERANGE
        }
        (magnitude as i64).wrapping_neg()
    } else {
        i64::try_from(magnitude).ok()? // ERANGE
    };
    if !ends_cleanly(s, scan.end) {
        return None;
    }
    Some(value as i32)
}

/// Parses a stored value for incr/decr. The value is followed by `\r\n` in memcached's memory,
/// so the end of the data counts as whitespace.
pub fn parse_stored_u64(data: &[u8]) -> Option<u64> {
    safe_strtoull(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtoull_quirks() {
        assert_eq!(safe_strtoull(b"123"), Some(123));
        assert_eq!(safe_strtoull(b" 12"), Some(12));
        assert_eq!(safe_strtoull(b"+7"), Some(7));
        assert_eq!(safe_strtoull(b"12 34"), Some(12));
        assert_eq!(safe_strtoull(b"12\t"), Some(12));
        assert_eq!(safe_strtoull(b"12a"), None);
        assert_eq!(safe_strtoull(b""), None);
        assert_eq!(safe_strtoull(b"-"), None);
        assert_eq!(safe_strtoull(b"-1"), None);
        assert_eq!(safe_strtoull(b"-0"), Some(0));
        assert_eq!(safe_strtoull(b"-18446744073709551615"), Some(1));
        assert_eq!(safe_strtoull(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(safe_strtoull(b"18446744073709551616"), None);
        assert_eq!(safe_strtoull(b"5\0x"), Some(5));
    }

    #[test]
    fn thirty_two_bit_fields_truncate() {
        assert_eq!(safe_strtoul(b"4294967297"), Some(1));
        assert_eq!(safe_strtoul(b"-1"), None);
        assert_eq!(safe_strtol(b"4294967295"), Some(-1));
        assert_eq!(safe_strtol(b"2147483648"), Some(i32::MIN));
        assert_eq!(safe_strtol(b"-5"), Some(-5));
        assert_eq!(safe_strtol(b"9223372036854775808"), None);
        assert_eq!(safe_strtol(b"-9223372036854775808"), Some(0));
        assert_eq!(safe_strtol(b"abc"), None);
        assert_eq!(safe_strtol(b"1x"), None);
    }
}
