//! The [`Observer`]: samples the counters once a second (for rates, the requests/s history and
//! windowed percentiles) and builds [`Snapshot`]s on demand. (Just over 400 lines: one snapshot
//! builder per `/status` block, kept beside the sampler whose state they read.)

use super::pools::{pool_snapshots, Window};
use super::snapshot::*;
use super::BoundAddresses;
use crate::balance::{AdminState, Pools};
use crate::capacity::Capacity;
use crate::config::{Config, ConfigHandle};
use crate::events::EventLog;
use crate::lifecycle::Lifecycle;
use crate::limit::adaptive::AdaptiveStatus;
use crate::limit::RateLimiter;
use crate::metrics::histogram::{difference, quantile_ms};
use crate::metrics::Metrics;
use crate::reply::{LocalReply, Refusal};
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

/// Longest latency window: the samples of the last minute.
const WINDOW: usize = 60;

/// Facts fixed at startup (the rest is read from the current configuration).
#[derive(Debug, Clone)]
pub struct StaticInfo {
    pub version: String,
}

/// One second's reading of the cumulative counters.
struct Sample {
    at: Instant,
    requests: u64,
    limited: u64,
    /// By backend serial: a backend added or removed by a reload is simply present or absent.
    backends: HashMap<u64, BackendSample>,
}

/// One backend's cumulative counters.
#[derive(Clone, Default)]
struct BackendSample {
    requests: u64,
    failures: u64,
    latency: Vec<u64>,
}

#[derive(Default)]
struct Samples {
    ring: VecDeque<Sample>,
    /// Upstream latency quantiles of each second between two samples, oldest first.
    latency: VecDeque<LatencyPoint>,
    limited_clients: u64,
}

/// The quantiles of every backend's latency recorded between `before` and `after`.
fn latency_between(before: &Sample, after: &Sample) -> LatencyPoint {
    let mut merged = vec![0u64; crate::metrics::histogram::BUCKETS];
    for (serial, now) in &after.backends {
        let Some(then) = before.backends.get(serial) else {
            continue;
        };
        for (slot, (a, b)) in merged.iter_mut().zip(now.latency.iter().zip(&then.latency)) {
            *slot += a.saturating_sub(*b);
        }
    }
    LatencyPoint {
        p50_ms: quantile_ms(&merged, 0.50),
        p95_ms: quantile_ms(&merged, 0.95),
        p99_ms: quantile_ms(&merged, 0.99),
    }
}

/// Everything the snapshot reads from, built once in `server.rs`.
pub struct Sources {
    pub info: StaticInfo,
    /// The current configuration (adaptive bounds, certificates).
    pub config: Arc<ConfigHandle>,
    pub metrics: Arc<Metrics>,
    pub pool: Arc<Pools>,
    pub limiter: Arc<RateLimiter>,
    pub adaptive: Arc<Mutex<AdaptiveStatus>>,
    pub events: Arc<EventLog>,
    pub lifecycle: Arc<Lifecycle>,
    pub capacity: Arc<Capacity>,
    /// Set in cluster mode.
    pub cluster: Option<Arc<dyn ClusterSource>>,
    /// Set when a listener has `tls.acme`.
    pub acme: Option<Arc<dyn AcmeSource>>,
    /// The reload state (`config` in `/status`); set once the reloader exists.
    pub reload: std::sync::OnceLock<Arc<dyn ConfigSource>>,
    /// Where the listeners are bound.
    pub bound: Arc<BoundAddresses>,
}

/// Samples the [`Sources`] once a second and builds snapshots of them on demand.
pub struct Observer {
    sources: Sources,
    started: Instant,
    samples: Mutex<Samples>,
}

impl Observer {
    pub fn new(sources: Sources) -> Self {
        let observer = Observer {
            sources,
            started: Instant::now(),
            samples: Mutex::new(Samples::default()),
        };
        observer.tick();
        observer
    }

    /// Shows `source` as the snapshot's `config` block (the reloader, built after the observer).
    pub fn attach_config(&self, source: Arc<dyn ConfigSource>) {
        let _ = self.sources.reload.set(source);
    }

    /// True once a graceful shutdown has begun (`/healthz` then answers 503).
    pub fn is_draining(&self) -> bool {
        self.sources.lifecycle.is_draining()
    }

