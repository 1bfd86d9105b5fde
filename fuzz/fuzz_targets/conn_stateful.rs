//! A command stream (text, meta and binary) decoded from the input, through the handler the
//! connection code drives, against a real cache, checked against a model of it.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| memcached_rs_fuzz::stateful::run(data));
