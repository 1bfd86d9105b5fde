//! Random command sequences against the cache and against a plain model of memcached's
//! semantics (a map of key → value, flags, CAS): every outcome and every read must agree.
//! proptest shrinks a failing sequence to a minimal one.

use std::collections::HashMap;
use std::sync::Arc;

use memcached_rs::cache::{
    ArithOutcome, Cache, CacheConfig, Clock, StoreMode, StoreOptions, StoreOutcome,
};
use memcached_rs::numparse::parse_stored_u64;
use memcached_rs::stats::ThreadStats;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Store(StoreMode, u8, u32, Vec<u8>),
    Cas(u8, u64, Vec<u8>),
    Delete(u8),
    Arith(u8, bool, u64),
    Get(u8),
}

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    value: Vec<u8>,
    flags: u32,
    cas: u64,
}

struct Model {
    items: HashMap<u8, Entry>,
    last_cas: u64,
}

impl Default for Model {
    fn default() -> Model {
        // memcached 1.6.38's first CAS id is 2.
        Model {
            items: HashMap::new(),
            last_cas: 1,
        }
    }
}

impl Model {
    fn next_cas(&mut self) -> u64 {
        self.last_cas += 1;
        self.last_cas
    }

    fn store(
        &mut self,
        mode: StoreMode,
        key: u8,
        flags: u32,
        data: &[u8],
        cas: u64,
    ) -> StoreOutcome {
        // memcached 1.6.38 spends a CAS id on every store it starts, stored or not.
        let new_cas = self.next_cas();
        let existing = self.items.get(&key).cloned();
        let value = match (mode, &existing) {
            (StoreMode::Set, _) | (StoreMode::Add, None) | (StoreMode::Replace, Some(_)) => {
                data.to_vec()
            }
            (StoreMode::Cas, None) => return StoreOutcome::NotFound,
            (StoreMode::Cas, Some(e)) if e.cas != cas || cas == 0 => return StoreOutcome::Exists,
            (StoreMode::Cas, Some(_)) => data.to_vec(),
            (StoreMode::Append, Some(e)) => [&e.value[..], data].concat(),
            (StoreMode::Prepend, Some(e)) => [data, &e.value[..]].concat(),
            _ => return StoreOutcome::NotStored,
        };
        let flags = match (mode, &existing) {
            (StoreMode::Append | StoreMode::Prepend, Some(e)) => e.flags,
            _ => flags,
        };
        // memcached's size limit (-I 1 MB) with its item header arithmetic; a concatenation
        // that outgrows it is not stored.
        let key_len = format!("key:{key}").len();
        let header = 48 + key_len + 1 + 2 + 8 + if flags == 0 { 0 } else { 4 };
        if header + value.len() > 1024 * 1024 {
            return StoreOutcome::NotStored;
        }
        let len = value.len() as u32;
        self.items.insert(
            key,
            Entry {
                value,
                flags,
                cas: new_cas,
            },
        );
        StoreOutcome::Stored { cas: new_cas, len }
    }

    fn arith(&mut self, key: u8, increment: bool, delta: u64) -> ArithOutcome {
        let Some(e) = self.items.get(&key).cloned() else {
            return ArithOutcome::NotFound;
        };
        // memcached does not parse an item chunked over several slab chunks (one larger than
        // slab_chunk_max, 512 KB): not a number, whatever it holds.
        let key_len = format!("key:{key}").len();
        if 48 + key_len + 1 + 2 + 8 + e.value.len() > 512 * 1024 {
            return ArithOutcome::NonNumeric;
        }
        let Some(n) = (!e.value.is_empty())
            .then(|| parse_stored_u64(&e.value))
            .flatten()
        else {
            return ArithOutcome::NonNumeric;
        };
        let n = if increment {
            n.wrapping_add(delta)
        } else {
            n.saturating_sub(delta)
        };
        let mut digits = n.to_string().into_bytes();
        // memcached rewrites a result that fits in place, padded with spaces.
        if digits.len() <= e.value.len() {
            digits.resize(e.value.len(), b' ');
        }
        let cas = self.next_cas();
        self.items.insert(
            key,
            Entry {
                value: digits,
                cas,
                ..e
            },
        );
        ArithOutcome::Value(n)
    }
}

fn key(k: u8) -> Vec<u8> {
    format!("key:{k}").into_bytes()
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..40),
        (0u64..1000).prop_map(|n| n.to_string().into_bytes()),
        (0usize..2).prop_map(|big| vec![b'z'; if big == 1 { 600_000 } else { 3000 }]),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0u8..6;
    let mode = prop_oneof![
        Just(StoreMode::Set),
        Just(StoreMode::Add),
        Just(StoreMode::Replace),
        Just(StoreMode::Append),
        Just(StoreMode::Prepend),
    ];
    prop_oneof![
        (mode, k.clone(), 0u32..4, value()).prop_map(|(m, k, f, v)| Op::Store(m, k, f, v)),
        (k.clone(), 0u64..40, value()).prop_map(|(k, c, v)| Op::Cas(k, c, v)),
        k.clone().prop_map(Op::Delete),
        (
            k.clone(),
            any::<bool>(),
            prop_oneof![0u64..5, Just(u64::MAX)]
        )
            .prop_map(|(k, i, d)| Op::Arith(k, i, d)),
        k.prop_map(Op::Get),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn cache_agrees_with_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        let cache = Cache::new(&CacheConfig::with_memory(64 << 20), Arc::new(Clock::new()))
            .expect("map the arena");
        let stats = ThreadStats::default();
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Store(mode, k, flags, data) => {
                    let got = cache.store(&stats, mode, &key(k), flags, 0, &data);
                    prop_assert_eq!(got, model.store(mode, k, flags, &data, 0));
                }
                Op::Cas(k, cas, data) => {
                    let opts = StoreOptions { cas, ..StoreOptions::default() };
                    let got = cache.store_with(&stats, StoreMode::Cas, opts, &key(k), 1, 0, &data);
                    prop_assert_eq!(got, model.store(StoreMode::Cas, k, 1, &data, cas));
                }
                Op::Delete(k) => {
                    prop_assert_eq!(cache.delete(&stats, &key(k)), model.items.remove(&k).is_some());
                }
                Op::Arith(k, increment, delta) => {
                    let got = cache.arithmetic(&stats, &key(k), increment, delta, true);
                    prop_assert_eq!(got, model.arith(k, increment, delta));
                }
                Op::Get(k) => {
                    let got = cache.get(&stats, &key(k), None, |i| Entry {
                        value: i.data.to_vec(),
                        flags: i.flags,
                        cas: i.cas,
                    });
                    prop_assert_eq!(got, model.items.get(&k).cloned());
                }
            }
        }
        prop_assert_eq!(cache.stats().curr_items, model.items.len() as u64);
    }
}
