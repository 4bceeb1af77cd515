//! The plain-data snapshot of everything an operator sees: what `/status` returns as JSON, what
//! `/metrics` renders for Prometheus, and what the dashboard draws (locally or from `/status`).

use crate::metrics::duration::HistogramCounts;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub version: String,
    /// Every listener (`http://0.0.0.0:8080, https://…`), with its bound address once bound.
    pub listen: String,
    /// Where the listeners are bound (the port the kernel picked for a configured port 0).
    #[serde(default)]
    pub bound: BoundSnapshot,
    pub uptime_secs: f64,
    /// True while Aegis drains at shutdown.
    pub draining: bool,
    pub totals: Totals,
    /// Every pool's backends, pool by pool (each carries its `pool`).
    pub backends: Vec<BackendSnapshot>,
    /// The pools (§17), by id: `default` first; each names its backends by `id`.
    #[serde(default)]
    pub pools: Vec<PoolSnapshot>,
    pub rate_limit: RateLimitSnapshot,
    /// Requests per second over the last minute, oldest first, one entry per second.
    pub requests_per_sec_history: Vec<u64>,
    /// Upstream latency quantiles of every backend together, per second over the last minute,
    /// oldest first (for the web dashboard's latency chart).
    #[serde(default)]
    pub latency_history: Vec<LatencyPoint>,
    /// Recent state changes, oldest first.
    pub events: Vec<EventSnapshot>,
    /// Connections and descriptors against their limits.
    #[serde(default)]
    pub capacity: CapacitySnapshot,
    /// TLS listeners' certificates and handshakes.
    #[serde(default)]
    pub tls: TlsSnapshot,
    /// Cluster mode (§13); absent when `cluster.redis_url` is unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterSnapshot>,
    /// Automatic certificates (§18), one per listener with `tls.acme`; absent without.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acme: Vec<AcmeSnapshot>,
    /// The configuration in force and the last reload (§12.1).
    #[serde(default)]
    pub config: ConfigSnapshot,
}

/// The configuration in force and how the last reload went.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigSnapshot {
    /// The file Aegis was started with (and reloads).
    pub path: String,
    /// 1 at startup, one more at every applied reload.
    pub generation: u64,
    /// When the configuration in force was loaded (Unix seconds).
    pub loaded_at_unix: u64,
    /// SHA-256 of the file's bytes, hex.
    pub sha256: String,
    /// Reload attempts since startup, applied or refused (`aegis reload` waits for it to move).
    pub reloads: u64,
    /// Of those, applied.
    pub reloads_applied: u64,
    /// Of those, refused.
    pub reloads_refused: u64,
    /// The last reload; `None` before the first.
    pub last_reload: Option<ReloadSnapshot>,
}

/// One reload attempt.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReloadSnapshot {
    /// Unix seconds.
    pub at_unix: u64,
    /// `applied` or `refused`.
    pub result: String,
    /// What asked for it: `SIGHUP` or `POST /reload`.
    pub trigger: String,
    /// Every problem, with its key path (empty when applied).
    pub errors: Vec<String>,
}

/// The reload state, for the snapshot (implemented by `crate::reload`).
pub trait ConfigSource: Send + Sync {
    fn config_snapshot(&self) -> ConfigSnapshot;
}

/// The bound address of each listener, in `listeners[]` order, and of the admin listener;
/// `None` until its socket is bound.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BoundSnapshot {
    pub listeners: Vec<Option<String>>,
    pub admin: Option<String>,
}

/// What cluster mode looks like from this instance (see `docs/cluster.md`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterSnapshot {
    /// This instance's `cluster.instance_name`.
    pub instance: String,
    /// `cluster.redis_url` with any password masked.
    pub redis_url: String,
    /// Whether the last exchange with Redis succeeded (limits are shared).
    pub redis_up: bool,
    /// Instances that synced within the last few seconds, this one included, sorted.
    pub instances: Vec<String>,
    /// The instance deciding the adaptive rate; `None` when none holds the lease (or unknown).
    pub lease_holder: Option<String>,
    pub sync_interval_ms: f64,
    /// Time since the last successful exchange; `None` before the first.
    pub sync_lag_ms: Option<f64>,
    /// How long the last exchange took.
    pub last_exchange_ms: Option<f64>,
    /// Failed exchanges since startup.
    pub sync_errors: u64,
    /// Clients whose counts this instance shares now.
    pub tracked_clients: u64,
}

