//! TLS (`-Z`): memcached-rs and memcached 1.6.38 started with the same certificates (made here
//! with the `openssl` command) must answer the same over TLS, refuse the same clients, and
//! report the same settings.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::{Server, ServerKind};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

const BOTH: [ServerKind; 2] = [ServerKind::MemcachedRs, ServerKind::Memcached];

/// A CA, a server certificate for 127.0.0.1 and a client certificate, made once per run.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (make test installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes `name.crt`/`name.key` signed by the CA, for `subject`, with `ext` extensions.
fn issue(dir: &Path, name: &str, subject: &str, ext: &str) {
    let (key, csr, crt, cnf) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
        format!("{name}.cnf"),
    );
    std::fs::write(dir.join(&cnf), ext).expect("extension file");
    openssl(
        dir,
        &[
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", subject,
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "3650",
            "-extfile",
            &cnf,
        ],
    );
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        // Under target/ (one fixed directory, rewritten each run), not a new one in /tmp per run.
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("tls-pki");
        std::fs::create_dir_all(&dir).expect("certificate directory");
        openssl(
            &dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "3650",
                "-subj",
                "/CN=memcached-rs test CA",
            ],
        );
        issue(
            &dir,
            "server",
            "/CN=localhost",
            "subjectAltName=IP:127.0.0.1\n",
        );
        issue(&dir, "other", "/CN=other", "subjectAltName=IP:127.0.0.1\n");
        issue(
            &dir,
            "client",
            "/CN=client",
            "extendedKeyUsage=clientAuth\n",
        );
        Pki { dir }
    })
}

/// `-Z` with the test PKI, plus `extra` options appended to `-o`.
fn tls_args(extra: &str) -> Vec<String> {
    let p = pki();
    let mut o = format!(
        "ssl_chain_cert={},ssl_key={},ssl_ca_cert={}",
        p.path("server.crt"),
        p.path("server.key"),
        p.path("ca.crt")
    );
    if !extra.is_empty() {
        o.push(',');
        o.push_str(extra);
    }
    vec!["-Z".into(), "-o".into(), o]
}

/// Starts `kind` with `args` (its readiness probe only connects, which TLS listeners allow).
fn start(kind: ServerKind, args: &[String]) -> Server {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(kind, &args)
}

