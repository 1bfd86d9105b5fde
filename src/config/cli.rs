//! Splitting a command line into options the way memcached's `getopt_long` does.
//!
//! getopts does the matching, but glibc differs from it in ways users see: long options may be
//! abbreviated to any unique prefix (`--mem-l 64`), `--verbose` takes an optional argument, and
//! the error texts are glibc's. So arguments are first normalised here (clusters split,
//! abbreviations expanded, glibc's errors produced), then handed to getopts, and the matches
//! are turned back into one ordered list: memcached applies options left to right, so the first
//! bad value on the line is the one reported and a repeated flag's last value wins.

use getopts::Options;

/// One option memcached accepts.
pub(crate) struct OptSpec {
    /// Short letter, if any.
    pub short: Option<char>,
    /// Long name, without `--` (empty when there is none).
    pub long: &'static str,
    /// Whether the option takes a value.
    pub takes_arg: bool,
}

const fn opt(short: char, long: &'static str, takes_arg: bool) -> OptSpec {
    OptSpec {
        short: Some(short),
        long,
        takes_arg,
    }
}

/// Long name of the option only memcached-rs has.
pub(crate) const CONFIG_FILE: &str = "config-file";

/// Every option, long ones in memcached 1.6.18's `longopts` order: glibc lists the candidates of
/// an ambiguous abbreviation in this order.
pub(crate) const OPTIONS: &[OptSpec] = &[
    opt('a', "unix-mask", true),
    opt('A', "enable-shutdown", false),
    opt('Z', "enable-ssl", false),
    opt('p', "port", true),
    opt('s', "unix-socket", true),
    opt('U', "udp-port", true),
    opt('m', "memory-limit", true),
    opt('M', "disable-evictions", false),
    opt('c', "conn-limit", true),
    opt('k', "lock-memory", false),
    opt('h', "help", false),
    opt('i', "license", false),
    opt('V', "version", false),
    opt('r', "enable-coredumps", false),
    opt('v', "verbose", false),
    opt('d', "daemon", false),
    opt('l', "listen", true),
    opt('u', "user", true),
    opt('P', "pidfile", true),
    opt('f', "slab-growth-factor", true),
    opt('n', "slab-min-size", true),
    opt('t', "threads", true),
    opt('L', "enable-largepages", false),
    opt('R', "max-reqs-per-event", true),
    opt('C', "disable-cas", false),
    opt('b', "listen-backlog", true),
    opt('B', "protocol", true),
    opt('I', "max-item-size", true),
    opt('S', "enable-sasl", false),
    opt('F', "disable-flush-all", false),
    opt('X', "disable-dumping", false),
    opt('W', "disable-watch", false),
    opt('Y', "auth-file", true),
    opt('e', "memory-file", true),
    opt('o', "extended", true),
    opt('N', "napi-ids", true),
    // memcached has no long name for -D.
    opt('D', "", true),
    OptSpec {
        short: None,
        long: CONFIG_FILE,
        takes_arg: true,
    },
];

impl OptSpec {
    /// The name getopts knows this option by, and the key events carry.
    fn id(&self) -> String {
        match self.short {
            Some(c) => c.to_string(),
            None => self.long.to_string(),
        }
    }
}

/// One option occurrence, in command-line order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    /// The short letter, or the long name for options without one (`config-file`).
    pub id: String,
    /// The value, for options that take one.
    pub value: Option<String>,
}

/// A split command line.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    /// Options in the order given.
    pub events: Vec<Event>,
    /// Arguments that are not options (memcached ignores them).
    pub free: Vec<String>,
}

/// Splits `args` (without the program name) into options. The error is glibc's complaint
/// without its `program: ` prefix, e.g. `invalid option -- 'q'`.
pub(crate) fn parse(args: &[String]) -> Result<Parsed, String> {
    let normalised = normalise(args)?;
    let mut options = Options::new();
    for spec in OPTIONS {
        let short = spec.short.map(String::from).unwrap_or_default();
        if spec.takes_arg {
            options.optmulti(&short, spec.long, "", "");
        } else {
            options.optflagmulti(&short, spec.long, "");
        }
    }
    // normalise() already rejected everything getopts could, so this is only a safety net.
    let matches = options.parse(&normalised).map_err(|e| e.to_string())?;
    let mut positioned: Vec<(usize, Event)> = Vec::new();
    for spec in OPTIONS {
        let id = spec.id();
        if spec.takes_arg {
            for (pos, value) in matches.opt_strs_pos(&id) {
                let value = Some(value);
                positioned.push((
                    pos,
                    Event {
                        id: id.clone(),
                        value,
                    },
                ));
            }
        } else {
            for pos in matches.opt_positions(&id) {
                let value = None;
                positioned.push((
                    pos,
                    Event {
                        id: id.clone(),
                        value,
                    },
                ));
            }
        }
    }
    positioned.sort_by_key(|(pos, _)| *pos);
    Ok(Parsed {
        events: positioned.into_iter().map(|(_, e)| e).collect(),
        free: matches.free,
    })
}

fn by_short(c: char) -> Option<&'static OptSpec> {
    OPTIONS.iter().find(|s| s.short == Some(c))
}

