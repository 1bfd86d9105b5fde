//! `lru_crawler`, `stats cachedump`, `slabs` and `lru`: their replies, errors and dump format.
//! (What a page move does to the items is not compared: memcached moves pages later in a
//! background thread and evicts the items; memcached-rs moves at once and rescues them.)
//!
//! Dumps list one item only: the order in which a server walks its items is its own business.
//! They end the script, read until the server goes quiet: memcached hands the socket to its
//! crawler thread and does not look at input pipelined after a dump until more arrives.
//! Not compared: a second crawl right after one (memcached says BUSY while its crawler thread
//! is still at work), and crawls after `lru_crawler disable` (memcached answers with errors
//! from its stopped thread).
//! `stats cachedump` lists a class's cold LRU, into which memcached's background maintainer
//! moves items on its own schedule; so its contents are compared without the maintainer, where
//! the LRU is flat and every item is cold from the start.

use crate::case::Case;

/// memcached's LRU maintainer starts crawls of its own, and a crawl in progress makes
/// `lru_crawler crawl` and `metadump` answer BUSY; without the maintainer only these cases crawl.
const NO_AUTOCRAWL: &[&str] = &["-o", "no_lru_maintainer"];

/// Every case of this file.
pub fn cases() -> Vec<Case> {
    let cases = vec![
        Case::new(
            "lru_crawler/crawl all and lists",
            "set a 0 0 1\r\nx\r\nlru_crawler crawl all\r\n",
        ),
        Case::new(
            "lru_crawler/crawl bad classes",
            "lru_crawler crawl 0\r\nlru_crawler crawl 64\r\nlru_crawler crawl x\r\nlru_crawler crawl 1,99\r\n",
        ),
        Case::new("lru_crawler/crawl without argument", "lru_crawler crawl\r\n"),
        Case::new(
            "lru_crawler/sleep",
            "lru_crawler sleep 50\r\nlru_crawler sleep 1000000\r\nlru_crawler sleep 1000001\r\nlru_crawler sleep x\r\n",
        ),
        Case::new(
            "lru_crawler/tocrawl",
            "lru_crawler tocrawl 10\r\nlru_crawler tocrawl 0\r\nlru_crawler tocrawl -1\r\n",
        ),
        Case::new(
            "lru_crawler/unknown subcommands",
            "lru_crawler\r\nlru_crawler foo\r\nlru_crawler enable now\r\nlru_crawler crawl all extra\r\n",
        ),
        Case::new("lru_crawler/metadump of one item", "set k:1 5 0 3\r\nabc\r\n")
            .sync()
            .send("lru_crawler metadump all\r\n")
            .until_close(),
        Case::new("lru_crawler/metadump with expiry and fetch", "set k 0 100 3\r\nabc\r\nget k\r\n")
            .sync()
            .send("lru_crawler metadump 1\r\n")
            .until_close(),
        Case::new("lru_crawler/metadump escapes keys", "set a%b/c 0 0 1\r\nx\r\n")
            .sync()
            .send("lru_crawler metadump hash\r\n")
            .until_close(),
        Case::new("lru_crawler/metadump empty", "lru_crawler metadump all\r\n").until_close(),
        Case::new("lru_crawler/metadump bad class", "lru_crawler metadump 99\r\n"),
        Case::new(
            "lru_crawler/metadump after queued replies",
            "set a 0 0 1\r\nx\r\nlru_crawler metadump all\r\n",
        ),
        Case::new(
            "lru_crawler/metadump binary keys",
            "ms AAEC 2 b F7\r\nhi\r\n",
        )
        .sync()
        .send("lru_crawler metadump all\r\n")
        .until_close(),
        Case::new("lru_crawler/mgdump of one item", "set k:1 5 0 3\r\nabc\r\n")
            .sync()
            .send("lru_crawler mgdump all\r\n")
            .until_close(),
        Case::new("lru_crawler/mgdump by class", "set a%b 0 0 1\r\nx\r\n")
            .sync()
            .send("lru_crawler mgdump 1,2\r\n")
            .until_close(),
        Case::new("lru_crawler/mgdump hash", "set k 0 100 3\r\nabc\r\n")
            .sync()
            .send("lru_crawler mgdump hash\r\n")
            .until_close(),
        Case::new("lru_crawler/mgdump binary key", "ms /w== 1 b\r\nx\r\n")
            .sync()
            .send("lru_crawler mgdump all\r\n")
            .until_close(),
        Case::new("lru_crawler/mgdump skips expired items", "set e 0 1 1\r\nx\r\n")
            .sync()
            .pause(2100)
            .send("lru_crawler mgdump all\r\n")
            .until_close(),
        Case::new("lru_crawler/mgdump empty class", "set k 0 0 1\r\nx\r\n")
            .sync()
            .send("lru_crawler mgdump 2\r\n")
            .until_close(),
        Case::new(
            "lru_crawler/mgdump errors",
            "lru_crawler mgdump\r\nlru_crawler mgdump 99\r\nlru_crawler mgdump 0\r\nlru_crawler mgdump x\r\nlru_crawler mgdump all extra\r\n",
        ),
        Case::new(
            "lru_crawler/mgdump after queued replies",
            "set a 0 0 1\r\nx\r\nlru_crawler mgdump all\r\n",
        ),
        Case::new(
            "slabs/errors",
            "slabs\r\nslabs foo\r\nslabs reassign 1\r\nslabs reassign x 2\r\nslabs reassign 1 1\r\nslabs reassign 1 64\r\nslabs reassign 3 2\r\nslabs reassign 2 0 0\r\n\
             slabs reassign 0 1\r\nslabs reassign 63 1\r\nslabs reassign 1 63\r\nslabs reassign 1 200\r\n\
             slabs reassign 1 -1\r\nslabs reassign -1 1\r\nslabs reassign 64 1\r\nslabs reassign 1 0\r\n\
             slabs reassign 1 65\r\nslabs reassign -1 -1\r\nslabs reassign 64 64\r\nslabs reassign 1 4294967297\r\n\
             slabs reassign -2 1\r\n",
        ),
        Case::new(
            "slabs/automove",
            "slabs automove 2\r\nslabs automove 3\r\nslabs automove x\r\nslabs automove 0 noreply\r\nslabs automove ratio 0.5\r\nslabs automove ratio\r\nslabs automove 1\r\n",
        ),
        Case::new(
            "cachedump/errors",
            "stats cachedump\r\nstats cachedump 1\r\nstats cachedump x 0\r\nstats cachedump 64 0\r\nstats cachedump 99 1\r\n",
        ),
        Case::new(
            "cachedump/contents",
            "set k 0 0 3\r\nabc\r\nstats cachedump 1 0\r\nstats cachedump 1 1\r\nstats cachedump 2 0\r\n",
        ),
        Case::new(
            "lru/without the maintainer",
            "lru mode flat\r\nlru mode segmented\r\nlru temp_ttl 5\r\nlru tune 10 20 0.1 0.5\r\nstats settings\r\n",
        ),
    ];
    let mut cases: Vec<Case> = cases.into_iter().map(|c| c.args(NO_AUTOCRAWL)).collect();
    // Pages and class ids as memcached numbers them: its class table (`-f` asks for it; the
    // default table is finer for small items).
    cases.push(
        Case::new(
            "slabs/reassign a spare page",
            (0..12_000)
                .map(|i| format!("set k{i:05} 0 0 2 noreply\r\nab\r\n"))
                .collect::<String>(),
        )
        .sync()
        .send("slabs reassign 1 2\r\n")
        .args(&["-o", "no_lru_maintainer", "-f", "1.25"]),
    );
    // `-1`: the server picks a class with a page to spare (only class 1 has one).
    cases.push(
        Case::new(
            "slabs/reassign from any class",
            (0..12_000)
                .map(|i| format!("set k{i:05} 0 0 2 noreply\r\nab\r\n"))
                .collect::<String>(),
        )
        .sync()
        .send("slabs reassign -1 2\r\n")
        .args(&["-o", "no_lru_maintainer", "-f", "1.25"]),
    );
    cases.extend(dump_refusals());
    cases.extend(lru_cases());
    cases
}

