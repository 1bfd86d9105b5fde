//! Seed corpora for the fuzz targets, from the request scripts of the differential tests
//! (`tests/differential/cases_*.rs`, compiled in as they are). Run by `fuzz/seed.sh`.
//!
//! Usage: seed-gen OUT_DIR — writes OUT_DIR/<target>/<hash> files:
//! - text_parser: each text/meta case's script (the target splits it into lines);
//! - meta_parser: each meta request line, after a first byte that tells the target to parse
//!   the line as it is;
//! - binary_parser: each binary case's frames;
//! - conn_stateful: every script (the target reads them as choices) and a few pseudo-random
//!   choice streams.
//!
//! Scripts over 64 KB are left out, so the corpus stays small.

#![allow(dead_code)]

#[path = "../../tests/differential/case.rs"]
mod case;
#[path = "../../tests/differential/cases_arith.rs"]
mod cases_arith;
#[path = "../../tests/differential/cases_ascii_auth.rs"]
mod cases_ascii_auth;
#[path = "../../tests/differential/cases_binary.rs"]
mod cases_binary;
#[path = "../../tests/differential/cases_crawler.rs"]
mod cases_crawler;
#[path = "../../tests/differential/cases_meta.rs"]
mod cases_meta;
#[path = "../../tests/differential/cases_meta_write.rs"]
mod cases_meta_write;
#[path = "../../tests/differential/cases_misc.rs"]
mod cases_misc;
#[path = "../../tests/differential/cases_retrieval.rs"]
mod cases_retrieval;
#[path = "../../tests/differential/cases_stats.rs"]
mod cases_stats;
#[path = "../../tests/differential/cases_storage.rs"]
mod cases_storage;

/// What the case files need of the test harness's `common` module.
mod common {
    pub fn ascii_auth_file() -> &'static str {
        "/nonexistent/authfile"
    }
    pub fn escape_lines(bytes: &[u8], _indent: &str) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }
}

use case::{Case, End, Step};
use std::collections::BTreeSet;
use std::path::Path;

const MAX_SEED: usize = 64 * 1024;

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
    cases
}

/// The bytes a case writes, in order (a sync is its `version` request).
fn script(case: &Case) -> Vec<u8> {
    let mut out = Vec::new();
    for step in &case.steps {
        match step {
            Step::Send(bytes) => out.extend_from_slice(bytes),
            Step::Sync => out.extend_from_slice(b"version\r\n"),
            Step::Pause(_) => {}
        }
    }
    out
}

/// FNV-1a, for content-addressed file names (as libFuzzer names its corpus files by hash).
fn name(data: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

struct Out {
    dir: std::path::PathBuf,
    seen: BTreeSet<(String, String)>,
    bytes: usize,
}

impl Out {
    fn put(&mut self, target: &str, data: &[u8]) {
        if data.is_empty() || data.len() > MAX_SEED {
            return;
        }
        let file = name(data);
        if !self.seen.insert((target.to_string(), file.clone())) {
            return;
        }
        let dir = self.dir.join(target);
        std::fs::create_dir_all(&dir).expect("create corpus dir");
        std::fs::write(dir.join(file), data).expect("write seed");
        self.bytes += data.len();
    }
}

/// xorshift64*: reproducible pseudo-random choice streams.
fn stream(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: seed-gen OUT_DIR");
    let mut out = Out {
        dir: Path::new(&dir).to_path_buf(),
        seen: BTreeSet::new(),
        bytes: 0,
    };
    let cases = all_cases();
    for case in &cases {
        let s = script(case);
        let binary = case.end == End::BinarySentinel || s.first() == Some(&0x80);
        if binary {
            out.put("binary_parser", &s);
        } else {
            out.put("text_parser", &s);
            for line in s.split(|&b| b == b'\n') {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let meta = [&b"mg "[..], b"ms ", b"md ", b"ma ", b"mn", b"me "]
                    .iter()
                    .any(|p| line.starts_with(p));
                if meta {
                    // 6: the target parses the line as it is.
                    out.put("meta_parser", &[&[6u8][..], line].concat());
                }
            }
        }
        out.put("conn_stateful", &s);
    }
    for seed in 1..=24u64 {
        out.put("conn_stateful", &stream(seed, 256 << (seed % 4)));
    }
    println!(
        "{} cases: {} seed files, {} bytes, in {dir}",
        cases.len(),
        out.seen.len(),
        out.bytes
    );
}