/// Resolves a long name as glibc does: an exact match, else the only option it abbreviates.
fn by_long(name: &str, token: &str) -> Result<&'static OptSpec, String> {
    let named = |s: &&OptSpec| !s.long.is_empty();
    if let Some(spec) = OPTIONS.iter().filter(named).find(|s| s.long == name) {
        return Ok(spec);
    }
    let candidates: Vec<&OptSpec> = OPTIONS
        .iter()
        .filter(named)
        .filter(|s| s.long.starts_with(name))
        .collect();
    match candidates.as_slice() {
        [] => Err(format!("unrecognized option '{token}'")),
        [only] => Ok(only),
        many => {
            let list: Vec<String> = many.iter().map(|s| format!("'--{}'", s.long)).collect();
            Err(format!(
                "option '{token}' is ambiguous; possibilities: {}",
                list.join(" ")
            ))
        }
    }
}

/// Rewrites `args` so every option stands alone under its full name, its value attached or
/// in the next argument, reporting what glibc would reject.
fn normalise(args: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::with_capacity(args.len());
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "--" {
            out.push(arg.clone());
            out.extend(rest.cloned());
            break;
        }
        if let Some(body) = arg.strip_prefix("--") {
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let spec = by_long(name, arg)?;
            if !spec.takes_arg {
                // --verbose has an optional argument in memcached, which it ignores.
                if value.is_some() && spec.short != Some('v') {
                    return Err(format!(
                        "option '--{}' doesn't allow an argument",
                        spec.long
                    ));
                }
                out.push(format!("--{}", spec.long));
            } else if let Some(v) = value {
                out.push(format!("--{}={v}", spec.long));
            } else {
                let v = rest
                    .next()
                    .ok_or_else(|| format!("option '--{}' requires an argument", spec.long))?;
                out.push(format!("--{}", spec.long));
                out.push(v.clone());
            }
        } else if arg.len() > 1 && arg.starts_with('-') {
            for (i, c) in arg.char_indices().skip(1) {
                let spec = by_short(c).ok_or_else(|| format!("invalid option -- '{c}'"))?;
                if !spec.takes_arg {
                    out.push(format!("-{c}"));
                    continue;
                }
                let attached = &arg[i + c.len_utf8()..];
                if attached.is_empty() {
                    let v = rest
                        .next()
                        .ok_or_else(|| format!("option requires an argument -- '{c}'"))?;
                    out.push(format!("-{c}"));
                    out.push(v.clone());
                } else {
                    out.push(format!("-{c}{attached}"));
                }
                break;
            }
        } else {
            out.push(arg.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn ids(args: &[&str]) -> Vec<(String, Option<String>)> {
        parse(&strs(args))
            .expect("parses")
            .events
            .into_iter()
            .map(|e| (e.id, e.value))
            .collect()
    }

    fn ev(id: &str, v: Option<&str>) -> (String, Option<String>) {
        (id.to_string(), v.map(String::from))
    }

    #[test]
    fn keeps_command_line_order() {
        assert_eq!(
            ids(&["-c", "5", "-p11211", "--threads=2", "-c", "6"]),
            vec![
                ev("c", Some("5")),
                ev("p", Some("11211")),
                ev("t", Some("2")),
                ev("c", Some("6"))
            ]
        );
    }

    #[test]
    fn splits_clusters_in_order() {
        assert_eq!(
            ids(&["-vvd", "-hVc", "7"]),
            vec![
                ev("v", None),
                ev("v", None),
                ev("d", None),
                ev("h", None),
                ev("V", None),
                ev("c", Some("7"))
            ]
        );
        assert_eq!(ids(&["-Mc7"]), vec![ev("M", None), ev("c", Some("7"))]);
    }

    #[test]
    fn values_may_look_like_options() {
        assert_eq!(ids(&["-l", "-5"]), vec![ev("l", Some("-5"))]);
        assert_eq!(ids(&["--listen", "--port"]), vec![ev("l", Some("--port"))]);
    }

    #[test]
    fn long_abbreviations_expand() {
        assert_eq!(ids(&["--memory-l", "5"]), vec![ev("m", Some("5"))]);
        assert_eq!(ids(&["--conf=x"]), vec![ev("config-file", Some("x"))]);
        assert_eq!(ids(&["--verbose=2"]), vec![ev("v", None)]);
    }

    #[test]
    fn free_arguments_and_double_dash() {
        let p = parse(&strs(&["foo", "-d", "--", "-c", "0"])).expect("parses");
        assert_eq!(
            p.events,
            vec![Event {
                id: "d".into(),
                value: None
            }]
        );
        assert_eq!(p.free, strs(&["foo", "-c", "0"]));
    }

    #[test]
    fn glibc_error_texts() {
        let err = |a: &[&str]| parse(&strs(a)).expect_err("rejected");
        assert_eq!(err(&["-q"]), "invalid option -- 'q'");
        assert_eq!(err(&["-vq"]), "invalid option -- 'q'");
        assert_eq!(err(&["-b"]), "option requires an argument -- 'b'");
        assert_eq!(err(&["--foo=bar"]), "unrecognized option '--foo=bar'");
        assert_eq!(err(&["--x"]), "unrecognized option '--x'");
        assert_eq!(err(&["--port"]), "option '--port' requires an argument");
        assert_eq!(
            err(&["--disable-cas=1"]),
            "option '--disable-cas' doesn't allow an argument"
        );
        assert_eq!(
            err(&["--mem=5"]),
            "option '--mem=5' is ambiguous; possibilities: '--memory-limit' '--memory-file'"
        );
        assert_eq!(
            err(&["--p"]),
            "option '--p' is ambiguous; possibilities: '--port' '--pidfile' '--protocol'"
        );
    }
}
