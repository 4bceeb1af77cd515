//! A cumulative latency histogram with log-linear buckets (HDR-style, 3 significant bits):
//! recording is one atomic increment, percentiles come from bucket counts without sorting, and
//! windows are differences of two cumulative copies.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Sub-buckets per power of two (2^3): relative error at most 12.5 %.
const SUB_BITS: u32 = 3;
const SUB: usize = 1 << SUB_BITS;
/// Largest recorded value, in microseconds (about 268 s); larger values land in the last bucket.
const MAX_US: u64 = (1 << 28) - 1;
/// Number of buckets covering 0..=MAX_US.
pub const BUCKETS: usize = SUB + (28 - SUB_BITS as usize) * SUB;

/// Bucket index of a value in microseconds.
pub fn bucket_of(us: u64) -> usize {
    let v = us.min(MAX_US);
    if v < SUB as u64 {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros();
    let mantissa = (v >> (exp - SUB_BITS)) as usize & (SUB - 1);
    SUB + (exp - SUB_BITS) as usize * SUB + mantissa
}

/// The largest value (µs) a bucket holds; percentiles report this upper bound.
pub fn bucket_upper_us(index: usize) -> u64 {
    if index < SUB {
        return index as u64;
    }
    let exp = (index - SUB) / SUB + SUB_BITS as usize;
    let mantissa = ((index - SUB) % SUB) as u64;
    let low = (1u64 << exp) + (mantissa << (exp - SUB_BITS as usize));
    low + (1u64 << (exp - SUB_BITS as usize)) - 1
}

/// The `q` quantile (0..=1) of a set of bucket counts, in milliseconds; `None` without samples.
pub fn quantile_ms(counts: &[u64], q: f64) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (index, &count) in counts.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return Some(bucket_upper_us(index) as f64 / 1000.0);
        }
    }
    None
}

/// Element-wise `now - before` (saturating), for the samples recorded in between.
pub fn difference(now: &[u64], before: &[u64]) -> Vec<u64> {
    now.iter()
        .zip(before.iter().chain(std::iter::repeat(&0)))
        .map(|(a, b)| a.saturating_sub(*b))
        .collect()
}

/// Cumulative counts since start, shared by the workers.
pub struct LatencyHistogram {
    buckets: Box<[AtomicU64]>,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl LatencyHistogram {
    pub fn record(&self, latency: Duration) {
        let us = latency.as_micros().min(u64::MAX as u128) as u64;
        self.buckets[bucket_of(us)].fetch_add(1, Ordering::Relaxed);
    }

    /// A copy of the cumulative counts.
    pub fn counts(&self) -> Vec<u64> {
        self.buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_bounded() {
        let mut last = 0;
        for us in (0..5000).chain([100_000, 1_000_000, MAX_US, u64::MAX]) {
            let b = bucket_of(us);
            assert!(b >= last && b < BUCKETS, "{us}");
            assert!(
                bucket_upper_us(b) >= us.min(MAX_US),
                "{us} above its bucket"
            );
            last = b;
        }
    }

    #[test]
    fn error_is_within_an_eighth() {
        for us in [9u64, 100, 999, 12_345, 500_000, 3_000_000] {
            let upper = bucket_upper_us(bucket_of(us)) as f64;
            assert!((upper - us as f64) / us as f64 <= 0.125, "{us} -> {upper}");
        }
    }

    #[test]
    fn quantiles_of_a_known_distribution() {
        let h = LatencyHistogram::default();
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let counts = h.counts();
        let p50 = quantile_ms(&counts, 0.50).unwrap();
        let p95 = quantile_ms(&counts, 0.95).unwrap();
        let p99 = quantile_ms(&counts, 0.99).unwrap();
        assert!((50.0..=56.25).contains(&p50), "{p50}");
        assert!((95.0..=106.9).contains(&p95), "{p95}");
        assert!((99.0..=111.4).contains(&p99), "{p99}");
        assert_eq!(quantile_ms(&[0; BUCKETS], 0.5), None);
    }

    #[test]
    fn windows_are_differences() {
        let h = LatencyHistogram::default();
        h.record(Duration::from_millis(900));
        let before = h.counts();
        for _ in 0..10 {
            h.record(Duration::from_millis(2));
        }
        let window = difference(&h.counts(), &before);
        assert_eq!(window.iter().sum::<u64>(), 10);
        assert!(quantile_ms(&window, 0.99).unwrap() < 3.0);
    }
}
