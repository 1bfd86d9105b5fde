//! Any bytes a client sends, through the parser and the command handlers: never a panic, and
//! every reply is a complete line (or a value block) — the shapes of input that break servers
//! (truncated lines, huge numbers, NUL bytes, stray flags) drawn at random.

use memcached_rs::config::Settings;
use memcached_rs::handler::{Handler, Next, Session};
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
        let mut session = Session::default();
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
                        handler.complete_store(&session, &data, &mut out);
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
