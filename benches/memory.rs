//! Memory efficiency of memcached-rs next to Debian's memcached 1.6.18 (`make bench-memory`).
//!
//! For each value-size distribution and each server: start it with the same flags
//! (`-m 64 -t 2 -U 0`), write one deterministic stream of items worth ~4× the memory limit,
//! read every key back (validating each returned value byte for byte), then report how many
//! items survived, the server's `stats` and its resident memory. A report, not a pass/fail
//! test: it fails only when a server misbehaves (error replies, wrong values, no start-up).

#[allow(dead_code)] // shared with the other benches, which use other parts
mod loadgen;

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use loadgen::server::{self, Server, MEMCACHED_PATH};
use loadgen::{splitmix64, BenchResult, Context};
/// `-m` for both servers, in MB.
const MEMORY_LIMIT_MB: u64 = 64;
/// Total value bytes written per run, as a multiple of the limit: far past capacity, so the
/// result measures what each server keeps under eviction pressure rather than how it grows.
const OVERCOMMIT: u64 = 4;
/// Connections per phase: a few, so both server worker threads (`-t 2`) get work.
const CONNECTIONS: u64 = 4;
/// `set ... noreply` commands per write batch (one `write_all`).
const SET_BATCH: u64 = 500;
/// Keys per multi-get.
const GET_BATCH: u64 = 100;
/// Bytes in a mebibyte, for the MB columns (memcached's `-m` MB are MiB too).
const MB: f64 = 1024.0 * 1024.0;

/// One value-size distribution: key `i` of `0..items` gets a value of `min_len..=max_len`
/// bytes. Every item is a pure function of its index, so the writers and the validating
/// readers agree without sharing state, and every run writes the same stream.
struct Workload {
    label: &'static str,
    min_len: u64,
    max_len: u64,
    seed: u64,
    /// Set so that the value bytes reach [`OVERCOMMIT`] × the limit.
    items: u64,
}

impl Workload {
    fn new(label: &'static str, min_len: u64, max_len: u64, seed: u64) -> Workload {
        let (mut items, mut total) = (0, 0);
        let mut workload = Workload {
            label,
            min_len,
            max_len,
            seed,
            items,
        };
        while total < (OVERCOMMIT * MEMORY_LIMIT_MB) << 20 {
            total += workload.value_len(&mut workload.rng(items));
            items += 1;
        }
        workload.items = items;
        workload
    }

    /// The generator state of key `index`: the seed mixed with the index.
    fn rng(&self, index: u64) -> u64 {
        self.seed ^ index.wrapping_mul(0xD6E8_FEB8_6659_FD93)
    }

    fn value_len(&self, rng: &mut u64) -> u64 {
        self.min_len + splitmix64(rng) % (self.max_len - self.min_len + 1)
    }

    /// Fills `out` with the value of key `index`: pseudo-random bytes, \r and \n included,
    /// so a server that is not binary-safe or mixes up items shows up as a mismatch.
    fn value(&self, index: u64, out: &mut Vec<u8>) {
        let mut rng = self.rng(index);
        let len = self.value_len(&mut rng) as usize;
        out.clear();
        while out.len() < len {
            out.extend_from_slice(&splitmix64(&mut rng).to_le_bytes());
        }
        out.truncate(len);
    }

    /// Client flags, derived from the index so they are validated too.
    fn flags(index: u64) -> u32 {
        (index as u32).wrapping_mul(2_654_435_761)
    }
}

/// Key `index` is 20 bytes: `key:` and 16 digits.
fn key(index: u64) -> String {
    format!("key:{index:016}")
}

/// The `[start, end)` index ranges of size `batch` that connection `conn` owns: every
/// [`CONNECTIONS`]-th, so the connections advance through the key space together and the
/// order in which items reach the server (hence what LRU eviction keeps) stays close to the
/// index order.
fn batches_of(conn: u64, items: u64, batch: u64) -> impl Iterator<Item = (u64, u64)> {
    (conn..items.div_ceil(batch))
        .step_by(CONNECTIONS as usize)
        .map(move |b| (b * batch, ((b + 1) * batch).min(items)))
}

