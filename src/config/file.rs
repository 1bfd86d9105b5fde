//! `--config-file`: Debian's `/etc/memcached.conf` format.
//!
//! Debian's start scripts (`start-memcached`, `systemd-memcached-wrapper`) read the file like
//! this, and so do we: text from an unescaped `#` on is a comment; blank lines are skipped;
//! lines starting with `-d` or `-h` are dropped (the service manager decides about daemonising);
//! `logfile <path>` names the log file; every other line holds command-line options, split into
//! words like a shell would (the scripts pass them through `sh`). Unlike the scripts, which
//! crash or pass garbage on to memcached, anything else is an error naming the line.

use std::path::{Path, PathBuf};

use super::cli::{self, Event, CONFIG_FILE};
use super::{ConfigError, EX_CONFIG, EX_NOINPUT};

/// What a config file contributes, before the command line is applied over it.
#[derive(Debug, Default)]
pub(crate) struct FileOptions {
    /// Options in file order, each with its 1-based line number.
    pub events: Vec<(usize, Event)>,
    /// `logfile <path>`.
    pub logfile: Option<PathBuf>,
}

/// Reads and parses the config file at `path`.
pub(crate) fn read(path: &Path) -> Result<FileOptions, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            format!(
                "memcached-rs: cannot read config file {}: {e}",
                path.display()
            ),
            EX_NOINPUT,
        )
    })?;
    parse(&text, path)
}

/// The prefix naming a place in the file, for messages about it.
pub(crate) fn location(path: &Path, line: usize) -> String {
    format!("memcached-rs: {}:{line}: ", path.display())
}

/// Parses config-file text; `path` is only used in messages.
pub(crate) fn parse(text: &str, path: &Path) -> Result<FileOptions, ConfigError> {
    let mut options = FileOptions::default();
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let bad =
            |what: String| ConfigError::new(format!("{}{what}", location(path, number)), EX_CONFIG);
        let unrecognised = || bad(format!("unrecognised line {:?}", raw.trim()));
        let line = strip_comment(raw).trim();
        if line.is_empty() || line.starts_with("-d") || line.starts_with("-h") {
            continue;
        }
        if !line.starts_with('-') {
            match line.split_once(char::is_whitespace) {
                Some(("logfile", file)) => options.logfile = Some(PathBuf::from(file.trim())),
                _ => return Err(unrecognised()),
            }
            continue;
        }
        let words = split_words(line).map_err(bad)?;
        let parsed = cli::parse(&words).map_err(bad)?;
        if !parsed.free.is_empty() {
            return Err(unrecognised());
        }
        for event in parsed.events {
            if event.id == CONFIG_FILE {
                return Err(bad(format!(
                    "--{CONFIG_FILE} cannot be used in a config file"
                )));
            }
            options.events.push((number, event));
        }
    }
    Ok(options)
}

/// Cuts the line at the first `#` not escaped with a backslash (the escape stays for
/// [`split_words`] to remove, as the shell does after Debian's script).
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    let cut = (0..bytes.len()).find(|&i| bytes[i] == b'#' && (i == 0 || bytes[i - 1] != b'\\'));
    match cut {
        Some(i) => &line[..i],
        None => line,
    }
}

