//! `-o`: memcached's comma-separated extended options.
//!
//! Options memcached-rs implements set `Settings` fields; every other option memcached 1.6.18
//! knows is still checked the way memcached checks it (so a config that memcached rejects is
//! rejected here too) and then recorded in `Settings::not_implemented`.

use super::{ConfigError, Settings, EX_USAGE};
use crate::numparse::{atof, atoi, safe_strtol_in_range, safe_strtoul};

/// memcached's slab page size; `-o slab_chunk_max` must divide it.
pub(crate) const SLAB_PAGE_SIZE: usize = 1024 * 1024;
/// Slab sizes must grow by more than this (memcached's `CHUNK_ALIGN_BYTES`).
const CHUNK_ALIGN_BYTES: u32 = 8;
/// memcached's `MAX_NUMBER_OF_SLAB_CLASSES`.
const MAX_NUMBER_OF_SLAB_CLASSES: usize = 64;

/// Options that take no value and only get recorded. memcached ignores a value given to them.
const RECORDED_FLAGS: &[&str] = &[
    "no_hashexpand",
    "inline_ascii_resp",
    "no_inline_ascii_resp",
    "no_chunked_items",
    "drop_privileges",
    "no_drop_privileges",
    "ext_drop_unread",
];

/// Options that need a value memcached-rs does not check further, only records. (memcached's
/// extstore and TLS builds parse these; we cannot use them either way.)
const RECORDED_WITH_VALUE: &[&str] = &[
    "ext_path",
    "ext_page_size",
    "ext_wbuf_size",
    "ext_threads",
    "ext_io_depth",
    "ext_item_size",
    "ext_item_age",
    "ext_low_ttl",
    "ext_recache_rate",
    "ext_compact_under",
    "ext_drop_under",
    "ext_max_frag",
    "ext_max_sleep",
    "slab_automove_freeratio",
];

/// Why an option memcached-rs accepts has no effect here, as the start-up log says it. `None`
/// for an option that is not one of those.
pub fn without_effect(option: &str) -> Option<&'static str> {
    if option.starts_with("-N ") {
        return Some(
            "there is no NAPI-id thread steering; connections are balanced across workers",
        );
    }
    let name = option.strip_prefix("-o ")?;
    let name = name.split('=').next().unwrap_or(name);
    Some(match name {
        "hash_algorithm" => {
            "the key hash is internal to memcached-rs (clients never see it); `stats settings` \
             names the one in use"
        }
        "no_hashexpand" => {
            "the hash tables grow one shard at a time, without a pause, so there is nothing to \
             turn off"
        }
        "slab_automove_ratio" | "slab_automove_window" => {
            "shown in `stats settings`; the page mover balances classes by the age of what they \
             evict, not by memcached's window of free-chunk ratios"
        }
        "inline_ascii_resp" | "no_inline_ascii_resp" => "memcached 1.6 ignores it too",
        "no_chunked_items" => {
            "values larger than a chunk are always chained across chunks of the largest class"
        }
        "drop_privileges" | "no_drop_privileges" => {
            "memcached's seccomp sandbox is not built in; -u drops root as usual"
        }
        _ if name.starts_with("ext_") || name == "slab_automove_freeratio" => {
            "extstore (items on flash) is not built in memcached-rs: every item stays in memory"
        }
        _ => return None,
    })
}

/// What `-o` options leave behind for the checks memcached makes after reading all flags.
#[derive(Debug, Clone, Default)]
pub(crate) struct Extended {
    /// `slab_chunk_max` was given, so `-I` above 1m and `no_modern` leave it alone.
    pub slab_chunk_changed: bool,
    slab_sizes: Option<String>,
    /// A flag that shapes memcached's slab class table was given (`-n`, `-f`,
    /// `slab_chunk_max`, `no_modern`): the table is then memcached's.
    pub memcached_classes: bool,
    /// `-o ...` entries for `Settings::not_implemented`, in the order given.
    pub not_implemented: Vec<String>,
}

fn fail(message: impl Into<String>) -> ConfigError {
    ConfigError::new(message, 1)
}

/// Applies one `-o` argument: `name[=value]` entries separated by commas, parsed like glibc's
/// `getsubopt` (a trailing comma is fine, an empty entry is not).
pub(crate) fn apply(
    optarg: &str,
    settings: &mut Settings,
    state: &mut Extended,
) -> Result<(), ConfigError> {
    let mut rest = optarg;
    while !rest.is_empty() {
        let (token, next) = rest.split_once(',').unwrap_or((rest, ""));
        rest = next;
        let (name, value) = match token.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (token, None),
        };
        if apply_one(name, value, settings, state)? {
            state.not_implemented.push(format!("-o {token}"));
        }
    }
    Ok(())
}

