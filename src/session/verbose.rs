//! `-vv` logging of requests and replies, where they are made.

/// `-vv`: each command (before it runs) and its reply as memcached logs them: `<fd command`, then `>fd line`
/// for a reply line — except that a retrieval logs `>fd sending key K` per hit and `>fd END`,
/// and meta and `stats` replies are not logged at all (memcached writes those without its
/// `out_string`, which is where its logging is).
pub(super) fn command(fd: i32, line: &[u8]) {
    log::debug!("<{fd} {}", String::from_utf8_lossy(line));
}

/// The reply half of [`command`]; `line` is the command it answers (empty after a data
/// block).
pub(super) fn reply(fd: i32, line: &[u8], reply: &[u8]) {
    let first_line = || {
        let first = reply.split(|&b| b == b'\n').next().unwrap_or(b"");
        first.strip_suffix(b"\r").unwrap_or(first)
    };
    let command = line.split(|&b| b == b' ').find(|t| !t.is_empty());
    match command {
        Some(b"get" | b"gets" | b"gat" | b"gats" | b"bget") => {
            // Walk the values (their data may hold anything) to name each key sent.
            let mut rest = reply;
            while let Some(header) = rest.strip_prefix(b"VALUE ") {
                let Some(eol) = header.iter().position(|&b| b == b'\n') else {
                    break;
                };
                let mut fields = header[..eol].split(|&b| b == b' ');
                let key = fields.next().unwrap_or(b"");
                let len: usize = fields
                    .nth(1)
                    .and_then(|l| std::str::from_utf8(l).ok())
                    .and_then(|l| l.trim_end().parse().ok())
                    .unwrap_or(0);
                log::debug!(">{fd} sending key {}", String::from_utf8_lossy(key));
                rest = header.get(eol + 1 + len + 2..).unwrap_or(b"");
            }
            if rest == b"END\r\n" {
                log::debug!(">{fd} END");
            } else if rest.starts_with(b"CLIENT_ERROR") || rest.starts_with(b"SERVER_ERROR") {
                // memcached logs the END it then throws away, then the error.
                log::debug!(">{fd} END");
                log::debug!(">{fd} {}", String::from_utf8_lossy(first_line()));
            }
        }
        Some(b"mg" | b"ms" | b"md" | b"ma" | b"mn" | b"me") => {}
        // A statistics listing is not logged, a one-line answer (`stats detail on`) is.
        Some(b"stats") if reply.starts_with(b"STAT ") || reply.starts_with(b"END") => {}
        _ => {
            let first = first_line();
            if !first.is_empty() {
                log::debug!(">{fd} {}", String::from_utf8_lossy(first));
            }
        }
    }
}
