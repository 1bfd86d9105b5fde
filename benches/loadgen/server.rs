//! Starting, watching and stopping the servers under test.

use super::{BenchResult, Context};
use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Debian's memcached, the reference.
pub const MEMCACHED_PATH: &str = "/usr/bin/memcached";

/// The memcached-rs binary: `$MEMCACHED_RS_BIN`, else Cargo's release build of this package.
pub fn memcached_rs_path() -> PathBuf {
    std::env::var_os("MEMCACHED_RS_BIN")
        .map_or_else(|| env!("CARGO_BIN_EXE_memcached-rs").into(), PathBuf::from)
}

/// Flags memcached-rs gets beyond those both servers get: `$MEMCACHED_RS_ARGS`, split on
/// spaces (to measure a setting's cost, e.g. `MEMCACHED_RS_ARGS="-o hotkeys=off"`).
pub fn memcached_rs_extra_flags() -> Vec<String> {
    std::env::var("MEMCACHED_RS_ARGS")
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// Exits with 2 and a hint when memcached is not installed.
pub fn require_memcached(bench: &str) {
    if !Path::new(MEMCACHED_PATH).is_file() {
        eprintln!(
            "{bench} compares against Debian's memcached, not found at {MEMCACHED_PATH}; \
             install it with `sudo apt-get install memcached` (or `make test-deps`)"
        );
        std::process::exit(2);
    }
}

/// `-c` of both servers.
pub const MAX_CONNS: u64 = 4096;

/// The flags both servers get: 2 worker threads, 1 GB, room for 4096 connections, no UDP.
pub fn server_flags(port: u16) -> Vec<String> {
    let mut args: Vec<String> = format!("-t 2 -m 1024 -c {MAX_CONNS} -U 0 -l 127.0.0.1 -p {port}")
        .split(' ')
        .map(String::from)
        .collect();
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        // Both daemons refuse to run as root without -u.
        args.extend(["-u".to_string(), "root".to_string()]);
    }
    args
}

/// The flags server `name` gets: [`server_flags`], and for memcached-rs
/// [`memcached_rs_extra_flags`] after them.
pub fn flags_for(name: &str, port: u16) -> Vec<OsString> {
    let mut flags = server_flags(port);
    if name == "memcached-rs" {
        flags.extend(memcached_rs_extra_flags());
    }
    flags.into_iter().map(OsString::from).collect()
}

/// A free loopback port (the kernel picks it; the server binds it right after we let go).
pub fn free_port() -> BenchResult<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .context("finding a free loopback port")?
        .port())
}

/// A running server, killed when dropped.
pub struct Server {
    pub name: String,
    pub port: u16,
    child: Child,
}

