//! The `stats` command and its subcommands, with memcached 1.6.38's field names and order.

use std::fmt::Display;
use std::io::Write;
use std::sync::atomic::Ordering;

use crate::config::{Settings, PROTOCOL_VERSION};
use crate::protocol::text::Tokens;
use crate::server::Server;

/// Handles `stats [subcommand ...]`.
pub fn stats_command(server: &Server, tokens: &Tokens<'_>, out: &mut Vec<u8>) {
    if tokens.count() == 2 {
        general(server, out);
        out.extend_from_slice(b"END\r\n");
        return;
    }
    match tokens.get(1) {
        b"reset" => {
            server.stats.reset();
            server.cache.reset_stats();
            server.prefix_stats.clear();
            server.conns.total.store(0, Ordering::Relaxed);
            server.conns.rejected.store(0, Ordering::Relaxed);
            out.extend_from_slice(b"RESET\r\n");
        }
        b"settings" => {
            settings(server, out);
            out.extend_from_slice(b"END\r\n");
        }
        b"detail" => {
            let usage = b"CLIENT_ERROR usage: stats detail on|off|dump\r\n";
            let prefixes = &server.prefix_stats;
            match (tokens.count() >= 4).then(|| tokens.get(2)) {
                Some(b"on") => {
                    prefixes.set_enabled(true);
                    out.extend_from_slice(b"OK\r\n");
                }
                Some(b"off") => {
                    prefixes.set_enabled(false);
                    out.extend_from_slice(b"OK\r\n");
                }
                Some(b"dump") => prefixes.dump(out),
                _ => out.extend_from_slice(usage),
            }
        }
        b"slabs" => {
            slabs(server, out);
            out.extend_from_slice(b"END\r\n");
        }
        b"items" => {
            items(server, out);
            out.extend_from_slice(b"END\r\n");
        }
        b"sizes" => {
            match server.cache.size_histogram() {
                Some(buckets) => {
                    for (size, n) in buckets {
                        stat(out, &size.to_string(), n);
                    }
                }
                None => stat(out, "sizes_status", "disabled"),
            }
            out.extend_from_slice(b"END\r\n");
        }
        // memcached 1.6.38 knows the subcommand and, without extstore configured, lists
        // nothing (this server has no extstore).
        b"extstore" => out.extend_from_slice(b"END\r\n"),
        _ => out.extend_from_slice(b"ERROR\r\n"),
    }
}

fn stat(out: &mut Vec<u8>, name: &str, value: impl Display) {
    // Writing to a Vec cannot fail.
    let _ = write!(out, "STAT {name} {value}\r\n");
}

fn rusage() -> (String, String) {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a complete rusage into the pointer it is given, which points to
    // writable memory of the right size; on failure we keep the zeroed value.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let fmt = |tv: libc::timeval| format!("{}.{:06}", tv.tv_sec, tv.tv_usec);
    (fmt(usage.ru_utime), fmt(usage.ru_stime))
}