/// The value of an option that needs one, or memcached's complaint.
fn need<'a>(value: Option<&'a str>, missing: &str) -> Result<&'a str, ConfigError> {
    value.ok_or_else(|| fail(missing))
}

fn missing_argument(name: &str) -> String {
    format!("Missing {name} argument")
}

/// Applies one suboption; returns whether it is one memcached-rs only records.
fn apply_one(
    name: &str,
    value: Option<&str>,
    s: &mut Settings,
    st: &mut Extended,
) -> Result<bool, ConfigError> {
    match name {
        // memcached 1.6: "modern" names defaults 1.6 already has (its code is a no-op).
        "modern" => {}
        "no_slab_automove" => s.slab_automove = 0,
        "maxconns_fast" => s.maxconns_fast = true,
        "no_maxconns_fast" => s.maxconns_fast = false,
        "lru_crawler" => s.lru_crawler = true,
        "no_lru_crawler" => s.lru_crawler = false,
        "track_sizes" => s.track_sizes = true,
        "hashpower" => {
            let v = atoi(need(value, "Missing numeric argument for hashpower")?.as_bytes());
            if v < 12 {
                return Err(fail(format!(
                    "Initial hashtable multiplier of {v} is too low"
                )));
            }
            if v > 32 {
                return Err(fail(format!(
                    "Initial hashtable multiplier of {v} is too high\n\
                     Choose a value based on \"STAT hash_power_level\" from a running instance"
                )));
            }
            s.hashpower_init = v.unsigned_abs();
        }
        "hotkeys" => {
            let v = need(
                value,
                "Missing argument for hotkeys (on, off, or 1 in N to sample)",
            )?;
            s.hotkeys_sample = match v {
                "on" => crate::hotkeys::DEFAULT_SAMPLE,
                "off" => 0,
                _ => match crate::hotkeys::parse_sample(v.as_bytes()) {
                    Some(n) => n,
                    None => {
                        return Err(fail(format!(
                            "hotkeys must be on, off, or a sampling period of 0 to {}",
                            crate::hotkeys::MAX_SAMPLE
                        )))
                    }
                },
            };
        }
        "idle_timeout" => {
            // A negative timeout never fires in memcached, which is the same as 0.
            let v = atoi(need(value, "Missing numeric argument for idle_timeout")?.as_bytes());
            s.idle_timeout = u32::try_from(v).unwrap_or(0);
        }
        "slab_chunk_max" => {
            let v = need(value, &missing_argument(name))?;
            // memcached 1.6.38 reads kilobytes (1.6.18 read bytes, whatever its -h said) and
            // refuses a number that looks like bytes.
            let kilobytes = safe_strtol_in_range(v.as_bytes())
                .ok_or_else(|| fail("could not parse argument to slab_chunk_max"))?;
            if kilobytes <= 0 {
                return Err(fail("slab_chunk_max must be >= 0"));
            }
            if kilobytes > 1024 {
                return Err(fail("slab_chunk_max must be specified in kilobytes."));
            }
            s.slab_chunk_max = kilobytes as usize * 1024;
            st.slab_chunk_changed = true;
            st.memcached_classes = true;
        }
        "no_modern" => {
            st.memcached_classes = true;
            // memcached 1.4 defaults; the effects we have fields for are applied.
            if !st.slab_chunk_changed {
                s.slab_chunk_max = SLAB_PAGE_SIZE;
            }
            s.maxconns_fast = false;
            s.slab_reassign = false;
            s.slab_automove = 0;
            s.lru_crawler = false;
            s.lru.maintainer = false;
            s.lru.segmented = false;
        }
        "lru_maintainer" => {
            s.lru.maintainer = true;
            s.lru.segmented = true;
        }
        "no_lru_maintainer" => {
            s.lru.maintainer = false;
            s.lru.segmented = false;
        }
        "temporary_ttl" => {
            let v = need(value, &missing_argument(name))?;
            s.lru.temp_lru = true;
            s.lru.temp_ttl = atoi(v.as_bytes());
        }
        "hot_lru_pct" | "warm_lru_pct" => {
            let v = atoi(need(value, &missing_argument(name))?.as_bytes());
            if !(1..80).contains(&v) {
                return Err(fail(format!("{name} must be > 1 and < 80")));
            }
            if name == "hot_lru_pct" {
                s.lru.hot_pct = v as u32;
            } else {
                s.lru.warm_pct = v as u32;
            }
        }
        "hot_max_factor" | "warm_max_factor" => {
            let v = atof(need(value, &missing_argument(name))?.as_bytes());
            if v <= 0.0 {
                return Err(fail(format!("{name} must be > 0")));
            }
            if name == "hot_max_factor" {
                s.lru.hot_max_factor = v;
            } else {
                s.lru.warm_max_factor = v;
            }
        }
        "resp_obj_mem_limit" => {
            s.warnings.push(
                "DEPRECATED: resp_obj_mem_limit no longer used. See read_buf_mem_limit,".into(),
            );
        }
        "slab_sizes" => {
            // memcached crashes on a missing value; an empty one it rejects silently.
            let v = need(value, &missing_argument(name))?;
            st.slab_sizes = Some(v.to_string());
        }
        "slab_automove" => {
            check_recorded(name, value)?;
            // memcached: a bare `slab_automove` means 1.
            s.slab_automove = value.map_or(1, |v| atoi(v.as_bytes()).clamp(0, 2) as u8);
        }
        "lru_crawler_sleep" => {
            check_recorded(name, value)?;
            s.lru_crawler_sleep = value.map_or(0, |v| atoi(v.as_bytes()).max(0) as u32);
        }
        "lru_crawler_tocrawl" => {
            check_recorded(name, value)?;
            s.lru_crawler_tocrawl = value.and_then(|v| safe_strtoul(v.as_bytes())).unwrap_or(0);
        }
        "slab_automove_ratio" | "slab_automove_window" => {
            // Checked and reported in `stats settings`; the mover does not use them yet.
            check_recorded(name, value)?;
            let v = value.unwrap_or_default().as_bytes();
            if name == "slab_automove_ratio" {
                s.slab_automove_ratio = atof(v);
            } else {
                s.slab_automove_window = atoi(v).max(0) as u32;
            }
            return Ok(true);
        }
        "watcher_logbuf_size" | "worker_logbuf_size" | "read_buf_mem_limit" => {
            let v = value.ok_or_else(|| fail(missing_argument(name)))?;
            let Some(n) = safe_strtoul(v.as_bytes()) else {
                return Err(fail(format!("could not parse argument to {name}")));
            };
            let n = n as usize;
            match name {
                // memcached takes these in kilobytes,
                "watcher_logbuf_size" => s.watcher_logbuf_size = n * 1024,
                "worker_logbuf_size" => s.worker_logbuf_size = n * 1024,
                // and this one in megabytes.
                _ => s.read_buf_mem_limit = n * 1024 * 1024,
            }
        }
        "ssl_chain_cert" | "ssl_key" | "ssl_ca_cert" => {
            let v = need(value, &missing_argument(name))?;
            let path = Some(std::path::PathBuf::from(v));
            match name {
                "ssl_chain_cert" => s.ssl.chain_cert = path,
                "ssl_key" => s.ssl.key = path,
                _ => s.ssl.ca_cert = path,
            }
        }
        "ssl_keyformat" | "ssl_verify_mode" | "ssl_wbuf_size" => {
            let v = need(value, &missing_argument(name))?;
            let Some(n) = safe_strtoul(v.as_bytes()) else {
                return Err(fail(format!("could not parse argument to {name}")));
            };
            match name {
                "ssl_keyformat" => s.ssl.key_format = n,
                "ssl_verify_mode" if n > 3 => {
                    return Err(fail(
                        "Invalid ssl_verify_mode. Use help to see valid options.",
                    ));
                }
                "ssl_verify_mode" => s.ssl.verify_mode = n,
                _ => s.ssl.wbuf_size = n as usize * 1024,
            }
        }
        "ssl_ciphers" => s.ssl.ciphers = Some(need(value, &missing_argument(name))?.to_string()),
        "ssl_min_version" => {
            let v = need(value, &missing_argument(name))?;
            if !matches!(v, "tlsv1" | "tlsv1.1" | "tlsv1.2" | "tlsv1.3") {
                return Err(fail("could not parse argument to ssl_min_version"));
            }
            s.ssl.min_version = v.to_string();
        }
        "ssl_session_cache" => s.ssl.session_cache = true,
        "ssl_kernel_tls" => s.ssl.kernel_tls = true,
        "slab_reassign" => s.slab_reassign = true,
        "no_slab_reassign" => s.slab_reassign = false,
        _ => return check_recorded(name, value),
    }
    Ok(false)
}

