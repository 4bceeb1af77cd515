//! Recent state changes (breaker opened, backend unhealthy, warm-up step, rate changes): each one
//! an [`Event`] value, logged as it happens and kept in a small ring for the dashboard and
//! `/status`. [`Event`]'s `Display` is the one place their wording lives.
//!
//! A leaf module: the pool and the adaptive loop record events, so events name backends by URL
//! and rates by number instead of depending on their types.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Mutex;
use std::time::SystemTime;

/// Events kept; older ones fall off.
const CAPACITY: usize = 64;

/// A change an operator should know about.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The health checks found the backend down.
    BackendUnhealthy {
        backend: String,
    },
    /// The health checks found the backend up again; it restarts warm-up at 25 %.
    BackendHealthy {
        backend: String,
    },
    /// Warm-up moved the backend one step up.
    WarmUpStep {
        backend: String,
        percent: u8,
    },
    BreakerOpened {
        backend: String,
    },
    /// An operator drained the backend (§12.2): no new requests.
    BackendDrained {
        backend: String,
    },
    /// An operator enabled a drained backend again.
    BackendEnabled {
        backend: String,
    },
    BreakerHalfOpen {
        backend: String,
    },
    /// The breaker closed after successful probes; the backend restarts warm-up at 25 %.
    BreakerClosed {
        backend: String,
    },
    /// The adaptive loop changed the per-client rate (§5.2); with `routes`, one pool's rate
    /// (§17: `from` and `to` in the top-level `rate_limit`'s terms; its routes follow).
    RateChanged {
        pool: Option<String>,
        from: f64,
        to: f64,
        reason: String,
    },
    /// Cluster mode: Redis stopped answering; limits are local until it is back (§13).
    ClusterRedisDown {
        /// The URL with its password masked.
        url: String,
        error: String,
    },
    /// Cluster mode: Redis answers again; limits are shared again.
    ClusterRedisUp {
        url: String,
    },
    /// Cluster mode: this instance took the lease and decides the adaptive rate.
    ClusterLeaseTaken {
        instance: String,
    },
    /// A reload applied a new configuration (§12.1); `changes` says what it did to backends.
    ConfigReloaded {
        generation: u64,
        trigger: String,
        changes: String,
    },
    /// A reload was refused; the configuration in force serves on.
    ConfigReloadRefused {
        trigger: String,
        problems: Vec<String>,
    },
    /// ACME (§18): a new account was registered with the directory (stored for later starts).
    AcmeAccountCreated {
        directory: String,
    },
    /// ACME: a certificate was obtained (`renewal`: one was already served) and swapped in.
    AcmeCertificateIssued {
        /// The certificate's first name.
        name: String,
        renewal: bool,
        /// RFC 3339 end of validity.
        expires: String,
    },
    /// ACME: an order failed; the certificate served (if any) serves on.
    AcmeOrderFailed {
        name: String,
        error: String,
        retry_in_seconds: u64,
    },
}

impl Event {
    /// How loudly it is logged: losing capacity is worth a warning, regaining it is routine.
    pub fn level(&self) -> log::Level {
        match self {
            Event::BackendUnhealthy { .. }
            | Event::BreakerOpened { .. }
            | Event::ClusterRedisDown { .. }
            | Event::AcmeOrderFailed { .. } => log::Level::Warn,
            Event::ConfigReloadRefused { .. } => log::Level::Error,
            Event::RateChanged { from, to, .. } if to < from => log::Level::Warn,
            _ => log::Level::Info,
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::BackendUnhealthy { backend } => write!(f, "backend {backend} is unhealthy"),
            Event::BackendHealthy { backend } => {
                write!(f, "backend {backend} is healthy again; warming up at 25%")
            }
            Event::WarmUpStep { backend, percent } => {
                write!(f, "backend {backend} warm-up at {percent}%")
            }
            Event::BreakerOpened { backend } => write!(f, "circuit breaker for {backend} opened"),
            Event::BackendDrained { backend } => {
                write!(f, "backend {backend} drained by an operator")
            }
            Event::BackendEnabled { backend } => {
                write!(f, "backend {backend} enabled by an operator")
            }
            Event::BreakerHalfOpen { backend } => {
                write!(f, "circuit breaker for {backend} is half-open; probing")
            }
            Event::BreakerClosed { backend } => {
                write!(f, "circuit breaker for {backend} closed; warming up at 25%")
            }
            Event::RateChanged {
                pool,
                from,
                to,
                reason,
            } => {
                let decision = if to < from { "reduce" } else { "recover" };
                let pool = pool
                    .as_ref()
                    .map_or_else(String::new, |p| format!("pool {p}: "));
                write!(
                    f,
                    "adaptive: {pool}{decision} rate {from:.1} -> {to:.1} req/s ({reason})"
                )
            }
            Event::ClusterRedisDown { url, error } => write!(
                f,
                "cluster: Redis at {url} unreachable ({error}); limits are local until it is back"
            ),
            Event::ClusterRedisUp { url } => {
                write!(
                    f,
                    "cluster: Redis at {url} reachable; limits are shared again"
                )
            }
            Event::ClusterLeaseTaken { instance } => {
                write!(
                    f,
                    "cluster: {instance} took the lease and decides the adaptive rate"
                )
            }
            Event::ConfigReloaded {
                generation,
                trigger,
                changes,
            } => write!(
                f,
                "configuration reloaded ({trigger}): generation {generation}; {changes}"
            ),
            Event::ConfigReloadRefused { trigger, problems } => write!(
                f,
                "configuration reload ({trigger}) refused, the running configuration is \
                 unchanged: {}",
                problems.join("; ")
            ),
            Event::AcmeAccountCreated { directory } => {
                write!(f, "acme: new account registered with {directory}")
            }
            Event::AcmeCertificateIssued {
                name,
                renewal,
                expires,
            } => write!(
                f,
                "acme: certificate for {name} {}, valid until {expires}",
                if *renewal { "renewed" } else { "obtained" }
            ),
            Event::AcmeOrderFailed {
                name,
                error,
                retry_in_seconds,
            } => write!(
                f,
                "acme: order for {name} failed ({error}); retrying in {retry_in_seconds}s"
            ),
        }
    }
}