fn general(server: &Server, out: &mut Vec<u8>) {
    let clock = server.cache.clock();
    let t = server.stats.totals();
    let c = server.cache.stats();
    let conns = &server.conns;
    let s = &server.settings;
    let (ru_user, ru_system) = rusage();
    let curr_conns = conns.current.load(Ordering::Relaxed);

    stat(out, "pid", server.pid);
    stat(out, "uptime", clock.uptime());
    stat(out, "time", clock.unix_now());
    stat(out, "version", PROTOCOL_VERSION);
    stat(out, "pointer_size", usize::BITS);
    stat(out, "rusage_user", ru_user);
    stat(out, "rusage_system", ru_system);
    stat(out, "max_connections", s.max_connections);
    stat(out, "curr_connections", curr_conns);
    stat(
        out,
        "total_connections",
        conns.total.load(Ordering::Relaxed),
    );
    // memcached prints the lines of a mechanism only while it is on.
    let lru = server.cache.lru_tuning().get();
    let segmented = lru.maintainer && lru.segmented;
    if s.maxconns_fast {
        stat(
            out,
            "rejected_connections",
            conns.rejected.load(Ordering::Relaxed),
        );
    }
    stat(
        out,
        "connection_structures",
        conns.structures.load(Ordering::Relaxed),
    );
    stat(out, "response_obj_oom", 0);
    stat(out, "response_obj_count", t.response_obj_count);
    stat(out, "response_obj_bytes", t.response_obj_bytes);
    stat(out, "read_buf_count", t.read_buf_count);
    stat(out, "read_buf_bytes", t.read_buf_bytes);
    stat(out, "read_buf_bytes_free", t.read_buf_bytes_free);
    stat(out, "read_buf_oom", 0);
    // memcached holds descriptors back for its own use; this server keeps none in reserve.
    stat(out, "reserved_fds", 0);
    stat(out, "cmd_get", t.get_cmds);
    stat(out, "cmd_set", t.set_cmds);
    stat(out, "cmd_flush", t.flush_cmds);
    stat(out, "cmd_touch", t.touch_cmds);
    stat(out, "cmd_meta", t.meta_cmds);
    stat(out, "get_hits", t.get_hits);
    stat(out, "get_misses", t.get_misses);
    stat(out, "get_expired", t.get_expired);
    stat(out, "get_flushed", t.get_flushed);
    stat(out, "delete_misses", t.delete_misses);
    stat(out, "delete_hits", t.delete_hits);
    stat(out, "incr_misses", t.incr_misses);
    stat(out, "incr_hits", t.incr_hits);
    stat(out, "decr_misses", t.decr_misses);
    stat(out, "decr_hits", t.decr_hits);
    stat(out, "cas_misses", t.cas_misses);
    stat(out, "cas_hits", t.cas_hits);
    stat(out, "cas_badval", t.cas_badval);
    stat(out, "touch_hits", t.touch_hits);
    stat(out, "touch_misses", t.touch_misses);
    stat(out, "store_too_large", t.store_too_large);
    stat(out, "store_no_memory", t.store_no_memory);
    stat(out, "auth_cmds", t.auth_cmds);
    stat(out, "auth_errors", t.auth_errors);
    // memcached shows it only while an idle timeout is set.
    if server.settings.idle_timeout != 0 {
        stat(out, "idle_kicks", t.idle_kicks);
    }
    stat(out, "bytes_read", t.bytes_read);
    stat(out, "bytes_written", t.bytes_written);
    stat(out, "limit_maxbytes", server.cache.memory_limit());
    let conns = &server.conns;
    stat(out, "accepting_conns", u8::from(conns.accepting()));
    stat(
        out,
        "listen_disabled_num",
        conns.listen_disabled.load(Ordering::Relaxed),
    );
    stat(
        out,
        "time_in_listen_disabled_us",
        conns.listen_disabled_us.load(Ordering::Relaxed),
    );
    stat(out, "threads", s.threads);
    stat(out, "conn_yields", t.conn_yields);
    stat(
        out,
        "hash_power_level",
        63 - c.hash_buckets.max(1).leading_zeros(),
    );
    stat(out, "hash_bytes", c.hash_bytes);
    stat(out, "hash_is_expanding", 0);
    if s.slab_reassign {
        let mover = server.cache.mover();
        stat(
            out,
            "slab_reassign_rescues",
            mover.rescues.load(Ordering::Relaxed),
        );
        // Chained items are evicted, never rescued piecewise; moves run to completion inline.
        stat(out, "slab_reassign_chunk_rescues", 0);
        stat(out, "slab_reassign_inline_reclaim", 0);
        stat(out, "slab_reassign_busy_items", 0);
        stat(out, "slab_reassign_busy_deletes", 0);
        // memcached 1.6.38 counts here the times its mover found no memory for an item of
        // the page and waited; this mover evicts such an item instead and counts it here.
        stat(
            out,
            "slab_reassign_busy_nomem",
            mover.no_memory.load(Ordering::Relaxed),
        );
        stat(out, "slab_reassign_running", 0);
        stat(out, "slabs_moved", mover.moved.load(Ordering::Relaxed));
    }
    if s.lru_crawler {
        let crawler = server.cache.crawler();
        stat(
            out,
            "lru_crawler_running",
            u8::from(crawler.running.load(Ordering::Relaxed)),
        );
        stat(
            out,
            "lru_crawler_starts",
            crawler.starts.load(Ordering::Relaxed),
        );
    }
    if lru.maintainer {
        // The maintainer's moves are not counted as juggles; item memory is never malloc'd.
        stat(out, "lru_maintainer_juggles", 0);
    }
    stat(out, "malloc_fails", 0);
    let log = crate::watch::stats();
    stat(out, "log_worker_dropped", log.worker_dropped);
    stat(out, "log_worker_written", log.worker_written);
    stat(out, "log_watcher_skipped", log.watcher_skipped);
    stat(out, "log_watcher_sent", log.watcher_sent);
    stat(out, "log_watchers", log.watchers);
    if let Some(tls) = &server.tls {
        stat(out, "ssl_handshake_errors", tls.handshake_errors());
        stat(out, "ssl_proto_errors", tls.proto_errors());
        stat(out, "time_since_server_cert_refresh", tls.since_refresh());
    }
    // No NAPI ids, no connection balancing fallbacks here.
    stat(out, "unexpected_napi_ids", 0);
    stat(out, "round_robin_fallback", 0);
    stat(out, "bytes", c.bytes);
    stat(out, "curr_items", c.curr_items);
    stat(out, "total_items", c.total_items);
    stat(out, "slab_global_page_pool", 0);
    stat(out, "expired_unfetched", c.expired_unfetched);
    stat(out, "evicted_unfetched", c.evicted_unfetched);
    if segmented {
        stat(out, "evicted_active", 0);
    }
    stat(out, "evictions", c.evictions);
    stat(out, "reclaimed", c.reclaimed);
    stat(out, "crawler_reclaimed", c.crawler_reclaimed);
    stat(out, "crawler_items_checked", c.crawler_items_checked);
    stat(out, "lrutail_reflocked", 0);
    if segmented {
        stat(out, "moves_to_cold", c.moves[0]);
        stat(out, "moves_to_warm", c.moves[1]);
        stat(out, "moves_within_lru", c.moves[2]);
        stat(out, "direct_reclaims", 0);
        stat(out, "lru_bumps_dropped", 0);
    }
}

