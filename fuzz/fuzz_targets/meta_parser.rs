//! Arbitrary bytes through the meta protocol's flag parser and its base64 keys.
#![no_main]
use libfuzzer_sys::fuzz_target;
use memcached_rs::protocol::text::{self, MetaKind, Request, Tokens};
use memcached_rs::protocol::{base64, meta};

fn check_flags(tokens: &Tokens<'_>, start: usize) {
    let Ok(f) = meta::preparse(tokens, start) else {
        return;
    };
    let flags: Vec<&[u8]> = meta::flag_tokens(*tokens, start).collect();
    assert!(flags.iter().all(|t| !t.is_empty()));
    // Every flag letter at most once (a repeat is an error).
    let mut seen = [false; 256];
    for t in &flags {
        assert!(
            !seen[usize::from(t[0])],
            "flag {} twice yet accepted",
            t[0] as char
        );
        seen[usize::from(t[0])] = true;
    }
    if let Some(key) = &f.binary_key {
        assert!(seen[usize::from(b'b')]);
        assert!(!key.is_empty(), "an empty base64 key accepted");
        assert_eq!(base64::decode(tokens.get(1)).as_ref(), Some(key));
    }
    if let Some(m) = f.mode {
        let t = flags.iter().find(|t| t[0] == b'M').expect("M flag");
        assert_eq!(t.len(), 2);
        assert_eq!(t[1], m);
    }
    assert_eq!(f.quiet, seen[usize::from(b'q')]);
    assert_eq!(f.value, seen[usize::from(b'v')]);
    assert_eq!(f.invalidate, seen[usize::from(b'I')]);
    assert_eq!(f.no_update, seen[usize::from(b'u')]);
    if !seen[usize::from(b'D')] {
        assert_eq!(f.delta, 1, "delta defaults to 1");
    }
    if !seen[usize::from(b'J')] {
        assert_eq!(f.initial, 0);
    }
    let mut out = Vec::new();
    meta::write_key(&mut out, tokens.get(1), f.binary_key.is_some());
    assert!(out.starts_with(b" k"));
}

fn check_base64(data: &[u8]) {
    if let Some(v) = base64::decode(data) {
        assert!(!v.is_empty());
        assert!(
            v.len() <= data.len() / 4 * 3,
            "decoded longer than its input"
        );
        let mut enc = Vec::new();
        base64::encode_into(&v, &mut enc);
        assert_eq!(base64::decode(&enc), Some(v), "decode(encode(decode(x)))");
    }
    if !data.is_empty() {
        let mut enc = Vec::new();
        base64::encode_into(data, &mut enc);
        assert_eq!(enc.len(), data.len().div_ceil(3) * 4);
        assert_eq!(
            base64::decode(&enc).as_deref(),
            Some(data),
            "decode(encode(x))"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks a command, so that the rest is always parsed as its flags.
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let prefix: &[u8] = match pick % 8 {
        0 => b"mg ",
        1 => b"ms ",
        2 => b"md ",
        3 => b"ma ",
        4 => b"mn ",
        5 => b"me ",
        6 => b"",
        _ => {
            check_base64(rest);
            return;
        }
    };
    let mut line = prefix.to_vec();
    line.extend_from_slice(rest);
    let line = match line.iter().position(|&b| b == b'\n' || b == 0) {
        Some(end) => &line[..end],
        None => &line[..],
    };
    let tokens = Tokens::new(line);
    for start in 2..4 {
        check_flags(&tokens, start);
    }
    check_base64(tokens.get(1));
    if let Request::Meta(kind, t) = text::parse(line) {
        let start = if kind == MetaKind::Set { 3 } else { 2 };
        check_flags(&t, start);
    }
});
