//! The classic text protocol: one request line, parsed into a [`Request`].
//!
//! Parsing follows memcached 1.6's `proto_text.c` decision for decision, because clients see
//! its exact replies to malformed input: the tokenizer splits on spaces only and stops after 23
//! tokens, a command's token count is checked before its arguments, `noreply` is recognised as
//! the last token before argument errors are reported (so those errors are silent too), and a
//! NUL byte ends the line as it ends a C string.

mod write;

pub use write::{write_u64, write_value_header};

use super::KEY_MAX_LENGTH;
pub use crate::cache::StoreMode;
use crate::numparse::{safe_strtol, safe_strtoul, safe_strtoull};

/// memcached's `MAX_TOKENS`: at most 23 tokens plus the unparsed remainder.
const MAX_TOKENS: usize = 24;

const BAD_FORMAT: &str = "CLIENT_ERROR bad command line format";
const BAD_EXPTIME: &str = "CLIENT_ERROR invalid exptime argument";

/// A request line split on spaces, as memcached's `tokenize_command`.
#[derive(Debug, Clone, Copy)]
pub struct Tokens<'a> {
    line: &'a [u8],
    spans: [(u32, u32); MAX_TOKENS],
    len: usize,
    /// Where the unsplit remainder starts when there were more tokens than `MAX_TOKENS - 1`.
    rest: Option<usize>,
}

impl<'a> Tokens<'a> {
    /// Splits a line (without its line ending).
    pub fn new(line: &'a [u8]) -> Tokens<'a> {
        let mut t = Tokens {
            line,
            spans: [(0, 0); MAX_TOKENS],
            len: 0,
            rest: None,
        };
        let mut start = 0;
        let mut i = 0;
        while i < line.len() {
            if line[i] == b' ' {
                if start != i {
                    t.spans[t.len] = (start as u32, i as u32);
                    t.len += 1;
                    if t.len == MAX_TOKENS - 1 {
                        if i + 1 < line.len() {
                            t.rest = Some(i + 1);
                        }
                        return t;
                    }
                }
                start = i + 1;
            }
            i += 1;
        }
        if start != i {
            t.spans[t.len] = (start as u32, i as u32);
            t.len += 1;
        }
        t
    }

    /// memcached's `ntokens`: the tokens plus the terminal one.
    pub fn count(&self) -> usize {
        self.len + 1
    }

    /// Token `i`, or an empty slice past the last one.
    pub fn get(&self, i: usize) -> &'a [u8] {
        if i < self.len {
            let (s, e) = self.spans[i];
            &self.line[s as usize..e as usize]
        } else {
            &[]
        }
    }

    /// The line from the start of token `i` to its end (for multi-key gets); empty if there is
    /// no such token.
    pub fn from(&self, i: usize) -> &'a [u8] {
        if i < self.len {
            &self.line[self.spans[i].0 as usize..]
        } else if i == self.len {
            self.rest.map_or(&[][..], |r| &self.line[r..])
        } else {
            &[]
        }
    }

    /// memcached's `set_noreply_maybe`: the last token is `noreply`.
    pub fn noreply(&self) -> bool {
        self.len >= 1 && self.get(self.len - 1) == b"noreply"
    }
}

/// The keys of a get, in order: the rest of the line split on spaces.
#[derive(Debug, Clone, Copy)]
pub struct Keys<'a>(&'a [u8]);

impl<'a> Keys<'a> {
    /// Iterates the keys.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> {
        self.0.split(|&b| b == b' ').filter(|k| !k.is_empty())
    }

    /// Iterates the keys that start at or after byte `offset`, each with its offset (so that a
    /// long multi-get can stop after any key and resume from the next one).
    pub fn iter_from(&self, offset: usize) -> impl Iterator<Item = (usize, &'a [u8])> {
        let base = self.0.as_ptr() as usize;
        let rest = self.0.get(offset..).unwrap_or_default();
        rest.split(|&b| b == b' ')
            .filter(|k| !k.is_empty())
            .map(move |k| (k.as_ptr() as usize - base, k))
    }
}

/// A storage command's request line (its data block follows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLine<'a> {
    /// Which one.
    pub command: StoreMode,
    /// The key.
    pub key: &'a [u8],
    /// Client flags.
    pub flags: u32,
    /// Expiry as sent.
    pub exptime: i32,
    /// Length of the data block without its `\r\n`.
    pub length: usize,
    /// `cas`'s unique id (0 otherwise).
    pub cas: u64,
    /// Whether to stay silent.
    pub noreply: bool,
}

