//! SASL for the binary protocol (`-S`): the PLAIN mechanism, checked against the password file
//! memcached reads through `MEMCACHED_SASL_PWDB` (`user:password` lines; anything after a
//! further `:` is ignored, and the first line naming the user decides).

use std::io::{BufRead, BufReader};
use std::path::Path;

/// The one mechanism offered.
pub const PLAIN: &str = "PLAIN";
/// What `SASL_LIST_MECHS` answers.
pub const MECHANISMS: &str = PLAIN;
/// memcached's `MAX_ENTRY_LEN`: longer password-file lines are read in pieces, and a user and
/// password longer than this together are refused.
const MAX_ENTRY_LEN: usize = 256;

/// Checks a PLAIN message (`authzid NUL user NUL password`) against the password file. An
/// authorization identity other than the user itself is refused: there is no proxying.
pub fn check_plain(pwdb: Option<&Path>, message: &[u8]) -> bool {
    let mut parts = message.splitn(3, |&b| b == 0);
    let (Some(authzid), Some(user), Some(password)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    if user.is_empty() || (!authzid.is_empty() && authzid != user) {
        return false;
    }
    match pwdb {
        Some(path) => password_matches(path, user, password),
        None => false,
    }
}

/// memcached's `sasl_server_userdb_checkpass`.
fn password_matches(path: &Path, user: &[u8], password: &[u8]) -> bool {
    if user.len() + password.len() > MAX_ENTRY_LEN - 4 {
        log::warn!("SASL: user/password is too long");
        return false;
    }
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            log::warn!("SASL: cannot read {}: {e}", path.display());
            return false;
        }
    };
    for line in BufReader::new(file).split(b'\n') {
        let Ok(line) = line else {
            return false;
        };
        let Some(rest) = line.strip_prefix(user).and_then(|r| r.strip_prefix(b":")) else {
            continue;
        };
        // memcached's test: the password, then the end of the field. Compared in constant
        // time, so the time taken does not tell how much of the password matched.
        let Some(stored) = rest.get(..password.len()) else {
            return false;
        };
        let ends = matches!(rest.get(password.len()), None | Some(b':' | b'\r' | b'\0'));
        return crate::auth::constant_time_eq(stored, password) & ends;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pwdb(contents: &str) -> tempfile_path::TempFile {
        tempfile_path::TempFile::with(contents)
    }

    /// A file in the system's temporary directory, removed when dropped.
    mod tempfile_path {
        pub struct TempFile(pub std::path::PathBuf);
        impl TempFile {
            pub fn with(contents: &str) -> TempFile {
                use std::sync::atomic::{AtomicU32, Ordering};
                static N: AtomicU32 = AtomicU32::new(0);
                let path = std::env::temp_dir().join(format!(
                    "memcached-rs-sasl-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::write(&path, contents).expect("write the password file");
                TempFile(path)
            }
        }
        impl Drop for TempFile {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    #[test]
    fn plain_checks_the_password_file() {
        let f = pwdb("alice:secret\nbob:hunter2:extra\r\ncarol:x\r\n");
        let db = Some(f.0.as_path());
        assert!(check_plain(db, b"\0alice\0secret"));
        assert!(check_plain(db, b"alice\0alice\0secret"));
        assert!(check_plain(db, b"\0bob\0hunter2"));
        assert!(check_plain(db, b"\0carol\0x"));
        assert!(!check_plain(db, b"\0alice\0secre"));
        assert!(!check_plain(db, b"\0alice\0secrets"));
        assert!(!check_plain(db, b"\0ali\0secret"));
        assert!(!check_plain(db, b"bob\0alice\0secret"), "no proxying");
        assert!(!check_plain(db, b"\0alice"), "malformed");
        assert!(!check_plain(db, b"\0dave\0"));
        assert!(!check_plain(None, b"\0alice\0secret"));
    }

    #[test]
    fn the_first_line_for_a_user_decides() {
        let f = pwdb("alice:one\nalice:two\n");
        assert!(check_plain(Some(f.0.as_path()), b"\0alice\0one"));
        assert!(!check_plain(Some(f.0.as_path()), b"\0alice\0two"));
    }
}