/// `stats slabs`: every class that has pages, as memcached lists them.
fn slabs(server: &Server, out: &mut Vec<u8>) {
    let slabs = server.cache.slabs();
    let mut active = 0;
    for class in 1..=slabs.table().largest() {
        let c = slabs.class_stats(class);
        if c.total_pages == 0 {
            continue;
        }
        active += 1;
        let ops = server.stats.class_totals(class);
        let mut line = |name: &str, value: u64| stat(out, &format!("{class}:{name}"), value);
        line("chunk_size", c.chunk_size as u64);
        line("chunks_per_page", c.chunks_per_page as u64);
        line("total_pages", c.total_pages as u64);
        line("total_chunks", (c.total_pages * c.chunks_per_page) as u64);
        line("used_chunks", c.used_chunks as u64);
        line("free_chunks", c.free_chunks as u64);
        line("free_chunks_end", c.free_chunks_end as u64);
        line("get_hits", ops.get_hits);
        line("cmd_set", ops.set_cmds);
        line("delete_hits", ops.delete_hits);
        line("incr_hits", ops.incr_hits);
        line("decr_hits", ops.decr_hits);
        line("cas_hits", ops.cas_hits);
        line("cas_badval", ops.cas_badval);
        line("touch_hits", ops.touch_hits);
    }
    stat(out, "active_slabs", active);
    let pages = slabs.arena().pages_used() as u64;
    stat(
        out,
        "total_malloced",
        pages * crate::cache::arena::PAGE_SIZE as u64,
    );
}

/// `stats conns`: every socket by descriptor — listeners, UDP sockets, clients with their
/// listener and idle time; the asking connection is the one parsing a command.
pub fn conns(server: &Server, asking: i32, out: &mut Vec<u8>) {
    use crate::conn_table::{secs_since, ConnKind};
    let now = crate::conn_table::now_ms();
    for (fd, e) in server.conn_table.snapshot() {
        let (state, idle) = match &e.kind {
            ConnKind::Listening => ("conn_listening", 0),
            ConnKind::Udp => {
                stat(out, &format!("{fd}:UDP"), "UDP");
                ("conn_read", 0)
            }
            ConnKind::Client { .. } if fd == asking => ("conn_parse_cmd", 0),
            ConnKind::Client { .. } => ("conn_read", secs_since(&e.last_cmd, now)),
            ConnKind::Watcher { .. } => ("conn_watch", secs_since(&e.last_cmd, now)),
        };
        stat(out, &format!("{fd}:addr"), &e.addr);
        if let ConnKind::Client { listen_addr } | ConnKind::Watcher { listen_addr } = &e.kind {
            stat(out, &format!("{fd}:listen_addr"), listen_addr);
        }
        stat(out, &format!("{fd}:state"), state);
        stat(out, &format!("{fd}:secs_since_last_cmd"), idle);
    }
    out.extend_from_slice(b"END\r\n");
}