/// `lru tune|mode|temp_ttl` with the maintainer (memcached's default), their errors, and the
/// settings they leave (`stats settings` lines in [`crate::mask::GENERAL_STATS`]).
fn lru_cases() -> Vec<Case> {
    vec![
        Case::new(
            "lru/errors",
            "lru\r\nlru x\r\nlru tune\r\nlru tune 10 20 0.2\r\nlru tune a 20 0.2 2\r\nlru tune 10 20 0.2x 2\r\nlru tune 90 20 0.2 2.0\r\nlru tune 10 20 -1 2\r\nlru tune 10 20 1 0\r\nlru mode\r\nlru mode x\r\nlru temp_ttl\r\nlru temp_ttl abc\r\nlru temp_ttl 5x\r\nstats settings\r\n",
        ),
        Case::new(
            "lru/tune mode temp_ttl",
            "lru tune 10 20 0.1 0.5\r\nlru mode flat\r\nlru temp_ttl 30\r\nstats settings\r\nlru tune 4294967295 1 1 1\r\nlru mode segmented\r\nlru temp_ttl -1\r\nstats settings\r\n",
        ),
        Case::new(
            "lru/noreply",
            "lru tune 10 20 0.1 0.5 noreply\r\nlru mode x noreply\r\nlru temp_ttl 7 noreply\r\nlru noreply\r\nstats settings\r\n",
        ),
        Case::new(
            "lru/temporary items",
            "set t 0 30 1\r\na\r\nset p 0 0 1\r\nb\r\nget t t p\r\nstats settings\r\n",
        )
        .args(&["-o", "temporary_ttl=60"]),
    ]
}

/// The dumps refused: crawler off from the start, or key dumps forbidden (`-X`).
fn dump_refusals() -> Vec<Case> {
    let both = "lru_crawler mgdump all\r\nlru_crawler metadump all\r\nlru_crawler mgdump 99\r\n";
    vec![
        Case::new("lru_crawler/dumps without the crawler", both).args(&["-o", "no_lru_crawler"]),
        Case::new("lru_crawler/dumps not allowed", both).args(&["-X"]),
        Case::new("lru_crawler/dumps not allowed nor crawler", both).args(&[
            "-X",
            "-o",
            "no_lru_crawler",
        ]),
    ]
}
