//! The C library number conversions memcached applies to option values.
//!
//! memcached reads most flags with `atoi`/`atof`/`strtol`, which never fail: they take the
//! longest numeric prefix and ignore the rest (`-m 64M` is 64, `-c abc` is 0), and its range
//! checks run on that result. Reproducing the conversions is what makes our accept/reject
//! decisions and error texts match memcached's for odd input, so these follow glibc on a 64-bit
//! target (where `long` is 64 bits) rather than Rust's strict `str::parse`.

/// C `isspace` in the "C" locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The result of scanning with `strtol`/`strtoul`.
struct Scan {
    negative: bool,
    /// Magnitude, saturated at `u64::MAX`.
    magnitude: u64,
    /// True when the magnitude did not fit in a `u64`.
    overflow: bool,
    /// Byte index just past the last digit, or 0 when there were no digits (C's `endptr == str`).
    end: usize,
}

/// The part common to `strtol` and `strtoul`: whitespace, sign, then digits in `radix`.
fn scan(s: &str, radix: u32) -> Scan {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && is_c_space(b[i]) {
        i += 1;
    }
    let mut negative = false;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        negative = b[i] == b'-';
        i += 1;
    }
    let digits_start = i;
    let mut magnitude: u64 = 0;
    let mut overflow = false;
    while let Some(d) = b.get(i).and_then(|&c| (c as char).to_digit(radix)) {
        match magnitude
            .checked_mul(u64::from(radix))
            .and_then(|m| m.checked_add(u64::from(d)))
        {
            Some(m) => magnitude = m,
            None => overflow = true,
        }
        i += 1;
    }
    if overflow {
        magnitude = u64::MAX;
    }
    let end = if i == digits_start { 0 } else { i };
    Scan {
        negative,
        magnitude,
        overflow,
        end,
    }
}

/// C `strtol(s, &end, radix)`: the value clamped to the `long` range, whether it was clamped
/// (`ERANGE`), and the end index (0 when nothing was converted).
fn strtol(s: &str, radix: u32) -> (i64, bool, usize) {
    let sc = scan(s, radix);
    let limit = if sc.negative {
        i64::MIN.unsigned_abs()
    } else {
        i64::MAX as u64
    };
    let range_error = sc.overflow || sc.magnitude > limit;
    let value = match (sc.negative, range_error) {
        (false, true) => i64::MAX,
        (true, true) => i64::MIN,
        // The range check above makes these conversions exact.
        (false, false) => sc.magnitude as i64,
        (true, false) => (sc.magnitude as i64).wrapping_neg(),
    };
    (value, range_error, sc.end)
}

/// C `atoi`: glibc computes `(int) strtol(s, NULL, 10)`, so out-of-range input wraps.
pub(crate) fn atoi(s: &str) -> i32 {
    strtol(s, 10).0 as i32
}

/// C `strtol(s, NULL, radix)` stored into an `int`, as memcached does for `-a` (radix 8).
pub(crate) fn strtol_int(s: &str, radix: u32) -> i32 {
    strtol(s, radix).0 as i32
}

/// True if memcached's `safe_strto*` would accept `end` as the end of the number: it must stop
/// at whitespace or the end of the string, after at least one digit.
fn ends_cleanly(s: &str, end: usize) -> bool {
    end != 0 && s.as_bytes().get(end).map_or(true, |&c| is_c_space(c))
}

/// memcached's `safe_strtol`: a whole decimal number that fits an `int32_t`.
pub(crate) fn safe_strtol(s: &str) -> Option<i32> {
    let (value, range_error, end) = strtol(s, 10);
    if range_error || !ends_cleanly(s, end) {
        return None;
    }
    i32::try_from(value).ok()
}

/// memcached's `safe_strtoul`: a whole decimal number stored into a `uint32_t`. Like the C
/// original it rejects an explicit negative number only when it wraps to a huge value, and it
/// truncates to 32 bits.
pub(crate) fn safe_strtoul(s: &str) -> Option<u32> {
    let sc = scan(s, 10);
    if sc.overflow || !ends_cleanly(s, sc.end) {
        return None;
    }
    let value = if sc.negative {
        sc.magnitude.wrapping_neg()
    } else {
        sc.magnitude
    };
    if (value as i64) < 0 && sc.negative {
        return None;
    }
    Some(value as u32)
}

