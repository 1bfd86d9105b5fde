//! Requests sent alone, outside the model's predictions: malformed ones from templates (text,
//! meta and binary), and raw bytes.

use super::generate_binary::{bin_frame, raw_frame};
use super::input::Src;
use super::model::Known;
use super::op::{key_name, KEYS};
use super::Run;

impl Run<'_> {
    /// A malformed request from a template, alone in its read; its key becomes unknown.
    pub(super) fn malformed(&mut self, src: &mut Src<'_>) {
        let key = src.below(KEYS.len());
        let k = String::from_utf8_lossy(key_name(key)).into_owned();
        let long = "x".repeat(251);
        let big = 1_048_576 + usize::from(src.u16());
        let binary_templates = 8;
        let text: Vec<u8> = match src.below(34 + binary_templates) {
            0 => format!("set {k} 0 0 3\r\nabcde\r\n").into_bytes(),
            1 => format!("set {k} 0 0 5\r\nab\r\n").into_bytes(),
            2 => format!("set {k} abc 0 1\r\nx\r\n").into_bytes(),
            3 => format!("set {k} 0 0 -1\r\n").into_bytes(),
            4 => format!("set {k} 0 0 {big}\r\n{}\r\n", "z".repeat(100)).into_bytes(),
            5 => format!("incr {k} abc\r\n").into_bytes(),
            6 => format!("decr {k} -1\r\n").into_bytes(),
            7 => format!("incr {k} 18446744073709551616\r\n").into_bytes(),
            8 => format!("get {long}\r\n").into_bytes(),
            9 => format!("get {k} {long} {k}\r\n").into_bytes(),
            10 => format!("delete {k} 5\r\n").into_bytes(),
            11 => format!("delete {k} 0 noreply x\r\n").into_bytes(),
            12 => format!("touch {k} x\r\n").into_bytes(),
            13 => format!("cas {k} 0 0 1\r\nx\r\n").into_bytes(),
            14 => format!("mg {k} v v\r\n").into_bytes(),
            15 => format!("mg {k} Z\r\n").into_bytes(),
            16 => b"mg !!!! b v\r\n".to_vec(),
            17 => format!("ms {k} x\r\n").into_bytes(),
            18 => format!("ms {k} 2 MZ\r\nab\r\n").into_bytes(),
            19 => format!("ma {k} Mx\r\n").into_bytes(),
            20 => format!("md {k} Cx\r\n").into_bytes(),
            21 => format!("ms {k} 2 O{}\r\nab\r\n", "9".repeat(40)).into_bytes(),
            22 => format!("ms {k} 3 F\r\nabc\r\n").into_bytes(),
            23 => b"flush_all abc\r\n".to_vec(),
            24 => b"verbosity\r\n".to_vec(),
            25 => b"GET / HTTP/1.1\r\n".to_vec(),
            26 => b"\r\n".to_vec(),
            27 => b"quit\r\n".to_vec(),
            28 => "g".repeat(3000).into_bytes(),
            29 => format!("get {k}\0junk\r\n").into_bytes(),
            30 => format!("mg {long} v\r\n").into_bytes(),
            31 => format!("ms {k} {big} T0\r\n").into_bytes(),
            32 => format!("ma {k} N0 J18446744073709551616\r\n").into_bytes(),
            33 => format!("set {k} 0 0 1 noreply\r\nxyz\r\n").into_bytes(),
            t => {
                self.malformed_binary(src, key, t - 34);
                return;
            }
        };
        let mut text = text;
        if src.chance(20) {
            // A nearby variant: anything may happen now.
            let at = src.below(text.len().max(1));
            if let Some(b) = text.get_mut(at) {
                *b = src.u8();
            }
            self.tainted = true;
        }
        self.send_alone(false, &text, src, false);
        self.model[key] = Known::Unknown;
    }

    fn malformed_binary(&mut self, src: &mut Src<'_>, key: usize, template: usize) {
        use memcached_rs::protocol::binary::opcode::*;
        let k = key_name(key);
        let frame = match template {
            // extlen + keylen > bodylen.
            0 => raw_frame(GET, k.len() as u16, 4, 2, k),
            // A get with extras.
            1 => bin_frame(GET, k, &[0, 0, 0, 0], b"", 1, 0),
            // An unknown opcode with a body, swallowed. memcached 1.6 reads its key, then
            // swallows the whole body length again (the differential case "binary/unknown
            // opcode swallows its body again"), so as many bytes as the key follow the frame
            // to bring the connection back to a request boundary.
            2 => {
                let mut f = bin_frame(0x42, k, b"", b"body", 1, 0);
                f.extend(std::iter::repeat_n(b'p', k.len()));
                f
            }
            // A key over 250 bytes.
            3 => bin_frame(GET, &[b'x'; 251], b"", b"", 1, 0),
            // Not the request magic.
            4 => {
                let mut f = bin_frame(NOOP, b"", b"", b"", 1, 0);
                f[0] = 0x81;
                f
            }
            // SASL without -S.
            5 => bin_frame(SASL_AUTH, b"PLAIN", b"", b"\0u\0p", 1, 0),
            // A value over the item size limit.
            6 => {
                let mut f = raw_frame(SET, k.len() as u16, 8, 8 + k.len() as u32 + 2_000_000, &[]);
                f.extend_from_slice(&[0; 8]);
                f.extend_from_slice(k);
                f.extend_from_slice(&[b'v'; 64]);
                f
            }
            // Verbosity (memcached 1.6 answers it as unknown).
            _ => bin_frame(VERBOSITY, b"", &[0, 0, 0, 1], b"", 1, 0),
        };
        // A request the server consumes whole must leave the connection at a request
        // boundary: an unknown opcode's body is swallowed to its last byte.
        let whole = template == 2 && !self.tainted;
        self.send_alone(true, &frame, src, whole);
        self.model[key] = Known::Unknown;
    }

    /// Random bytes to one of the connections.
    pub(super) fn raw(&mut self, src: &mut Src<'_>) {
        let binary = src.chance(100);
        let n = src.below(64);
        let mut bytes = src.bytes(n);
        if binary {
            let mut head = vec![0x80];
            head.extend(src.bytes(23));
            // Keep the lengths small so the connection does not wait for megabytes.
            head[2] = 0;
            head[8] = 0;
            head[9] = 0;
            head.append(&mut bytes);
            bytes = head;
        }
        self.tainted = true;
        self.send_alone(binary, &bytes, src, false);
    }
}
