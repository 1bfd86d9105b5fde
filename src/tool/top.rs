//! `top`: a live view of one or more servers, refreshed every second — requests per second by
//! command, hit ratio, evictions and reclaims per second, connections, memory per slab class
//! as bars, and the hottest keys (where the server reports them).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::terminal::Terminal;
use super::Client;

/// Counters shown as rates, each a sum of `stats` fields.
const RATES: &[(&str, &[&str])] = &[
    ("get/s", &["cmd_get"]),
    ("set/s", &["cmd_set"]),
    ("delete/s", &["delete_hits", "delete_misses"]),
    (
        "incr/s",
        &["incr_hits", "incr_misses", "decr_hits", "decr_misses"],
    ),
    ("touch/s", &["cmd_touch"]),
    ("evict/s", &["evictions"]),
    ("reclaim/s", &["reclaimed"]),
];

/// What one look at a server found.
#[derive(Default)]
struct Sample {
    stats: HashMap<String, String>,
    /// Per slab class: (class, chunk size, pages, chunks used, chunks in all).
    classes: Vec<(u64, u64, u64, u64, u64)>,
    /// `stats hotkeys reads 10s`, or `None` where the server has none.
    hot: Option<Vec<(String, String)>>,
    at: Option<Instant>,
}

impl Sample {
    fn number(&self, name: &str) -> f64 {
        self.stats
            .get(name)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    }

    fn sum(&self, names: &[&str]) -> f64 {
        names.iter().map(|n| self.number(n)).sum()
    }
}

/// One server: its connection (made again when lost) and its last two samples.
struct Watched {
    addr: String,
    client: Option<Client>,
    last: Option<Sample>,
    now: Option<Sample>,
    error: Option<String>,
}

impl Watched {
    fn refresh(&mut self) {
        if self.client.is_none() {
            match Client::connect(&self.addr) {
                Ok(c) => self.client = Some(c),
                Err(e) => {
                    self.error = Some(e.to_string());
                    return;
                }
            }
        }
        let Some(client) = self.client.as_mut() else {
            return;
        };
        match sample(client) {
            Ok(s) => {
                self.last = self.now.take();
                self.now = Some(s);
                self.error = None;
            }
            Err(e) => {
                self.client = None;
                self.error = Some(e.to_string());
            }
        }
    }

    /// A counter's rate per second between the last two samples.
    fn rate(&self, names: &[&str]) -> Option<f64> {
        let (last, now) = (self.last.as_ref()?, self.now.as_ref()?);
        let secs = now.at?.duration_since(last.at?).as_secs_f64();
        (secs > 0.0).then(|| ((now.sum(names) - last.sum(names)) / secs).max(0.0))
    }

    /// The hit ratio of the gets between the last two samples (since the start before that).
    fn hit_ratio(&self) -> Option<f64> {
        let now = self.now.as_ref()?;
        let (mut hits, mut misses) = (now.number("get_hits"), now.number("get_misses"));
        if let Some(last) = &self.last {
            let (h, m) = (
                hits - last.number("get_hits"),
                misses - last.number("get_misses"),
            );
            if h + m > 0.0 {
                (hits, misses) = (h, m);
            }
        }
        (hits + misses > 0.0).then(|| 100.0 * hits / (hits + misses))
    }
}

fn sample(c: &mut Client) -> std::io::Result<Sample> {
    let stats = c.stats("")?.unwrap_or_default().into_iter().collect();
    let by_class = super::slab_classes(c)?;
    let mut classes: Vec<_> = by_class
        .into_iter()
        .map(|(class, f)| {
            let g = |n: &str| f.get(n).copied().unwrap_or(0);
            let size = g("chunk_size");
            (
                class,
                size,
                g("total_pages"),
                g("used_chunks"),
                g("total_chunks"),
            )
        })
        .filter(|c| c.2 > 0)
        .collect();
    classes.sort_unstable();
    let hot = c.stats("hotkeys reads 10s")?;
    Ok(Sample {
        stats,
        classes,
        hot,
        at: Some(Instant::now()),
    })
}

/// Runs the view until `q`, Ctrl-C or SIGTERM; returns the exit status.
pub fn run(servers: &[&str]) -> i32 {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(&stop)) {
            eprintln!("memcached-rs-tool: cannot catch signal {signal}: {e}");
            return 1;
        }
    }
    let mut watched: Vec<Watched> = servers
        .iter()
        .map(|a| Watched {
            addr: a.to_string(),
            client: None,
            last: None,
            now: None,
            error: None,
        })
        .collect();
    let terminal = match Terminal::enter() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("memcached-rs-tool: the terminal: {e}");
            return 1;
        }
    };
    while !stop.load(Ordering::Relaxed) {
        let began = Instant::now();
        for w in &mut watched {
            w.refresh();
        }
        let (columns, rows) = terminal.size();
        if terminal.draw(&frame(&watched, columns, rows)).is_err() {
            break;
        }
        let wait = Duration::from_secs(1).saturating_sub(began.elapsed());
        if matches!(terminal.key(wait), Some(b'q' | b'Q')) {
            break;
        }
    }
    0
}

