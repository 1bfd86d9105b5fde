//! Connection handling: `-c`, idle timeout, pipelining past `-R`, `shutdown`, root without `-u`.

mod common;

use common::{ReadEnd, Server, ServerKind};
use std::time::Duration;

#[test]
fn connections_past_the_limit_are_refused_with_memcached_message() {
    let server = Server::start(ServerKind::MemcachedRs, &["-c", "3"]);
    // The start-up probe's connection may still be closing: wait until the server counts none.
    let mut first = server.client();
    for _ in 0..50 {
        if first
            .request("stats")
            .contains("STAT curr_connections 1\r\n")
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut second = server.client();
    let mut third = server.client();
    assert_eq!(second.request("version"), "VERSION 1.6.38\r\n");
    assert_eq!(third.request("version"), "VERSION 1.6.38\r\n");
    let mut fourth = server.client();
    let (bytes, end) = fourth.read_to_close(Duration::from_secs(5));
    assert_eq!(bytes, b"ERROR Too many open connections\r\n");
    assert_eq!(end, ReadEnd::Closed);
    // Existing connections are unaffected.
    assert_eq!(first.request("version"), "VERSION 1.6.38\r\n");
    let stats = first.request("stats");
    assert!(stats.contains("STAT rejected_connections 1\r\n"), "{stats}");
    assert!(stats.contains("STAT max_connections 3\r\n"), "{stats}");
}

/// Both servers close a connection idle past `-o idle_timeout` and count it in `idle_kicks`
/// (a line `stats` has only while an idle timeout is set).
#[test]
fn idle_connections_are_closed_after_the_timeout() {
    for kind in [ServerKind::MemcachedRs, ServerKind::Memcached] {
        let server = Server::start(kind, &["-o", "idle_timeout=1"]);
        let mut idle = server.client();
        assert_eq!(idle.request("version"), "VERSION 1.6.38\r\n");
        let (bytes, end) = idle.read_to_close(Duration::from_secs(10));
        assert!(bytes.is_empty());
        assert_eq!(
            end,
            ReadEnd::Closed,
            "{}: an idle connection must be closed",
            kind.name()
        );
        let mut fresh = server.client();
        assert_eq!(fresh.request("version"), "VERSION 1.6.38\r\n");
        let stats = fresh.request("stats");
        assert!(
            stats.contains("STAT idle_kicks 1\r\n"),
            "{}: {stats}",
            kind.name()
        );
    }
    let server = Server::start(ServerKind::MemcachedRs, &[]);
    let stats = server.client().request("stats");
    assert!(
        !stats.contains("idle_kicks"),
        "no idle timeout, no line: {stats}"
    );
}

#[test]
fn a_long_pipeline_is_answered_in_order_across_yields() {
    let server = Server::start(ServerKind::MemcachedRs, &["-R", "5"]);
    let mut c = server.client();
    let mut script = Vec::new();
    let mut want = String::new();
    for i in 0..300 {
        script.extend_from_slice(
            format!("set k{i} 0 0 {}\r\n{i}\r\n", i.to_string().len()).as_bytes(),
        );
        want.push_str("STORED\r\n");
    }
    for i in 0..300 {
        script.extend_from_slice(format!("get k{i}\r\n").as_bytes());
        want.push_str(&format!(
            "VALUE k{i} 0 {}\r\n{i}\r\nEND\r\n",
            i.to_string().len()
        ));
    }
    c.send(&script);
    let got = c.read_until_contains(b"VALUE k299 0 3\r\n299\r\nEND\r\n");
    assert_eq!(String::from_utf8_lossy(&got), want);
    let stats = c.request("stats");
    let yields: u64 = stats
        .lines()
        .find_map(|l| l.strip_prefix("STAT conn_yields "))
        .expect("conn_yields")
        .parse()
        .expect("number");
    assert!(yields > 0, "600 requests with -R 5 must yield");
}

#[test]
fn shutdown_needs_the_flag_and_then_stops_the_server() {
    let server = Server::start(ServerKind::MemcachedRs, &[]);
    assert_eq!(
        server.client().request("shutdown"),
        "ERROR: shutdown not enabled\r\n"
    );

    let mut server = Server::start(ServerKind::MemcachedRs, &["-A"]);
    let mut c = server.client();
    assert_eq!(
        c.request("shutdown now please"),
        "CLIENT_ERROR invalid shutdown mode\r\n"
    );
    c.send(b"shutdown\r\n");
    let status = server
        .wait_for_exit(Duration::from_secs(10))
        .expect("server must exit after shutdown");
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn root_without_user_is_refused() {
    if !common::running_as_root() {
        return; // Only root can be refused for being root.
    }
    let out = std::process::Command::new(common::memcached_rs_bin())
        .args(["-p", "0", "-l", "127.0.0.1"])
        .output()
        .expect("run memcached-rs");
    assert_eq!(out.status.code(), Some(64));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "can't run as root without the -u switch\n"
    );
}

#[test]
fn a_huge_multi_get_streams_instead_of_buffering() {
    let server = Server::start(ServerKind::MemcachedRs, &["-m", "64"]);
    let mut c = server.client();
    let value = vec![b'v'; 100 * 1024];
    for i in 0..10 {
        let mut req = format!("set big{i} 0 0 {}\r\n", value.len()).into_bytes();
        req.extend_from_slice(&value);
        req.extend_from_slice(b"\r\n");
        c.send(&req);
        assert_eq!(c.read_line(), "STORED");
    }
    // 2000 values of 100 KB: 200 MB of replies to one request line.
    let keys: Vec<String> = (0..2000).map(|i| format!("big{}", i % 10)).collect();
    c.send(format!("get {}\r\n", keys.join(" ")).as_bytes());
    let mut values = 0;
    loop {
        let line = c.read_line();
        if line == "END" {
            break;
        }
        assert_eq!(line, format!("VALUE big{} 0 102400", values % 10));
        let data = c.read_exact(value.len() + 2);
        assert!(data[..value.len()] == value[..] && data.ends_with(b"\r\n"));
        values += 1;
    }
    assert_eq!(values, 2000);
    let peak = common::proc_status_kb(server.pid(), "VmHWM");
    assert!(
        peak < 100 * 1024,
        "server peaked at {peak} kB for a 200 MB reply"
    );
}

#[test]
fn listens_on_every_l_address_including_ipv6() {
    let server = Server::start(ServerKind::MemcachedRs, &["-l", "[::1]"]);
    let v6 = std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, server.port()));
    let mut c = common::Client::connect(v6);
    assert_eq!(c.request("version"), "VERSION 1.6.38\r\n");
    let mut v4 = server.client();
    assert_eq!(v4.request("version"), "VERSION 1.6.38\r\n");
    let settings = v4.request("stats settings");
    assert!(
        settings.contains("STAT inter 127.0.0.1,[::1]\r\n"),
        "{settings}"
    );
}