    fn read(&self) -> Sample {
        let m = &self.sources.metrics;
        let relaxed = std::sync::atomic::Ordering::Relaxed;
        Sample {
            at: Instant::now(),
            requests: m.requests.load(relaxed),
            limited: m.local_replies_of(Refusal::RateLimited { retry_after: 0 }.into()),
            backends: self
                .sources
                .pool
                .backends()
                .iter()
                .map(|b| {
                    let sample = BackendSample {
                        requests: b.metrics.requests.load(relaxed),
                        failures: b.metrics.failures.load(relaxed),
                        latency: b.metrics.latency.counts(),
                    };
                    (b.serial, sample)
                })
                .collect(),
        }
    }

    /// Takes the once-a-second sample.
    pub fn tick(&self) {
        let sample = self.read();
        let limited_clients = self.sources.metrics.take_limited_clients();
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        if samples.ring.len() > WINDOW {
            samples.ring.pop_front();
        }
        if let Some(last) = samples.ring.back() {
            let point = latency_between(last, &sample);
            if samples.latency.len() >= WINDOW {
                samples.latency.pop_front();
            }
            samples.latency.push_back(point);
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

        let config = self.sources.config.current();
        let Sources {
            info,
            config: _,
            metrics,
            pool,
            limiter,
            adaptive,
            events,
            lifecycle,
            capacity,
            cluster,
            acme,
            reload,
            bound,
        } = &self.sources;
        let empty = BackendSample::default();
        let (backends, windows): (Vec<BackendSnapshot>, Vec<Window>) = pool
            .all()
            .iter()
            .flat_map(|p| p.backends().into_iter().map(move |b| (p, b)))
            .map(|(p, b)| {
                let serial = b.serial;
                let current = now.backends.get(&serial).unwrap_or(&empty);
                // The window starts at the oldest sample that knew the backend.
                let first = ring.iter().find_map(|s| s.backends.get(&serial));
                let window = first.map_or_else(
                    || current.latency.clone(),
                    |o| difference(&current.latency, &o.latency),
                );
                let requests = first.map_or(current.requests, |o| {
                    current.requests.saturating_sub(o.requests)
                });
                let failures = first.map_or(current.failures, |o| {
                    current.failures.saturating_sub(o.failures)
                });
                let backend_per_sec = |f: fn(&BackendSample) -> u64| match (prev, last) {
                    (Some(a), Some(b)) if b.at > a.at => {
                        match (a.backends.get(&serial), b.backends.get(&serial)) {
                            (Some(x), Some(y)) => {
                                f(y).saturating_sub(f(x)) as f64
                                    / b.at.duration_since(a.at).as_secs_f64()
                            }
                            _ => 0.0,
                        }
                    }
                    _ => 0.0,
                };
                let snapshot = BackendSnapshot {
                    pool: p.name.clone(),
                    id: b.id(),
                    url: b.spec.url.clone(),
                    admin_state: if b.is_drained() {
                        AdminState::Drained
                    } else {
                        AdminState::Enabled
                    }
                    .as_str()
                    .to_string(),
                    weight: b.spec.weight,
                    effective_weight: b.effective_weight(),
                    warmup_percent: b.warmup_percent(),
                    healthy: b.is_healthy(),
                    breaker: b.breaker_state().as_str().to_string(),
                    requests: current.requests,
                    failures: current.failures,
                    requests_per_sec: backend_per_sec(|s| s.requests),
                    error_rate: if requests == 0 {
                        0.0
                    } else {
                        failures as f64 / requests as f64
                    },
                    p50_ms: quantile_ms(&window, 0.50),
                    p95_ms: quantile_ms(&window, 0.95),
                    p99_ms: quantile_ms(&window, 0.99),
                    in_flight: b.metrics.in_flight(),
                    response_duration: b.metrics.response_duration.read(),
                };
                let window = Window {
                    latency: window,
                    requests,
                    failures,
                };
                (snapshot, window)
            })
            .unzip();

        let adaptive = adaptive.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut pools = pool_snapshots(
            pool.all().iter().map(|p| p.name.as_str()),
            &backends,
            &windows,
        );
        for (snapshot, p) in pools.iter_mut().zip(pool.all().iter()) {
            snapshot.adaptive = adaptive.pools.get(&p.name).and_then(|l| {
                let last = l.last.as_ref()?;
                Some(PoolAdaptiveSnapshot {
                    rate: l.rate,
                    scale: p.adaptive_scale(),
                    last_decision: last.decision.as_str().to_string(),
                    last_reason: last.reason.clone(),
                    p95_ms: l.p95_ms,
                })
            });
        }
        let upstream_in_use = backends.iter().map(|b| b.in_flight).sum();
        let classes = metrics.status_classes();
        let local_replies = metrics.local_replies();
        let (http1, h2) = metrics.protocols();
        let (tunnels, tunnels_opened) = metrics.tunnels();
        Snapshot {
            version: info.version.clone(),
            listen: bound.label(),
            bound: bound.snapshot(),
            uptime_secs: self.started.elapsed().as_secs_f64(),
            draining: lifecycle.is_draining(),
            totals: Totals {
                requests: now.requests,
                requests_per_sec: per_sec(&|s: &Sample| s.requests),
                in_flight: lifecycle.in_flight() as u64,
                responses: by_class(&classes),
                refusals: by_reason(&local_replies, true),
                protocols: BTreeMap::from([("http/1.1".into(), http1), ("h2".into(), h2)]),
                websocket_tunnels: tunnels,
                websocket_tunnels_opened: tunnels_opened,
                request_duration: metrics.request_duration.read(),
                routes: metrics
                    .routes
                    .read()
                    .into_iter()
                    .map(|r| RouteTotals {
                        route: r.route,
                        requests: r.requests,
                        responses: by_class(&r.classes),
                        refusals: by_reason(&r.local_replies, false),
                    })
                    .collect(),
            },
            backends,
            pools,
            rate_limit: RateLimitSnapshot {
                current_rate: limiter.rate(),
                burst: limiter.burst(),
                min_rate: config.adaptive.min_rate,
                max_rate: config.adaptive.max_rate,
                adaptive_enabled: config.adaptive.enabled,
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
                threshold_ms: config.adaptive.latency_threshold.as_secs_f64() * 1000.0,
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
            latency_history: samples.latency.iter().cloned().collect(),
            capacity: CapacitySnapshot {
                open_files_limit: capacity.limit.soft,
                open_files: crate::capacity::open_files(),
                max_connections: capacity.max_connections as u64,
                client_connections: capacity.client_connections() as u64,
                upstream_in_use,
                upstream_pool_max: capacity.upstream_pool as u64,
                local_resource_errors: capacity
                    .local_errors()
                    .map(|(kind, n)| (kind.to_string(), n))
                    .collect(),
            },
            cluster: cluster.as_ref().map(|c| c.cluster_snapshot()),
            acme: acme.as_ref().map_or_else(Vec::new, |a| a.acme_snapshot()),
            events: events
                .recent()
                .into_iter()
                .map(|e| EventSnapshot {
                    at_unix: e.at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
                    level: e.event.level().as_str().to_ascii_lowercase(),
                    message: e.event.to_string(),
                })
                .collect(),
            tls: self.tls(&config),
            config: reload
                .get()
                .map(|r| r.config_snapshot())
                .unwrap_or_default(),
        }
    }

    fn tls(&self, config: &Config) -> TlsSnapshot {
        let (handshake_failures, requests) = self.sources.metrics.tls();
        TlsSnapshot {
            handshake_failures,
            requests: [("TLSv1.2", requests[0]), ("TLSv1.3", requests[1])]
                .into_iter()
                .map(|(version, n)| (version.to_string(), n))
                .collect(),
            certificates: certificates(config),
        }
    }
}

/// The TLS listeners' certificates, each once, for the expiry gauge.
fn certificates(config: &Config) -> Vec<CertificateSnapshot> {
    let mut out: Vec<CertificateSnapshot> = Vec::new();
    let loaded = config
        .listeners
        .iter()
        .filter_map(|l| l.tls.as_ref())
        .flat_map(|tls| tls.certificates.iter())
        .filter_map(|spec| spec.loaded.as_ref());
    for certificate in loaded {
        let name = certificate.primary_name().to_string();
        if !out.iter().any(|c| c.name == name) {
            out.push(CertificateSnapshot {
                name,
                expires_unix: certificate.not_after,
            });
        }
    }
    out
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
/// Counts by status class, `1xx` … `5xx`.
fn by_class(classes: &[u64; 5]) -> BTreeMap<String, u64> {
    (0..5)
        .map(|i| (format!("{}xx", i + 1), classes[i]))
        .collect()
}

/// Aegis's own answers by reason; with `zeros`, the reasons that did not occur too.
fn by_reason(counts: &[u64; LocalReply::KINDS], zeros: bool) -> BTreeMap<String, u64> {
    LocalReply::ALL
        .iter()
        .map(|r| (r.reason().to_string(), counts[r.index()]))
        .filter(|(_, n)| zeros || *n > 0)
        .collect()
}
