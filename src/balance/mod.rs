//! Backend selection (§4): the pool of backends with their health, breaker and warm-up state, and
//! smooth weighted round-robin over the usable ones.
//!
//! - `backend`: one backend, its lasting state and its configured form.
//! - `schedule`: the smooth weighted round-robin sequence (pure).
//! - `warmup`: the warm-up steps (pure).
//! - `health`: active health checks on Pingora's `HttpHealthCheck` and `HealthRegistry`.
//!
//! The members and the schedule over them are one value behind an `ArcSwap`: a request loads
//! it once to choose, health flips and warm-up steps publish a new schedule, and a reload
//! ([`UpstreamPool::reconfigure`]) publishes new members that keep the state of every backend
//! whose URL stays. A request that chose a removed backend holds it (an `Arc`) until it ends.
//!
//! About 450 lines: the pool's selection, outcomes, flips and schedule rebuilds share its
//! locks and atomics and read best in one file.

pub mod backend;
pub mod health;
mod pools;
pub mod schedule;
pub mod warmup;

pub use backend::{backend_id, AdminState, Backend, BackendState};
pub use pools::Pools;

use crate::breaker::{Outcome, Ticket, Transition};
use crate::config::{Config, PoolId, PoolRef, DEFAULT_POOL_NAME};
use crate::events::{Event, EventLog};
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The outcome of choosing a backend.
#[derive(Clone)]
pub enum Selection {
    Chosen {
        backend: Arc<Backend>,
        ticket: Ticket,
    },
    /// Nothing can take the request; retry after this many seconds (at least 1).
    Unavailable { retry_after: u64 },
}

impl std::fmt::Debug for Selection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selection::Chosen { backend, ticket } => f
                .debug_struct("Chosen")
                .field("backend", &backend.spec.url)
                .field("ticket", ticket)
                .finish(),
            Selection::Unavailable { retry_after } => f
                .debug_struct("Unavailable")
                .field("retry_after", retry_after)
                .finish(),
        }
    }
}

/// The backends of one moment and the schedule over them.
struct Members {
    backends: Vec<Arc<Backend>>,
    /// Indices into `backends`, in smooth weighted round-robin order.
    schedule: Vec<usize>,
}

/// One pool (§17; without `routes` the only one, `default`): the backends and the schedule
/// over them. Shared by the proxy, the health checks and reload.
pub struct UpstreamPool {
    /// The pool's name in the configuration (`default` for the top-level `backends`): what
    /// keeps it across reloads (its id may change when a reload adds or removes a pool).
    pub name: String,
    members: ArcSwap<Members>,
    cursor: AtomicUsize,
    /// Earliest moment an open breaker may half-open, in nanoseconds since `epoch`
    /// (`u64::MAX`: none open). Lets `select` skip looking at breakers in the common case.
    next_half_open: AtomicU64,
    epoch: Instant,
    /// Serialises membership and schedule changes.
    rebuild: Mutex<()>,
    events: Arc<EventLog>,
    /// `health_check.interval` in nanoseconds: the `Retry-After` when no breaker is open.
    health_interval: AtomicU64,
    /// Backend serials, shared by every pool so that a serial names one backend process-wide.
    serials: Arc<AtomicU64>,
    /// Wakes the health checks when backends were added (their first probe is due at once).
    pub probe_now: tokio::sync::Notify,
    /// The pool's adaptive scale (§17; f64 bits, 1 until its loop decides): its routes' rates
    /// are multiplied by it (`limit::pool_scale`).
    adaptive_scale: AtomicU64,
}

/// What a reload changed in the pool, by URL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembershipChange {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// `(url, old weight, new weight)`.
    pub reweighted: Vec<(String, u32, u32)>,
    /// Pools a reload added and removed, by name ([`Pools::reconfigure`]).
    pub pools_added: Vec<String>,
    pub pools_removed: Vec<String>,
}

impl UpstreamPool {
    /// Builds the default pool from a resolved config: every backend starts healthy at full
    /// weight.
    pub fn new(config: &Config, events: Arc<EventLog>) -> Self {
        Self::build(
            config,
            crate::config::DEFAULT_POOL,
            events,
            Arc::new(AtomicU64::new(0)),
        )
    }

    /// Builds pool `id` of a resolved config at startup, every backend healthy at full weight;
    /// `serials` numbers backends across pools.
    pub fn build(
        config: &Config,
        id: PoolId,
        events: Arc<EventLog>,
        serials: Arc<AtomicU64>,
    ) -> Self {
        let settings = config.pool(id);
        let pool = UpstreamPool::empty(
            settings.map_or(DEFAULT_POOL_NAME, |p| p.name),
            settings.map_or(config.health_check.interval, |p| p.health_check.interval),
            events,
            serials,
        );
        let backends = settings
            .iter()
            .flat_map(|p| p.backends.iter().map(move |spec| (p, spec)))
            .map(|(p, spec)| {
                let state = BackendState::at_startup(pool.new_serial(), p.circuit_breaker);
                Arc::new(Backend::new(spec, config, Arc::new(state)))
            })
            .collect();
        pool.publish(backends);
        pool
    }

