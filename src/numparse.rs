//! Number parsing exactly as memcached's C code does it, for the protocol and for the settings.
//!
//! memcached reads numbers with glibc's `strtol`/`strtoul`/`strtoull`/`atoi`/`atof` (on a 64-bit
//! target, where `long` is 64 bits), sometimes wrapped in its own `safe_strto*` checks. Their
//! quirks are visible to clients and to whoever writes a config, so they are reproduced on
//! purpose rather than replaced by Rust's strict `str::parse`:
//!
//! - leading whitespace and a sign are accepted;
//! - `atoi`/`atof`/`strtol` never fail: they take the longest numeric prefix (`-m 64M` is 64,
//!   `-c abc` is 0), and `atoi` keeps the low 32 bits of the `long` it gets;
//! - `safe_strto*` want the number to end at whitespace or the end of the string, so `12 34` is
//!   12 but `12a` is refused;
//! - a 32-bit protocol field silently keeps the low 32 bits of a larger number (flags
//!   `4294967297` is 1, exptime `4294967295` is -1);
//! - `strtoull` negates a `-` number modulo 2^64 (so `-18446744073709551615` is 1), which
//!   memcached refuses only when the result looks negative.
//!
//! Everything is one scanner, `scan`, with thin wrappers that apply each C function's rules.
//! Input is bytes because the protocol hands us bytes; the settings pass `str::as_bytes()`.

/// C's `isspace` in the "C" locale.
#[inline]
pub fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The result of scanning a number the way `strto*` does.
struct Scan {
    negative: bool,
    /// The digits' value, or `None` if it exceeds `u64` (`strtoull`'s `ERANGE`).
    magnitude: Option<u64>,
    /// Index just past the last digit (`endptr`).
    end: usize,
}

