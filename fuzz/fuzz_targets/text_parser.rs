//! Arbitrary bytes through the text protocol's tokenizer and request parser, and the number
//! parsers it uses, with the properties their callers rely on checked.
#![no_main]
use libfuzzer_sys::fuzz_target;
use memcached_rs::numparse::{safe_strtol, safe_strtoul, safe_strtoull};
use memcached_rs::protocol::text::{self, Request, Tokens};
use memcached_rs::protocol::{meta, KEY_MAX_LENGTH};

fn check_tokens(line: &[u8]) {
    let t = Tokens::new(line);
    let n = t.count();
    assert!((1..=24).contains(&n), "token count {n}");
    let mut last_end = 0usize;
    let base = line.as_ptr() as usize;
    for i in 0..n - 1 {
        let tok = t.get(i);
        assert!(!tok.is_empty() && !tok.contains(&b' '), "token {i} {tok:?}");
        let at = tok.as_ptr() as usize - base;
        assert!(at >= last_end, "tokens in order");
        last_end = at + tok.len();
        assert_eq!(
            t.from(i).len(),
            line.len() - at,
            "from({i}) runs to the end"
        );
    }
    for i in n - 1..n + 2 {
        assert!(t.get(i).is_empty(), "no token {i} past the end");
    }
    let _ = t.from(n);
    assert_eq!(
        t.noreply(),
        n >= 2 && t.get(n - 2) == b"noreply",
        "noreply is the last token"
    );
    // Numbers: what the parsers accept must be what the digits say.
    for i in 0..n - 1 {
        let tok = t.get(i);
        let v64 = safe_strtoull(tok);
        let _ = (safe_strtoul(tok), safe_strtol(tok));
        let _ = memcached_rs::numparse::safe_strtod(tok);
        if !tok.is_empty() && tok.len() <= 19 && tok.iter().all(u8::is_ascii_digit) {
            let want: u64 = std::str::from_utf8(tok).unwrap().parse().unwrap();
            assert_eq!(v64, Some(want), "safe_strtoull of {tok:?}");
            let mut out = Vec::new();
            text::write_u64(&mut out, want);
            assert_eq!(out, want.to_string().as_bytes(), "write_u64({want})");
        }
    }
}

fn check_request(line: &[u8]) {
    let req = text::parse(line);
    match req {
        Request::Get { keys, .. } => {
            let all: Vec<&[u8]> = keys.iter().collect();
            let from: Vec<(usize, &[u8])> = keys.iter_from(0).collect();
            assert_eq!(all.len(), from.len());
            for (k, (off, k2)) in all.iter().zip(&from) {
                assert_eq!(k, k2);
                assert!(!k.is_empty() && !k.contains(&b' '));
                // A paused multi-get resumes exactly at the key it stopped before.
                assert_eq!(keys.iter_from(*off).next(), Some((*off, *k)));
            }
        }
        Request::Store(line) => {
            assert!(line.key.len() <= KEY_MAX_LENGTH);
            assert!(line.length <= (i32::MAX - 2) as usize);
        }
        Request::Delete { key, .. }
        | Request::Arithmetic { key, .. }
        | Request::Touch { key, .. } => assert!(key.len() <= KEY_MAX_LENGTH),
        Request::Meta(_, tokens) => {
            for start in 1..4 {
                let _ = meta::preparse(&tokens, start);
                assert!(meta::flag_tokens(tokens, start).all(|t| !t.is_empty()));
            }
        }
        _ => {}
    }
    // A NUL ends the line, as it ends a C string.
    if let Some(nul) = line.iter().position(|&b| b == 0) {
        assert_eq!(
            format!("{:?}", text::parse(&line[..nul])),
            format!("{req:?}"),
            "a NUL ends the line"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    // The connection hands the parser one line at a time, without its "\n" (and "\r").
    for line in data.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        check_tokens(line);
        check_request(line);
    }
});
