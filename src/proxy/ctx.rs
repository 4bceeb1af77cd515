//! Per-request state carried through the proxy phases.

use crate::balance::{Backend, UpstreamPool};
use crate::breaker::{Outcome, Ticket};
use crate::config::Config;
use crate::lifecycle::InFlight;
use crate::reply::LocalReply;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One try of the request on one backend.
#[derive(Clone)]
pub struct Attempt {
    /// The backend chosen; held to the end of the attempt even if a reload removes it.
    pub backend: Arc<Backend>,
    /// The breaker's permission, handed back with the outcome.
    pub ticket: Ticket,
    /// How the attempt ended, once recorded in the breaker (recorded once).
    pub outcome: Option<Outcome>,
}

/// What one request has done so far.
pub struct RequestCtx {
    /// The configuration this request runs under, loaded once when it starts: a reload never
    /// shows a request half of one configuration and half of another.
    pub config: Arc<Config>,
    /// The fresh `X-Request-ID` (UUIDv4) sent upstream, returned to the client and logged; a
    /// header value so that both headers share one allocation.
    pub request_id: http::HeaderValue,
    pub started: Instant,
    /// The `traceparent` sent upstream (§14.3), built once for the first attempt; its trace id
    /// goes to the access log.
    pub traceparent: Option<http::HeaderValue>,
    /// The current attempt, until it ends.
    pub attempt: Option<Attempt>,
    /// The last backend tried (for the access log).
    pub last_backend: Option<Arc<Backend>>,
    /// Serials of the backends already tried (for retries on connect failure); inline, no
    /// allocation for the first four.
    pub tried: smallvec::SmallVec<[u64; 4]>,
    /// Connect failures so far.
    pub connect_failures: u32,
    pub upstream_sent: Option<Instant>,
    pub upstream_latency: Option<Duration>,
    /// Set when Aegis answers the request itself.
    pub reply: Option<LocalReply>,
    /// Request body bytes seen so far (for `server.max_body_bytes`).
    pub body_bytes: u64,
    /// The request is a WebSocket handshake forwarded as one (§11.4, `tunnel`).
    pub websocket: bool,
    /// Counts the open tunnel after the backend's 101, until the request ends.
    pub tunnel: Option<crate::metrics::TunnelGuard>,
    /// The route the request took (§17), when the config has `routes` and one matched.
    pub route: Option<crate::route::RouteId>,
    /// The pool the request goes to when it is not the default pool (set by routing only, so
    /// a config without `routes` never touches it).
    pub pool: Option<Arc<UpstreamPool>>,
    /// Keeps the request counted as in flight until the context is dropped.
    pub _in_flight: InFlight,
}

impl RequestCtx {
    pub fn new(in_flight: InFlight, config: Arc<Config>) -> Self {
        RequestCtx {
            config,
            request_id: http::HeaderValue::from_static(""),
            started: Instant::now(),
            traceparent: None,
            attempt: None,
            last_backend: None,
            tried: smallvec::SmallVec::new(),
            connect_failures: 0,
            upstream_sent: None,
            upstream_latency: None,
            reply: None,
            body_bytes: 0,
            websocket: false,
            tunnel: None,
            route: None,
            pool: None,
            _in_flight: in_flight,
        }
    }
}

/// A fresh `X-Request-ID` (UUIDv4), as a header value.
pub fn new_request_id() -> http::HeaderValue {
    let mut id = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut id);
    http::HeaderValue::from_str(id).expect("a UUID is a valid header value")
}
