//! Answers Aegis writes itself instead of relaying a backend's response: the [`Refusal`]s it
//! decides (§3, §5: 405, 400, 431, 413, 429, 503) and the [`UpstreamFailure`]s it reports (502,
//! 504). One [`LocalReply`] value carries the reason to the response, the access log and the
//! metrics.
//!
//! A leaf module: the proxy writes these answers, the metrics count them, and neither has to know
//! the other.

use bytes::Bytes;

/// A request Aegis refused by its own decision, before or instead of forwarding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    MethodNotAllowed,
    AmbiguousRequest,
    InvalidPath,
    InvalidHost,
    HeaderTooLarge,
    BodyTooLarge,
    RateLimited {
        retry_after: u64,
    },
    NoHealthyBackend {
        retry_after: u64,
    },
    /// A request Pingora's parser or body reader refused.
    BadRequest,
    /// Aegis itself ran short of descriptors, buffers or ports to reach a backend: not the
    /// backend's fault, and the client may retry shortly.
    Overloaded,
    /// A plain listener with `redirect_to_https` sends every request to HTTPS (308, §11.1).
    RedirectToHttps,
    /// No route matches the request and the configuration has no default pool (404, §17).
    NoRoute,
}

/// `Retry-After` of an overloaded answer, in seconds.
const OVERLOADED_RETRY_AFTER: u64 = 1;

/// A backend could not give a usable answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamFailure {
    /// Unreachable, or it failed mid-response.
    BadGateway,
    /// It did not answer in time.
    GatewayTimeout,
}

/// Why Aegis answered a request itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalReply {
    Refused(Refusal),
    UpstreamFailed(UpstreamFailure),
}

impl From<Refusal> for LocalReply {
    fn from(refusal: Refusal) -> Self {
        LocalReply::Refused(refusal)
    }
}

impl From<UpstreamFailure> for LocalReply {
    fn from(failure: UpstreamFailure) -> Self {
        LocalReply::UpstreamFailed(failure)
    }
}

/// Everything one kind of reply says about itself, in one table row.
struct Kind {
    status: u16,
    reason: &'static str,
    /// The whole JSON body (the rate-limited one also carries `retry_after`).
    body: &'static str,
}

impl LocalReply {
    /// How many kinds of reply there are (for per-kind counters).
    pub const KINDS: usize = 14;

    /// Every kind, in [`LocalReply::index`] order (retry values are placeholders).
    pub const ALL: [LocalReply; LocalReply::KINDS] = [
        LocalReply::Refused(Refusal::MethodNotAllowed),
        LocalReply::Refused(Refusal::AmbiguousRequest),
        LocalReply::Refused(Refusal::InvalidPath),
        LocalReply::Refused(Refusal::InvalidHost),
        LocalReply::Refused(Refusal::HeaderTooLarge),
        LocalReply::Refused(Refusal::BodyTooLarge),
        LocalReply::Refused(Refusal::RateLimited { retry_after: 0 }),
        LocalReply::Refused(Refusal::NoHealthyBackend { retry_after: 0 }),
        LocalReply::Refused(Refusal::BadRequest),
        LocalReply::UpstreamFailed(UpstreamFailure::BadGateway),
        LocalReply::UpstreamFailed(UpstreamFailure::GatewayTimeout),
        LocalReply::Refused(Refusal::Overloaded),
        LocalReply::Refused(Refusal::RedirectToHttps),
        LocalReply::Refused(Refusal::NoRoute),
    ];

    /// Position of this kind in [`LocalReply::ALL`].
    pub fn index(self) -> usize {
        match self {
            LocalReply::Refused(refusal) => match refusal {
                Refusal::MethodNotAllowed => 0,
                Refusal::AmbiguousRequest => 1,
                Refusal::InvalidPath => 2,
                Refusal::InvalidHost => 3,
                Refusal::HeaderTooLarge => 4,
                Refusal::BodyTooLarge => 5,
                Refusal::RateLimited { .. } => 6,
                Refusal::NoHealthyBackend { .. } => 7,
                Refusal::BadRequest => 8,
                Refusal::Overloaded => 11,
                Refusal::RedirectToHttps => 12,
                Refusal::NoRoute => 13,
            },
            LocalReply::UpstreamFailed(UpstreamFailure::BadGateway) => 9,
            LocalReply::UpstreamFailed(UpstreamFailure::GatewayTimeout) => 10,
        }
    }