/// Runs `kind` with `args` on a free port until it exits (it is expected to refuse them):
/// its exit code and stderr.
fn run_to_exit(kind: ServerKind, args: &[String]) -> (Option<i32>, String) {
    let mut command = kind.command();
    command
        .args(common::base_args(common::free_port()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{} {args:?} did not exit", kind.name());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().expect("output");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `ssl_handshake_errors` from `stats` over a TLS connection.
fn handshake_errors(addr: SocketAddr) -> u64 {
    let mut t = connect(addr, false).expect("TLS handshake");
    let stats = String::from_utf8_lossy(&exchange(&mut t, b"stats\r\n", b"END\r\n")).into_owned();
    stats
        .lines()
        .find_map(|l| l.strip_prefix("STAT ssl_handshake_errors "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no ssl_handshake_errors in {stats}"))
}

fn client_config(with_client_cert: bool) -> Arc<rustls::ClientConfig> {
    let p = pki();
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(p.path("ca.crt")).expect("ca") {
        roots.add(ca.expect("ca cert")).expect("add ca");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let config = if with_client_cert {
        let certs = CertificateDer::pem_file_iter(p.path("client.crt"))
            .expect("client cert")
            .collect::<Result<Vec<_>, _>>()
            .expect("client cert");
        let key = PrivateKeyDer::from_pem_file(p.path("client.key")).expect("client key");
        builder
            .with_client_auth_cert(certs, key)
            .expect("client auth")
    } else {
        builder.with_no_client_auth()
    };
    Arc::new(config)
}

type TlsClient = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Connects and completes the handshake (a server that refuses shows as an error here).
fn connect(addr: SocketAddr, with_client_cert: bool) -> std::io::Result<TlsClient> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    let conn = rustls::ClientConnection::new(client_config(with_client_cert), name)
        .map_err(std::io::Error::other)?;
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

/// Sends `request` and reads until the reply ends with `end`.
fn exchange(c: &mut TlsClient, request: &[u8], end: &[u8]) -> Vec<u8> {
    c.write_all(request).expect("write over TLS");
    c.flush().expect("flush");
    let mut got = Vec::new();
    let mut buf = [0u8; 16384];
    while !got.ends_with(end) {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read over TLS: {e}; got {}", String::from_utf8_lossy(&got)),
        }
    }
    got
}

/// `stats` lines whose values change on their own are masked; `stats settings` paths are the
/// same for both servers.
fn masked(reply: &[u8]) -> String {
    String::from_utf8_lossy(reply)
        .lines()
        .filter(|l| l.starts_with("STAT ssl_") || !l.starts_with("STAT "))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn commands_over_tls_answer_as_memcached() {
    // memcached holds the replies of earlier commands while it waits for a value, so the big
    // set goes in a request of its own.
    let script: &[u8] = b"set a 0 0 5\r\nhello\r\nget a\r\nmg a v\r\nincr a 1\r\n";
    let set_big = [&b"set big 0 0 100000\r\n"[..], &[b'x'; 100_000], b"\r\n"].concat();
    let [ours, theirs] = BOTH.map(|kind| {
        let server = start(kind, &tls_args(""));
        let mut c = connect(server.addr(), false).expect("TLS handshake");
        let mut got = exchange(&mut c, script, b"non-numeric value\r\n");
        got.extend(exchange(&mut c, &set_big, b"STORED\r\n"));
        got.extend(exchange(&mut c, b"get big\r\n", b"END\r\n"));
        got.extend(exchange(&mut c, b"stats settings\r\n", b"END\r\n"));
        // The TLS counters (`ssl_handshake_errors`, `ssl_proto_errors`), by name and order.
        let stats = exchange(&mut c, b"stats\r\n", b"END\r\n");
        for line in String::from_utf8_lossy(&stats).lines() {
            if let Some(name) = line.strip_prefix("STAT ssl_") {
                got.extend_from_slice(
                    format!("ssl_{}\n", name.split(' ').next().unwrap_or("")).as_bytes(),
                );
            }
        }
        masked(&got)
    });
    assert!(theirs.contains("STAT ssl_enabled yes"), "{theirs}");
    assert_eq!(ours, theirs);
}

#[test]
fn plain_text_clients_are_refused_on_tls_listeners() {
    for kind in BOTH {
        let server = start(kind, &tls_args(""));
        let before = handshake_errors(server.addr());
        let mut c = server.client();
        c.send(b"version\r\n");
        let (got, _) = c.read_to_close(Duration::from_secs(5));
        assert!(got.is_empty(), "{}: {got:?}", kind.name());
        // memcached-rs counts the refusal in `ssl_handshake_errors` (memcached counts
        // only some handshake failures; which ones depends on OpenSSL's error class).
        if kind == ServerKind::MemcachedRs {
            // At least ours: the start-up probe (a connect, then a close) may be counted late.
            assert!(handshake_errors(server.addr()) > before);
        }
    }
}

#[test]
fn notls_listeners_stay_plain() {
    for kind in BOTH {
        let plain = common::free_port();
        let secure = common::free_port();
        let mut args = tls_args("");
        args.extend([
            "-l".to_string(),
            format!("notls:127.0.0.1:{plain},127.0.0.1:{secure}"),
        ]);
        let server = start(kind, &args);
        let plain_addr = SocketAddr::from(([127, 0, 0, 1], plain));
        let secure_addr = SocketAddr::from(([127, 0, 0, 1], secure));
        let mut c = common::Client::connect(plain_addr);
        assert!(
            c.request("version").starts_with("VERSION "),
            "{}",
            kind.name()
        );
        let mut t = connect(secure_addr, false).expect("TLS on the other listener");
        assert!(exchange(&mut t, b"version\r\n", b"\r\n").starts_with(b"VERSION "));
        drop(server);
    }
}

#[test]
fn verify_mode_2_requires_a_client_certificate() {
    for kind in BOTH {
        let server = start(kind, &tls_args("ssl_verify_mode=2"));
        let mut with = connect(server.addr(), true).expect("handshake with a certificate");
        assert!(exchange(&mut with, b"version\r\n", b"\r\n").starts_with(b"VERSION "));
        // Without one the handshake (TLS 1.3: the first read after it) fails.
        let refused = connect(server.addr(), false).and_then(|mut c| {
            c.write_all(b"version\r\n")?;
            let mut buf = [0u8; 64];
            match c.read(&mut buf)? {
                0 => Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => Ok(buf[..n].to_vec()),
            }
        });
        assert!(refused.is_err(), "{}: {refused:?}", kind.name());
    }
}

#[test]
fn verify_mode_1_asks_but_does_not_require() {
    for kind in BOTH {
        let server = start(kind, &tls_args("ssl_verify_mode=1"));
        for with_cert in [true, false] {
            let mut c = connect(server.addr(), with_cert).expect("handshake");
            assert!(exchange(&mut c, b"version\r\n", b"\r\n").starts_with(b"VERSION "));
        }
    }
}

#[test]
fn refresh_certs_loads_new_files_for_new_connections() {
    let p = pki();
    let dir = p.dir.join(format!("refresh-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    for kind in BOTH {
        let (crt, key) = (dir.join("live.crt"), dir.join("live.key"));
        std::fs::copy(p.dir.join("server.crt"), &crt).expect("copy");
        std::fs::copy(p.dir.join("server.key"), &key).expect("copy");
        let args = vec![
            "-Z".to_string(),
            "-o".into(),
            format!("ssl_chain_cert={},ssl_key={}", crt.display(), key.display()),
        ];
        let server = start(kind, &args);
        let mut c = connect(server.addr(), false).expect("handshake");
        std::fs::copy(p.dir.join("other.crt"), &crt).expect("copy");
        std::fs::copy(p.dir.join("other.key"), &key).expect("copy");
        assert_eq!(
            exchange(&mut c, b"refresh_certs\r\n", b"\r\n"),
            b"OK\r\n",
            "{}",
            kind.name()
        );
        let fresh = connect(server.addr(), false).expect("handshake after the refresh");
        let subject = fresh
            .conn
            .peer_certificates()
            .and_then(|c| c.first().cloned())
            .expect("a server certificate");
        assert!(
            subject.windows(5).any(|w| w == b"other"),
            "{}: the new connection did not get the new certificate",
            kind.name()
        );
        // A broken file: the old configuration stays, the error is reported.
        std::fs::write(&crt, b"not a certificate").expect("write");
        let reply = exchange(&mut c, b"refresh_certs noreply\r\n", b"\r\n");
        assert!(
            reply.starts_with(b"Error loading the certificate chain: "),
            "{}: {}",
            kind.name(),
            String::from_utf8_lossy(&reply)
        );
        assert!(connect(server.addr(), false).is_ok());
    }
}

#[test]
fn refresh_certs_without_tls_is_an_error() {
    let [ours, theirs] = BOTH.map(|kind| {
        let server = Server::start(kind, &[]);
        let mut c = server.client();
        c.send(b"refresh_certs\r\nrefresh_certs noreply\r\nversion\r\n");
        String::from_utf8_lossy(&c.read_until_contains(b"VERSION ")).into_owned()
    });
    assert_eq!(ours, theirs);
    assert!(ours.starts_with("Error TLS not enabled\r\n"));
}

#[test]
fn openssl_s_client_talks_to_it() {
    let server = start(ServerKind::MemcachedRs, &tls_args(""));
    let mut child = Command::new("openssl")
        .args(["s_client", "-quiet", "-verify_return_error", "-CAfile"])
        .arg(pki().path("ca.crt"))
        .arg("-connect")
        .arg(server.addr().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_client");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(b"set s 0 0 2\r\nok\r\nget s\r\nquit\r\n")
        .expect("write");
    let out = child.wait_with_output().expect("s_client output");
    drop(stdin);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "STORED\r\nVALUE s 0 2\r\nok\r\nEND\r\n"
    );
}

#[test]
fn bad_tls_options_are_refused_as_memcached_refuses_them() {
    let p = pki();
    let cases = [
        vec!["-Z".to_string()],
        vec![
            "-Z".to_string(),
            "-o".into(),
            format!(
                "ssl_chain_cert={},ssl_key={}",
                p.path("server.crt"),
                p.path("nope.key")
            ),
        ],
        vec![
            "-Z".to_string(),
            "-o".into(),
            format!("ssl_chain_cert={}", p.path("server.crt")),
        ],
        vec!["-o".to_string(), "ssl_verify_mode=5".into()],
        vec!["-o".to_string(), "ssl_min_version=tlsv1.4".into()],
    ];
    for args in cases {
        let [ours, theirs] = BOTH.map(|kind| run_to_exit(kind, &args));
        assert_eq!(ours.0, theirs.0, "exit status for {args:?}");
        // The first words of the message (the reason after it is OpenSSL's or rustls's).
        let head = |s: &str| {
            s.lines()
                .last()
                .unwrap_or("")
                .split(" : ")
                .next()
                .unwrap_or("")
                .to_string()
        };
        assert_eq!(
            head(&ours.1),
            head(&theirs.1),
            "{args:?}: {ours:?} vs {theirs:?}"
        );
    }
}

#[test]
fn sockets_passed_by_systemd_speak_tls_under_z() {
    let port = common::free_port();
    let mut args = vec![
        "-l".to_string(),
        format!("127.0.0.1:{port}"),
        common::memcached_rs_bin().display().to_string(),
        "-p".into(),
        common::free_port().to_string(),
        "-U".into(),
        "0".into(),
    ];
    args.extend(tls_args(""));
    if common::running_as_root() {
        args.extend(["-u".to_string(), "root".to_string()]);
    }
    let mut child = Command::new("/usr/bin/systemd-socket-activate")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("systemd-socket-activate");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing listens on {addr}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut t = connect(addr, false).expect("TLS on the passed socket");
    assert!(exchange(&mut t, b"version\r\n", b"\r\n").starts_with(b"VERSION "));
    let mut plain = common::Client::connect(addr);
    plain.send(b"version\r\n");
    let (got, _) = plain.read_to_close(Duration::from_secs(5));
    assert!(
        got.is_empty(),
        "plain text answered on a passed -Z socket: {got:?}"
    );
    let _ = child.kill();
    let _ = child.wait();
}
