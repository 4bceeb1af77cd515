//! The latency summary each instance publishes every evaluation interval: its histogram window
//! (bucket counts of `metrics::histogram`) as `seq;index:count,index:count`, non-zero buckets
//! only — a few dozen bytes for a typical interval.

use crate::metrics::histogram::BUCKETS;
use std::fmt::Write;

/// `seq;i:c,...` for the non-zero buckets of `counts`.
pub fn encode(seq: u64, counts: &[u64]) -> String {
    let mut text = format!("{seq};");
    let mut first = true;
    for (index, &count) in counts.iter().enumerate().filter(|(_, c)| **c > 0) {
        if !first {
            text.push(',');
        }
        first = false;
        // Writing to a String cannot fail.
        let _ = write!(text, "{index}:{count}");
    }
    text
}

/// Reads a summary back; `None` for anything malformed (another version, a stray key).
pub fn decode(text: &str) -> Option<(u64, Vec<u64>)> {
    let (seq, rest) = text.split_once(';')?;
    let seq = seq.parse().ok()?;
    let mut counts = vec![0u64; BUCKETS];
    for pair in rest.split(',').filter(|p| !p.is_empty()) {
        let (index, count) = pair.split_once(':')?;
        let index: usize = index.parse().ok()?;
        *counts.get_mut(index)? = count.parse().ok()?;
    }
    Some((seq, counts))
}

/// Adds `counts` into `window`, bucket by bucket.
pub fn add(window: &mut Vec<u64>, counts: &[u64]) {
    if window.len() < counts.len() {
        window.resize(counts.len(), 0);
    }
    window
        .iter_mut()
        .zip(counts)
        .for_each(|(w, c)| *w = w.saturating_add(*c));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let mut counts = vec![0; BUCKETS];
        counts[3] = 7;
        counts[100] = 2;
        let text = encode(42, &counts);
        assert_eq!(text, "42;3:7,100:2");
        assert_eq!(decode(&text), Some((42, counts.clone())));
        assert_eq!(decode("1;"), Some((1, vec![0; BUCKETS])));
        for bad in ["", "x;1:1", "1;1", &format!("1;{BUCKETS}:1"), "1;1:-1"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
        let mut window = Vec::new();
        add(&mut window, &counts);
        add(&mut window, &counts);
        assert_eq!(window[3], 14);
    }
}
