//! The adaptive loop per pool (§17: "a slow API does not throttle the website"), as pure state.
//!
//! With `routes` (and without `cluster`), each pool's backends' P95 is evaluated apart by
//! [`decide`], on a rate of its own ([`PoolLoop::rate`], in the top-level `rate_limit`'s terms),
//! and the pool publishes its *scale*: that rate over the configured one (`requests_per_second`
//! clamped into the adaptive bounds, the limiter's starting rate). A routed request's rate is
//! its route's configured rate (its own `rate_limit`, or the top-level one) times its pool's
//! scale ([`effective_rate`]), so a slow `api` tightens only the routes to `api`.

use super::policy::{decide, Decision, Evaluation};
use crate::config::{AdaptiveSettings, RateLimitSettings};

/// The rate the top-level limit starts from, and the one a pool's scale is relative to:
/// `requests_per_second` clamped into the adaptive bounds (§5.2).
pub fn base_rate(limits: &RateLimitSettings, adaptive: &AdaptiveSettings) -> f64 {
    limits
        .requests_per_second
        .clamp(adaptive.min_rate, adaptive.max_rate)
}

/// A route's rate under its pool's `scale`: `configured × scale`, clamped into the adaptive
/// bounds scaled the same way (`[min_rate, max_rate] × configured / base`). The clamp only
/// matters for the moment between a reload that moved the bounds and the next evaluation.
pub fn effective_rate(configured: f64, scale: f64, base: f64, adaptive: &AdaptiveSettings) -> f64 {
    let ratio = configured / base;
    (configured * scale).clamp(adaptive.min_rate * ratio, adaptive.max_rate * ratio)
}

/// One pool's loop: its decided rate and what it last saw. Kept by pool name (in
/// `AdaptiveStatus::pools`), so it follows a pool across reloads.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolLoop {
    /// The pool's decided rate, in the top-level `rate_limit`'s terms.
    pub rate: f64,
    /// The `requests_per_second` the rate was decided under: when a reload changes it, the
    /// rate restarts from the new one (as the limiter's does).
    pub requests_per_second: f64,
    /// The previous evaluation reduced (hysteresis: never two reductions in a row).
    pub last_reduced: bool,
    pub last: Option<Evaluation>,
    pub p95_ms: Option<f64>,
}

impl PoolLoop {
    /// A pool's loop before its first evaluation: at the configured rate.
    pub fn new(limits: &RateLimitSettings, adaptive: &AdaptiveSettings) -> Self {
        PoolLoop {
            rate: base_rate(limits, adaptive),
            requests_per_second: limits.requests_per_second,
            last_reduced: false,
            last: None,
            p95_ms: None,
        }
    }

    /// The pool's scale: its rate over the configured one.
    pub fn scale(&self, limits: &RateLimitSettings, adaptive: &AdaptiveSettings) -> f64 {
        self.rate / base_rate(limits, adaptive)
    }

    /// One evaluation on the P95 of the pool's backends over the interval (`None`: no
    /// samples), under the settings in force; returns the decision with the rate before it.
    pub fn evaluate(
        &mut self,
        p95_ms: Option<f64>,
        limits: &RateLimitSettings,
        adaptive: &AdaptiveSettings,
    ) -> (Evaluation, f64) {
        if limits.requests_per_second != self.requests_per_second {
            *self = PoolLoop::new(limits, adaptive);
        }
        let before = self.rate.clamp(adaptive.min_rate, adaptive.max_rate);
        let evaluation = decide(p95_ms, before, self.last_reduced, adaptive);
        self.rate = evaluation.rate;
        self.last_reduced = evaluation.decision == Decision::Reduce;
        self.last = Some(evaluation.clone());
        self.p95_ms = p95_ms;
        (evaluation, before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> (RateLimitSettings, AdaptiveSettings) {
        let limits = RateLimitSettings {
            requests_per_second: 100.0,
            ..RateLimitSettings::default()
        };
        let adaptive = AdaptiveSettings {
            reduction_factor: 0.5,
            min_rate: 10.0,
            max_rate: 200.0,
            ..AdaptiveSettings::default()
        };
        (limits, adaptive)
    }

    #[test]
    fn a_slow_pool_scales_its_routes_down_and_a_fast_one_does_not() {
        let (limits, adaptive) = settings();
        let (mut slow, mut fast) = (
            PoolLoop::new(&limits, &adaptive),
            PoolLoop::new(&limits, &adaptive),
        );
        let mut decisions = Vec::new();
        for _ in 0..4 {
            decisions.push(slow.evaluate(Some(900.0), &limits, &adaptive).0.decision);
            fast.evaluate(Some(400.0), &limits, &adaptive);
        }
        assert_eq!(
            decisions,
            [
                Decision::Reduce,
                Decision::Hold,
                Decision::Reduce,
                Decision::Hold
            ]
        );
        assert_eq!(slow.rate, 25.0);
        assert_eq!(slow.scale(&limits, &adaptive), 0.25);
        assert_eq!(fast.scale(&limits, &adaptive), 1.0, "within the band");
        // A route with its own 40 req/s follows its pool: 10 req/s on the slow pool.
        let base = base_rate(&limits, &adaptive);
        assert_eq!(effective_rate(40.0, 0.25, base, &adaptive), 10.0);
        assert_eq!(effective_rate(40.0, 1.0, base, &adaptive), 40.0);
        // The top-level rate on the slow pool.
        assert_eq!(effective_rate(100.0, 0.25, base, &adaptive), 25.0);
        // Recovery, then no samples: hold.
        let (e, before) = slow.evaluate(Some(10.0), &limits, &adaptive);
        assert_eq!((e.decision, before), (Decision::Recover, 25.0));
        assert!((e.rate - 27.5).abs() < 1e-9, "{}", e.rate);
        let (e, _) = slow.evaluate(None, &limits, &adaptive);
        assert_eq!((e.decision, e.rate), (Decision::Hold, slow.rate));
    }

    #[test]
    fn the_scaled_rate_stays_within_the_scaled_bounds() {
        let (limits, adaptive) = settings();
        let base = base_rate(&limits, &adaptive);
        // A scale left over from wider bounds: clamped into [10, 200] × 40 / 100.
        assert_eq!(effective_rate(40.0, 0.01, base, &adaptive), 4.0);
        assert_eq!(effective_rate(40.0, 9.0, base, &adaptive), 80.0);
        assert_eq!(effective_rate(100.0, 0.01, base, &adaptive), 10.0);
    }

    #[test]
    fn a_reload_restarts_the_rate_only_when_requests_per_second_changed() {
        let (limits, adaptive) = settings();
        let mut pool = PoolLoop::new(&limits, &adaptive);
        pool.evaluate(Some(900.0), &limits, &adaptive);
        assert_eq!(pool.rate, 50.0);
        // Narrower bounds: the rate is clamped into them before the decision.
        let narrow = AdaptiveSettings {
            min_rate: 60.0,
            ..adaptive.clone()
        };
        let (e, before) = pool.evaluate(Some(400.0), &limits, &narrow);
        assert_eq!((before, e.rate), (60.0, 60.0));
        // A new requests_per_second: back to it, the hysteresis forgotten.
        let faster = RateLimitSettings {
            requests_per_second: 150.0,
            ..limits.clone()
        };
        let (e, before) = pool.evaluate(Some(900.0), &faster, &adaptive);
        assert_eq!(
            (before, e.decision, e.rate),
            (150.0, Decision::Reduce, 75.0)
        );
        assert_eq!(pool.scale(&faster, &adaptive), 0.5);
    }
}
