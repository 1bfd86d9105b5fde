//! The seed transcript, driven through `nc` exactly as a person would type it.

mod common;

use common::{Server, ServerKind};
use std::io::Write;
use std::process::{Command, Stdio};

/// Pipes `input` through `nc -q1 127.0.0.1 PORT` and returns what came back.
fn nc(port: u16, input: &[u8]) -> String {
    let mut child = Command::new("nc")
        .args(["-q1", "127.0.0.1", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("nc (netcat-openbsd) must be installed: make test-deps");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write to nc");
    let out = child.wait_with_output().expect("nc output");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn seed_transcript_through_netcat() {
    let server = Server::start(ServerKind::MemcachedRs, &[]);
    let port = server.port();
    assert_eq!(
        nc(port, b"set user_name 0 3600 4\r\njohn\r\nget user_name\r\n"),
        "STORED\r\nVALUE user_name 0 4\r\njohn\r\nEND\r\n"
    );
    assert_eq!(
        nc(
            port,
            b"set counter 0 0 1\r\n0\r\nincr counter 5\r\ndecr counter 2\r\n"
        ),
        "STORED\r\n5\r\n3\r\n"
    );
    assert_eq!(
        nc(
            port,
            b"set key1 0 0 2\r\nv1\r\nset key2 5 0 2\r\nv2\r\nget key1 key2\r\n"
        ),
        "STORED\r\nSTORED\r\nVALUE key1 0 2\r\nv1\r\nVALUE key2 5 2\r\nv2\r\nEND\r\n"
    );
    // `echo stats | nc`: a bare "\n" line ending, as echo sends it.
    let stats = nc(port, b"stats\n");
    assert!(
        stats.starts_with(&format!("STAT pid {}\r\n", server.pid())),
        "{stats}"
    );
    assert!(stats.contains("STAT curr_items 4\r\n"), "{stats}");
    assert!(stats.contains("STAT cmd_get 3\r\n"), "{stats}");
    assert!(stats.ends_with("END\r\n"), "{stats}");
}
