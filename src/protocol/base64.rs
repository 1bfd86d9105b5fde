//! Standard base64 (RFC 4648, with padding) for meta-protocol binary keys (`b` flag).

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Appends the encoding of `input` to `out`.
pub fn encode_into(input: &[u8], out: &mut Vec<u8>) {
    for group in input.chunks(3) {
        let b = [
            group[0],
            *group.get(1).unwrap_or(&0),
            *group.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(ALPHABET[(n >> 18) as usize & 63]);
        out.push(ALPHABET[(n >> 12) as usize & 63]);
        out.push(if group.len() > 1 {
            ALPHABET[(n >> 6) as usize & 63]
        } else {
            b'='
        });
        out.push(if group.len() > 2 {
            ALPHABET[n as usize & 63]
        } else {
            b'='
        });
    }
}

/// memcached's decode table: `=` decodes to 0 (and counts as padding), other bytes outside the
/// alphabet are skipped.
fn value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        b'=' => Some(0),
        _ => None,
    }
}

/// Decodes `input` exactly as memcached's `base64_decode`: bytes outside the alphabet are
/// skipped, the rest must come in whole groups of four, decoding stops after the first group
/// with padding, and an empty result is a failure (`None`).
pub fn decode(input: &[u8]) -> Option<Vec<u8>> {
    let count = input.iter().filter(|&&c| value(c).is_some()).count();
    if count == 0 || count % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(count / 4 * 3);
    let mut block = [0u8; 4];
    let mut n = 0;
    let mut pad = 0;
    for &c in input {
        let Some(v) = value(c) else {
            continue;
        };
        if c == b'=' {
            pad += 1;
        }
        block[n] = v;
        n += 1;
        if n == 4 {
            out.push((block[0] << 2) | (block[1] >> 4));
            out.push((block[1] << 4) | (block[2] >> 2));
            out.push((block[2] << 6) | block[3]);
            n = 0;
            if pad > 0 {
                match pad {
                    1 => out.truncate(out.len() - 1),
                    2 => out.truncate(out.len() - 2),
                    _ => return None,
                }
                break;
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for input in [&b"f"[..], b"fo", b"foo", b"foob", b"\x00\xff\x10key"] {
            let mut enc = Vec::new();
            encode_into(input, &mut enc);
            assert_eq!(decode(&enc).as_deref(), Some(input));
        }
        let mut enc = Vec::new();
        encode_into(b"foobar", &mut enc);
        assert_eq!(enc, b"Zm9vYmFy");
    }

    #[test]
    fn decodes_like_memcached() {
        assert_eq!(
            decode(b"Zm9v!").as_deref(),
            Some(&b"foo"[..]),
            "stray bytes are skipped"
        );
        assert_eq!(decode(b"Zm9"), None);
        assert_eq!(decode(b"="), None);
        assert_eq!(decode(b"===="), None);
        assert_eq!(decode(b""), None);
        assert_eq!(
            decode(b"Zg==Zm9v").as_deref(),
            Some(&b"f"[..]),
            "stops after padding"
        );
    }
}
