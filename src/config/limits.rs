//! The `rate_limit` and `adaptive` sections (§5): the per-client limit and the loop that moves
//! its rate with the backends' latency.

use super::checker::Checker;
use super::raw::{RawAdaptive, RawRateLimit};
use std::time::Duration;

/// `rate_limit`: the per-client limit (§5.1).
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitSettings {
    /// `rate_limit.requests_per_second`, default 100, (0, 1000000]: the sustained rate of one
    /// client, and the adaptive loop's starting point (clamped into its bounds).
    pub requests_per_second: f64,
    /// `rate_limit.burst`, default 150, 1–1000000: requests a fresh client may send at once.
    pub burst: u32,
    /// `rate_limit.cleanup_interval`, default 60s: accepted for compatibility with the Go Aegis;
    /// memory is bounded by design, so it has no effect.
    pub cleanup_interval: Duration,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            requests_per_second: 100.0,
            burst: 150,
            cleanup_interval: Duration::from_secs(60),
        }
    }
}

/// `adaptive`: the loop that tightens and relaxes the per-client rate (§5.2).
#[derive(Debug, Clone, PartialEq)]
pub struct AdaptiveSettings {
    /// `adaptive.enabled`, default true: run the loop; off, the rate stays at
    /// `requests_per_second`.
    pub enabled: bool,
    /// `adaptive.evaluation_interval`, default 10s: how often the P95 is looked at.
    pub evaluation_interval: Duration,
    /// `adaptive.latency_threshold_ms`, default 500 ms: a P95 above it reduces the rate, one
    /// below 70 % of it lets the rate recover.
    pub latency_threshold: Duration,
    /// `adaptive.reduction_factor`, default 0.8, in (0, 1): the rate is multiplied by it on a
    /// reduction.
    pub reduction_factor: f64,
    /// `adaptive.recovery_factor`, default 1.1, > 1: the rate is multiplied by it on a recovery.
    pub recovery_factor: f64,
    /// `adaptive.min_rate`, default 10, less than `max_rate`: the rate never goes below it.
    pub min_rate: f64,
    /// `adaptive.max_rate`, default 500: the rate never goes above it.
    pub max_rate: f64,
}

impl Default for AdaptiveSettings {
    fn default() -> Self {
        AdaptiveSettings {
            enabled: true,
            evaluation_interval: Duration::from_secs(10),
            latency_threshold: Duration::from_millis(500),
            reduction_factor: 0.8,
            recovery_factor: 1.1,
            min_rate: 10.0,
            max_rate: 500.0,
        }
    }
}

/// The limiter's window length for a burst and a rate: `burst / rate` seconds, kept within
/// 1 s..=60 s (`limit`; here because validation counts the routes' distinct windows).
pub fn window_for(burst: u32, rate: f64) -> f64 {
    (burst as f64 / rate).clamp(1.0, 60.0)
}

impl Checker {
    pub(super) fn rate_limit(&mut self, raw: RawRateLimit) -> RateLimitSettings {
        self.rate_limit_at(raw, "rate_limit")
    }

    /// The section at `section` (`rate_limit`, or a route's `routes[0].rate_limit`).
    pub(super) fn rate_limit_at(&mut self, raw: RawRateLimit, section: &str) -> RateLimitSettings {
        self.unknown(section, &raw.unknown);
        let default = RateLimitSettings::default();
        let key = |name: &str| format!("{section}.{name}");
        RateLimitSettings {
            requests_per_second: self.number(
                raw.requests_per_second,
                &key("requests_per_second"),
                default.requests_per_second,
                "greater than 0 and at most 1000000",
                |v| v > 0.0 && v <= 1e6,
            ),
            burst: self.int(raw.burst, &key("burst"), default.burst.into(), 1, 1_000_000) as u32,
            cleanup_interval: self.duration(
                raw.cleanup_interval,
                &key("cleanup_interval"),
                default.cleanup_interval,
            ),
        }
    }

    pub(super) fn adaptive(&mut self, raw: RawAdaptive) -> AdaptiveSettings {
        self.unknown("adaptive", &raw.unknown);
        let default = AdaptiveSettings::default();
        let min_rate = self.number(
            raw.min_rate,
            "adaptive.min_rate",
            default.min_rate,
            "greater than 0",
            |v| v > 0.0,
        );
        let max_rate = self.number(
            raw.max_rate,
            "adaptive.max_rate",
            default.max_rate,
            "greater than 0",
            |v| v > 0.0,
        );
        if min_rate >= max_rate {
            self.error(
                "adaptive.min_rate",
                format!("must be less than adaptive.max_rate ({min_rate} >= {max_rate})"),
            );
        }
        let threshold_ms = self.number(
            raw.latency_threshold_ms,
            "adaptive.latency_threshold_ms",
            default.latency_threshold.as_secs_f64() * 1000.0,
            "greater than 0",
            |v| v > 0.0 && v < 3.6e6,
        );
        AdaptiveSettings {
            enabled: self.boolean(raw.enabled, "adaptive.enabled", default.enabled),
            evaluation_interval: self.duration(
                raw.evaluation_interval,
                "adaptive.evaluation_interval",
                default.evaluation_interval,
            ),
            latency_threshold: Duration::from_secs_f64(threshold_ms / 1000.0),
            reduction_factor: self.number(
                raw.reduction_factor,
                "adaptive.reduction_factor",
                default.reduction_factor,
                "between 0 and 1 (exclusive)",
                |v| v > 0.0 && v < 1.0,
            ),
            recovery_factor: self.number(
                raw.recovery_factor,
                "adaptive.recovery_factor",
                default.recovery_factor,
                "greater than 1",
                |v| v > 1.0,
            ),
            min_rate,
            max_rate,
        }
    }
}
