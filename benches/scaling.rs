//! How memcached-rs and memcached scale with worker threads (`make bench-scaling`; see
//! benches/README.md and docs/scaling.md).
//!
//! The machine's CPUs are split: the load generator (this process, pinned with
//! sched_setaffinity) gets the last half, the server the first half (`taskset`). The server then
//! runs at `-t 1, 2, 4 …` up to its share (at least 2), each step on as many of its CPUs as it
//! has threads; memcached-rs and memcached alternate, `BENCH_RUNS` runs of `BENCH_SECS` each,
//! and the medians are printed: ops/s, server CPU per op split into user and system (the
//! workers' user time beside it), and memcached-rs / memcached ratios. Made for a 16–64 core
//! machine; on 2 cores it runs `-t 1` and `-t 2`, both on the server's one CPU.
//!
//! The workload is W1 of `make bench-load`: text protocol, 90% gets / 10% sets of 100-byte
//! values over 100,000 keys, no pipelining, 50 connections per server thread.
//! `BENCH_MAX_THREADS` caps the steps. A report, not a test.

#[allow(dead_code)] // shared with the other benches, which use other parts
mod loadgen;

use loadgen::server::{self, CpuSplit, Server};
use loadgen::{env_number, median, BenchResult, Dataset, Protocol, Spec};
use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Duration;

/// This process's allowed CPUs.
fn allowed_cpus() -> BenchResult<Vec<usize>> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity writes at most its size.
    let mut set = unsafe { std::mem::zeroed::<libc::cpu_set_t>() };
    // SAFETY: `set` is a live cpu_set_t and the size passed is its own.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Err(format!(
            "sched_getaffinity: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: CPU_ISSET reads the set within its bounds (i < CPU_SETSIZE).
    Ok((0..libc::CPU_SETSIZE as usize)
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
        .collect())
}

