//! Retrieval and removal: get, gets, gat, gats with one and many keys, delete, touch.

use crate::case::{rep, Case};

/// `set k<i> 0 0 ..\r\nv<i>\r\n` for i in `range`: a few stored keys to read back.
fn seed(range: std::ops::Range<usize>) -> String {
    range
        .map(|i| format!("set k{i} {i} 0 {}\r\nv{i}\r\n", format!("v{i}").len()))
        .collect()
}

/// `k<i>` for i in `range`, space-separated.
fn keys(range: std::ops::Range<usize>) -> String {
    range.map(|i| format!("k{i}")).collect::<Vec<_>>().join(" ")
}

/// Every case of this file.
pub fn cases() -> Vec<Case> {
    let mut cases = get_cases();
    cases.extend(gat_cases());
    cases.extend(delete_cases());
    cases.extend(touch_cases());
    cases
}

fn get_cases() -> Vec<Case> {
    let key250 = rep('a', 250);
    let key251 = rep('a', 251);
    vec![
        Case::new("get/miss", "get nothing\r\n"),
        Case::new("get/hit", "set k 3 0 2\r\nhi\r\nget k\r\n"),
        Case::new("get/no key", "get\r\n"),
        Case::new("get/no key trailing space", "get \r\n"),
        Case::new(
            "get/several keys",
            format!("{}get k0 k1 k2\r\n", seed(0..3)),
        ),
        Case::new(
            "get/hits and misses mixed",
            format!("{}get x k0 y k1 z\r\n", seed(0..2)),
        ),
        Case::new(
            "get/30 keys in one line",
            format!("{}get {}\r\n", seed(0..30), keys(0..30)),
        ),
        Case::new(
            "get/100 keys with misses",
            format!("{}get {}\r\n", seed(0..50), keys(0..100)),
        ),
        Case::new(
            "get/duplicate keys",
            format!("{}get k0 k0 k1 k0\r\n", seed(0..2)),
        ),
        Case::new(
            "get/key 250 bytes",
            format!("set {key250} 0 0 1\r\nx\r\nget {key250}\r\n"),
        ),
        Case::new("get/key 251 bytes", format!("get {key251}\r\n")),
        // The syncs let the earlier replies leave before the failing get: memcached discards
        // replies still queued when a get fails on a long key (see the note on pipelined replies below).
        Case::new("get/too long key among others", seed(0..2))
            .sync()
            .send(format!("get k0 {key251} k1\r\nget k1\r\n")),
        Case::new("get/too long key last", seed(0..2))
            .sync()
            .send(format!("get k0 k1 {key251}\r\n")),
        Case::new("gets/too long key first", seed(0..2))
            .sync()
            .send(format!("gets {key251} k0\r\n")),
        // memcached (1.6.18 and 1.6.38) also drops the unsent replies of earlier pipelined commands when a
        // get fails on a long key; memcached-rs keeps them on purpose (a client waiting for
        // those STORED lines would hang). tests/connections.rs pins our behaviour down.
        Case::new("get/line near 2048 bytes", {
            let many = (0..200).map(|i| format!("key{i:04}")).collect::<Vec<_>>();
            format!("set key0001 0 0 1\r\nx\r\nget {}\r\n", many.join(" "))
        }),
        Case::new("get/line over 2048 bytes with newline", {
            let many = (0..400).map(|i| format!("key{i:04}")).collect::<Vec<_>>();
            format!("set key0399 0 0 1\r\nx\r\nget {}\r\n", many.join(" "))
        }),
        Case::new("gets/one key", "set k 0 0 1\r\nx\r\ngets k\r\n"),
        Case::new(
            "gets/several keys",
            format!("{}gets k0 missing k1 k2\r\n", seed(0..3)),
        ),
        Case::new("gets/no key", "gets\r\n"),
        Case::new(
            "gets/cas changes on overwrite",
            "set k 0 0 1\r\nx\r\ngets k\r\nset k 0 0 1\r\ny\r\ngets k\r\n",
        ),
    ]
}