/// A number in a column: whole when large, one decimal when small.
fn num(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// The screen's lines.
fn frame(watched: &[Watched], columns: usize, rows: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let now = super::top_clock();
    lines.push(format!(
        "memcached-rs-tool top: {} server{}   {now}   (q quits)",
        watched.len(),
        if watched.len() == 1 { "" } else { "s" }
    ));
    lines.push(String::new());
    let mut header = format!("{:<22}", "server");
    for (name, _) in RATES {
        header.push_str(&format!(" {name:>9}"));
    }
    header.push_str(&format!(
        " {:>6} {:>6} {:>10} {:>13}",
        "hit%", "conns", "items", "MB used/max"
    ));
    lines.push(header);
    let mut totals = vec![0.0; RATES.len()];
    for w in watched {
        let mut line = format!("{:<22}", truncate(&w.addr, 22));
        let Some(now) = &w.now else {
            line.push_str(&format!(
                " unreachable: {}",
                w.error.as_deref().unwrap_or("connecting")
            ));
            lines.push(line);
            continue;
        };
        for (i, (_, names)) in RATES.iter().enumerate() {
            let rate = w.rate(names);
            totals[i] += rate.unwrap_or(0.0);
            line.push_str(&format!(" {:>9}", rate.map_or("-".to_string(), num)));
        }
        let hit = w.hit_ratio().map_or("-".to_string(), |h| format!("{h:.1}"));
        let mb = |n: &str| now.number(n) / 1_048_576.0;
        line.push_str(&format!(
            " {hit:>6} {:>6} {:>10} {:>13}",
            now.number("curr_connections"),
            now.number("curr_items"),
            format!("{:.0}/{:.0}", mb("bytes"), mb("limit_maxbytes"))
        ));
        if let Some(e) = &w.error {
            line.push_str(&format!("  (stale: {e})"));
        }
        lines.push(line);
    }
    if watched.len() > 1 {
        let mut line = format!("{:<22}", "all");
        for t in &totals {
            line.push_str(&format!(" {:>9}", num(*t)));
        }
        lines.push(line);
    }
    lines.push(String::new());
    memory_bars(watched, columns, &mut lines);
    lines.push(String::new());
    hot_keys(watched, rows.saturating_sub(lines.len() + 2), &mut lines);
    lines.truncate(rows);
    lines.iter().map(|l| truncate(l, columns)).collect()
}

/// Memory per slab class over every server, as bars scaled to the largest class.
fn memory_bars(watched: &[Watched], columns: usize, lines: &mut Vec<String>) {
    let mut classes: HashMap<u64, (u64, u64, u64, u64)> = HashMap::new();
    for s in watched.iter().filter_map(|w| w.now.as_ref()) {
        for &(class, size, pages, used, total) in &s.classes {
            let c = classes.entry(class).or_default();
            c.0 = size;
            c.1 += pages;
            c.2 += used;
            c.3 += total;
        }
    }
    let mut classes: Vec<_> = classes.into_iter().collect();
    classes.sort_unstable();
    lines.push("memory by slab class   class  chunk  pages  used%".to_string());
    let largest = classes.iter().map(|(_, c)| c.1).max().unwrap_or(0).max(1);
    let width = columns.saturating_sub(48).clamp(10, 60);
    for (class, (size, pages, used, total)) in classes {
        let bar = "#".repeat(((pages * width as u64).div_ceil(largest)) as usize);
        let used = if total > 0 {
            100.0 * used as f64 / total as f64
        } else {
            0.0
        };
        let size = super::chunk_size_label(size);
        lines.push(format!(
            "{:>28} {size:>6} {pages:>6} {used:>5.0}%  {bar}",
            class
        ));
    }
}

/// The hottest keys (reads over the last ten seconds) of every server that reports them.
fn hot_keys(watched: &[Watched], room: usize, lines: &mut Vec<String>) {
    let mut keys: Vec<(f64, String, String, &str)> = Vec::new();
    let mut reporting = 0;
    for w in watched {
        let Some(hot) = w.now.as_ref().and_then(|s| s.hot.as_ref()) else {
            continue;
        };
        reporting += 1;
        for (key, value) in hot {
            let (shown, rate, error) = super::hot_row(key, value);
            let r = rate.parse().unwrap_or(0.0);
            keys.push((r, shown, format!("{rate}/s ± {error}"), &w.addr));
        }
    }
    if reporting == 0 {
        lines.push("hottest keys: not reported by these servers".to_string());
        return;
    }
    lines.push("hottest keys (reads, last 10 s)".to_string());
    keys.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (_, key, rate, addr) in keys.into_iter().take(room.max(1)) {
        let server = if watched.len() > 1 { addr } else { "" };
        lines.push(format!("  {:<40} {rate:>24}  {server}", truncate(&key, 40)));
    }
}

/// At most `n` characters of `s`.
fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}
