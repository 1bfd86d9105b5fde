//! Who can reach the cache: UDP is off unless asked for, the shipped configuration listens on
//! the loopback address only, and with `-S` nothing but SASL is answered before a login — on
//! every path a request can take. memcached 1.6.38 is held to the same where it applies.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::process::Stdio;
use std::time::Duration;

use common::{free_port, running_as_root, wait_for_tcp, Client, Server, ServerKind};

const BOTH: [ServerKind; 2] = [ServerKind::MemcachedRs, ServerKind::Memcached];

/// A daemon started with exactly `args` (no test defaults), killed when dropped.
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(kind: ServerKind, args: &[String]) -> Daemon {
    let mut command = kind.command();
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if running_as_root() {
        command.args(["-u", "root"]);
    }
    Daemon(command.spawn().expect("spawn the daemon"))
}

#[test]
fn udp_is_off_unless_asked_for() {
    for kind in BOTH {
        let port = free_port();
        let args = vec![
            "-p".into(),
            port.to_string(),
            "-l".into(),
            "127.0.0.1".into(),
        ];
        let _daemon = spawn(kind, &args);
        wait_for_tcp(SocketAddr::from(([127, 0, 0, 1], port)));
        // Nobody holds the UDP port of the same number: binding it succeeds.
        let probe = UdpSocket::bind(("127.0.0.1", port));
        assert!(
            probe.is_ok(),
            "{}: UDP port {port} is taken without -U",
            kind.name()
        );
        // And a UDP request gets no answer.
        let client = UdpSocket::bind("127.0.0.1:0").expect("udp client");
        drop(probe);
        client
            .set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
        let mut request = vec![0, 1, 0, 0, 0, 1, 0, 0];
        request.extend_from_slice(b"version\r\n");
        client.send_to(&request, ("127.0.0.1", port)).expect("send");
        let mut buf = [0u8; 64];
        assert!(client.recv(&mut buf).is_err(), "{}", kind.name());
    }
}

#[test]
fn the_shipped_configuration_listens_on_loopback_only() {
    let conf = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("etc/memcached.conf");
    let text = std::fs::read_to_string(&conf).expect("etc/memcached.conf");
    let active: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(active.contains(&"-l 127.0.0.1"), "{active:?}");
    assert!(
        !active.iter().any(|l| l.starts_with("-U") && *l != "-U 0"),
        "UDP enabled in {active:?}"
    );
    // The daemon reading it (its port moved, its user the test's) binds 127.0.0.1 alone.
    let port = free_port();
    let mut args = vec![
        "--config-file".to_string(),
        conf.display().to_string(),
        "-p".into(),
        port.to_string(),
    ];
    if !running_as_root() {
        args.extend(["-u".into(), std::env::var("USER").unwrap_or_default()]);
    }
    let _daemon = spawn(ServerKind::MemcachedRs, &args);
    wait_for_tcp(SocketAddr::from(([127, 0, 0, 1], port)));
    let mut c = Client::connect(SocketAddr::from(([127, 0, 0, 1], port)));
    let conns = c.request("stats conns");
    let listeners: Vec<&str> = conns
        .lines()
        .filter(|l| l.contains(":state conn_listening"))
        .collect();
    assert_eq!(listeners.len(), 1, "{conns}");
    assert!(
        conns.contains(&format!(":addr tcp:127.0.0.1:{port}\r\n")),
        "{conns}"
    );
    assert!(!conns.contains(":addr udp:"), "{conns}");
}

/// One binary request header with `key` (no extras, no value).
fn binary_request(opcode: u8, key: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    memcached_rs::protocol::binary::write_request(&mut f, opcode, key, &[], &[], 0, 0)
        .expect("a key fits the header");
    f
}

#[test]
fn with_sasl_nothing_but_sasl_is_answered_before_a_login() {
    // Text and meta requests long enough to fill a binary header: memcached with -S reads only
    // binary frames, so their first byte is a bad magic and the connection closes unanswered.
    let text_paths: [&[u8]; 4] = [
        b"get a b c d e f g h i j k\r\n",
        b"mg some_key v f t c k s\r\n",
        b"set a 0 0 1\r\nx\r\nget a\r\nget a\r\n",
        b"stats\r\nstats\r\nstats\r\nstats\r\n",
    ];
    // Binary commands of every kind: refused with "Auth failure." and a close.
    let binary_paths: [(u8, &[u8]); 6] = [
        (0x00, b"a"), // get
        (0x0c, b"a"), // getk
        (0x04, b"a"), // delete
        (0x10, b""),  // stat
        (0x08, b""),  // flush
        (0x1c, b"a"), // touch (shape checked after the login check)
    ];
    for kind in BOTH {
        let server = Server::start(kind, &["-S"]);
        for request in text_paths {
            let mut c = server.client();
            c.send(request);
            let (got, _) = c.read_to_close(Duration::from_secs(5));
            assert!(
                got.is_empty(),
                "{}: {} got {got:?}",
                kind.name(),
                String::from_utf8_lossy(request)
            );
        }
        for (opcode, key) in binary_paths {
            let mut c = server.client();
            c.send(&binary_request(opcode, key));
            let (got, _) = c.read_to_close(Duration::from_secs(5));
            assert!(
                got.len() >= 24,
                "{}: opcode {opcode:#x}: {got:?}",
                kind.name()
            );
            assert_eq!(got[0], 0x81, "{}", kind.name());
            assert_eq!(
                &got[6..8],
                &[0x00, 0x20],
                "{}: opcode {opcode:#x}",
                kind.name()
            );
            assert_eq!(&got[24..], b"Auth failure.", "{}", kind.name());
        }
        // Version and the SASL commands themselves are answered.
        let mut c = server.client();
        c.send(&binary_request(0x20, b""));
        let got = c.read_exact(24);
        assert_eq!(&got[6..8], &[0, 0], "{}: list mechanisms", kind.name());
    }
}

/// `-Y`: a client that has not logged in cannot make the server hold memory by announcing a
/// huge token — the token is failed and its bytes discarded as they arrive. (Before, a 50 MB
/// token was buffered whole.) Afterwards the connection can still log in.
#[test]
fn a_huge_ascii_auth_token_is_refused_without_being_buffered() {
    let server = Server::start(ServerKind::MemcachedRs, &["-Y", common::ascii_auth_file()]);
    let before = common::proc_status_kb(server.pid(), "VmHWM");
    let mut c = server.client();
    let size = 50_000_000;
    c.send(format!("set a 0 0 {size}\r\n").as_bytes());
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..size / chunk.len() {
        c.send(&chunk);
    }
    c.send(&vec![b'x'; size % chunk.len()]);
    c.send(b"\r\n");
    assert_eq!(
        c.read_line(),
        "CLIENT_ERROR authentication failure",
        "the token is failed"
    );
    let after = common::proc_status_kb(server.pid(), "VmHWM");
    assert!(
        after < before + 20 * 1024,
        "peak RSS went from {before} kB to {after} kB for an unauthenticated client"
    );
    assert_eq!(c.request("set a 0 0 12\r\nalice secret"), "STORED\r\n");
    assert_eq!(c.request("version"), "VERSION 1.6.38\r\n");
}
