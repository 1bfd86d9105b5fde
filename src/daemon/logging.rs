//! Logging with memcached's verbosity levels — nothing but warnings by default, `-v` start-up
//! information, `-vv` client commands, `-vvv` internal state — to one of three places: stderr
//! (the journal, under systemd), the `logfile` of the config file (reopened on SIGHUP, so
//! logrotate can move it), or syslog when daemonized without a log file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};
use syslog::{Facility, Formatter3164, LoggerBackend};

/// Where log lines go.
enum Sink {
    Stderr,
    File { path: PathBuf, file: File },
    Syslog(syslog::Logger<LoggerBackend, Formatter3164>),
}

struct Logger {
    sink: Mutex<Sink>,
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut sink = match self.sink.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        // A failed write has nowhere to be reported.
        match &mut *sink {
            Sink::Stderr => {
                let mut err = std::io::stderr().lock();
                if to_journal() {
                    // sd-daemon(3) priority prefixes: the journal files each line at its level.
                    let _ = write!(err, "<{}>", journal_priority(record.level()));
                }
                let _ = writeln!(err, "{}", record.args());
            }
            Sink::File { file, .. } => {
                let _ = writeln!(file, "{}", record.args());
            }
            Sink::Syslog(logger) => {
                let msg = record.args().to_string();
                let _ = match record.level() {
                    Level::Error => logger.err(msg),
                    Level::Warn => logger.warning(msg),
                    Level::Info => logger.info(msg),
                    Level::Debug | Level::Trace => logger.debug(msg),
                };
            }
        }
    }

    fn flush(&self) {}
}

/// Whether stderr is connected to the journal. systemd sets `JOURNAL_STREAM` to the stream's
/// `device:inode`; the variable is inherited by every child, so it only counts when it names
/// our own stderr (a daemon started from a shell inside a service, with stderr sent to a file,
/// must not prefix its lines).
fn to_journal() -> bool {
    static JOURNAL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *JOURNAL.get_or_init(|| {
        let Some(named) = std::env::var_os("JOURNAL_STREAM") else {
            return false;
        };
        stderr_identity().is_some_and(|(dev, ino)| names_stream(&named.to_string_lossy(), dev, ino))
    })
}

/// The device and inode of our stderr.
fn stderr_identity() -> Option<(u64, u64)> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let fd = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    let meta = File::from(fd).metadata().ok()?;
    Some((meta.dev(), meta.ino()))
}

/// Whether a `JOURNAL_STREAM` value (`device:inode`, decimal) names this device and inode.
fn names_stream(value: &str, dev: u64, ino: u64) -> bool {
    let Some((d, i)) = value.split_once(':') else {
        return false;
    };
    d.parse() == Ok(dev) && i.parse() == Ok(ino)
}

/// syslog's priority for a log level (err, warning, info, debug).
fn journal_priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

static LOGGER: Logger = Logger {
    sink: Mutex::new(Sink::Stderr),
};

fn level_for(verbosity: u32) -> LevelFilter {
    match verbosity {
        0 => LevelFilter::Warn,
        1 => LevelFilter::Info,
        2 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    }
}

/// Installs the logger (to stderr) at a verbosity level. Safe to call more than once.
pub fn init(verbosity: u32) {
    // Only the first call installs the logger; later calls just change the level.
    let _ = log::set_logger(&LOGGER);
    set_verbosity(verbosity);
}

/// Changes the verbosity at run time (the `verbosity` command).
pub fn set_verbosity(verbosity: u32) {
    log::set_max_level(level_for(verbosity));
}

fn set_sink(sink: Sink) {
    match LOGGER.sink.lock() {
        Ok(mut s) => *s = sink,
        Err(poisoned) => *poisoned.into_inner() = sink,
    }
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Sends the log to `path` (appending, created if missing).
pub fn to_file(path: &Path) -> std::io::Result<()> {
    let file = open_append(path)?;
    set_sink(Sink::File {
        path: path.to_path_buf(),
        file,
    });
    Ok(())
}

/// Sends the log to syslog (facility daemon); stays on stderr if syslog cannot be reached.
pub fn to_syslog() {
    let formatter = Formatter3164 {
        facility: Facility::LOG_DAEMON,
        hostname: None,
        process: "memcached-rs".into(),
        pid: std::process::id(),
    };
    match syslog::unix(formatter) {
        Ok(logger) => set_sink(Sink::Syslog(logger)),
        Err(e) => log::warn!("cannot reach syslog ({e}); logging to stderr"),
    }
}

/// SIGHUP: reopens the log file (after logrotate moved it). Returns what happened, for the log.
pub fn reopen() -> String {
    let mut sink = match LOGGER.sink.lock() {
        Ok(s) => s,
        Err(poisoned) => poisoned.into_inner(),
    };
    match &mut *sink {
        Sink::File { path, file } => match open_append(path) {
            Ok(new) => {
                *file = new;
                format!("SIGHUP: reopened {}", path.display())
            }
            Err(e) => format!("SIGHUP: cannot reopen {}: {e}", path.display()),
        },
        _ => "SIGHUP: no log file to reopen".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_stream_must_name_this_device_and_inode() {
        assert!(names_stream("64769:123456", 64769, 123456));
        assert!(!names_stream("64769:123456", 64769, 123457));
        assert!(!names_stream("64770:123456", 64769, 123456));
        assert!(!names_stream("64769", 64769, 123456));
        assert!(!names_stream("", 0, 0));
        assert!(!names_stream("x:y", 0, 0));
    }
}
