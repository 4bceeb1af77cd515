//! Backend selection (§4): the pool of backends with their health, breaker and warm-up state, and
//! smooth weighted round-robin over the usable ones.
//!
//! - `schedule`: the smooth weighted round-robin sequence (pure).
//! - `warmup`: the warm-up steps (pure).
//! - `health`: active health checks on Pingora's `HttpHealthCheck` and `HealthCheckService`.

pub mod health;
pub mod schedule;
pub mod warmup;

use crate::breaker::{BreakerCell, BreakerState, Outcome, Ticket, Transition};
use crate::config::{BackendSpec, Config};
use crate::events::{Event, EventLog};
use arc_swap::ArcSwap;
use pingora::upstreams::peer::HttpPeer;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use warmup::WarmUp;

/// One backend and its live state.
pub struct Backend {
    pub index: usize,
    pub spec: BackendSpec,
    /// The pinned address (§2.1).
    pub addr: SocketAddr,
    healthy: AtomicBool,
    /// Drained by an operator (§12.2): no new request; in-flight ones finish.
    drained: AtomicBool,
    breaker: BreakerCell,
    warmup: Mutex<WarmUp>,
    warm_level: AtomicU8,
    /// The `Host` header value sent upstream, built once.
    pub host_value: http::HeaderValue,
    /// Prebuilt peer, cloned per request.
    peer: HttpPeer,
}

impl Backend {
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    /// True while an operator has drained the backend (§12.2).
    pub fn is_drained(&self) -> bool {
        self.drained.load(Ordering::Acquire)
    }

    /// The identifier of `/status` and `/backends/{id}/…`: the URL with `://` written `-`
    /// (`http-10.0.0.1:8080`), so it is stable across reloads and safe in a path.
    pub fn id(&self) -> String {
        backend_id(&self.spec.url)
    }

    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    /// Warm-up level in percent of the weight (100 when not warming up).
    pub fn warmup_percent(&self) -> u8 {
        self.warm_level.load(Ordering::Acquire) * 25
    }

    /// The weight the schedule currently uses, in the config's units (may be fractional).
    pub fn effective_weight(&self) -> f64 {
        self.spec.weight as f64 * self.warmup_percent() as f64 / 100.0
    }

    /// A fresh peer for one request.
    pub fn peer(&self) -> Box<HttpPeer> {
        Box::new(self.peer.clone())
    }

    fn usable(&self) -> bool {
        self.is_healthy() && !self.is_drained() && self.breaker.state() != BreakerState::Open
    }
}

/// A backend's `id` from its normalised URL (see [`Backend::id`]).
pub fn backend_id(url: &str) -> String {
    url.replacen("://", "-", 1)
}

/// What an operator asked of a backend (§12.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminState {
    /// Takes requests as health, breaker and warm-up allow (the default).
    Enabled,
    /// Takes no new request; the requests it has finish.
    Drained,
}

impl AdminState {
    pub fn as_str(self) -> &'static str {
        match self {
            AdminState::Enabled => "enabled",
            AdminState::Drained => "drained",
        }
    }
}

/// The outcome of choosing a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    Chosen {
        index: usize,
        ticket: Ticket,
    },
    /// Nothing can take the request; retry after this many seconds (at least 1).
    Unavailable {
        retry_after: u64,
    },
}

/// The backends and the schedule over them. Owned by the proxy; shared with the health checks.
pub struct UpstreamPool {
    backends: Vec<Backend>,
    schedule: ArcSwap<Vec<usize>>,
    cursor: AtomicUsize,
    /// Earliest moment an open breaker may half-open, in nanoseconds since `epoch`
    /// (`u64::MAX`: none open). Lets `select` skip looking at breakers in the common case.
    next_half_open: AtomicU64,
    epoch: Instant,
    rebuild: Mutex<()>,
    events: Arc<EventLog>,
    health_interval: Duration,
}

