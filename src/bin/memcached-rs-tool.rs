//! `memcached-rs-tool`: memcached-tool's reports, hot keys and a live view of memcached-rs or
//! any memcached (see `man memcached-rs-tool`).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(memcached_rs::tool::main(&args));
}
