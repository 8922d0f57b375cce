//! Deterministic randomness: one independent stream per seed, purpose, organisation and
//! cycle (splitmix64 into `StdRng`), so the same `--seed` gives the same data whatever the batch
//! sizes or the order of the work.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// organisation and cycle gets its own independent random stream.
fn mix(seed: u64, parts: &[u64]) -> u64 {
    let mut x = seed;
    for p in parts {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15).wrapping_add(*p);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^= x >> 31;
    }
    x
}

pub(super) fn rng_for(seed: u64, parts: &[u64]) -> StdRng {
    StdRng::seed_from_u64(mix(seed, parts))
}

/// Streams of randomness, one purpose each, so adding a use of one never shifts another.
pub(super) const STREAM_ORG: u64 = 1;
pub(super) const STREAM_MOVES: u64 = 2;
pub(super) const STREAM_ANSWERS: u64 = 3;
pub(super) const STREAM_PEOPLE: u64 = 4;
pub(super) const STREAM_NAMES: u64 = 5;

pub(super) fn unit(rng: &mut StdRng) -> f64 {
    rng.gen::<f64>()
}

pub(super) fn between(rng: &mut StdRng, lo: f64, hi: f64) -> f64 {
    if hi > lo {
        lo + (hi - lo) * unit(rng)
    } else {
        lo
    }
}

pub(super) fn chance(rng: &mut StdRng, p: f64) -> bool {
    unit(rng) < p
}

pub(super) fn pick(rng: &mut StdRng, len: usize) -> usize {
    if len == 0 {
        0
    } else {
        rng.gen_range(0..len)
    }
}
