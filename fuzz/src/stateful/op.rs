//! What an operation is: the key space, what it means protocol aside ([`Sem`]), how it is
//! spelled and read back in its protocol ([`Style`]), and its bytes ([`Op`]).

const LONG_KEY: [u8; 250] = [b'k'; 250];
/// The key space. The last one is as long as a key may be (and too long for a base64 key).
pub(super) const KEYS: [&[u8]; 4] = [b"a", b"b", b"ctr", &LONG_KEY];

/// The name of key `k` of [`KEYS`].
pub(super) fn key_name(k: usize) -> &'static [u8] {
    KEYS[k]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// The protocol of an operation. Text and meta go over one connection, binary over another.
pub(super) enum Proto {
    Text,
    Meta,
    Binary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// The mode of a storage command (a binary CAS is a SET with a CAS id).
pub(super) enum Mode {
    Set,
    Add,
    Replace,
    Append,
    Prepend,
    Cas,
}

/// An exptime as sent, and whether it means "already expired".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Exp {
    pub(super) value: i64,
    pub(super) expired: bool,
}

/// What one well-formed operation means, protocol aside.
#[derive(Debug, Clone)]
pub(super) enum Sem {
    Store {
        mode: Mode,
        key: usize,
        data: Vec<u8>,
        flags: u32,
        exp: Exp,
        cas: u64,
    },
    Get {
        keys: Vec<usize>,
        touch: Option<Exp>,
    },
    Delete {
        key: usize,
        cas: Option<u64>,
    },
    Arith {
        key: usize,
        incr: bool,
        delta: u64,
        vivify: Option<u64>,
    },
    Flush,
    /// A command that changes no item (version, stats, noop…): only its shape is checked.
    Other(&'static str),
}

/// Protocol details of one operation, for rendering and for reading its reply.
#[derive(Debug, Clone, Default)]
pub(super) struct Style {
    /// text `noreply`, meta `q`, binary quiet opcodes.
    pub(super) quiet: bool,
    /// text: `gets`/`gats`; meta: `c`.
    pub(super) want_cas: bool,
    /// meta: `v`; binary: not TOUCH.
    pub(super) want_value: bool,
    /// meta: `f`.
    pub(super) want_flags: bool,
    /// meta: `k`; binary: GETK/GATK.
    pub(super) want_key: bool,
    /// meta: `s`.
    pub(super) want_size: bool,
    /// meta: `t`.
    pub(super) want_ttl: bool,
    /// meta: base64 key (`b`).
    pub(super) b64: bool,
    /// meta: `O` opaque; binary opaque.
    pub(super) opaque: Option<u32>,
    /// text `touch`, binary TOUCH: no value in the reply.
    pub(super) touch_only: bool,
    /// meta ms: omit the mode flag for set.
    pub(super) default_mode: bool,
}

/// One generated operation: its meaning, its protocol details and its bytes on the wire.
#[derive(Debug, Clone)]
pub(super) struct Op {
    pub(super) proto: Proto,
    pub(super) sem: Sem,
    pub(super) style: Style,
    pub(super) bytes: Vec<u8>,
}
