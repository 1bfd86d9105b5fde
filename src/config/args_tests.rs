//! Tests for `from_args`. Expected messages and exit statuses were taken from memcached 1.6.18
//! run with the same arguments.

use super::*;
use crate::config::ListenSpec;

pub(crate) fn argv(args: &[&str]) -> Vec<String> {
    std::iter::once("memcached-rs")
        .chain(args.iter().copied())
        .map(String::from)
        .collect()
}

pub(crate) fn run(args: &[&str]) -> Settings {
    match from_args(&argv(args)) {
        Ok(Invocation::Run(s)) => *s,
        Ok(other) => panic!("{args:?}: expected Run, got {other:?}"),
        Err(e) => panic!("{args:?}: unexpected error {e:?}"),
    }
}

pub(crate) fn error(args: &[&str]) -> (String, u8) {
    match from_args(&argv(args)) {
        Err(e) => (e.message().to_string(), e.exit_code()),
        Ok(other) => panic!("{args:?}: expected an error, got {other:?}"),
    }
}

pub(crate) fn assert_error(args: &[&str], message: &str, code: u8) {
    assert_eq!(error(args), (message.to_string(), code), "{args:?}");
}

#[test]
fn no_arguments_gives_defaults() {
    assert_eq!(run(&[]), Settings::default());
    assert_eq!(from_args(&[]).map(|_| ()), Ok(()));
}

#[test]
fn help_version_license() {
    assert!(matches!(from_args(&argv(&["-h"])), Ok(Invocation::Help)));
    assert!(matches!(
        from_args(&argv(&["--help"])),
        Ok(Invocation::Help)
    ));
    assert!(matches!(from_args(&argv(&["-V"])), Ok(Invocation::Version)));
    assert!(matches!(
        from_args(&argv(&["--version"])),
        Ok(Invocation::Version)
    ));
    assert!(matches!(from_args(&argv(&["-i"])), Ok(Invocation::License)));
    // Left to right: an earlier bad value wins over -h, a later one does not.
    assert!(matches!(
        from_args(&argv(&["-h", "-c", "0"])),
        Ok(Invocation::Help)
    ));
    assert_error(
        &["-c", "0", "-h"],
        "Maximum connections must be greater than 0",
        1,
    );
}

#[test]
fn value_flags() {
    let s = run(&[
        "-p",
        "1234",
        "-U",
        "1235",
        "-s",
        "/tmp/mc.sock",
        "-a",
        "755",
        "-c",
        "99",
        "-t",
        "2",
        "-m",
        "128",
        "-I",
        "2m",
        "-f",
        "1.5",
        "-n",
        "64",
        "-R",
        "7",
        "-B",
        "ascii",
        "-b",
        "5",
        "-u",
        "nobody",
        "-P",
        "/run/mc.pid",
        "-e",
        "/dev/shm/mc",
        "-D",
        "#",
        "-N",
        "2",
    ]);
    assert_eq!(s.port, 1234);
    assert_eq!(s.udp_port, 1235);
    assert_eq!(s.unix_socket, Some(PathBuf::from("/tmp/mc.sock")));
    assert_eq!(s.unix_mask, 0o755);
    assert_eq!(s.max_connections, 99);
    assert_eq!(s.threads, 2);
    assert_eq!(s.memory_limit, 128 << 20);
    assert_eq!(s.item_size_max, 2 << 20);
    assert_eq!(s.growth_factor, 1.5);
    assert_eq!(s.chunk_size, 64);
    assert_eq!(s.reqs_per_event, 7);
    assert_eq!(s.protocol, Protocol::Ascii);
    assert_eq!(s.backlog, 5);
    assert_eq!(s.user.as_deref(), Some("nobody"));
    assert_eq!(s.pid_file, Some(PathBuf::from("/run/mc.pid")));
    assert_eq!(s.memory_file, Some(PathBuf::from("/dev/shm/mc")));
    assert_eq!(s.prefix_delimiter, Some('#'));
}

#[test]
fn switch_flags() {
    let s = run(&[
        "-M", "-C", "-F", "-A", "-d", "-k", "-r", "-L", "-S", "-X", "-W", "-Z",
    ]);
    assert!(!s.evictions && !s.use_cas && !s.flush_enabled && s.shutdown_command);
    assert!(s.daemonize && s.lock_memory && s.core_dumps && s.large_pages);
    assert!(s.sasl && !s.dump_enabled && !s.watch_enabled && s.tls);
    // SASL without -B means binary.
    assert_eq!(s.protocol, Protocol::Binary);
}

