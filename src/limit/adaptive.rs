//! The adaptive loop (§5.2): every `evaluation_interval`, the P95 upstream latency of the last
//! interval decides whether the per-client rate tightens, relaxes or holds.
//!
//! [`decide`] (in `policy`) is the pure policy; [`AdaptiveService`] is the Pingora background service that
//! applies it. In cluster mode (§13) it goes through [`ClusterRate`]: only the instance holding
//! the lease decides, over the latency of every instance, and the others follow its rate.
//!
//! With `routes` (§17, not in cluster mode) the loop runs per pool (`pool_scale`): each pool's
//! backends are evaluated apart and the pool's scale moves its routes' rates; the default
//! pool's rate is also the limiter's (requests no route takes go there).

use super::policy::{decide, Decision, Evaluation};
use super::pool_scale::PoolLoop;
use super::RateLimiter;
use crate::balance::{Backend, Pools};
use crate::breaker::BreakerState;
use crate::config::{AdaptiveSettings, Config, ConfigHandle};
use crate::events::{Event, EventLog};
use crate::metrics::histogram::{difference, quantile_ms};
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// Cumulative latency bucket counts by backend serial.
type Counts = HashMap<u64, Vec<u64>>;

/// One adaptive rate for a cluster (§13; implemented in `crate::cluster`). Local calls only.
pub trait ClusterRate: Send + Sync {
    /// Shares this instance's latency window of the interval (bucket counts) and returns the window
    /// to decide on, merged with the other instances' latest; `None` when another instance decides.
    /// The decider publishes its rate (the limiter's) at every sync; the others apply it.
    fn merge(&self, local: Vec<u64>) -> Option<Vec<u64>>;
}

/// Evaluations kept for `/status` and the dashboard.
const HISTORY: usize = 32;

/// The latest evaluations, for the snapshot.
#[derive(Debug, Clone, Default)]
pub struct AdaptiveStatus {
    pub last: Option<Evaluation>,
    pub p95_ms: Option<f64>,
    /// The latest evaluations with the P95 each saw, oldest first.
    pub history: std::collections::VecDeque<(Evaluation, Option<f64>)>,
    /// With `routes` (§17): each pool's loop, by pool name (the default pool's evaluations are
    /// also the ones above).
    pub pools: BTreeMap<String, PoolLoop>,
}

impl AdaptiveStatus {
    fn push(&mut self, evaluation: Evaluation, p95_ms: Option<f64>) {
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back((evaluation.clone(), p95_ms));
        self.last = Some(evaluation);
        self.p95_ms = p95_ms;
    }
}

/// Runs [`decide`] every interval and applies the result to the limiter. The `adaptive`
/// settings are read from the current configuration at each evaluation, so a reload's interval,
/// thresholds, factors, bounds and `enabled` apply from the next one.
pub struct AdaptiveService {
    pub config: Arc<ConfigHandle>,
    pub limiter: Arc<RateLimiter>,
    pub pool: Arc<Pools>,
    pub events: Arc<EventLog>,
    pub status: Arc<Mutex<AdaptiveStatus>>,
    /// Set in cluster mode.
    pub cluster: Option<Arc<dyn ClusterRate>>,
}

impl AdaptiveService {
    /// Cumulative latency counts of each backend, by serial.
    fn counts(&self) -> Counts {
        self.pool
            .backends()
            .iter()
            .map(|b| (b.serial, b.metrics.latency.counts()))
            .collect()
    }

    /// Latency counts of the samples since `before` of `backends` that are healthy and closed
    /// now (a backend added since `before` counts from zero).
    fn window_since(backends: &[Arc<Backend>], before: &Counts, now: &Counts) -> Vec<u64> {
        let mut window: Vec<u64> = Vec::new();
        for backend in backends {
            if !backend.is_healthy() || backend.breaker_state() != BreakerState::Closed {
                continue;
            }
            let Some(now) = now.get(&backend.serial) else {
                continue;
            };
            let diff = match before.get(&backend.serial) {
                Some(before) => difference(now, before),
                None => now.clone(),
            };
            if window.is_empty() {
                window = diff;
            } else {
                window.iter_mut().zip(diff).for_each(|(w, d)| *w += d);
            }
        }
        window
    }

    /// One evaluation; `None` when another cluster instance decides.
    fn evaluate(
        &self,
        settings: &AdaptiveSettings,
        before: &Counts,
        now: &Counts,
        last_reduced: bool,
    ) -> Option<Evaluation> {
        let mut window = Self::window_since(&self.pool.backends(), before, now);
        if let Some(cluster) = &self.cluster {
            window = cluster.merge(window)?;
        }
        let p95 = quantile_ms(&window, 0.95);
        let rate = self.limiter.rate();
        let evaluation = decide(p95, rate, last_reduced, settings);
        if evaluation.rate != rate {
            self.limiter.set_rate(evaluation.rate);
            self.events.record(Event::RateChanged {
                pool: None,
                from: rate,
                to: evaluation.rate,
                reason: evaluation.reason.clone(),
            });
        }
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        status.push(evaluation.clone(), p95);
        Some(evaluation)
    }

    /// One evaluation per pool (§17): each pool's P95 moves its own rate, published as its
    /// scale; the default pool's rate is also the limiter's.
    fn evaluate_pools(&self, config: &Config, before: &Counts, now: &Counts) {
        let (limits, settings) = (&config.rate_limit, &config.adaptive);
        let pools = self.pool.all();
        let mut changes = Vec::new();
        {
            let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
            status
                .pools
                .retain(|name, _| pools.iter().any(|p| &p.name == name));
            for pool in pools {
                let p95 = quantile_ms(&Self::window_since(&pool.backends(), before, now), 0.95);
                let state = status
                    .pools
                    .entry(pool.name.clone())
                    .or_insert_with(|| PoolLoop::new(limits, settings));
                let (evaluation, from) = state.evaluate(p95, limits, settings);
                pool.set_adaptive_scale(state.scale(limits, settings));
                if evaluation.rate != from {
                    changes.push(Event::RateChanged {
                        pool: Some(pool.name.clone()),
                        from,
                        to: evaluation.rate,
                        reason: evaluation.reason.clone(),
                    });
                }
                if pool.is_default() {
                    self.limiter.set_rate(evaluation.rate);
                    status.push(evaluation, p95);
                }
            }
        }
        for change in changes {
            self.events.record(change);
        }
    }
}

#[async_trait]
impl BackgroundService for AdaptiveService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut before = self.counts();
        let mut last_reduced = false;
        loop {
            let interval = self.config.current().adaptive.evaluation_interval;
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.changed() => {
                    log::info!("adaptive loop stopped");
                    return;
                }
            }
            let now = self.counts();
            let config = self.config.current();
            if config.adaptive.enabled {
                if config.routes.is_some() && self.cluster.is_none() {
                    self.evaluate_pools(&config, &before, &now);
                } else {
                    let evaluation = self.evaluate(&config.adaptive, &before, &now, last_reduced);
                    last_reduced = evaluation.is_some_and(|e| e.decision == Decision::Reduce);
                }
            }
            before = now;
        }
    }
}