impl Server {
    /// Runs `command` (the server binary and its flags, possibly behind a wrapper such as
    /// valgrind) and waits up to `startup` for it to accept on `port`. `fd_limit` sets its
    /// RLIMIT_NOFILE (soft and hard) first.
    pub fn start(
        name: &str,
        command: &[OsString],
        port: u16,
        startup: Duration,
        fd_limit: Option<u64>,
    ) -> BenchResult<Server> {
        let shown = command
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ");
        let mut cmd = Command::new(&command[0]);
        if let Some(limit) = fd_limit {
            let rlimit = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            // SAFETY: setrlimit is async-signal-safe and only reads `rlimit`, which the
            // closure owns; nothing else runs between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let child = cmd
            .args(&command[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // Silent when all is well, so their stderr (inherited) shows only trouble.
            .spawn()
            .context(&format!("starting {shown}"))?;
        let mut server = Server {
            name: name.to_string(),
            port,
            child,
        };
        let deadline = Instant::now() + startup;
        while TcpStream::connect_timeout(&server.addr(), Duration::from_millis(100)).is_err() {
            let exited = server.child.try_wait().context("polling the server")?;
            if exited.is_some() || Instant::now() > deadline {
                let why =
                    exited.map_or(format!("no listener after {startup:?}"), |s| s.to_string());
                return Err(format!("{name} ({shown}) did not start: {why}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails if the server has exited.
    pub fn check_alive(&mut self) -> BenchResult<()> {
        match self.child.try_wait().context("polling the server")? {
            Some(status) => Err(format!("{} exited: {status}", self.name)),
            None => Ok(()),
        }
    }

    /// User + system CPU time of the whole process (every thread), from /proc/PID/stat.
    pub fn cpu_secs(&self) -> BenchResult<f64> {
        let (user, system) = stat_ticks(&format!("/proc/{}/stat", self.pid()))?;
        Ok(user + system)
    }

    /// CPU time split into user and system, for the whole process and for its worker threads
    /// (memcached-rs's `worker-N`, memcached's `mc-worker`), from /proc/PID/task/TID/stat.
    pub fn cpu_split(&self) -> BenchResult<CpuSplit> {
        let (user, system) = stat_ticks(&format!("/proc/{}/stat", self.pid()))?;
        let mut split = CpuSplit {
            user,
            system,
            ..CpuSplit::default()
        };
        let dir = format!("/proc/{}/task", self.pid());
        for task in std::fs::read_dir(&dir).context(&format!("listing {dir}"))? {
            let path = task.context(&format!("listing {dir}"))?.path();
            // A thread may have exited since the listing.
            let Ok(comm) = std::fs::read_to_string(path.join("comm")) else {
                continue;
            };
            if !comm.contains("worker") {
                continue;
            }
            let Ok((user, _)) = stat_ticks(&path.join("stat").to_string_lossy()) else {
                continue;
            };
            split.worker_user += user;
        }
        Ok(split)
    }

    /// Context switches (voluntary + involuntary) of every thread, from /proc/PID/task: a
    /// thread that blocks in epoll_wait and is woken again counts one.
    pub fn context_switches(&self) -> BenchResult<u64> {
        let dir = format!("/proc/{}/task", self.pid());
        let mut total = 0;
        for task in std::fs::read_dir(&dir).context(&format!("listing {dir}"))? {
            let path = task
                .context(&format!("listing {dir}"))?
                .path()
                .join("status");
            // A thread may have exited since the listing.
            let Ok(status) = std::fs::read_to_string(&path) else {
                continue;
            };
            total += status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
        }
        Ok(total)
    }

    /// A `kB` field of /proc/PID/status (VmRSS, VmHWM), in kB.
    pub fn status_kb(&self, field: &str) -> BenchResult<u64> {
        let path = format!("/proc/{}/status", self.pid());
        let status = std::fs::read_to_string(&path).context(&format!("reading {path}"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| format!("no {field} in {path}"))
    }

    /// Sends SIGTERM and waits up to `timeout` for the server to exit.
    pub fn terminate(&mut self, timeout: Duration) -> BenchResult<ExitStatus> {
        let pid = libc::pid_t::try_from(self.pid()).expect("pid fits pid_t");
        // SAFETY: kill has no memory-safety preconditions; the child is ours and not reaped.
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            return Err(format!(
                "SIGTERM to {}: {}",
                self.name,
                std::io::Error::last_os_error()
            ));
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().context("waiting for the server")? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} still running {timeout:?} after SIGTERM",
                    self.name
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // It may have exited already; a destructor has nothing better to do with an error.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU seconds of a server, user and system, and its worker threads' user time.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuSplit {
    pub user: f64,
    pub system: f64,
    pub worker_user: f64,
}

impl std::ops::Sub for CpuSplit {
    type Output = CpuSplit;
    fn sub(self, before: CpuSplit) -> CpuSplit {
        CpuSplit {
            user: self.user - before.user,
            system: self.system - before.system,
            worker_user: self.worker_user - before.worker_user,
        }
    }
}

/// utime and stime of a /proc stat file, in seconds.
fn stat_ticks(path: &str) -> BenchResult<(f64, f64)> {
    let stat = std::fs::read_to_string(path).context(&format!("reading {path}"))?;
    // Fields after the parenthesized command name: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    let (Some(utime), Some(stime)) = (ticks(11), ticks(12)) else {
        return Err(format!("no utime/stime in {path}: {stat:?}"));
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok((utime as f64 / hz, stime as f64 / hz))
}
