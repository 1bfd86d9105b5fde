//! Arbitrary bytes through the binary protocol's header parsing and the frame rules the
//! connection applies (how much to buffer, which shapes are refused), and the response
//! encoders, whose output is parsed back.
#![no_main]
use libfuzzer_sys::fuzz_target;
use memcached_rs::protocol::binary::{self, Header, Status, HEADER_LEN, REQUEST_MAGIC};
use memcached_rs_fuzz::replies::split_binary;

const STATUSES: [Status; 11] = [
    Status::Ok,
    Status::KeyNotFound,
    Status::KeyExists,
    Status::TooLarge,
    Status::InvalidArguments,
    Status::NotStored,
    Status::NonNumeric,
    Status::AuthError,
    Status::AuthContinue,
    Status::UnknownCommand,
    Status::OutOfMemory,
];

fn check_header(h: &Header, raw: &[u8; HEADER_LEN]) {
    assert_eq!(h.magic, raw[0]);
    assert_eq!(h.opcode, raw[1]);
    assert_eq!(
        h.prefix_len(),
        usize::from(h.extlen) + usize::from(h.keylen)
    );
    assert_eq!(h.lengths_consistent(), h.prefix_len() <= h.bodylen as usize);
    if h.lengths_consistent() {
        assert_eq!(h.prefix_len() + h.value_len(), h.bodylen as usize);
    } else {
        assert_eq!(h.value_len(), 0);
    }
    let (cmd, quiet) = h.unquiet();
    if quiet {
        assert_ne!(cmd, h.opcode);
        // The loud twin is not quiet itself.
        let mut loud = *raw;
        loud[1] = cmd;
        assert_eq!(Header::parse(&loud).unquiet(), (cmd, false));
    } else {
        assert_eq!(cmd, h.opcode);
    }
    for op in 0..=0x30u8 {
        let _ = h.shape_ok(op);
    }
    // A command whose shape passes has its extras and key inside the body.
    if h.shape_ok(cmd) && h.opcode <= 0x24 {
        use binary::opcode::*;
        if matches!(
            cmd,
            GET | GETK
                | SET
                | ADD
                | REPLACE
                | DELETE
                | INCREMENT
                | DECREMENT
                | VERSION
                | NOOP
                | QUIT
                | FLUSH
        ) {
            assert!(
                h.lengths_consistent(),
                "shape_ok({cmd:#x}) with the key outside the body"
            );
        }
    }
}

fn check_responses(h: &Header, data: &[u8]) {
    let mut out = Vec::new();
    for s in STATUSES {
        binary::write_error(&mut out, h, s);
    }
    let value = &data[..data.len().min(64)];
    binary::write_value(&mut out, h, value, h.cas);
    binary::write_stat(&mut out, h, value, value);
    binary::write_header(&mut out, h, Status::Ok, (4, 3, 5), 9);
    out.extend_from_slice(&[0; 12]);
    let frames = split_binary(&out).expect("our own responses parse");
    assert_eq!(frames.len(), STATUSES.len() + 3);
    for (f, s) in frames.iter().zip(STATUSES) {
        assert_eq!(
            (f.opcode, f.opaque, f.status),
            (h.opcode, h.opaque, s as u16)
        );
        assert_eq!(f.value, s.message().as_bytes());
    }
    let v = &frames[STATUSES.len()];
    assert_eq!((v.value, v.cas), (value, h.cas));
    let st = &frames[STATUSES.len() + 1];
    assert_eq!((st.key, st.value), (value, value));
}

fuzz_target!(|data: &[u8]| {
    // The stream as the connection frames it: header, extras and key; then the value.
    let mut rest = data;
    let mut frames = 0;
    while let Some(head) = binary::header_bytes(rest) {
        let h = Header::parse(head);
        check_header(&h, head);
        if frames == 0 {
            check_responses(&h, rest);
        }
        frames += 1;
        if h.magic != REQUEST_MAGIC || !h.lengths_consistent() {
            break;
        }
        let need = HEADER_LEN + h.prefix_len();
        if rest.len() < need {
            break;
        }
        let extras = &rest[HEADER_LEN..HEADER_LEN + usize::from(h.extlen)];
        let key = &rest[HEADER_LEN + usize::from(h.extlen)..need];
        assert_eq!(key.len(), usize::from(h.keylen));
        for at in 0..=extras.len() {
            let _ = (binary::u32_at(extras, at), binary::u64_at(extras, at));
        }
        if extras.len() >= 4 {
            assert_eq!(
                binary::u32_at(extras, 0),
                u32::from_be_bytes(extras[..4].try_into().unwrap())
            );
        }
        let total = need + h.value_len();
        if rest.len() < total {
            break;
        }
        rest = &rest[total..];
    }
});