/// Splits a line into words with POSIX shell quoting: whitespace separates, `'...'` is literal,
/// `"..."` keeps spaces and lets `\` escape `"`, `\`, `$` and `` ` ``, and a bare `\` escapes
/// the next character. Variables and globs are not expanded.
fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err("unterminated ' quote".into()),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => w.push(c),
                            Some(c) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => return Err("unterminated \" quote".into()),
                        },
                        Some(c) => w.push(c),
                        None => return Err("unterminated \" quote".into()),
                    }
                }
            }
            '\\' => {
                let w = word.get_or_insert_with(String::new);
                // A trailing backslash continues the line in sh; with nothing after, keep it.
                w.push(chars.next().unwrap_or('\\'));
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::args::tests::{assert_error, error as args_error, run};

    fn words(line: &str) -> Vec<String> {
        split_words(line).expect("splits")
    }

    fn events(text: &str) -> Vec<(usize, String, Option<String>)> {
        parse(text, Path::new("t.conf"))
            .expect("parses")
            .events
            .into_iter()
            .map(|(n, e)| (n, e.id, e.value))
            .collect()
    }

    fn error(text: &str) -> ConfigError {
        parse(text, Path::new("/etc/memcached.conf")).expect_err("rejected")
    }

    #[test]
    fn debian_default_file() {
        let text = "# memcached default config file\n-d\n\nlogfile /var/log/memcached.log\n\
                    # -v\n-m 64\n-p 11211\n-u memcache\n-l 127.0.0.1\n# -c 1024\n\
                    -P /var/run/memcached/memcached.pid\n";
        let parsed = parse(text, Path::new("t.conf")).expect("parses");
        assert_eq!(
            parsed.logfile.as_deref(),
            Some(Path::new("/var/log/memcached.log"))
        );
        let got: Vec<(usize, String, Option<String>)> = parsed
            .events
            .into_iter()
            .map(|(n, e)| (n, e.id, e.value))
            .collect();
        let want = [
            (6, "m", "64"),
            (7, "p", "11211"),
            (8, "u", "memcache"),
            (9, "l", "127.0.0.1"),
            (11, "P", "/var/run/memcached/memcached.pid"),
        ];
        let want: Vec<(usize, String, Option<String>)> = want
            .iter()
            .map(|&(n, id, v)| (n, id.to_string(), Some(v.to_string())))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn comments_blank_lines_and_dropped_flags() {
        assert!(events("  # only a comment\n\n   \n-d\n-h\n-dv\n").is_empty());
        assert_eq!(
            events("-c 5 # trailing\n"),
            vec![(1, "c".into(), Some("5".into()))]
        );
        assert_eq!(
            events("-D \\# # the delimiter is a hash\n"),
            vec![(1, "D".into(), Some("#".into()))]
        );
    }

    #[test]
    fn several_options_and_forms_on_a_line() {
        assert_eq!(
            events("-vv -c5 --threads=2\n\t-M\n"),
            vec![
                (1, "v".into(), None),
                (1, "v".into(), None),
                (1, "c".into(), Some("5".into())),
                (1, "t".into(), Some("2".into())),
                (2, "M".into(), None),
            ]
        );
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(words("-P '/a b/pid'"), vec!["-P", "/a b/pid"]);
        assert_eq!(words("-P \"/a \\\"b\\\"\""), vec!["-P", "/a \"b\""]);
        assert_eq!(words("-P /a\\ b"), vec!["-P", "/a b"]);
        assert_eq!(words("-P a'b'\"c\""), vec!["-P", "abc"]);
        assert_eq!(words("-P ''"), vec!["-P", ""]);
        assert!(split_words("-P 'oops").is_err());
        assert!(split_words("-P \"oops").is_err());
    }

    #[test]
    fn logfile_path_may_contain_spaces() {
        let parsed = parse("logfile  /var/log/my log\n", Path::new("t")).expect("parses");
        assert_eq!(
            parsed.logfile.as_deref(),
            Some(Path::new("/var/log/my log"))
        );
    }

    #[test]
    fn unrecognised_lines_name_file_and_line() {
        let e = error("-m 64\n\nfoo bar\n");
        assert_eq!(
            e.message(),
            "memcached-rs: /etc/memcached.conf:3: unrecognised line \"foo bar\""
        );
        assert_eq!(e.exit_code(), 78);
        assert_eq!(
            error("logfile\n").message(),
            "memcached-rs: /etc/memcached.conf:1: unrecognised line \"logfile\""
        );
        assert_eq!(
            error("-m 64 extra\n").message(),
            "memcached-rs: /etc/memcached.conf:1: unrecognised line \"-m 64 extra\""
        );
    }

    #[test]
    fn option_errors_name_file_and_line() {
        assert_eq!(
            error("\n-q\n").message(),
            "memcached-rs: /etc/memcached.conf:2: invalid option -- 'q'"
        );
        assert_eq!(
            error("-m\n").message(),
            "memcached-rs: /etc/memcached.conf:1: option requires an argument -- 'm'"
        );
        assert_eq!(
            error("-P 'x\n").message(),
            "memcached-rs: /etc/memcached.conf:1: unterminated ' quote"
        );
        assert_eq!(
            error("--config-file=/x\n").message(),
            "memcached-rs: /etc/memcached.conf:1: --config-file cannot be used in a config file"
        );
    }

    #[test]
    fn unreadable_file() {
        let path = std::env::temp_dir().join(format!(
            "memcached-rs-missing-{}-{:?}.conf",
            std::process::id(),
            std::thread::current().id()
        ));
        let e = read(&path).expect_err("missing file");
        assert!(e.message().starts_with(&format!(
            "memcached-rs: cannot read config file {}: ",
            path.display()
        )));
        assert!(e.message().contains("No such file or directory"), "{e}");
        assert_eq!(e.exit_code(), 66);
    }

    // Precedence between the file and the command line, through from_args.

    /// A config file under the temp dir, removed when dropped.
    struct TempConf(PathBuf);

    impl TempConf {
        fn new(name: &str, text: &str) -> TempConf {
            let path = std::env::temp_dir().join(format!(
                "memcached-rs-test-{}-{name}.conf",
                std::process::id()
            ));
            std::fs::write(&path, text).expect("write temp config");
            TempConf(path)
        }

        fn arg(&self) -> String {
            format!("--config-file={}", self.0.display())
        }
    }

    impl Drop for TempConf {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn config_file_applies_first() {
        let conf = TempConf::new(
            "first",
            "# test\n-d\nlogfile /tmp/mc.log\n-m 128\n-p 2222\n-c 10\n-l 127.0.0.1\n-vv\n\
             -o idle_timeout=9\n",
        );
        let s = run(&[&conf.arg()]);
        assert_eq!(
            (s.memory_limit, s.port, s.max_connections),
            (128 << 20, 2222, 10)
        );
        assert_eq!(s.logfile, Some(PathBuf::from("/tmp/mc.log")));
        assert_eq!(s.listen.len(), 1);
        assert_eq!((s.verbose, s.idle_timeout), (2, 9));
        assert!(!s.daemonize, "Debian's wrapper drops -d lines");

        let s = run(&[
            "-p",
            "3333",
            "-l",
            "10.0.0.1",
            "-l",
            "10.0.0.2",
            "-v",
            &conf.arg(),
        ]);
        assert_eq!((s.port, s.memory_limit, s.verbose), (3333, 128 << 20, 1));
        let hosts: Vec<_> = s.listen.iter().map(|l| l.host.clone()).collect();
        assert_eq!(
            hosts,
            vec![Some("10.0.0.1".into()), Some("10.0.0.2".into())]
        );
        // -o from both accumulate, the command line's applied last.
        let s = run(&[&conf.arg(), "-o", "track_sizes"]);
        assert!(s.track_sizes);
        assert_eq!(s.idle_timeout, 9);
        assert_eq!(run(&[&conf.arg(), "-o", "idle_timeout=1"]).idle_timeout, 1);
    }

    #[test]
    fn config_file_errors() {
        let conf = TempConf::new("errors", "-m 64\n-c 0\n");
        assert_error(
            &["--config-file", &conf.0.display().to_string()],
            &format!(
                "memcached-rs: {}:2: Maximum connections must be greater than 0",
                conf.0.display()
            ),
            1,
        );
        let conf = TempConf::new("badline", "-m 64\nport 5\n");
        let (message, code) = args_error(&[&conf.arg()]);
        assert_eq!(
            message,
            format!(
                "memcached-rs: {}:2: unrecognised line \"port 5\"",
                conf.0.display()
            )
        );
        assert_eq!(code, 78);
        let (message, code) = args_error(&["--config-file=/nonexistent/memcached-rs.conf"]);
        assert!(message.starts_with(
            "memcached-rs: cannot read config file /nonexistent/memcached-rs.conf: No such file"
        ));
        assert_eq!(code, 66);
        // A bad value from the file is still checked with everything else at the end.
        let conf = TempConf::new("late", "-I 100\n");
        assert_error(
            &[&conf.arg()],
            "Item max size cannot be less than 1024 bytes.",
            64,
        );
    }

    #[test]
    fn command_line_undoes_file_flags() {
        let conf = TempConf::new("undo", "-U 5\n-M\n-e /tmp/e\n");
        let s = run(&[&conf.arg(), "-U", "0"]);
        assert_eq!((s.udp_port, s.evictions), (0, false));
        assert_eq!(run(&[&conf.arg()]).udp_port, 5);
        assert_eq!(s.memory_file, Some(std::path::PathBuf::from("/tmp/e")));
    }
}