/// One ACME-managed certificate (§18, `docs/tls.md`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcmeSnapshot {
    /// The listener's address.
    pub listener: String,
    pub domains: Vec<String>,
    pub directory: String,
    pub challenge: String,
    /// `obtaining` (no certificate served yet), `valid`, `renewing`, or `retrying` after a
    /// failure.
    pub state: String,
    /// The served certificate's validity (Unix seconds); absent while none is served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after_unix: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renew_at_unix: Option<i64>,
    /// When the next order is due (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_unix: Option<i64>,
    /// Certificates obtained since startup (first ones and renewals).
    pub issued: u64,
    /// Of those, renewals (a valid certificate was being served).
    pub renewed: u64,
    /// Orders that failed since startup.
    pub failures: u64,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Accounts registered with the directory since startup (0 when the stored one is used).
    pub accounts_created: u64,
}

/// Where the observer reads the ACME block from (implemented by `crate::acme`).
pub trait AcmeSource: Send + Sync {
    fn acme_snapshot(&self) -> Vec<AcmeSnapshot>;
}

/// Where the observer reads the cluster block from (implemented by `crate::cluster`).
pub trait ClusterSource: Send + Sync {
    fn cluster_snapshot(&self) -> ClusterSnapshot;
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TlsSnapshot {
    /// Handshakes that failed or timed out.
    pub handshake_failures: u64,
    /// Requests by TLS version (`TLSv1.2`, `TLSv1.3`).
    pub requests: BTreeMap<String, u64>,
    pub certificates: Vec<CertificateSnapshot>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateSnapshot {
    /// The certificate's first name.
    pub name: String,
    /// End of validity, seconds since the Unix epoch.
    pub expires_unix: i64,
}

/// What the connection capacity looks like (see `docs/operations.md`, "Connection capacity").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CapacitySnapshot {
    /// The soft open-file limit in force (raised to the hard limit at startup).
    pub open_files_limit: u64,
    /// Descriptors open now; `None` where the platform does not tell.
    pub open_files: Option<u64>,
    /// `server.max_connections`: client connections accepted at once.
    pub max_connections: u64,
    /// Client connections open now.
    pub client_connections: u64,
    /// Requests handed to a backend and not yet over: each holds (or is opening) an upstream
    /// connection.
    pub upstream_in_use: u64,
    /// Idle upstream connections Pingora's pool keeps at most (it does not expose how many
    /// it holds; `open_files` minus the two counts above is the rest).
    pub upstream_pool_max: u64,
    /// Failures to open a socket for lack of Aegis's own resources, by kind.
    pub local_resource_errors: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub requests: u64,
    /// Requests per second over the last second.
    pub requests_per_sec: f64,
    pub in_flight: u64,
    /// Responses by status class: "1xx" … "5xx".
    pub responses: BTreeMap<String, u64>,
    /// Requests Aegis answered itself, by reason (`rate_limited`, `invalid_path`, …).
    pub refusals: BTreeMap<String, u64>,
    /// Requests by client protocol: "http/1.1" (HTTP/1.0 included) and "h2".
    #[serde(default)]
    pub protocols: BTreeMap<String, u64>,
    /// WebSocket tunnels open now (§11.4).
    #[serde(default)]
    pub websocket_tunnels: u64,
    /// WebSocket tunnels opened since the start.
    #[serde(default)]
    pub websocket_tunnels_opened: u64,
    /// Request durations in Prometheus's buckets (for `/metrics` only).
    #[serde(skip)]
    pub request_duration: HistogramCounts,
    /// With `routes` (§17): the requests again, by route, the requests no route took last;
    /// absent without `routes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteTotals>,
}

/// One route's requests (§17).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RouteTotals {
    /// The route's name; `null` for the requests no route took (the default pool's, the 404s).
    pub route: Option<String>,
    pub requests: u64,
    /// Responses by status class: "1xx" … "5xx".
    pub responses: BTreeMap<String, u64>,
    /// Requests Aegis answered itself, by reason; reasons that did not occur are left out.
    pub refusals: BTreeMap<String, u64>,
}

