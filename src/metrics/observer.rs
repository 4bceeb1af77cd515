//! The [`Observer`]: samples the counters once a second (for rates, the requests/s history and
//! windowed percentiles) and builds [`Snapshot`]s on demand.

use super::histogram::{difference, quantile_ms};
use super::snapshot::*;
use super::Metrics;
use crate::balance::UpstreamPool;
use crate::events::EventLog;
use crate::lifecycle::Lifecycle;
use crate::limit::adaptive::AdaptiveStatus;
use crate::limit::RateLimiter;
use crate::proxy::Refusal;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

/// Longest latency window: the samples of the last minute.
const WINDOW: usize = 60;

/// Facts fixed at startup.
#[derive(Debug, Clone)]
pub struct StaticInfo {
    pub version: String,
    pub listen: String,
    pub threshold_ms: f64,
    pub min_rate: f64,
    pub max_rate: f64,
    pub adaptive_enabled: bool,
}

/// One second's reading of the cumulative counters.
struct Sample {
    at: Instant,
    requests: u64,
    limited: u64,
    backend_requests: Vec<u64>,
    backend_failures: Vec<u64>,
    latency: Vec<Vec<u64>>,
}

#[derive(Default)]
struct Samples {
    ring: VecDeque<Sample>,
    limited_clients: u64,
}

/// Everything the snapshot reads from.
pub struct Observer {
    pub info: StaticInfo,
    pub started: Instant,
    pub metrics: Arc<Metrics>,
    pub pool: Arc<UpstreamPool>,
    pub limiter: Arc<RateLimiter>,
    pub adaptive: Arc<Mutex<AdaptiveStatus>>,
    pub events: Arc<EventLog>,
    pub lifecycle: Arc<Lifecycle>,
    samples: Mutex<Samples>,
}

