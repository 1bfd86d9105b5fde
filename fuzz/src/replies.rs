//! Reply-stream grammars: whatever the server says must split cleanly into replies.

use memcached_rs::protocol::binary::{HEADER_LEN, RESPONSE_MAGIC};

/// One text-protocol reply unit: a line, or a line announcing a data block and the block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextReply<'a> {
    /// A line without its `\r\n`.
    Line(&'a [u8]),
    /// `VALUE …` or `VA …` with its data block (without the block's `\r\n`).
    Block {
        /// The announcing line.
        line: &'a [u8],
        /// The data.
        data: &'a [u8],
    },
}

impl<'a> TextReply<'a> {
    /// The line (of a block: its announcing line).
    pub fn line(&self) -> &'a [u8] {
        match self {
            TextReply::Line(l) => l,
            TextReply::Block { line, .. } => line,
        }
    }
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

fn number(token: &[u8]) -> Option<usize> {
    if token.is_empty() || token.len() > 12 || !token.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(token).ok()?.parse().ok()
}

/// Splits a text reply stream. `Err` names what does not parse.
pub fn split_text(mut b: &[u8]) -> Result<Vec<TextReply<'_>>, String> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let Some(end) = find_crlf(b) else {
            return Err(format!("reply without \\r\\n: {}", esc(b)));
        };
        let line = &b[..end];
        if line.contains(&b'\n') {
            return Err(format!("bare \\n in a reply line: {}", esc(line)));
        }
        b = &b[end + 2..];
        let tokens: Vec<&[u8]> = line.split(|&c| c == b' ').collect();
        let len = match tokens[0] {
            b"VALUE" => Some(
                tokens
                    .get(3)
                    .copied()
                    .and_then(number)
                    .ok_or_else(|| format!("VALUE line without a length: {}", esc(line)))?,
            ),
            b"VA" => Some(
                tokens
                    .get(1)
                    .copied()
                    .and_then(number)
                    .ok_or_else(|| format!("VA line without a length: {}", esc(line)))?,
            ),
            _ => None,
        };
        match len {
            None => out.push(TextReply::Line(line)),
            Some(n) => {
                if b.len() < n + 2 || &b[n..n + 2] != b"\r\n" {
                    return Err(format!(
                        "data block of {n} bytes not followed by \\r\\n after {}",
                        esc(line)
                    ));
                }
                out.push(TextReply::Block {
                    line,
                    data: &b[..n],
                });
                b = &b[n + 2..];
            }
        }
    }
    Ok(out)
}

/// One binary response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinReply<'a> {
    /// The opcode echoed.
    pub opcode: u8,
    /// Status.
    pub status: u16,
    /// Opaque echoed.
    pub opaque: u32,
    /// CAS.
    pub cas: u64,
    /// Extras.
    pub extras: &'a [u8],
    /// Key.
    pub key: &'a [u8],
    /// Value.
    pub value: &'a [u8],
}

/// Splits a binary response stream.
pub fn split_binary(mut b: &[u8]) -> Result<Vec<BinReply<'_>>, String> {
    let mut out = Vec::new();
    while !b.is_empty() {
        if b.len() < HEADER_LEN {
            return Err(format!("truncated response header: {}", esc(b)));
        }
        if b[0] != RESPONSE_MAGIC {
            return Err(format!("bad response magic {:#04x}", b[0]));
        }
        let keylen = usize::from(u16::from_be_bytes([b[2], b[3]]));
        let extlen = usize::from(b[4]);
        let status = u16::from_be_bytes([b[6], b[7]]);
        let bodylen = u32::from_be_bytes([b[8], b[9], b[10], b[11]]) as usize;
        let opaque = u32::from_be_bytes([b[12], b[13], b[14], b[15]]);
        let cas = u64::from_be_bytes([b[16], b[17], b[18], b[19], b[20], b[21], b[22], b[23]]);
        if extlen + keylen > bodylen {
            return Err(format!(
                "response extlen {extlen} + keylen {keylen} > bodylen {bodylen}"
            ));
        }
        if b.len() < HEADER_LEN + bodylen {
            return Err(format!(
                "response body truncated: {} of {bodylen} bytes",
                b.len() - HEADER_LEN
            ));
        }
        let body = &b[HEADER_LEN..HEADER_LEN + bodylen];
        out.push(BinReply {
            opcode: b[1],
            status,
            opaque,
            cas,
            extras: &body[..extlen],
            key: &body[extlen..extlen + keylen],
            value: &body[extlen + keylen..],
        });
        b = &b[HEADER_LEN + bodylen..];
    }
    Ok(out)
}

/// Bytes escaped for a panic message (cut after 300 bytes).
pub fn esc(b: &[u8]) -> String {
    let mut s: String = b
        .iter()
        .take(300)
        .flat_map(|&c| std::ascii::escape_default(c))
        .map(char::from)
        .collect();
    if b.len() > 300 {
        s.push_str(&format!("…({} bytes)", b.len()));
    }
    s
}