/// Upstream latency quantiles over one second; `None` when no response came in that second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyPoint {
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// One pool (§17) and how it is doing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PoolSnapshot {
    pub name: String,
    /// The pool's backends, by `id` (their details are in `backends`).
    pub backends: Vec<String>,
    /// Backends that are healthy, not drained and whose breaker is not open.
    pub up: usize,
    pub requests_per_sec: f64,
    /// Upstream latency P95 of the pool's backends together over the latency window; `None`
    /// without responses in it.
    #[serde(default)]
    pub p95_ms: Option<f64>,
    /// Share of the pool's requests that failed over the latency window, 0..=1.
    #[serde(default)]
    pub error_rate: f64,
    /// Requests handed to the pool's backends and not yet over.
    #[serde(default)]
    pub in_flight: u64,
    /// The pool's own adaptive loop (§17): with `routes` outside cluster mode, once it has
    /// evaluated; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adaptive: Option<PoolAdaptiveSnapshot>,
}

/// One pool's adaptive loop (§17).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PoolAdaptiveSnapshot {
    /// The pool's rate, in the top-level `rate_limit`'s terms (requests per second).
    pub rate: f64,
    /// The pool's routes run at their configured rate times this (`rate` over the configured
    /// top-level rate).
    pub scale: f64,
    /// "reduce", "recover" or "hold".
    pub last_decision: String,
    pub last_reason: String,
    /// The P95 of the pool's backends at the last evaluation.
    pub p95_ms: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BackendSnapshot {
    /// The pool the backend is in (`default` for the top-level `backends`, §17).
    #[serde(default)]
    pub pool: String,
    /// The identifier of `/backends/{id}/drain` and `/enable` (§12.2): the URL with `://`
    /// written `-`.
    #[serde(default)]
    pub id: String,
    pub url: String,
    /// "enabled" or "drained" (by an operator, §12.2).
    #[serde(default)]
    pub admin_state: String,
    pub weight: u32,
    /// Weight after warm-up (weight × warm-up %).
    pub effective_weight: f64,
    pub warmup_percent: u8,
    pub healthy: bool,
    /// "closed", "open" or "half-open".
    pub breaker: String,
    pub requests: u64,
    pub failures: u64,
    pub requests_per_sec: f64,
    /// Share of failed requests over the latency window, 0..=1.
    pub error_rate: f64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub in_flight: u64,
    /// Upstream latency in Prometheus's buckets (for `/metrics` only).
    #[serde(skip)]
    pub response_duration: HistogramCounts,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RateLimitSnapshot {
    /// Current per-client rate, requests per second.
    pub current_rate: f64,
    pub burst: u32,
    pub min_rate: f64,
    pub max_rate: f64,
    pub adaptive_enabled: bool,
    /// "reduce", "recover", "hold" or "none" (no evaluation yet).
    pub last_decision: String,
    pub last_reason: String,
    /// P95 upstream latency seen by the last evaluation.
    pub p95_ms: Option<f64>,
    pub threshold_ms: f64,
    /// 429 answers per second over the last second.
    pub limited_per_sec: f64,
    /// Distinct clients limited during the last second (estimate).
    pub limited_clients: u64,
    /// The latest adaptive evaluations, oldest first (at most 32).
    #[serde(default)]
    pub recent_decisions: Vec<DecisionSnapshot>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DecisionSnapshot {
    /// "reduce", "recover" or "hold".
    pub decision: String,
    /// The rate after the evaluation.
    pub rate: f64,
    pub p95_ms: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventSnapshot {
    /// Seconds since the Unix epoch.
    pub at_unix: u64,
    /// "info", "warn", "error".
    pub level: String,
    pub message: String,
}
