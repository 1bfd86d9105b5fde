use super::*;

// The protocol's view: `safe_strto*` on request fields.

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

// The settings' view: `atoi`/`strtol`/`atof` on option values, and the range-checked
// `safe_strtol`.

#[test]
fn atoi_takes_the_numeric_prefix() {
    assert_eq!(atoi(b"64"), 64);
    assert_eq!(atoi(b"  12"), 12);
    assert_eq!(atoi(b"+7x"), 7);
    assert_eq!(atoi(b"-5"), -5);
    assert_eq!(atoi(b"2g"), 2);
    assert_eq!(atoi(b"abc"), 0);
    assert_eq!(atoi(b""), 0);
    assert_eq!(atoi(b"1.5"), 1);
}

#[test]
fn atoi_wraps_like_glibc() {
    // strtol gives 4294967297, the cast to int keeps the low 32 bits.
    assert_eq!(atoi(b"4294967297"), 1);
    // Beyond `long`, strtol clamps to LONG_MAX whose low 32 bits are all ones.
    assert_eq!(atoi(b"99999999999999999999999"), -1);
    assert_eq!(atoi(b"-99999999999999999999999"), 0);
}

#[test]
fn strtol_octal_for_unix_mask() {
    assert_eq!(strtol_int(b"755", 8), 0o755);
    assert_eq!(strtol_int(b"0700", 8), 0o700);
    assert_eq!(strtol_int(b"9", 8), 0);
    assert_eq!(strtol_int(b"78", 8), 7);
    assert_eq!(strtol_int(b"abc", 8), 0);
}

#[test]
fn safe_strtol_needs_a_whole_number() {
    assert_eq!(safe_strtol_in_range(b"11211"), Some(11211));
    assert_eq!(safe_strtol_in_range(b" 5"), Some(5));
    assert_eq!(safe_strtol_in_range(b"5 "), Some(5));
    assert_eq!(safe_strtol_in_range(b"5 junk"), Some(5));
    assert_eq!(safe_strtol_in_range(b"-4"), Some(-4));
    assert_eq!(safe_strtol_in_range(b"5x"), None);
    assert_eq!(safe_strtol_in_range(b""), None);
    assert_eq!(safe_strtol_in_range(b" "), None);
    assert_eq!(safe_strtol_in_range(b"abc"), None);
    assert_eq!(safe_strtol_in_range(b"2147483648"), None);
    assert_eq!(safe_strtol_in_range(b"99999999999999999999"), None);
}

#[test]
fn safe_strtoul_rejects_wrapped_negatives() {
    assert_eq!(safe_strtoul(b"100"), Some(100));
    assert_eq!(safe_strtoul(b"-1"), None);
    assert_eq!(safe_strtoul(b"-0"), Some(0));
    assert_eq!(safe_strtoul(b"abc"), None);
    assert_eq!(safe_strtoul(b"4294967296"), Some(0));
    assert_eq!(safe_strtoul(b"99999999999999999999"), None);
}

#[test]
fn atof_takes_the_float_prefix() {
    assert_eq!(atof(b"1.25"), 1.25);
    assert_eq!(atof(b"1.5x"), 1.5);
    assert_eq!(atof(b" 2"), 2.0);
    assert_eq!(atof(b".5"), 0.5);
    assert_eq!(atof(b"5."), 5.0);
    assert_eq!(atof(b"1e2"), 100.0);
    assert_eq!(atof(b"1e"), 1.0);
    assert_eq!(atof(b"-0.5"), -0.5);
    assert_eq!(atof(b"abc"), 0.0);
    assert_eq!(atof(b"."), 0.0);
    assert!(atof(b"inf").is_infinite());
    assert!(atof(b"NaN").is_nan());
}

#[test]
fn atof_on_bytes() {
    assert_eq!(atof(b"-Infinity"), f64::NEG_INFINITY);
    assert_eq!(atof(b"+INFx"), f64::INFINITY);
    // Whatever follows the prefix need not be text.
    assert_eq!(atof(b"1.5\xff"), 1.5);
    assert_eq!(atof(b"\xff"), 0.0);
}

#[test]
fn only_the_range_differs_between_the_safe_strtols() {
    for s in [&b"7"[..], b" -7 x", b"7x", b"", b"-2147483648"] {
        assert_eq!(safe_strtol(s), safe_strtol_in_range(s));
    }
    assert_eq!(safe_strtol(b"4294967295"), Some(-1));
    assert_eq!(safe_strtol_in_range(b"4294967295"), None);
}

#[test]
fn safe_strtod_wants_the_whole_token() {
    assert_eq!(safe_strtod(b"0.2"), Some(0.2));
    assert_eq!(safe_strtod(b"2"), Some(2.0));
    assert_eq!(safe_strtod(b"-1"), Some(-1.0));
    assert_eq!(safe_strtod(b"1e1"), Some(10.0));
    assert_eq!(safe_strtod(b"0.5 "), Some(0.5));
    assert_eq!(safe_strtod(b"0.5x"), None);
    assert_eq!(safe_strtod(b"x"), None);
    assert_eq!(safe_strtod(b""), None);
    assert_eq!(safe_strtod(b"1e999"), None);
    assert!(safe_strtod(b"inf").is_some_and(f64::is_infinite));
}
