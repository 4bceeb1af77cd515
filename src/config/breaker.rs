//! The `circuit_breaker` section (§4.4): when a failing backend stops getting requests and how
//! it comes back.

use super::checker::Checker;
use super::raw::RawCircuitBreaker;
use std::time::Duration;

/// `circuit_breaker`: one breaker per backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerSettings {
    /// `circuit_breaker.failure_threshold`, default 5: consecutive failures (connect errors,
    /// 5xx, timeouts) that open the breaker; an open backend gets no request.
    pub failure_threshold: u32,
    /// `circuit_breaker.success_threshold`, default 3: successes in half-open that close it.
    pub success_threshold: u32,
    /// `circuit_breaker.open_timeout`, default 30s: how long it stays open before half-open.
    pub open_timeout: Duration,
    /// `circuit_breaker.half_open_max_requests`, default 3: probe requests in flight at once
    /// while half-open.
    pub half_open_max_requests: u32,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            failure_threshold: 5,
            success_threshold: 3,
            open_timeout: Duration::from_secs(30),
            half_open_max_requests: 3,
        }
    }
}

impl Checker {
    pub(super) fn breaker(&mut self, raw: RawCircuitBreaker) -> BreakerSettings {
        self.breaker_at(raw, "circuit_breaker", &BreakerSettings::default())
    }

    /// The section at `section` (`circuit_breaker`, or a pool's), each absent field taken from
    /// `default`.
    pub(super) fn breaker_at(
        &mut self,
        raw: RawCircuitBreaker,
        section: &str,
        default: &BreakerSettings,
    ) -> BreakerSettings {
        self.unknown(section, &raw.unknown);
        let default = default.clone();
        let key = |name: &str| format!("{section}.{name}");
        let mut count = |field, key: &str, default: u32| {
            self.int(field, key, default.into(), 1, 1_000_000) as u32
        };
        BreakerSettings {
            failure_threshold: count(
                raw.failure_threshold,
                &key("failure_threshold"),
                default.failure_threshold,
            ),
            success_threshold: count(
                raw.success_threshold,
                &key("success_threshold"),
                default.success_threshold,
            ),
            half_open_max_requests: count(
                raw.half_open_max_requests,
                &key("half_open_max_requests"),
                default.half_open_max_requests,
            ),
            open_timeout: self.duration(
                raw.open_timeout,
                &key("open_timeout"),
                default.open_timeout,
            ),
        }
    }
}
