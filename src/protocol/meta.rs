//! The meta protocol's flags (`mg`, `ms`, `md`, `ma`): memcached's `_meta_flag_preparse`.
//!
//! Flags are single characters, some with a value (`T30`, `Oabc`). The preparse rejects a
//! repeated flag or an unknown one at once and remembers the last bad value; the commands then
//! walk the flags again, in request order, to build their replies.

use super::base64;
use super::text::Tokens;
use crate::numparse::{safe_strtol, safe_strtoul, safe_strtoull};

/// memcached's `MFLAG_MAX_OPT_LENGTH`: a meta command has fewer tokens than this.
pub const MAX_TOKENS: usize = 20;
/// memcached's `MFLAG_MAX_OPAQUE_LENGTH`.
pub const MAX_OPAQUE: usize = 32;

const BAD_TOKEN: &str = "CLIENT_ERROR bad token in command line format";

/// The flags of one meta command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetaFlags {
    /// `u`
    pub no_update: bool,
    /// `l`, `h`, `T`, `N`, `R`: the item must be seen before this access updates it.
    pub delay_bump: bool,
    /// `N`: vivify on miss, with this exptime.
    pub vivify: Option<i32>,
    /// `T`: new exptime.
    pub ttl: Option<i32>,
    /// `R`: recache threshold.
    pub recache: Option<i32>,
    /// `v`
    pub value: bool,
    /// `I`
    pub invalidate: bool,
    /// `q`
    pub quiet: bool,
    /// `b`: the key as decoded.
    pub binary_key: Option<Vec<u8>>,
    /// `F`
    pub client_flags: u32,
    /// `C`
    pub cas: Option<u64>,
    /// `M`: mode character.
    pub mode: Option<u8>,
    /// `D` (default 1)
    pub delta: u64,
    /// `J` (default 0)
    pub initial: u64,
    /// `E`: the CAS id a modified or created item gets instead of the next one from the
    /// counter (0: none given; memcached treats `E0` as absent too).
    pub new_cas: u64,
    /// `x`: `md` removes the value but keeps the item (the other commands accept and ignore it).
    pub remove_value: bool,
}

/// Parses the flags from token `start` on (memcached's `_meta_flag_preparse`).
pub fn preparse(tokens: &Tokens<'_>, start: usize) -> Result<MetaFlags, &'static str> {
    let mut f = MetaFlags {
        delta: 1,
        ..MetaFlags::default()
    };
    let mut seen = [false; 128];
    let mut error: Option<&'static str> = None;
    let mut i = start;
    loop {
        let token = tokens.get(i);
        if token.is_empty() {
            break;
        }
        i += 1;
        let flag = token[0];
        if flag >= 127 || seen[flag as usize] {
            return Err("CLIENT_ERROR duplicate flag");
        }
        seen[flag as usize] = true;
        let arg = &token[1..];
        match flag {
            b'b' => match base64::decode(tokens.get(1)) {
                Some(key) => f.binary_key = Some(key),
                None => error = Some("CLIENT_ERROR error decoding key"),
            },
            b'N' | b'T' | b'R' => {
                f.delay_bump = true;
                match safe_strtol(arg) {
                    Some(v) => match flag {
                        b'N' => f.vivify = Some(v),
                        b'T' => f.ttl = Some(v),
                        _ => f.recache = Some(v),
                    },
                    None => error = Some(BAD_TOKEN),
                }
            }
            b'l' | b'h' => f.delay_bump = true,
            b'O' | b'P' | b'L' | b'k' | b's' | b't' | b'c' | b'f' => {}
            b'v' => f.value = true,
            b'u' => f.no_update = true,
            b'q' => f.quiet = true,
            b'F' => match safe_strtoul(arg) {
                Some(v) => f.client_flags = v,
                None => error = Some("CLIENT_ERROR bad command line format"),
            },
            b'C' => match safe_strtoull(arg) {
                Some(v) => f.cas = Some(v),
                None => error = Some(BAD_TOKEN),
            },
            b'M' => {
                if token.len() != 2 {
                    error = Some("CLIENT_ERROR incorrect length for M token");
                } else {
                    f.mode = Some(token[1]);
                }
            }
            b'J' => match safe_strtoull(arg) {
                Some(v) => f.initial = v,
                None => error = Some("CLIENT_ERROR invalid numeric initial value"),
            },
            b'D' => match safe_strtoull(arg) {
                Some(v) => f.delta = v,
                None => error = Some("CLIENT_ERROR invalid numeric delta value"),
            },
            b'I' => f.invalidate = true,
            b'E' => match safe_strtoull(arg) {
                Some(v) => f.new_cas = v,
                None => error = Some(BAD_TOKEN),
            },
            b'x' => f.remove_value = true,
            _ => return Err("CLIENT_ERROR invalid flag"),
        }
    }
    match error {
        Some(e) => Err(e),
        None => Ok(f),
    }
}

/// The flag tokens after `start`, in request order (for building replies).
pub fn flag_tokens(tokens: Tokens<'_>, start: usize) -> impl Iterator<Item = &[u8]> {
    (start..)
        .map(move |i| tokens.get(i))
        .take_while(|t| !t.is_empty())
}

/// Appends ` k<key>` to a reply, base64-encoded with ` b` for a binary key (memcached's
/// `META_KEY`).
pub fn write_key(out: &mut Vec<u8>, key: &[u8], binary: bool) {
    out.extend_from_slice(b" k");
    if binary {
        base64::encode_into(key, out);
        out.extend_from_slice(b" b");
    } else {
        out.extend_from_slice(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(line: &str, start: usize) -> Result<MetaFlags, &'static str> {
        preparse(&Tokens::new(line.as_bytes()), start)
    }

    #[test]
    fn preparse_reads_values_and_rejects_repeats() {
        let f = flags("mg key v T30 N10 Oxyz q", 2).expect("valid");
        assert!(f.value && f.quiet && f.delay_bump);
        assert_eq!((f.ttl, f.vivify), (Some(30), Some(10)));
        assert_eq!(flags("mg key v v", 2), Err("CLIENT_ERROR duplicate flag"));
        assert_eq!(flags("mg key Tx", 2), Err(BAD_TOKEN));
        assert_eq!(flags("mg key z", 2), Err("CLIENT_ERROR invalid flag"));
        assert_eq!(flags("mg key E", 2), Err(BAD_TOKEN));
        assert_eq!(flags("mg key Eabc", 2), Err(BAD_TOKEN));
        let f = flags("md key E77 x", 2).expect("valid");
        assert_eq!((f.new_cas, f.remove_value), (77, true));
        assert_eq!(
            flags("ma key MIX", 2),
            Err("CLIENT_ERROR incorrect length for M token")
        );
        let f = flags("ma key MD D5 J7 C9", 2).expect("valid");
        assert_eq!(
            (f.mode, f.delta, f.initial, f.cas),
            (Some(b'D'), 5, 7, Some(9))
        );
        let f = flags("mg Zm9v b k", 2).expect("valid");
        assert_eq!(f.binary_key.as_deref(), Some(&b"foo"[..]));
        assert_eq!(
            flags("mg !!!! b", 2),
            Err("CLIENT_ERROR error decoding key")
        );
    }

    #[test]
    fn keys_are_written_plain_or_encoded() {
        let mut out = Vec::new();
        write_key(&mut out, b"foo", false);
        write_key(&mut out, b"foo", true);
        assert_eq!(out, b" kfoo kZm9v b");
    }
}
