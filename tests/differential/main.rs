//! Differential tests: memcached-rs must answer the text, meta and binary protocols byte for
//! byte like Debian 13's memcached 1.6.38 (the reference; see `common::trixie_root`).
//!
//! Every case (see `cases_*.rs`) runs on a fresh pair of servers, one memcached and one
//! memcached-rs, each on its own free loopback port. Both get exactly the same writes and
//! pauses; their replies are compared after masking the few genuinely volatile values (see
//! `mask.rs`). Cases run in parallel; all disagreements are collected and reported together,
//! each with its script and both replies escaped (`\r\n` visible).
//!
//! Knobs (environment variables):
//! - `DIFF_CASE=substr[,substr…]` runs only the cases whose name contains one of them.
//! - `DIFF_THREADS=N` cases in flight at once (default 6: mostly waiting on sockets).
//! - `DIFF_SHOW=1` prints every selected case's script and memcached's reply, agreeing or not:
//!   the way to see what the reference does when writing a new case.
//! - `DIFF_STATS_STRICT=1` compares every `STAT` name, not only the contract's list.
//! - `DIFF_RS_ARGS="-C …"` / `DIFF_REF_ARGS` add flags to one side only. A harness self-check:
//!   `MEMCACHED_RS_BIN=/usr/bin/memcached DIFF_RS_ARGS=-C` must make the cas cases fail.
//! - `MEMCACHED_RS_BIN=path` tests another binary (see `common::memcached_rs_bin`).

#[path = "../common/mod.rs"]
mod common;

mod case;
mod cases_arith;
mod cases_ascii_auth;
mod cases_binary;
mod cases_crawler;
mod cases_meta;
mod cases_meta_write;
mod cases_misc;
mod cases_retrieval;
mod cases_since_1_6_18;
mod cases_stats;
mod cases_storage;
mod mask;

use case::{Case, End, Step};
use common::{escape_lines, Client, ReadEnd, Server, ServerKind};
use std::collections::HashSet;
use std::io::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;
use std::time::Duration;

/// What a sync sends (and `Sentinel` cases end with): its `VERSION …` reply marks the point
/// where every earlier reply has arrived.
const SENTINEL: &[u8] = b"version\r\n";

/// How long to wait for the sentinel's reply. Generous: a slow CI box must not fail cases.
const SENTINEL_LIMIT: Duration = Duration::from_secs(5);

/// How long to wait for the server to close in `UntilClose` cases.
const CLOSE_LIMIT: Duration = Duration::from_secs(3);

/// Every case, from all the case files.
fn all_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    cases.extend(cases_storage::cases());
    cases.extend(cases_retrieval::cases());
    cases.extend(cases_arith::cases());
    cases.extend(cases_misc::cases());
    cases.extend(cases_stats::cases());
    cases.extend(cases_meta::cases());
    cases.extend(cases_meta_write::cases());
    cases.extend(cases_crawler::cases());
    cases.extend(cases_binary::cases());
    cases.extend(cases_ascii_auth::cases());
    cases.extend(cases_since_1_6_18::cases());
    cases
}

/// What one server said in one case.
struct Transcript {
    bytes: Vec<u8>,
    end: ReadEnd,
}

impl Transcript {
    /// The masked form that is compared, with how the read ended as a last line.
    fn compared(&self, strict: bool) -> Vec<u8> {
        let mut out = mask::normalize(&self.bytes, strict);
        match self.end {
            ReadEnd::Matched => {}
            ReadEnd::Closed => out.extend_from_slice(b"<connection closed>"),
            ReadEnd::TimedOut => out.extend_from_slice(b"<timed out waiting for more>"),
        }
        out
    }
}

/// The result of one case on both sides.
struct Outcome {
    name: String,
    script: String,
    elapsed: Duration,
    /// Either both transcripts, or why the case could not run (a server did not start…).
    result: Result<(Transcript, Transcript), String>,
}

