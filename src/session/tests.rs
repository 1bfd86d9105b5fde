use super::*;
use crate::config::Settings;
use crate::server::Server;
use crate::stats::ThreadStats;

fn server() -> Server {
    Server::new(Settings::default()).expect("a server")
}

/// Feeds `chunks` one after another as a transport would: unread input stays buffered, output
/// is all written after each feed. Returns the output and how the last feed ended.
fn run(server: &Server, chunks: &[&[u8]], budget: usize) -> (Vec<u8>, Step, Vec<usize>) {
    let stats = ThreadStats::default();
    let handler = Handler::new(server, &stats);
    let mut session = Session::new(9);
    let mut input = Vec::new();
    let mut sent = Vec::new();
    let mut done = Vec::new();
    let mut step = Step::NeedInput;
    for chunk in chunks {
        input.extend_from_slice(chunk);
        loop {
            let mut out = Vec::new();
            let mut left = budget;
            let base = sent.len();
            let fed = session.feed(&handler, &input, &mut out, 0, &mut left, |at| {
                done.push(base + at)
            });
            input.drain(..fed.consumed);
            sent.extend_from_slice(&out);
            session.output_written();
            step = fed.step;
            // Transports skip feeding no input: it must do nothing, whatever state the
            // session is in.
            let mut idle_out = Vec::new();
            let idle = session.feed(&handler, &[], &mut idle_out, 0, &mut left, |_| {
                panic!("no input completed a request")
            });
            assert_eq!((idle, idle_out.len()), (Fed::NOTHING, 0));
            match step {
                Step::OutputFull | Step::OutOfBudget => continue,
                _ => break,
            }
        }
        if !matches!(step, Step::NeedInput) {
            break;
        }
    }
    (sent, step, done)
}

#[test]
fn a_request_split_anywhere_is_answered_as_if_whole() {
    let server = server();
    let script: &[u8] = b"set k 0 0 5\r\nhello\r\nget k\r\nincr n 1\r\ndelete k\r\nget k\r\n";
    let (whole, step, done) = run(&server, &[script], 100);
    assert_eq!(step, Step::NeedInput);
    assert_eq!(
        whole,
        b"STORED\r\nVALUE k 0 5\r\nhello\r\nEND\r\nNOT_FOUND\r\nDELETED\r\nEND\r\n"
    );
    assert_eq!(
        done,
        [8, 33, 44, 53, 58],
        "one completion per request, a store with its data"
    );
    let server = self::server();
    let bytes: Vec<&[u8]> = script.chunks(1).collect();
    let (split, _, done_split) = run(&server, &bytes, 1);
    assert_eq!(split, whole);
    assert_eq!(done_split, done);
}

#[test]
fn a_long_line_closes_unless_it_is_a_multi_get() {
    let server = server();
    let long = vec![b'x'; MAX_PLAIN_LINE + 1];
    let (out, step, _) = run(&server, &[&long], 10);
    assert_eq!(
        (out.as_slice(), step),
        (&b""[..], Step::Close(CloseReason::Error))
    );
    let mut get = b"get".to_vec();
    while get.len() <= MAX_PLAIN_LINE {
        get.extend_from_slice(b" key");
    }
    let (out, step, _) = run(&server, &[&get], 10);
    assert_eq!((out.as_slice(), step), (&b""[..], Step::NeedInput));
    let (out, _, _) = run(&server, &[&get, b"\r\n"], 10);
    assert_eq!(out, b"END\r\n");
}

#[test]
fn a_refused_value_is_swallowed_and_its_error_waits_for_it() {
    let server = server();
    let stats = ThreadStats::default();
    let handler = Handler::new(&server, &stats);
    let mut session = Session::new(9);
    let mut out = Vec::new();
    let mut budget = 10;
    let big = format!("set k 0 0 {}\r\n", 2 * 1024 * 1024);
    let fed = session.feed(&handler, big.as_bytes(), &mut out, 0, &mut budget, |_| {});
    assert_eq!((fed.consumed, fed.step), (big.len(), Step::NeedInput));
    assert!(session.swallowing());
    assert_eq!(out, b"SERVER_ERROR object too large for cache\r\n");
    // The value, then a request: swallowed, then answered.
    let mut input = vec![b'v'; 2 * 1024 * 1024];
    input.extend_from_slice(b"\r\nget k\r\n");
    let fed = session.feed(&handler, &input, &mut out, 0, &mut budget, |_| {});
    assert_eq!(fed.consumed, input.len());
    assert!(!session.swallowing());
    assert!(out.ends_with(b"END\r\n"));
}

#[test]
fn binary_is_picked_by_the_first_byte_and_a_bad_magic_closes() {
    let server = server();
    // A binary NOOP, then a byte that is no request magic.
    let mut noop = vec![0u8; 24];
    noop[0] = 0x80;
    noop[1] = 0x0a;
    let (out, step, done) = run(&server, &[&noop, &[0x42; 24]], 10);
    assert_eq!(out.len(), 24);
    assert_eq!((out[0], out[1]), (0x81, 0x0a));
    assert_eq!(done, [24]);
    assert_eq!(step, Step::Close(CloseReason::Error));
}

#[test]
fn a_binary_store_of_an_empty_value_completes_with_its_header() {
    let server = server();
    // SET "k" with 8 bytes of extras (flags, expiry) and no value, then GET "k".
    let mut set = vec![0u8; 24];
    set[0] = 0x80;
    set[1] = 0x01;
    set[3] = 1; // key length
    set[4] = 8; // extras length
    set[11] = 9; // body: extras and key
    set.extend_from_slice(&[0; 8]);
    set.push(b'k');
    let mut get = vec![0u8; 24];
    get[0] = 0x80;
    get[3] = 1;
    get[11] = 1;
    get.push(b'k');
    let (out, step, done) = run(&server, &[&set, &get], 10);
    assert_eq!(step, Step::NeedInput);
    assert_eq!(done.len(), 2, "both requests completed: {out:?}");
    assert_eq!((out[0], out[1], out[7]), (0x81, 0x01, 0), "SET succeeded");
    assert_eq!((out[24], out[25], out[31]), (0x81, 0x00, 0), "GET hit");
}

#[test]
fn the_budget_bounds_requests_per_feed() {
    let server = server();
    let stats = ThreadStats::default();
    let handler = Handler::new(&server, &stats);
    let mut session = Session::new(9);
    let mut out = Vec::new();
    let mut budget = 2;
    let input = b"version\r\nversion\r\nversion\r\n";
    let fed = session.feed(&handler, input, &mut out, 0, &mut budget, |_| {});
    assert_eq!((fed.requests, fed.step, budget), (2, Step::OutOfBudget, 0));
    assert_eq!(fed.consumed, 18);
}

#[test]
fn only_gets_may_be_long() {
    assert!(may_be_long_get(b"get a b c"));
    assert!(may_be_long_get(b"   gets a"));
    assert!(!may_be_long_get(b"set a 0 0 1"));
    assert!(!may_be_long_get(&[b' '; 200]));
}
