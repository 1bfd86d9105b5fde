//! TLS (`-Z`): memcached's `ssl_*` options on rustls, and a non-blocking TLS stream the
//! connection code can read and write like a socket.
//!
//! The stream never blocks: reads pull what the socket has into rustls and hand back plaintext
//! (a would-block read means rustls has nothing decrypted *and* the socket is drained), writes
//! go into a bounded rustls buffer that is pushed to the socket as far as it takes, and
//! [`TlsStream::flush_pending`] tells whether anything encrypted still waits for the socket.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig, ServerConnection};

use crate::config::TlsSettings;

/// Plaintext rustls may hold for a connection before writes report would-block.
const PLAINTEXT_LIMIT: usize = 64 * 1024;

/// The server's TLS configuration, replaceable at run time (`refresh_certs`).
#[derive(Debug)]
pub struct Tls {
    settings: TlsSettings,
    config: RwLock<Arc<ServerConfig>>,
    refreshed: RwLock<Instant>,
    handshake_errors: Arc<AtomicU64>,
    proto_errors: Arc<AtomicU64>,
}

impl Tls {
    /// Loads the certificates and key `settings` name. The error is memcached's message.
    pub fn new(settings: &TlsSettings) -> Result<Tls, String> {
        Ok(Tls {
            settings: settings.clone(),
            config: RwLock::new(Arc::new(load(settings)?)),
            refreshed: RwLock::new(Instant::now()),
            handshake_errors: Arc::new(AtomicU64::new(0)),
            proto_errors: Arc::new(AtomicU64::new(0)),
        })
    }

    /// `refresh_certs`: reads the files again; new connections use them, open ones keep theirs.
    pub fn refresh(&self) -> Result<(), String> {
        let config = Arc::new(load(&self.settings)?);
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = config;
        *self.refreshed.write().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        Ok(())
    }

    /// Starts the server side of a TLS session on an accepted socket.
    pub fn accept(&self, tcp: TcpStream) -> io::Result<TlsStream> {
        let config = Arc::clone(&self.config.read().unwrap_or_else(|e| e.into_inner()));
        let mut conn = ServerConnection::new(config).map_err(io::Error::other)?;
        conn.set_buffer_limit(Some(PLAINTEXT_LIMIT));
        Ok(TlsStream {
            tcp,
            conn,
            handshake_errors: Arc::clone(&self.handshake_errors),
            proto_errors: Arc::clone(&self.proto_errors),
        })
    }

    /// `stats`: `ssl_handshake_errors`.
    pub fn handshake_errors(&self) -> u64 {
        self.handshake_errors.load(Ordering::Relaxed)
    }

    /// `stats`: `ssl_proto_errors` (memcached 1.6.38): sessions ended by a fatal TLS error
    /// after their handshake.
    pub fn proto_errors(&self) -> u64 {
        self.proto_errors.load(Ordering::Relaxed)
    }

    /// `stats`: `time_since_server_cert_refresh`, in seconds.
    pub fn since_refresh(&self) -> u64 {
        self.refreshed
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
            .as_secs()
    }
}