/// The meta commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaKind {
    /// `mg`
    Get,
    /// `ms`
    Set,
    /// `md`
    Delete,
    /// `ma`
    Arithmetic,
    /// `mn`
    Noop,
    /// `me`
    Debug,
}

/// `flush_all`'s optional delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushDelay {
    /// No delay given: flush now.
    Now,
    /// A delay (or absolute time) in seconds.
    Seconds(i32),
    /// A delay that is not a number.
    Invalid,
}

/// `shutdown`'s argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownMode {
    /// `shutdown`
    Now,
    /// `shutdown graceful`
    Graceful,
    /// Anything else.
    Invalid,
}

/// One parsed request line.
#[derive(Debug, Clone, Copy)]
pub enum Request<'a> {
    /// `get`/`gets`/`gat`/`gats`/`bget`.
    Get {
        /// The keys, unchecked (a key over 250 bytes fails when the loop reaches it).
        keys: Keys<'a>,
        /// `gets`/`gats`: include the CAS id.
        with_cas: bool,
        /// `gat`/`gats`: the new exptime.
        touch: Option<i32>,
    },
    /// A storage command; its data block follows the line.
    Store(StoreLine<'a>),
    /// `delete`
    Delete {
        /// The key.
        key: &'a [u8],
        /// Whether to stay silent.
        noreply: bool,
    },
    /// `incr`/`decr`
    Arithmetic {
        /// The key.
        key: &'a [u8],
        /// `incr` (true) or `decr`.
        increment: bool,
        /// The amount.
        delta: u64,
        /// Whether to stay silent.
        noreply: bool,
    },
    /// `touch`
    Touch {
        /// The key.
        key: &'a [u8],
        /// New expiry as sent.
        exptime: i32,
        /// Whether to stay silent.
        noreply: bool,
    },
    /// `flush_all`
    FlushAll {
        /// The delay.
        delay: FlushDelay,
        /// Whether to stay silent.
        noreply: bool,
    },
    /// `version`
    Version,
    /// `quit`
    Quit,
    /// `verbosity`
    Verbosity {
        /// The level asked for.
        level: u32,
        /// Whether to stay silent.
        noreply: bool,
    },
    /// `shutdown`
    Shutdown(ShutdownMode),
    /// `cache_memlimit`
    CacheMemlimit {
        /// Megabytes, or `None` if not a number.
        megabytes: Option<u32>,
        /// Whether to stay silent.
        noreply: bool,
    },
    /// `stats [args]`
    Stats(Tokens<'a>),
    /// `lru_crawler …`
    LruCrawler(Tokens<'a>),
    /// `slabs reassign|automove …`
    Slabs(Tokens<'a>),
    /// `lru tune|mode|temp_ttl …`
    Lru(Tokens<'a>),
    /// A meta command (`mg ms md ma mn me`) with its tokens.
    Meta(MetaKind, Tokens<'a>),
    /// `watch [kinds…]`
    Watch(Tokens<'a>),
    /// `hotkeys on|off|sample N`
    Hotkeys(Tokens<'a>),
    /// `refresh_certs`
    RefreshCerts {
        /// Whether to stay silent on success (memcached always reports a failure).
        noreply: bool,
    },
    /// A reply memcached gives without doing anything (`ERROR`, `CLIENT_ERROR …`).
    Error {
        /// The reply line, without `\r\n`.
        reply: &'static str,
        /// Whether `noreply` silences it.
        noreply: bool,
    },
    /// memcached drops the connection (an HTTP request line).
    Close,
}

fn error(reply: &'static str, noreply: bool) -> Request<'static> {
    Request::Error { reply, noreply }
}

const ERROR: Request<'static> = Request::Error {
    reply: "ERROR",
    noreply: false,
};

/// Parses one request line (without its `\n` and the `\r` before it).
pub fn parse(line: &[u8]) -> Request<'_> {
    // memcached tokenizes a C string: a NUL ends the line.
    let line = match super::scan::find_byte(0, line) {
        Some(nul) => &line[..nul],
        None => line,
    };
    if let Some(get) = plain_get(line) {
        return get;
    }
    parse_tokens(line)
}

/// The general path: split the line, then dispatch as memcached does.
fn parse_tokens(line: &[u8]) -> Request<'_> {
    let t = Tokens::new(line);
    let n = t.count();
    if n < 2 || t.get(0).len() < 2 {
        return ERROR;
    }
    let cmd = t.get(0);
    // Dispatch on the first byte first, as memcached does: it decides which token-count check
    // applies and whether an unknown command may be an HTTP request line.
    match cmd[0] {
        b'm' if cmd.len() == 2 => {
            let kind = match cmd[1] {
                b'g' => MetaKind::Get,
                b's' => MetaKind::Set,
                b'd' => MetaKind::Delete,
                b'a' => MetaKind::Arithmetic,
                b'n' => MetaKind::Noop,
                b'e' => MetaKind::Debug,
                _ => return ERROR,
            };
            Request::Meta(kind, t)
        }
        b'g' if n < 3 => ERROR,
        b'g' => match cmd {
            b"get" => get(&t, false, false),
            b"gets" => get(&t, true, false),
            b"gat" => get(&t, false, true),
            b"gats" => get(&t, true, true),
            _ => ERROR,
        },
        b's' => match cmd {
            b"set" => want(n == 6 || n == 7, &t, |t| store(t, StoreMode::Set)),
            b"stats" => Request::Stats(t),
            b"shutdown" => Request::Shutdown(match (n, t.get(1)) {
                (2, _) => ShutdownMode::Now,
                (3, b"graceful") => ShutdownMode::Graceful,
                _ => ShutdownMode::Invalid,
            }),
            b"slabs" => Request::Slabs(t),
            _ => ERROR,
        },
        b'a' => match cmd {
            b"add" => want(n == 6 || n == 7, &t, |t| store(t, StoreMode::Add)),
            b"append" => want(n == 6 || n == 7, &t, |t| store(t, StoreMode::Append)),
            _ => ERROR,
        },
        b'c' => match cmd {
            b"cas" => want(n == 7 || n == 8, &t, |t| store(t, StoreMode::Cas)),
            b"cache_memlimit" => want(n == 3 || n == 4, &t, cache_memlimit),
            _ => ERROR,
        },
        b'i' => match cmd {
            b"incr" => want(n == 4 || n == 5, &t, |t| arithmetic(t, true)),
            _ => ERROR,
        },
        b'd' => match cmd {
            b"delete" => want((3..=5).contains(&n), &t, delete),
            b"decr" => want(n == 4 || n == 5, &t, |t| arithmetic(t, false)),
            _ => ERROR,
        },
        b't' => match cmd {
            b"touch" => want(n == 4 || n == 5, &t, touch),
            _ => ERROR,
        },
        _ => match cmd {
            b"replace" => want(n == 6 || n == 7, &t, |t| store(t, StoreMode::Replace)),
            b"prepend" => want(n == 6 || n == 7, &t, |t| store(t, StoreMode::Prepend)),
            b"bget" => want(n >= 3, &t, |t| get(t, false, false)),
            b"flush_all" => want((2..=4).contains(&n), &t, flush_all),
            b"version" => Request::Version,
            b"quit" => Request::Quit,
            b"verbosity" => want(n == 3 || n == 4, &t, verbosity),
            b"lru_crawler" => Request::LruCrawler(t),
            b"hotkeys" => Request::Hotkeys(t),
            b"watch" => Request::Watch(t),
            b"refresh_certs" => Request::RefreshCerts {
                noreply: t.get(n - 2) == b"noreply",
            },
            b"lru" => want(n >= 3, &t, |t| Request::Lru(*t)),
            _ if t.get(n - 2).starts_with(b"HTTP/") => Request::Close,
            _ => ERROR,
        },
    }
}

/// The most common request, `get`/`gets` with at least one key, recognised without splitting
/// the line into tokens: the keys are split once, by the handler. Exactly what the general path
/// yields for such a line (the keys start at the second token).
fn plain_get(line: &[u8]) -> Option<Request<'_>> {
    let (rest, with_cas) = match line.strip_prefix(b"get ") {
        Some(rest) => (rest, false),
        None => (line.strip_prefix(b"gets ")?, true),
    };
    let first_key = rest.iter().position(|&b| b != b' ')?;
    Some(Request::Get {
        keys: Keys(&rest[first_key..]),
        with_cas,
        touch: None,
    })
}

/// memcached's `WANT_TOKENS` checks: a wrong token count is a plain `ERROR`.
fn want<'a>(
    ok: bool,
    t: &Tokens<'a>,
    parse: impl FnOnce(&Tokens<'a>) -> Request<'a>,
) -> Request<'a> {
    if ok {
        parse(t)
    } else {
        ERROR
    }
}

fn get<'a>(t: &Tokens<'a>, with_cas: bool, touch: bool) -> Request<'a> {
    if !touch {
        return Request::Get {
            keys: Keys(t.from(1)),
            with_cas,
            touch: None,
        };
    }
    match safe_strtol(t.get(1)) {
        Some(exptime) => Request::Get {
            keys: Keys(t.from(2)),
            with_cas,
            touch: Some(exptime),
        },
        None => error(BAD_EXPTIME, false),
    }
}

fn store<'a>(t: &Tokens<'a>, command: StoreMode) -> Request<'a> {
    let noreply = t.noreply();
    let key = t.get(1);
    if key.len() > KEY_MAX_LENGTH {
        return error(BAD_FORMAT, noreply);
    }
    let (Some(flags), Some(exptime), Some(length)) = (
        safe_strtoul(t.get(2)),
        safe_strtol(t.get(3)),
        safe_strtol(t.get(4)),
    ) else {
        return error(BAD_FORMAT, noreply);
    };
    let cas = if command == StoreMode::Cas {
        match safe_strtoull(t.get(5)) {
            Some(cas) => cas,
            None => return error(BAD_FORMAT, noreply),
        }
    } else {
        0
    };
    if !(0..=i32::MAX - 2).contains(&length) {
        return error(BAD_FORMAT, noreply);
    }
    Request::Store(StoreLine {
        command,
        key,
        flags,
        exptime,
        length: length as usize,
        cas,
        noreply,
    })
}

