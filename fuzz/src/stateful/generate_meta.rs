//! Well-formed meta-protocol operations: `ms mg md ma mn me`, with base64 keys, opaques,
//! quiet mode and their flags in any order.

use memcached_rs::protocol::base64;

use super::input::{delta, exp, flags, shuffle, store_mode, value, Src};
use super::op::{key_name, Mode, Op, Proto, Sem, Style, KEYS};
use super::Run;

impl Run<'_> {
    /// A well-formed meta command.
    pub(super) fn meta_op(&mut self, src: &mut Src<'_>) -> Op {
        let mut style = Style::default();
        let key = src.below(KEYS.len());
        // memcached refuses a base64 key longer than a key: only the short ones.
        style.b64 = key != 3 && src.chance(50);
        let mut line = Vec::new();
        let mut flags_out: Vec<Vec<u8>> = Vec::new();
        let push_key = |line: &mut Vec<u8>, style: &Style| {
            if style.b64 {
                base64::encode_into(key_name(key), line);
            } else {
                line.extend_from_slice(key_name(key));
            }
        };
        if style.b64 {
            flags_out.push(b"b".to_vec());
        }
        if src.chance(40) {
            let o = self.opaque();
            style.opaque = Some(o);
            flags_out.push(format!("O{o}").into_bytes());
        }
        if src.chance(50) {
            style.want_key = true;
            flags_out.push(b"k".to_vec());
        }
        let sem = match src.below(10) {
            0..=3 => {
                let mode = store_mode(src);
                let cas = if mode == Mode::Cas {
                    self.execute_batch(src);
                    self.cas_arg(src, key)
                } else {
                    0
                };
                let data = value(src);
                let f = flags(src);
                let e = exp(src, false);
                style.quiet = src.chance(50);
                style.want_cas = src.chance(80);
                style.default_mode = mode == Mode::Set && src.chance(128);
                let m: &[u8] = match mode {
                    Mode::Set | Mode::Cas => b"MS",
                    Mode::Add => b"ME",
                    Mode::Replace => b"MR",
                    Mode::Append => b"MA",
                    Mode::Prepend => b"MP",
                };
                if !style.default_mode && (mode != Mode::Cas || src.chance(128)) {
                    flags_out.push(m.to_vec());
                }
                if mode == Mode::Cas {
                    flags_out.push(format!("C{cas}").into_bytes());
                }
                if f != 0 || src.chance(64) {
                    flags_out.push(format!("F{f}").into_bytes());
                }
                if e.value != 0 || src.chance(64) {
                    flags_out.push(format!("T{}", e.value).into_bytes());
                }
                if style.quiet {
                    flags_out.push(b"q".to_vec());
                }
                if style.want_cas {
                    flags_out.push(b"c".to_vec());
                }
                shuffle(src, &mut flags_out);
                line.extend_from_slice(b"ms ");
                push_key(&mut line, &style);
                line.extend_from_slice(format!(" {}", data.len()).as_bytes());
                for fl in &flags_out {
                    line.push(b' ');
                    line.extend_from_slice(fl);
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
            4..=6 => {
                style.want_value = src.chance(180);
                style.want_flags = src.chance(128);
                style.want_cas = src.chance(100);
                style.want_size = src.chance(60);
                style.want_ttl = src.chance(60);
                style.quiet = src.chance(50);
                let touch = src.chance(50).then(|| exp(src, false));
                for (on, f) in [
                    (style.want_value, "v"),
                    (style.want_flags, "f"),
                    (style.want_cas, "c"),
                    (style.want_size, "s"),
                    (style.want_ttl, "t"),
                    (style.quiet, "q"),
                ] {
                    if on {
                        flags_out.push(f.as_bytes().to_vec());
                    }
                }
                if let Some(e) = touch {
                    flags_out.push(format!("T{}", e.value).into_bytes());
                }
                shuffle(src, &mut flags_out);
                line.extend_from_slice(b"mg ");
                push_key(&mut line, &style);
                for fl in &flags_out {
                    line.push(b' ');
                    line.extend_from_slice(fl);
                }
                line.extend_from_slice(b"\r\n");
                Sem::Get {
                    keys: vec![key],
                    touch,
                }
            }
            7 => {
                style.quiet = src.chance(60);
                let cas = src.chance(60).then(|| {
                    self.execute_batch(src);
                    self.cas_arg(src, key)
                });
                if let Some(c) = cas {
                    flags_out.push(format!("C{c}").into_bytes());
                }
                if style.quiet {
                    flags_out.push(b"q".to_vec());
                }
                shuffle(src, &mut flags_out);
                line.extend_from_slice(b"md ");
                push_key(&mut line, &style);
                for fl in &flags_out {
                    line.push(b' ');
                    line.extend_from_slice(fl);
                }
                line.extend_from_slice(b"\r\n");
                Sem::Delete { key, cas }
            }
            8 => {
                let incr = src.chance(160);
                let delta = delta(src);
                let vivify = src.chance(80).then(|| match src.below(3) {
                    0 => 0,
                    1 => u64::from(src.u8()),
                    _ => src.u64(),
                });
                style.quiet = src.chance(50);
                style.want_value = src.chance(128);
                style.want_cas = src.chance(60);
                match (incr, src.below(3)) {
                    (true, 0) => flags_out.push(b"MI".to_vec()),
                    (true, 1) => flags_out.push(b"M+".to_vec()),
                    (false, 0 | 1) => flags_out.push(b"MD".to_vec()),
                    (false, _) => flags_out.push(b"M-".to_vec()),
                    (true, _) => {}
                }
                if delta != 1 || src.chance(64) {
                    flags_out.push(format!("D{delta}").into_bytes());
                }
                if let Some(init) = vivify {
                    flags_out.push(b"N0".to_vec());
                    if init != 0 || src.chance(128) {
                        flags_out.push(format!("J{init}").into_bytes());
                    }
                }
                for (on, f) in [
                    (style.quiet, "q"),
                    (style.want_value, "v"),
                    (style.want_cas, "c"),
                ] {
                    if on {
                        flags_out.push(f.as_bytes().to_vec());
                    }
                }
                shuffle(src, &mut flags_out);
                line.extend_from_slice(b"ma ");
                push_key(&mut line, &style);
                for fl in &flags_out {
                    line.push(b' ');
                    line.extend_from_slice(fl);
                }
                line.extend_from_slice(b"\r\n");
                Sem::Arith {
                    key,
                    incr,
                    delta,
                    vivify,
                }
            }
            _ => {
                if src.chance(128) {
                    line.extend_from_slice(b"mn\r\n");
                    Sem::Other("mn")
                } else {
                    line.extend_from_slice(b"me ");
                    push_key(&mut line, &style);
                    if style.b64 {
                        line.extend_from_slice(b" b");
                    }
                    line.extend_from_slice(b"\r\n");
                    Sem::Other("me")
                }
            }
        };
        Op {
            proto: Proto::Meta,
            sem,
            style,
            bytes: line,
        }
    }
}