impl Observer {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        info: StaticInfo,
        metrics: Arc<Metrics>,
        pool: Arc<UpstreamPool>,
        limiter: Arc<RateLimiter>,
        adaptive: Arc<Mutex<AdaptiveStatus>>,
        events: Arc<EventLog>,
        lifecycle: Arc<Lifecycle>,
    ) -> Self {
        let observer = Observer {
            info,
            started: Instant::now(),
            metrics,
            pool,
            limiter,
            adaptive,
            events,
            lifecycle,
            samples: Mutex::new(Samples::default()),
        };
        observer.tick();
        observer
    }

    fn read(&self) -> Sample {
        let n = self.pool.backends().len();
        let m = &self.metrics;
        Sample {
            at: Instant::now(),
            requests: m.requests.load(std::sync::atomic::Ordering::Relaxed),
            limited: m.refusals()[Refusal::RateLimited { retry_after: 0 }.index()],
            backend_requests: (0..n)
                .map(|i| {
                    m.backend(i)
                        .requests
                        .load(std::sync::atomic::Ordering::Relaxed)
                })
                .collect(),
            backend_failures: (0..n)
                .map(|i| {
                    m.backend(i)
                        .failures
                        .load(std::sync::atomic::Ordering::Relaxed)
                })
                .collect(),
            latency: (0..n).map(|i| m.backend(i).latency.counts()).collect(),
        }
    }

    /// Takes the once-a-second sample.
    pub fn tick(&self) {
        let sample = self.read();
        let limited_clients = self.metrics.take_limited_clients();
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        if samples.ring.len() > WINDOW {
            samples.ring.pop_front();
        }
        samples.ring.push_back(sample);
        samples.limited_clients = limited_clients;
    }

    /// The current state of everything, as plain data.
    pub fn snapshot(&self) -> Snapshot {
        let now = self.read();
        let samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let ring = &samples.ring;
        let last = ring.back();
        let prev = ring.len().checked_sub(2).and_then(|i| ring.get(i));
        let oldest = ring.front();
        let per_sec = |f: &dyn Fn(&Sample) -> u64| match (prev, last) {
            (Some(a), Some(b)) if b.at > a.at => {
                f(b).saturating_sub(f(a)) as f64 / b.at.duration_since(a.at).as_secs_f64()
            }
            _ => 0.0,
        };
        let history: Vec<u64> = ring
            .iter()
            .zip(ring.iter().skip(1))
            .map(|(a, b)| b.requests.saturating_sub(a.requests))
            .collect();

        let backends = self
            .pool
            .backends()
            .iter()
            .map(|b| {
                let i = b.index;
                let window = oldest.map_or_else(
                    || now.latency[i].clone(),
                    |o| difference(&now.latency[i], &o.latency[i]),
                );
                let requests = oldest.map_or(now.backend_requests[i], |o| {
                    now.backend_requests[i].saturating_sub(o.backend_requests[i])
                });
                let failures = oldest.map_or(now.backend_failures[i], |o| {
                    now.backend_failures[i].saturating_sub(o.backend_failures[i])
                });
                BackendSnapshot {
                    url: b.spec.url.clone(),
                    weight: b.spec.weight,
                    effective_weight: b.effective_weight(),
                    warmup_percent: b.warmup_percent(),
                    healthy: b.is_healthy(),
                    breaker: b.breaker_state().as_str().to_string(),
                    requests: now.backend_requests[i],
                    failures: now.backend_failures[i],
                    requests_per_sec: per_sec(&|s: &Sample| s.backend_requests[i]),
                    error_rate: if requests == 0 {
                        0.0
                    } else {
                        failures as f64 / requests as f64
                    },
                    p50_ms: quantile_ms(&window, 0.50),
                    p95_ms: quantile_ms(&window, 0.95),
                    p99_ms: quantile_ms(&window, 0.99),
                    in_flight: self.metrics.backend(i).in_flight(),
                }
            })
            .collect();

        let classes = self.metrics.status_classes();
        let refusals = self.metrics.refusals();
        let adaptive = self
            .adaptive
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Snapshot {
            version: self.info.version.clone(),
            listen: self.info.listen.clone(),
            uptime_secs: self.started.elapsed().as_secs_f64(),
            draining: self.lifecycle.is_draining(),
            totals: Totals {
                requests: now.requests,
                requests_per_sec: per_sec(&|s: &Sample| s.requests),
                in_flight: self.lifecycle.in_flight() as u64,
                responses: (0..5)
                    .map(|i| (format!("{}xx", i + 1), classes[i]))
                    .collect(),
                refusals: Refusal::ALL
                    .iter()
                    .map(|r| (r.reason().to_string(), refusals[r.index()]))
                    .collect::<BTreeMap<_, _>>(),
            },
            backends,
            rate_limit: RateLimitSnapshot {
                current_rate: self.limiter.rate(),
                burst: self.limiter.burst(),
                min_rate: self.info.min_rate,
                max_rate: self.info.max_rate,
                adaptive_enabled: self.info.adaptive_enabled,
                last_decision: adaptive
                    .last
                    .as_ref()
                    .map_or("none", |e| e.decision.as_str())
                    .to_string(),
                last_reason: adaptive
                    .last
                    .as_ref()
                    .map(|e| e.reason.clone())
                    .unwrap_or_default(),
                p95_ms: adaptive.p95_ms,
                threshold_ms: self.info.threshold_ms,
                limited_per_sec: per_sec(&|s: &Sample| s.limited),
                limited_clients: samples.limited_clients,
                recent_decisions: adaptive
                    .history
                    .iter()
                    .map(|(e, p95)| DecisionSnapshot {
                        decision: e.decision.as_str().to_string(),
                        rate: e.rate,
                        p95_ms: *p95,
                    })
                    .collect(),
            },
            requests_per_sec_history: history,
            events: self
                .events
                .recent()
                .into_iter()
                .map(|e| EventSnapshot {
                    at_unix: e.at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
                    level: e.level.as_str().to_ascii_lowercase(),
                    message: e.message,
                })
                .collect(),
        }
    }
}

/// Ticks the observer once a second until shutdown.
pub struct SamplerService(pub Arc<Observer>);

#[async_trait]
impl BackgroundService for SamplerService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => self.0.tick(),
                _ = shutdown.changed() => return,
            }
        }
    }
}