/// Checks an option memcached-rs only records as memcached would; `Ok(true)` to record it.
fn check_recorded(name: &str, value: Option<&str>) -> Result<bool, ConfigError> {
    let int = value.map(|v| atoi(v.as_bytes()));
    let number = |missing: &str| int.ok_or_else(|| fail(missing.to_string()));
    let real = value.map(|v| atof(v.as_bytes()));
    let float = |missing: &str| real.ok_or_else(|| fail(missing.to_string()));
    match name {
        "slab_automove" => {
            if let Some(v) = int {
                if !(0..=2).contains(&v) {
                    return Err(fail("slab_automove must be between 0 and 2"));
                }
            }
        }
        "slab_automove_ratio" => {
            let v = float(&missing_argument(name))?;
            if v <= 0.0 || v > 1.0 {
                return Err(fail("slab_automove_ratio must be > 0 and < 1"));
            }
        }
        "slab_automove_window" => {
            if number(&missing_argument(name))? < 3 {
                return Err(fail("slab_automove_window must be > 2"));
            }
        }
        "tail_repair_time" => {
            if number("Missing numeric argument for tail_repair_time")? < 10 {
                return Err(fail("Cannot set tail_repair_time to less than 10 seconds"));
            }
        }
        "hash_algorithm" => {
            let v = value.ok_or_else(|| fail(missing_argument(name)))?;
            if !matches!(v, "jenkins" | "murmur3" | "xxh3") {
                return Err(fail(
                    "Unknown hash_algorithm option (jenkins, murmur3, xxh3)",
                ));
            }
        }
        "lru_crawler_sleep" => {
            let v = number("Missing lru_crawler_sleep value")?;
            if !(0..=1_000_000).contains(&v) {
                return Err(fail("LRU crawler sleep must be between 0 and 1 second"));
            }
        }
        "lru_crawler_tocrawl" => {
            let v = value.ok_or_else(|| fail("Missing lru_crawler_tocrawl value"))?;
            if safe_strtoul(v.as_bytes()).is_none() {
                return Err(fail("lru_crawler_tocrawl takes a numeric 32bit value"));
            }
        }
        "sock_cookie_id" => {
            // memcached crashes without a value.
            value.ok_or_else(|| fail(missing_argument(name)))?;
        }
        "ext_path" if value.is_none() => {
            return Err(fail(
                "missing argument to ext_path, ie: ext_path=/d/file:5G",
            ));
        }
        _ if RECORDED_WITH_VALUE.contains(&name) => {
            value.ok_or_else(|| fail(missing_argument(name)))?;
        }
        _ if RECORDED_FLAGS.contains(&name) => {}
        _ => {
            let token = match value {
                Some(v) => format!("{name}={v}"),
                None => name.to_string(),
            };
            return Err(fail(format!("Illegal suboption \"{token}\"")));
        }
    }
    Ok(true)
}

