//! Hit ratio next to Debian's memcached 1.6.18 (`make bench-hitratio`): what users feel of
//! how many items a cache holds.
//!
//! For each value-size range, both servers (the same flags, `-m 64 -t 2`) get the same
//! stream of reads: keys drawn from a Zipf distribution (exponent 0.9) over a key space about
//! five times what the memory holds, as a cache-aside client does it — `get`, and on a miss
//! `set … noreply` of that key's value. Every key is written once first (the cache is full and
//! evicting from the start), then a warm-up of as many reads as there are keys lets the
//! working set settle, then as many reads again are counted on both. The figure
//! depends on what each server keeps, not on its speed: both receive the same reads. A report,
//! not a pass/fail test: it fails only when a server misbehaves (a wrong value, an error
//! reply, no start-up).
//!
//! `HITRATIO_SCALE=0.2` shortens the streams (and makes the figures noisier);
//! `HITRATIO_RANGES=10-100,500-4000` picks ranges; `HITRATIO_FLAGS="-o slab_automove=0"` adds
//! flags to both servers.

#[allow(dead_code)]
mod loadgen;

use loadgen::server::{self, Server};
use loadgen::{splitmix64, BenchResult, Context, Dataset};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// `-m` of both servers, in MB.
const MEMORY_MB: u64 = 64;
/// The key space, in value and key bytes, as a multiple of the memory.
const KEY_SPACE_FACTOR: u64 = 5;
/// Zipf exponent: a typical web cache's skew.
const ZIPF_EXPONENT: f64 = 0.9;
/// Reads per pipelined batch.
const BATCH: usize = 100;

/// The value-size ranges measured.
const RANGES: [(usize, usize); 3] = [(10, 100), (50, 500), (500, 4000)];

/// Cumulative Zipf probabilities of ranks `0..n`, for sampling by binary search.
fn zipf_cdf(n: usize, exponent: f64) -> Vec<f64> {
    let mut cdf = Vec::with_capacity(n);
    let mut total = 0.0;
    for rank in 1..=n {
        total += (rank as f64).powf(-exponent);
        cdf.push(total);
    }
    cdf.iter_mut().for_each(|c| *c /= total);
    cdf
}

/// The key index of read `i` of the stream: a Zipf rank, scattered over the key space (so the
/// hottest keys are not neighbours) by multiplying by a prime larger than any key space here,
/// which is a bijection modulo `n`.
fn key_of(cdf: &[f64], seed: u64, i: u64) -> u64 {
    let mut state = seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let u = (splitmix64(&mut state) >> 11) as f64 / (1u64 << 53) as f64;
    let rank = cdf.partition_point(|&c| c < u).min(cdf.len() - 1) as u64;
    let n = cdf.len() as u64;
    (rank * 1_000_000_007) % n
}

/// What one server did in the measured part.
#[derive(Debug, Default, Clone)]
struct Outcome {
    gets: u64,
    hits: u64,
    curr_items: u64,
    evictions: u64,
    /// Pages moved between slab classes, and items they evicted.
    moved: u64,
    moved_evictions: u64,
    rss_mb: f64,
}

/// A cache-aside client on one connection.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    out: Vec<u8>,
    line: Vec<u8>,
    value: Vec<u8>,
}

impl Client {
    fn connect(server: &Server) -> BenchResult<Client> {
        let stream = TcpStream::connect(server.addr()).context("connecting")?;
        // The noreply sets get no answer to carry the ACK: without this, each batch waits for
        // a delayed ACK before its last segment leaves.
        stream.set_nodelay(true).context("setting TCP_NODELAY")?;
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .context("setting a read timeout")?;
        Ok(Client {
            reader: BufReader::with_capacity(1 << 16, stream.try_clone().context("cloning")?),
            writer: stream,
            out: Vec::with_capacity(1 << 16),
            line: Vec::new(),
            value: Vec::new(),
        })
    }

    fn read_line(&mut self) -> BenchResult<&[u8]> {
        self.line.clear();
        self.reader
            .read_until(b'\n', &mut self.line)
            .context("reading a reply")?;
        if !self.line.ends_with(b"\r\n") {
            return Err(format!(
                "truncated reply {:?}",
                String::from_utf8_lossy(&self.line)
            ));
        }
        Ok(&self.line[..self.line.len() - 2])
    }

