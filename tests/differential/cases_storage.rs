//! Storage commands: set, add, replace, append, prepend, cas — success and failure paths,
//! noreply, the numeric fields' edge values, data blocks of the wrong length, binary values
//! and key lengths.

use crate::case::{cat, rep, store, unix_now_plus, Case};

/// Every case of this file.
pub fn cases() -> Vec<Case> {
    let mut cases = set_cases();
    cases.extend(numeric_field_cases());
    cases.extend(data_block_cases());
    cases.extend(add_replace_cases());
    cases.extend(append_prepend_cases());
    cases.extend(cas_cases());
    cases
}

fn set_cases() -> Vec<Case> {
    let key250 = rep('k', 250);
    let key251 = rep('k', 251);
    vec![
        Case::new("set/basic", "set k 0 0 5\r\nhello\r\nget k\r\n"),
        Case::new(
            "set/overwrite",
            "set k 1 0 3\r\none\r\nset k 2 0 5\r\nthree\r\nget k\r\n",
        ),
        Case::new("set/noreply", "set k 0 0 1 noreply\r\nx\r\nget k\r\n"),
        Case::new(
            "set/noreply misspelled is an extra token",
            "set k 0 0 1 norepl\r\nx\r\nget k\r\n",
        ),
        Case::new(
            "set/noreply then error reply",
            "set k 0 0 abc noreply\r\nx\r\nget k\r\n",
        ),
        Case::new(
            "set/too many tokens",
            "set k 0 0 1 noreply extra\r\nx\r\nget k\r\n",
        ),
        Case::new("set/too few tokens", "set k 0 0\r\nx\r\nget k\r\n"),
        Case::new("set/no arguments", "set\r\n"),
        Case::new("set/key only", "set k\r\n"),
        Case::new(
            "set/key 250 bytes",
            cat(&[
                &store("set", &key250, "0", "0", b"v"),
                format!("get {key250}\r\n").as_bytes(),
            ]),
        ),
        Case::new("set/key 251 bytes", store("set", &key251, "0", "0", b"v"))
            .sync()
            .send(format!("get {key251}\r\n")),
        Case::new(
            "set/key with control bytes",
            cat(&[
                &store("set", "a\x01b\x7f", "0", "0", b"v"),
                b"get a\x01b\x7f\r\n",
            ]),
        ),
        Case::new(
            "set/key with utf-8",
            cat(&[
                &store("set", "clé-ü", "0", "0", b"v"),
                "get clé-ü\r\n".as_bytes(),
            ]),
        ),
        Case::new(
            "set/many keys then get each",
            (0..20)
                .flat_map(|i| {
                    cat(&[
                        &store(
                            "set",
                            &format!("k{i}"),
                            &i.to_string(),
                            "0",
                            format!("value-{i}").as_bytes(),
                        ),
                        format!("get k{i}\r\n").as_bytes(),
                    ])
                })
                .collect::<Vec<u8>>(),
        ),
    ]
}

fn numeric_field_cases() -> Vec<Case> {
    let flags = [
        ("0", "0"),
        ("max u32", "4294967295"),
        ("2^32", "4294967296"),
        ("2^64", "18446744073709551616"),
        ("negative", "-1"),
        ("non-numeric", "abc"),
        ("plus sign", "+5"),
        ("trailing garbage", "5x"),
    ];
    let mut cases: Vec<Case> = flags
        .iter()
        .map(|(label, flags)| {
            Case::new(
                format!("set/flags {label}"),
                format!("set k {flags} 0 1\r\nx\r\nget k\r\n"),
            )
        })
        .collect();
    let past = "1000000000".to_string();
    let future = unix_now_plus(3600).to_string();
    let exptimes = [
        ("0", "0".to_string()),
        ("relative", "100".to_string()),
        ("30 days is relative", "2592000".to_string()),
        ("30 days plus 1 is absolute past", "2592001".to_string()),
        ("absolute past", past),
        ("absolute future", future),
        ("negative", "-1".to_string()),
        ("very negative", "-9999999999".to_string()),
        ("non-numeric", "soon".to_string()),
        ("huge", "99999999999999999999".to_string()),
    ];
    cases.extend(exptimes.iter().map(|(label, exptime)| {
        Case::new(
            format!("set/exptime {label}"),
            format!("set k 0 {exptime} 1\r\nx\r\nget k\r\n"),
        )
    }));
    let lengths = [
        ("0", "set k 0 0 0\r\n\r\nget k\r\n"),
        ("negative", "set k 0 0 -1\r\nx\r\nget k\r\n"),
        ("non-numeric", "set k 0 0 one\r\nx\r\nget k\r\n"),
        ("2^32", "set k 0 0 4294967296\r\nx\r\nget k\r\n"),
        ("2^31", "set k 0 0 2147483648\r\nx\r\nget k\r\n"),
        ("huge", "set k 0 0 99999999999999999999\r\nx\r\nget k\r\n"),
    ];
    cases.extend(
        lengths
            .iter()
            .map(|(label, script)| Case::new(format!("set/length {label}"), *script)),
    );
    cases
}