/// The checks memcached makes on `-o` values once every flag is read, in its order, and the
/// slab class table the flags ask for. `settings` must already have its final `chunk_size`,
/// `growth_factor` and `slab_chunk_max`.
pub(crate) fn check(
    settings: &Settings,
    st: &Extended,
) -> Result<crate::cache::SlabClasses, ConfigError> {
    use crate::cache::SlabClasses;
    let sizes = match &st.slab_sizes {
        Some(sizes) => Some(check_slab_sizes(sizes, settings)?),
        None => None,
    };
    if settings.lru.hot_pct + settings.lru.warm_pct > 80 {
        return Err(ConfigError::new(
            "hot_lru_pct + warm_lru_pct cannot be more than 80% combined",
            EX_USAGE,
        ));
    }
    if settings.lru.temp_lru && !settings.lru.maintainer {
        return Err(ConfigError::new(
            "temporary_ttl requires lru_maintainer to be enabled",
            EX_USAGE,
        ));
    }
    Ok(match sizes {
        Some(sizes) => SlabClasses::Sizes(sizes),
        None if st.memcached_classes => SlabClasses::Memcached {
            min_size: settings.chunk_size,
            factor: settings.growth_factor,
        },
        None => SlabClasses::Compact,
    })
}

/// memcached's `_parse_slab_sizes`: `-`-separated sizes, each in range and growing.
fn check_slab_sizes(sizes: &str, settings: &Settings) -> Result<Vec<usize>, ConfigError> {
    let usage = |m: String| Err(ConfigError::new(m, EX_USAGE));
    if sizes.is_empty() {
        return usage(missing_argument("slab_sizes"));
    }
    let mut parsed = Vec::new();
    let mut last: u32 = 0;
    for (i, part) in sizes.split('-').filter(|p| !p.is_empty()).enumerate() {
        let size = safe_strtoul(part.as_bytes());
        let in_range = size.is_some_and(|v| {
            let v = v as usize;
            v >= settings.chunk_size && v <= settings.slab_chunk_max
        });
        let size = size.unwrap_or(0);
        if !in_range {
            return usage(format!("slab size {size} is out of valid range"));
        }
        if last >= size {
            return usage(format!(
                "slab size {size} cannot be lower than or equal to a previous class size"
            ));
        }
        if u64::from(size) <= u64::from(last) + u64::from(CHUNK_ALIGN_BYTES) {
            return usage(format!(
                "slab size {size} must be at least {CHUNK_ALIGN_BYTES} bytes larger than previous class"
            ));
        }
        last = size;
        parsed.push(size as usize);
        if i + 1 >= MAX_NUMBER_OF_SLAB_CLASSES - 1 {
            return usage("too many slab classes specified".to_string());
        }
    }
    Ok(parsed)
}

#[cfg(test)]
#[path = "extended_tests.rs"]
mod tests;
