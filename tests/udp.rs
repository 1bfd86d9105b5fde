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

/// `MEMCACHED_PORT_FILENAME`: the bound TCP and UDP ports, in memcached's format, for both
/// servers alike.
#[test]
fn the_port_file_names_the_bound_ports() {
    for kind in [ServerKind::MemcachedRs, ServerKind::Memcached] {
        let (tcp, udp) = (free_port(), free_port());
        let file = std::env::temp_dir()
            .join("memcached-rs-tests")
            .join(format!("ports-{}-{}", kind.name(), std::process::id()));
        std::fs::create_dir_all(file.parent().expect("dir")).expect("dir");
        let _ = std::fs::remove_file(&file);
        let mut args = vec![
            "-l".to_string(),
            "127.0.0.1".into(),
            "-p".into(),
            tcp.to_string(),
            "-U".into(),
            udp.to_string(),
        ];
        if common::running_as_root() {
            args.extend(["-u".to_string(), "root".to_string()]);
        }
        let mut child = std::process::Command::new(kind.binary())
            .args(&args)
            .env("MEMCACHED_PORT_FILENAME", &file)
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let text = loop {
            if let Ok(text) = std::fs::read_to_string(&file) {
                break text;
            }
            assert!(std::time::Instant::now() < deadline, "no port file");
            std::thread::sleep(Duration::from_millis(20));
        };
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(
            text,
            format!("TCP INET: {tcp}\nUDP INET: {udp}\n"),
            "{}",
            kind.name()
        );
        let _ = std::fs::remove_file(&file);
    }
}
