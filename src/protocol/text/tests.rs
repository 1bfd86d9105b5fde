use super::*;

fn is_error(req: Request<'_>, want: &str, want_noreply: bool) -> bool {
    matches!(req, Request::Error { reply, noreply } if reply == want && noreply == want_noreply)
}

#[test]
fn tokenizer_matches_memcached() {
    let t = Tokens::new(b"  set  a 0 ");
    assert_eq!(t.count(), 4);
    assert_eq!(t.get(0), b"set");
    assert_eq!(t.get(1), b"a");
    assert_eq!(t.get(2), b"0");
    assert_eq!(t.get(3), b"");

    let many: Vec<String> = (0..30).map(|i| format!("k{i}")).collect();
    let line = format!("get {}", many.join(" "));
    let t = Tokens::new(line.as_bytes());
    assert_eq!(t.count(), MAX_TOKENS);
    assert_eq!(t.from(23), &line.as_bytes()[line.find("k22").unwrap()..]);
}

#[test]
fn get_keys_span_the_whole_line() {
    let many: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    let line = format!("gets {}", many.join("  "));
    let Request::Get {
        keys,
        with_cas,
        touch,
    } = parse(line.as_bytes())
    else {
        panic!("not a get");
    };
    assert!(with_cas);
    assert_eq!(touch, None);
    let got: Vec<&[u8]> = keys.iter().collect();
    assert_eq!(got.len(), 40);
    assert_eq!(got[39], b"k39");
}

#[test]
fn gat_takes_exptime_first() {
    let Request::Get { keys, touch, .. } = parse(b"gat 100 a b") else {
        panic!("not a gat");
    };
    assert_eq!(touch, Some(100));
    assert_eq!(keys.iter().count(), 2);
    assert!(is_error(parse(b"gat x a"), BAD_EXPTIME, false));
    let Request::Get { keys, .. } = parse(b"gat 10") else {
        panic!("not a gat");
    };
    assert_eq!(keys.iter().count(), 0);
}

#[test]
fn store_lines() {
    let Request::Store(StoreLine {
        command,
        key,
        flags,
        exptime,
        length,
        cas,
        noreply,
    }) = parse(b"cas k 5 -1 10 99 noreply")
    else {
        panic!("not a store");
    };
    assert_eq!(command, StoreMode::Cas);
    assert_eq!(
        (key, flags, exptime, length, cas, noreply),
        (&b"k"[..], 5, -1, 10, 99, true)
    );
    assert!(is_error(parse(b"set k 0 0 -1"), BAD_FORMAT, false));
    assert!(is_error(parse(b"set k 0 0 x noreply"), BAD_FORMAT, true));
    assert!(is_error(parse(b"set k 0 0"), "ERROR", false));
    let long_key = format!("set {} 0 0 1", "k".repeat(251));
    assert!(is_error(parse(long_key.as_bytes()), BAD_FORMAT, false));
}

#[test]
fn delete_forms() {
    assert!(matches!(
        parse(b"delete a"),
        Request::Delete { noreply: false, .. }
    ));
    assert!(matches!(
        parse(b"delete a 0"),
        Request::Delete { noreply: false, .. }
    ));
    assert!(matches!(
        parse(b"delete a noreply"),
        Request::Delete { noreply: true, .. }
    ));
    assert!(matches!(
        parse(b"delete a 0 noreply"),
        Request::Delete { noreply: true, .. }
    ));
    assert!(matches!(
        parse(b"delete a 1"),
        Request::Error { noreply: false, .. }
    ));
    assert!(is_error(parse(b"delete a 1 2 3"), "ERROR", false));
}

#[test]
fn dispatch_by_first_byte() {
    assert!(is_error(parse(b""), "ERROR", false));
    assert!(is_error(parse(b"x"), "ERROR", false));
    assert!(is_error(parse(b"get"), "ERROR", false));
    assert!(matches!(parse(b"GET / HTTP/1.1"), Request::Close));
    // A 'g' command is never taken for an HTTP line.
    assert!(is_error(parse(b"gxx / HTTP/1.1"), "ERROR", false));
    assert!(matches!(parse(b"version"), Request::Version));
    assert!(matches!(parse(b"get a\0 b"), Request::Get { .. }));
    assert!(is_error(parse(b"\0version"), "ERROR", false));
}

#[test]
fn flush_all_arguments() {
    assert!(matches!(
        parse(b"flush_all"),
        Request::FlushAll {
            delay: FlushDelay::Now,
            noreply: false
        }
    ));
    assert!(matches!(
        parse(b"flush_all noreply"),
        Request::FlushAll {
            delay: FlushDelay::Now,
            noreply: true
        }
    ));
    assert!(matches!(
        parse(b"flush_all 10 noreply"),
        Request::FlushAll {
            delay: FlushDelay::Seconds(10),
            noreply: true
        }
    ));
    assert!(matches!(
        parse(b"flush_all x"),
        Request::FlushAll {
            delay: FlushDelay::Invalid,
            ..
        }
    ));
}

#[test]
fn writes_values() {
    let mut out = Vec::new();
    write_value_header(&mut out, b"k", 7, 4, Some(12));
    assert_eq!(out, b"VALUE k 7 4 12\r\n");
    out.clear();
    write_u64(&mut out, u64::MAX);
    assert_eq!(out, b"18446744073709551615");
}

#[test]
fn writes_every_width_of_number_as_std_does() {
    let mut samples = vec![0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, u64::MAX];
    let mut p = 1u64;
    while let Some(next) = p.checked_mul(10) {
        samples.extend([p - 1, p, p + 1, next / 2 + 7]);
        p = next;
    }
    samples.extend([u32::MAX as u64, u32::MAX as u64 + 1, 4_294_967_295_123]);
    for n in samples {
        let mut out = b"x".to_vec();
        write_u64(&mut out, n);
        assert_eq!(out, format!("x{n}").into_bytes(), "{n}");
    }
}

#[test]
fn the_get_fast_path_matches_the_general_parser() {
    let long: String = (0..40).map(|i| format!(" k{i}")).collect();
    let lines = [
        "get k".to_string(),
        "gets k".into(),
        "get   a  b   c ".into(),
        "gets  x".into(),
        format!("get{long}"),
        format!("gets{long}"),
        "get k noreply".into(),
    ];
    for line in &lines {
        let fast = super::plain_get(line.as_bytes()).expect("a plain get");
        let general = super::parse_tokens(line.as_bytes());
        assert_eq!(format!("{fast:?}"), format!("{general:?}"), "{line:?}");
    }
    // Lines the fast path must leave to the general one.
    for line in [
        "get", "get ", "get    ", "gets ", "gat 1 k", "getx k", " get k",
    ] {
        assert!(super::plain_get(line.as_bytes()).is_none(), "{line:?}");
    }
}
