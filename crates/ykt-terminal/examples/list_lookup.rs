//! Card blacklist lookup cost at 100 k, 1 M and 10 M entries: the bucketed flat `Vec` of
//! `ykt_terminal::lists` against a plain sorted `Vec` with binary search and
//! `std::collections::HashSet` (SipHash, and a cheap multiplicative hash), plus build and load
//! times and memory per entry. Lookups are 1 M hits in random order and 1 M misses.
//!
//! Run in release mode: `cargo run --release -p ykt-terminal --example list_lookup [max_entries]`.
// An example program: it reports failures by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::hint::black_box;
use std::time::Instant;

use ykt_terminal::lists::CardBlacklist;

/// Deterministic pseudo-random ASNs with a common `3104` prefix, as real card numbers share one.
fn asns(n: usize, seed: u64) -> Vec<[u8; 10]> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut a = [0u8; 10];
            a[0] = 0x31;
            a[1] = 0x04;
            a[2..].copy_from_slice(&x.to_be_bytes());
            a
        })
        .collect()
}

/// A multiplicative hash of the bytes: far cheaper than SipHash, fine for keys nobody chooses.
#[derive(Default)]
struct MulHasher(u64);

impl Hasher for MulHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01B3);
        }
        self.0 = self.0.rotate_left(29).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

fn ns_per(start: Instant, n: usize) -> f64 {
    start.elapsed().as_nanos() as f64 / n as f64
}

/// Median of five timed passes over `probes`, in ns per lookup.
fn time_lookups(probes: &[[u8; 10]], mut f: impl FnMut(&[u8; 10]) -> bool) -> (f64, usize) {
    let mut runs = Vec::new();
    let mut hits = 0;
    for _ in 0..5 {
        hits = 0;
        let t = Instant::now();
        for p in probes {
            hits += usize::from(black_box(f(black_box(p))));
        }
        runs.push(ns_per(t, probes.len()));
    }
    runs.sort_by(f64::total_cmp);
    (runs[2], hits)
}

fn hashset_bytes<T>(set: &HashSet<[u8; 10], T>) -> usize {
    // hashbrown: buckets = next power of two of capacity × 8/7, one control byte per bucket.
    let buckets = (set.capacity() * 8 / 7).next_power_of_two();
    buckets * (10 + 1)
}

fn main() {
    let max: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("max entries"))
        .unwrap_or(10_000_000);
    println!(
        "| entries | build | lists: B/entry | hit ns | miss ns | binary search: hit ns | miss ns | HashSet SipHash: B/entry | hit ns | miss ns | HashSet mul-hash: hit ns | miss ns | binary load | text parse |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for n in [100_000, 1_000_000, 10_000_000]
        .into_iter()
        .filter(|n| *n <= max)
    {
        let entries = asns(n, 0x1234_5678_9ABC_DEF1);
        let probes_n = 1_000_000;
        // Hits in random order (a stride through the unsorted input), misses from another stream.
        let hits: Vec<[u8; 10]> = (0..probes_n).map(|i| entries[(i * 7_919) % n]).collect();
        let misses = asns(probes_n, 0x0FED_CBA9_8765_4321);

        let t = Instant::now();
        let list = CardBlacklist::from_unsorted(1, entries.clone());
        let build_ms = t.elapsed().as_secs_f64() * 1e3;
        assert_eq!(list.len(), n);
        let (vec_hit, h) = time_lookups(&hits, |p| list.contains(p));
        assert_eq!(h, probes_n);
        let (vec_miss, h) = time_lookups(&misses, |p| list.contains(p));
        assert_eq!(h, 0);

        let mut sorted = entries.clone();
        sorted.sort_unstable();
        let (bs_hit, _) = time_lookups(&hits, |p| sorted.binary_search(p).is_ok());
        let (bs_miss, _) = time_lookups(&misses, |p| sorted.binary_search(p).is_ok());
        drop(sorted);

        let sip: HashSet<[u8; 10]> = entries.iter().copied().collect();
        let (sip_hit, _) = time_lookups(&hits, |p| sip.contains(p));
        let (sip_miss, _) = time_lookups(&misses, |p| sip.contains(p));
        let sip_bytes = hashset_bytes(&sip) as f64 / n as f64;
        drop(sip);
        let mul: HashSet<[u8; 10], BuildHasherDefault<MulHasher>> =
            entries.iter().copied().collect();
        let (mul_hit, _) = time_lookups(&hits, |p| mul.contains(p));
        let (mul_miss, _) = time_lookups(&misses, |p| mul.contains(p));
        drop(mul);

        let bin = list.to_binary();
        let t = Instant::now();
        let loaded = CardBlacklist::from_binary(&bin).expect("binary list");
        let load_ms = t.elapsed().as_secs_f64() * 1e3;
        assert_eq!(loaded.len(), n);
        let text = list.to_text();
        let t = Instant::now();
        let parsed = CardBlacklist::parse(&text).expect("text list");
        let parse_ms = t.elapsed().as_secs_f64() * 1e3;
        assert_eq!(parsed.len(), n);

        println!(
            "| {n} | {build_ms:.0} ms | {:.1} | {vec_hit:.0} | {vec_miss:.0} | {bs_hit:.0} | {bs_miss:.0} | {sip_bytes:.1} | {sip_hit:.0} | {sip_miss:.0} | {mul_hit:.0} | {mul_miss:.0} | {load_ms:.0} ms | {parse_ms:.0} ms |",
            list.memory_bytes() as f64 / n as f64,
        );
    }
}