#[test]
fn long_names() {
    let s = run(&[
        "--port=2000",
        "--conn-limit",
        "50",
        "--threads=3",
        "--memory-limit=100",
        "--max-item-size=512k",
        "--slab-growth-factor=2",
        "--slab-min-size=40",
        "--max-reqs-per-event=9",
        "--protocol=binary",
        "--listen-backlog=7",
        "--user=me",
        "--listen=127.0.0.1",
        "--disable-evictions",
        "--disable-cas",
        "--disable-flush-all",
        "--enable-shutdown",
        "--verbose",
        "--extended=idle_timeout=4",
        "--disable-dumping",
        "--disable-watch",
        "--unix-mask=0600",
        "--memory-l=100",
    ]);
    assert_eq!((s.port, s.max_connections, s.threads), (2000, 50, 3));
    assert_eq!((s.memory_limit, s.item_size_max), (100 << 20, 512 << 10));
    assert_eq!(
        (s.growth_factor, s.chunk_size, s.reqs_per_event),
        (2.0, 40, 9)
    );
    assert_eq!((s.protocol, s.backlog), (Protocol::Binary, 7));
    assert_eq!(s.user.as_deref(), Some("me"));
    assert_eq!(s.listen.len(), 1);
    assert!(!s.evictions && !s.use_cas && !s.flush_enabled && s.shutdown_command);
    assert_eq!((s.verbose, s.idle_timeout, s.unix_mask), (1, 4, 0o600));
    assert!(!s.dump_enabled && !s.watch_enabled);
}

#[test]
fn verbosity_counts() {
    assert_eq!(run(&["-v"]).verbose, 1);
    assert_eq!(run(&["-vv"]).verbose, 2);
    assert_eq!(run(&["-vvv"]).verbose, 3);
    assert_eq!(run(&["-v", "-vv"]).verbose, 3);
    assert_eq!(run(&["-vvv", "-v"]).verbose, 4);
    assert_eq!(run(&["-vd"]).verbose, 1);
}

#[test]
fn last_value_wins() {
    let s = run(&["-p", "1", "-p", "2", "-B", "binary", "-B", "auto"]);
    assert_eq!((s.port, s.protocol), (2, Protocol::Auto));
}

#[test]
fn c_conversions_like_memcached() {
    // atoi: numeric prefix, no suffixes on -m, negatives wrap.
    assert_eq!(run(&["-m", "2g"]).memory_limit, 2 << 20);
    assert_eq!(run(&["-m", " 12"]).memory_limit, 12 << 20);
    assert_eq!(
        run(&["-m", "-5"]).memory_limit,
        18_446_744_073_704_308_736u64 as usize
    );
    assert_eq!(run(&["-p", "abc"]).port, 0);
    assert_eq!(run(&["-b", "-3"]).backlog, -3);
    assert_eq!(run(&["-f", "1.5x"]).growth_factor, 1.5);
    assert_eq!(run(&["-a", "9"]).unix_mask, 0);
    assert_eq!(run(&["-D", "ab"]).prefix_delimiter, Some('a'));
}

#[test]
fn item_size_suffixes() {
    let item = |v: &str| run(&["-m", "4096", "-I", v]).item_size_max;
    assert_eq!(item("512k"), 512 << 10);
    assert_eq!(item("512K"), 512 << 10);
    assert_eq!(item("2M"), 2 << 20);
    assert_eq!(item("1048576"), 1 << 20);
    assert_eq!(item("1.5m"), 1 << 20);
    assert_eq!(item(" 1m"), 1 << 20);
    assert_eq!(item("1024m"), 1 << 30);
    let small = "Item max size cannot be less than 1024 bytes.";
    for v in ["1g", "1G", "2g", "1mb", "abc", "", "2048m", "4096m"] {
        assert_error(&["-m", "4096", "-I", v], small, 64);
    }
}

#[test]
fn item_size_checks() {
    assert_error(
        &["-I", "2000"],
        "slab_chunk_max (bytes: 524288) cannot be larger than -I (item_size_max 2000)",
        64,
    );
    assert_error(
        &["-I", "512"],
        "Item max size cannot be less than 1024 bytes.",
        64,
    );
    let half = "Cannot set item size limit higher than 1/2 of memory max.";
    assert_error(&["-I", "2m", "-m", "1"], half, 64);
    assert_error(&["-m", "abc"], half, 64);
    assert_error(&["-m", "0"], half, 64);
    assert_error(&["-m", "1g"], half, 64);
    assert_error(&["-I", "1025m"], half, 64);
    assert_error(
        &["-m", "4096", "-I", "1025m"],
        "Cannot set item size limit higher than a gigabyte.",
        64,
    );
    assert_error(
        &["-m", "4096", "-I", "1100k"],
        "-I (item_size_max: 1126400) must be evenly divisible by slab_chunk_max (bytes: 524288)",
        64,
    );
    // Above 1m the chunk size drops to half a page unless set explicitly.
    let s = run(&["-I", "3m", "-o", "no_modern"]);
    assert_eq!(s.slab_chunk_max, 512 * 1024);
}