/// A deliberate difference from memcached (1.6.18 and 1.6.38 alike): when a get fails on a too-long key,
/// memcached also throws away the not-yet-sent replies of the commands pipelined before it
/// (so a client waiting for their `STORED` hangs). memcached-rs keeps those replies and answers
/// the failing get exactly as memcached does.
#[test]
fn replies_before_a_get_with_a_too_long_key_are_kept() {
    let server = Server::start(ServerKind::MemcachedRs, &[]);
    let mut c = server.client();
    let long_key = "a".repeat(251);
    c.send(
        format!("set k0 0 0 2\r\nv0\r\nset k1 1 0 2\r\nv1\r\nget k0 {long_key} k1\r\nget k1\r\n")
            .as_bytes(),
    );
    let got = c.read_until_contains(b"END\r\n");
    assert_eq!(
        String::from_utf8_lossy(&got),
        "STORED\r\nSTORED\r\nCLIENT_ERROR bad command line format\r\nVALUE k1 1 2\r\nv1\r\nEND\r\n"
    );
}

/// Pipelined writers must not make read buffers grow. A data block straddling the end of a full
/// buffer once made it double without shrinking back (4 MB per connection under
/// `make bench-memory`); this guards the bound, though its workload does not hit that timing
/// reliably.
#[test]
fn read_buffers_stay_small_under_pipelined_writes() {
    let server = Server::start(ServerKind::MemcachedRs, &["-m", "16"]);
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let addr = server.addr();
            std::thread::spawn(move || {
                let mut c = common::Client::connect(addr);
                for batch in 0..40 {
                    let mut script = Vec::new();
                    for i in 0..5000 {
                        let value = "v".repeat(10 + (i * 7 + batch) % 90);
                        script.extend_from_slice(
                            format!(
                                "set k{w}:{batch}:{i} 0 0 {} noreply\r\n{value}\r\n",
                                value.len()
                            )
                            .as_bytes(),
                        );
                    }
                    c.send(&script);
                }
                assert_eq!(c.request("version"), "VERSION 1.6.38\r\n");
                c
            })
        })
        .collect();
    let open: Vec<_> = writers
        .into_iter()
        .map(|w| w.join().expect("writer"))
        .collect();
    let stats = server.client().request("stats");
    let read_buf_bytes: u64 = stats
        .lines()
        .find_map(|l| l.strip_prefix("STAT read_buf_bytes "))
        .expect("read_buf_bytes")
        .parse()
        .expect("number");
    assert!(
        read_buf_bytes <= 5 * 64 * 1024,
        "{read_buf_bytes} bytes of read buffers for 5 connections"
    );
    drop(open);
}

