//! Hot keys (`stats hotkeys`, `hotkeys on|off|sample N`, `-o hotkeys`): the keys a skewed
//! workload reads most are reported, in order where the bounds tell them apart, with rates
//! within the bound the server reports; and the commands' edges.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Server, ServerKind};

/// One line of `stats hotkeys`.
#[derive(Debug, Clone)]
struct Reported {
    key: String,
    rate: f64,
    error: f64,
}

fn hot_keys(server: &Server, args: &str) -> Vec<Reported> {
    let reply = server.client().request(&format!("stats hotkeys {args}"));
    assert!(reply.ends_with("END\r\n"), "{reply}");
    reply
        .lines()
        .filter_map(|l| l.strip_prefix("STAT "))
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let number = |s: &str| s.parse::<f64>().unwrap_or_else(|_| panic!("{l}"));
            Reported {
                key: f[0].to_string(),
                rate: number(f[1]),
                error: number(f[2]),
            }
        })
        .collect()
}

fn uptime(server: &Server) -> u64 {
    let stats = server.client().request("stats");
    stats
        .lines()
        .find_map(|l| l.strip_prefix("STAT uptime "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{stats}"))
}

/// `count` keys drawn from a Zipf distribution (exponent 1.1) over `keys` keys, from a fixed
/// pseudo-random sequence.
fn zipf(keys: usize, count: usize) -> Vec<usize> {
    let weights: Vec<f64> = (1..=keys).map(|k| (k as f64).powf(-1.1)).collect();
    let total: f64 = weights.iter().sum();
    let mut cumulative = Vec::with_capacity(keys);
    let mut sum = 0.0;
    for w in &weights {
        sum += w / total;
        cumulative.push(sum);
    }
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    (0..count)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            cumulative.partition_point(|&c| c < u).min(keys - 1)
        })
        .collect()
}

/// Sends `gets` of the keys on one connection, pipelined, reading the replies as they come.
fn read_all(server: &Server, keys: &[usize]) {
    let mut stream = TcpStream::connect(server.addr()).expect("connect");
    let mut reader = stream.try_clone().expect("clone the stream");
    let expected = keys.len();
    let replies = std::thread::spawn(move || {
        let (mut ends, mut buf, mut tail) = (0, vec![0u8; 1 << 16], Vec::new());
        while ends < expected {
            let n = reader.read(&mut buf).expect("read replies");
            assert!(n > 0, "closed after {ends} replies");
            tail.extend_from_slice(&buf[..n]);
            ends += tail.windows(5).filter(|w| w == b"END\r\n").count();
            let keep = tail.len().min(4);
            tail.drain(..tail.len() - keep);
        }
    });
    for batch in keys.chunks(1000) {
        let mut requests = Vec::new();
        for k in batch {
            requests.extend_from_slice(format!("get key:{k}\r\n").as_bytes());
        }
        stream.write_all(&requests).expect("send gets");
    }
    replies.join().expect("the reader");
}