    /// Reads one batch of keys: returns which missed; sets those (noreply) before returning.
    fn read_batch(&mut self, ds: &Dataset, keys: &[u64]) -> BenchResult<usize> {
        self.out.clear();
        for &k in keys {
            self.out.extend_from_slice(b"get ");
            ds.push_key(k, &mut self.out);
            self.out.extend_from_slice(b"\r\n");
        }
        self.writer.write_all(&self.out).context("sending gets")?;
        let mut missed = Vec::new();
        for &k in keys {
            let line = self.read_line()?.to_vec();
            if line == b"END" {
                missed.push(k);
                continue;
            }
            let words: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
            let len: usize = match words.as_slice() {
                [b"VALUE", _, _, len] => std::str::from_utf8(len)
                    .ok()
                    .and_then(|l| l.parse().ok())
                    .ok_or("bad VALUE line")?,
                _ => return Err(format!("unexpected {:?}", String::from_utf8_lossy(&line))),
            };
            self.value.resize(len + 2, 0);
            self.reader
                .read_exact(&mut self.value)
                .context("reading a value")?;
            if !ds.value_matches(k, &self.value[..len]) {
                return Err(format!("wrong value for key {k}"));
            }
            if self.read_line()? != b"END" {
                return Err("no END after a value".into());
            }
        }
        self.set_batch(ds, &missed)?;
        Ok(keys.len() - missed.len())
    }

    /// Stores the values of `keys` (noreply).
    fn set_batch(&mut self, ds: &Dataset, keys: &[u64]) -> BenchResult<()> {
        self.out.clear();
        for &k in keys {
            self.out.extend_from_slice(b"set ");
            ds.push_key(k, &mut self.out);
            let len = ds.value_len(k);
            self.out
                .extend_from_slice(format!(" {} 0 {len} noreply\r\n", ds.flags(k)).as_bytes());
            ds.push_value(k, &mut self.out);
            self.out.extend_from_slice(b"\r\n");
        }
        self.writer.write_all(&self.out).context("sending sets")
    }

    fn stats(&mut self) -> BenchResult<Vec<(String, String)>> {
        self.writer.write_all(b"stats\r\n").context("stats")?;
        let mut stats = Vec::new();
        loop {
            let line = String::from_utf8_lossy(self.read_line()?).into_owned();
            if line == "END" {
                return Ok(stats);
            }
            let mut words = line.split(' ').skip(1);
            if let (Some(k), Some(v)) = (words.next(), words.next()) {
                stats.push((k.to_string(), v.to_string()));
            }
        }
    }
}

