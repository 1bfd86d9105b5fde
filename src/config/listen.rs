//! `-l` addresses, read the way memcached 1.6.18 reads them.
//!
//! memcached keeps every `-l` in one comma-joined string (skipping a value that already occurs
//! in it, even as a substring) and only splits it when binding, on `,` and `;`. Each entry is
//! `[v6]:port`, `[v6]`, `host:port`, `host`, or a bare IPv6 address (two or more colons and no
//! brackets, so there can be no port); `*` means every interface.

use super::{ConfigError, EX_OSERR};
use crate::numparse::safe_strtol_in_range;

/// One `-l` entry: a host (None = every interface, memcached's `*`) and an optional port that
/// overrides `-p`/`-U` for this entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenSpec {
    /// Address or host name; `None` binds every interface.
    pub host: Option<String>,
    /// Port given with the address (`host:port`, `[v6]:port`); `None` uses `-p` / `-U`.
    pub port: Option<u16>,
    /// `notls:` before the address: plain TCP here even with `-Z`.
    pub no_tls: bool,
}

/// Joins repeated `-l` values as memcached does: `a,b`, except that a value already contained
/// in the list so far is dropped.
pub(crate) fn join(values: &[String]) -> String {
    let mut joined: Option<String> = None;
    for value in values {
        joined = Some(match joined {
            None => value.clone(),
            Some(list) if list.contains(value.as_str()) => list,
            Some(list) => format!("{list},{value}"),
        });
    }
    joined.unwrap_or_default()
}

/// Parses the `-l` values, in the order given, into the addresses to listen on.
///
/// The error is memcached's first line (`Invalid port number: "x"` or `Invalid IPV6 address:
/// "[::1"`) with exit status 71; memcached then adds a `failed to listen on ...` line, which
/// [`from_args`](super::from_args) appends because it depends on `-p`/`-U`. Empty entries
/// (`a,,b`) are skipped like `strtok` skips them.
pub fn parse_listen(values: &[String]) -> Result<Vec<ListenSpec>, ConfigError> {
    join(values)
        .split([',', ';'])
        .filter(|entry| !entry.is_empty())
        .map(parse_entry)
        .collect()
}

fn parse_entry(entry: &str) -> Result<ListenSpec, ConfigError> {
    let (entry, no_tls) = match entry.strip_prefix("notls:") {
        Some(rest) => (rest, true),
        None => (entry, false),
    };
    let mut bracketed = None;
    let mut rest = entry;
    if let Some(inner) = entry.strip_prefix('[') {
        // memcached's message has no newline after it; its next line runs on.
        let (host, after) = inner.split_once(']').ok_or_else(|| {
            ConfigError::new(format!("Invalid IPV6 address: \"{entry}\""), EX_OSERR)
        })?;
        bracketed = Some(host);
        rest = after;
    }
    let mut port = None;
    if let Some((before, after)) = rest.split_once(':') {
        // With more colons it is an unbracketed IPv6 address, unless brackets came first, in
        // which case the rest can only be a (bad) port.
        if bracketed.is_some() || !after.contains(':') {
            rest = before;
            port = Some(parse_port(after)?);
        }
    }
    // Text between `]` and `:` is ignored, as memcached ignores it.
    let host = bracketed.unwrap_or(rest);
    Ok(ListenSpec {
        host: (host != "*").then(|| host.to_string()),
        port,
        no_tls,
    })
}

