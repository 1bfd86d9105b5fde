//! Everything around the data commands: flush_all, version, verbosity, quit, shutdown,
//! cache_memlimit, unknown commands, whitespace and line endings, over-long lines, HTTP, and
//! how requests are framed (pipelined in one write, or split over many).

use crate::case::{cat, rep, store, unix_now_plus, Case};

/// Every case of this file.
pub fn cases() -> Vec<Case> {
    let mut cases = admin_cases();
    cases.extend(syntax_cases());
    cases.extend(framing_cases());
    cases
}

fn admin_cases() -> Vec<Case> {
    vec![
        Case::new(
            "flush_all/plain",
            "set k 0 0 1\r\nx\r\nflush_all\r\nget k\r\n",
        ),
        Case::new(
            "flush_all/noreply",
            "set k 0 0 1\r\nx\r\nflush_all noreply\r\nget k\r\n",
        ),
        Case::new(
            "flush_all/zero",
            "set k 0 0 1\r\nx\r\nflush_all 0\r\nget k\r\n",
        ),
        Case::new(
            "flush_all/delay keeps items for now",
            "set k 0 0 1\r\nx\r\nflush_all 100\r\nget k\r\n",
        ),
        Case::new(
            "flush_all/delay noreply",
            "set k 0 0 1\r\nx\r\nflush_all 100 noreply\r\nget k\r\n",
        ),
        Case::new(
            "flush_all/negative",
            "set k 0 0 1\r\nx\r\nflush_all -1\r\nget k\r\n",
        ),
        Case::new(
            "flush_all/non-numeric",
            "set k 0 0 1\r\nx\r\nflush_all soon\r\nget k\r\n",
        ),
        Case::new(
            "flush_all/too many tokens",
            "set k 0 0 1\r\nx\r\nflush_all 0 noreply x\r\nget k\r\n",
        ),
        Case::new(
            "flush_all/set after flush survives",
            "set k 0 0 1\r\nx\r\nflush_all\r\nset k 0 0 1\r\ny\r\nset j 0 0 1\r\nz\r\nget k j\r\n",
        ),
        Case::new(
            "flush_all/add after flush",
            "set k 0 0 1\r\nx\r\nflush_all\r\nadd k 0 0 1\r\ny\r\nget k\r\n",
        ),
        Case::new(
            "flush_all/absolute future",
            format!(
                "set k 0 0 1\r\nx\r\nflush_all {}\r\nget k\r\n",
                unix_now_plus(3600)
            ),
        ),
        Case::new(
            "flush_all/absolute past",
            "set k 0 0 1\r\nx\r\nflush_all 1000000000\r\nget k\r\n",
        ),
        Case::new("version/plain", "version\r\n"),
        Case::new("version/extra token", "version x\r\n"),
        Case::new("verbosity/set", "verbosity 1\r\nverbosity 0\r\n"),
        Case::new("verbosity/noreply", "verbosity 1 noreply\r\nget k\r\n"),
        Case::new("verbosity/no argument", "verbosity\r\n"),
        Case::new("verbosity/noreply only", "verbosity noreply\r\n"),
        Case::new("verbosity/non-numeric", "verbosity loud\r\n"),
        Case::new("verbosity/too many tokens", "verbosity 1 2 3\r\n"),
        Case::new("verbosity/large", "verbosity 99\r\n"),
        Case::new("quit/plain", "quit\r\n").until_close(),
        Case::new(
            "quit/after pipelined commands",
            "set k 0 0 1\r\nx\r\nget k\r\nquit\r\nget k\r\n",
        )
        .until_close(),
        Case::new("quit/extra token", "quit now\r\n").until_close(),
        Case::new("shutdown/not enabled", "shutdown\r\n"),
        Case::new("shutdown/graceful not enabled", "shutdown graceful\r\n"),
        Case::new("shutdown/bad argument", "shutdown now please\r\n"),
        Case::new(
            "shutdown/enabled with -A",
            "set k 0 0 1\r\nx\r\nshutdown\r\n",
        )
        .args(&["-A"])
        .until_close(),
        Case::new(
            "shutdown/bad mode with -A",
            "shutdown now\r\nshutdown a b\r\n",
        )
        .args(&["-A"]),
        Case::new("cache_memlimit/set", "cache_memlimit 100\r\n"),
        Case::new(
            "cache_memlimit/the new limit shows in stats",
            "cache_memlimit 100\r\nstats\r\ncache_memlimit 32\r\nstats\r\n",
        ),
        Case::new(
            "cache_memlimit/noreply",
            "cache_memlimit 100 noreply\r\nget k\r\n",
        ),
        Case::new("cache_memlimit/no argument", "cache_memlimit\r\n"),
        Case::new("cache_memlimit/non-numeric", "cache_memlimit lots\r\n"),
        Case::new("cache_memlimit/zero", "cache_memlimit 0\r\n"),
        Case::new("cache_memlimit/too many tokens", "cache_memlimit 1 2 3\r\n"),
    ]
}