fn arithmetic<'a>(t: &Tokens<'a>, increment: bool) -> Request<'a> {
    let noreply = t.noreply();
    let key = t.get(1);
    if key.len() > KEY_MAX_LENGTH {
        return error(BAD_FORMAT, noreply);
    }
    match safe_strtoull(t.get(2)) {
        Some(delta) => Request::Arithmetic {
            key,
            increment,
            delta,
            noreply,
        },
        None => error("CLIENT_ERROR invalid numeric delta argument", noreply),
    }
}

fn delete<'a>(t: &Tokens<'a>) -> Request<'a> {
    let n = t.count();
    let mut noreply = false;
    if n > 3 {
        let hold_is_zero = t.get(2) == b"0";
        noreply = t.noreply();
        let valid = (n == 4 && (hold_is_zero || noreply)) || (n == 5 && hold_is_zero && noreply);
        if !valid {
            return error(
                "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]",
                noreply,
            );
        }
    }
    let key = t.get(1);
    if key.len() > KEY_MAX_LENGTH {
        return error(BAD_FORMAT, noreply);
    }
    Request::Delete { key, noreply }
}

fn touch<'a>(t: &Tokens<'a>) -> Request<'a> {
    let noreply = t.noreply();
    let key = t.get(1);
    if key.len() > KEY_MAX_LENGTH {
        return error(BAD_FORMAT, noreply);
    }
    match safe_strtol(t.get(2)) {
        Some(exptime) => Request::Touch {
            key,
            exptime,
            noreply,
        },
        None => error(BAD_EXPTIME, noreply),
    }
}

fn flush_all<'a>(t: &Tokens<'a>) -> Request<'a> {
    let noreply = t.noreply();
    let delay = if t.count() != if noreply { 3 } else { 2 } {
        safe_strtol(t.get(1)).map_or(FlushDelay::Invalid, FlushDelay::Seconds)
    } else {
        FlushDelay::Now
    };
    Request::FlushAll { delay, noreply }
}

fn verbosity<'a>(t: &Tokens<'a>) -> Request<'a> {
    let noreply = t.noreply();
    match safe_strtoul(t.get(1)) {
        Some(level) => Request::Verbosity { level, noreply },
        None => error(BAD_FORMAT, noreply),
    }
}

fn cache_memlimit<'a>(t: &Tokens<'a>) -> Request<'a> {
    Request::CacheMemlimit {
        megabytes: safe_strtoul(t.get(1)),
        noreply: t.noreply(),
    }
}

#[cfg(test)]
mod tests;