/// Builds the rustls configuration from memcached's options, failing with memcached's messages
/// (the reason after the last colon is rustls's or the system's, not OpenSSL's).
fn load(s: &TlsSettings) -> Result<ServerConfig, String> {
    let shown = |p: Option<&Path>| p.map_or_else(|| "(null)".into(), |p| p.display().to_string());
    let chain_path = s.chain_cert.as_deref();
    let chain = chain_path
        .ok_or_else(|| "no such file".to_string())
        .and_then(read_certs)
        .map_err(|e| {
            format!(
                "Error loading the certificate chain: {} : {e}",
                shown(chain_path)
            )
        })?;
    // memcached's help says the key may be part of the chain file, but 1.6.18 loads it from
    // ssl_key alone.
    let key_path = s.key.as_deref();
    let key_error = |e: String| format!("Error loading the key: {} : {e}", shown(key_path));
    let key = key_path
        .ok_or_else(|| "no such file".to_string())
        .and_then(|p| read_key(p, s.key_format))
        .map_err(key_error)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if s.min_version == "tlsv1.3" {
        &[&rustls::version::TLS13]
    } else {
        rustls::ALL_VERSIONS
    };
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .map_err(|e| format!("Error setting the TLS versions: {e}"))?;
    let builder = if s.verify_mode == 0 {
        builder.with_no_client_auth()
    } else {
        let ca_path = s.ca_cert.as_deref();
        let ca_error = |e: String| {
            format!(
                "Error loading the CA certificate: {} : {e}",
                shown(ca_path).replace("(null)", "NULL")
            )
        };
        let mut roots = RootCertStore::empty();
        let cas = ca_path
            .ok_or_else(|| "ssl_verify_mode needs ssl_ca_cert".to_string())
            .and_then(read_certs)
            .map_err(ca_error)?;
        for ca in cas {
            roots.add(ca).map_err(|e| ca_error(e.to_string()))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        // 2 demands a certificate; 1 and 3 ask for one and check it if given.
        let verifier = if s.verify_mode == 2 {
            verifier
        } else {
            verifier.allow_unauthenticated()
        };
        builder.with_client_cert_verifier(verifier.build().map_err(|e| ca_error(e.to_string()))?)
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| key_error(e.to_string()))?;
    if !s.session_cache {
        config.session_storage = Arc::new(NoServerSessionStorage {});
    }
    Ok(config)
}

/// The certificates of a PEM file (at least one).
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no certificate in the file".into());
    }
    Ok(certs)
}

/// The private key: PEM (`ssl_keyformat=1`) or DER (2).
fn read_key(path: &Path, format: u32) -> Result<PrivateKeyDer<'static>, String> {
    if format == 2 {
        let der = std::fs::read(path).map_err(|e| e.to_string())?;
        PrivateKeyDer::try_from(der).map_err(|e| e.to_string())
    } else {
        PrivateKeyDer::from_pem_file(path).map_err(|e| e.to_string())
    }
}

/// A TLS session over a non-blocking TCP socket.
#[derive(Debug)]
pub struct TlsStream {
    tcp: TcpStream,
    conn: ServerConnection,
    handshake_errors: Arc<AtomicU64>,
    proto_errors: Arc<AtomicU64>,
}

impl TlsStream {
    /// The socket under the session.
    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Moves encrypted output to the socket. `Ok(true)` when nothing is left waiting for it.
    pub fn flush_pending(&mut self) -> io::Result<bool> {
        match self.push() {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Ends the session: close_notify, then the socket's sending side.
    pub fn close(&mut self) -> io::Result<()> {
        self.conn.send_close_notify();
        // A full socket may refuse the alert; the end of the stream still goes out.
        let pushed = self.push();
        self.tcp.shutdown(std::net::Shutdown::Write)?;
        pushed
    }

    fn push(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut self.tcp)? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }
}

impl Read for TlsStream {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.conn.reader().read(out) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The peer closed without close_notify: an ordinary close for a cache.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if self.conn.read_tls(&mut self.tcp)? == 0 {
                // memcached counts a client gone before the handshake ended as a failed one.
                if self.conn.is_handshaking() {
                    self.handshake_errors.fetch_add(1, Ordering::Relaxed);
                }
                return Ok(0);
            }
            if let Err(e) = self.conn.process_new_packets() {
                if self.conn.is_handshaking() {
                    // A client that is not speaking TLS gets a close and nothing else, as
                    // from memcached.
                    self.handshake_errors.fetch_add(1, Ordering::Relaxed);
                } else {
                    self.proto_errors.fetch_add(1, Ordering::Relaxed);
                    // Send the alert rustls queued, if the socket takes it.
                    let _ = self.push();
                }
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            // Handshake messages go out as soon as they are made.
            match self.push() {
                Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
                _ => {}
            }
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self.push() {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
            _ => {}
        }
        let n = self.conn.writer().write(data)?;
        match self.push() {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
            _ => {}
        }
        if n == 0 && !data.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.push()
    }
}
