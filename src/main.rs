//! The `memcached-rs` binary: settings → daemon → exit status.

use std::process::ExitCode;

use memcached_rs::config::{self, Invocation};
use memcached_rs::daemon;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let settings = match config::from_args(&args) {
        Ok(Invocation::Run(settings)) => *settings,
        Ok(Invocation::Help) => {
            print!("{}", config::help_text());
            return ExitCode::SUCCESS;
        }
        Ok(Invocation::License) => {
            print!("{}", config::license_text());
            return ExitCode::SUCCESS;
        }
        Ok(Invocation::Version) => {
            println!(
                "memcached-rs {} (memcached {} compatible)",
                env!("CARGO_PKG_VERSION"),
                config::PROTOCOL_VERSION
            );
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(e.exit_code());
        }
    };
    match daemon::run(settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(e.exit_code)
        }
    }
}
