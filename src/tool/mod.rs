//! `memcached-rs-tool`: memcached-tool's reports (display, stats, settings, sizes, dump, keys)
//! with its output, plus `hotkeys` and a live `top`, against memcached-rs or any memcached,
//! one server or several (`HOST:PORT,HOST:PORT`, as a ketama pool is run).

mod client;
mod terminal;
mod top;

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};

pub use client::Client;

const USAGE: &str = "Usage: memcached-rs-tool <host[:port] | /path/to/socket>[,<more servers>] [mode]

       memcached-rs-tool 10.0.0.5:11211 display           # shows slabs
       memcached-rs-tool 10.0.0.5:11211                   # same.  (default is display)
       memcached-rs-tool 10.0.0.5:11211 stats             # shows general stats
       memcached-rs-tool 10.0.0.5:11211 settings          # shows settings stats
       memcached-rs-tool 10.0.0.5:11211 sizes             # shows sizes stats
       memcached-rs-tool 10.0.0.5:11211 dump [limit]      # dumps keys and values
       memcached-rs-tool 10.0.0.5:11211 keys [-u] [limit] # dumps keys (-u: unescape special characters)
       memcached-rs-tool 10.0.0.5:11211 hotkeys [reads|writes|bytes] [1s|10s|60s]
                                                        # the hottest keys (memcached-rs)
       memcached-rs-tool 10.0.0.5:11211,10.0.0.6:11211 top
                                                        # a live view, refreshed every second
";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    Display,
    Stats,
    Settings,
    Sizes,
    Dump { limit: Option<u64> },
    Keys { unescape: bool, limit: Option<u64> },
    HotKeys { args: Vec<String> },
    Top,
}

/// Reads the mode and its arguments as memcached-tool does; `None` shows the usage.
fn parse_mode(args: &[String]) -> Option<Mode> {
    let limit = |s: &String| s.parse::<u64>().ok().filter(|&n| n >= 1);
    let mode = match args.first().map(String::as_str) {
        None | Some("display") if args.len() <= 1 => Mode::Display,
        Some("stats") if args.len() == 1 => Mode::Stats,
        Some("settings") if args.len() == 1 => Mode::Settings,
        Some("sizes") if args.len() == 1 => Mode::Sizes,
        Some("top") if args.len() == 1 => Mode::Top,
        Some("dump") => match &args[1..] {
            [] => Mode::Dump { limit: None },
            [n] => Mode::Dump {
                limit: Some(limit(n)?),
            },
            _ => return None,
        },
        Some("keys") => {
            let rest = &args[1..];
            let unescape = rest.first().is_some_and(|a| a == "-u");
            let rest = &rest[usize::from(unescape)..];
            match rest {
                [] => Mode::Keys {
                    unescape,
                    limit: None,
                },
                [n] => Mode::Keys {
                    unescape,
                    limit: Some(limit(n)?),
                },
                _ => return None,
            }
        }
        Some("hotkeys") if args.len() <= 3 => Mode::HotKeys {
            args: args[1..].to_vec(),
        },
        _ => return None,
    };
    Some(mode)
}

/// Runs the tool with the arguments after the program name; returns the exit status.
pub fn main(args: &[String]) -> i32 {
    if args.first().is_some_and(|a| a == "-V" || a == "--version") {
        println!("memcached-rs-tool {}", env!("CARGO_PKG_VERSION"));
        return 0;
    }
    let (Some(servers), Some(mode)) = (args.first(), parse_mode(args.get(1..).unwrap_or(&[])))
    else {
        eprint!("{USAGE}");
        return 1;
    };
    let servers: Vec<&str> = servers.split(',').filter(|s| !s.is_empty()).collect();
    if servers.is_empty() || servers[0].starts_with('-') {
        eprint!("{USAGE}");
        return 1;
    }
    if mode == Mode::Top {
        return top::run(&servers);
    }
    let several = servers.len() > 1;
    let mut status = 0;
    for addr in servers {
        let mut client = match Client::connect(addr) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("Couldn't connect to {addr}: {e}");
                status = 1;
                continue;
            }
        };
        let mut out = io::stdout().lock();
        if several && !matches!(mode, Mode::Dump { .. }) {
            let _ = writeln!(out, "== {addr} ==");
        }
        if let Err(e) = report(&mut client, &mode, &mut out) {
            let _ = out.flush();
            eprintln!("{addr}: {e}");
            status = 1;
        }
    }
    status
}