    /// A pool named `name` without backends yet (a reload adding a pool fills it with
    /// [`Self::reconfigure`], so its backends join as a reload's added backends do).
    pub fn empty(
        name: &str,
        health_interval: Duration,
        events: Arc<EventLog>,
        serials: Arc<AtomicU64>,
    ) -> Self {
        UpstreamPool {
            name: name.to_string(),
            members: ArcSwap::from_pointee(Members {
                backends: Vec::new(),
                schedule: Vec::new(),
            }),
            cursor: AtomicUsize::new(0),
            next_half_open: AtomicU64::new(u64::MAX),
            epoch: Instant::now(),
            rebuild: Mutex::new(()),
            events,
            health_interval: AtomicU64::new(health_interval.as_nanos() as u64),
            serials,
            probe_now: tokio::sync::Notify::new(),
            adaptive_scale: AtomicU64::new(1f64.to_bits()),
        }
    }

    /// Whether this is pool 0, `default` (no named pool may be called `default`).
    pub fn is_default(&self) -> bool {
        self.name == DEFAULT_POOL_NAME
    }

    /// This pool's settings in `config`, by name (none when the configuration no longer has
    /// it).
    pub fn settings<'c>(&self, config: &'c Config) -> Option<PoolRef<'c>> {
        config.all_pools().find(|p| p.name == self.name)
    }

    /// How events and logs name a backend of this pool: its URL in the default pool,
    /// `pool/URL` in a named one.
    pub fn label(&self, backend: &Backend) -> String {
        if self.is_default() {
            backend.spec.url.clone()
        } else {
            format!("{}/{}", self.name, backend.spec.url)
        }
    }

    fn new_serial(&self) -> u64 {
        self.serials.fetch_add(1, Ordering::Relaxed)
    }

    /// The current backends, in configuration order.
    pub fn backends(&self) -> Vec<Arc<Backend>> {
        self.members.load().backends.clone()
    }

    /// The pool's adaptive scale (§17).
    pub fn adaptive_scale(&self) -> f64 {
        f64::from_bits(self.adaptive_scale.load(Ordering::Relaxed))
    }

    pub fn set_adaptive_scale(&self, scale: f64) {
        self.adaptive_scale
            .store(scale.to_bits(), Ordering::Relaxed);
    }

    pub fn events(&self) -> &Arc<EventLog> {
        &self.events
    }

    /// Applies a reloaded configuration (§12.1): backends are matched by URL. A kept backend
    /// keeps its state and takes its new weight, address and timeouts at once; an added one
    /// waits for its first passing probe (at once when no kept backend can serve); a removed
    /// one gets no new request (requests that chose it finish with it). Breaker thresholds
    /// apply to every backend.
    pub fn reconfigure(&self, config: &Config) -> MembershipChange {
        let _guard = self.rebuild.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.members.load_full();
        let by_url: HashMap<&str, &Arc<Backend>> = old
            .backends
            .iter()
            .map(|b| (b.spec.url.as_str(), b))
            .collect();
        let settings = self.settings(config);
        let specs = settings.map_or(&[][..], |p| p.backends);
        let mut change = MembershipChange::default();
        let mut backends = Vec::with_capacity(specs.len());
        for spec in specs {
            let breaker = settings.map_or(&config.circuit_breaker, |p| p.circuit_breaker);
            let state = match by_url.get(spec.url.as_str()) {
                Some(kept) => {
                    if kept.spec.weight != spec.weight {
                        change
                            .reweighted
                            .push((spec.url.clone(), kept.spec.weight, spec.weight));
                    }
                    kept.breaker.reconfigure(breaker);
                    kept.state.clone()
                }
                None => {
                    change.added.push(spec.url.clone());
                    Arc::new(BackendState::joining(self.new_serial(), breaker))
                }
            };
            backends.push(Arc::new(Backend::new(spec, config, state)));
        }
        change.removed = old
            .backends
            .iter()
            .filter(|b| !specs.iter().any(|s| s.url == b.spec.url))
            .map(|b| b.spec.url.clone())
            .collect();
        // With no kept backend able to serve, waiting for the added ones' first probe would
        // answer 503 meanwhile: they take traffic at once instead, warming up from 25 %.
        if !backends.iter().any(|b| !b.is_joining() && b.usable()) {
            for backend in backends.iter().filter(|b| b.is_joining()) {
                backend.state.set_healthy(true);
            }
        }
        if let Some(settings) = settings {
            self.health_interval.store(
                settings.health_check.interval.as_nanos() as u64,
                Ordering::Relaxed,
            );
        }
        self.store(backends);
        if !change.added.is_empty() {
            self.probe_now.notify_one();
        }
        change
    }

    /// Chooses a backend for a request, skipping `exclude` (serials of backends already tried).
    pub fn select(&self, now: Instant, exclude: &[u64]) -> Selection {
        if self.nanos(now) >= self.next_half_open.load(Ordering::Acquire) {
            self.poll_breakers(now);
        }
        let members = self.members.load();
        let len = members.schedule.len();
        if len > 0 {
            let start = self.cursor.fetch_add(1, Ordering::Relaxed);
            for k in 0..len {
                let backend = &members.backends[members.schedule[(start + k) % len]];
                if exclude.contains(&backend.serial) {
                    continue;
                }
                let (ticket, transition) = backend.breaker.try_acquire(now);
                if let Some(t) = transition {
                    self.on_transition(backend, t);
                }
                if let Some(ticket) = ticket {
                    return Selection::Chosen {
                        backend: backend.clone(),
                        ticket,
                    };
                }
            }
        }
        Selection::Unavailable {
            retry_after: self.retry_after(now),
        }
    }

    /// Records how a request sent to `backend` ended (§4.4: success is any answer below 500).
    pub fn record(&self, backend: &Backend, ticket: Ticket, outcome: Outcome, now: Instant) {
        if let Some(t) = backend.breaker.record(ticket, outcome, now) {
            self.on_transition(backend, t);
        }
    }

    /// Health flips, from the health checks.
    pub fn set_healthy(&self, backend: &Backend, healthy: bool) {
        if !backend.state.set_healthy(healthy) {
            return;
        }
        let url = self.label(backend);
        if healthy {
            backend.restart_warmup();
            self.events.record(Event::BackendHealthy { backend: url });
        } else {
            self.events.record(Event::BackendUnhealthy { backend: url });
        }
        self.rebuild();
    }

    /// Drains or enables the backend whose [`Backend::id`] is `id` and rebuilds the schedule, so
    /// the change holds from the next selection on (and across reloads: it is the backend's
    /// state). `None` when no backend has that id; otherwise the backend's URL.
    pub fn set_admin_state(&self, id: &str, state: AdminState) -> Option<String> {
        let backend = self.backends().into_iter().find(|b| b.id() == id)?;
        let drained = state == AdminState::Drained;
        let url = backend.spec.url.clone();
        if backend.drained.swap(drained, Ordering::AcqRel) != drained {
            let label = self.label(&backend);
            self.events.record(if drained {
                Event::BackendDrained { backend: label }
            } else {
                Event::BackendEnabled { backend: label }
            });
            self.rebuild();
        }
        Some(url)
    }

    /// Every health probe's result, for warm-up; a backend added by a reload joins at its
    /// first passing probe, at 25 %.
    pub fn observe_probe(&self, backend: &Backend, success: bool) {
        if backend.is_joining() {
            if success {
                self.set_healthy(backend, true);
            }
            return;
        }
        let stepped = {
            let mut warmup = backend.warmup.lock().unwrap_or_else(|p| p.into_inner());
            let stepped = warmup.observe_probe(success);
            backend.warm_level.store(warmup.level(), Ordering::Release);
            stepped
        };
        if let Some(level) = stepped {
            self.events.record(Event::WarmUpStep {
                backend: self.label(backend),
                percent: level * 25,
            });
            self.rebuild();
        }
    }

    fn on_transition(&self, backend: &Backend, transition: Transition) {
        let url = self.label(backend);
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
                backend.restart_warmup();
                Event::BreakerClosed { backend: url }
            }
        };
        self.events.record(event);
        self.rebuild();
    }

    /// Moves due open breakers to half-open and recomputes the next deadline.
    fn poll_breakers(&self, now: Instant) {
        let mut next = u64::MAX;
        for backend in self.members.load().backends.iter() {
            if let Some(t) = backend.breaker.poll(now) {
                self.on_transition(backend, t);
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
            .members
            .load()
            .backends
            .iter()
            .filter_map(|b| b.breaker.half_open_at())
            .min()
            .map(|at| at.saturating_duration_since(now))
            .unwrap_or(Duration::from_nanos(
                self.health_interval.load(Ordering::Relaxed),
            ));
        soonest.as_secs_f64().ceil().max(1.0) as u64
    }

    /// Rebuilds the schedule over usable backends with their warm-up weights.
    fn rebuild(&self) {
        let _guard = self.rebuild.lock().unwrap_or_else(|p| p.into_inner());
        let backends = self.members.load().backends.clone();
        self.store(backends);
    }

    /// [`Self::store`] under the lock, for a first publication.
    fn publish(&self, backends: Vec<Arc<Backend>>) {
        let _guard = self.rebuild.lock().unwrap_or_else(|p| p.into_inner());
        self.store(backends);
    }

    /// Publishes `backends` with a schedule over the usable ones. The caller holds `rebuild`.
    fn store(&self, backends: Vec<Arc<Backend>>) {
        let weights: Vec<(usize, u32)> = backends
            .iter()
            .enumerate()
            .filter(|(_, b)| b.usable())
            .map(|(i, b)| {
                (
                    i,
                    b.spec.weight * b.warm_level.load(Ordering::Acquire) as u32,
                )
            })
            .collect();
        let schedule = schedule::build(&weights);
        self.members.store(Arc::new(Members { backends, schedule }));
    }

    fn nanos(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_nanos() as u64
    }
}

#[cfg(test)]
mod tests;