/// An event and when it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub at: SystemTime,
    pub event: Event,
}

/// A bounded ring of recent events. Written rarely (state changes only), read once per refresh.
#[derive(Debug, Default)]
pub struct EventLog {
    ring: Mutex<VecDeque<Recorded>>,
}

impl EventLog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Logs `event` at its level and keeps it.
    pub fn record(&self, event: Event) {
        log::log!(target: "aegis::events", event.level(), "{event}");
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        if ring.len() == CAPACITY {
            ring.pop_front();
        }
        ring.push_back(Recorded {
            at: SystemTime::now(),
            event,
        });
    }

    /// The kept events, oldest first.
    pub fn recent(&self) -> Vec<Recorded> {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        ring.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(percent: u8) -> Event {
        Event::WarmUpStep {
            backend: "http://a.example".into(),
            percent,
        }
    }

    #[test]
    fn keeps_the_latest_events_only() {
        let log = EventLog::new();
        for i in 0..(CAPACITY + 5) {
            log.record(step(i as u8));
        }
        let recent = log.recent();
        assert_eq!(recent.len(), CAPACITY);
        assert_eq!(recent[0].event, step(5));
        assert_eq!(recent.last().unwrap().event, step(CAPACITY as u8 + 4));
    }

    #[test]
    fn wording_and_level_of_each_event() {
        use log::Level::{Info, Warn};
        let a = || "http://a".to_string();
        let rate = |from, to| Event::RateChanged {
            pool: (to > from).then(|| "api".to_string()),
            from,
            to,
            reason: "P95 900ms above 500ms".into(),
        };
        let events = [
            Event::BackendUnhealthy { backend: a() },
            Event::BackendHealthy { backend: a() },
            step(50),
            Event::BreakerOpened { backend: a() },
            Event::BreakerHalfOpen { backend: a() },
            Event::BreakerClosed { backend: a() },
            rate(80.0, 40.0),
            rate(40.0, 44.0),
            Event::ConfigReloaded {
                generation: 2,
                trigger: "SIGHUP".into(),
                changes: "backends unchanged".into(),
            },
            Event::ConfigReloadRefused {
                trigger: "POST /reload".into(),
                problems: vec!["a: x".into(), "b: y".into()],
            },
            Event::AcmeCertificateIssued {
                name: "a.test".into(),
                renewal: true,
                expires: "2027-01-01T00:00:00Z".into(),
            },
            Event::AcmeOrderFailed {
                name: "a.test".into(),
                error: "new order: timeout".into(),
                retry_in_seconds: 20,
            },
        ];
        let shown: Vec<(log::Level, String)> =
            events.iter().map(|e| (e.level(), e.to_string())).collect();
        let expected = [
            (Warn, "backend http://a is unhealthy"),
            (Info, "backend http://a is healthy again; warming up at 25%"),
            (Info, "backend http://a.example warm-up at 50%"),
            (Warn, "circuit breaker for http://a opened"),
            (Info, "circuit breaker for http://a is half-open; probing"),
            (
                Info,
                "circuit breaker for http://a closed; warming up at 25%",
            ),
            (
                Warn,
                "adaptive: reduce rate 80.0 -> 40.0 req/s (P95 900ms above 500ms)",
            ),
            (
                Info,
                "adaptive: pool api: recover rate 40.0 -> 44.0 req/s (P95 900ms above 500ms)",
            ),
            (
                Info,
                "configuration reloaded (SIGHUP): generation 2; backends unchanged",
            ),
            (
                log::Level::Error,
                "configuration reload (POST /reload) refused, the running configuration is unchanged: a: x; b: y",
            ),
            (
                Info,
                "acme: certificate for a.test renewed, valid until 2027-01-01T00:00:00Z",
            ),
            (
                Warn,
                "acme: order for a.test failed (new order: timeout); retrying in 20s",
            ),
        ];
        let expected: Vec<(log::Level, String)> = expected
            .into_iter()
            .map(|(level, text)| (level, text.to_string()))
            .collect();
        assert_eq!(shown, expected);
    }
}