/// `stats items`: every class that holds items, with its segmented LRU.
fn items(server: &Server, out: &mut Vec<u8>) {
    let slabs = server.cache.slabs();
    let tuning = server.cache.lru_tuning().get();
    for class in 1..=slabs.table().largest() {
        let (c, lru) = server.cache.class_counters(class);
        if lru.items == 0 {
            continue;
        }
        let ops = server.stats.class_totals(class);
        let mut line = |name: &str, value: u64| stat(out, &format!("items:{class}:{name}"), value);
        line("number", lru.items);
        // memcached lists the segments whenever its LRU maintainer runs, even in flat mode.
        if tuning.maintainer {
            line("number_hot", lru.number[0]);
            line("number_warm", lru.number[1]);
            line("number_cold", lru.number[2]);
            if tuning.temp_lru {
                line("number_temp", lru.number[3]);
            }
            line("age_hot", u64::from(lru.age[0]));
            line("age_warm", u64::from(lru.age[1]));
        }
        line("age", u64::from(lru.age[2]));
        line("mem_requested", c.mem_requested);
        line("evicted", c.evicted);
        line("evicted_nonzero", c.evicted_nonzero);
        line("evicted_time", u64::from(c.evicted_time));
        line("outofmemory", c.outofmemory);
        line("tailrepairs", 0);
        line("reclaimed", c.reclaimed);
        line("expired_unfetched", c.expired_unfetched);
        line("evicted_unfetched", c.evicted_unfetched);
        let segmented = tuning.maintainer && tuning.segmented;
        if segmented {
            line("evicted_active", 0);
        }
        line("crawler_reclaimed", c.crawler_reclaimed);
        line("crawler_items_checked", c.crawler_items_checked);
        line("lrutail_reflocked", 0);
        if segmented {
            line("moves_to_cold", c.moves_to_cold);
            line("moves_to_warm", c.moves_to_warm);
            line("moves_within_lru", c.moves_within_lru);
            line("direct_reclaims", 0);
            line("hits_to_hot", ops.hits_to_hot);
            line("hits_to_warm", ops.hits_to_warm);
            line("hits_to_cold", ops.hits_to_cold);
            line("hits_to_temp", ops.hits_to_temp);
        }
    }
}

