//! Metrics (§7.2): the recorders — counters and latency histograms written on the request path
//! with relaxed atomics only (no lock). The adaptive loop reads them directly; `status` samples
//! them into the snapshot operators see.
//!
//! - `histogram`: the log-linear latency histogram (pure arithmetic + atomic buckets), for the
//!   windowed quantiles of `/status`.
//! - `duration`: durations in Prometheus's fixed `le` buckets, for `/metrics`.
//! - `routes`: the requests again by route, with `routes` only (§17).

pub mod duration;
pub mod histogram;
pub mod routes;

use crate::breaker::Outcome;
use crate::reply::LocalReply;
use duration::DurationHistogram;
use histogram::LatencyHistogram;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Per-backend counters; each backend owns its own (`balance::BackendState`), so that a removed
/// backend's series go with it.
#[derive(Default)]
pub struct BackendMetrics {
    pub requests: AtomicU64,
    pub failures: AtomicU64,
    in_flight: AtomicU64,
    /// Upstream latency: request sent → response header received.
    pub latency: LatencyHistogram,
    /// The same latency in Prometheus's buckets (`aegis_upstream_response_duration_seconds`).
    pub response_duration: DurationHistogram,
}

impl BackendMetrics {
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// A request was handed to this backend.
    pub fn started(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// The request handed to this backend is over.
    pub fn finished(&self, outcome: Outcome, latency: Option<Duration>) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        if outcome == Outcome::Failure {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(latency) = latency {
            self.latency.record(latency);
            self.response_duration.record(latency);
        }
    }
}

/// Everything counted on the request path but per backend (see [`BackendMetrics`]).
#[derive(Default)]
pub struct Metrics {
    pub requests: AtomicU64,
    /// Of `requests`, those over HTTP/2 (the rest are HTTP/1), counted after `requests`.
    h2_requests: AtomicU64,
    classes: [AtomicU64; 5],
    /// Request durations, first byte read → response done (`aegis_http_request_duration_seconds`).
    pub request_duration: DurationHistogram,
    /// Local replies by [`LocalReply::index`].
    local_replies: [AtomicU64; LocalReply::KINDS],
    limited_clients: ClientSketch,
    /// TLS handshakes that failed or timed out.
    tls_handshake_failures: AtomicU64,
    /// Requests over TLS 1.2 and TLS 1.3.
    tls_requests: [AtomicU64; 2],
    /// WebSocket tunnels open now, and opened since the start (§11.4).
    tunnels_open: AtomicU64,
    tunnels_opened: AtomicU64,
    /// With `routes` (§17): the requests again, by route.
    pub routes: routes::RouteMetrics,
}

impl Metrics {
    pub fn new() -> Self {
        Metrics {
            requests: AtomicU64::new(0),
            h2_requests: AtomicU64::new(0),
            classes: Default::default(),
            request_duration: DurationHistogram::default(),
            local_replies: Default::default(),
            limited_clients: ClientSketch::default(),
            tls_handshake_failures: AtomicU64::new(0),
            tls_requests: Default::default(),
            tunnels_open: AtomicU64::new(0),
            tunnels_opened: AtomicU64::new(0),
            routes: routes::RouteMetrics::default(),
        }
    }