/// Plays `case` against a fresh server of `kind` and records everything it says.
fn run_side(kind: ServerKind, case: &Case, side_args: &[String]) -> Transcript {
    let mut args: Vec<&str> = case.args.clone();
    args.extend(side_args.iter().map(String::as_str));
    let server = Server::start(kind, &args);
    let mut client = Client::connect(server.addr());
    let mut sent = Vec::new();
    let mut received = Vec::new();
    let final_sync = (case.end == End::Sentinel).then_some(&Step::Sync);
    let mut send_failed = false;
    for step in case.steps.iter().chain(final_sync) {
        match step {
            Step::Send(bytes) => {
                // The server may legitimately have closed already (e.g. after an over-long
                // line); what it said before closing is read below.
                if client.try_send(bytes).is_err() {
                    send_failed = true;
                    break;
                }
                sent.extend_from_slice(bytes);
            }
            Step::Pause(ms) => std::thread::sleep(Duration::from_millis(*ms)),
            Step::Sync => {
                let _ = client.try_send(SENTINEL);
                sent.extend_from_slice(SENTINEL);
                let wanted = case::version_commands(&sent);
                let already = count_version_lines(&received);
                let (bytes, end) = client.read_until(SENTINEL_LIMIT, |new| {
                    ends_with_version_line(new) && already + count_version_lines(new) >= wanted
                });
                received.extend_from_slice(&bytes);
                if end != ReadEnd::Matched {
                    return Transcript {
                        bytes: received,
                        end,
                    };
                }
            }
        }
    }
    let end = if case.end == End::UntilClose || send_failed {
        let (bytes, end) = client.read_to_close(CLOSE_LIMIT);
        received.extend_from_slice(&bytes);
        end
    } else if case.end == End::BinarySentinel {
        let _ = client.try_send(&case::BINARY_SENTINEL);
        let (bytes, end) = client.read_until(SENTINEL_LIMIT, |new| {
            new.ends_with(case::BINARY_SENTINEL_REPLY)
        });
        received.extend_from_slice(&bytes);
        end
    } else {
        ReadEnd::Matched
    };
    Transcript {
        bytes: received,
        end,
    }
}

/// Whether the last complete line received is a `VERSION …` line.
fn ends_with_version_line(received: &[u8]) -> bool {
    let Some(body) = received.strip_suffix(b"\r\n") else {
        return false;
    };
    let last_line = match body.iter().rposition(|&b| b == b'\n') {
        Some(at) => &body[at + 1..],
        None => body,
    };
    last_line.starts_with(b"VERSION ")
}

/// How many lines of `received` are `VERSION …` replies.
fn count_version_lines(received: &[u8]) -> usize {
    received
        .split(|&b| b == b'\n')
        .filter(|line| line.starts_with(b"VERSION "))
        .count()
}

/// Runs one case on both servers at once (halving the wall time of cases that pause).
fn run_case(case: &Case, rs_args: &[String], ref_args: &[String]) -> Outcome {
    let started = std::time::Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| {
        std::thread::scope(|scope| {
            let reference = scope.spawn(|| run_side(ServerKind::Memcached, case, ref_args));
            let candidate = run_side(ServerKind::MemcachedRs, case, rs_args);
            let reference = reference
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (reference, candidate)
        })
    }))
    .map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "case panicked".to_string())
    });
    Outcome {
        name: case.name.clone(),
        script: case.describe("    "),
        elapsed: started.elapsed(),
        result,
    }
}

