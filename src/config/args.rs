//! Building `Settings` from the command line (and `--config-file`), with memcached 1.6.18's
//! checks, in its order, with its messages and exit statuses.

use std::path::{Path, PathBuf};

use super::cli::{self, Event, CONFIG_FILE};
use super::extended::{self, Extended, SLAB_PAGE_SIZE};
use super::listen::{self, parse_listen};
use super::{file, ConfigError, Protocol, Settings, EX_USAGE};
use crate::numparse::{atof, atoi, strtol_int};

/// What the command line asks for.
#[derive(Debug)]
pub enum Invocation {
    /// Run the server with these settings.
    Run(Box<Settings>),
    /// `-h`: print [`help_text`](super::help_text) and exit 0.
    Help,
    /// `-V`: print the version and exit 0.
    Version,
    /// `-i`: print [`license_text`](super::license_text) and exit 0.
    License,
}

/// memcached's limits for `-I`.
const ITEM_SIZE_MAX_LOWER_LIMIT: i32 = 1024;
const ITEM_SIZE_MAX_UPPER_LIMIT: i32 = 1024 * 1024 * 1024;
/// memcached warns above this many threads.
const MANY_THREADS: i32 = 64;

/// Parses `args` (`args[0]` is the program name): memcached's defaults, then the options of
/// `--config-file` if given, then the command line. The command line wins; for `-l` and `-v`,
/// which add up, any use on the command line replaces the file's entirely.
///
/// Options are applied left to right and the first bad one is reported, as memcached does, then
/// the cross-option checks run. Errors carry memcached's exact stderr text and exit status;
/// problems with the config file itself name the file and line.
pub fn from_args(args: &[String]) -> Result<Invocation, ConfigError> {
    let program = args.first().map_or("memcached-rs", String::as_str);
    let parsed = cli::parse(args.get(1..).unwrap_or_default())
        .map_err(|e| ConfigError::new(format!("{program}: {e}\nIllegal argument \"?\""), 1))?;
    let command_line = parsed.events;
    let given = |id: &str| command_line.iter().any(|e| e.id == id);

    let mut builder = Builder::default();
    // Each option with the file line it came from, if it came from the file.
    let mut sequence: Vec<(Option<(&Path, usize)>, Event)> = Vec::new();
    let config_file = command_line
        .iter()
        .rev()
        .find(|e| e.id == CONFIG_FILE)
        .and_then(|e| e.value.as_deref())
        .map(Path::new);
    if let Some(path) = config_file {
        let from_file = file::read(path)?;
        builder.settings.logfile = from_file.logfile;
        for (line, event) in from_file.events {
            let overridden = matches!(event.id.as_str(), "l" | "v") && given(&event.id);
            if !overridden {
                sequence.push((Some((path, line)), event));
            }
        }
    }
    for event in &command_line {
        if event.id != CONFIG_FILE {
            sequence.push((None, event.clone()));
        }
    }

    for (place, event) in sequence {
        let applied = builder.apply(&event).map_err(|e| match place {
            Some((path, line)) => ConfigError::new(
                format!("{}{}", file::location(path, line), e.message()),
                e.exit_code(),
            ),
            None => e,
        })?;
        if let Some(invocation) = applied {
            return Ok(invocation);
        }
    }
    builder.finish().map(|s| Invocation::Run(Box::new(s)))
}

/// Settings being built, plus what memcached remembers between flags for its final checks.
#[derive(Default)]
struct Builder {
    settings: Settings,
    extended: Extended,
    /// Ports as memcached holds them (`int`), range-checked at the end.
    port: Option<i32>,
    udp_port: Option<i32>,
    /// `-I` as memcached computes it, in an `int`.
    item_size_max: Option<i32>,
    protocol_given: bool,
    napi_ids: Option<i32>,
    listen: Vec<String>,
}

fn usage(message: impl Into<String>) -> ConfigError {
    ConfigError::new(message, EX_USAGE)
}

/// Errors memcached reports with `return 1` from `main`.
fn fail(message: impl Into<String>) -> ConfigError {
    ConfigError::new(message, 1)
}