/// Starts `binary` with the shared flags on a free loopback port and waits until it accepts.
fn start_daemon(name: &str, binary: &Path) -> BenchResult<Server> {
    let port = server::free_port()?;
    let mut command = vec![OsString::from(binary)];
    let flags = format!("-m {MEMORY_LIMIT_MB} -t 2 -U 0 -l 127.0.0.1 -p {port}");
    command.extend(flags.split(' ').map(OsString::from));
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        command.extend(["-u", "root"].map(OsString::from)); // both refuse root without -u
    }
    Server::start(name, &command, port, Duration::from_secs(5), None)
}

/// One connection, with a send thread streaming requests while `receive` parses the replies
/// here: neither side waits for the other, so no request/reply size can deadlock them.
fn pipelined<R>(
    port: u16,
    send: impl FnOnce(&mut TcpStream) -> BenchResult<()> + Send,
    receive: impl FnOnce(&mut BufReader<TcpStream>) -> BenchResult<R>,
) -> BenchResult<R> {
    let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .context(&format!("connecting to port {port}"))?;
    // A hung server should fail the run, not stall it forever.
    let timeout = Some(Duration::from_secs(60));
    stream
        .set_read_timeout(timeout)
        .context("setting a timeout")?;
    let mut writer = stream.try_clone().context("cloning a socket")?;
    let mut reader = BufReader::with_capacity(256 * 1024, stream);
    std::thread::scope(|scope| {
        let sender = scope.spawn(move || send(&mut writer));
        let received = receive(&mut reader);
        if received.is_err() {
            // Unblock a sender stuck on a full socket; its own error is then beside the point.
            let _ = reader.get_ref().shutdown(Shutdown::Both);
        }
        let sent = sender.join().expect("sender thread panicked");
        received.and_then(|r| sent.map(|()| r))
    })
}

