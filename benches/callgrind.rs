//! Instructions per request of memcached-rs next to Debian's memcached 1.6.18, counted by
//! valgrind's callgrind (`make bench-callgrind`; see benches/README.md).
//!
//! Each server runs under `valgrind --tool=callgrind --trace-children=no` with the same flags
//! as `make bench`; the generator (this process, not under valgrind) plays one fixed script of
//! mixed requests on one connection, one request at a time, validating every reply. Around the
//! script, `callgrind_control --dump` cuts the profile into three parts — start-up, the script,
//! shutdown (SIGTERM, after which the server exits 0 and callgrind writes the last part) — so
//! the per-request figure is the script part's instructions, all server threads counted,
//! divided by the requests. Unlike CPU time, the count does not depend on what else the
//! machine is doing. Then `callgrind_annotate` lists where memcached-rs spends them.

#[allow(dead_code)] // shared with benches/load.rs, which uses other parts
mod loadgen;

use loadgen::server::{self, Server};
use loadgen::{BenchResult, Conn, Context, Dataset, Protocol, Rng};
use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

/// Requests in the script unless `CALLGRIND_REQUESTS` says otherwise.
const DEFAULT_REQUESTS: u64 = 100_000;
/// Keys the script uses; it starts by setting each of them once.
const KEYS: u64 = 10_000;
/// Functions listed from each profile unless `CALLGRIND_TOP` says otherwise.
const DEFAULT_TOP: usize = 15;

/// The script: `KEYS` text sets (every key once), then a deterministic mix — 60% text get,
/// 10% text set, 5% text 10-key get, 15% meta get, 10% meta set — of 100-byte values.
fn play_script(conn: &mut Conn, ds: &Dataset, requests: u64) -> BenchResult<loadgen::Tally> {
    let mut rng = Rng::new(0xCA11_6121_D000_0001);
    let (mut tally, mut histogram) = (loadgen::Tally::default(), loadgen::new_histogram());
    let mut keys = Vec::with_capacity(10);
    for n in 0..requests {
        if n < KEYS.min(requests) {
            conn.queue_set(Protocol::Text, ds, n);
        } else {
            keys.clear();
            match rng.below(100) {
                0..60 => {
                    keys.push(rng.below(ds.keys));
                    conn.queue_get(Protocol::Text, ds, &keys);
                }
                60..70 => conn.queue_set(Protocol::Text, ds, rng.below(ds.keys)),
                70..75 => {
                    keys.extend((0..10).map(|_| rng.below(ds.keys)));
                    conn.queue_get(Protocol::Text, ds, &keys);
                }
                75..90 => {
                    keys.push(rng.below(ds.keys));
                    conn.queue_get(Protocol::Meta, ds, &keys);
                }
                _ => conn.queue_set(Protocol::Meta, ds, rng.below(ds.keys)),
            }
        }
        conn.flush()?;
        conn.receive_all(ds, &mut tally, &mut histogram)?;
    }
    Ok(tally)
}