fn report(c: &mut Client, mode: &Mode, out: &mut impl Write) -> io::Result<()> {
    match mode {
        Mode::Display => display(c, out),
        Mode::Stats => fields(c, "", ("Field", "Value"), (22, 5, 13, 29, 14), out),
        Mode::Settings => fields(c, "settings", ("Field", "Value"), (17, 5, 11, 24, 12), out),
        Mode::Sizes => fields(c, "sizes", ("Size", "Count"), (17, 5, 11, 24, 12), out),
        Mode::Dump { limit } => dump(c, *limit, out),
        Mode::Keys { unescape, limit } => keys(c, *unescape, *limit, out),
        Mode::HotKeys { args } => hot_keys(c, args, out),
        Mode::Top => Ok(()),
    }
}

/// `stats`, `stats settings`, `stats sizes`: a header, then every field sorted by name, in
/// memcached-tool's widths.
fn fields(
    c: &mut Client,
    args: &str,
    (name, value): (&str, &str),
    (addr_w, name_w, value_w, row_name_w, row_value_w): (usize, usize, usize, usize, usize),
    out: &mut impl Write,
) -> io::Result<()> {
    let pairs = c.stats(args)?.unwrap_or_default();
    let sorted: BTreeMap<String, String> = pairs.into_iter().collect();
    let addr = &c.shown;
    writeln!(out, "#{addr:<addr_w$} {name:>name_w$} {value:>value_w$}")?;
    for (k, v) in sorted {
        // memcached-tool keeps the reply's \r on the value (its regex takes it), so it counts
        // in the width and ends the line before the \n; scripts that read the output see the
        // same bytes from both tools.
        let v = format!("{v}\r");
        writeln!(out, "{k:>row_name_w$} {v:>row_value_w$}")?;
    }
    Ok(())
}