/// memcached takes any `int` here and fails later in `getaddrinfo` for ports outside 0-65535;
/// we refuse those up front with the same message as a non-number.
fn parse_port(text: &str) -> Result<u16, ConfigError> {
    safe_strtol_in_range(text.as_bytes())
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| ConfigError::new(format!("Invalid port number: \"{text}\""), EX_OSERR))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(values: &[&str]) -> Vec<ListenSpec> {
        let v: Vec<String> = values.iter().map(|s| s.to_string()).collect();
        parse_listen(&v).expect("valid -l")
    }

    fn spec(host: Option<&str>, port: Option<u16>) -> ListenSpec {
        ListenSpec {
            host: host.map(String::from),
            port,
            no_tls: false,
        }
    }

    #[test]
    fn notls_prefix_marks_an_entry_plain() {
        let got = l(&["notls:127.0.0.1:5000,127.0.0.1:5001"]);
        assert_eq!(
            got,
            vec![
                ListenSpec {
                    no_tls: true,
                    ..spec(Some("127.0.0.1"), Some(5000))
                },
                spec(Some("127.0.0.1"), Some(5001)),
            ]
        );
    }

    fn err(values: &[&str]) -> ConfigError {
        let v: Vec<String> = values.iter().map(|s| s.to_string()).collect();
        parse_listen(&v).expect_err("invalid -l")
    }

    #[test]
    fn none_means_no_entries() {
        assert!(l(&[]).is_empty());
    }

    #[test]
    fn host_and_host_port() {
        assert_eq!(l(&["127.0.0.1"]), vec![spec(Some("127.0.0.1"), None)]);
        assert_eq!(
            l(&["127.0.0.1:11311"]),
            vec![spec(Some("127.0.0.1"), Some(11311))]
        );
        assert_eq!(l(&["localhost:0"]), vec![spec(Some("localhost"), Some(0))]);
    }

    #[test]
    fn star_is_any() {
        assert_eq!(l(&["*"]), vec![spec(None, None)]);
        assert_eq!(l(&["*:11311"]), vec![spec(None, Some(11311))]);
        assert_eq!(l(&["[*]:5"]), vec![spec(None, Some(5))]);
    }

    #[test]
    fn ipv6_forms() {
        assert_eq!(l(&["[::1]:11311"]), vec![spec(Some("::1"), Some(11311))]);
        assert_eq!(l(&["[::1]"]), vec![spec(Some("::1"), None)]);
        assert_eq!(l(&["::1"]), vec![spec(Some("::1"), None)]);
        assert_eq!(
            l(&["fe80::1:11211"]),
            vec![spec(Some("fe80::1:11211"), None)]
        );
        // memcached ignores what sits between `]` and the port.
        assert_eq!(l(&["[::1]junk"]), vec![spec(Some("::1"), None)]);
        assert_eq!(l(&["[::1]x:7"]), vec![spec(Some("::1"), Some(7))]);
    }

    #[test]
    fn splits_on_comma_and_semicolon() {
        assert_eq!(
            l(&["127.0.0.1,::1;[::2]:9,,*"]),
            vec![
                spec(Some("127.0.0.1"), None),
                spec(Some("::1"), None),
                spec(Some("::2"), Some(9)),
                spec(None, None)
            ]
        );
        assert!(l(&[",;"]).is_empty());
    }

    #[test]
    fn repeated_values_are_joined_in_order() {
        assert_eq!(
            l(&["127.0.0.1", "10.0.0.1:5"]),
            vec![
                spec(Some("127.0.0.1"), None),
                spec(Some("10.0.0.1"), Some(5))
            ]
        );
    }

    #[test]
    fn repeated_value_contained_in_earlier_ones_is_skipped() {
        assert_eq!(join(&["a".into(), "b".into(), "a".into()]), "a,b");
        // The substring quirk: "127.0.0.1" occurs inside "127.0.0.11".
        assert_eq!(
            l(&["127.0.0.11", "127.0.0.1"]),
            vec![spec(Some("127.0.0.11"), None)]
        );
        assert_eq!(
            l(&["127.0.0.1", "127.0.0.11"]).len(),
            2,
            "a longer value is not contained in a shorter one"
        );
    }

    #[test]
    fn empty_host_is_kept_for_the_resolver_to_reject() {
        assert_eq!(l(&[":5"]), vec![spec(Some(""), Some(5))]);
    }

    #[test]
    fn port_whitespace_follows_strtol() {
        assert_eq!(l(&["h: 5"]), vec![spec(Some("h"), Some(5))]);
        assert_eq!(l(&["h:5 "]), vec![spec(Some("h"), Some(5))]);
    }

    #[test]
    fn bad_ports() {
        for (arg, port) in [
            ("127.0.0.1:abc", "abc"),
            ("127.0.0.1:", ""),
            ("h:5x", "5x"),
            ("h:99999", "99999"),
            ("h:-5", "-5"),
            ("[::1]:x", "x"),
            ("[::1]:1:2", "1:2"),
        ] {
            let e = err(&[arg]);
            assert_eq!(
                e.message(),
                format!("Invalid port number: \"{port}\""),
                "{arg}"
            );
            assert_eq!(e.exit_code(), 71);
        }
    }

    #[test]
    fn unclosed_bracket() {
        let e = err(&["[::1"]);
        assert_eq!(e.message(), "Invalid IPV6 address: \"[::1\"");
        assert_eq!(e.exit_code(), 71);
    }
}
