//! Throughput, latency and CPU per operation of memcached-rs next to Debian's memcached 1.6.18
//! (`make bench`; see benches/README.md).
//!
//! Starts both servers with the same flags, prefills both, then runs each workload on them in
//! turn, A B A B A B, and prints for each server the medians of ops/s, p50/p99/p999 latency and
//! server CPU time per operation, and their memcached-rs / memcached ratios. A report, not a
//! pass/fail test: it fails only when a server misbehaves (an error reply, a wrong value, no
//! start-up, an exit).
//!
//! With `--server HOST:PORT` it is a plain load generator against a running server instead:
//! `cargo bench --bench load -- --server 127.0.0.1:11211 --protocol meta --depth 8` (`--help`).

#[allow(dead_code)] // shared with benches/callgrind.rs, which uses other parts
mod loadgen;

use loadgen::server::{self, Server};
use loadgen::{env_number, median, BenchResult, Context, Dataset, Measured, Protocol, Spec};
use std::ffi::OsString;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Seconds per measured run unless `BENCH_SECS` says otherwise: 9 workloads × 2 servers × 3
/// runs of 4 s, plus start-up, prefill and connection set-up, keep `make bench` near 4.5 min.
const DEFAULT_SECS: f64 = 4.0;
/// Seconds of the extra `perf stat` run per workload and server (`BENCH_SYSCALL_SECS`; 0: none).
const DEFAULT_SYSCALL_SECS: f64 = 1.5;
/// Runs per workload and server unless `BENCH_RUNS` says otherwise.
const DEFAULT_RUNS: usize = 3;

/// The key spaces: every workload reads and writes one of them, prefilled before any run.
const DATASETS: [(&str, u64, usize, usize); 5] = [
    ("v100", 100_000, 100, 100),
    ("v1k", 100_000, 1024, 1024),
    ("v32", 100_000, 32, 32),
    // Large values (W7, W8): ~200 MB each, so all five fit in -m 1024.
    ("v100k", 2_000, 100 * 1024, 100 * 1024),
    ("v512k", 400, 512 * 1024, 512 * 1024),
];

struct Workload {
    name: &'static str,
    /// Index into [`DATASETS`].
    dataset: usize,
    spec: Spec,
    /// What to read first for this workload.
    figure: &'static str,
}

fn workloads() -> Vec<Workload> {
    let w1 = Spec {
        protocol: Protocol::Text,
        threads: 2,
        conns_per_thread: 25,
        depth: 1,
        multi: 1,
        get_ratio: 0.9,
        rate_per_conn: None,
    };
    vec![
        Workload {
            name: "W1",
            dataset: 0,
            spec: w1.clone(),
            figure: "CPU/op",
        },
        Workload {
            name: "W2",
            dataset: 1,
            spec: Spec {
                get_ratio: 0.0,
                ..w1.clone()
            },
            figure: "CPU/op",
        },
        Workload {
            name: "W3",
            dataset: 2,
            spec: Spec {
                conns_per_thread: 4,
                depth: 32,
                get_ratio: 1.0,
                ..w1.clone()
            },
            figure: "CPU/op",
        },
        Workload {
            name: "W3M",
            dataset: 2,
            // 16-key gets, 2 in flight per connection: the same 32 keys in flight as W3.
            spec: Spec {
                conns_per_thread: 4,
                depth: 2,
                multi: 16,
                get_ratio: 1.0,
                ..w1.clone()
            },
            figure: "CPU/op",
        },
        Workload {
            name: "W4",
            dataset: 0,
            // 1000 connections, 20 requests/s each: 20k requests/s in all.
            spec: Spec {
                conns_per_thread: 500,
                rate_per_conn: Some(20.0),
                ..w1.clone()
            },
            figure: "p99",
        },
        Workload {
            name: "W5",
            dataset: 0,
            spec: Spec {
                protocol: Protocol::Binary,
                ..w1.clone()
            },
            figure: "CPU/op",
        },
        Workload {
            name: "W6",
            dataset: 0,
            spec: Spec {
                protocol: Protocol::Meta,
                ..w1.clone()
            },
            figure: "CPU/op",
        },
        Workload {
            name: "W7",
            dataset: 3,
            // Large values: 10 connections, where copying a value is most of a request's work.
            spec: Spec {
                conns_per_thread: 5,
                ..w1.clone()
            },
            figure: "ops/s",
        },
        Workload {
            name: "W8",
            dataset: 4,
            spec: Spec {
                conns_per_thread: 5,
                ..w1.clone()
            },
            figure: "ops/s",
        },
        Workload {
            name: "W9",
            dataset: 3,
            // Large values stored: the set path's copy, where W7 and W8 measure the gets'.
            spec: Spec {
                conns_per_thread: 5,
                get_ratio: 0.0,
                ..w1
            },
            figure: "CPU/op",
        },
    ]
}

