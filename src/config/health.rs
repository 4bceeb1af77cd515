//! The `health_check` section (§4.2): how backends are probed.

use super::checker::Checker;
use super::raw::RawHealthCheck;
use std::time::Duration;

/// `health_check`: the active probes of every backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckSettings {
    /// `health_check.interval`, default 10s: time between two probes of one backend; also the
    /// `Retry-After` of a 503 when no breaker is open.
    pub interval: Duration,
    /// `health_check.timeout`, default 3s: a probe (connect and answer) taking longer failed.
    pub timeout: Duration,
    /// `health_check.path`, default `/health`: probed with `GET`; any 2xx is healthy.
    pub path: String,
    /// `health_check.unhealthy_threshold`, default 3, 1–1000: consecutive failed probes that
    /// mark a backend unhealthy (it gets no traffic).
    pub unhealthy_threshold: u32,
    /// `health_check.healthy_threshold`, default 2, 1–1000: consecutive good probes that mark it
    /// healthy again (it then warms up from 25 %, §4.3).
    pub healthy_threshold: u32,
}

impl Default for HealthCheckSettings {
    fn default() -> Self {
        HealthCheckSettings {
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(3),
            path: "/health".into(),
            unhealthy_threshold: 3,
            healthy_threshold: 2,
        }
    }
}

impl Checker {
    pub(super) fn health_check(&mut self, raw: RawHealthCheck) -> HealthCheckSettings {
        self.health_check_at(raw, "health_check", &HealthCheckSettings::default())
    }

    /// The section at `section` (`health_check`, or a pool's `pools.api.health_check`), each
    /// absent field taken from `default`.
    pub(super) fn health_check_at(
        &mut self,
        raw: RawHealthCheck,
        section: &str,
        default: &HealthCheckSettings,
    ) -> HealthCheckSettings {
        self.unknown(section, &raw.unknown);
        let default = default.clone();
        let key = |name: &str| format!("{section}.{name}");
        let path = match self.typed(raw.path, &key("path"), "a path such as /health") {
            None => default.path,
            Some(p) if !p.starts_with('/') || p.chars().any(|c| c.is_control() || c == ' ') => {
                self.error(
                    &key("path"),
                    format!("expected a path starting with /, got {p:?}"),
                );
                default.path
            }
            Some(p) => p,
        };
        HealthCheckSettings {
            interval: self.duration(raw.interval, &key("interval"), default.interval),
            timeout: self.duration(raw.timeout, &key("timeout"), default.timeout),
            path,
            unhealthy_threshold: self.int(
                raw.unhealthy_threshold,
                &key("unhealthy_threshold"),
                default.unhealthy_threshold.into(),
                1,
                1000,
            ) as u32,
            healthy_threshold: self.int(
                raw.healthy_threshold,
                &key("healthy_threshold"),
                default.healthy_threshold.into(),
                1,
                1000,
            ) as u32,
        }
    }
}