/// Scans like `strtoull(s, &end, radix)`: whitespace, an optional sign, then digits in `radix`.
/// `None` when there are no digits (C's `end == s`). No `0x`/`0` prefix is recognised because
/// memcached only ever passes radix 10, or 8 for `-a` where a leading 0 is a digit anyway.
fn scan(s: &[u8], radix: u32) -> Option<Scan> {
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
    while let Some(d) = s.get(i).and_then(|&c| char::from(c).to_digit(radix)) {
        // C keeps consuming digits after an overflow (endptr goes past them all).
        magnitude = magnitude
            .and_then(|m| m.checked_mul(u64::from(radix)))
            .and_then(|m| m.checked_add(u64::from(d)));
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

/// What `strtol(s, &end, radix)` reports when it converted something.
struct Long {
    /// The value, clamped to `LONG_MIN..=LONG_MAX` as glibc does on overflow.
    value: i64,
    /// True when the value was clamped (`errno == ERANGE`).
    range_error: bool,
    /// Index just past the last digit.
    end: usize,
}

/// C's `strtol(s, &end, radix)` with a 64-bit `long`; `None` when there are no digits.
fn strtol(s: &[u8], radix: u32) -> Option<Long> {
    let sc = scan(s, radix)?;
    let limit = if sc.negative {
        i64::MIN.unsigned_abs()
    } else {
        i64::MAX as u64
    };
    let in_range = sc.magnitude.filter(|&m| m <= limit);
    let value = match in_range {
        // The range check makes these conversions exact (`wrapping_neg` only for LONG_MIN).
        Some(m) if sc.negative => (m as i64).wrapping_neg(),
        Some(m) => m as i64,
        None if sc.negative => i64::MIN,
        None => i64::MAX,
    };
    Some(Long {
        value,
        range_error: in_range.is_none(),
        end: sc.end,
    })
}

/// memcached accepts a number only if it is followed by whitespace or the end of the string
/// (a NUL ends a C string too, so it counts as the end).
fn ends_cleanly(s: &[u8], end: usize) -> bool {
    end == s.len() || s[end] == 0 || is_c_space(s[end])
}

/// memcached's `safe_strtoull`: a whole decimal number. A negative number wraps modulo 2^64
/// and is refused only when the result would look negative as an `int64_t`.
pub fn safe_strtoull(s: &[u8]) -> Option<u64> {
    let scan = scan(s, 10)?;
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

/// memcached's `safe_strtol`: `strtol` (64-bit `long`), then truncated to 32 bits, because
/// memcached stores the `long` straight into an `int32_t`.
pub fn safe_strtol(s: &[u8]) -> Option<i32> {
    safe_strtol_long(s).map(|v| v as i32)
}

/// Like [`safe_strtol`], but a number outside the `int32_t` range is refused instead of
/// keeping its low 32 bits. The settings use it for ports and sizes, where memcached's wrap
/// would quietly turn a typo such as `-l :4295032831` into a different valid value.
pub fn safe_strtol_in_range(s: &[u8]) -> Option<i32> {
    i32::try_from(safe_strtol_long(s)?).ok()
}

/// The checks `safe_strtol` makes on `strtol`'s result, before storing it anywhere.
fn safe_strtol_long(s: &[u8]) -> Option<i64> {
    let long = strtol(s, 10)?;
    if long.range_error || !ends_cleanly(s, long.end) {
        return None;
    }
    Some(long.value)
}

/// Parses a stored value for incr/decr. The value is followed by `\r\n` in memcached's memory,
/// so the end of the data counts as whitespace.
pub fn parse_stored_u64(data: &[u8]) -> Option<u64> {
    safe_strtoull(data)
}

/// C's `atoi`: glibc computes `(int) strtol(s, NULL, 10)`, so there is always a result (0 when
/// there are no digits) and out-of-range input wraps.
pub fn atoi(s: &[u8]) -> i32 {
    strtol_int(s, 10)
}

/// C's `strtol(s, NULL, radix)` stored into an `int`, as memcached does for `-a` (radix 8): the
/// longest prefix of digits, 0 when there are none, and the low 32 bits of the clamped `long`.
pub fn strtol_int(s: &[u8], radix: u32) -> i32 {
    strtol(s, radix).map_or(0, |long| long.value as i32)
}

/// C's `atof`: the longest prefix that reads as a decimal float, else 0.0. Hexadecimal floats
/// are not recognised (nobody writes `-f 0x1.4p0`).
pub fn atof(s: &[u8]) -> f64 {
    strtod(s).map_or(0.0, |(value, _)| value)
}

/// memcached's `safe_strtod`: a float followed by whitespace or the end, and in range (a
/// finite number written too large is C's `ERANGE`).
pub fn safe_strtod(s: &[u8]) -> Option<f64> {
    let (value, end) = strtod(s)?;
    let written_infinite = s[..end]
        .iter()
        .any(|b| b.is_ascii_alphabetic() && !b"eE".contains(b));
    if value.is_infinite() && !written_infinite {
        return None;
    }
    ends_cleanly(s, end).then_some(value)
}

/// C's `strtod` on decimal input: the value of the longest float prefix and where it ends, or
/// `None` when there is none.
fn strtod(s: &[u8]) -> Option<(f64, usize)> {
    let mut i = 0;
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    let start = i;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        i += 1;
    }
    for word in ["infinity", "inf", "nan"] {
        let found = s.get(i..i + word.len());
        if found.is_some_and(|w| w.eq_ignore_ascii_case(word.as_bytes())) {
            // Rust parses the same words, sign included, so only the case needs normalising.
            let end = i + word.len();
            return Some((parse_f64(&[&s[start..i], word.as_bytes()].concat()), end));
        }
    }
    let digits = |i: &mut usize| {
        let from = *i;
        while *i < s.len() && s[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - from
    };
    let mut mantissa_digits = digits(&mut i);
    if i < s.len() && s[i] == b'.' {
        i += 1;
        mantissa_digits += digits(&mut i);
    }
    if mantissa_digits == 0 {
        return None;
    }
    // An exponent counts only if digits follow it: "1e" is 1.
    if i < s.len() && (s[i] == b'e' || s[i] == b'E') {
        let mut j = i + 1;
        if j < s.len() && (s[j] == b'+' || s[j] == b'-') {
            j += 1;
        }
        if digits(&mut j) > 0 {
            i = j;
        }
    }
    Some((parse_f64(&s[start..i]), i))
}

/// Rust's float parser on a prefix [`atof`] has already validated (ASCII, C float syntax, which
/// Rust also accepts, including `5.` and `.5`).
fn parse_f64(text: &[u8]) -> f64 {
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests;
