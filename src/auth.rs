//! Who may use the server: the users of memcached's ASCII authentication (`-Y FILE`).

use std::path::Path;

/// The users of `-Y`: `user:password` lines, split at the first colon.
#[derive(Debug, Clone, Default)]
pub struct AuthFile {
    entries: Vec<(Vec<u8>, Vec<u8>)>,
}

impl AuthFile {
    /// Reads the file, failing with memcached's message when it cannot be read or a line has
    /// no colon (an empty line included).
    pub fn load(path: &Path) -> Result<AuthFile, String> {
        let text = std::fs::read(path).map_err(|e| {
            let reason = crate::os::os_reason(&e);
            format!(
                "Could not open authfile [{}] for reading, error {reason}: {reason}",
                path.display()
            )
        })?;
        AuthFile::parse(&text).ok_or_else(|| {
            format!(
                "Authfile [{}] has a malformed entry. Should be 'user:password'",
                path.display()
            )
        })
    }

    /// Parses the file's contents; `None` if a line is malformed.
    pub fn parse(text: &[u8]) -> Option<AuthFile> {
        let body = text.strip_suffix(b"\n").unwrap_or(text);
        let entries = body
            .split(|&b| b == b'\n')
            .map(|line| {
                let colon = line.iter().position(|&b| b == b':')?;
                Some((line[..colon].to_vec(), line[colon + 1..].to_vec()))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(AuthFile { entries })
    }

    /// Whether `user` has `password`. Every entry is compared, each in constant time, so
    /// how long it takes tells nothing of how much of a secret matched (the class of bug
    /// Debian's memcached 1.6.18-1+deb12u1 fixes: CVE-2026-47783, CVE-2026-47784).
    pub fn check(&self, user: &[u8], password: &[u8]) -> bool {
        let mut found = false;
        for (u, p) in &self.entries {
            found |= constant_time_eq(u, user) & constant_time_eq(p, password);
        }
        found
    }
}

/// Whether two byte strings are equal, in a time that depends on their lengths only, never on
/// where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        // Kept opaque to the optimiser, so the loop is not turned into a comparison that
        // stops early.
        diff = std::hint::black_box(diff | (x ^ y));
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::{constant_time_eq, AuthFile};

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"Secret"));
        assert!(!constant_time_eq(b"secret", b"secre"));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn lines_split_at_the_first_colon() {
        let f = AuthFile::parse(b"alice:secret\nbob:pw:x\n:empty\nnopass:").expect("valid");
        assert!(f.check(b"alice", b"secret"));
        assert!(f.check(b"bob", b"pw:x"));
        assert!(!f.check(b"bob", b"pw"));
        assert!(f.check(b"", b"empty"));
        assert!(f.check(b"nopass", b""));
        assert!(!f.check(b"alice", b"secre"));
    }

    #[test]
    fn malformed_files_are_refused() {
        assert!(AuthFile::parse(b"nocolon\n").is_none());
        assert!(AuthFile::parse(b"a:b\n\n").is_none(), "an empty line");
        assert!(AuthFile::parse(b"a:b").is_some(), "no final newline");
    }
}
