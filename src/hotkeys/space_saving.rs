//! The Space-Saving top-K sketch (Metwally, Agrawal, El Abbadi, 2005), weighted: at most `K`
//! keys are counted; a key not counted takes the place of the least counted one, inheriting its
//! count as its possible overestimate. Any key whose true weight exceeds `total / K` is
//! counted, and every count is at most its `error` above the truth.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::OnceLock;

/// The keys each sketch counts.
pub const K: usize = 100;

/// One key's counted weight and how much of it may belong to keys it replaced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count {
    /// An overestimate of the key's weight.
    pub weight: u64,
    /// How far above the truth `weight` may be.
    pub error: u64,
    /// How many additions made the weight since the key was (last) counted.
    pub adds: u64,
}

/// A counted key.
#[derive(Debug, Clone)]
struct Slot {
    key: Vec<u8>,
    hash: u64,
    count: Count,
}

/// Hashes that are already hashes (the index's keys) pass through.
#[derive(Debug, Default, Clone, Copy)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A sketch of the heaviest keys of a stream.
///
/// A key replacing another reuses its slot's memory, and a stream of new keys costs one scan
/// for the least weight per run of replacements of that weight, not one per replacement.
#[derive(Debug, Clone, Default)]
pub struct SpaceSaving {
    slots: Vec<Slot>,
    /// Slot by [`key_hash`].
    index: HashMap<u64, u32, BuildHasherDefault<PassThrough>>,
    /// Slots that had the least weight, `least_weight`, when last looked for; the next
    /// replacements take those still at that weight.
    least: Vec<u32>,
    least_weight: u64,
    /// Every weight added, counted or not.
    total: u64,
}

/// The hash sketches find a key by: SipHash with a key chosen at random once per process, so
/// a client cannot aim keys at one bucket; one hash serves every sketch a sample goes into.
pub fn key_hash(key: &[u8]) -> u64 {
    static HASHER: OnceLock<RandomState> = OnceLock::new();
    HASHER.get_or_init(RandomState::new).hash_one(key)
}

impl SpaceSaving {
    /// Adds `weight` for `key`.
    pub fn add(&mut self, key: &[u8], weight: u64) {
        self.add_hashed(key, key_hash(key), weight);
    }

    /// Adds `weight` for `key`, whose [`key_hash`] is `hash`.
    pub fn add_hashed(&mut self, key: &[u8], hash: u64, weight: u64) {
        self.total += weight;
        if let Some(&i) = self.index.get(&hash) {
            // Another key with the same 64-bit keyed hash would share the count: a chance of
            // about K in 2^64.
            let count = &mut self.slots[i as usize].count;
            count.weight += weight;
            count.adds += 1;
            return;
        }
        let slot = |count| Slot {
            key: key.to_vec(),
            hash,
            count,
        };
        if self.slots.len() < K {
            let i = self.slots.len() as u32;
            self.slots.push(slot(Count {
                weight,
                error: 0,
                adds: 1,
            }));
            self.index.insert(hash, i);
            return;
        }
        let i = self.take_least();
        let least = self.least_weight;
        let s = &mut self.slots[i as usize];
        self.index.remove(&s.hash);
        s.key.clear();
        s.key.extend_from_slice(key);
        s.hash = hash;
        s.count = Count {
            weight: least + weight,
            error: least,
            adds: 1,
        };
        self.index.insert(hash, i);
    }

    /// A slot of least weight, to be replaced (the sketch is full).
    fn take_least(&mut self) -> u32 {
        loop {
            while let Some(i) = self.least.pop() {
                // Weights only grow: one still at the least weight seen is a least one.
                if self.slots[i as usize].count.weight == self.least_weight {
                    return i;
                }
            }
            self.least_weight = self.slots.iter().map(|s| s.count.weight).min().unwrap_or(0);
            let least_weight = self.least_weight;
            let least = self.slots.iter().enumerate();
            let least = least.filter(|(_, s)| s.count.weight == least_weight);
            self.least.extend(least.map(|(i, _)| i as u32));
        }
    }

