//! The longest single insert while a map fills: one `HashMap` against the same entries in a
//! [`ShardedMap`], in alternating rounds. A single map's longest insert is the one that
//! doubles it (every entry moved at once); on the decision path that insert holds the live
//! state's lock, so it is a pause every decision in flight waits out.

use finpulse_core::sharded::ShardedMap;
use std::collections::HashMap;
use std::time::Instant;

/// A value the size of a remembered payment (the live state's largest map by count).
#[derive(Clone, Copy)]
struct PaymentSized {
    _refs: [u64; 3],
    _day: i32,
}

/// Uniform 64-bit keys, like the hashed ids the maps hold.
fn keys(n: usize) -> Vec<u64> {
    let mut rng = crate::decide::Rng(0x9E37_79B9_7F4A_7C15);
    (0..n).map(|_| rng.next()).collect()
}

/// Inserts every key through `insert`; returns the longest insert and the whole fill, in µs.
fn fill(keys: &[u64], mut insert: impl FnMut(u64)) -> (f64, f64) {
    let started = Instant::now();
    let mut longest_ns = 0u128;
    for &k in keys {
        let t = Instant::now();
        insert(k);
        longest_ns = longest_ns.max(t.elapsed().as_nanos());
    }
    (longest_ns as f64 / 1000.0, started.elapsed().as_secs_f64() * 1e6)
}

pub fn run(entries: usize, rounds: usize) {
    let keys = keys(entries);
    let value = PaymentSized { _refs: [1, 2, 3], _day: 4 };
    let (mut single, mut sharded) = (Vec::new(), Vec::new());
    for round in 0..rounds.max(1) {
        // Alternate which goes first, so neither always meets the machine fresh.
        for which in [round % 2, 1 - round % 2] {
            if which == 0 {
                let mut m: HashMap<u64, PaymentSized> = HashMap::new();
                single.push(fill(&keys, |k| {
                    m.insert(k, value);
                }));
            } else {
                let mut m: ShardedMap<u64, PaymentSized> = ShardedMap::new();
                sharded.push(fill(&keys, |k| {
                    m.insert(k, value);
                }));
            }
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let report = |name: &str, runs: &[(f64, f64)]| {
        let (mut longest, mut total): (Vec<f64>, Vec<f64>) = runs.iter().copied().unzip();
        let (l, t) = (median(&mut longest), median(&mut total));
        println!(
            "map-growth: {name}: {entries} inserts, longest single insert {:.2} ms, whole fill {:.1} ms (medians of {} rounds)",
            l / 1000.0,
            t / 1000.0,
            runs.len()
        );
        (l, t)
    };
    let (single_longest, single_total) = report("one HashMap", &single);
    let (sharded_longest, sharded_total) = report("ShardedMap", &sharded);
    println!(
        "map-growth: the sharded map's longest insert is {:.3}x the single map's; its whole fill {:.2}x",
        sharded_longest / single_longest,
        sharded_total / single_total
    );
}
