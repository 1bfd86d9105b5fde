//! The binary protocol: every opcode memcached 1.6.38 answers, quiet pipelines, CAS, and the
//! malformed frames it answers with an error or a close. Frames come from the library's encoder;
//! replies are compared whole (header, extras, key, value), CAS ids included: both servers
//! number them the same way from a fresh start.

use crate::case::Case;
use memcached_rs::protocol::binary::{self, opcode::*};
// Short names keep a frame of the tables below on one line.
use memcached_rs::protocol::binary::opcode::{
    DECREMENT as DECR, INCREMENT as INCR, INCREMENTQ as INCRQ, SASL_LIST_MECHS as SASL_LIST,
};

/// One well-formed request frame.
fn frame(opcode: u8, key: &[u8], extras: &[u8], value: &[u8], opaque: u32, cas: u64) -> Vec<u8> {
    let mut f = Vec::new();
    binary::write_request(&mut f, opcode, key, extras, value, opaque, cas)
        .expect("lengths fit the header");
    f
}

/// A frame with explicit (possibly inconsistent) lengths and raw body bytes.
fn raw(opcode: u8, keylen: u16, extlen: u8, bodylen: u32, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    binary::Header::request(opcode, keylen, extlen, bodylen, 9, 0).write(&mut f);
    f.extend_from_slice(body);
    f
}

fn store_extras(flags: u32, exptime: u32) -> Vec<u8> {
    let mut e = flags.to_be_bytes().to_vec();
    e.extend_from_slice(&exptime.to_be_bytes());
    e
}

fn arith_extras(delta: u64, initial: u64, exptime: u32) -> Vec<u8> {
    let mut e = delta.to_be_bytes().to_vec();
    e.extend_from_slice(&initial.to_be_bytes());
    e.extend_from_slice(&exptime.to_be_bytes());
    e
}

fn set(key: &str, value: &str, flags: u32, opaque: u32) -> Vec<u8> {
    frame(
        SET,
        key.as_bytes(),
        &store_extras(flags, 0),
        value.as_bytes(),
        opaque,
        0,
    )
}

fn keyed(opcode: u8, key: &str, opaque: u32) -> Vec<u8> {
    frame(opcode, key.as_bytes(), &[], &[], opaque, 0)
}

fn cat(frames: &[Vec<u8>]) -> Vec<u8> {
    frames.concat()
}