/// The figures of one measured run.
#[derive(Clone, Copy, Debug)]
struct Sample {
    ops_per_sec: f64,
    p50_us: f64,
    p99_us: f64,
    p999_us: f64,
    cpu_us_per_op: f64,
    generator_us_per_op: f64,
    /// Server context switches per operation (a block in epoll_wait and its wake-up is one).
    switches_per_op: f64,
    hit_pct: f64,
}

impl Sample {
    fn of(measured: &Measured, server_cpu_secs: f64, switches: f64) -> Sample {
        let t = &measured.tally;
        let ops = t.requests.max(1) as f64;
        Sample {
            ops_per_sec: t.requests as f64 / measured.secs,
            p50_us: loadgen::percentile_us(&measured.histogram, 0.50),
            p99_us: loadgen::percentile_us(&measured.histogram, 0.99),
            p999_us: loadgen::percentile_us(&measured.histogram, 0.999),
            cpu_us_per_op: server_cpu_secs * 1e6 / ops,
            generator_us_per_op: measured.generator_cpu_secs * 1e6 / ops,
            switches_per_op: switches / ops,
            hit_pct: if t.keys == 0 {
                f64::NAN
            } else {
                100.0 * t.hits as f64 / t.keys as f64
            },
        }
    }

    /// The median of each field over `samples` (each field on its own).
    fn median(samples: &[Sample]) -> Sample {
        let m = |f: fn(&Sample) -> f64| median(samples.iter().map(f).collect());
        Sample {
            ops_per_sec: m(|s| s.ops_per_sec),
            p50_us: m(|s| s.p50_us),
            p99_us: m(|s| s.p99_us),
            p999_us: m(|s| s.p999_us),
            cpu_us_per_op: m(|s| s.cpu_us_per_op),
            generator_us_per_op: m(|s| s.generator_us_per_op),
            switches_per_op: m(|s| s.switches_per_op),
            hit_pct: m(|s| s.hit_pct),
        }
    }
}

const HEADER: &str = "            server           ops/s   p50 us   p99 us  p999 us  \
                      CPU us/op  gen us/op  cs/op   hit%";

fn print_sample(label: &str, server: &str, s: &Sample) {
    // NaN: not measured (no server pid in --server mode, no gets for hit%).
    let num = |v: f64, width: usize, decimals: usize| {
        if v.is_nan() {
            format!("{:>width$}", "-")
        } else {
            format!("{v:>width$.decimals$}")
        }
    };
    println!(
        "  {label:<9} {server:<13}{}{}{}{}{}{}{}{}",
        num(s.ops_per_sec, 10, 0),
        num(s.p50_us, 9, 1),
        num(s.p99_us, 9, 1),
        num(s.p999_us, 9, 1),
        num(s.cpu_us_per_op, 11, 2),
        num(s.generator_us_per_op, 11, 2),
        num(s.switches_per_op, 7, 2),
        num(s.hit_pct, 7, 1),
    );
}

/// The system calls counted by the `perf stat` pass: all of them, then the usual suspects.
const PERF_EVENTS: [&str; 12] = [
    "raw_syscalls:sys_enter",
    "syscalls:sys_enter_epoll_wait",
    "syscalls:sys_enter_epoll_pwait",
    "syscalls:sys_enter_epoll_ctl",
    "syscalls:sys_enter_read",
    "syscalls:sys_enter_recvfrom",
    "syscalls:sys_enter_recvmsg",
    "syscalls:sys_enter_write",
    "syscalls:sys_enter_writev",
    "syscalls:sys_enter_sendto",
    "syscalls:sys_enter_sendmsg",
    "syscalls:sys_enter_futex",
];

