//! One backend: [`BackendState`], what Aegis has learnt about it (health, breaker, warm-up,
//! counters), which a reload keeps by URL, and [`Backend`], the backend as one configuration
//! describes it (weight, pinned address, timeouts) around that state.

use super::warmup::{self, WarmUp};
use crate::breaker::{BreakerCell, BreakerState};
use crate::config::{BackendProtocol, BackendSpec, BreakerSettings, Config};
use crate::metrics::BackendMetrics;
use pingora::upstreams::peer::HttpPeer;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

/// What Aegis knows about a backend; outlives configurations (kept by URL on reload).
pub struct BackendState {
    /// Unique for the life of the process: a backend removed and added again is a new one.
    pub serial: u64,
    healthy: AtomicBool,
    /// Drained by an operator (§12.2): no new request; in-flight ones finish. Kept by a reload.
    pub(super) drained: AtomicBool,
    /// Added by a reload and not yet probed: no traffic until its first passing probe.
    joining: AtomicBool,
    pub(super) breaker: BreakerCell,
    pub(super) warmup: Mutex<WarmUp>,
    pub(super) warm_level: AtomicU8,
    /// Requests, failures, in-flight count and latency of this backend.
    pub metrics: BackendMetrics,
}

impl BackendState {
    /// A backend present at startup: healthy at full weight (no warm-up at startup).
    pub(super) fn at_startup(serial: u64, breaker: &BreakerSettings) -> Self {
        BackendState {
            serial,
            healthy: AtomicBool::new(true),
            drained: AtomicBool::new(false),
            joining: AtomicBool::new(false),
            breaker: BreakerCell::new(breaker),
            warmup: Mutex::new(WarmUp::full()),
            warm_level: AtomicU8::new(warmup::FULL),
            metrics: BackendMetrics::default(),
        }
    }

    /// A backend added by a reload: it waits for its first passing probe, then warms up from
    /// 25 % (§12.1).
    pub(super) fn joining(serial: u64, breaker: &BreakerSettings) -> Self {
        let mut warm = WarmUp::full();
        warm.restart();
        BackendState {
            healthy: AtomicBool::new(false),
            joining: AtomicBool::new(true),
            warmup: Mutex::new(warm),
            warm_level: AtomicU8::new(warm.level()),
            ..BackendState::at_startup(serial, breaker)
        }
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    /// Sets health; returns whether it changed.
    pub(super) fn set_healthy(&self, healthy: bool) -> bool {
        self.joining.store(false, Ordering::Release);
        self.healthy.swap(healthy, Ordering::AcqRel) != healthy
    }

    /// True while an operator has drained the backend (§12.2).
    pub fn is_drained(&self) -> bool {
        self.drained.load(Ordering::Acquire)
    }

    /// True until a backend added by a reload has had its first passing probe.
    pub fn is_joining(&self) -> bool {
        self.joining.load(Ordering::Acquire)
    }

    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    /// Warm-up level in percent of the weight (100 when not warming up).
    pub fn warmup_percent(&self) -> u8 {
        self.warm_level.load(Ordering::Acquire) * 25
    }

    pub(super) fn restart_warmup(&self) {
        let mut warmup = self.warmup.lock().unwrap_or_else(|p| p.into_inner());
        warmup.restart();
        self.warm_level.store(warmup.level(), Ordering::Release);
    }

    pub(super) fn usable(&self) -> bool {
        self.is_healthy() && !self.is_drained() && self.breaker.state() != BreakerState::Open
    }
}

/// A backend as the current configuration describes it, around its lasting state.
pub struct Backend {
    pub spec: BackendSpec,
    /// The pinned address (§2.1).
    pub addr: SocketAddr,
    /// The `Host` header value sent upstream, built once.
    pub host_value: http::HeaderValue,
    /// Prebuilt peer (address, TLS, timeouts), cloned per request.
    peer: HttpPeer,
    pub state: Arc<BackendState>,
}

impl std::ops::Deref for Backend {
    type Target = BackendState;

    fn deref(&self) -> &BackendState {
        &self.state
    }
}

impl Backend {
    pub(super) fn new(spec: &BackendSpec, config: &Config, state: Arc<BackendState>) -> Self {
        let addr = spec
            .addr
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], spec.port)));
        let sni = if spec.tls {
            spec.host.clone()
        } else {
            String::new()
        };
        let mut peer = HttpPeer::new(addr, spec.tls, sni);
        // §11.3: HTTP/2 only, by ALPN over TLS (h2) or with prior knowledge (h2c); Pingora
        // multiplexes the streams of many requests over its pooled connections.
        if spec.protocol != BackendProtocol::Http1 {
            peer.options.set_http_version(2, 2);
        }
        if spec.tls {
            peer.options.ca = config.upstream.ca_pem.as_deref().map(ca_list);
        }
        peer.options.connection_timeout = Some(config.upstream.connect_timeout);
        peer.options.total_connection_timeout = Some(config.upstream.connect_timeout);
        peer.options.read_timeout = Some(config.upstream.response_header_timeout);
        peer.options.write_timeout = Some(config.server.write_timeout);
        // No idle timeout on pooled connections: Pingora notices at once when a backend closes
        // one, and a timer per returned connection costs ~2,000 instructions per request
        // (docs/performance.md). The pool's size bounds what is held.
        Backend {
            host_value: http::HeaderValue::from_str(&spec.host_header)
                .expect("a validated URL's host[:port] is a valid header value"),
            spec: spec.clone(),
            addr,
            peer,
            state,
        }
    }

    /// The identifier of `/status` and `/backends/{id}/…`: the URL with `://` written `-`
    /// (`http-10.0.0.1:8080`), so it is stable across reloads and safe in a path.
    pub fn id(&self) -> String {
        backend_id(&self.spec.url)
    }

    /// The weight the schedule currently uses, in the config's units (may be fractional).
    pub fn effective_weight(&self) -> f64 {
        self.spec.weight as f64 * self.warmup_percent() as f64 / 100.0
    }

    /// A fresh peer for one request.
    pub fn peer(&self) -> Box<HttpPeer> {
        Box::new(self.peer.clone())
    }

    /// The peer for this backend's health probes: the same address, TLS, CA and protocol as
    /// its requests (§11.3), with `timeout` for every step.
    pub fn probe_peer(&self, timeout: std::time::Duration) -> HttpPeer {
        let mut peer = self.peer.clone();
        peer.options.connection_timeout = Some(timeout);
        peer.options.total_connection_timeout = Some(timeout);
        peer.options.read_timeout = Some(timeout);
        peer
    }
}

/// `upstream.ca_file`'s certificates (checked PEM) as Pingora's per-peer CA list.
fn ca_list(pem: &[u8]) -> std::sync::Arc<pingora::protocols::tls::CaType> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let list: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .map(|der| {
            pingora::utils::tls::WrappedX509::new(
                der.as_ref().to_vec(),
                pingora::utils::tls::parse_x509,
            )
        })
        .collect();
    list.into()
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