/// `stats conns`: the listener, the UDP socket, an idle client and the asking one — the same
/// shape from memcached and memcached-rs (descriptor numbers and client ports differ).
#[test]
fn stats_conns_lists_every_socket() {
    for kind in [ServerKind::MemcachedRs, ServerKind::Memcached] {
        let udp = common::free_port();
        let server = Server::start(kind, &["-U", &udp.to_string()]);
        let mut idle = server.client();
        assert_eq!(idle.request("version"), "VERSION 1.6.38\r\n");
        let mut asker = server.client();
        let reply = asker.request("stats conns");
        let lines: Vec<&str> = reply.lines().collect();
        let port = server.port();
        let value = |suffix: &str, want: &str| {
            lines
                .iter()
                .filter(|l| l.starts_with("STAT ") && l.contains(suffix))
                .any(|l| l.ends_with(want))
        };
        let listener = format!("tcp:127.0.0.1:{port}");
        assert!(value(":addr ", &listener), "{}: {reply}", kind.name());
        assert!(
            value(":state ", "conn_listening"),
            "{}: {reply}",
            kind.name()
        );
        assert!(
            value(":addr ", &format!("udp:127.0.0.1:{udp}")),
            "{}: {reply}",
            kind.name()
        );
        assert!(value(":UDP ", "UDP"), "{}: {reply}", kind.name());
        assert!(
            value(":listen_addr ", &listener),
            "{}: {reply}",
            kind.name()
        );
        assert!(
            value(":state ", "conn_parse_cmd"),
            "{}: {reply}",
            kind.name()
        );
        // The harness's readiness probe may not have been reaped yet: at least ours are there.
        let clients = lines.iter().filter(|l| l.contains(":listen_addr ")).count();
        assert!(clients >= 2, "{}: {reply}", kind.name());
        assert_eq!(lines.last(), Some(&"END"));
    }
}

