//! Histogram families (`_bucket`, `_sum`, `_count`) built from the recorders' cumulative counts.
//! The `prometheus` crate's own `Histogram` only counts through `observe`, so the family is
//! assembled from its data model and written by the same text encoder as everything else.

use crate::metrics::duration::{HistogramCounts, BOUNDS_MICROS};
use prometheus::proto::{Bucket, Histogram, LabelPair, Metric, MetricFamily, MetricType};

/// One histogram family; each series is its label values (one per name of `labels`, in
/// that order) and counts.
pub(super) fn family<'a>(
    name: &str,
    help: &str,
    labels: &[&str],
    series: impl IntoIterator<Item = (Vec<&'a str>, &'a HistogramCounts)>,
) -> MetricFamily {
    let metrics: Vec<Metric> = series
        .into_iter()
        .map(|(values, counts)| {
            let mut metric = Metric::default();
            let pairs: Vec<LabelPair> = labels
                .iter()
                .zip(values)
                .map(|(label, value)| {
                    let mut pair = LabelPair::default();
                    pair.set_name(label.to_string());
                    pair.set_value(value.to_string());
                    pair
                })
                .collect();
            if !pairs.is_empty() {
                metric.set_label(pairs.into());
            }
            metric.set_histogram(histogram(counts));
            metric
        })
        .collect();
    let mut family = MetricFamily::default();
    family.set_name(name.to_string());
    family.set_help(help.to_string());
    family.set_field_type(MetricType::HISTOGRAM);
    family.set_metric(metrics.into());
    family
}

fn histogram(counts: &HistogramCounts) -> Histogram {
    let buckets: Vec<Bucket> = BOUNDS_MICROS
        .iter()
        .zip(counts.cumulative.iter().chain(std::iter::repeat(&0)))
        .map(|(&bound, &cumulative)| {
            let mut bucket = Bucket::default();
            bucket.set_upper_bound(bound as f64 / 1e6);
            bucket.set_cumulative_count(cumulative);
            bucket
        })
        .collect();
    let mut histogram = Histogram::default();
    histogram.set_bucket(buckets.into());
    histogram.set_sample_count(counts.count);
    histogram.set_sample_sum(counts.sum_seconds);
    histogram
}