#[test]
fn a_zipf_workloads_top_ten_keys_are_reported_within_their_bounds() {
    let server = Server::start(ServerKind::MemcachedRs, &[]);
    let requests = zipf(1000, 400_000);
    let mut truth: HashMap<String, f64> = HashMap::new();
    for k in &requests {
        *truth.entry(format!("key:{k}")).or_default() += 1.0;
    }
    let began = uptime(&server);
    read_all(&server, &requests);
    let ended = uptime(&server);
    // The minute window covers the six complete ten-second periods before the current one (of
    // the server's clock, which runs 60 s ahead of its uptime): wait for the burst's last
    // period to complete.
    let deadline = Instant::now() + Duration::from_secs(30);
    while (uptime(&server) + 60) / 10 <= (ended + 60) / 10 {
        assert!(
            Instant::now() < deadline,
            "the server's clock does not advance"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        ended - began < 45,
        "the workload took {} s, longer than the window can hold",
        ended - began
    );
    let reported = hot_keys(&server, "reads 60s");
    let rank: HashMap<&str, usize> = reported
        .iter()
        .enumerate()
        .map(|(i, r)| (r.key.as_str(), i))
        .collect();
    let mut top: Vec<(&String, f64)> = truth.iter().map(|(k, n)| (k, n / 60.0)).collect();
    top.sort_by(|a, b| b.1.total_cmp(&a.1));
    let top = &top[..10];
    for (key, true_rate) in top {
        let Some(&i) = rank.get(key.as_str()) else {
            panic!("{key} ({true_rate:.1}/s) is not reported: {reported:?}");
        };
        let r = &reported[i];
        eprintln!(
            "{key}: reported #{} {:.1} ± {:.1}/s, truly {true_rate:.1}/s",
            i + 1,
            r.rate,
            r.error
        );
        assert!(
            (r.rate - true_rate).abs() <= r.error,
            "{key}: reported {:.1} ± {:.1}/s, truly {true_rate:.1}/s",
            r.rate,
            r.error
        );
    }
    for (i, (a, rate_a)) in top.iter().enumerate() {
        for (b, rate_b) in &top[i + 1..] {
            let (ra, rb) = (&reported[rank[a.as_str()]], &reported[rank[b.as_str()]]);
            if rate_a - rate_b > ra.error + rb.error {
                assert!(
                    rank[a.as_str()] < rank[b.as_str()],
                    "{a} ({rate_a:.1}/s) is truly hotter than {b} ({rate_b:.1}/s) by more than \
                     the bounds, yet reported after it: {ra:?} {rb:?}"
                );
            }
        }
    }
    let hottest = &reported[rank[top[0].0.as_str()]];
    assert!(
        hottest.error < hottest.rate / 4.0,
        "the bound says something: {hottest:?}"
    );
}

#[test]
fn the_switch_sampling_and_the_reply_forms() {
    let server = Server::start(ServerKind::MemcachedRs, &[]);
    let mut c = server.client();
    let settings = c.request("stats settings");
    assert!(
        settings.ends_with("STAT hotkeys yes\r\nSTAT hotkeys_sample 100\r\nEND\r\n"),
        "{settings}"
    );
    assert_eq!(c.request("hotkeys sample 1"), "OK\r\n");
    // A key that is not printable (here through the meta protocol's base64 keys) is shown in
    // base64 with a trailing b.
    c.send(b"mg a2V5AAE= b v\r\nset plain 0 0 3\r\nabc\r\n");
    assert_eq!(c.read_line(), "EN");
    assert_eq!(c.read_line(), "STORED");
    let deadline = Instant::now() + Duration::from_secs(30);
    let (reads, writes) = loop {
        let reads = server.client().request("stats hotkeys 1s");
        let writes = server.client().request("stats hotkeys 10s writes");
        if reads.contains("a2V5AAE=") && writes.contains("plain") {
            break (reads, writes);
        }
        assert!(Instant::now() < deadline, "{reads}{writes}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(reads, "STAT a2V5AAE= 1.0 0.0 b\r\nEND\r\n");
    assert_eq!(writes, "STAT plain 0.1 0.0\r\nEND\r\n");

    // Off: nothing sampled is kept, and nothing is reported.
    assert_eq!(c.request("hotkeys off"), "OK\r\n");
    assert_eq!(c.request("stats hotkeys writes"), "END\r\n");
    assert!(c
        .request("stats settings")
        .contains("STAT hotkeys no\r\nSTAT hotkeys_sample 1\r\n"));
    assert_eq!(c.request("hotkeys on noreply\r\nmn"), "MN\r\n");
    assert!(c
        .request("stats settings")
        .contains("STAT hotkeys yes\r\nSTAT hotkeys_sample 1\r\n"));

    for (bad, reply) in [
        (
            "stats hotkeys sometimes",
            "CLIENT_ERROR bad command line format",
        ),
        (
            "stats hotkeys reads reads",
            "CLIENT_ERROR bad command line format",
        ),
        (
            "stats hotkeys 1s 60s",
            "CLIENT_ERROR bad command line format",
        ),
        ("hotkeys", "CLIENT_ERROR usage: hotkeys on|off|sample N"),
        (
            "hotkeys maybe",
            "CLIENT_ERROR usage: hotkeys on|off|sample N",
        ),
        ("hotkeys sample 0", "CLIENT_ERROR bad command line format"),
        (
            "hotkeys sample 1000001",
            "CLIENT_ERROR bad command line format",
        ),
        ("hotkeys sample x", "CLIENT_ERROR bad command line format"),
    ] {
        assert_eq!(c.request(bad), format!("{reply}\r\n"), "{bad}");
    }
}

#[test]
fn dash_x_hides_hot_keys_as_it_hides_cachedump() {
    let server = Server::start(ServerKind::MemcachedRs, &["-X"]);
    let reply = server.client().request("stats hotkeys");
    assert_eq!(reply, "CLIENT_ERROR stats hotkeys not allowed\r\n");
}

#[test]
fn the_start_option_sets_or_refuses_sampling() {
    for (option, line) in [
        (
            "hotkeys=off",
            "STAT hotkeys no\r\nSTAT hotkeys_sample 100\r\n",
        ),
        (
            "hotkeys=0",
            "STAT hotkeys no\r\nSTAT hotkeys_sample 100\r\n",
        ),
        (
            "hotkeys=on",
            "STAT hotkeys yes\r\nSTAT hotkeys_sample 100\r\n",
        ),
        ("hotkeys=7", "STAT hotkeys yes\r\nSTAT hotkeys_sample 7\r\n"),
    ] {
        let server = Server::start(ServerKind::MemcachedRs, &["-o", option]);
        let settings = server.client().request("stats settings");
        assert!(settings.contains(line), "{option}: {settings}");
    }
    for option in ["hotkeys", "hotkeys=x", "hotkeys=1000001", "hotkeys=-1"] {
        let mut command = std::process::Command::new(common::memcached_rs_bin());
        if common::running_as_root() {
            command.args(["-u", "root"]);
        }
        let run = command
            .args(["-p", "0", "-U", "0", "-o", option])
            .output()
            .expect("run");
        assert!(!run.status.success(), "{option} was accepted");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(stderr.contains("hotkeys"), "{option}: {stderr}");
    }
}

#[test]
fn watch_hotkeys_tells_when_a_key_enters_the_hottest() {
    let server = Server::start(ServerKind::MemcachedRs, &["-o", "hotkeys=1"]);
    let mut watcher = server.client();
    watcher.send(b"watch hotkeys\r\n");
    assert_eq!(watcher.read_line(), "OK");
    let mut c = server.client();
    assert_eq!(c.request("set w 0 0 1\r\nx"), "STORED\r\n");
    // Requests every 50 ms: a hot key read, a write, and keys read once (each under 1%).
    let mut cold = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut reads, mut writes) = (None, None);
    while reads.is_none() || writes.is_none() {
        assert!(
            Instant::now() < deadline,
            "no hotkey lines: {reads:?} {writes:?}"
        );
        let mut batch = String::new();
        for _ in 0..20 {
            batch.push_str("get hot\r\n");
        }
        for _ in 0..5 {
            batch.push_str("set w 0 0 1 noreply\r\nx\r\n");
        }
        for _ in 0..40 {
            cold += 1;
            batch.push_str(&format!("get cold{cold}\r\n"));
        }
        batch.push_str("mn\r\n");
        c.send(batch.as_bytes());
        c.read_until_contains(b"MN\r\n");
        let (got, _) = watcher.read_until(Duration::from_millis(50), |_| false);
        for line in String::from_utf8_lossy(&got).lines() {
            if line.contains("metric=reads") && line.contains(" key=hot ") {
                reads = Some(line.to_string());
            }
            if line.contains("metric=writes") && line.contains(" key=w ") {
                writes = Some(line.to_string());
            }
            assert!(
                !line.contains("key=cold"),
                "a key under 1% was reported: {line}"
            );
        }
    }
    for line in [reads, writes].into_iter().flatten() {
        let fields: Vec<&str> = line.split(' ').collect();
        assert!(
            fields[0].starts_with("ts=") && fields[1].starts_with("gid="),
            "{line}"
        );
        assert_eq!(fields[2], "type=hotkey", "{line}");
        assert_eq!(fields[4], "window=10s", "{line}");
        assert_eq!(fields[5], "rank=1", "{line}");
        assert!(
            fields[7].starts_with("rate=") && fields[8] == "error=0.0",
            "{line}"
        );
    }
}
