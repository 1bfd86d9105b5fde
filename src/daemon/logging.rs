//! Logging to stderr (journald picks it up under systemd), with memcached's verbosity levels:
//! nothing but warnings by default, `-v` errors and warnings in the event loop plus start-up
//! information, `-vv` client commands, `-vvv` internal state.

use log::{LevelFilter, Log, Metadata, Record};
use std::io::Write;

struct StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            // A failed write to stderr has nowhere to be reported.
            let _ = writeln!(std::io::stderr().lock(), "{}", record.args());
        }
    }

    fn flush(&self) {}
}

static LOGGER: StderrLogger = StderrLogger;

fn level_for(verbosity: u32) -> LevelFilter {
    match verbosity {
        0 => LevelFilter::Warn,
        1 => LevelFilter::Info,
        2 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    }
}

/// Installs the logger at a verbosity level. Safe to call more than once.
pub fn init(verbosity: u32) {
    // Only the first call installs the logger; later calls just change the level.
    let _ = log::set_logger(&LOGGER);
    set_verbosity(verbosity);
}

/// Changes the verbosity at run time (the `verbosity` command).
pub fn set_verbosity(verbosity: u32) {
    log::set_max_level(level_for(verbosity));
}