/// Whitespace-separated flags from an environment variable.
fn env_args(var: &str) -> Vec<String> {
    std::env::var(var)
        .map(|v| v.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

/// The 1-based number of the first line where two transcripts differ.
fn first_difference(a: &[u8], b: &[u8]) -> usize {
    let mut left = a.split_inclusive(|&c| c == b'\n');
    let mut right = b.split_inclusive(|&c| c == b'\n');
    let mut line = 1;
    loop {
        match (left.next(), right.next()) {
            (Some(x), Some(y)) if x == y => line += 1,
            _ => return line,
        }
    }
}

#[test]
fn differential() {
    // Fail at once, clearly, when the oracle is missing.
    common::trixie_root();

    let mut cases = all_cases();
    let mut names = HashSet::new();
    for case in &cases {
        assert!(
            names.insert(case.name.clone()),
            "duplicate case name `{}`",
            case.name
        );
    }
    if let Ok(filter) = std::env::var("DIFF_CASE") {
        let wanted: Vec<&str> = filter.split(',').map(str::trim).collect();
        cases.retain(|case| wanted.iter().any(|w| case.name.contains(w)));
        assert!(!cases.is_empty(), "DIFF_CASE={filter} matches no case");
    }
    // Popped from the end: the cases that pause longest start first and overlap the rest.
    cases.sort_by_key(|case| case.total_pause_ms());
    let total = cases.len();

    let threads: usize = std::env::var("DIFF_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let rs_args = env_args("DIFF_RS_ARGS");
    let ref_args = env_args("DIFF_REF_ARGS");
    let strict = mask::strict_stats();
    let show = std::env::var_os("DIFF_SHOW").is_some();

    let queue = Mutex::new(cases);
    let outcomes = Mutex::new(Vec::with_capacity(total));
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| loop {
                let next = queue.lock().expect("case queue poisoned").pop();
                let Some(case) = next else { break };
                let outcome = run_case(&case, &rs_args, &ref_args);
                outcomes.lock().expect("outcomes poisoned").push(outcome);
            });
        }
    });
    let mut outcomes = outcomes.into_inner().expect("outcomes poisoned");
    outcomes.sort_by(|a, b| a.name.cmp(&b.name));

    let mut report = String::new();
    let mut agree = 0;
    let mut missing_stats: Option<Vec<String>> = None;
    for outcome in &outcomes {
        let (reference, candidate) = match &outcome.result {
            Ok(pair) => pair,
            Err(message) => {
                report.push_str(&format!(
                    "=== {}: could not run: {message}\nscript:\n{}\n",
                    outcome.name, outcome.script
                ));
                continue;
            }
        };
        let expected = reference.compared(strict);
        let actual = candidate.compared(strict);
        if show {
            // Straight to stdout, not println!: libtest would capture it.
            let _ = writeln!(
                std::io::stdout(),
                "=== {} ({} ms)\nscript:\n{}memcached:\n{}",
                outcome.name,
                outcome.elapsed.as_millis(),
                outcome.script,
                escape_lines(&expected, "    ")
            );
        }
        if reference.bytes.windows(8).any(|w| w == b"STAT pid") && missing_stats.is_none() {
            let theirs = mask::stat_names(&candidate.bytes);
            let missing: Vec<String> = mask::stat_names(&reference.bytes)
                .into_iter()
                .filter(|name| !theirs.contains(name))
                .collect();
            missing_stats = Some(missing);
        }
        if expected == actual {
            agree += 1;
            continue;
        }
        report.push_str(&format!(
            "=== {} (first difference at line {})\nscript:\n{}memcached:\n{}memcached-rs:\n{}\n",
            outcome.name,
            first_difference(&expected, &actual),
            outcome.script,
            escape_lines(&expected, "    "),
            escape_lines(&actual, "    "),
        ));
    }

    if let Some(missing) = missing_stats.filter(|m| !m.is_empty()) {
        // Informational: these are not compared unless DIFF_STATS_STRICT is set.
        let _ = writeln!(
            std::io::stderr(),
            "note: memcached-rs's `stats` lacks {} names memcached has: {}",
            missing.len(),
            missing.join(" ")
        );
    }
    // Straight to stderr so the summary shows even when libtest captures output.
    let _ = writeln!(
        std::io::stderr(),
        "differential: {total} cases, {agree} agree"
    );
    assert!(
        report.is_empty(),
        "{} of {total} differential cases disagree with memcached:\n\n{report}",
        total - agree
    );
}

/// The shared helpers themselves, checked against the reference so other test targets can
/// trust them: `Client::request` must return whole replies, data blocks included.
#[test]
fn client_helpers_read_whole_replies() {
    let server = Server::start(ServerKind::Memcached, &[]);
    let mut client = server.client();
    assert_eq!(client.request("set k 0 0 5\r\nhe\r\no"), "STORED\r\n");
    assert_eq!(
        client.request("gets k missing"),
        "VALUE k 0 5 2\r\nhe\r\no\r\nEND\r\n"
    );
    assert_eq!(client.request("incr n 1"), "NOT_FOUND\r\n");
    let stats = client.request("stats");
    assert!(
        stats.starts_with("STAT pid ") && stats.ends_with("END\r\n"),
        "{stats}"
    );
    client.send(b"version\r\n");
    assert!(client.read_line().starts_with("VERSION "));
    client.send(b"quit\r\n");
    let (rest, end) = client.read_to_close(Duration::from_secs(3));
    assert_eq!((rest.as_slice(), end), (&b""[..], ReadEnd::Closed));
}
