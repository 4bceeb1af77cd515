//! Durations in Prometheus's histogram shape (§14.2): fixed `le` bounds in seconds chosen for a
//! proxy (0.5 ms … 30 s), so that series from several instances add up and `histogram_quantile`
//! works across them. Recording is a search over 15 bounds and two relaxed atomic increments (the
//! bucket and the sum): no lock, no allocation.
//!
//! The log-linear [`super::histogram::LatencyHistogram`] stays for the windowed quantiles in
//! `/status`: its buckets do not fall on round bounds, so deriving `le` counts from it would
//! misplace observations near each bound by up to an eighth.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in microseconds (the `+Inf` bucket is implied).
pub const BOUNDS_MICROS: [u64; 15] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000, 30_000_000,
];

/// Counts per bucket (the last one above every bound) and the sum, since start.
pub struct DurationHistogram {
    buckets: [AtomicU64; BOUNDS_MICROS.len() + 1],
    sum_micros: AtomicU64,
}

impl Default for DurationHistogram {
    fn default() -> Self {
        DurationHistogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_micros: AtomicU64::new(0),
        }
    }
}

impl DurationHistogram {
    pub fn record(&self, duration: Duration) {
        let micros = duration.as_micros().min(u128::from(u64::MAX)) as u64;
        // The first bound at or above the value (`le` is inclusive).
        let index = BOUNDS_MICROS.partition_point(|&bound| bound < micros);
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The cumulative counts Prometheus exposes.
    pub fn read(&self) -> HistogramCounts {
        let mut cumulative = Vec::with_capacity(BOUNDS_MICROS.len());
        let mut seen = 0;
        for bucket in &self.buckets[..BOUNDS_MICROS.len()] {
            seen += bucket.load(Ordering::Relaxed);
            cumulative.push(seen);
        }
        let count = seen + self.buckets[BOUNDS_MICROS.len()].load(Ordering::Relaxed);
        HistogramCounts {
            cumulative,
            count,
            sum_seconds: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

/// A histogram as Prometheus shows it: `cumulative[i]` observations at or below
/// `BOUNDS_MICROS[i]`, `count` in all (the `+Inf` bucket), their sum in seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramCounts {
    pub cumulative: Vec<u64>,
    pub count: u64,
    pub sum_seconds: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_at_or_below_their_bound() {
        let h = DurationHistogram::default();
        let micros = [0, 500, 501, 1_000, 7_000, 30_000_000, 31_000_000];
        for us in micros {
            h.record(Duration::from_micros(us));
        }
        let read = h.read();
        assert_eq!(read.count, 7);
        // le=0.0005 holds 0 and 500; le=0.001 adds 501 and 1000; le=0.01 adds 7000.
        assert_eq!(&read.cumulative[..5], &[2, 4, 4, 4, 5]);
        assert_eq!(read.cumulative[14], 6, "30 s is inside the last bound");
        let sum: u64 = micros.iter().sum();
        assert!((read.sum_seconds - sum as f64 / 1e6).abs() < 1e-9);
        assert!(read.cumulative.windows(2).all(|w| w[0] <= w[1]));
    }
}
