//! Per-request state carried through the proxy phases.

use super::respond::Refusal;
use crate::breaker::Ticket;
use crate::lifecycle::InFlight;
use std::time::{Duration, Instant};

/// What one request has done so far.
pub struct RequestCtx {
    /// The fresh `X-Request-ID` (UUIDv4) sent upstream, returned to the client and logged; a
    /// header value so that both headers share one allocation.
    pub request_id: http::HeaderValue,
    pub started: Instant,
    /// The backend of the current attempt, with its breaker ticket.
    pub backend: Option<(usize, Ticket)>,
    /// The last backend tried (for the access log).
    pub last_backend: Option<usize>,
    /// The current attempt's recorded outcome: `Some(failed)` once recorded in the breaker.
    pub outcome: Option<bool>,
    /// Backends already tried (for retries on connect failure); inline, no allocation for the
    /// first four.
    pub tried: smallvec::SmallVec<[usize; 4]>,
    /// Connect failures so far.
    pub connect_failures: u32,
    pub upstream_sent: Option<Instant>,
    pub upstream_latency: Option<Duration>,
    /// Set when Aegis answers the request itself.
    pub refusal: Option<Refusal>,
    /// Request body bytes seen so far (for `server.max_body_bytes`).
    pub body_bytes: u64,
    /// Keeps the request counted as in flight until the context is dropped.
    pub _in_flight: InFlight,
}

impl RequestCtx {
    pub fn new(in_flight: InFlight) -> Self {
        RequestCtx {
            request_id: http::HeaderValue::from_static(""),
            started: Instant::now(),
            backend: None,
            last_backend: None,
            outcome: None,
            tried: smallvec::SmallVec::new(),
            connect_failures: 0,
            upstream_sent: None,
            upstream_latency: None,
            refusal: None,
            body_bytes: 0,
            _in_flight: in_flight,
        }
    }
}