/// `callgrind_control --dump` (write the counts so far as a new part, then zero them).
fn dump(pid: u32, reason: &str) -> BenchResult<()> {
    let out = Command::new("callgrind_control")
        .args([&format!("--dump={reason}"), &pid.to_string()])
        .output()
        .context("running callgrind_control")?;
    if !out.status.success() {
        return Err(format!(
            "callgrind_control --dump {pid}: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// What one server spent.
struct Counted {
    name: &'static str,
    startup: u64,
    script: Profile,
    shutdown: u64,
    requests: u64,
    /// The callgrind output file of the script part.
    script_file: PathBuf,
    wall_secs: f64,
}

impl Counted {
    fn whole(&self) -> u64 {
        self.startup + self.script.total + self.shutdown
    }

    fn per_request(&self) -> f64 {
        self.script.total as f64 / self.requests as f64
    }

    fn print_share(&self, instructions: u64, what: &str) {
        println!(
            "{:>6.2}%  {:>7.0}/req  {what}",
            100.0 * instructions as f64 / self.script.total as f64,
            instructions as f64 / self.requests as f64,
        );
    }
}

fn count(
    name: &'static str,
    binary: &Path,
    dir: &Path,
    ds: &Dataset,
    requests: u64,
) -> BenchResult<Counted> {
    let out_file = dir.join(format!("{name}.callgrind.out"));
    // Old parts would be taken for this run's.
    for entry in std::fs::read_dir(dir).context("listing the output directory")? {
        let path = entry.context("listing the output directory")?.path();
        let file_name = path.file_name().unwrap_or_default().to_string_lossy();
        if file_name.starts_with(&format!("{name}.callgrind.out")) {
            std::fs::remove_file(&path).context("removing an old profile")?;
        }
    }
    let port = server::free_port()?;
    let mut command: Vec<OsString> = [
        "valgrind",
        "--tool=callgrind",
        "--trace-children=no",
        "--vgdb=yes",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    let mut flag = |prefix: &str, path: &Path| {
        let mut f = OsString::from(prefix);
        f.push(path);
        command.push(f);
    };
    flag("--callgrind-out-file=", &out_file);
    flag("--log-file=", &dir.join(format!("{name}.valgrind.log")));
    command.push(binary.into());
    command.extend(server::flags_for(name, port));
    let started = Instant::now();
    // memcached sets RLIMIT_NOFILE to exactly -c (soft and hard) and exits if it cannot;
    // valgrind allows no hard limit but its own, the real one less the 12 descriptors it keeps
    // for itself. So memcached gets -c + 12. memcached-rs only raises the limit when it is
    // below -c + 64, so it keeps the inherited one. Neither counts instructions for it.
    let fd_limit = (name == "memcached").then_some(server::MAX_CONNS + 12);
    let mut server = Server::start(name, &command, port, Duration::from_secs(120), fd_limit)?;
    let mut conn = Conn::connect(server.addr())?;
    // A round trip first, so the connection is accepted and set up before the cut.
    let version = conn.command_line(b"version\r\n")?;
    if !version.starts_with("VERSION ") {
        return Err(format!("{name}: {version:?} in reply to version"));
    }
    dump(server.pid(), "startup")?;
    let tally = play_script(&mut conn, ds, requests).map_err(|e| format!("{name}: {e}"))?;
    dump(server.pid(), "script")?;
    drop(conn);
    let status = server.terminate(Duration::from_secs(120))?;
    if !status.success() {
        return Err(format!(
            "{name} under callgrind exited with {status} on SIGTERM"
        ));
    }
    let wall_secs = started.elapsed().as_secs_f64();
    // Parts: .1 start-up (to the first dump), .2 the script, then the file itself at exit.
    let part = |n: u32| PathBuf::from(format!("{}.{n}", out_file.display()));
    Ok(Counted {
        name,
        startup: read_profile(&part(1))?.total,
        script: read_profile(&part(2))?,
        shutdown: read_profile(&out_file)?.total,
        requests: tally.requests,
        script_file: part(2),
        wall_secs,
    })
}

/// A callgrind output file (one part), read for what the report needs.
#[derive(Default)]
struct Profile {
    /// The `summary:` line: every instruction of every thread in this part.
    total: u64,
    /// Own (exclusive) instructions per function, keyed `function [object]`. Code inlined into
    /// a function counts as the function's own (callgrind notes it under the inlined source
    /// file; callgrind_annotate lists each such file:function pair on its own).
    own: HashMap<String, u64>,
    /// Own instructions per object (the server binary, libc, libevent…).
    by_object: HashMap<String, u64>,
    /// Calls made into each function (by name), from every call site.
    calls_into: HashMap<String, u64>,
}

/// Reads a callgrind output file (format: valgrind's docs, "Callgrind Format Specification").
///
/// Not callgrind_annotate: for a part dumped while calls are in progress, callgrind writes
/// those calls as `calls=0` with their cost so far, and callgrind_annotate 3.19 then adds that
/// inclusive cost to the caller's own (`thread_start` at 100%). Here a call's cost line is
/// never anyone's own cost, whatever its count.
fn read_profile(file: &Path) -> BenchResult<Profile> {
    let text = std::fs::read_to_string(file).context(&format!("reading {}", file.display()))?;
    let mut profile = Profile::default();
    // Compressed names: `fn=(12) name` defines 12, `fn=(12)` uses it; fn/cfn share one table,
    // ob/cob another.
    let mut names: HashMap<(&str, String), String> = HashMap::new();
    let mut resolve = |table: &'static str, spec: &str| -> String {
        let spec = spec.trim();
        match spec.strip_prefix('(').and_then(|s| s.split_once(')')) {
            Some((id, rest)) if !rest.trim().is_empty() => {
                let name = rest.trim().to_string();
                names.insert((table, id.to_string()), name.clone());
                name
            }
            Some((id, _)) => names
                .get(&(table, id.to_string()))
                .cloned()
                .unwrap_or_else(|| format!("({id})")),
            None => spec.to_string(),
        }
    };
    let (mut function, mut object, mut callee) = (String::new(), String::new(), String::new());
    let mut call_cost_next = false;
    for line in text.lines() {
        let first = line.bytes().next().unwrap_or(b' ');
        if first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'*') {
            let cost: u64 = line
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            if std::mem::take(&mut call_cost_next) {
                continue; // the inclusive cost of the call just named
            }
            let short_object = object.rsplit('/').next().unwrap_or_default();
            *profile
                .own
                .entry(format!("{function} [{short_object}]"))
                .or_default() += cost;
            *profile.by_object.entry(object.clone()).or_default() += cost;
        } else if let Some(spec) = line.strip_prefix("fn=") {
            function = resolve("fn", spec);
        } else if let Some(spec) = line.strip_prefix("cfn=") {
            callee = resolve("fn", spec);
        } else if let Some(spec) = line.strip_prefix("ob=") {
            object = resolve("ob", spec);
        } else if let Some(spec) = line.strip_prefix("cob=") {
            resolve("ob", spec);
        } else if let Some(calls) = line.strip_prefix("calls=") {
            let count: u64 = calls
                .split_whitespace()
                .next()
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            *profile.calls_into.entry(callee.clone()).or_default() += count;
            call_cost_next = true;
        } else if let Some(total) = line
            .strip_prefix("summary:")
            .or_else(|| line.strip_prefix("totals:"))
        {
            profile.total = total
                .split_whitespace()
                .next()
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
        }
    }
    if profile.total == 0 {
        return Err(format!("no summary line in {}", file.display()));
    }
    Ok(profile)
}

/// Most expensive first.
fn top_of(costs: &HashMap<String, u64>, top: usize) -> Vec<(u64, &str)> {
    let mut sorted: Vec<(u64, &str)> = costs.iter().map(|(k, &v)| (v, k.as_str())).collect();
    sorted.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    sorted.truncate(top);
    sorted
}

/// libc's system call wrappers a server's request path may go through.
const SYSCALLS: [&str; 14] = [
    "epoll_wait",
    "epoll_pwait",
    "epoll_ctl",
    "read",
    "recv",
    "recvfrom",
    "recvmsg",
    "write",
    "writev",
    "send",
    "sendto",
    "sendmsg",
    "accept4",
    "syscall",
];

fn millions(n: u64) -> String {
    format!("{:.1} M", n as f64 / 1e6)
}

fn run() -> BenchResult<()> {
    server::require_memcached("bench-callgrind");
    for tool in ["valgrind", "callgrind_control", "callgrind_annotate"] {
        let found = Command::new(tool).arg("--help").output().is_ok();
        if !found {
            eprintln!(
                "bench-callgrind needs {tool}: install it with `sudo apt-get install valgrind`"
            );
            std::process::exit(2);
        }
    }
    let requests = std::env::var("CALLGRIND_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_REQUESTS);
    let top = std::env::var("CALLGRIND_TOP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_TOP);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-callgrind");
    std::fs::create_dir_all(&dir).context(&format!("creating {}", dir.display()))?;
    let ours = server::memcached_rs_path();
    println!(
        "bench-callgrind: {requests} requests on one connection, one at a time ({KEYS} text \
         sets, then 60% get, 10% set, 5% 10-key get, 15% mg, 10% ms; 100 B values); \
         memcached-rs = {}; output in {}",
        ours.display(),
        dir.display()
    );
    let ds = Dataset::new("cg", KEYS, 100, 100);
    let wall = Instant::now();
    let counted = [
        count("memcached-rs", &ours, &dir, &ds, requests)?,
        count(
            "memcached",
            Path::new(server::MEMCACHED_PATH),
            &dir,
            &ds,
            requests,
        )?,
    ];
    println!(
        "\nserver          start-up        script      shutdown         total   script \
         instr/request   wall s"
    );
    for c in &counted {
        println!(
            "{:<13}{:>12}{:>14}{:>14}{:>14}{:>15.0}{:>15.1}",
            c.name,
            millions(c.startup),
            millions(c.script.total),
            millions(c.shutdown),
            millions(c.whole()),
            c.per_request(),
            c.wall_secs
        );
    }
    let [ours, theirs] = &counted;
    println!(
        "memcached-rs / memcached: instructions per request {:.3}x; whole run (start-up + \
         script + shutdown) {:.3}x",
        ours.per_request() / theirs.per_request(),
        ours.whole() as f64 / theirs.whole() as f64
    );
    println!("\nsystem calls per request (calls into libc's wrappers; not counted above)");
    println!("{:<14}{:>14}{:>14}", "", ours.name, theirs.name);
    for syscall in SYSCALLS {
        let per_request = |c: &Counted| {
            let calls = c.script.calls_into.get(syscall).copied().unwrap_or(0);
            calls as f64 / c.requests as f64
        };
        if per_request(ours) > 0.0 || per_request(theirs) > 0.0 {
            println!(
                "{syscall:<14}{:>14.3}{:>14.3}",
                per_request(ours),
                per_request(theirs)
            );
        }
    }
    for c in &counted {
        println!(
            "\n{}: instructions by object in the script part ({})",
            c.name,
            c.script_file.display()
        );
        for (instructions, object) in top_of(&c.script.by_object, 6) {
            c.print_share(instructions, object);
        }
        println!(
            "{}: top {top} functions by own instructions (inlined code included)",
            c.name
        );
        for (instructions, function) in top_of(&c.script.own, top) {
            c.print_share(instructions, function);
        }
    }
    println!("\nwall time {:.1} s", wall.elapsed().as_secs_f64());
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-callgrind: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