/// Runs `job` once per connection number on its own thread and sums the results.
fn on_each_connection(job: impl Fn(u64) -> BenchResult<u64> + Sync) -> BenchResult<u64> {
    std::thread::scope(|scope| {
        let job = &job;
        let handles: Vec<_> = (0..CONNECTIONS)
            .map(|conn| scope.spawn(move || job(conn)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("connection thread panicked"))
            .sum()
    })
}

/// Phase 1: pipelined `set ... noreply`, ended by a `version` round-trip per connection.
/// noreply still lets a server report errors (memcached does for out-of-memory), so every
/// line before `VERSION` is an error reply and fails the run. Returns the items sent.
fn write_all_items(port: u16, workload: &Workload) -> BenchResult<u64> {
    on_each_connection(|conn| {
        let send = |socket: &mut TcpStream| {
            let (mut batch, mut value) = (Vec::new(), Vec::new());
            for (start, end) in batches_of(conn, workload.items, SET_BATCH) {
                batch.clear();
                for index in start..end {
                    workload.value(index, &mut value);
                    let (key, flags, len) = (key(index), Workload::flags(index), value.len());
                    write!(batch, "set {key} {flags} 0 {len} noreply\r\n").expect("Vec write");
                    batch.extend_from_slice(&value);
                    batch.extend_from_slice(b"\r\n");
                }
                socket.write_all(&batch).context("sending sets")?;
            }
            socket.write_all(b"version\r\n").context("sending version")
        };
        let receive = |reader: &mut BufReader<TcpStream>| {
            let mut line = String::new();
            reader.read_line(&mut line).context("reading set replies")?;
            if !line.starts_with("VERSION ") {
                return Err(format!("error reply to a set (or EOF): {line:?}"));
            }
            Ok(batches_of(conn, workload.items, SET_BATCH)
                .map(|(s, e)| e - s)
                .sum())
        };
        pipelined(port, send, receive)
    })
}

/// Phase 2: every key read back with pipelined multi-gets of [`GET_BATCH`] keys, each hit
/// validated; returns the number of hits.
fn read_all_items(port: u16, workload: &Workload) -> BenchResult<u64> {
    on_each_connection(|conn| {
        let send = |socket: &mut TcpStream| {
            let mut request = Vec::new();
            for (start, end) in batches_of(conn, workload.items, GET_BATCH) {
                request.clear();
                request.extend_from_slice(b"get");
                for index in start..end {
                    write!(request, " {}", key(index)).expect("Vec write");
                }
                request.extend_from_slice(b"\r\n");
                socket.write_all(&request).context("sending gets")?;
            }
            Ok(())
        };
        let receive = |reader: &mut BufReader<TcpStream>| {
            batches_of(conn, workload.items, GET_BATCH)
                .map(|(start, end)| check_get_reply(reader, workload, start, end))
                .sum()
        };
        pipelined(port, send, receive)
    })
}

/// Parses the reply to `get` of keys `start..end`: a `VALUE` block per hit, in request order,
/// then `END`. Returns the hits; any value other than the one written for its key is an error.
fn check_get_reply(
    reader: &mut impl BufRead,
    workload: &Workload,
    start: u64,
    end: u64,
) -> BenchResult<u64> {
    let (mut line, mut got, mut expected) = (String::new(), Vec::new(), Vec::new());
    let (mut hits, mut next_index) = (0, start);
    loop {
        line.clear();
        reader.read_line(&mut line).context("reading get replies")?;
        if line == "END\r\n" {
            return Ok(hits);
        }
        let bad = || format!("unexpected reply to get of keys {start}..{end}: {line:?}");
        let fields: Vec<&str> = line.trim_end().split(' ').collect();
        let ["VALUE", key, flags, len] = fields[..] else {
            return Err(bad());
        };
        // Hits must be keys of this batch, in the order requested, each at most once.
        let index: u64 = key
            .strip_prefix("key:")
            .and_then(|digits| digits.parse().ok())
            .filter(|index| (next_index..end).contains(index))
            .ok_or_else(bad)?;
        let flags: u32 = flags.parse().map_err(|_| bad())?;
        let len: usize = len.parse().map_err(|_| bad())?;
        got.resize(len + 2, 0);
        reader.read_exact(&mut got).context("reading a value")?;
        workload.value(index, &mut expected);
        if flags != Workload::flags(index) || got[..len] != expected || &got[len..] != b"\r\n" {
            let (wrote_flags, wrote_len) = (Workload::flags(index), expected.len());
            return Err(format!(
                "{key}: wrong item: flags {flags}, {len} bytes; wrote flags {wrote_flags}, \
                 {wrote_len} bytes (if those match, the contents differ)"
            ));
        }
        hits += 1;
        next_index = index + 1;
    }
}

/// `stats` as a name → value map.
fn server_stats(port: u16) -> BenchResult<HashMap<String, String>> {
    let send = |socket: &mut TcpStream| socket.write_all(b"stats\r\n").context("stats");
    let receive = |reader: &mut BufReader<TcpStream>| {
        let mut stats = HashMap::new();
        for line in reader.lines() {
            let line = line.context("reading stats")?;
            match line
                .strip_prefix("STAT ")
                .and_then(|stat| stat.split_once(' '))
            {
                Some((name, value)) => stats.insert(name.to_string(), value.to_string()),
                None if line == "END" => return Ok(stats),
                None => return Err(format!("unexpected stats line {line:?}")),
            };
        }
        Err("connection closed in the middle of stats".into())
    };
    pipelined(port, send, receive)
}

/// What one server did with one workload.
struct Outcome {
    name: &'static str,
    /// Items sent and synced (every key once, unless the batching is wrong).
    written: u64,
    hits: u64,
    stats: HashMap<String, String>,
    rss_mb: f64,
    peak_rss_mb: f64,
    write_secs: f64,
    read_secs: f64,
}

fn run_one(name: &'static str, binary: &Path, workload: &Workload) -> BenchResult<Outcome> {
    let mut daemon = start_daemon(name, binary)?;
    let started = Instant::now();
    let written =
        write_all_items(daemon.port, workload).map_err(|e| format!("{name}, writing: {e}"))?;
    let write_secs = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let hits =
        read_all_items(daemon.port, workload).map_err(|e| format!("{name}, reading: {e}"))?;
    let read_secs = started.elapsed().as_secs_f64();
    let stats = server_stats(daemon.port).map_err(|e| format!("{name}: {e}"))?;
    let mb = |field: &str| daemon.status_kb(field).map(|kb| kb as f64 * 1024.0 / MB);
    let (rss_mb, peak_rss_mb) = (mb("VmRSS")?, mb("VmHWM")?);
    daemon
        .check_alive()
        .map_err(|e| format!("{name} exited during the run: {e}"))?;
    Ok(Outcome {
        name,
        written,
        hits,
        stats,
        rss_mb,
        peak_rss_mb,
        write_secs,
        read_secs,
    })
}

fn print_table(workload: &Workload, outcomes: &[Outcome]) {
    let (min, max, items) = (workload.min_len, workload.max_len, workload.items);
    println!(
        "\n({}) keys 20 B, values {min}-{max} B uniform: {items} items written, {OVERCOMMIT}x -m \
         {MEMORY_LIMIT_MB} in value bytes",
        workload.label
    );
    println!(
        "server         written  retained   hit%  curr_items  evictions  bytes MB  limit MB  \
         RSS MB  peak RSS MB  write s  read s"
    );
    for o in outcomes {
        let stat = |name: &str| o.stats.get(name).map_or("-", String::as_str).to_string();
        let stat_mb = |name: &str| match o.stats.get(name).and_then(|v| v.parse::<f64>().ok()) {
            Some(bytes) => format!("{:.1}", bytes / MB),
            None => "-".to_string(),
        };
        println!(
            "{:<13}{:>9}{:>10}{:>7.1}{:>12}{:>11}{:>10}{:>10}{:>8.1}{:>13.1}{:>9.1}{:>8.1}",
            o.name,
            o.written,
            o.hits,
            100.0 * o.hits as f64 / o.written as f64,
            stat("curr_items"),
            stat("evictions"),
            stat_mb("bytes"),
            stat_mb("limit_maxbytes"),
            o.rss_mb,
            o.peak_rss_mb,
            o.write_secs,
            o.read_secs,
        );
    }
    if let [reference, ours] = outcomes {
        println!(
            "memcached-rs / memcached: retained items {:.3}x, RSS {:.3}x, peak RSS {:.3}x",
            ours.hits as f64 / reference.hits as f64,
            ours.rss_mb / reference.rss_mb,
            ours.peak_rss_mb / reference.peak_rss_mb,
        );
    }
}

fn main() -> ExitCode {
    server::require_memcached("bench-memory");
    let ours = server::memcached_rs_path();
    println!("bench-memory: memcached-rs = {}", ours.display());
    let servers = [
        ("memcached", PathBuf::from(MEMCACHED_PATH)),
        ("memcached-rs", ours),
    ];
    let workloads = [
        Workload::new("a", 50, 500, 0x5EED_0000_0000_000A),
        Workload::new("b", 10, 100, 0x5EED_0000_0000_000B),
    ];
    let started = Instant::now();
    for workload in &workloads {
        let outcomes: BenchResult<Vec<Outcome>> = servers
            .iter()
            .map(|(name, binary)| run_one(name, binary, workload))
            .collect();
        match outcomes {
            Ok(outcomes) => print_table(workload, &outcomes),
            Err(e) => {
                eprintln!("bench-memory: FAILED: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("\nwall time {:.1} s", started.elapsed().as_secs_f64());
    ExitCode::SUCCESS
}