fn stat(stats: &[(String, String)], name: &str) -> u64 {
    stats
        .iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// Runs the stream against one server.
fn run_one(
    name: &str,
    binary: OsString,
    port: u16,
    ds: &Dataset,
    cdf: &[f64],
    warmup: u64,
    measured: u64,
) -> BenchResult<Outcome> {
    let mut command = vec![binary];
    command.extend(server::server_flags(port).into_iter().map(OsString::from));
    // The shared flags ask for 1 GB; this bench measures a full cache of MEMORY_MB.
    if let Some(at) = command.iter().position(|a| a == "-m") {
        command[at + 1] = MEMORY_MB.to_string().into();
    }
    // HITRATIO_FLAGS="-o slab_automove=0" adds flags to both servers.
    if let Ok(extra) = std::env::var("HITRATIO_FLAGS") {
        command.extend(extra.split_whitespace().map(OsString::from));
    }
    let mut server = Server::start(name, &command, port, Duration::from_secs(10), None)?;
    let outcome = stream_reads(&mut server, ds, cdf, warmup, measured);
    outcome.map_err(|e| format!("{name}: {e}"))
}

fn stream_reads(
    server: &mut Server,
    ds: &Dataset,
    cdf: &[f64],
    warmup: u64,
    measured: u64,
) -> BenchResult<Outcome> {
    let mut client = Client::connect(server)?;
    // Every key written once, in order: the cache starts full and evicting.
    let all: Vec<u64> = (0..ds.keys).collect();
    for batch in all.chunks(BATCH) {
        client.set_batch(ds, batch)?;
    }
    let seed = 0x4849_5452_4154_494f;
    let mut outcome = Outcome::default();
    let mut keys = Vec::with_capacity(BATCH);
    let mut i = 0;
    while i < warmup + measured {
        keys.clear();
        let end = (i + BATCH as u64).min(warmup + measured);
        keys.extend((i..end).map(|j| key_of(cdf, seed, j)));
        let hits = client.read_batch(ds, &keys)?;
        if i >= warmup {
            outcome.gets += keys.len() as u64;
            outcome.hits += hits as u64;
        }
        i = end;
    }
    server.check_alive()?;
    let stats = client.stats()?;
    outcome.curr_items = stat(&stats, "curr_items");
    outcome.evictions = stat(&stats, "evictions");
    outcome.moved = stat(&stats, "slabs_moved");
    outcome.moved_evictions = stat(&stats, "slab_reassign_evictions_nomem");
    outcome.rss_mb = server.status_kb("VmRSS")? as f64 / 1024.0;
    Ok(outcome)
}

/// Two distinct free loopback ports.
fn two_free_ports() -> BenchResult<(u16, u16)> {
    let bind = || std::net::TcpListener::bind(("127.0.0.1", 0)).context("finding a free port");
    let (a, b) = (bind()?, bind()?);
    let port = |l: &std::net::TcpListener| l.local_addr().context("a port").map(|a| a.port());
    Ok((port(&a)?, port(&b)?))
}

fn run() -> BenchResult<()> {
    server::require_memcached("bench-hitratio");
    let scale: f64 = std::env::var("HITRATIO_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&s: &f64| s > 0.0)
        .unwrap_or(1.0);
    let ours = server::memcached_rs_path();
    println!("bench-hitratio: memcached-rs = {}", ours.display());
    println!(
        "-m {MEMORY_MB}, keys 15 B, Zipf {ZIPF_EXPONENT} over a key space ~{KEY_SPACE_FACTOR}x the memory, get then set on a miss"
    );
    let started = Instant::now();
    let mut summary = Vec::new();
    // HITRATIO_RANGES=10-100,500-4000 picks ranges.
    let picked = std::env::var("HITRATIO_RANGES").ok();
    let wanted = |min: usize, max: usize| {
        picked
            .as_deref()
            .is_none_or(|p| p.split(',').any(|r| r == format!("{min}-{max}")))
    };
    for (min, max) in RANGES.into_iter().filter(|&(a, b)| wanted(a, b)) {
        let average = (min + max) / 2 + 15;
        let keys = (KEY_SPACE_FACTOR * (MEMORY_MB << 20) / average as u64).max(1000);
        let ds = Dataset::new("hr", keys, min, max);
        let cdf = zipf_cdf(keys as usize, ZIPF_EXPONENT);
        let warmup = (keys as f64 * scale) as u64;
        let measured = (keys as f64 * scale) as u64;
        // Both servers start at once: their ports are picked together, so they differ.
        let (rs_port, mc_port) = two_free_ports()?;
        let (rs, mc) = std::thread::scope(|scope| {
            let theirs = scope.spawn(|| {
                let binary = server::MEMCACHED_PATH.into();
                run_one("memcached", binary, mc_port, &ds, &cdf, warmup, measured)
            });
            let binary = ours.clone().into();
            let rs = run_one("memcached-rs", binary, rs_port, &ds, &cdf, warmup, measured);
            let theirs = theirs.join();
            (
                rs,
                theirs.unwrap_or_else(|_| Err("memcached run panicked".into())),
            )
        });
        let (rs, mc) = (rs?, mc?);
        println!(
            "\nvalues {min}-{max} B: {keys} keys, {warmup} reads of warm-up, {measured} measured"
        );
        println!(
            "{:<14}{:>12}{:>12}{:>9}{:>12}{:>12}{:>7}{:>10}{:>9}",
            "server",
            "gets",
            "hits",
            "hit%",
            "curr_items",
            "evictions",
            "moved",
            "move-evs",
            "RSS MB"
        );
        for (name, o) in [("memcached", &mc), ("memcached-rs", &rs)] {
            println!(
                "{:<14}{:>12}{:>12}{:>9.2}{:>12}{:>12}{:>7}{:>10}{:>9.1}",
                name,
                o.gets,
                o.hits,
                100.0 * o.hits as f64 / o.gets.max(1) as f64,
                o.curr_items,
                o.evictions,
                o.moved,
                o.moved_evictions,
                o.rss_mb
            );
        }
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
        let hit_ratio = ratio(rs.hits as f64, mc.hits as f64);
        let items = ratio(rs.curr_items as f64, mc.curr_items as f64);
        let rss = ratio(rs.rss_mb, mc.rss_mb);
        println!(
            "memcached-rs / memcached: hit ratio {hit_ratio:.3}x, items held {items:.3}x, RSS {rss:.3}x"
        );
        summary.push(format!(
            "{min}-{max} B: hit ratio {hit_ratio:.3}x, items {items:.3}x, RSS {rss:.3}x"
        ));
    }
    println!("\nSUMMARY (memcached-rs / memcached)");
    summary.iter().for_each(|l| println!("  {l}"));
    println!("wall time {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-hitratio: {e}");
            ExitCode::FAILURE
        }
    }
}
