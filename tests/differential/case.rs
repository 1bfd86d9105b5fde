//! What a differential case is: a named script of writes and pauses, played identically to
//! memcached and memcached-rs, and how the runner knows all the replies have arrived.

use std::fmt::Write as _;

/// One thing the client does.
pub enum Step {
    /// Write these bytes (with `TCP_NODELAY`, so they leave at once).
    Send(Vec<u8>),
    /// Sleep this many milliseconds: splits a command over several server reads, or lets
    /// items expire.
    Pause(u64),
    /// Send `version\r\n` and wait for its reply: then every earlier reply has been written.
    /// Used where memcached's output depends on which replies are still queued (it batches
    /// the replies of one read), so both servers see the same batching whatever the load.
    Sync,
}

/// How the runner decides the server has said everything.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum End {
    /// A final [`Step::Sync`]: send `version\r\n` and read until its `VERSION` reply: the
    /// server answers in order, so every earlier reply has arrived by then.
    Sentinel,
    /// Read until the server closes the connection (quit, over-long lines, HTTP requests…).
    UntilClose,
    /// For binary-protocol cases: a final binary `version` request with a marker opaque,
    /// read until its response (see [`BINARY_SENTINEL`]).
    BinarySentinel,
}

/// The binary sentinel: a `version` request whose opaque no case uses.
pub const BINARY_SENTINEL: [u8; 24] = [
    0x80, 0x0b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0xed, 0xfa, 0xce, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// Its response from a server that reports version 1.6.38 (both sides do).
pub const BINARY_SENTINEL_REPLY: &[u8] =
    b"\x81\x0b\0\0\0\0\0\0\0\0\0\x06\xfe\xed\xfa\xce\0\0\0\0\0\0\0\x001.6.38";

/// A named script. Both servers are fresh for every case, so cas ids and counters start equal.
pub struct Case {
    pub name: String,
    pub steps: Vec<Step>,
    pub end: End,
    /// Extra daemon flags, given to both servers.
    pub args: Vec<&'static str>,
}

impl Case {
    /// A case that sends `script` in one write and ends with the sentinel.
    pub fn new(name: impl Into<String>, script: impl AsRef<[u8]>) -> Case {
        Case {
            name: name.into(),
            steps: vec![Step::Send(script.as_ref().to_vec())],
            end: End::Sentinel,
            args: Vec::new(),
        }
    }

    /// A binary-protocol case: `script` in one write, ended by the binary sentinel.
    pub fn binary(name: impl Into<String>, script: impl AsRef<[u8]>) -> Case {
        Case {
            end: End::BinarySentinel,
            ..Case::new(name, script)
        }
    }

    /// A case with no steps yet, for scripts built entirely with the methods below.
    pub fn named(name: impl Into<String>) -> Case {
        Case {
            name: name.into(),
            steps: Vec::new(),
            end: End::Sentinel,
            args: Vec::new(),
        }
    }

    /// Then writes `bytes` in a separate write.
    pub fn send(mut self, bytes: impl AsRef<[u8]>) -> Case {
        self.steps.push(Step::Send(bytes.as_ref().to_vec()));
        self
    }

    /// Then sleeps `ms` milliseconds.
    pub fn pause(mut self, ms: u64) -> Case {
        self.steps.push(Step::Pause(ms));
        self
    }

    /// Then waits until everything sent so far has been answered (see [`Step::Sync`]).
    pub fn sync(mut self) -> Case {
        self.steps.push(Step::Sync);
        self
    }

    /// Then writes `bytes` in pieces of `chunk` bytes with `pause_ms` between them, so the
    /// server sees them in separate reads.
    pub fn send_split(mut self, bytes: impl AsRef<[u8]>, chunk: usize, pause_ms: u64) -> Case {
        for (i, piece) in bytes.as_ref().chunks(chunk.max(1)).enumerate() {
            if i > 0 {
                self.steps.push(Step::Pause(pause_ms));
            }
            self.steps.push(Step::Send(piece.to_vec()));
        }
        self
    }

    /// Reads until the server closes instead of using the sentinel.
    pub fn until_close(mut self) -> Case {
        self.end = End::UntilClose;
        self
    }

    /// Starts both servers with these extra flags.
    pub fn args(mut self, args: &[&'static str]) -> Case {
        self.args = args.to_vec();
        self
    }

    /// The sum of all pauses: long cases are started first so they overlap with short ones.
    pub fn total_pause_ms(&self) -> u64 {
        self.steps
            .iter()
            .map(|step| match step {
                Step::Pause(ms) => *ms,
                Step::Send(_) | Step::Sync => 0,
            })
            .sum()
    }

    /// The script for failure reports: writes escaped one line each, pauses as `<pause N ms>`.
    /// Long runs of single-byte writes are shown joined, with how many writes they were.
    pub fn describe(&self, indent: &str) -> String {
        let mut out = String::new();
        if !self.args.is_empty() {
            let _ = writeln!(out, "{indent}<server flags: {}>", self.args.join(" "));
        }
        let writes = self
            .steps
            .iter()
            .filter(|s| matches!(s, Step::Send(_)))
            .count();
        if writes > 8 {
            let all: Vec<u8> = self
                .steps
                .iter()
                .filter_map(|s| match s {
                    Step::Send(bytes) => Some(bytes.as_slice()),
                    Step::Pause(_) | Step::Sync => None,
                })
                .flatten()
                .copied()
                .collect();
            let _ = writeln!(
                out,
                "{indent}<{writes} separate writes, {} ms of pauses in all, of:>",
                self.total_pause_ms()
            );
            out.push_str(&crate::common::escape_lines(&all, indent));
        } else {
            for step in &self.steps {
                match step {
                    Step::Send(bytes) => out.push_str(&crate::common::escape_lines(bytes, indent)),
                    Step::Pause(ms) => {
                        let _ = writeln!(out, "{indent}<pause {ms} ms>");
                    }
                    Step::Sync => {
                        let _ = writeln!(out, "{indent}<sync: version\\r\\n, wait for its reply>");
                    }
                }
            }
        }
        match self.end {
            End::Sentinel => {
                let _ = writeln!(out, "{indent}<sentinel: version\\r\\n>");
            }
            End::BinarySentinel => {
                let _ = writeln!(out, "{indent}<sentinel: binary version, opaque feedface>");
            }
            End::UntilClose => {}
        }
        out
    }
}

/// How many lines of `script` are `version` commands (first token `version`; memcached
/// tokenizes on spaces only), i.e. how many `VERSION` replies it asks for. The runner counts
/// them so that a script's own `version` cannot be taken for the sync's reply.
pub fn version_commands(script: &[u8]) -> usize {
    script
        .split(|&b| b == b'\n')
        .filter(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            line.split(|&b| b == b' ').find(|token| !token.is_empty()) == Some(b"version")
        })
        .count()
}

/// `"<cmd> <key> <flags> <exptime> <len>\r\n<value>\r\n"` — a storage command with its data,
/// the length computed from the value so binary values are easy to write.
pub fn store(cmd: &str, key: &str, flags: &str, exptime: &str, value: &[u8]) -> Vec<u8> {
    let mut out = format!("{cmd} {key} {flags} {exptime} {}\r\n", value.len()).into_bytes();
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
    out
}

/// Concatenates byte pieces.
pub fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// A string of `n` copies of `c` (long keys, values and lines).
pub fn rep(c: char, n: usize) -> String {
    c.to_string().repeat(n)
}

/// The current unix time plus `offset` seconds, for absolute exptimes.
pub fn unix_now_plus(offset: i64) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock before 1970")
        .as_secs();
    i64::try_from(now).expect("time fits i64") + offset
}
