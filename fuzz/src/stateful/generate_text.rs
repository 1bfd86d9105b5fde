//! Well-formed text-protocol operations: storage commands, get/gets/gat/gats, delete,
//! incr/decr, touch, flush_all, and commands that change no item (version, stats…).

use super::input::{delta, exp, flags, store_mode, value, Src};
use super::op::{key_name, Mode, Op, Proto, Sem, Style, KEYS};
use super::Run;

impl Run<'_> {
    /// A well-formed text command.
    pub(super) fn text_op(&mut self, src: &mut Src<'_>) -> Op {
        let mut style = Style::default();
        let key = src.below(KEYS.len());
        let k = key_name(key);
        let mut line = Vec::new();
        let sem = match src.below(16) {
            0..=4 => {
                let mode = store_mode(src);
                let cas = if mode == Mode::Cas {
                    // The CAS id must be the one the model knows now.
                    self.execute_batch(src);
                    self.cas_arg(src, key)
                } else {
                    0
                };
                let data = value(src);
                let f = flags(src);
                let e = exp(src, false);
                style.quiet = src.chance(40);
                let cmd: &[u8] = match mode {
                    Mode::Set => b"set",
                    Mode::Add => b"add",
                    Mode::Replace => b"replace",
                    Mode::Append => b"append",
                    Mode::Prepend => b"prepend",
                    Mode::Cas => b"cas",
                };
                line.extend_from_slice(cmd);
                line.push(b' ');
                line.extend_from_slice(k);
                line.extend_from_slice(format!(" {f} {} {}", e.value, data.len()).as_bytes());
                if mode == Mode::Cas {
                    line.extend_from_slice(format!(" {cas}").as_bytes());
                }
                if style.quiet {
                    line.extend_from_slice(b" noreply");
                }
                line.extend_from_slice(b"\r\n");
                line.extend_from_slice(&data);
                line.extend_from_slice(b"\r\n");
                Sem::Store {
                    mode,
                    key,
                    data,
                    flags: f,
                    exp: e,
                    cas,
                }
            }
            5..=8 => {
                let n = 1 + src.below(3);
                let mut keys = vec![key];
                keys.extend((1..n).map(|_| src.below(KEYS.len())));
                style.want_cas = src.chance(100);
                let touch = src.chance(50).then(|| exp(src, false));
                match (touch, style.want_cas) {
                    (None, false) => line.extend_from_slice(b"get"),
                    (None, true) => line.extend_from_slice(b"gets"),
                    (Some(e), false) => {
                        line.extend_from_slice(format!("gat {}", e.value).as_bytes())
                    }
                    (Some(e), true) => {
                        line.extend_from_slice(format!("gats {}", e.value).as_bytes())
                    }
                }
                for &k in &keys {
                    line.push(b' ');
                    line.extend_from_slice(key_name(k));
                }
                line.extend_from_slice(b"\r\n");
                Sem::Get { keys, touch }
            }
            9 => {
                style.quiet = src.chance(40);
                line.extend_from_slice(b"delete ");
                line.extend_from_slice(k);
                if style.quiet {
                    line.extend_from_slice(b" noreply");
                }
                line.extend_from_slice(b"\r\n");
                Sem::Delete { key, cas: None }
            }
            10 | 11 => {
                let incr = src.chance(160);
                let delta = delta(src);
                style.quiet = src.chance(30);
                line.extend_from_slice(if incr { b"incr " } else { b"decr " });
                line.extend_from_slice(k);
                line.extend_from_slice(format!(" {delta}").as_bytes());
                if style.quiet {
                    line.extend_from_slice(b" noreply");
                }
                line.extend_from_slice(b"\r\n");
                Sem::Arith {
                    key,
                    incr,
                    delta,
                    vivify: None,
                }
            }
            12 => {
                let e = exp(src, false);
                style.quiet = src.chance(40);
                line.extend_from_slice(b"touch ");
                line.extend_from_slice(k);
                line.extend_from_slice(format!(" {}", e.value).as_bytes());
                if style.quiet {
                    line.extend_from_slice(b" noreply");
                }
                line.extend_from_slice(b"\r\n");
                style.touch_only = true;
                Sem::Get {
                    keys: vec![key],
                    touch: Some(e),
                }
            }
            13 if src.chance(64) => {
                style.quiet = src.chance(80);
                line.extend_from_slice(match (style.quiet, src.chance(128)) {
                    (false, false) => b"flush_all\r\n".as_slice(),
                    (false, true) => b"flush_all 0\r\n",
                    (true, false) => b"flush_all noreply\r\n",
                    (true, true) => b"flush_all 0 noreply\r\n",
                });
                Sem::Flush
            }
            _ => {
                let (cmd, name): (&[u8], &'static str) = match src.below(11) {
                    0 => (b"version\r\n", "version"),
                    1 => (b"verbosity 0\r\n", "ok"),
                    2 => (b"verbosity 1 noreply\r\n", "silent"),
                    3 => (b"stats\r\n", "stats"),
                    4 => (b"stats settings\r\n", "stats"),
                    5 => (b"stats items\r\n", "stats"),
                    6 => (b"stats slabs\r\n", "stats"),
                    7 => (b"stats sizes\r\n", "stats"),
                    8 => (b"mn\r\n", "mn"),
                    9 => (b"lru_crawler metadump all\r\n", "metadump"),
                    _ => (b"stats detail dump\r\n", "detail"),
                };
                line.extend_from_slice(cmd);
                Sem::Other(name)
            }
        };
        Op {
            proto: Proto::Text,
            sem,
            style,
            bytes: line,
        }
    }
}
