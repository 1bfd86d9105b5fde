//! UDP (`-U`): memcached's 8-byte frame header, one request per datagram, every reply (each
//! command's, each key of a multi-get) as its own numbered run of datagrams of at most 1400
//! bytes. The same script goes to memcached and memcached-rs; every datagram must match.

mod common;

use common::{free_port, Server, ServerKind};
use std::net::UdpSocket;
use std::time::Duration;

/// Sends each request (id, datagrams-in-request, payload) and collects what comes back until
/// the server is quiet, with a marker after each request's replies.
fn play(udp_port: u16, requests: &[(u16, u16, Vec<u8>)]) -> Vec<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut got = Vec::new();
    for (id, count, payload) in requests {
        let mut datagram = id.to_be_bytes().to_vec();
        datagram.extend_from_slice(&[0, 0]);
        datagram.extend_from_slice(&count.to_be_bytes());
        datagram.extend_from_slice(&[0, 0]);
        datagram.extend_from_slice(payload);
        socket
            .send_to(&datagram, ("127.0.0.1", udp_port))
            .expect("send");
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = socket.recv(&mut buf) {
            got.push(buf[..n].to_vec());
        }
        got.push(b"--".to_vec());
    }
    got
}

fn script() -> Vec<(u16, u16, Vec<u8>)> {
    let big = [b"set a 0 0 3000\r\n".as_slice(), &[b'x'; 3000], b"\r\n"].concat();
    vec![
        (1, 1, big),
        (2, 1, b"get a\r\n".to_vec()),
        (3, 1, b"get a a\r\n".to_vec()),
        (4, 1, b"get a nope\r\n".to_vec()),
        (5, 1, b"get nope a\r\n".to_vec()),
        (6, 1, b"set b 0 0 1\r\ny\r\nget b\r\nversion\r\n".to_vec()),
        (7, 2, b"version\r\n".to_vec()),
        (8, 1, b"vers".to_vec()),
        (9, 1, b"get nope\r\n".to_vec()),
        (
            10,
            1,
            b"\x80\x0b\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0".to_vec(),
        ),
        (11, 1, Vec::new()),
        (12, 1, b"mg a v\r\nmn\r\nincr n 1\r\nbogus\r\n".to_vec()),
        (13, 1, b"gets b\r\ndelete b\r\nget b\r\n".to_vec()),
    ]
}

#[test]
fn datagrams_match_memcacheds() {
    let run = |kind| {
        let udp_port = free_port();
        let server = Server::start(kind, &["-U", &udp_port.to_string()]);
        let got = play(udp_port, &script());
        drop(server);
        got
    };
    let reference = run(ServerKind::Memcached);
    let ours = run(ServerKind::MemcachedRs);
    // A 3000-byte value takes three datagrams: 1400, 1400 and the rest, numbered 0..3 of 3.
    let first_get: Vec<&Vec<u8>> = reference.iter().skip(2).take(3).collect();
    assert_eq!(first_get[0].len(), 1400);
    assert_eq!(&first_get[2][..8], &[0, 2, 0, 2, 0, 3, 0, 0]);
    for (i, (want, got)) in reference.iter().zip(&ours).enumerate() {
        assert_eq!(
            String::from_utf8_lossy(got),
            String::from_utf8_lossy(want),
            "datagram {i}"
        );
    }
    assert_eq!(ours.len(), reference.len());
}

/// Starts `kind` on 127.0.0.1 with `args` and `MEMCACHED_PORT_FILENAME` set; returns the
/// process (to kill) and the port file once it is in place.
fn start_with_port_file(kind: ServerKind, args: &[&str]) -> (std::process::Child, String) {
    let file = common::temp_path(&format!("ports-{}", kind.name()));
    let mut args: Vec<&str> = [&["-l", "127.0.0.1"], args].concat();
    if common::running_as_root() {
        args.extend(["-u", "root"]);
    }
    let child = kind
        .command()
        .args(&args)
        .env("MEMCACHED_PORT_FILENAME", &file)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let mut text = String::new();
    common::wait_until("the port file", Duration::from_secs(10), || {
        std::fs::read_to_string(&file).is_ok_and(|t| {
            text = t;
            true
        })
    });
    let _ = std::fs::remove_file(&file);
    (child, text)
}

/// `MEMCACHED_PORT_FILENAME`: the bound TCP and UDP ports, in memcached's format, for both
/// servers alike.
#[test]
fn the_port_file_names_the_bound_ports() {
    for kind in [ServerKind::MemcachedRs, ServerKind::Memcached] {
        let (tcp, udp) = (free_port(), free_port());
        let (mut child, text) =
            start_with_port_file(kind, &["-p", &tcp.to_string(), "-U", &udp.to_string()]);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(
            text,
            format!("TCP INET: {tcp}\nUDP INET: {udp}\n"),
            "{}",
            kind.name()
        );
    }
}

/// `-p -1` and `-U -1`: ports the kernel picks, named in the port file (how memcached's own
/// test suite starts servers); `stats settings` keeps saying -1.
#[test]
fn ports_of_minus_one_are_picked_by_the_kernel() {
    for kind in [ServerKind::MemcachedRs, ServerKind::Memcached] {
        let (mut child, text) = start_with_port_file(kind, &["-p", "-1", "-U", "-1"]);
        let port_of = |transport: &str| -> u16 {
            text.lines()
                .find_map(|l| l.strip_prefix(transport)?.strip_prefix(" INET: "))
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("{}: no {transport} port in {text:?}", kind.name()))
        };
        let (tcp, udp) = (port_of("TCP"), port_of("UDP"));
        assert!(tcp > 0 && udp > 0, "{}: {text:?}", kind.name());
        let mut client = common::Client::connect(([127, 0, 0, 1], tcp).into());
        let settings = client.request("stats settings\r\n");
        assert!(
            settings.contains("STAT tcpport -1\r\n") && settings.contains("STAT udpport -1\r\n"),
            "{}: {settings}",
            kind.name()
        );
        let replies = play(udp, &[(7, 1, b"version\r\n".to_vec())]);
        assert!(
            replies[0].starts_with(&[0, 7, 0, 0, 0, 1, 0, 0])
                && replies[0][8..].starts_with(b"VERSION "),
            "{}: {replies:?}",
            kind.name()
        );
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// The UDP threads sleep in epoll without a timeout: SIGTERM still wakes and ends them.
#[test]
fn sigterm_ends_the_udp_threads() {
    let udp_port = free_port();
    let mut server = Server::start(ServerKind::MemcachedRs, &["-U", &udp_port.to_string()]);
    let got = play(udp_port, &[(1, 1, b"version\r\n".to_vec())]);
    assert!(
        String::from_utf8_lossy(&got[0]).contains("VERSION "),
        "{got:?}"
    );
    server.signal("TERM");
    let status = server
        .wait_for_exit(Duration::from_secs(10))
        .expect("SIGTERM must end the server, its UDP threads included");
    assert!(status.success(), "{status}");
}