fn on_off(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn settings(server: &Server, out: &mut Vec<u8>) {
    let s = &server.settings;
    let inter = s.inter.as_deref().unwrap_or("NULL");
    stat(out, "maxbytes", server.cache.memory_limit());
    stat(out, "maxconns", s.max_connections);
    stat(out, "tcpport", s.port);
    stat(out, "udpport", s.udp_port);
    stat(out, "inter", inter);
    stat(out, "verbosity", server.verbosity());
    stat(out, "oldest", 0);
    stat(out, "evictions", if s.evictions { "on" } else { "off" });
    stat(
        out,
        "domain_socket",
        s.unix_socket
            .as_ref()
            .map_or_else(|| "NULL".to_string(), |p| p.display().to_string()),
    );
    stat(out, "umask", format!("{:o}", s.unix_mask));
    stat(out, "shutdown_command", on_off(s.shutdown_command));
    stat(out, "growth_factor", format!("{:.2}", s.growth_factor));
    stat(out, "chunk_size", s.chunk_size);
    stat(out, "num_threads", s.threads);
    stat(out, "num_threads_per_udp", s.threads);
    stat(out, "stat_key_prefix", ":");
    stat(out, "detail_enabled", on_off(server.prefix_stats.enabled()));
    stat(out, "reqs_per_event", s.reqs_per_event);
    stat(out, "cas_enabled", on_off(s.use_cas));
    stat(out, "tcp_backlog", s.backlog);
    stat(out, "binding_protocol", s.protocol);
    stat(out, "auth_enabled_sasl", on_off(s.sasl));
    stat(out, "auth_enabled_ascii", on_off(s.auth_file.is_some()));
    stat(out, "item_size_max", s.item_size_max);
    stat(out, "maxconns_fast", on_off(s.maxconns_fast));
    stat(out, "hashpower_init", s.hashpower_init);
    stat(out, "slab_reassign", on_off(s.slab_reassign));
    stat(
        out,
        "slab_automove",
        server.cache.mover().automove.load(Ordering::Relaxed),
    );
    stat(
        out,
        "slab_automove_ratio",
        format!("{:.2}", s.slab_automove_ratio),
    );
    stat(out, "slab_automove_window", s.slab_automove_window);
    stat(out, "slab_chunk_max", s.slab_chunk_max);
    let lru = server.cache.lru_tuning().get();
    let crawler = server.cache.crawler();
    stat(
        out,
        "lru_crawler",
        on_off(crawler.enabled.load(Ordering::Relaxed)),
    );
    stat(
        out,
        "lru_crawler_sleep",
        crawler.sleep_us.load(Ordering::Relaxed),
    );
    stat(
        out,
        "lru_crawler_tocrawl",
        crawler.tocrawl.load(Ordering::Relaxed),
    );
    // No tail repair: items are never leaked by a crashed connection here.
    stat(out, "tail_repair_time", 0);
    stat(out, "flush_enabled", on_off(s.flush_enabled));
    stat(out, "dump_enabled", on_off(s.dump_enabled));
    // Not one of memcached's choices: the key hash here is FxHash's multiply-rotate (see
    // `cache::hash`); `-o hash_algorithm` is accepted and recorded only.
    stat(out, "hash_algorithm", "fxhash");
    stat(out, "lru_maintainer_thread", on_off(lru.maintainer));
    stat(out, "lru_segmented", on_off(lru.segmented));
    // memcached prints its unsigned percentages with %d.
    stat(out, "hot_lru_pct", lru.hot_pct as i32);
    stat(out, "warm_lru_pct", lru.warm_pct as i32);
    stat(out, "hot_max_factor", format!("{:.2}", lru.hot_max_factor));
    stat(
        out,
        "warm_max_factor",
        format!("{:.2}", lru.warm_max_factor),
    );
    stat(out, "temp_lru", on_off(lru.temp_lru));
    stat(out, "temporary_ttl", lru.temp_ttl);
    stat(out, "idle_timeout", s.idle_timeout);
    stat(out, "watcher_logbuf_size", s.watcher_logbuf_size);
    stat(out, "worker_logbuf_size", s.worker_logbuf_size);
    stat(out, "read_buf_mem_limit", s.read_buf_mem_limit);
    stat(out, "track_sizes", on_off(s.track_sizes));
    stat(out, "inline_ascii_response", "no");
    inert_settings(out, s);
    // Not memcached's, after all of its lines: hot key sampling (`hotkeys`, `-o hotkeys`).
    let hotkeys = &server.hotkeys;
    stat(out, "hotkeys", on_off(hotkeys.sample() != 0));
    stat(out, "hotkeys_sample", hotkeys.period());
}

/// Settings memcached reports for extstore, which have no effect without `ext_path` (this
/// server has no extstore): memcached's defaults, or the value given with `-o` (recorded as not
/// implemented). Then the TLS and proxy settings and three inert ones.
fn inert_settings(out: &mut Vec<u8>, s: &Settings) {
    const DEFAULTS: &[(&str, &str)] = &[
        ("ext_item_size", "512"),
        ("ext_item_age", "4294967295"),
        ("ext_low_ttl", "0"),
        ("ext_recache_rate", "2000"),
        ("ext_wbuf_size", "4194304"),
        ("ext_compact_under", "0"),
        ("ext_drop_under", "0"),
        ("ext_max_sleep", "1000000"),
        ("ext_max_frag", "0.80"),
        ("slab_automove_freeratio", "0.010"),
        ("ext_drop_unread", "no"),
    ];
    for &(name, default) in DEFAULTS {
        let given = s.not_implemented.iter().find_map(|o| {
            let o = o.strip_prefix("-o ").unwrap_or(o);
            o.strip_prefix(name)?.strip_prefix('=')
        });
        stat(out, name, given.unwrap_or(default));
    }
    tls_settings(out, s);
    stat(out, "num_napi_ids", "(null)");
    stat(out, "memory_file", "(null)");
    // memcached 1.6.38 reports the bytes of client flags an item holds (a build-time choice,
    // 4 in Debian's build); flags here are always 32 bits.
    stat(out, "client_flags_size", 4);
}

/// The `ssl_*` lines, printed as memcached prints them (its unset paths show as `(null)` or
/// `NULL`, depending on the line).
fn tls_settings(out: &mut Vec<u8>, s: &Settings) {
    let path = |p: &Option<std::path::PathBuf>, unset: &str| {
        p.as_ref()
            .map_or_else(|| unset.to_string(), |p| p.display().to_string())
    };
    let t = &s.ssl;
    stat(out, "ssl_enabled", on_off(s.tls));
    stat(out, "ssl_chain_cert", path(&t.chain_cert, "(null)"));
    stat(out, "ssl_key", path(&t.key, "(null)"));
    stat(out, "ssl_verify_mode", t.verify_mode);
    stat(out, "ssl_keyformat", t.key_format);
    stat(out, "ssl_ciphers", t.ciphers.as_deref().unwrap_or("NULL"));
    stat(out, "ssl_ca_cert", path(&t.ca_cert, "NULL"));
    stat(out, "ssl_wbuf_size", t.wbuf_size);
    stat(out, "ssl_session_cache", on_off(t.session_cache));
    stat(out, "ssl_kernel_tls", on_off(t.kernel_tls));
    stat(out, "ssl_min_version", &t.min_version);
    // memcached 1.6.38 reports its proxy (built in, off without `proxy_config`); there is none
    // here.
    stat(out, "proxy_enabled", "no");
    stat(out, "proxy_uring_enabled", "no");
}
