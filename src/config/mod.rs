//! Settings: memcached's defaults, overridden by `--config-file` and then by command-line flags.
//!
//! `Settings` is the one value the rest of the daemon reads its configuration from. It is built
//! once at start by [`from_args`] and never changes afterwards (runtime knobs such as
//! `verbosity` live in the daemon's shared state, not here).

mod args;
mod cli;
mod extended;
pub use extended::without_effect;
mod file;
mod help;
mod listen;

pub use args::{from_args, Invocation};
pub use help::{help_text, license_text};
pub use listen::{parse_listen, ListenSpec};

use std::fmt;
use std::path::PathBuf;

/// The protocol version we answer to `version` and report in `stats`: the memcached release whose
/// behaviour memcached-rs reproduces. Clients use it for feature detection, so it is memcached's
/// numbering, not this crate's.
pub const PROTOCOL_VERSION: &str = "1.6.38";

/// Which wire protocols a listener accepts (`-B`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Pick per connection from its first byte (0x80 means binary).
    Auto,
    /// Text protocol only (classic and meta commands).
    Ascii,
    /// Binary protocol only.
    Binary,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Auto => "auto-negotiate",
            Protocol::Ascii => "ascii",
            Protocol::Binary => "binary",
        })
    }
}

/// Every setting the daemon runs with. Field docs name the flag that sets each one.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `-p`: TCP port (0 = no TCP listener, -1 = one the kernel picks, as memcached's test
    /// suites ask for with `MEMCACHED_PORT_FILENAME`).
    pub port: i32,
    /// `-U`: UDP port (0 = off, -1 = one the kernel picks).
    pub udp_port: i32,
    /// `-l`: interfaces to listen on, in order; empty means every interface.
    pub listen: Vec<ListenSpec>,
    /// The `-l` values as given, joined as memcached joins them (for `stats settings` and
    /// error messages); `None` without `-l`.
    pub inter: Option<String>,
    /// `-s`: unix socket path (disables network listeners).
    pub unix_socket: Option<PathBuf>,
    /// `-a`: permission mask of the unix socket.
    pub unix_mask: u32,
    /// `-c`: simultaneous connections allowed.
    pub max_connections: usize,
    /// `-t`: worker threads.
    pub threads: usize,
    /// `-m`: item memory in bytes.
    pub memory_limit: usize,
    /// `-M` clears it: evict items when memory is full instead of refusing stores.
    pub evictions: bool,
    /// `-I`: largest item in bytes.
    pub item_size_max: usize,
    /// `-f`: slab class growth factor.
    pub growth_factor: f64,
    /// `-n`: minimum space for key + value + flags.
    pub chunk_size: usize,
    /// The slab class table: memcached's once `-n`, `-f`, `-o slab_chunk_max`, `slab_sizes`
    /// or `no_modern` is given, else the compact default.
    pub slab_classes: crate::cache::SlabClasses,
    /// `-R`: requests handled per connection per wake-up.
    pub reqs_per_event: usize,
    /// `-B`: protocol.
    pub protocol: Protocol,
    /// `-b`: listen backlog.
    pub backlog: i32,
    /// `-C` clears it: keep CAS ids.
    pub use_cas: bool,
    /// `-F` clears it: allow `flush_all`.
    pub flush_enabled: bool,
    /// `-A`: allow the `shutdown` command.
    pub shutdown_command: bool,
    /// `-v`, `-vv`, `-vvv`: verbosity at start.
    pub verbose: u32,
    /// `-d`: run as a daemon.
    pub daemonize: bool,
    /// `-P`: pid file.
    pub pid_file: Option<PathBuf>,
    /// `-u`: user to run as when started as root.
    pub user: Option<String>,
    /// `-k`: lock all paged memory.
    pub lock_memory: bool,
    /// `-r`: raise the core file limit.
    pub core_dumps: bool,
    /// `-L`: try large memory pages.
    pub large_pages: bool,
    /// `-e`: memory file for a restartable cache.
    pub memory_file: Option<PathBuf>,
    /// `-S`: SASL authentication.
    pub sasl: bool,
    /// The SASL password file (`user:password` lines), from the `MEMCACHED_SASL_PWDB`
    /// environment variable as memcached reads it.
    pub sasl_pwdb: Option<PathBuf>,
    /// `-Y`: ASCII authentication file.
    pub auth_file: Option<PathBuf>,
    /// `-X` clears it: allow `stats cachedump` and `lru_crawler metadump`.
    pub dump_enabled: bool,
    /// `-W` clears it: allow `watch`.
    pub watch_enabled: bool,
    /// `-o idle_timeout`: seconds before an idle connection is closed (0 = never).
    pub idle_timeout: u32,
    /// `-o hotkeys=N|on|off`: sample 1 request in N for `stats hotkeys` (0 = off).
    pub hotkeys_sample: u32,
    /// `-o watcher_logbuf_size` (given in KB): bytes a `watch` client may have unsent.
    pub watcher_logbuf_size: usize,
    /// `-o worker_logbuf_size` (given in KB): bytes of events a worker may have queued.
    pub worker_logbuf_size: usize,
    /// `-o read_buf_mem_limit` (given in MB): memcached's cap on read buffer memory (0: none).
    pub read_buf_mem_limit: usize,
    /// `-o hashpower`: initial hash table size as a power of two (0 = default).
    pub hashpower_init: u32,
    /// `-o slab_chunk_max`: largest slab chunk in bytes.
    pub slab_chunk_max: usize,
    /// `-o lru_crawler` / `no_lru_crawler`.
    pub lru_crawler: bool,
    /// `-o maxconns_fast` / `no_maxconns_fast`.
    pub maxconns_fast: bool,
    /// `-o track_sizes`.
    pub track_sizes: bool,
    /// `-o slab_automove`: 0, 1 (memcached's default) or 2.
    pub slab_automove: u8,
    /// `-o slab_automove_ratio` (memcached's default 0.8).
    pub slab_automove_ratio: f64,
    /// `-o slab_automove_window` (memcached 1.6.38's default 10).
    pub slab_automove_window: u32,
    /// `-o lru_maintainer`, `hot_lru_pct`, `temporary_ttl` …: the segmented LRU's settings.
    pub lru: crate::cache::LruSettings,
    /// `-o slab_reassign` / `no_slab_reassign`: allow `slabs reassign`.
    pub slab_reassign: bool,
    /// `-o lru_crawler_sleep`: microseconds the crawler pauses every 1000 items.
    pub lru_crawler_sleep: u32,
    /// `-o lru_crawler_tocrawl`: items checked per class per crawl (0 = all).
    pub lru_crawler_tocrawl: u32,
    /// `logfile PATH` in the config file: where the log goes instead of stderr.
    pub logfile: Option<PathBuf>,
    /// Options that were accepted but have no effect in memcached-rs; the daemon
    /// logs each one at start so nothing is silently ignored.
    pub not_implemented: Vec<String>,
    /// `-D`: delimiter between key prefix and id for per-prefix stats (also turns them on).
    pub prefix_delimiter: Option<char>,
    /// `-Z`: TLS on the listeners (except `-l notls:…` ones).
    pub tls: bool,
    /// `-o ssl_*`: the TLS configuration.
    pub ssl: TlsSettings,
    /// Start-up warnings memcached prints to stderr without refusing to start (for example
    /// `-t 65`); the daemon should print them once logging is set up. Each may span lines.
    pub warnings: Vec<String>,
}

