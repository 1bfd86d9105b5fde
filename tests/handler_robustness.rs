//! Any bytes a client sends, through the parser and the command handlers: never a panic, and
//! every reply is a complete line (or a value block) — the shapes of input that break servers
//! (truncated lines, huge numbers, NUL bytes, stray flags) drawn at random.

use memcached_rs::config::Settings;
use memcached_rs::handler::{ConnState, Handler, Next};
use memcached_rs::protocol::binary;
use memcached_rs::server::Server;
use proptest::prelude::*;

fn word() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Commands and flags that steer into every handler.
        proptest::sample::select(vec![
            "get",
            "gets",
            "gat",
            "gats",
            "set",
            "add",
            "replace",
            "append",
            "prepend",
            "cas",
            "delete",
            "incr",
            "decr",
            "touch",
            "flush_all",
            "verbosity",
            "stats",
            "version",
            "cache_memlimit",
            "mg",
            "ms",
            "md",
            "ma",
            "mn",
            "me",
            "lru_crawler",
            "slabs",
            "metadump",
            "crawl",
            "reassign",
            "automove",
            "all",
            "noreply",
            "q",
            "v",
            "k",
            "b",
            "T0",
            "N10",
            "R5",
            "I",
            "C1",
            "MA",
            "MZ",
            "D3",
            "J7",
            "O123",
            "F4294967296",
            "s",
            "t",
            "c",
            "f",
            "l",
            "h",
            "u",
            "0",
            "1",
            "-1",
            "2",
            "4294967297",
            "18446744073709551616",
            "Zm9v",
            "====",
            "slabs",
            "items",
            "sizes",
            "settings",
            "detail",
            "on",
            "dump",
            "cachedump",
            "reset",
            "HTTP/1.1",
        ])
        .prop_map(|w| w.as_bytes().to_vec()),
        proptest::collection::vec(any::<u8>(), 0..12),
        (0usize..300).prop_map(|n| vec![b'k'; n]),
    ]
}

fn line() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(word(), 0..8).prop_map(|words| words.join(&b' '))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_requests_never_panic(lines in proptest::collection::vec(line(), 1..30),
                                   block in proptest::collection::vec(any::<u8>(), 0..64)) {
        let settings = Settings {
            memory_limit: 8 << 20,
            shutdown_command: false,
            ..Settings::default()
        };
        let server = Server::new(settings).expect("server");
        let stats = server.stats.register();
        let handler = Handler::new(&server, &stats);
        let mut session = ConnState::default();
        let mut out = Vec::new();
        for line in &lines {
            let mut resume = 0;
            loop {
                match handler.handle_line(line, resume, &mut out, &mut session) {
                    Next::Paused(at) => {
                        prop_assert!(at > resume || resume == 0);
                        resume = at;
                        out.clear();
                    }
                    Next::ReadData => {
                        let mut data = block.clone();
                        data.resize(session.length + 2, b'x');
                        let n = data.len();
                        data[n - 2..].copy_from_slice(b"\r\n");
                        handler.complete_store(&mut session, &data, &mut out);
                        break;
                    }
                    _ => break,
                }
            }
            // Replies are whole lines.
            prop_assert!(out.is_empty() || out.ends_with(b"\n"), "{:?}", String::from_utf8_lossy(&out));
            out.clear();
        }
    }
}

/// A binary request frame with a random opcode (mostly ones memcached knows), lengths that
/// may contradict each other, and random body bytes.
fn binary_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![0u8..0x25, any::<u8>()],
        prop_oneof![Just(0u16), 1u16..300, any::<u16>()],
        prop_oneof![Just(0u8), Just(4u8), Just(8u8), Just(20u8), any::<u8>()],
        prop_oneof![
            Just(None),
            (0u32..400).prop_map(Some),
            any::<u32>().prop_map(Some)
        ],
        any::<u64>(),
        proptest::collection::vec(any::<u8>(), 0..320),
    )
        .prop_map(|(opcode, keylen, extlen, bodylen, cas, body)| {
            let consistent = u32::from(keylen) + u32::from(extlen) + body.len() as u32;
            let bodylen = bodylen.unwrap_or(consistent);
            let mut f = Vec::new();
            binary::Header::request(opcode, keylen, extlen, bodylen, 7, cas).write(&mut f);
            f.extend_from_slice(&body);
            f
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Frames go through the binary handler as a connection would feed it: header, extras and
    /// key first, then the value it asks for. Never a panic; every reply is a whole response.
    #[test]
    fn random_binary_frames_never_panic(frames in proptest::collection::vec(binary_frame(), 1..20),
                                        sasl in any::<bool>()) {
        let settings = Settings {
            memory_limit: 8 << 20,
            sasl,
            ..Settings::default()
        };
        let server = Server::new(settings).expect("server");
        let stats = server.stats.register();
        let handler = Handler::new(&server, &stats);
        let mut session = ConnState::default();
        let mut out = Vec::new();
        for frame in &frames {
            let prefix = 24 + usize::from(frame[4]) + usize::from(u16::from_be_bytes([frame[2], frame[3]]));
            if frame.len() < prefix {
                continue; // a connection would wait for more bytes
            }
            let next = handler.handle_binary(&frame[..prefix], &mut out, &mut session);
            if next == Next::ReadData {
                let mut value = frame[prefix..].to_vec();
                value.resize(session.length.min(4096), b'v');
                if value.len() == session.length {
                    handler.complete_binary(&mut session, &value, &mut out);
                }
            }
            // Every reply is a response header plus the body it announces.
            let mut at = 0;
            while at < out.len() {
                prop_assert!(out.len() - at >= 24, "short response");
                prop_assert_eq!(out[at], 0x81);
                let body = u32::from_be_bytes([out[at + 8], out[at + 9], out[at + 10], out[at + 11]]);
                at += 24 + body as usize;
            }
            prop_assert_eq!(at, out.len());
            out.clear();
            if matches!(next, Next::Close | Next::CloseAfterWrite) {
                break;
            }
        }
    }
}
