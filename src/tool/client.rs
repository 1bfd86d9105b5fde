//! A minimal blocking client for the tool: one connection per server, a request, the lines of
//! its reply.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// How long a reply may take before the tool gives up on the server.
const TIMEOUT: Duration = Duration::from_secs(10);

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// A connection to one server.
pub struct Client {
    /// The address as given (`host:port`, or a unix socket path).
    pub addr: String,
    /// The address as memcached-tool shows it: as given, with `:11211` added where it names
    /// no port (a unix socket path as it is).
    pub shown: String,
    reader: BufReader<Box<dyn Stream>>,
}

impl Client {
    /// Connects to `addr`: a path (with a `/`) is a unix socket; otherwise `host[:port]`,
    /// port 11211 when none is given, as memcached-tool takes it.
    pub fn connect(addr: &str) -> io::Result<Client> {
        let unix = addr.contains('/');
        let shown = if unix || has_port(addr) {
            addr.to_string()
        } else {
            format!("{addr}:11211")
        };
        let stream: Box<dyn Stream> = if unix {
            let s = UnixStream::connect(addr)?;
            s.set_read_timeout(Some(TIMEOUT))?;
            Box::new(s)
        } else {
            let s = TcpStream::connect(&shown)?;
            s.set_read_timeout(Some(TIMEOUT))?;
            s.set_nodelay(true)?;
            Box::new(s)
        };
        Ok(Client {
            addr: addr.to_string(),
            shown,
            reader: BufReader::new(stream),
        })
    }

    /// Sends a request line (`\r\n` added).
    pub fn send(&mut self, line: &str) -> io::Result<()> {
        let stream = self.reader.get_mut();
        stream.write_all(line.as_bytes())?;
        stream.write_all(b"\r\n")?;
        stream.flush()
    }

    /// One reply line, without its line ending; an error at the end of the stream.
    pub fn line(&mut self) -> io::Result<Vec<u8>> {
        let mut line = Vec::new();
        if self.reader.read_until(b'\n', &mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} closed the connection", self.addr),
            ));
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        Ok(line)
    }

    /// Exactly `n` bytes (a value), then its `\r\n`.
    pub fn data(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let mut data = vec![0; n + 2];
        self.reader.read_exact(&mut data)?;
        data.truncate(n);
        Ok(data)
    }

    /// `stats [args]`: its `STAT name value` pairs in order; `None` when the server does not
    /// know the subcommand (it answers an error line).
    pub fn stats(&mut self, args: &str) -> io::Result<Option<Vec<(String, String)>>> {
        let request = if args.is_empty() {
            "stats".to_string()
        } else {
            format!("stats {args}")
        };
        self.send(&request)?;
        let mut pairs = Vec::new();
        loop {
            let line = String::from_utf8_lossy(&self.line()?).into_owned();
            if line == "END" {
                return Ok(Some(pairs));
            }
            match line.strip_prefix("STAT ") {
                Some(rest) => {
                    let (name, value) = rest.split_once(' ').unwrap_or((rest, ""));
                    pairs.push((name.to_string(), value.to_string()));
                }
                None if line.contains("ERROR") => return Ok(None),
                None => {}
            }
        }
    }
}

/// Whether `addr` ends in `:digits` (an IPv6 address in brackets counts only with its port).
fn has_port(addr: &str) -> bool {
    addr.rsplit_once(':').is_some_and(|(host, port)| {
        !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && (!host.contains(':') || host.ends_with(']'))
    })
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("addr", &self.addr).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_is_found_where_memcached_tool_finds_one() {
        assert!(has_port("127.0.0.1:11211"));
        assert!(has_port("cache:1"));
        assert!(!has_port("cache"));
        assert!(!has_port("cache:"));
        assert!(has_port("[::1]:11211"));
        assert!(!has_port("::1"));
    }
}