#[test]
fn per_flag_errors() {
    assert_error(
        &["-c", "0"],
        "Maximum connections must be greater than 0",
        1,
    );
    assert_error(
        &["-c", "-5"],
        "Maximum connections must be greater than 0",
        1,
    );
    assert_error(
        &["-c", "abc"],
        "Maximum connections must be greater than 0",
        1,
    );
    assert_error(&["-t", "0"], "Number of threads must be greater than 0", 1);
    assert_error(
        &["-t", "abc"],
        "Number of threads must be greater than 0",
        1,
    );
    assert_error(&["-f", "1.0"], "Factor must be greater than 1", 1);
    assert_error(&["-f", "abc"], "Factor must be greater than 1", 1);
    assert_error(&["-f", "nan"], "Factor must be greater than 1", 1);
    assert_error(&["-n", "0"], "Chunk size must be greater than 0", 1);
    assert_error(
        &["-R", "0"],
        "Number of requests per event must be greater than 0",
        1,
    );
    assert_error(&["-D", ""], "No delimiter specified", 1);
    assert_error(
        &["-N", "0"],
        "Maximum number of NAPI IDs must be greater than 0",
        1,
    );
    assert_error(
        &["-B", "foo"],
        "Invalid value for binding protocol: foo\n -- should be one of auto, binary, or ascii",
        64,
    );
}

#[test]
fn many_threads_is_a_warning() {
    let s = run(&["-t", "300"]);
    assert_eq!(s.threads, 300);
    assert_eq!(
        s.warnings,
        vec![
            "WARNING: Setting a high number of workerthreads is not recommended.\n \
              Set this value to the number of cores in your machine or less."
                .to_string()
        ]
    );
    assert!(run(&["-t", "64"]).warnings.is_empty());
}

#[test]
fn getopt_errors() {
    let illegal = "\nIllegal argument \"?\"";
    assert_error(
        &["-b"],
        &format!("memcached-rs: option requires an argument -- 'b'{illegal}"),
        1,
    );
    assert_error(
        &["-q"],
        &format!("memcached-rs: invalid option -- 'q'{illegal}"),
        1,
    );
    assert_error(
        &["--foo"],
        &format!("memcached-rs: unrecognized option '--foo'{illegal}"),
        1,
    );
    let prog = vec!["/usr/bin/mc".to_string(), "-q".to_string()];
    let e = from_args(&prog).expect_err("bad flag");
    assert!(e.message().starts_with("/usr/bin/mc: invalid option"));
}

#[test]
fn port_checks() {
    assert_error(&["-p", "70000"], "ERROR: Invalid port number 70000.", 64);
    // -1 asks the kernel for a port (memcached's test suites use it); other negatives do not
    // fit a port.
    assert_error(&["-p", "-2"], "ERROR: Invalid port number -2.", 64);
    let s = run(&["-p", "-1", "-U", "-1"]);
    assert_eq!((s.port, s.udp_port), (-1, -1));
    let s = run(&["-U", "-1"]);
    assert_eq!(
        (s.port, s.udp_port),
        (-1, -1),
        "-U alone moves the TCP port too"
    );
    assert_error(&["-U", "70000"], "ERROR: Invalid port number 70000.", 64);
    assert_error(
        &["-p", "5", "-U", "70000"],
        "ERROR: Invalid port number 70000.",
        64,
    );
    // -U alone moves the TCP port too; -p alone leaves UDP off.
    let s = run(&["-U", "22444"]);
    assert_eq!((s.port, s.udp_port), (22444, 22444));
    let s = run(&["-p", "22333"]);
    assert_eq!((s.port, s.udp_port), (22333, 0));
    let s = run(&["-U", "0"]);
    assert_eq!((s.port, s.udp_port), (11211, 0));
    let s = run(&["-U", "5", "-p", "0"]);
    assert_eq!((s.port, s.udp_port), (0, 5));
}