/// `-l ::1` with `-U`: UDP over IPv6 too, and `stats conns` naming the v6 sockets as memcached.
#[test]
fn udp_and_stats_conns_over_ipv6() {
    use std::io::{Read, Write};
    let port = common::free_port();
    let mut cmd = std::process::Command::new(common::memcached_rs_bin());
    cmd.args([
        "-l",
        "::1",
        "-p",
        &port.to_string(),
        "-U",
        &port.to_string(),
    ])
    .stdin(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    if common::running_as_root() {
        cmd.args(["-u", "root"]);
    }
    let mut child = cmd.spawn().expect("spawn");
    let addr: std::net::SocketAddr = format!("[::1]:{port}").parse().expect("addr");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut s = loop {
        match std::net::TcpStream::connect(addr) {
            Ok(s) => break s,
            Err(e) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no IPv6 listener: {e}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(b"set k 0 0 2\r\nv6\r\nstats conns\r\n")
        .expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(b"END\r\n") {
        let n = s.read(&mut buf).expect("read");
        assert!(n > 0, "closed");
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("STORED\r\n"), "{text}");
    assert!(
        text.contains(&format!(":addr tcp6:[::1]:{port}\r\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!(":addr udp6:[::1]:{port}\r\n")),
        "{text}"
    );
    // And over UDP on the same address.
    let u = std::net::UdpSocket::bind("[::1]:0").expect("udp");
    u.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    u.send_to(b"\x00\x07\x00\x00\x00\x01\x00\x00get k\r\n", addr)
        .expect("send");
    let n = u.recv(&mut buf).expect("udp reply");
    assert_eq!(
        &buf[..n],
        b"\x00\x07\x00\x00\x00\x01\x00\x00VALUE k 0 2\r\nv6\r\nEND\r\n"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// Only `cas` counts CAS outcomes: a binary append with a stale CAS id is refused (EXISTS)
/// without touching `cas_badval`, on both servers.
#[test]
fn binary_append_with_a_stale_cas_is_not_a_cas_miss() {
    use std::io::{Read, Write};
    fn frame(opcode: u8, key: &[u8], extras: &[u8], value: &[u8], cas: u64) -> Vec<u8> {
        let mut f = Vec::new();
        memcached_rs::protocol::binary::write_request(&mut f, opcode, key, extras, value, 0, cas)
            .expect("lengths fit the header");
        f
    }
    for kind in [ServerKind::MemcachedRs, ServerKind::Memcached] {
        let server = Server::start(kind, &[]);
        let mut s = std::net::TcpStream::connect(server.addr()).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut script = frame(0x01, b"k", &[0; 8], b"v", 0);
        script.extend(frame(0x0e, b"k", &[], b"x", 99));
        s.write_all(&script).expect("write");
        let mut got = vec![0u8; 24 + 24 + 20];
        s.read_exact(&mut got).expect("two responses");
        assert_eq!(&got[24 + 6..24 + 8], &[0, 2], "{}: EXISTS", kind.name());
        let stats = server.client().request("stats");
        assert!(
            stats.contains("STAT cas_badval 0\r\n"),
            "{}: {stats}",
            kind.name()
        );
    }
}

/// `stats` and `stats settings` name the same things in the same order as memcached 1.6.38
/// (values differ by nature: pids, times, sizes), under the defaults and under flags that make
/// lines appear or change. memcached alone prints `libevent`, the version of a library this
/// server does not use.
#[test]
fn stats_names_are_memcacheds_in_its_order() {
    let flag_sets: &[&[&str]] = &[
        &[],
        &["-o", "idle_timeout=3"],
        &["-C"],
        &["-X"],
        &["-A"],
        &["-M", "-R", "5", "-c", "100", "-t", "3"],
        &["-o", "track_sizes"],
        &["-o", "no_lru_crawler,no_lru_maintainer"],
        &["-o", "modern"],
        &["-o", "no_modern"],
    ];
    let mut differ = Vec::new();
    for flags in flag_sets {
        for command in ["stats", "stats settings"] {
            let [ours, theirs] = [ServerKind::MemcachedRs, ServerKind::Memcached].map(|kind| {
                let server = Server::start(kind, flags);
                let reply = server.client().request(command);
                reply
                    .lines()
                    .filter_map(|l| l.strip_prefix("STAT "))
                    .filter_map(|l| l.split(' ').next())
                    // memcached alone has libevent; this server alone reports its hot key
                    // sampling, after all of memcached's lines.
                    .filter(|name| *name != "libevent" && !name.starts_with("hotkeys"))
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            });
            assert!(theirs.len() > 50, "{command} {flags:?}: {theirs:?}");
            if ours != theirs {
                differ.push(format!(
                    "{command} {flags:?}:\n  ours   {ours:?}\n  theirs {theirs:?}"
                ));
            }
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}

/// `stats settings` under the defaults says what memcached 1.6.38's says, value for value,
/// but for the port (each server has its own) and the key hash (not one of memcached's), and
/// with this server's hot key sampling after memcached's lines.
#[test]
fn default_settings_are_memcacheds() {
    let [ours, theirs] = [ServerKind::MemcachedRs, ServerKind::Memcached].map(|kind| {
        let server = Server::start(kind, &[]);
        let reply = server.client().request("stats settings");
        reply
            .lines()
            .filter(|l| !l.starts_with("STAT tcpport ") && !l.starts_with("STAT hash_algorithm "))
            .filter(|l| !l.starts_with("STAT hotkeys"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    });
    assert!(theirs.len() > 50, "{theirs:?}");
    assert_eq!(ours, theirs);
}
