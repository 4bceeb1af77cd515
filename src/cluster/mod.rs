//! Cluster mode (§13, `docs/cluster.md`): several Aegis instances share one set of per-client
//! limits and one adaptive rate through Redis, with nothing on the request path waiting for it.
//!
//! - `table`: the per-client counts the limiter reads and writes locally ([`SharedTable`]).
//! - `summary`: the compact latency summary each instance publishes for the lease holder.
//! - `sync`: the background service that exchanges counts, latency, the lease and the rate with
//!   Redis every `cluster.sync_interval` ([`ClusterService`]), and falls back to local limits
//!   when Redis is away.
//!
//! [`Cluster`] is the state they share with the limiter, the adaptive loop and `/status`.

mod summary;
mod sync;
mod table;

pub use sync::ClusterService;
pub use table::{SharedTable, MAX_TRACKED};

use crate::config::ClusterSettings;
use crate::limit::adaptive::ClusterRate;
use crate::status::snapshot::{ClusterSnapshot, ClusterSource};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the sync loop learnt from Redis and what it is to send next.
#[derive(Debug, Default)]
struct State {
    instances: Vec<String>,
    lease_holder: Option<String>,
    last_success: Option<Instant>,
    last_exchange: Option<Duration>,
    /// This instance's latest latency window, numbered, not yet sent.
    local_latency: Option<(u64, Vec<u64>)>,
    latency_seq: u64,
    /// The other instances' latest windows, by instance: (sequence number, counts).
    remote_latency: BTreeMap<String, (u64, Vec<u64>)>,
    /// The sequence number of each instance's window already merged into a decision.
    merged: BTreeMap<String, u64>,
}

/// The cluster state one instance keeps.
pub struct Cluster {
    pub settings: ClusterSettings,
    pub table: Arc<SharedTable>,
    /// Whether the adaptive loop runs (then the lease is sought).
    pub adaptive: bool,
    /// How long the lease lasts without renewal: one evaluation interval.
    pub lease_ttl: Duration,
    holds_lease: AtomicBool,
    sync_errors: AtomicU64,
    state: Mutex<State>,
}

impl Cluster {
    pub fn new(settings: ClusterSettings, adaptive: bool, evaluation_interval: Duration) -> Self {
        Cluster {
            settings,
            table: Arc::new(SharedTable::default()),
            adaptive,
            lease_ttl: evaluation_interval,
            holds_lease: AtomicBool::new(false),
            sync_errors: AtomicU64::new(0),
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_up(&self) -> bool {
        self.table.is_up()
    }

    pub fn holds_lease(&self) -> bool {
        self.holds_lease.load(Ordering::Relaxed)
    }
}

impl ClusterRate for Cluster {
    fn merge(&self, local: Vec<u64>) -> Option<Vec<u64>> {
        let mut state = self.state();
        state.latency_seq += 1;
        state.local_latency = Some((state.latency_seq, local.clone()));
        // Redis away: every instance decides for itself, on its own latency.
        if !self.is_up() {
            return Some(local);
        }
        if !self.holds_lease() {
            return None;
        }
        let State {
            remote_latency,
            merged,
            ..
        } = &mut *state;
        let mut window = local;
        for (instance, (seq, counts)) in remote_latency.iter() {
            // Each remote window counts once, even if it has not changed since.
            if merged.get(instance) == Some(seq) {
                continue;
            }
            merged.insert(instance.clone(), *seq);
            summary::add(&mut window, counts);
        }
        Some(window)
    }
}

impl ClusterSource for Cluster {
    fn cluster_snapshot(&self) -> ClusterSnapshot {
        let state = self.state();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        ClusterSnapshot {
            instance: self.settings.instance_name.clone(),
            redis_url: self
                .settings
                .redis_url
                .as_ref()
                .map(|u| u.to_string())
                .unwrap_or_default(),
            redis_up: self.is_up(),
            instances: state.instances.clone(),
            lease_holder: state.lease_holder.clone(),
            sync_interval_ms: ms(self.settings.sync_interval),
            sync_lag_ms: state.last_success.map(|t| ms(t.elapsed())),
            last_exchange_ms: state.last_exchange.map(ms),
            sync_errors: self.sync_errors.load(Ordering::Relaxed),
            tracked_clients: self.table.tracked() as u64,
        }
    }
}