/// Whether `perf stat` can count syscall tracepoints here (root, or a low
/// perf_event_paranoid; the `linux-perf` package).
fn perf_works() -> bool {
    Command::new("perf")
        .args(["stat", "-x,", "-e", PERF_EVENTS[0], "--", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// System calls per operation of `server` over one extra run (not one of the measured ones:
/// the tracepoints cost a little per call): `perf stat -p PID` on every thread.
fn syscalls_per_op(
    server: &mut Server,
    ds: &Dataset,
    spec: &Spec,
    duration: Duration,
    seed: u64,
) -> BenchResult<Vec<(&'static str, f64)>> {
    let out = std::env::temp_dir().join(format!("bench-perf-{}.csv", server.pid()));
    let mut perf = None;
    let measured = loadgen::run(server.addr(), ds, spec, duration, seed, || {
        perf = Some(
            Command::new("perf")
                .args(["stat", "-x,", "-o"])
                .arg(&out)
                .args([
                    "-e",
                    &PERF_EVENTS.join(","),
                    "-p",
                    &server.pid().to_string(),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn(),
        );
        std::thread::sleep(Duration::from_millis(300)); // let it attach
    })?;
    let mut perf = perf.expect("at_start ran").context("starting perf stat")?;
    let pid = libc::pid_t::try_from(perf.id()).expect("pid fits pid_t");
    // SAFETY: kill has no memory-safety preconditions; perf is our unreaped child.
    unsafe { libc::kill(pid, libc::SIGINT) };
    perf.wait().context("waiting for perf stat")?;
    let ops = measured.tally.requests.max(1) as f64;
    drop(measured);
    std::thread::sleep(Duration::from_millis(200));
    server.check_alive()?;
    let text = std::fs::read_to_string(&out).context("reading perf stat's output")?;
    let _ = std::fs::remove_file(&out);
    let mut counts = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let fields: Vec<&str> = line.split(',').collect();
        let (Some(count), Some(event)) = (fields.first(), fields.get(2)) else {
            continue;
        };
        let (Ok(count), Some(&name)) = (
            count.parse::<u64>(),
            PERF_EVENTS.iter().find(|e| *e == event),
        ) else {
            continue;
        };
        let short = name.rsplit("sys_enter_").next().unwrap_or(name);
        let short = if short == PERF_EVENTS[0] {
            "all"
        } else {
            short
        };
        counts.push((short, count as f64 / ops));
    }
    if counts.is_empty() {
        return Err(format!("no counts in perf stat's output: {text:?}"));
    }
    Ok(counts)
}

fn describe_syscalls(counts: &[(&str, f64)]) -> String {
    counts
        .iter()
        .filter(|(name, per_op)| *name == "all" || *per_op >= 0.005)
        .map(|(name, per_op)| format!("{name} {per_op:.2}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One measured run of `spec` against `server`.
fn measure(
    server: &mut Server,
    ds: &Dataset,
    spec: &Spec,
    duration: Duration,
    seed: u64,
) -> BenchResult<Sample> {
    let (mut cpu_before, mut switches_before) = (Ok(0.0), Ok(0));
    let measured = loadgen::run(server.addr(), ds, spec, duration, seed, || {
        cpu_before = server.cpu_secs();
        switches_before = server.context_switches();
    })?;
    let cpu = server.cpu_secs()? - cpu_before?;
    let switches = server.context_switches()? - switches_before?;
    let sample = Sample::of(&measured, cpu, switches as f64);
    // Close the connections and give the server a moment to see them go before the next run.
    drop(measured);
    std::thread::sleep(Duration::from_millis(200));
    server.check_alive()?;
    Ok(sample)
}

fn compare() -> BenchResult<()> {
    server::require_memcached("bench");
    let secs = env_number("BENCH_SECS", DEFAULT_SECS);
    let runs = env_number("BENCH_RUNS", DEFAULT_RUNS as f64).max(1.0) as usize;
    let selected: Option<Vec<String>> = std::env::var("BENCH_WORKLOADS")
        .ok()
        .map(|v| v.split(',').map(|w| w.trim().to_uppercase()).collect());
    let workloads: Vec<Workload> = workloads()
        .into_iter()
        .filter(|w| {
            selected
                .as_ref()
                .is_none_or(|s| s.iter().any(|n| n == w.name))
        })
        .collect();
    let duration = Duration::from_secs_f64(secs);
    let syscall_secs = env_number("BENCH_SYSCALL_SECS", DEFAULT_SYSCALL_SECS);
    let syscall_duration = Duration::from_secs_f64(syscall_secs);
    let count_syscalls = syscall_secs > 0.0 && perf_works();
    if !count_syscalls {
        println!(
            "(no syscall counts: BENCH_SYSCALL_SECS=0, or `perf stat` cannot count tracepoints \
             here — apt-get install linux-perf, and run as root)"
        );
    }
    let ours = server::memcached_rs_path();
    let wall = Instant::now();
    println!(
        "bench: memcached-rs = {} vs memcached = {}; {runs} runs x {secs} s per workload and \
         server, alternating",
        ours.display(),
        server::MEMCACHED_PATH
    );

    // A = memcached-rs, B = memcached: both up for the whole run, each idle while the other
    // is measured.
    let mut servers = Vec::new();
    for (name, binary) in [
        ("memcached-rs", ours.as_os_str().to_owned()),
        ("memcached", OsString::from(server::MEMCACHED_PATH)),
    ] {
        let port = server::free_port()?;
        let mut command = vec![binary];
        command.extend(server::flags_for(name, port));
        servers.push(Server::start(
            name,
            &command,
            port,
            Duration::from_secs(10),
            None,
        )?);
    }
    let flags = server::server_flags(0).join(" ").replace("-p 0", "-p PORT");
    println!("flags for both: {flags}");
    std::thread::sleep(Duration::from_secs(1));
    let idle_rss: Vec<u64> = servers
        .iter()
        .map(|s| s.status_kb("VmRSS"))
        .collect::<BenchResult<_>>()?;
    println!(
        "idle RSS after start: memcached-rs {:.1} MB, memcached {:.1} MB ({:.3}x)",
        idle_rss[0] as f64 / 1024.0,
        idle_rss[1] as f64 / 1024.0,
        idle_rss[0] as f64 / idle_rss[1] as f64
    );

    let datasets: Vec<Dataset> = DATASETS
        .iter()
        .map(|&(prefix, keys, min, max)| Dataset::new(prefix, keys, min, max))
        .collect();
    for (d, ds) in datasets.iter().enumerate() {
        if !workloads.iter().any(|w| w.dataset == d) {
            continue;
        }
        let started = Instant::now();
        for server in &servers {
            loadgen::prefill(server.addr(), ds, 4)
                .map_err(|e| format!("{}: prefilling {}: {e}", server.name, ds.prefix))?;
        }
        println!(
            "prefilled {} keys of {} ({} values, {:.0} MB) on both in {:.1} s",
            ds.keys,
            ds.prefix,
            ds.describe_values(),
            ds.total_value_bytes() as f64 / 1e6,
            started.elapsed().as_secs_f64()
        );
    }

    let mut summary = Vec::new();
    for w in &workloads {
        let ds = &datasets[w.dataset];
        println!(
            "\n{} {}; {} keys, values {}",
            w.name,
            w.spec.describe(),
            ds.keys,
            ds.describe_values()
        );
        println!("{HEADER}");
        let mut samples: [Vec<Sample>; 2] = [Vec::new(), Vec::new()];
        for run in 0..runs {
            let seed = 0x5EED ^ ((run as u64) << 32) ^ u64::from(w.name.as_bytes()[1]);
            for (i, server) in servers.iter_mut().enumerate() {
                let sample = measure(server, ds, &w.spec, duration, seed)
                    .map_err(|e| format!("{}, {}: {e}", w.name, server.name))?;
                print_sample(&format!("run {}", run + 1), &server.name, &sample);
                samples[i].push(sample);
            }
        }
        let medians = [Sample::median(&samples[0]), Sample::median(&samples[1])];
        print_sample("median", "memcached-rs", &medians[0]);
        print_sample("median", "memcached", &medians[1]);
        let ratio = |f: fn(&Sample) -> f64| f(&medians[0]) / f(&medians[1]);
        println!(
            "  rs / mc: ops/s {:.3}x  p50 {:.3}x  p99 {:.3}x  p999 {:.3}x  CPU/op {:.3}x   \
             (read {} first)",
            ratio(|s| s.ops_per_sec),
            ratio(|s| s.p50_us),
            ratio(|s| s.p99_us),
            ratio(|s| s.p999_us),
            ratio(|s| s.cpu_us_per_op),
            w.figure
        );
        if count_syscalls {
            let seed = 0xC0FFEE ^ u64::from(w.name.as_bytes()[1]);
            let per_server: Vec<String> = servers
                .iter_mut()
                .map(|server| {
                    let counts = syscalls_per_op(server, ds, &w.spec, syscall_duration, seed)
                        .map_err(|e| format!("{}, {}, perf: {e}", w.name, server.name))?;
                    Ok(format!("{} {}", server.name, describe_syscalls(&counts)))
                })
                .collect::<BenchResult<_>>()?;
            println!(
                "  syscalls/op (perf stat, an extra run each): {}",
                per_server.join(" | ")
            );
        }
        summary.push((w.name, w.figure, medians));
    }

    let rss_now: Vec<u64> = servers
        .iter()
        .map(|s| s.status_kb("VmRSS"))
        .collect::<BenchResult<_>>()?;
    println!(
        "\nSUMMARY: memcached-rs / memcached, ratios of the medians of {runs} runs of {secs} s \
         (ops/s above 1 and the others below 1 favour memcached-rs)"
    );
    println!(
        "workload     ops/s      p50      p99     p999   CPU/op   | CPU us/op rs    mc  | \
         figure"
    );
    for (name, figure, [ours, theirs]) in &summary {
        let r = |f: fn(&Sample) -> f64| f(ours) / f(theirs);
        println!(
            "{name:<8}{:>9.3}{:>9.3}{:>9.3}{:>9.3}{:>9.3}   |{:>10.2}{:>8.2}  | {figure}",
            r(|s| s.ops_per_sec),
            r(|s| s.p50_us),
            r(|s| s.p99_us),
            r(|s| s.p999_us),
            r(|s| s.cpu_us_per_op),
            ours.cpu_us_per_op,
            theirs.cpu_us_per_op,
        );
    }
    println!(
        "idle RSS  {:.3}  (memcached-rs {:.1} MB, memcached {:.1} MB); RSS at the end: \
         memcached-rs {:.1} MB, memcached {:.1} MB",
        idle_rss[0] as f64 / idle_rss[1] as f64,
        idle_rss[0] as f64 / 1024.0,
        idle_rss[1] as f64 / 1024.0,
        rss_now[0] as f64 / 1024.0,
        rss_now[1] as f64 / 1024.0,
    );
    println!("wall time {:.1} s", wall.elapsed().as_secs_f64());
    Ok(())
}

/// `--server`: one workload against a running server, described by flags.
fn standalone(args: &[String]) -> BenchResult<()> {
    let mut opts = getopts::Options::new();
    opts.optopt("", "server", "server address (required)", "HOST:PORT")
        .optopt("", "protocol", "text, meta or binary [text]", "P")
        .optopt("", "threads", "generator threads [2]", "N")
        .optopt("", "conns", "connections per thread [25]", "M")
        .optopt("", "depth", "requests in flight per connection [1]", "D")
        .optopt("", "multi", "keys per get [1]", "K")
        .optopt(
            "",
            "get-ratio",
            "fraction of requests that are gets [0.9]",
            "R",
        )
        .optopt("", "keys", "key space [100000]", "N")
        .optopt(
            "",
            "value",
            "value size, fixed or uniform [100]",
            "N|MIN-MAX",
        )
        .optopt("", "prefix", "key prefix [load]", "S")
        .optopt(
            "",
            "rate",
            "requests/s per connection [as fast as possible]",
            "R",
        )
        .optopt("", "secs", "duration [10]", "S")
        .optopt(
            "",
            "pid",
            "server pid, to report its CPU time per operation",
            "PID",
        )
        .optflag("", "prefill", "write every key first")
        .optflag("h", "help", "this help");
    let usage = || opts.usage("cargo bench --bench load -- --server HOST:PORT [options]");
    let m = opts.parse(args).map_err(|e| format!("{e}\n{}", usage()))?;
    if m.opt_present("help") {
        println!("{}", usage());
        return Ok(());
    }
    fn num<T: std::str::FromStr>(m: &getopts::Matches, name: &str, default: T) -> BenchResult<T> {
        match m.opt_str(name) {
            Some(v) => v.parse().map_err(|_| format!("--{name} {v}: not a number")),
            None => Ok(default),
        }
    }
    let server = m.opt_str("server").ok_or_else(usage)?;
    let addr: SocketAddr = server
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("--server {server}: not an address"))?;
    let protocol = m.opt_str("protocol").unwrap_or_else(|| "text".into());
    let spec = Spec {
        protocol: Protocol::parse(&protocol).ok_or_else(|| format!("--protocol {protocol}?"))?,
        threads: num(&m, "threads", 2)?,
        conns_per_thread: num(&m, "conns", 25)?,
        depth: num(&m, "depth", 1)?,
        multi: num(&m, "multi", 1)?,
        get_ratio: num(&m, "get-ratio", 0.9)?,
        rate_per_conn: m
            .opt_str("rate")
            .map(|_| num(&m, "rate", 0.0))
            .transpose()?,
    };
    let value = m.opt_str("value").unwrap_or_else(|| "100".into());
    let (min, max) = match value.split_once('-') {
        Some((a, b)) => (a.parse(), b.parse()),
        None => (value.parse(), value.parse()),
    };
    let (Ok(min), Ok(max)) = (min, max) else {
        return Err(format!("--value {value}: N or MIN-MAX"));
    };
    let prefix = m.opt_str("prefix").unwrap_or_else(|| "load".into());
    let ds = Dataset::new(&prefix, num(&m, "keys", 100_000)?, min, max);
    if m.opt_present("prefill") {
        let started = Instant::now();
        loadgen::prefill(addr, &ds, 4)?;
        println!(
            "prefilled {} keys in {:.1} s",
            ds.keys,
            started.elapsed().as_secs_f64()
        );
    }
    let cpu = |pid: &Option<u32>| -> BenchResult<Option<f64>> {
        let Some(pid) = pid else { return Ok(None) };
        let path = format!("/proc/{pid}/stat");
        let stat = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(vec![], |(_, r)| r.split_whitespace().collect());
        let t = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        Ok(Some((t(11) + t(12)) / hz))
    };
    let pid: Option<u32> = m.opt_str("pid").map(|_| num(&m, "pid", 0)).transpose()?;
    let mut before = Ok(None);
    let secs: f64 = num(&m, "secs", 10.0)?;
    println!(
        "{}; {} keys, values {}",
        spec.describe(),
        ds.keys,
        ds.describe_values()
    );
    let measured = loadgen::run(
        addr,
        &ds,
        &spec,
        Duration::from_secs_f64(secs),
        0x5EED,
        || {
            before = cpu(&pid);
        },
    )?;
    let server_cpu = match (before?, cpu(&pid)?) {
        (Some(a), Some(b)) => b - a,
        _ => f64::NAN,
    };
    println!("{HEADER}");
    let sample = Sample::of(&measured, server_cpu, f64::NAN);
    print_sample("result", &server, &sample);
    let t = &measured.tally;
    println!(
        "  {} requests ({} gets of {} keys, {} sets), {} hits, {} misses, max latency {:.1} us",
        t.requests,
        t.gets,
        t.keys,
        t.sets,
        t.hits,
        t.misses,
        measured.histogram.max() as f64 / 1000.0
    );
    Ok(())
}

fn main() -> ExitCode {
    // `cargo bench` passes --bench; nothing else is meant for the comparison.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let result = if args.is_empty() {
        compare()
    } else {
        standalone(&args)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