/// The leading digits of a stat's value as a number (as memcached-tool's `(\d+)` reads it).
fn leading_number(v: &str) -> Option<u64> {
    let digits: String = v.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Per slab class fields of a `stats` reply whose names are `<prefix><class>:<field>`
/// (`stats slabs`, `stats items` with `items:`), read into `classes`; returns the largest class
/// seen (0 for none).
fn per_class(
    pairs: Vec<(String, String)>,
    prefix: &str,
    classes: &mut HashMap<u64, HashMap<String, u64>>,
) -> u64 {
    let mut max = 0;
    for (name, value) in pairs {
        let Some((class, field)) = name.strip_prefix(prefix).and_then(|n| n.split_once(':')) else {
            continue;
        };
        if let (Ok(class), Some(v)) = (class.parse::<u64>(), leading_number(&value)) {
            let fields = classes.entry(class).or_default();
            fields.insert(field.to_string(), v);
            max = max.max(class);
        }
    }
    max
}

/// `stats slabs` by class.
fn slab_classes(c: &mut Client) -> io::Result<HashMap<u64, HashMap<String, u64>>> {
    let mut classes = HashMap::new();
    per_class(c.stats("slabs")?.unwrap_or_default(), "", &mut classes);
    Ok(classes)
}

/// `display`: one line per slab class that has pages.
fn display(c: &mut Client, out: &mut impl Write) -> io::Result<()> {
    let mut classes = HashMap::new();
    per_class(
        c.stats("items")?.unwrap_or_default(),
        "items:",
        &mut classes,
    );
    let max = per_class(c.stats("slabs")?.unwrap_or_default(), "", &mut classes);
    writeln!(
        out,
        "  #  Item_Size  Max_age   Pages   Count   Full?  Evicted Evict_Time OOM"
    )?;
    for n in 1..=max {
        let empty = HashMap::new();
        let it = classes.get(&n).unwrap_or(&empty);
        let f = |name: &str| it.get(name).copied().unwrap_or(0);
        if f("total_pages") == 0 {
            continue;
        }
        let size = chunk_size_label(f("chunk_size"));
        let full = if f("used_chunks") == f("total_chunks") {
            "yes"
        } else {
            " no"
        };
        writeln!(
            out,
            "{n:3} {size:>8} {:>9}s {:7} {:7} {full:>7} {:8} {:8} {:4}",
            f("age"),
            f("total_pages"),
            f("number"),
            f("evicted"),
            f("evicted_time"),
            f("outofmemory")
        )?;
    }
    Ok(())
}

/// A metadump key (`%xx` escapes) decoded.
fn unescape(key: &str) -> Vec<u8> {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// The lines of `lru_crawler metadump all`, at most `limit` of them.
fn metadump(c: &mut Client, limit: Option<u64>) -> io::Result<Vec<String>> {
    c.send("lru_crawler metadump all")?;
    let mut lines = Vec::new();
    loop {
        if limit.is_some_and(|l| lines.len() as u64 == l) {
            break;
        }
        let line = String::from_utf8_lossy(&c.line()?).into_owned();
        if line.starts_with("END") {
            break;
        }
        if line.starts_with("ERROR") || line.starts_with("CLIENT_ERROR") {
            return Err(io::Error::other(line));
        }
        lines.push(line);
    }
    Ok(lines)
}

/// `key=… exp=…` of a metadump line.
fn key_and_exptime(line: &str) -> Option<(&str, i64)> {
    let mut words = line.split(' ');
    let key = words.next()?.strip_prefix("key=")?;
    let exp = words.next()?.strip_prefix("exp=")?.parse().ok()?;
    Some((key, exp))
}

/// `dump`: every item as the `add` command that stores it again.
fn dump(c: &mut Client, limit: Option<u64>, out: &mut impl Write) -> io::Result<()> {
    match limit {
        Some(l) => eprintln!("Dumping memcache contents (limiting to {l} keys)"),
        None => eprintln!("Dumping memcache contents"),
    }
    let lines = metadump(c, limit)?;
    if limit.is_some() {
        // A dump cut short leaves the rest of it coming on this connection.
        *c = Client::connect(&c.addr)?;
    }
    for line in &lines {
        let Some((key, exp)) = key_and_exptime(line) else {
            continue;
        };
        let key = unescape(key);
        let exp = if exp == -1 { 0 } else { exp };
        let mut request = b"get ".to_vec();
        request.extend_from_slice(&key);
        c.send(&String::from_utf8_lossy(&request))?;
        let header = String::from_utf8_lossy(&c.line()?).into_owned();
        let words: Vec<&str> = header.split(' ').collect();
        if let ["VALUE", _, flags, len] = words[..] {
            let len: usize = len.parse().map_err(io::Error::other)?;
            let value = c.data(len)?;
            out.write_all(b"add ")?;
            out.write_all(&key)?;
            write!(out, " {flags} {exp} {len}\r\n")?;
            out.write_all(&value)?;
            out.write_all(b"\r\n")?;
            c.line()?;
        }
    }
    Ok(())
}

/// `keys`: the metadump lines, `%xx` escapes decoded with `-u`.
fn keys(c: &mut Client, decode: bool, limit: Option<u64>, out: &mut impl Write) -> io::Result<()> {
    match limit {
        Some(l) => eprintln!("Dumping memcache keys (limiting to {l} keys)"),
        None => eprintln!("Dumping memcache keys"),
    }
    for line in metadump(c, limit)? {
        if key_and_exptime(&line).is_none() {
            continue;
        }
        if decode {
            out.write_all(&unescape(&line))?;
        } else {
            out.write_all(line.as_bytes())?;
        }
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// `hotkeys [metric] [window]`: `stats hotkeys` as a table.
fn hot_keys(c: &mut Client, args: &[String], out: &mut impl Write) -> io::Result<()> {
    let args = args.join(" ");
    let request = if args.is_empty() {
        "hotkeys".to_string()
    } else {
        format!("hotkeys {args}")
    };
    let Some(rows) = c.stats(&request)? else {
        writeln!(
            out,
            "#{} reports no hot keys (not a memcached-rs, or -X)",
            c.shown
        )?;
        return Ok(());
    };
    let shown = if args.is_empty() { "reads 10s" } else { &args };
    writeln!(out, "#{} {shown}", c.shown)?;
    writeln!(
        out,
        "{:>4}  {:<40} {:>12} {:>12}",
        "rank", "key", "per second", "error"
    )?;
    for (rank, (key, value)) in rows.iter().enumerate() {
        let (key, rate, error) = hot_row(key, value);
        writeln!(out, "{:>4}  {key:<40} {rate:>12} {error:>12}", rank + 1)?;
    }
    Ok(())
}

/// The local time of day, `HH:MM:SS`, for the view's title.
fn top_clock() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // SAFETY: tm is plain data, for which all zeroes is a valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let t = now as libc::time_t;
    // SAFETY: localtime_r reads `t` and writes the valid `tm` it is given (thread-safe).
    let ok = !unsafe { libc::localtime_r(&t, &mut tm) }.is_null();
    if ok {
        format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
    } else {
        format!("{now}")
    }
}

#[cfg(test)]
mod tests;

/// A `stats hotkeys` row (`STAT <key> <rate> <error> [b]`) as shown: the key (marked when it
/// is base64), its rate and its error bound.
fn hot_row<'a>(key: &str, value: &'a str) -> (String, &'a str, &'a str) {
    let mut v = value.split(' ');
    let (rate, error) = (v.next().unwrap_or(""), v.next().unwrap_or(""));
    let key = if v.next() == Some("b") {
        format!("{key} (base64)")
    } else {
        key.to_string()
    };
    (key, rate, error)
}

/// A chunk size as memcached-tool prints it: bytes below 1 KB, else KB with one decimal.
fn chunk_size_label(size: u64) -> String {
    if size < 1024 {
        format!("{size}B")
    } else {
        format!("{:.1}K", size as f64 / 1024.0)
    }
}