/// Pins the calling thread, and so every thread it starts later, to `cpus`: called first thing,
/// before any other thread exists, it pins the whole load generator.
fn pin_self(cpus: &[usize]) -> BenchResult<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set.
    let mut set = unsafe { std::mem::zeroed::<libc::cpu_set_t>() };
    for &cpu in cpus {
        // SAFETY: every cpu came from allowed_cpus, below CPU_SETSIZE.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: `set` is a live cpu_set_t and the size passed is its own.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(format!(
            "sched_setaffinity: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

fn cpu_list(cpus: &[usize]) -> String {
    cpus.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// One run's figures.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    ops_per_sec: f64,
    user_us: f64,
    system_us: f64,
    /// User plus system, per run (its median is not the sum of theirs).
    cpu_us: f64,
    worker_user_us: f64,
}

fn medians(samples: &[Sample]) -> Sample {
    let m = |f: fn(&Sample) -> f64| median(samples.iter().map(f).collect());
    Sample {
        ops_per_sec: m(|s| s.ops_per_sec),
        user_us: m(|s| s.user_us),
        system_us: m(|s| s.system_us),
        cpu_us: m(|s| s.cpu_us),
        worker_user_us: m(|s| s.worker_user_us),
    }
}

fn measure(
    server: &mut Server,
    ds: &Dataset,
    spec: &Spec,
    secs: f64,
    seed: u64,
) -> BenchResult<Sample> {
    let mut before: BenchResult<CpuSplit> = Ok(CpuSplit::default());
    let measured = loadgen::run(
        server.addr(),
        ds,
        spec,
        Duration::from_secs_f64(secs),
        seed,
        || before = server.cpu_split(),
    )?;
    let cpu = server.cpu_split()? - before?;
    let ops = measured.tally.requests.max(1) as f64;
    let sample = Sample {
        ops_per_sec: measured.tally.requests as f64 / measured.secs,
        user_us: cpu.user * 1e6 / ops,
        system_us: cpu.system * 1e6 / ops,
        cpu_us: (cpu.user + cpu.system) * 1e6 / ops,
        worker_user_us: cpu.worker_user * 1e6 / ops,
    };
    drop(measured);
    std::thread::sleep(Duration::from_millis(200));
    server.check_alive()?;
    Ok(sample)
}

fn start(name: &str, binary: OsString, threads: usize, cpus: &[usize]) -> BenchResult<Server> {
    let port = server::free_port()?;
    let mut command: Vec<OsString> =
        vec!["taskset".into(), "-c".into(), cpu_list(cpus).into(), binary];
    let mut flags = server::flags_for(name, port);
    // server_flags says -t 2; this step's count replaces it.
    if let Some(at) = flags.iter().position(|f| f == "-t") {
        flags[at + 1] = threads.to_string().into();
    }
    command.extend(flags);
    Server::start(name, &command, port, Duration::from_secs(10), None)
}

fn scaling() -> BenchResult<()> {
    server::require_memcached("bench-scaling");
    let cpus = allowed_cpus()?;
    if cpus.len() < 2 {
        return Err(
            "bench-scaling needs at least 2 CPUs: one for the server, one for the load".into(),
        );
    }
    let generator_cpus = cpus[cpus.len() / 2..].to_vec();
    let server_cpus = cpus[..cpus.len() / 2].to_vec();
    pin_self(&generator_cpus)?;
    let max_threads = (env_number("BENCH_MAX_THREADS", f64::INFINITY) as usize)
        .min(server_cpus.len().max(2))
        .max(1);
    let mut steps = vec![1];
    while steps[steps.len() - 1] * 2 <= max_threads {
        steps.push(steps[steps.len() - 1] * 2);
    }
    let secs = env_number("BENCH_SECS", 4.0);
    let runs = env_number("BENCH_RUNS", 3.0).max(1.0) as usize;
    println!(
        "bench-scaling: {} CPUs; server on {}, load generator on {}; -t {}; {runs} runs x {secs} s, alternating",
        cpus.len(),
        cpu_list(&server_cpus),
        cpu_list(&generator_cpus),
        steps.iter().map(usize::to_string).collect::<Vec<_>>().join(", "),
    );
    let ds = Dataset::new("v100", 100_000, 100, 100);
    println!(
        "{:>4} {:<13} {:>10} {:>9} {:>9} {:>9} {:>14}   {:>7} {:>7}",
        "-t", "server", "ops/s", "user/op", "sys/op", "CPU/op", "worker user/op", "ops x", "CPU x"
    );
    for &threads in &steps {
        let on = &server_cpus[..threads.min(server_cpus.len())];
        let mut servers = vec![
            start(
                "memcached-rs",
                server::memcached_rs_path().into(),
                threads,
                on,
            )?,
            start("memcached", server::MEMCACHED_PATH.into(), threads, on)?,
        ];
        for s in &servers {
            loadgen::prefill(s.addr(), &ds, 4)
                .map_err(|e| format!("{}: prefilling: {e}", s.name))?;
        }
        let spec = Spec {
            protocol: Protocol::Text,
            threads: generator_cpus.len(),
            conns_per_thread: (50 * threads).div_ceil(generator_cpus.len()),
            depth: 1,
            multi: 1,
            get_ratio: 0.9,
            rate_per_conn: None,
        };
        let mut samples = [Vec::new(), Vec::new()];
        for run in 0..runs {
            for (i, s) in servers.iter_mut().enumerate() {
                let seed = 0x5CA1E ^ ((run as u64) << 16) ^ threads as u64;
                samples[i].push(
                    measure(s, &ds, &spec, secs, seed)
                        .map_err(|e| format!("-t {threads}, {}: {e}", s.name))?,
                );
            }
        }
        let [ours, theirs] = [medians(&samples[0]), medians(&samples[1])];
        for (name, m, ratios) in [("memcached-rs", ours, true), ("memcached", theirs, false)] {
            let ratio = if ratios {
                format!(
                    "   {:>6.2}x {:>6.2}x",
                    m.ops_per_sec / theirs.ops_per_sec,
                    m.cpu_us / theirs.cpu_us
                )
            } else {
                String::new()
            };
            println!(
                "{threads:>4} {name:<13} {:>10.0} {:>7.2}us {:>7.2}us {:>7.2}us {:>12.2}us{ratio}",
                m.ops_per_sec, m.user_us, m.system_us, m.cpu_us, m.worker_user_us,
            );
        }
        for s in &mut servers {
            s.terminate(Duration::from_secs(10))?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match scaling() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-scaling: {e}");
            ExitCode::FAILURE
        }
    }
}
