//! TEMPORARY minimal flag parsing, replaced by the full getopts parser being written.

use super::{ListenSpec, Settings};
use std::fmt;

/// What the command line asks for.
#[derive(Debug)]
pub enum Invocation {
    /// Run the server.
    Run(Box<Settings>),
    /// Print help.
    Help,
    /// Print the version.
    Version,
}

/// A bad command line.
#[derive(Debug)]
pub struct ConfigError {
    message: String,
    code: u8,
}

impl ConfigError {
    /// Exit status.
    pub fn exit_code(&self) -> u8 {
        self.code
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Help text.
pub fn help_text() -> String {
    "memcached-rs\n".into()
}

/// Parses the command line.
pub fn from_args(args: &[String]) -> Result<Invocation, ConfigError> {
    let mut s = Settings::default();
    let bad = |m: &str| ConfigError {
        message: m.to_string(),
        code: 64,
    };
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or_else(|| bad("missing value"));
        match a.as_str() {
            "-p" => s.port = val()?.parse().map_err(|_| bad("bad -p"))?,
            "-U" => s.udp_port = val()?.parse().map_err(|_| bad("bad -U"))?,
            "-t" => s.threads = val()?.parse().map_err(|_| bad("bad -t"))?,
            "-c" => s.max_connections = val()?.parse().map_err(|_| bad("bad -c"))?,
            "-m" => s.memory_limit = val()?.parse::<usize>().map_err(|_| bad("bad -m"))? << 20,
            "-R" => s.reqs_per_event = val()?.parse().map_err(|_| bad("bad -R"))?,
            "-u" => s.user = Some(val()?),
            "-l" => s.listen.push(ListenSpec {
                host: Some(val()?),
                port: None,
            }),
            "-A" => s.shutdown_command = true,
            "-C" => s.use_cas = false,
            "-F" => s.flush_enabled = false,
            "-M" => s.evictions = false,
            "-o" => {
                for o in val()?.split(',') {
                    if let Some(v) = o.strip_prefix("idle_timeout=") {
                        s.idle_timeout = v.parse().map_err(|_| bad("bad idle_timeout"))?;
                    }
                }
            }
            "-h" => return Ok(Invocation::Help),
            "-V" => return Ok(Invocation::Version),
            _ => return Err(bad(&format!("unknown option {a}"))),
        }
    }
    Ok(Invocation::Run(Box::new(s)))
}