fn syntax_cases() -> Vec<Case> {
    let long_key = rep('q', 3000);
    vec![
        Case::new("syntax/unknown command", "foo\r\nfoo bar baz\r\n"),
        Case::new("syntax/uppercase command", "SET k 0 0 1\r\nx\r\nGET k\r\n"),
        Case::new("syntax/empty line", "\r\n"),
        Case::new("syntax/lone lf", "\n"),
        Case::new("syntax/lone cr line", "\r\r\n"),
        Case::new(
            "syntax/lf line endings",
            "set k 0 0 1\nx\r\nget k\nincr j 1\ndelete k\n",
        ),
        Case::new(
            "syntax/extra spaces between tokens",
            "set  k  0  0  1\r\nx\r\nget   k\r\n",
        ),
        Case::new(
            "syntax/leading spaces",
            "   set k 0 0 1\r\nx\r\n  get k\r\n",
        ),
        Case::new(
            "syntax/trailing spaces",
            "set k 0 0 1   \r\nx\r\nget k   \r\n",
        ),
        Case::new(
            "syntax/tab separator",
            "set\tk 0 0 1\r\nx\r\nget\tk\r\nget k\r\n",
        ),
        Case::new("syntax/tab in key", "set a\tb 0 0 1\r\nx\r\nget a\tb\r\n"),
        Case::new("syntax/nul in command line", b"get a\0b\r\nge\0t a\r\n"),
        Case::new("syntax/high bytes", b"\xff\xfe\r\nget \xc3\xa9\r\n"),
        Case::new("syntax/meta-like prefix", "mx\r\nm\r\n"),
        Case::new(
            "syntax/key too long in set line",
            format!("set {long_key} 0 0 1\r\nx\r\n"),
        ),
        Case::new("syntax/long line without newline closes", rep('x', 3000)).until_close(),
        Case::new("syntax/2048 bytes without newline waits", rep('x', 2048))
            .pause(50)
            .send("\r\n"),
        Case::new("syntax/2049 bytes without newline closes", rep('x', 2049))
            .pause(50)
            .send("\r\n")
            .until_close(),
        Case::new(
            "syntax/long set line without newline closes",
            format!("set {long_key} 0 0 1"),
        )
        .until_close(),
        Case::new(
            "syntax/long get line without newline",
            format!(
                "get {}",
                (0..600)
                    .map(|i| format!("k{i}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        )
        .send(" k1\r\n"),
        Case::new(
            "syntax/long gets line without newline",
            format!(
                "set k7 0 0 1\r\nx\r\ngets {}",
                (0..600)
                    .map(|i| format!("k{i}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        )
        .pause(50)
        .send(" k7\r\n"),
        Case::new(
            "syntax/http request line closes",
            "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        )
        .until_close(),
        Case::new("syntax/http post closes", "POST /x HTTP/1.0\r\n\r\n").until_close(),
        Case::new("syntax/http head closes", "HEAD / HTTP/1.0\r\n").until_close(),
        Case::new(
            "syntax/unknown command ending in http version closes",
            "foo bar HTTP/1.1\r\n",
        )
        .until_close(),
        Case::new("syntax/uppercase get without http version", "GET /\r\n"),
        Case::new(
            "syntax/http token as extra set argument",
            "set k 0 0 1 HTTP/1.1\r\nx\r\nget k\r\n",
        ),
        Case::new("syntax/get with http suffix", "get / HTTP/1.1\r\n"),
        Case::new(
            "syntax/binary magic after text",
            b"version\r\n\x80\x0c\x00\x00\r\n",
        ),
    ]
}

fn framing_cases() -> Vec<Case> {
    let set_and_get = "set split 5 0 10\r\n0123\r\n6789\r\nget split\r\n";
    let many: String = (0..50)
        .map(|i| {
            format!(
                "set p{i} 0 0 1\r\n{}\r\nget p{i}\r\nincr p{i} 1\r\n",
                i % 10
            )
        })
        .collect();
    vec![
        Case::new("pipeline/many commands in one write", many.clone()),
        Case::new(
            "pipeline/mixed errors and successes",
            "foo\r\nset k 0 0 1\r\nx\r\nget\r\nget k\r\nincr k 1\r\ndelete k 5\r\ndelete k\r\n",
        ),
        Case::new(
            "pipeline/noreply storm then get",
            (0..100)
                .map(|i| format!("set n{i} 0 0 1 noreply\r\n{}\r\n", i % 10))
                .chain(std::iter::once("get n0 n50 n99\r\n".to_string()))
                .collect::<String>(),
        ),
        Case::new(
            "pipeline/100 gets",
            "set k 0 0 1\r\nx\r\n".to_string() + &"get k\r\n".repeat(100),
        ),
        Case::named("split/set byte by byte").send_split(set_and_get, 1, 3),
        Case::new("split/get in two writes", "set k 0 0 1\r\nx\r\nge")
            .pause(30)
            .send("t k\r\n"),
        Case::new("split/between cr and lf", "set k 0 0 1\r")
            .pause(30)
            .send("\nx\r")
            .pause(30)
            .send("\nget k\r")
            .pause(30)
            .send("\n"),
        Case::new("split/data block in pieces", "set k 0 0 10\r\n01")
            .pause(30)
            .send("2345")
            .pause(30)
            .send("6789\r")
            .pause(30)
            .send("\nget k\r\n"),
        Case::named("split/command line in chunks").send_split(
            "set longer_key_name 123 0 3\r\nabc\r\ngets longer_key_name\r\n",
            7,
            10,
        ),
        Case::named("split/big value in chunks").send_split(
            cat(&[
                &store("set", "big", "1", "0", &vec![b'z'; 100_000]),
                b"get big\r\n",
            ]),
            16 * 1024,
            5,
        ),
        Case::new("split/noreply split", "set k 0 0 1 nore")
            .pause(30)
            .send("ply\r\nx\r\nget k\r\n"),
        Case::new("split/bad data chunk split", "set k 0 0 2\r\nab")
            .pause(30)
            .send("c\r\nget k\r\n"),
    ]
}