/// Every case of this file.
pub fn cases() -> Vec<Case> {
    let mut cases = vec![
        Case::binary(
            "binary/version and noop",
            cat(&[
                frame(VERSION, b"", &[], &[], 1, 0),
                frame(NOOP, b"", &[], &[], 2, 0),
            ]),
        ),
        Case::binary(
            "binary/set and the gets",
            cat(&[
                set("k", "value", 0xdead_beef, 1),
                keyed(GET, "k", 2),
                keyed(GETK, "k", 3),
                keyed(GETQ, "k", 4),
                keyed(GETKQ, "k", 5),
                keyed(GET, "nope", 6),
                keyed(GETK, "nope", 7),
                keyed(GETQ, "nope", 8),
                keyed(GETKQ, "nope", 9),
                frame(NOOP, b"", &[], &[], 10, 0),
            ]),
        ),
        Case::binary(
            "binary/quiet multi-get pipeline",
            cat(&[
                set("a", "1", 0, 1),
                set("c", "333", 3, 2),
                keyed(GETKQ, "a", 3),
                keyed(GETKQ, "b", 4),
                keyed(GETKQ, "c", 5),
                frame(NOOP, b"", &[], &[], 6, 0),
            ]),
        ),
        Case::binary(
            "binary/add replace and quiet forms",
            cat(&[
                frame(ADD, b"k", &store_extras(1, 0), b"first", 1, 0),
                frame(ADD, b"k", &store_extras(2, 0), b"second", 2, 0),
                frame(ADDQ, b"k", &store_extras(2, 0), b"second", 3, 0),
                frame(REPLACE, b"k", &store_extras(3, 0), b"third", 4, 0),
                frame(REPLACE, b"m", &store_extras(3, 0), b"x", 5, 0),
                frame(REPLACEQ, b"m", &store_extras(3, 0), b"x", 6, 0),
                frame(REPLACEQ, b"k", &store_extras(4, 0), b"fourth", 7, 0),
                frame(SETQ, b"q", &store_extras(0, 0), b"quiet", 8, 0),
                keyed(GETK, "k", 9),
                keyed(GETK, "q", 10),
            ]),
        ),
        Case::binary(
            "binary/cas on set delete append",
            cat(&[
                set("k", "v1", 0, 1),
                frame(SET, b"k", &store_extras(0, 0), b"v2", 2, 99),
                frame(SET, b"k", &store_extras(0, 0), b"v2", 3, 1),
                frame(SET, b"missing", &store_extras(0, 0), b"v", 4, 5),
                frame(APPEND, b"k", &[], b"-tail", 5, 1),
                frame(APPEND, b"k", &[], b"-tail", 6, 2),
                frame(DELETE, b"k", &[], &[], 7, 1),
                frame(DELETE, b"k", &[], &[], 8, 3),
                keyed(GET, "k", 9),
            ]),
        ),
        Case::binary(
            "binary/append prepend",
            cat(&[
                frame(APPEND, b"k", &[], b"x", 1, 0),
                frame(PREPEND, b"k", &[], b"x", 2, 0),
                set("k", "mid", 7, 3),
                frame(APPEND, b"k", &[], b">", 4, 0),
                frame(PREPEND, b"k", &[], b"<", 5, 0),
                frame(APPENDQ, b"k", &[], b"!", 6, 0),
                frame(APPENDQ, b"none", &[], b"!", 7, 0),
                keyed(GET, "k", 8),
            ]),
        ),
        Case::binary(
            "binary/delete",
            cat(&[
                set("k", "v", 0, 1),
                keyed(DELETE, "k", 2),
                keyed(DELETE, "k", 3),
                set("k", "v", 0, 4),
                keyed(DELETEQ, "k", 5),
                keyed(DELETEQ, "k", 6),
                keyed(GET, "k", 7),
            ]),
        ),
        Case::binary(
            "binary/incr decr",
            cat(&[
                frame(INCR, b"n", &arith_extras(1, 10, 0), &[], 1, 0),
                frame(INCR, b"n", &arith_extras(5, 10, 0), &[], 2, 0),
                frame(DECR, b"n", &arith_extras(100, 0, 0), &[], 3, 0),
                frame(INCR, b"m", &arith_extras(1, 10, 0xffff_ffff), &[], 4, 0),
                frame(DECR, b"m", &arith_extras(1, 10, 0xffff_ffff), &[], 5, 0),
                frame(INCR, b"n", &arith_extras(u64::MAX, 0, 0), &[], 6, 0),
                frame(INCRQ, b"n", &arith_extras(2, 0, 0), &[], 7, 0),
                set("s", "abc", 0, 8),
                frame(INCR, b"s", &arith_extras(1, 0, 0), &[], 9, 0),
                frame(INCR, b"n", &arith_extras(1, 0, 0), &[], 10, 77),
                keyed(GET, "n", 11),
            ]),
        ),
        Case::binary(
            "binary/incr creates with flags 0 and expiry",
            cat(&[
                frame(INCR, b"t", &arith_extras(1, 42, 100), &[], 1, 0),
                keyed(GETK, "t", 2),
            ]),
        ),
        Case::binary(
            "binary/touch and gat",
            cat(&[
                set("k", "v", 5, 1),
                frame(TOUCH, b"k", &100u32.to_be_bytes(), &[], 2, 0),
                frame(TOUCH, b"x", &100u32.to_be_bytes(), &[], 3, 0),
                frame(GAT, b"k", &100u32.to_be_bytes(), &[], 4, 0),
                frame(GATK, b"k", &100u32.to_be_bytes(), &[], 5, 0),
                frame(GATQ, b"k", &100u32.to_be_bytes(), &[], 6, 0),
                frame(GATKQ, b"k", &100u32.to_be_bytes(), &[], 7, 0),
                frame(GAT, b"x", &100u32.to_be_bytes(), &[], 8, 0),
                frame(GATK, b"x", &100u32.to_be_bytes(), &[], 9, 0),
                frame(GATQ, b"x", &100u32.to_be_bytes(), &[], 10, 0),
                frame(GATKQ, b"x", &100u32.to_be_bytes(), &[], 11, 0),
                frame(NOOP, b"", &[], &[], 12, 0),
            ]),
        ),
        Case::binary(
            "binary/touch into the past expires",
            cat(&[
                set("k", "v", 0, 1),
                frame(TOUCH, b"k", &u32::MAX.to_be_bytes(), &[], 2, 0),
                keyed(GET, "k", 3),
            ]),
        ),
        Case::binary(
            "binary/flush",
            cat(&[
                set("a", "1", 0, 1),
                frame(FLUSH, b"", &[], &[], 2, 0),
                keyed(GET, "a", 3),
                set("b", "2", 0, 4),
                frame(FLUSHQ, b"", &[], &[], 5, 0),
                keyed(GET, "b", 6),
                set("c", "3", 0, 7),
                frame(FLUSH, b"", &1000u32.to_be_bytes(), &[], 8, 0),
                keyed(GET, "c", 9),
            ]),
        ),
        Case::binary(
            "binary/flush disabled",
            cat(&[
                frame(FLUSH, b"", &[], &[], 1, 0),
                frame(FLUSHQ, b"", &[], &[], 2, 0),
            ]),
        )
        .args(&["-F"]),
        Case::binary(
            "binary/stat groups",
            cat(&[
                frame(STAT, b"detail on", &[], &[], 1, 0),
                set("p:k", "v", 0, 2),
                keyed(GET, "p:k", 3),
                frame(STAT, b"detail dump", &[], &[], 4, 0),
                frame(STAT, b"detail off", &[], &[], 5, 0),
                frame(STAT, b"detail", &[], &[], 6, 0),
                frame(STAT, b"reset", &[], &[], 7, 0),
                frame(STAT, b"sizes", &[], &[], 8, 0),
                frame(STAT, b"nonsense", &[], &[], 9, 0),
                frame(STAT, b"conns", &[], &[], 10, 0),
            ]),
        ),
        Case::binary(
            "binary/large values and binary keys",
            cat(&[
                frame(
                    SET,
                    b"\x00\x01bin\xff",
                    &store_extras(1, 0),
                    &vec![b'z'; 200_000],
                    1,
                    0,
                ),
                frame(GETK, b"\x00\x01bin\xff", &[], &[], 2, 0),
                frame(SET, &[b'k'; 250], &store_extras(0, 0), b"v", 3, 0),
                frame(GETK, &[b'k'; 250], &[], &[], 4, 0),
            ]),
        ),
        Case::binary(
            "binary/too large value is refused and the old one deleted",
            cat(&[
                set("k", "old", 0, 1),
                frame(SET, b"k", &store_extras(0, 0), &vec![b'x'; 1_100_000], 2, 0),
                keyed(GET, "k", 3),
                frame(APPEND, b"k", &[], &vec![b'x'; 1_100_000], 4, 0),
            ]),
        ),
        Case::binary(
            "binary/unknown opcodes and verbosity",
            cat(&[
                raw(0x50, 0, 0, 0, &[]),
                // memcached swallows the body again after reading the extras: four bytes of
                // padding keep the next frame aligned.
                raw(VERBOSITY, 0, 4, 4, &[0, 0, 0, 1]),
                b"pad!".to_vec(),
                frame(VERSION, b"", &[], &[], 3, 0),
            ]),
        ),
        Case::binary(
            "binary/unknown opcode swallows its body again",
            cat(&[
                raw(0x50, 0, 0, 5, b"abcde"),
                frame(VERSION, b"", &[], &[], 3, 0),
            ]),
        ),
        Case::binary(
            "binary/sasl without -S",
            cat(&[
                frame(SASL_LIST, b"", &[], &[], 1, 0),
                frame(SASL_AUTH, b"PLAIN", &[], b"\0u\0p", 2, 0),
                frame(VERSION, b"", &[], &[], 3, 0),
            ]),
        ),
        Case::binary("binary/stat with a value is answered", {
            // STAT does not consume a value; memcached reads it as the next header.
            cat(&[
                raw(STAT, 5, 0, 5, b"reset"),
                frame(NOOP, b"", &[], &[], 2, 0),
            ])
        }),
    ];
    // Frames memcached refuses with an error and a close, or closes on at once.
    let fatal: Vec<(&str, Vec<u8>)> = vec![
        ("bad magic", {
            let mut f = frame(VERSION, b"", &[], &[], 1, 0);
            f[0] = 0x81;
            f
        }),
        (
            "key and extras longer than the body",
            raw(GET, 10, 0, 5, b"abcde"),
        ),
        (
            "key over 250 bytes",
            frame(GET, &[b'k'; 251], &[], &[], 1, 0),
        ),
        ("get with extras", raw(GET, 1, 4, 5, b"\0\0\0\0k")),
        ("get without a key", raw(GET, 0, 0, 0, b"")),
        ("set without extras", raw(SET, 1, 0, 2, b"kv")),
        (
            "incr with short extras",
            raw(INCR, 1, 8, 9, b"\0\0\0\0\0\0\0\x01n"),
        ),
        ("noop with a body", raw(NOOP, 0, 0, 1, b"x")),
        ("version with a key", raw(VERSION, 1, 0, 1, b"x")),
        ("delete with a value", raw(DELETE, 1, 0, 2, b"kx")),
        ("flush with odd extras", raw(FLUSH, 0, 2, 2, b"\0\0")),
        ("touch without extras", raw(TOUCH, 1, 0, 1, b"k")),
        ("quit with a body", raw(QUIT, 0, 0, 1, b"x")),
    ];
    for (name, bad) in fatal {
        cases.push(
            Case::named(format!("binary/fatal: {name}"))
                .send(cat(&[set("k", "v", 0, 7), bad, keyed(GET, "k", 8)]))
                .until_close(),
        );
    }
    cases.push(
        Case::named("binary/quit")
            .send(cat(&[keyed(GET, "k", 1), frame(QUIT, b"", &[], &[], 2, 0)]))
            .until_close(),
    );
    cases.push(
        Case::named("binary/quitq")
            .send(cat(&[
                keyed(GET, "k", 1),
                frame(QUITQ, b"", &[], &[], 2, 0),
            ]))
            .until_close(),
    );
    cases.push(
        Case::binary("binary/frames split across reads", b"").send_split(
            cat(&[set("k", "value", 1, 1), keyed(GETK, "k", 2)]),
            7,
            20,
        ),
    );
    // -B: one protocol only.
    cases.push(
        Case::named("binary/-B ascii reads a frame as text")
            .send(cat(&[
                keyed(GET, "k", 1),
                b"\r\nversion\r\nquit\r\n".to_vec(),
            ]))
            .until_close()
            .args(&["-B", "ascii"]),
    );
    cases.push(
        Case::named("binary/-B binary closes on text")
            .send("version\r\n")
            .until_close()
            .args(&["-B", "binary"]),
    );
    cases.push(
        Case::binary("binary/-B binary answers binary", keyed(GET, "k", 1)).args(&["-B", "binary"]),
    );
    // -S: nothing but version and the SASL commands before authentication.
    cases.push(
        Case::named("binary/-S refuses commands before auth")
            .send(cat(&[
                frame(VERSION, b"", &[], &[], 1, 0),
                keyed(GET, "k", 2),
            ]))
            .until_close()
            .args(&["-S"]),
    );
    cases.push(
        Case::named("binary/-S closes on text")
            .send("version\r\n")
            .until_close()
            .args(&["-S"]),
    );
    cases.push(
        Case::binary(
            "binary/-S lists PLAIN and logs in",
            cat(&[
                frame(SASL_LIST, b"", &[], &[], 1, 0),
                frame(SASL_AUTH, b"PLAIN", &[], b"\0alice\0secret", 2, 0),
                set("k", "v", 0, 3),
                keyed(GETK, "k", 4),
            ]),
        )
        .args(&["-S"]),
    );
    cases.push(
        Case::named("binary/-S a failed login logs out")
            .send(cat(&[
                frame(SASL_AUTH, b"PLAIN", &[], b"\0alice\0secret", 1, 0),
                keyed(GET, "k", 2),
                frame(SASL_AUTH, b"PLAIN", &[], b"\0alice\0wrong", 3, 0),
                keyed(GET, "k", 4),
            ]))
            .until_close()
            .args(&["-S"]),
    );
    cases.push(
        Case::named("binary/-S other mechanisms and steps fail")
            .send(cat(&[
                frame(SASL_AUTH, b"CRAM-MD5", &[], b"", 1, 0),
                frame(0x22, b"PLAIN", &[], b"\0alice\0secret", 2, 0),
                frame(NOOP, b"", &[], &[], 3, 0),
            ]))
            .until_close()
            .args(&["-S"]),
    );
    cases.push(
        Case::named("binary/-S bad credentials")
            .send(cat(&[
                frame(SASL_AUTH, b"PLAIN", &[], b"\0nobody\0wrong", 1, 0),
                keyed(GET, "k", 2),
            ]))
            .until_close()
            .args(&["-S"]),
    );
    cases
}