#[test]
fn authentication_conflicts() {
    assert_error(
        &["-S", "-B", "ascii"],
        "ERROR: You cannot allow the ASCII protocol while using SASL.",
        64,
    );
    assert_error(
        &["-S", "-U", "5"],
        "ERROR: Cannot enable UDP while using binary SASL authentication.",
        64,
    );
    assert_error(
        &["-Y", "/x", "-B", "binary"],
        "ERROR: You cannot allow the BINARY protocol while using ascii authentication tokens.",
        64,
    );
    // `-B auto` would let the other protocol's connections skip authentication: refused by
    // memcached as well (it served unauthenticated binary sets under -Y, text ones under -S).
    assert_error(
        &["-Y", "/x", "-B", "auto"],
        "ERROR: You cannot allow the BINARY protocol while using ascii authentication tokens.",
        64,
    );
    assert_error(
        &["-S", "-B", "auto"],
        "ERROR: You cannot allow the ASCII protocol while using SASL.",
        64,
    );
    assert_error(
        &["-Y", "/x", "-p", "5", "-U", "6"],
        "Cannot use UDP with ascii authentication enabled (-U 0 to disable)",
        64,
    );
    let s = run(&["-Y", "/x"]);
    assert_eq!(
        (s.auth_file, s.protocol),
        (Some(PathBuf::from("/x")), Protocol::Ascii)
    );
    assert_error(
        &["-Z", "-p", "0"],
        "ERROR: You cannot enable SSL without a TCP port.",
        64,
    );
    assert_error(
        &["-N", "8"],
        "Number of napi_ids(8) cannot be greater than number of threads(4)",
        64,
    );
}

#[test]
fn check_order_matches_memcached() {
    assert_error(
        &["-p", "70000", "-I", "100"],
        "Item max size cannot be less than 1024 bytes.",
        64,
    );
    assert_error(
        &["-p", "70000", "-S", "-B", "ascii"],
        "ERROR: You cannot allow the ASCII protocol while using SASL.",
        64,
    );
    assert_error(
        &["-o", "slab_sizes=abc", "-I", "100"],
        "Item max size cannot be less than 1024 bytes.",
        64,
    );
    assert_error(
        &["-N", "8", "-I", "100"],
        "Number of napi_ids(8) cannot be greater than number of threads(4)",
        64,
    );
}

#[test]
fn listen_addresses() {
    let s = run(&["-l", "127.0.0.1", "-l", "[::1]:11311", "-l", "*"]);
    let spec = |h: Option<&str>, p| ListenSpec {
        host: h.map(String::from),
        port: p,
        no_tls: false,
    };
    assert_eq!(
        s.listen,
        vec![
            spec(Some("127.0.0.1"), None),
            spec(Some("::1"), Some(11311)),
            spec(None, None)
        ]
    );
    assert_error(
        &["-l", "127.0.0.1:abc"],
        "Invalid port number: \"abc\"\nfailed to listen on one of interface(s) 127.0.0.1:abc: Success",
        71,
    );
    assert_error(
        &["-l", "10.0.0.1", "-l", "[::1"],
        "Invalid IPV6 address: \"[::1\"failed to listen on one of interface(s) 10.0.0.1,[::1: Success",
        71,
    );
}

#[test]
fn not_implemented_is_recorded() {
    let s = run(&[
        "-U",
        "5",
        "-s",
        "/tmp/s",
        "-a",
        "644",
        "-d",
        "-P",
        "/p",
        "-k",
        "-r",
        "-L",
        "-e",
        "/e",
        "-Z",
        "-D",
        ":",
        "-W",
        "-X",
        "-o",
        "hash_algorithm=xxh3,modern",
        "-o",
        "no_hashexpand",
    ]);
    let want = ["-o hash_algorithm=xxh3", "-o no_hashexpand"];
    assert_eq!(s.not_implemented, want.map(String::from).to_vec());
    // Each is logged with why it has no effect here.
    for option in &s.not_implemented {
        assert!(crate::config::without_effect(option).is_some(), "{option}");
    }
    let every = run(&[
        "-N",
        "2",
        "-o",
        "no_hashexpand,inline_ascii_resp,no_chunked_items,drop_privileges,ext_path=/x:1G",
        "-o",
        "ext_threads=2,slab_automove_freeratio=0.1,slab_automove_ratio=0.5",
    ]);
    assert_eq!(
        every.not_implemented.len(),
        9,
        "{:?}",
        every.not_implemented
    );
    for option in &every.not_implemented {
        assert!(crate::config::without_effect(option).is_some(), "{option}");
    }
    // Options that work are not listed.
    let working = run(&["-o", "modern,no_slab_automove,slab_sizes=64-128-256"]);
    assert!(
        working.not_implemented.is_empty(),
        "{:?}",
        working.not_implemented
    );
    assert_eq!(working.slab_automove, 0);
    assert!(run(&["-S"]).not_implemented.is_empty());
    assert!(run(&["-e", "/dev/shm/cache"]).not_implemented.is_empty());
    assert!(run(&["-Y", "/a"]).not_implemented.is_empty());
    assert!(run(&["-U", "0", "-v", "-o", "idle_timeout=1"])
        .not_implemented
        .is_empty());
}
