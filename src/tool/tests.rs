use super::*;

fn args(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

#[test]
fn modes_are_read_as_memcached_tool_reads_them() {
    assert_eq!(parse_mode(&args(&[])), Some(Mode::Display));
    assert_eq!(parse_mode(&args(&["display"])), Some(Mode::Display));
    assert_eq!(parse_mode(&args(&["display", "x"])), None);
    assert_eq!(
        parse_mode(&args(&["dump"])),
        Some(Mode::Dump { limit: None })
    );
    assert_eq!(
        parse_mode(&args(&["dump", "5"])),
        Some(Mode::Dump { limit: Some(5) })
    );
    for bad in [
        &["dump", "0"][..],
        &["dump", "x"],
        &["keys", "-u", "0"],
        &["top", "x"],
    ] {
        assert_eq!(parse_mode(&args(bad)), None, "{bad:?}");
    }
    assert_eq!(
        parse_mode(&args(&["keys", "-u", "3"])),
        Some(Mode::Keys {
            unescape: true,
            limit: Some(3)
        })
    );
    assert_eq!(
        parse_mode(&args(&["hotkeys", "bytes", "60s"])),
        Some(Mode::HotKeys {
            args: args(&["bytes", "60s"])
        })
    );
}

#[test]
fn metadump_keys_are_unescaped_and_read() {
    assert_eq!(unescape("a%20b%25c%zz%2"), b"a b%c%zz%2");
    let line = "key=x%20y exp=-1 la=1700000000 cas=2 fetch=no cls=1 size=60 flags=0";
    assert_eq!(key_and_exptime(line), Some(("x%20y", -1)));
    assert_eq!(key_and_exptime("END"), None);
    assert_eq!(leading_number("0.5"), Some(0));
    assert_eq!(leading_number("yes"), None);
}