/// `-o ssl_*`: memcached's TLS options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// `ssl_chain_cert`: the server's certificate chain (PEM).
    pub chain_cert: Option<PathBuf>,
    /// `ssl_key`: its private key.
    pub key: Option<PathBuf>,
    /// `ssl_keyformat`: 1 PEM (OpenSSL's `SSL_FILETYPE_PEM`), 2 DER (`SSL_FILETYPE_ASN1`).
    pub key_format: u32,
    /// `ssl_verify_mode`: 0 none, 1 request a client certificate, 2 require one, 3 request it
    /// once (there is no renegotiation here, so 3 is 1).
    pub verify_mode: u32,
    /// `ssl_ca_cert`: the CAs client certificates must chain to (PEM).
    pub ca_cert: Option<PathBuf>,
    /// `ssl_ciphers`: an OpenSSL cipher list; recorded and shown, not applied (rustls offers
    /// only its own modern suites).
    pub ciphers: Option<String>,
    /// `ssl_min_version`: `tlsv1.2` or `tlsv1.3` (older ones are taken as 1.2, the lowest
    /// this server speaks).
    pub min_version: String,
    /// `ssl_wbuf_size` (given in KB): memcached's TLS write buffer.
    pub wbuf_size: usize,
    /// `ssl_session_cache`: keep server-side sessions for resumption.
    pub session_cache: bool,
    /// `ssl_kernel_tls`: recorded only.
    pub kernel_tls: bool,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            chain_cert: None,
            key: None,
            key_format: 1,
            verify_mode: 0,
            ca_cert: None,
            ciphers: None,
            min_version: "tlsv1.2".into(),
            wbuf_size: 16 * 1024,
            session_cache: false,
            kernel_tls: false,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            port: 11211,
            udp_port: 0,
            listen: Vec::new(),
            inter: None,
            unix_socket: None,
            unix_mask: 0o700,
            max_connections: 1024,
            threads: 4,
            memory_limit: 64 * 1024 * 1024,
            evictions: true,
            item_size_max: 1024 * 1024,
            growth_factor: 1.25,
            chunk_size: 48,
            slab_classes: crate::cache::SlabClasses::default(),
            reqs_per_event: 20,
            protocol: Protocol::Auto,
            backlog: 1024,
            use_cas: true,
            flush_enabled: true,
            shutdown_command: false,
            verbose: 0,
            daemonize: false,
            pid_file: None,
            user: None,
            lock_memory: false,
            core_dumps: false,
            large_pages: false,
            memory_file: None,
            sasl: false,
            sasl_pwdb: None,
            auth_file: None,
            dump_enabled: true,
            watch_enabled: true,
            idle_timeout: 0,
            hotkeys_sample: crate::hotkeys::DEFAULT_SAMPLE,
            watcher_logbuf_size: crate::watch::DEFAULT_WATCHER_BUF,
            worker_logbuf_size: crate::watch::DEFAULT_WORKER_BUF,
            read_buf_mem_limit: 0,
            hashpower_init: 0,
            slab_chunk_max: 512 * 1024,
            lru_crawler: true,
            maxconns_fast: true,
            track_sizes: false,
            slab_automove: 1,
            slab_automove_ratio: 0.8,
            slab_automove_window: 10,
            lru: crate::cache::LruSettings::default(),
            slab_reassign: true,
            lru_crawler_sleep: 100,
            lru_crawler_tocrawl: 0,
            logfile: None,
            not_implemented: Vec::new(),
            prefix_delimiter: None,
            tls: false,
            ssl: TlsSettings::default(),
            warnings: Vec::new(),
        }
    }
}

/// sysexits.h statuses, the ones memcached exits with plus two for config-file trouble.
pub(crate) const EX_USAGE: u8 = 64;
pub(crate) const EX_NOINPUT: u8 = 66;
pub(crate) const EX_OSERR: u8 = 71;
pub(crate) const EX_CONFIG: u8 = 78;

/// Why the settings could not be built: the exact text memcached prints to stderr (without the
/// final newline; it may span several lines) and the exit status it exits with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    message: String,
    code: u8,
}

impl ConfigError {
    /// An error with the given stderr text and exit status.
    pub fn new(message: impl Into<String>, exit_code: u8) -> Self {
        ConfigError {
            message: message.into(),
            code: exit_code,
        }
    }

    /// The text to print on stderr (no trailing newline).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The process exit status memcached uses for this error.
    pub fn exit_code(&self) -> u8 {
        self.code
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}
