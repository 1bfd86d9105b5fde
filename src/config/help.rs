//! `-h` and `-i` texts.

use super::Settings;

/// The `-h` text: memcached's layout and wording, naming memcached-rs, listing every flag we
/// accept and the `-o` options we implement. Defaults are taken from [`Settings::default`] so
/// the text cannot drift from them. Ends with a newline.
pub fn help_text() -> String {
    let d = Settings::default();
    let enabled = |b: bool| if b { "enabled" } else { "disabled" };
    let lines = vec![
        format!("memcached-rs {}", env!("CARGO_PKG_VERSION")),
        format!("-p, --port=<num>          TCP port to listen on (default: {})", d.port),
        format!(
            "-U, --udp-port=<num>      UDP port to listen on (default: {}, off)",
            d.udp_port
        ),
        "-s, --unix-socket=<file>  UNIX socket to listen on (disables network support)".into(),
        format!(
            "-a, --unix-mask=<mask>    access mask for UNIX socket, in octal (default: {:o})",
            d.unix_mask
        ),
        "-A, --enable-shutdown     enable ascii \"shutdown\" command".into(),
        "-l, --listen=<addr>       interface to listen on (default: INADDR_ANY)".into(),
        "                          <addr> is host, host:port, [ipv6]:port or *; several may".into(),
        "                          be given, separated by ',' or ';' or by repeating -l".into(),
        "-d, --daemon              run as a daemon".into(),
        "-r, --enable-coredumps    maximize core file limit".into(),
        "-u, --user=<user>         assume identity of <username> (only when run as root)".into(),
        format!(
            "-m, --memory-limit=<num>  item memory in megabytes (default: {})",
            d.memory_limit / (1024 * 1024)
        ),
        "-M, --disable-evictions   return error on memory exhausted instead of evicting".into(),
        format!(
            "-c, --conn-limit=<num>    max simultaneous connections (default: {})",
            d.max_connections
        ),
        "-k, --lock-memory         lock down all paged memory".into(),
        "-v, --verbose             verbose (print errors/warnings while in event loop)".into(),
        "-vv                       very verbose (also print client commands/responses)".into(),
        "-vvv                      extremely verbose (internal state transitions)".into(),
        "-h, --help                print this help and exit".into(),
        "-i, --license             print the license and exit".into(),
        "-V, --version             print version and exit".into(),
        "-P, --pidfile=<file>      save PID in <file>, only used with -d option".into(),
        format!(
            "-f, --slab-growth-factor=<num> chunk size growth factor (default: {:.2})",
            d.growth_factor
        ),
        format!(
            "-n, --slab-min-size=<bytes> min space used for key+value+flags (default: {})",
            d.chunk_size
        ),
        "-L, --enable-largepages  try to use large memory pages (if available)".into(),
        "-D <char>     Use <char> as the delimiter between key prefixes and IDs.".into(),
        "              This is used for per-prefix stats reporting. The default is".into(),
        "              \":\" (colon). If this option is specified, stats collection".into(),
        "              is turned on automatically; if not, then it may be turned on".into(),
        "              by sending the \"stats detail on\" command to the server.".into(),
        format!(
            "-t, --threads=<num>       number of threads to use (default: {})",
            d.threads
        ),
        "-R, --max-reqs-per-event  maximum number of requests per event, limits the".into(),
        "                          requests processed per connection to prevent".into(),
        format!("                          starvation (default: {})", d.reqs_per_event),
        "-C, --disable-cas         disable use of CAS".into(),
        format!(
            "-b, --listen-backlog=<num> set the backlog queue limit (default: {})",
            d.backlog
        ),
        format!(
            "-B, --protocol=<name>     protocol - one of ascii, binary, or auto (default: {})",
            d.protocol
        ),
        "-I, --max-item-size=<num> adjusts max item size".into(),
        "                          (default: 1m, min: 1k, max: 1024m)".into(),
        "-S, --enable-sasl         turn on Sasl authentication".into(),
        "-F, --disable-flush-all   disable flush_all command".into(),
        "-X, --disable-dumping     disable stats cachedump, stats detail, and lru_crawler metadump".into(),
        "-W, --disable-watch       disable watch commands (live logging)".into(),
        "-Y, --auth-file=<file>    (EXPERIMENTAL) enable ASCII protocol authentication. format:"
            .into(),
        "                          user:pass\\nuser2:pass2\\n".into(),
        "-e, --memory-file=<file>  (EXPERIMENTAL) mmap a file for item memory.".into(),
        "                          use only in ram disks or persistent memory mounts!".into(),
        "                          enables restartable cache (stop with SIGUSR1)".into(),
        "-Z, --enable-ssl          enable TLS/SSL".into(),
        "-N, --napi-ids=<num>      number of napi ids".into(),
        "    --config-file=<file>  read options from <file> first, one per line as in".into(),
        "                          /etc/memcached.conf ('#' comments, 'logfile <path>');".into(),
        "                          options on the command line override the file's".into(),
        "-o, --extended            comma separated list of extended options".into(),
        "                          most options have a 'no_' prefix to disable".into(),
        format!(
            "   - maxconns_fast:       immediately close new connections after limit (default: {})",
            enabled(d.maxconns_fast)
        ),
        "   - hashpower:           an integer multiplier for how large the hash".into(),
        "                          table should be. normally grows at runtime. (default starts at: 0)"
            .into(),
        "                          set based on \"STAT hash_power_level\"".into(),
        "   - no_lru_crawler:      disable LRU Crawler background thread.".into(),
        format!(
            "   - idle_timeout:        timeout for idle connections. (default: {}, no timeout)",
            d.idle_timeout
        ),
        format!(
            "   - hotkeys:             sample 1 request in N for 'stats hotkeys' (N, on or off; default: {})",
            d.hotkeys_sample
        ),
        format!(
            "   - slab_chunk_max:      (EXPERIMENTAL) maximum slab size in kilobytes. use extreme care. (default: {})",
            d.slab_chunk_max / 1024
        ),
        "   - track_sizes:         enable dynamic reports for 'stats sizes' command.".into(),
        format!(
            "   - lru_maintainer:      keep the segmented LRU (hot/warm/cold) moving (default: {}; no_lru_maintainer flattens it)",
            enabled(d.lru.maintainer)
        ),
        format!(
            "   - hot_lru_pct:         share of a class's items kept in hot (default: {})",
            d.lru.hot_pct
        ),
        format!(
            "   - warm_lru_pct:        share of a class's items kept in warm (default: {})",
            d.lru.warm_pct
        ),
        format!(
            "   - hot_max_factor:      items older than this times cold's tail age leave hot (default: {:.2})",
            d.lru.hot_max_factor
        ),
        format!(
            "   - warm_max_factor:     the same for warm (default: {:.2})",
            d.lru.warm_max_factor
        ),
        "   - temporary_ttl:       items with a TTL up to this many seconds go to the temporary LRU".into(),
        format!(
            "   - lru_crawler_sleep:   microseconds the crawler pauses every 1000 items (default: {})",
            d.lru_crawler_sleep
        ),
        "   - lru_crawler_tocrawl: items checked per class per crawl (default: 0, all)".into(),
        "   - ssl_chain_cert:      certificate chain file in PEM format (with -Z)".into(),
        "   - ssl_key:             private key of the certificate (PEM, or DER with ssl_keyformat=2)"
            .into(),
        "   - ssl_ca_cert:         PEM file of the CAs client certificates must chain to".into(),
        "   - ssl_verify_mode:     0 no client certificate, 1 ask, 2 require, 3 ask once".into(),
        "   - ssl_min_version:     tlsv1.2 (default) or tlsv1.3".into(),
        "   memcached's other -o options (hash_algorithm, ext_*, ...) are accepted and".into(),
        "   checked; those without effect here are logged at start, each with why.".into(),
    ];
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// The `-i` text. Ends with a newline.
pub fn license_text() -> String {
    "memcached-rs is distributed under the BSD 3-Clause License:\n\
\n\
Redistribution and use in source and binary forms, with or without\n\
modification, are permitted provided that the following conditions are\n\
met:\n\
\n\
    * Redistributions of source code must retain the above copyright\n\
notice, this list of conditions and the following disclaimer.\n\
\n\
    * Redistributions in binary form must reproduce the above\n\
copyright notice, this list of conditions and the following disclaimer\n\
in the documentation and/or other materials provided with the\n\
distribution.\n\
\n\
    * Neither the name of the copyright holder nor the names of its\n\
contributors may be used to endorse or promote products derived from\n\
this software without specific prior written permission.\n\
\n\
THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS\n\
\"AS IS\" AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT\n\
LIMITED TO, THE IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR\n\
A PARTICULAR PURPOSE ARE DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT\n\
OWNER OR CONTRIBUTORS BE LIABLE FOR ANY DIRECT, INDIRECT, INCIDENTAL,\n\
SPECIAL, EXEMPLARY, OR CONSEQUENTIAL DAMAGES (INCLUDING, BUT NOT\n\
LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR SERVICES; LOSS OF USE,\n\
DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER CAUSED AND ON ANY\n\
THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY, OR TORT\n\
(INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE\n\
OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.\n"
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::cli::OPTIONS;

    #[test]
    fn help_names_us_and_ends_with_newline() {
        let h = help_text();
        assert!(h.starts_with("memcached-rs "));
        assert!(h.ends_with('\n'));
        assert!(h.contains("(default: 11211)"));
        assert!(h.contains("(default: 64)"));
        assert!(h.contains("(default: 1.25)"));
        assert!(h.contains("(default: auto-negotiate)"));
        assert!(h.contains("(default: 700)"));
    }

    #[test]
    fn help_lists_every_flag() {
        let h = help_text();
        for spec in OPTIONS {
            if let Some(c) = spec.short {
                assert!(h.contains(&format!("\n-{c}")), "-{c} missing from help");
            }
            if !spec.long.is_empty() {
                assert!(h.contains(&format!("--{}", spec.long)), "--{}", spec.long);
            }
        }
        for o in [
            "maxconns_fast",
            "hashpower",
            "no_lru_crawler",
            "idle_timeout",
            "hotkeys",
            "slab_chunk_max",
            "track_sizes",
        ] {
            assert!(
                h.contains(&format!("   - {o}:")),
                "-o {o} missing from help"
            );
        }
    }

    #[test]
    fn license_is_bsd() {
        assert!(license_text().contains("BSD 3-Clause"));
    }
}