fn data_block_cases() -> Vec<Case> {
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    let mb = vec![b'x'; 1024 * 1024];
    let near_mb = vec![b'y'; 1_000_000];
    vec![
        Case::new("data/too long", "set k 0 0 3\r\nabcde\r\nget k\r\n"),
        Case::new("data/too short", "set k 0 0 3\r\nab\r\nget k\r\n"),
        Case::new(
            "data/too short then more lines",
            "set k 0 0 5\r\nab\r\nget k\r\nget k\r\n",
        ),
        Case::new("data/bad terminator", "set k 0 0 3\r\nabcXYget k\r\n"),
        Case::new("data/lf terminator", "set k 0 0 3\r\nabc\nget k\r\n"),
        Case::new("data/cr only terminator", "set k 0 0 3\r\nabc\rget k\r\n"),
        Case::new(
            "data/too long noreply",
            "set k 0 0 3 noreply\r\nabcde\r\nget k\r\n",
        ),
        Case::new(
            "data/binary with crlf inside",
            cat(&[
                &store("set", "k", "0", "0", b"a\r\nb\r\nEND\r\n"),
                b"get k\r\n",
            ]),
        ),
        Case::new(
            "data/nul bytes",
            cat(&[&store("set", "k", "0", "0", b"\0\0a\0\r\n\0"), b"get k\r\n"]),
        ),
        Case::new(
            "data/all 256 byte values",
            cat(&[&store("set", "k", "7", "0", &all_bytes), b"gets k\r\n"]),
        ),
        Case::new(
            "data/value looks like a reply",
            cat(&[
                &store("set", "k", "0", "0", b"VALUE k 0 1\r\nx\r\nEND"),
                b"get k\r\n",
            ]),
        ),
        Case::new(
            "data/object too large is swallowed",
            cat(&[&store("set", "k", "0", "0", &mb), b"get k\r\n"]),
        ),
        Case::new(
            "data/object too large noreply",
            cat(&[b"set k 0 0 1048576 noreply\r\n", &mb, b"\r\nget k\r\n"]),
        ),
        Case::new(
            "data/object too large keeps old value",
            cat(&[
                &store("set", "k", "0", "0", b"old"),
                &store("set", "k", "0", "0", &mb),
                b"get k\r\n",
            ]),
        ),
        Case::new(
            "data/one million bytes fits",
            cat(&[&store("set", "k", "0", "0", &near_mb), b"get k\r\n"]),
        ),
    ]
}

fn add_replace_cases() -> Vec<Case> {
    vec![
        Case::new("add/new key", "add k 0 0 1\r\nx\r\nget k\r\n"),
        Case::new(
            "add/existing key",
            "set k 0 0 1\r\nx\r\nadd k 5 0 1\r\ny\r\nget k\r\n",
        ),
        Case::new(
            "add/noreply",
            "add k 0 0 1 noreply\r\nx\r\nadd k 0 0 1 noreply\r\ny\r\nget k\r\n",
        ),
        Case::new(
            "add/over expired key",
            "set k 0 -1 1\r\nx\r\nadd k 0 0 1\r\ny\r\nget k\r\n",
        ),
        Case::new("add/bad line", "add k 0 0\r\nx\r\n"),
        Case::new(
            "add/existing swallows data",
            "set k 0 0 1\r\nx\r\nadd k 0 0 3\r\nabc\r\nget k\r\n",
        ),
        Case::new("replace/missing key", "replace k 0 0 1\r\nx\r\nget k\r\n"),
        Case::new(
            "replace/existing key",
            "set k 0 0 1\r\nx\r\nreplace k 9 0 2\r\nyy\r\nget k\r\n",
        ),
        Case::new(
            "replace/noreply",
            "replace k 0 0 1 noreply\r\nx\r\nset k 0 0 1\r\nx\r\nreplace k 0 0 1 noreply\r\nz\r\nget k\r\n",
        ),
        Case::new("replace/bad length", "replace k 0 0 z\r\nx\r\n"),
        Case::new("replace/too many tokens", "replace k 0 0 1 noreply x\r\nx\r\n"),
        Case::new("add/too many tokens", "add k 0 0 1 noreply x\r\nx\r\nget k\r\n"),
    ]
}