    /// One finished request: its status, when Aegis answered itself why, and how long it took.
    pub fn record_response(&self, status: u16, reply: Option<LocalReply>, duration: Duration) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.request_duration.record(duration);
        if (100..600).contains(&status) {
            self.classes[(status / 100 - 1) as usize].fetch_add(1, Ordering::Relaxed);
        }
        if let Some(reply) = reply {
            self.local_replies[reply.index()].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The request just recorded came over HTTP/2 (HTTP/1 requests cost nothing more).
    pub fn record_h2(&self) {
        self.h2_requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests by protocol: (HTTP/1, HTTP/2).
    pub fn protocols(&self) -> (u64, u64) {
        // `h2_requests` is read first and counted last, so it never exceeds `requests`.
        let h2 = self.h2_requests.load(Ordering::Relaxed);
        let all = self.requests.load(Ordering::Relaxed);
        (all.saturating_sub(h2), h2)
    }

    /// A client was rate limited (for the distinct-clients estimate).
    pub fn record_limited_client(&self, key: &impl Hash) {
        self.limited_clients.insert(key);
    }

    pub fn status_classes(&self) -> [u64; 5] {
        std::array::from_fn(|i| self.classes[i].load(Ordering::Relaxed))
    }

    /// Local replies so far, by [`LocalReply::index`].
    pub fn local_replies(&self) -> [u64; LocalReply::KINDS] {
        std::array::from_fn(|i| self.local_replies[i].load(Ordering::Relaxed))
    }

    /// Local replies of one kind so far.
    pub fn local_replies_of(&self, kind: LocalReply) -> u64 {
        self.local_replies[kind.index()].load(Ordering::Relaxed)
    }

    /// A TLS handshake failed or timed out.
    pub fn record_handshake_failure(&self) {
        self.tls_handshake_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// A request came over TLS (`TLSv1.2` or `TLSv1.3`, as `tls::version_label` names them).
    pub fn record_tls_request(&self, version: &str) {
        let index = usize::from(version == "TLSv1.3");
        self.tls_requests[index].fetch_add(1, Ordering::Relaxed);
    }

    /// Failed TLS handshakes, and requests over TLS 1.2 and TLS 1.3.
    pub fn tls(&self) -> (u64, [u64; 2]) {
        (
            self.tls_handshake_failures.load(Ordering::Relaxed),
            std::array::from_fn(|i| self.tls_requests[i].load(Ordering::Relaxed)),
        )
    }

    /// A WebSocket tunnel opened (the backend's 101 went to the client); it counts as open
    /// until the guard is dropped with the request.
    pub fn open_tunnel(self: &Arc<Self>) -> TunnelGuard {
        self.tunnels_open.fetch_add(1, Ordering::Relaxed);
        self.tunnels_opened.fetch_add(1, Ordering::Relaxed);
        TunnelGuard(self.clone())
    }

    /// WebSocket tunnels open now, and opened since the start.
    pub fn tunnels(&self) -> (u64, u64) {
        (
            self.tunnels_open.load(Ordering::Relaxed),
            self.tunnels_opened.load(Ordering::Relaxed),
        )
    }

    /// Distinct clients limited since the last call, and resets the estimate.
    pub fn take_limited_clients(&self) -> u64 {
        self.limited_clients.take()
    }
}

/// One open WebSocket tunnel, counted in [`Metrics::tunnels`] while it lives.
pub struct TunnelGuard(Arc<Metrics>);

impl Drop for TunnelGuard {
    fn drop(&mut self) {
        self.0.tunnels_open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Linear counting over a 4096-bit bitmap: a lock-free, fixed-size estimate of how many
/// distinct clients were seen (accurate to a few percent up to a few thousand clients).
struct ClientSketch {
    bits: [AtomicU64; 64],
    hasher: std::collections::hash_map::RandomState,
}

impl Default for ClientSketch {
    fn default() -> Self {
        ClientSketch {
            bits: std::array::from_fn(|_| AtomicU64::new(0)),
            hasher: Default::default(),
        }
    }
}

impl ClientSketch {
    fn insert(&self, key: &impl Hash) {
        let bit = (self.hasher.hash_one(key) % 4096) as usize;
        let mask = 1u64 << (bit % 64);
        if self.bits[bit / 64].load(Ordering::Relaxed) & mask == 0 {
            self.bits[bit / 64].fetch_or(mask, Ordering::Relaxed);
        }
    }

    fn take(&self) -> u64 {
        let set: u32 = self
            .bits
            .iter()
            .map(|w| w.swap(0, Ordering::Relaxed).count_ones())
            .sum();
        let m = 4096.0;
        let zeros = m - set as f64;
        if zeros < 1.0 {
            return (m * m.ln()) as u64;
        }
        (-m * (zeros / m).ln()).round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::{Refusal, UpstreamFailure};

    #[test]
    fn responses_and_local_replies_are_counted() {
        let m = Metrics::new();
        let limited = LocalReply::from(Refusal::RateLimited { retry_after: 1 });
        let took = Duration::from_millis(2);
        m.record_response(200, None, took);
        m.record_response(429, Some(limited), took);
        m.record_response(502, Some(UpstreamFailure::BadGateway.into()), took);
        assert_eq!(m.request_duration.read().count, 3);
        assert_eq!(m.status_classes(), [0, 1, 0, 1, 1]);
        assert_eq!(m.local_replies_of(limited), 1);
        assert_eq!(m.local_replies().iter().sum::<u64>(), 2);
        let b = BackendMetrics::default();
        b.started();
        assert_eq!(b.in_flight(), 1);
        b.finished(Outcome::Failure, Some(Duration::from_millis(3)));
        assert_eq!(b.in_flight(), 0);
        assert_eq!(b.failures.load(Ordering::Relaxed), 1);
        assert_eq!(b.response_duration.read().cumulative[3], 1);
    }

    #[test]
    fn distinct_clients_are_estimated() {
        let m = Metrics::new();
        for i in 0..1000u32 {
            m.record_limited_client(&i);
            m.record_limited_client(&i);
        }
        let n = m.take_limited_clients();
        assert!((950..=1050).contains(&n), "{n}");
        assert_eq!(m.take_limited_clients(), 0);
    }
}