impl Builder {
    /// Applies one option; `Some` when it ends parsing (`-h`, `-V`, `-i`).
    fn apply(&mut self, event: &Event) -> Result<Option<Invocation>, ConfigError> {
        let s = &mut self.settings;
        let value = event.value.as_deref().unwrap_or_default();
        let path = || Some(PathBuf::from(value));
        match event.id.as_str() {
            "h" => return Ok(Some(Invocation::Help)),
            "V" => return Ok(Some(Invocation::Version)),
            "i" => return Ok(Some(Invocation::License)),
            "a" => {
                // An `int` holding strtol's result, so a huge mask keeps its low bits.
                s.unix_mask = strtol_int(value.as_bytes(), 8) as u32;
            }
            "A" => s.shutdown_command = true,
            "p" => self.port = Some(atoi(value.as_bytes())),
            "U" => self.udp_port = Some(atoi(value.as_bytes())),
            "s" => s.unix_socket = path(),
            // memcached computes `(size_t)atoi(x) * 1024 * 1024`: no suffixes, and a negative
            // count wraps to an enormous limit.
            "m" => {
                let megabytes = i64::from(atoi(value.as_bytes())) as u64;
                s.memory_limit = megabytes.wrapping_mul(1024 * 1024) as usize;
            }
            "M" => s.evictions = false,
            "c" => s.max_connections = positive(value, "Maximum connections")?,
            "k" => s.lock_memory = true,
            "v" => s.verbose = s.verbose.saturating_add(1),
            "l" => self.listen.push(value.to_string()),
            "d" => s.daemonize = true,
            "r" => s.core_dumps = true,
            "R" => {
                s.reqs_per_event = positive(value, "Number of requests per event")?;
            }
            "u" => s.user = Some(value.to_string()),
            "P" => s.pid_file = path(),
            "e" => s.memory_file = path(),
            "f" => {
                // memcached accepts inf and nan here; neither is a usable factor.
                let factor = atof(value.as_bytes());
                if !(factor > 1.0 && factor.is_finite()) {
                    return Err(fail("Factor must be greater than 1"));
                }
                s.growth_factor = factor;
                self.extended.memcached_classes = true;
            }
            "n" => {
                s.chunk_size = positive(value, "Chunk size")?;
                self.extended.memcached_classes = true;
            }
            "t" => {
                s.threads = positive(value, "Number of threads")?;
                if atoi(value.as_bytes()) > MANY_THREADS {
                    // sic: memcached's message lacks the space in "workerthreads".
                    s.warnings.push(
                        "WARNING: Setting a high number of workerthreads is not recommended.\n \
                         Set this value to the number of cores in your machine or less."
                            .into(),
                    );
                }
            }
            "D" => {
                let c = value.chars().next();
                s.prefix_delimiter = Some(c.ok_or_else(|| fail("No delimiter specified"))?);
            }
            "L" => s.large_pages = true,
            "C" => s.use_cas = false,
            "b" => s.backlog = atoi(value.as_bytes()),
            "B" => {
                s.protocol = match value {
                    "auto" => Protocol::Auto,
                    "binary" => Protocol::Binary,
                    "ascii" => Protocol::Ascii,
                    _ => {
                        return Err(usage(format!(
                            "Invalid value for binding protocol: {value}\n \
                             -- should be one of auto, binary, or ascii"
                        )))
                    }
                };
                self.protocol_given = true;
            }
            "I" => self.item_size_max = Some(item_size(value)),
            "S" => s.sasl = true,
            "F" => s.flush_enabled = false,
            "X" => s.dump_enabled = false,
            "W" => s.watch_enabled = false,
            "Y" => s.auth_file = path(),
            "Z" => s.tls = true,
            "N" => {
                let n = atoi(value.as_bytes());
                if n <= 0 {
                    return Err(fail("Maximum number of NAPI IDs must be greater than 0"));
                }
                self.napi_ids = Some(n);
            }
            "o" => extended::apply(value, s, &mut self.extended)?,
            // The option table and this match list the same options.
            other => debug_assert!(false, "option -{other} not handled"),
        }
        Ok(None)
    }

    /// memcached's checks after all flags are read, in its order, then the final settings.
    fn finish(mut self) -> Result<Settings, ConfigError> {
        let s = &mut self.settings;
        if let Some(n) = self.napi_ids {
            if usize::try_from(n).map_or(true, |n| n > s.threads) {
                return Err(usage(format!(
                    "Number of napi_ids({n}) cannot be greater than number of threads({})",
                    s.threads
                )));
            }
        }
        self.check_item_size()?;
        let s = &mut self.settings;
        s.slab_classes = extended::check(s, &self.extended)?;

        // Authentication picks the protocol unless -B did.
        if s.sasl {
            if !self.protocol_given {
                s.protocol = Protocol::Binary;
            } else if s.protocol != Protocol::Binary {
                // `-B auto` too: a text connection would skip SASL, so memcached refuses it.
                return Err(usage(
                    "ERROR: You cannot allow the ASCII protocol while using SASL.",
                ));
            }
            if self.udp_port.unwrap_or(0) != 0 {
                return Err(usage(
                    "ERROR: Cannot enable UDP while using binary SASL authentication.",
                ));
            }
        }
        if s.auth_file.is_some() {
            if !self.protocol_given {
                s.protocol = Protocol::Ascii;
            } else if s.protocol != Protocol::Ascii {
                // `-B auto` too: a binary connection would skip the text protocol's
                // authentication, so memcached refuses it as it refuses `-B binary`.
                return Err(usage("ERROR: You cannot allow the BINARY protocol while using ascii authentication tokens."));
            }
        }

        // Given only -U, memcached serves TCP on that port too.
        let udp = self.udp_port.unwrap_or(s.udp_port);
        let tcp = match self.port {
            Some(p) => p,
            None if udp != 0 && self.udp_port.is_some() => udp,
            None => s.port,
        };
        // memcached range-checks only the TCP port and lets getaddrinfo() mangle the rest;
        // a port must fit a u16 here (or be -1: one the kernel picks), so bad UDP ports get
        // the same message.
        let port_of = |p: i32| {
            if p == -1 || u16::try_from(p).is_ok() {
                Ok(p)
            } else {
                Err(usage(format!("ERROR: Invalid port number {p}.")))
            }
        };
        s.port = port_of(tcp)?;
        s.udp_port = port_of(udp)?;
        if s.tls && s.port == 0 {
            return Err(usage("ERROR: You cannot enable SSL without a TCP port."));
        }
        if s.auth_file.is_some() && s.udp_port != 0 {
            return Err(usage(
                "Cannot use UDP with ascii authentication enabled (-U 0 to disable)",
            ));
        }

        if !self.listen.is_empty() {
            s.inter = Some(listen::join(&self.listen));
        }
        s.listen = parse_listen(&self.listen).map_err(|e| {
            // memcached prints this line after the parse error, which for a bad bracket
            // has no newline of its own.
            let separator = if e.message().starts_with("Invalid IPV6") {
                ""
            } else {
                "\n"
            };
            let interfaces = listen::join(&self.listen);
            ConfigError::new(
                format!(
                    "{}{separator}failed to listen on one of interface(s) {interfaces}: Success",
                    e.message()
                ),
                e.exit_code(),
            )
        })?;
        self.record_not_implemented();
        Ok(self.settings)
    }