fn append_prepend_cases() -> Vec<Case> {
    let half = vec![b'h'; 600 * 1024];
    vec![
        Case::new(
            "append/existing",
            "set k 5 0 3\r\nabc\r\nappend k 0 0 3\r\ndef\r\ngets k\r\n",
        ),
        Case::new("append/missing key", "append k 0 0 3\r\ndef\r\nget k\r\n"),
        Case::new(
            "append/ignores flags and exptime",
            "set k 7 0 1\r\na\r\nappend k 99 -1 1\r\nb\r\nget k\r\n",
        ),
        Case::new(
            "append/noreply",
            "set k 0 0 1\r\na\r\nappend k 0 0 1 noreply\r\nb\r\nappend j 0 0 1 noreply\r\nb\r\nget k j\r\n",
        ),
        Case::new(
            "append/binary",
            cat(&[&store("set", "k", "0", "0", b"\r\n"), &store("append", "k", "0", "0", b"\0\r\n"), b"get k\r\n"]),
        ),
        Case::new(
            "append/empty value",
            "set k 0 0 2\r\nab\r\nappend k 0 0 0\r\n\r\nget k\r\n",
        ),
        Case::new(
            "append/bad data chunk",
            "set k 0 0 2\r\nab\r\nappend k 0 0 1\r\nxyz\r\nget k\r\n",
        ),
        Case::new(
            "append/result too large",
            cat(&[&store("set", "k", "0", "0", &half), &store("append", "k", "0", "0", &half), b"get k j\r\n"]),
        ),
        Case::new(
            "prepend/existing",
            "set k 5 0 3\r\nabc\r\nprepend k 0 0 3\r\ndef\r\ngets k\r\n",
        ),
        Case::new("prepend/missing key", "prepend k 0 0 3\r\ndef\r\nget k\r\n"),
        Case::new(
            "prepend/noreply",
            "set k 0 0 1\r\na\r\nprepend k 0 0 1 noreply\r\nb\r\nget k\r\n",
        ),
        Case::new(
            "prepend/after expired",
            "set k 0 -1 1\r\na\r\nprepend k 0 0 1\r\nb\r\nget k\r\n",
        ),
        Case::new("prepend/too few tokens", "prepend k 0 0\r\nb\r\n"),
        Case::new("append/too many tokens", "set k 0 0 1\r\na\r\nappend k 0 0 1 noreply x\r\nb\r\nget k\r\n"),
        Case::new("append/no arguments", "append\r\nprepend\r\n"),
    ]
}

fn cas_cases() -> Vec<Case> {
    vec![
        Case::new(
            "cas/success",
            "set k 0 0 1\r\na\r\ngets k\r\ncas k 3 0 1 1\r\nb\r\ngets k\r\n",
        ),
        Case::new(
            "cas/bad value",
            "set k 0 0 1\r\na\r\ncas k 0 0 1 999\r\nb\r\ngets k\r\n",
        ),
        Case::new("cas/missing key", "cas k 0 0 1 1\r\nb\r\nget k\r\n"),
        Case::new(
            "cas/noreply",
            "set k 0 0 1\r\na\r\ncas k 0 0 1 1 noreply\r\nb\r\ncas k 0 0 1 1 noreply\r\nc\r\ngets k\r\n",
        ),
        Case::new(
            "cas/stale after set",
            "set k 0 0 1\r\na\r\nset k 0 0 1\r\nb\r\ncas k 0 0 1 1\r\nc\r\ngets k\r\n",
        ),
        Case::new("cas/too few tokens", "set k 0 0 1\r\na\r\ncas k 0 0 1\r\nb\r\n"),
        Case::new("cas/too many tokens", "cas k 0 0 1 1 noreply x\r\nb\r\n"),
        Case::new("cas/non-numeric id", "set k 0 0 1\r\na\r\ncas k 0 0 1 abc\r\nb\r\n"),
        Case::new("cas/negative id", "set k 0 0 1\r\na\r\ncas k 0 0 1 -1\r\nb\r\n"),
        Case::new(
            "cas/id 0",
            "set k 0 0 1\r\na\r\ncas k 0 0 1 0\r\nb\r\ngets k\r\n",
        ),
        Case::new(
            "cas/max u64 id",
            "set k 0 0 1\r\na\r\ncas k 0 0 1 18446744073709551615\r\nb\r\n",
        ),
        Case::new(
            "cas/bad data chunk",
            "set k 0 0 1\r\na\r\ncas k 0 0 1 1\r\nbcd\r\ngets k\r\n",
        ),
        Case::new(
            "cas/ids advance per store",
            "set a 0 0 1\r\n1\r\nset b 0 0 1\r\n2\r\nappend a 0 0 1\r\n3\r\ntouch b 100\r\nincr a 1\r\ngets a b\r\n",
        ),
        Case::new(
            "cas/disabled with -C",
            "set k 0 0 1\r\na\r\ngets k\r\ncas k 0 0 1 0\r\nb\r\ncas k 0 0 1 1\r\nc\r\ngets k\r\n",
        )
        .args(&["-C"]),
        Case::new(
            "cas/on expired item",
            "set k 0 -1 1\r\na\r\ncas k 0 0 1 1\r\nb\r\n",
        ),
    ]
}