    /// Forgets every key.
    pub fn clear(&mut self) {
        self.slots.clear();
        self.index.clear();
        self.least.clear();
        self.total = 0;
    }

    /// Every weight added since the sketch was last cleared.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The most a key this sketch does not count may weigh: the least count when the sketch
    /// is full (that key may have been replaced), else 0.
    pub fn uncounted_bound(&self) -> u64 {
        if self.slots.len() < K {
            return 0;
        }
        self.slots.iter().map(|s| s.count.weight).min().unwrap_or(0)
    }

    /// Every counted key.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], Count)> {
        self.slots.iter().map(|s| (&s.key[..], s.count))
    }
}

/// A key's weight over several sketches (of several threads and time buckets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    /// The key.
    pub key: Vec<u8>,
    /// An overestimate of its weight over all the sketches.
    pub weight: u64,
    /// How far above the truth `weight` may be.
    pub error: u64,
    /// The additions counted for it (how many samples the weight rests on).
    pub adds: u64,
}

/// The keys counted by any of `sketches`, heaviest first, each with the bounds all of them
/// give: a sketch that does not count a key adds its [`SpaceSaving::uncounted_bound`] to the
/// key's weight and error.
pub fn merge<'a>(sketches: impl IntoIterator<Item = &'a SpaceSaving>) -> Vec<Merged> {
    let sketches: Vec<&SpaceSaving> = sketches.into_iter().filter(|s| !s.is_empty()).collect();
    let bounds: Vec<u64> = sketches.iter().map(|s| s.uncounted_bound()).collect();
    let all_bounds: u64 = bounds.iter().sum();
    // Per key: the counts of the sketches that count it, and the bounds those sketches would
    // have added had they not.
    let mut merged: HashMap<&[u8], (Count, u64)> = HashMap::new();
    for (sketch, bound) in sketches.iter().zip(&bounds) {
        for (key, count) in sketch.iter() {
            let (sum, counted_bounds) = merged.entry(key).or_default();
            sum.weight += count.weight;
            sum.error += count.error;
            sum.adds += count.adds;
            *counted_bounds += bound;
        }
    }
    let mut keys: Vec<Merged> = merged
        .into_iter()
        .map(|(key, (sum, counted_bounds))| {
            let uncounted = all_bounds - counted_bounds;
            Merged {
                key: key.to_vec(),
                weight: sum.weight + uncounted,
                error: sum.error + uncounted,
                adds: sum.adds,
            }
        })
        .collect();
    keys.sort_unstable_by(|a, b| b.weight.cmp(&a.weight).then_with(|| a.key.cmp(&b.key)));
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exact weights of a stream, for checking the sketch against.
    fn exact(stream: &[(Vec<u8>, u64)]) -> HashMap<Vec<u8>, u64> {
        let mut m = HashMap::new();
        for (k, w) in stream {
            *m.entry(k.clone()).or_default() += w;
        }
        m
    }

    /// A skewed stream over `keys` keys: key i comes about 1/(i+1) as often as key 0, in an
    /// interleaved order (a fixed pseudo-random sequence).
    fn skewed(keys: usize, len: usize, seed: u64) -> Vec<(Vec<u8>, u64)> {
        let weights: Vec<f64> = (0..keys).map(|i| 1.0 / (i + 1) as f64).collect();
        let total: f64 = weights.iter().sum();
        let mut x = seed;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let mut r = (x % 1_000_000) as f64 / 1_000_000.0 * total;
                let mut i = 0;
                while i + 1 < keys && r >= weights[i] {
                    r -= weights[i];
                    i += 1;
                }
                (format!("key:{i}").into_bytes(), 1 + (x >> 40) % 3)
            })
            .collect()
    }

    fn assert_bounds(merged: &[Merged], truth: &HashMap<Vec<u8>, u64>) {
        for m in merged {
            let true_weight = truth.get(&m.key).copied().unwrap_or(0);
            assert!(
                m.weight >= true_weight && m.weight - m.error <= true_weight,
                "{}: counted {} ± {}, truly {true_weight}",
                String::from_utf8_lossy(&m.key),
                m.weight,
                m.error
            );
        }
    }

    #[test]
    fn counts_are_exact_while_the_keys_fit() {
        let mut s = SpaceSaving::default();
        for i in 0..K {
            s.add(format!("k{i}").as_bytes(), i as u64 + 1);
        }
        s.add(b"k5", 10);
        assert_eq!(s.uncounted_bound(), 1);
        let merged = merge([&s]);
        assert_eq!(merged.len(), K);
        assert_eq!(merged[0].key, format!("k{}", K - 1).into_bytes());
        let k5 = merged.iter().find(|m| m.key == b"k5").expect("k5");
        assert_eq!((k5.weight, k5.error), (16, 0));
    }

    #[test]
    fn a_new_key_takes_the_least_counted_place_and_its_count_as_error() {
        let mut s = SpaceSaving::default();
        for i in 0..K {
            s.add(format!("k{i}").as_bytes(), 5 + i as u64);
        }
        s.add(b"new", 2);
        let counts: HashMap<&[u8], Count> = s.iter().collect();
        assert_eq!(counts.len(), K);
        assert!(
            !counts.contains_key(&b"k0"[..]),
            "the least counted key gave its place"
        );
        let new = Count {
            weight: 7,
            error: 5,
            adds: 1,
        };
        assert_eq!(counts[&b"new"[..]], new);
    }

    #[test]
    fn the_heaviest_keys_of_a_skewed_stream_are_found_within_their_bounds() {
        let stream = skewed(5000, 200_000, 7);
        let truth = exact(&stream);
        let mut s = SpaceSaving::default();
        for (k, w) in &stream {
            s.add(k, *w);
        }
        let merged = merge([&s]);
        assert_bounds(&merged, &truth);
        let mut true_top: Vec<(&Vec<u8>, &u64)> = truth.iter().collect();
        true_top.sort_by(|a, b| b.1.cmp(a.1));
        for (key, _) in true_top.iter().take(10) {
            let rank = merged.iter().position(|m| &m.key == *key);
            assert!(rank.is_some_and(|r| r < 20), "{:?} ranked {rank:?}", key);
        }
    }

    #[test]
    fn merged_sketches_keep_the_bounds_of_the_whole_stream() {
        // Four parts (threads or seconds), each sketched on its own.
        let stream = skewed(3000, 120_000, 11);
        let truth = exact(&stream);
        let sketches: Vec<SpaceSaving> = stream
            .chunks(30_000)
            .enumerate()
            .map(|(part, chunk)| {
                let mut s = SpaceSaving::default();
                // Each part skews differently, so keys fall out of some sketches.
                for (i, (k, w)) in chunk.iter().enumerate() {
                    if part % 2 == 0 || i % 3 != 0 {
                        s.add(k, *w);
                    } else {
                        s.add(format!("only:{part}:{i}").as_bytes(), *w);
                    }
                }
                s
            })
            .collect();
        let mut all_truth = HashMap::new();
        for (part, chunk) in stream.chunks(30_000).enumerate() {
            for (i, (k, w)) in chunk.iter().enumerate() {
                let key = if part % 2 == 0 || i % 3 != 0 {
                    k.clone()
                } else {
                    format!("only:{part}:{i}").into_bytes()
                };
                *all_truth.entry(key).or_default() += w;
            }
        }
        let merged = merge(&sketches);
        assert!(!merged.is_empty());
        assert_bounds(&merged, &all_truth);
        assert!(truth.len() > K);
        for pair in merged.windows(2) {
            assert!(pair[0].weight >= pair[1].weight, "heaviest first");
        }
    }
}