fn gat_cases() -> Vec<Case> {
    vec![
        Case::new("gat/hit", "set k 4 0 1\r\nx\r\ngat 100 k\r\n"),
        Case::new("gat/miss", "gat 100 k\r\n"),
        Case::new(
            "gat/several keys",
            format!("{}gat 0 k0 x k1 k2\r\n", seed(0..3)),
        ),
        Case::new("gat/no key", "gat 100\r\n"),
        Case::new("gat/no arguments", "gat\r\n"),
        Case::new(
            "gat/non-numeric exptime",
            "set k 0 0 1\r\nx\r\ngat soon k\r\nget k\r\n",
        ),
        Case::new(
            "gat/negative exptime expires",
            "set k 0 0 1\r\nx\r\ngat -1 k\r\nget k\r\n",
        ),
        Case::new(
            "gat/absolute past exptime",
            "set k 0 0 1\r\nx\r\ngat 1000000000 k\r\nget k\r\n",
        ),
        Case::new(
            "gat/30 keys",
            format!("{}gat 50 {}\r\n", seed(0..30), keys(0..30)),
        ),
        Case::new("gat/too long key", "set k 0 0 1\r\nx\r\n")
            .sync()
            .send(format!("gat 10 k {}\r\nget k\r\n", rep('b', 251))),
        Case::new("gats/no arguments", "gats\r\n"),
        Case::new("gats/hit", "set k 4 0 1\r\nx\r\ngats 100 k\r\n"),
        Case::new(
            "gats/cas unchanged by touch",
            "set k 0 0 1\r\nx\r\ngets k\r\ngats 100 k\r\ngets k\r\n",
        ),
        Case::new(
            "gats/several keys",
            format!("{}gats 0 k2 k1 nope\r\n", seed(0..3)),
        ),
        Case::new("gats/no key", "gats 100\r\n"),
    ]
}

fn delete_cases() -> Vec<Case> {
    vec![
        Case::new("delete/hit", "set k 0 0 1\r\nx\r\ndelete k\r\nget k\r\n"),
        Case::new("delete/miss", "delete k\r\n"),
        Case::new(
            "delete/twice",
            "set k 0 0 1\r\nx\r\ndelete k\r\ndelete k\r\n",
        ),
        Case::new(
            "delete/noreply",
            "set k 0 0 1\r\nx\r\ndelete k noreply\r\ndelete k noreply\r\nget k\r\n",
        ),
        Case::new(
            "delete/with 0",
            "set k 0 0 1\r\nx\r\ndelete k 0\r\nget k\r\n",
        ),
        Case::new(
            "delete/with 0 noreply",
            "set k 0 0 1\r\nx\r\ndelete k 0 noreply\r\nget k\r\n",
        ),
        Case::new(
            "delete/with time is usage error",
            "set k 0 0 1\r\nx\r\ndelete k 10\r\nget k\r\n",
        ),
        Case::new(
            "delete/extra args",
            "delete k x y\r\ndelete k 0 noreply x\r\n",
        ),
        Case::new("delete/no key", "delete\r\n"),
        Case::new(
            "delete/key 251 bytes",
            format!("delete {}\r\n", rep('d', 251)),
        ),
        Case::new("delete/expired item", "set k 0 -1 1\r\nx\r\ndelete k\r\n"),
    ]
}

fn touch_cases() -> Vec<Case> {
    vec![
        Case::new("touch/hit", "set k 0 0 1\r\nx\r\ntouch k 100\r\nget k\r\n"),
        Case::new("touch/miss", "touch k 100\r\n"),
        Case::new(
            "touch/zero exptime",
            "set k 0 100 1\r\nx\r\ntouch k 0\r\nget k\r\n",
        ),
        Case::new(
            "touch/noreply",
            "set k 0 0 1\r\nx\r\ntouch k 100 noreply\r\ntouch j 1 noreply\r\nget k\r\n",
        ),
        Case::new("touch/no exptime", "set k 0 0 1\r\nx\r\ntouch k\r\n"),
        Case::new("touch/no arguments", "touch\r\n"),
        Case::new(
            "touch/non-numeric exptime",
            "set k 0 0 1\r\nx\r\ntouch k soon\r\nget k\r\n",
        ),
        Case::new(
            "touch/negative then get",
            "set k 0 0 1\r\nx\r\ntouch k -1\r\nget k\r\n",
        ),
        Case::new(
            "touch/too many tokens",
            "set k 0 0 1\r\nx\r\ntouch k 10 noreply x\r\nget k\r\n",
        ),
        Case::new(
            "touch/key 251 bytes",
            format!("touch {} 10\r\n", rep('t', 251)),
        ),
    ]
}