/// C `atof`: the longest prefix that reads as a decimal float, else 0.0. Hexadecimal floats are
/// not recognised (nobody writes `-f 0x1.4p0`).
pub(crate) fn atof(s: &str) -> f64 {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && is_c_space(b[i]) {
        i += 1;
    }
    let start = i;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let rest = s[i..].to_ascii_lowercase();
    for word in ["infinity", "inf", "nan"] {
        if rest.starts_with(word) {
            let text = format!("{}{}", &s[start..i], word);
            return text.parse().unwrap_or(0.0);
        }
    }
    let digits = |i: &mut usize| {
        let from = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - from
    };
    let mut mantissa_digits = digits(&mut i);
    if i < b.len() && b[i] == b'.' {
        i += 1;
        mantissa_digits += digits(&mut i);
    }
    if mantissa_digits == 0 {
        return 0.0;
    }
    // An exponent counts only if digits follow it: "1e" is 1.
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        if digits(&mut j) > 0 {
            i = j;
        }
    }
    s[start..i].parse().unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atoi_takes_the_numeric_prefix() {
        assert_eq!(atoi("64"), 64);
        assert_eq!(atoi("  12"), 12);
        assert_eq!(atoi("+7x"), 7);
        assert_eq!(atoi("-5"), -5);
        assert_eq!(atoi("2g"), 2);
        assert_eq!(atoi("abc"), 0);
        assert_eq!(atoi(""), 0);
        assert_eq!(atoi("1.5"), 1);
    }

    #[test]
    fn atoi_wraps_like_glibc() {
        // strtol gives 4294967297, the cast to int keeps the low 32 bits.
        assert_eq!(atoi("4294967297"), 1);
        // Beyond `long`, strtol clamps to LONG_MAX whose low 32 bits are all ones.
        assert_eq!(atoi("99999999999999999999999"), -1);
        assert_eq!(atoi("-99999999999999999999999"), 0);
    }

    #[test]
    fn strtol_octal_for_unix_mask() {
        assert_eq!(strtol_int("755", 8), 0o755);
        assert_eq!(strtol_int("0700", 8), 0o700);
        assert_eq!(strtol_int("9", 8), 0);
        assert_eq!(strtol_int("78", 8), 7);
        assert_eq!(strtol_int("abc", 8), 0);
    }

    #[test]
    fn safe_strtol_needs_a_whole_number() {
        assert_eq!(safe_strtol("11211"), Some(11211));
        assert_eq!(safe_strtol(" 5"), Some(5));
        assert_eq!(safe_strtol("5 "), Some(5));
        assert_eq!(safe_strtol("5 junk"), Some(5));
        assert_eq!(safe_strtol("-4"), Some(-4));
        assert_eq!(safe_strtol("5x"), None);
        assert_eq!(safe_strtol(""), None);
        assert_eq!(safe_strtol(" "), None);
        assert_eq!(safe_strtol("abc"), None);
        assert_eq!(safe_strtol("2147483648"), None);
        assert_eq!(safe_strtol("99999999999999999999"), None);
    }

    #[test]
    fn safe_strtoul_rejects_wrapped_negatives() {
        assert_eq!(safe_strtoul("100"), Some(100));
        assert_eq!(safe_strtoul("-1"), None);
        assert_eq!(safe_strtoul("-0"), Some(0));
        assert_eq!(safe_strtoul("abc"), None);
        assert_eq!(safe_strtoul("4294967296"), Some(0));
        assert_eq!(safe_strtoul("99999999999999999999"), None);
    }

    #[test]
    fn atof_takes_the_float_prefix() {
        assert_eq!(atof("1.25"), 1.25);
        assert_eq!(atof("1.5x"), 1.5);
        assert_eq!(atof(" 2"), 2.0);
        assert_eq!(atof(".5"), 0.5);
        assert_eq!(atof("5."), 5.0);
        assert_eq!(atof("1e2"), 100.0);
        assert_eq!(atof("1e"), 1.0);
        assert_eq!(atof("-0.5"), -0.5);
        assert_eq!(atof("abc"), 0.0);
        assert_eq!(atof("."), 0.0);
        assert!(atof("inf").is_infinite());
        assert!(atof("NaN").is_nan());
    }
}
