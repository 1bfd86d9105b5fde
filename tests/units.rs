//! The shipped systemd units: `systemd-analyze verify` finds nothing to say about them, and
//! the service's `systemd-analyze security` exposure stays under 2.0. The units name
//! `/usr/bin/memcached-rs`, which a test machine need not have, so they are checked as copies
//! pointing at the binary cargo built.

use std::path::{Path, PathBuf};
use std::process::Command;

const UNITS: [&str; 3] = [
    "memcached-rs.service",
    "memcached-rs.socket",
    "memcached-rs@.service",
];

/// Copies of the units in a fresh directory, with the installed binary's path replaced.
fn unit_copies() -> PathBuf {
    let dir = std::env::temp_dir()
        .join("memcached-rs-tests")
        .join(format!("units-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("unit directory");
    let binary = env!("CARGO_BIN_EXE_memcached-rs");
    for unit in UNITS {
        let source = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("systemd")
            .join(unit);
        let text = std::fs::read_to_string(&source).expect("read the unit");
        std::fs::write(
            dir.join(unit),
            text.replace("/usr/bin/memcached-rs", binary),
        )
        .expect("write the copy");
    }
    dir
}

fn systemd_analyze(args: &[&str]) -> (bool, String) {
    let out = Command::new("systemd-analyze")
        .args(args)
        .output()
        .expect("systemd-analyze (Debian's systemd package) must be installed");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn units_verify_cleanly() {
    let dir = unit_copies();
    for unit in [
        "memcached-rs.service",
        "memcached-rs.socket",
        "memcached-rs@11212.service",
    ] {
        let path = dir.join(unit);
        let path = path.to_str().expect("utf-8 path");
        // The man page arrives with the package; everything else must be clean.
        let (ok, text) = systemd_analyze(&["verify", "--man=no", path]);
        assert!(ok && text.trim().is_empty(), "{unit}: {text}");
    }
}

#[test]
fn the_service_exposure_is_under_two() {
    let dir = unit_copies();
    let path = dir.join("memcached-rs.service");
    let (_, text) = systemd_analyze(&[
        "security",
        "--offline=yes",
        path.to_str().expect("utf-8 path"),
    ]);
    let level = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for memcached-rs.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no exposure figure in:\n{text}"));
    assert!(level < 2.0, "exposure {level}:\n{text}");
}