impl UpstreamPool {
    /// Builds the pool from a resolved config: every backend starts healthy at full weight.
    pub fn new(config: &Config, events: Arc<EventLog>) -> Self {
        let backends = config
            .backends
            .iter()
            .enumerate()
            .map(|(index, spec)| {
                let addr = spec
                    .addr
                    .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], spec.port)));
                let sni = if spec.tls {
                    spec.host.clone()
                } else {
                    String::new()
                };
                let mut peer = HttpPeer::new(addr, spec.tls, sni);
                peer.options.connection_timeout = Some(config.upstream.connect_timeout);
                peer.options.total_connection_timeout = Some(config.upstream.connect_timeout);
                peer.options.read_timeout = Some(config.upstream.response_header_timeout);
                peer.options.write_timeout = Some(config.server.write_timeout);
                // No idle timeout on pooled connections: Pingora notices at once when a backend
                // closes one, and a timer per returned connection costs ~2,000 instructions per
                // request (docs/performance.md). The pool's size bounds what is held.
                Backend {
                    index,
                    host_value: http::HeaderValue::from_str(&spec.host_header)
                        .expect("a validated URL's host[:port] is a valid header value"),
                    spec: spec.clone(),
                    addr,
                    healthy: AtomicBool::new(true),
                    drained: AtomicBool::new(false),
                    breaker: BreakerCell::new(&config.circuit_breaker),
                    warmup: Mutex::new(WarmUp::full()),
                    warm_level: AtomicU8::new(warmup::FULL),
                    peer,
                }
            })
            .collect();
        let pool = UpstreamPool {
            backends,
            schedule: ArcSwap::from_pointee(Vec::new()),
            cursor: AtomicUsize::new(0),
            next_half_open: AtomicU64::new(u64::MAX),
            epoch: Instant::now(),
            rebuild: Mutex::new(()),
            events,
            health_interval: config.health_check.interval,
        };
        pool.rebuild();
        pool
    }

    pub fn backends(&self) -> &[Backend] {
        &self.backends
    }

    pub fn events(&self) -> &Arc<EventLog> {
        &self.events
    }

    /// Chooses a backend for a request, skipping `exclude` (backends already tried).
    pub fn select(&self, now: Instant, exclude: &[usize]) -> Selection {
        if self.nanos(now) >= self.next_half_open.load(Ordering::Acquire) {
            self.poll_breakers(now);
        }
        let schedule = self.schedule.load();
        let len = schedule.len();
        if len > 0 {
            let start = self.cursor.fetch_add(1, Ordering::Relaxed);
            for k in 0..len {
                let index = schedule[(start + k) % len];
                if exclude.contains(&index) {
                    continue;
                }
                let backend = &self.backends[index];
                let (ticket, transition) = backend.breaker.try_acquire(now);
                if let Some(t) = transition {
                    self.on_transition(index, t);
                }
                if let Some(ticket) = ticket {
                    return Selection::Chosen { index, ticket };
                }
            }
        }
        Selection::Unavailable {
            retry_after: self.retry_after(now),
        }
    }

    /// Records how a request sent to `index` ended (§4.4: success is any answer below 500).
    pub fn record(&self, index: usize, ticket: Ticket, outcome: Outcome, now: Instant) {
        let backend = &self.backends[index];
        if let Some(t) = backend.breaker.record(ticket, outcome, now) {
            self.on_transition(index, t);
        }
    }

    /// Health flips, from the health checks.
    pub fn set_healthy(&self, index: usize, healthy: bool) {
        let backend = &self.backends[index];
        if backend.healthy.swap(healthy, Ordering::AcqRel) == healthy {
            return;
        }
        let url = backend.spec.url.clone();
        if healthy {
            self.restart_warmup(index);
            self.events.record(Event::BackendHealthy { backend: url });
        } else {
            self.events.record(Event::BackendUnhealthy { backend: url });
        }
        self.rebuild();
    }

    /// Drains or enables the backend whose [`Backend::id`] is `id` and rebuilds the schedule, so
    /// the change holds from the next selection on. `None` when no backend has that id;
    /// otherwise the backend's URL.
    pub fn set_admin_state(&self, id: &str, state: AdminState) -> Option<String> {
        let backend = self.backends.iter().find(|b| b.id() == id)?;
        let drained = state == AdminState::Drained;
        let url = backend.spec.url.clone();
        if backend.drained.swap(drained, Ordering::AcqRel) != drained {
            self.events.record(if drained {
                Event::BackendDrained {
                    backend: url.clone(),
                }
            } else {
                Event::BackendEnabled {
                    backend: url.clone(),
                }
            });
            self.rebuild();
        }
        Some(url)
    }

    /// Every health probe's result, for warm-up.
    pub fn observe_probe(&self, index: usize, success: bool) {
        let backend = &self.backends[index];
        let stepped = {
            let mut warmup = backend.warmup.lock().unwrap_or_else(|p| p.into_inner());
            let stepped = warmup.observe_probe(success);
            backend.warm_level.store(warmup.level(), Ordering::Release);
            stepped
        };
        if let Some(level) = stepped {
            self.events.record(Event::WarmUpStep {
                backend: backend.spec.url.clone(),
                percent: level * 25,
            });
            self.rebuild();
        }
    }

    fn restart_warmup(&self, index: usize) {
        let backend = &self.backends[index];
        let mut warmup = backend.warmup.lock().unwrap_or_else(|p| p.into_inner());
        warmup.restart();
        backend.warm_level.store(warmup.level(), Ordering::Release);
    }

    fn on_transition(&self, index: usize, transition: Transition) {
        let backend = &self.backends[index];
        let url = backend.spec.url.clone();
        let event = match transition {
            Transition::Opened => {
                if let Some(at) = backend.breaker.half_open_at() {
                    self.next_half_open
                        .fetch_min(self.nanos(at), Ordering::AcqRel);
                }
                Event::BreakerOpened { backend: url }
            }
            Transition::HalfOpened => Event::BreakerHalfOpen { backend: url },
            Transition::Closed => {
                self.restart_warmup(index);
                Event::BreakerClosed { backend: url }
            }
        };
        self.events.record(event);
        self.rebuild();
    }

    /// Moves due open breakers to half-open and recomputes the next deadline.
    fn poll_breakers(&self, now: Instant) {
        let mut next = u64::MAX;
        for backend in &self.backends {
            if let Some(t) = backend.breaker.poll(now) {
                self.on_transition(backend.index, t);
            }
            if let Some(at) = backend.breaker.half_open_at() {
                next = next.min(self.nanos(at));
            }
        }
        self.next_half_open.store(next, Ordering::Release);
    }

    /// Seconds until the soonest open breaker may half-open; with none open, until the next
    /// health probe could bring a backend back. At least 1.
    fn retry_after(&self, now: Instant) -> u64 {
        let soonest = self
            .backends
            .iter()
            .filter_map(|b| b.breaker.half_open_at())
            .min()
            .map(|at| at.saturating_duration_since(now))
            .unwrap_or(self.health_interval);
        soonest.as_secs_f64().ceil().max(1.0) as u64
    }

    /// Rebuilds the schedule over usable backends with their warm-up weights.
    fn rebuild(&self) {
        let _guard = self.rebuild.lock().unwrap_or_else(|p| p.into_inner());
        let weights: Vec<(usize, u32)> = self
            .backends
            .iter()
            .filter(|b| b.usable())
            .map(|b| {
                (
                    b.index,
                    b.spec.weight * b.warm_level.load(Ordering::Acquire) as u32,
                )
            })
            .collect();
        self.schedule.store(Arc::new(schedule::build(&weights)));
    }

    fn nanos(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_nanos() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    fn pool(yaml: &str) -> UpstreamPool {
        let config = parse(yaml).unwrap();
        UpstreamPool::new(&config, Arc::new(EventLog::new()))
    }

    const THREE: &str = "backends:\n  - url: http://a.example\n  - url: http://b.example\n  - url: http://c.example\n    weight: 2\ncircuit_breaker:\n  failure_threshold: 2\n  open_timeout: 10s\n  half_open_max_requests: 1\n";

    fn pick(pool: &UpstreamPool, now: Instant) -> usize {
        match pool.select(now, &[]) {
            Selection::Chosen { index, .. } => index,
            other => panic!("nothing chosen: {other:?}"),
        }
    }

    #[test]
    fn selection_follows_weights() {
        let pool = pool(THREE);
        let now = Instant::now();
        let mut counts = [0; 3];
        for _ in 0..400 {
            counts[pick(&pool, now)] += 1;
        }
        assert_eq!(counts, [100, 100, 200]);
    }

    #[test]
    fn unhealthy_and_open_backends_are_skipped() {
        let pool = pool(THREE);
        let now = Instant::now();
        pool.set_healthy(2, false);
        let ticket = Ticket { probe: false };
        pool.record(0, ticket, Outcome::Failure, now);
        pool.record(0, ticket, Outcome::Failure, now);
        assert_eq!(pool.backends()[0].breaker_state(), BreakerState::Open);
        for _ in 0..10 {
            assert_eq!(pick(&pool, now), 1);
        }
        assert_eq!(
            pool.select(now, &[1]),
            Selection::Unavailable { retry_after: 10 }
        );
        // After open_timeout the open backend half-opens and takes one probe at a time.
        let later = now + Duration::from_secs(10);
        let chosen: Vec<Selection> = (0..4).map(|_| pool.select(later, &[1])).collect();
        assert_eq!(
            chosen[0],
            Selection::Chosen {
                index: 0,
                ticket: Ticket { probe: true }
            }
        );
        assert!(chosen[1..]
            .iter()
            .all(|s| matches!(s, Selection::Unavailable { .. })));
    }

    #[test]
    fn a_recovered_backend_warms_up() {
        let pool = pool(THREE);
        pool.set_healthy(2, false);
        pool.set_healthy(2, true);
        assert_eq!(pool.backends()[2].warmup_percent(), 25);
        let now = Instant::now();
        let mut counts = [0; 3];
        for _ in 0..1000 {
            counts[pick(&pool, now)] += 1;
        }
        // Weights 1:1:2 with the third at 25 % → 1:1:0.5 → 400:400:200 out of 1000.
        assert_eq!(counts, [400, 400, 200]);
        for _ in 0..9 {
            pool.observe_probe(2, true);
        }
        assert_eq!(pool.backends()[2].warmup_percent(), 100);
    }

    #[test]
    fn a_drained_backend_gets_nothing_until_enabled() {
        let pool = pool(THREE);
        let now = Instant::now();
        assert_eq!(pool.backends()[2].id(), "http-c.example");
        assert_eq!(
            pool.set_admin_state("http-c.example", AdminState::Drained),
            Some("http://c.example".to_string())
        );
        assert!(pool.backends()[2].is_drained());
        let mut counts = [0; 3];
        for _ in 0..100 {
            counts[pick(&pool, now)] += 1;
        }
        assert_eq!(counts, [50, 50, 0]);
        assert_eq!(pool.set_admin_state("http-nope", AdminState::Drained), None);
        pool.set_admin_state("http-c.example", AdminState::Enabled);
        let mut counts = [0; 3];
        for _ in 0..400 {
            counts[pick(&pool, now)] += 1;
        }
        assert_eq!(counts, [100, 100, 200]);
        let events: Vec<String> = pool
            .events()
            .recent()
            .iter()
            .map(|e| e.event.to_string())
            .collect();
        assert_eq!(
            events,
            [
                "backend http://c.example drained by an operator",
                "backend http://c.example enabled by an operator"
            ]
        );
    }
}