    /// memcached's `-I` checks and the `slab_chunk_max` adjustments that depend on it.
    fn check_item_size(&mut self) -> Result<(), ConfigError> {
        let s = &mut self.settings;
        let default = i32::try_from(s.item_size_max).unwrap_or(ITEM_SIZE_MAX_UPPER_LIMIT);
        let item = self.item_size_max.unwrap_or(default);
        if item < ITEM_SIZE_MAX_LOWER_LIMIT {
            return Err(usage("Item max size cannot be less than 1024 bytes."));
        }
        let item_bytes = item.unsigned_abs() as usize;
        if item_bytes > s.memory_limit / 2 {
            return Err(usage(
                "Cannot set item size limit higher than 1/2 of memory max.",
            ));
        }
        if item > ITEM_SIZE_MAX_UPPER_LIMIT {
            return Err(usage("Cannot set item size limit higher than a gigabyte."));
        }
        s.item_size_max = item_bytes;
        // Large items are stored in chunks of half a page unless slab_chunk_max says otherwise.
        if item_bytes > 1024 * 1024 && !self.extended.slab_chunk_changed {
            s.slab_chunk_max = SLAB_PAGE_SIZE / 2;
        }
        let chunk = s.slab_chunk_max;
        if chunk > item_bytes {
            return Err(usage(format!(
                "slab_chunk_max (bytes: {chunk}) cannot be larger than -I (item_size_max {item})"
            )));
        }
        if chunk == 0 || item_bytes % chunk != 0 {
            return Err(usage(format!(
                "-I (item_size_max: {item}) must be evenly divisible by slab_chunk_max (bytes: {chunk})"
            )));
        }
        if SLAB_PAGE_SIZE % chunk != 0 {
            return Err(usage(format!(
                "slab_chunk_max (bytes: {chunk}) must divide evenly into {SLAB_PAGE_SIZE} (slab_page_size)"
            )));
        }
        Ok(())
    }

    /// Lists the accepted flags whose feature is a later milestone, from their final values
    /// (so a file's `-U 5` undone by `-U 0` is not listed), then the recorded `-o` options.
    fn record_not_implemented(&mut self) {
        let mut list: Vec<String> = self
            .napi_ids
            .map(|n| format!("-N {n}"))
            .into_iter()
            .collect();
        list.append(&mut self.extended.not_implemented);
        self.settings.not_implemented = list;
    }
}

/// A count memcached insists is positive (`<name> must be greater than 0`, exit 1). memcached
/// lets negative `-n` and `-R` through and then misbehaves; we refuse them with the same text.
fn positive(value: &str, name: &str) -> Result<usize, ConfigError> {
    usize::try_from(atoi(value.as_bytes()))
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| fail(format!("{name} must be greater than 0")))
}

/// memcached's `-I`: an optional `k`/`m` suffix (either case; no `g`), the rest read with
/// `atoi`, multiplied in an `int` (so `2048m` wraps negative and is "less than 1024 bytes").
fn item_size(value: &str) -> i32 {
    let (number, unit) = match value.char_indices().last() {
        Some((i, c)) if matches!(c, 'k' | 'K' | 'm' | 'M') => (&value[..i], c),
        _ => (value, ' '),
    };
    let n = atoi(number.as_bytes());
    match unit {
        'k' | 'K' => n.wrapping_mul(1024),
        'm' | 'M' => n.wrapping_mul(1024 * 1024),
        _ => n,
    }
}

#[cfg(test)]
#[path = "args_tests.rs"]
pub(super) mod tests;