    /// Status, short name (for logs and metrics labels) and JSON body of this kind.
    fn kind(self) -> Kind {
        let (status, reason, body) = match self {
            LocalReply::Refused(refusal) => match refusal {
                Refusal::MethodNotAllowed => (
                    405,
                    "method_not_allowed",
                    r#"{"error":"method not allowed"}"#,
                ),
                Refusal::AmbiguousRequest => {
                    (400, "ambiguous_request", r#"{"error":"ambiguous request"}"#)
                }
                Refusal::InvalidPath => (400, "invalid_path", r#"{"error":"invalid path"}"#),
                Refusal::InvalidHost => (400, "invalid_host", r#"{"error":"invalid host"}"#),
                Refusal::HeaderTooLarge => (
                    431,
                    "header_too_large",
                    r#"{"error":"request header too large"}"#,
                ),
                Refusal::BodyTooLarge => (
                    413,
                    "body_too_large",
                    r#"{"error":"request body too large"}"#,
                ),
                Refusal::RateLimited { .. } => {
                    (429, "rate_limited", r#"{"error":"rate limit exceeded"}"#)
                }
                Refusal::NoHealthyBackend { .. } => (
                    503,
                    "no_healthy_backend",
                    r#"{"error":"no healthy backend"}"#,
                ),
                Refusal::BadRequest => (400, "bad_request", r#"{"error":"bad request"}"#),
                Refusal::Overloaded => (503, "overloaded", r#"{"error":"overloaded"}"#),
                Refusal::RedirectToHttps => {
                    (308, "redirect_to_https", r#"{"error":"https required"}"#)
                }
                Refusal::NoRoute => (404, "no_route", r#"{"error":"no route"}"#),
            },
            LocalReply::UpstreamFailed(UpstreamFailure::BadGateway) => {
                (502, "bad_gateway", r#"{"error":"bad gateway"}"#)
            }
            LocalReply::UpstreamFailed(UpstreamFailure::GatewayTimeout) => {
                (504, "gateway_timeout", r#"{"error":"gateway timeout"}"#)
            }
        };
        Kind {
            status,
            reason,
            body,
        }
    }

    pub fn status(self) -> u16 {
        self.kind().status
    }

    /// A short name for logs and metrics labels.
    pub fn reason(self) -> &'static str {
        self.kind().reason
    }

    /// Seconds after which the client may try again (the `Retry-After` header), when it is told.
    pub fn retry_after(self) -> Option<u64> {
        match self {
            LocalReply::Refused(
                Refusal::RateLimited { retry_after } | Refusal::NoHealthyBackend { retry_after },
            ) => Some(retry_after),
            LocalReply::Refused(Refusal::Overloaded) => Some(OVERLOADED_RETRY_AFTER),
            _ => None,
        }
    }

    /// The JSON body: `{"error":"…"}`, with `retry_after` when the client is rate limited.
    pub fn body(self) -> Bytes {
        match self {
            LocalReply::Refused(Refusal::RateLimited { retry_after }) => Bytes::from(format!(
                r#"{{"error":"rate limit exceeded","retry_after":{retry_after}}}"#
            )),
            _ => Bytes::from_static(self.kind().body.as_bytes()),
        }
    }

    /// SECURITY: after a framing problem (smuggling attempt, oversized body) the rest of the
    /// connection's bytes cannot be trusted to start a new request, so the connection is closed.
    pub fn closes_connection(self) -> bool {
        matches!(
            self,
            LocalReply::Refused(
                Refusal::AmbiguousRequest
                    | Refusal::BodyTooLarge
                    | Refusal::HeaderTooLarge
                    | Refusal::BadRequest
            )
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_indexed_in_order() {
        for (i, reply) in LocalReply::ALL.iter().enumerate() {
            assert_eq!(reply.index(), i);
        }
    }

    #[test]
    fn refusals_and_upstream_failures_have_their_statuses() {
        for reply in LocalReply::ALL {
            let upstream = matches!(reply, LocalReply::UpstreamFailed(_));
            assert_eq!(
                upstream,
                [502, 504].contains(&reply.status()),
                "{reply:?} is {}",
                reply.status()
            );
        }
    }

    #[test]
    fn bodies_are_the_documented_json() {
        for reply in LocalReply::ALL {
            let body: serde_json::Value = serde_json::from_slice(&reply.body()).unwrap();
            assert!(body["error"].is_string(), "{reply:?}");
        }
        assert_eq!(
            &LocalReply::from(Refusal::RateLimited { retry_after: 7 }).body()[..],
            br#"{"error":"rate limit exceeded","retry_after":7}"#
        );
        assert_eq!(
            &LocalReply::from(UpstreamFailure::GatewayTimeout).body()[..],
            br#"{"error":"gateway timeout"}"#
        );
    }
}
