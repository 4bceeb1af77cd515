//! Responses Aegis writes itself (§3): JSON bodies, the security headers of §6, and nothing about
//! internals.

use crate::security::headers::harden_response;
use bytes::Bytes;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

/// Why Aegis answered a request itself. One value carries the reason to the response, the
/// access log and the metrics.
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
    BadGateway,
    GatewayTimeout,
    /// A request Pingora's parser or body reader refused.
    BadRequest,
}

impl Refusal {
    /// How many kinds of refusal there are (for per-kind counters).
    pub const KINDS: usize = 11;

    /// Every kind, in [`Refusal::index`] order (retry values are placeholders).
    pub const ALL: [Refusal; Refusal::KINDS] = [
        Refusal::MethodNotAllowed,
        Refusal::AmbiguousRequest,
        Refusal::InvalidPath,
        Refusal::InvalidHost,
        Refusal::HeaderTooLarge,
        Refusal::BodyTooLarge,
        Refusal::RateLimited { retry_after: 0 },
        Refusal::NoHealthyBackend { retry_after: 0 },
        Refusal::BadGateway,
        Refusal::GatewayTimeout,
        Refusal::BadRequest,
    ];

    /// Position of this kind in [`Refusal::ALL`].
    pub fn index(self) -> usize {
        match self {
            Refusal::MethodNotAllowed => 0,
            Refusal::AmbiguousRequest => 1,
            Refusal::InvalidPath => 2,
            Refusal::InvalidHost => 3,
            Refusal::HeaderTooLarge => 4,
            Refusal::BodyTooLarge => 5,
            Refusal::RateLimited { .. } => 6,
            Refusal::NoHealthyBackend { .. } => 7,
            Refusal::BadGateway => 8,
            Refusal::GatewayTimeout => 9,
            Refusal::BadRequest => 10,
        }
    }

    pub fn status(self) -> u16 {
        match self {
            Refusal::MethodNotAllowed => 405,
            Refusal::AmbiguousRequest
            | Refusal::InvalidPath
            | Refusal::InvalidHost
            | Refusal::BadRequest => 400,
            Refusal::HeaderTooLarge => 431,
            Refusal::BodyTooLarge => 413,
            Refusal::RateLimited { .. } => 429,
            Refusal::NoHealthyBackend { .. } => 503,
            Refusal::BadGateway => 502,
            Refusal::GatewayTimeout => 504,
        }
    }

    /// A short name for logs and metrics labels.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::MethodNotAllowed => "method_not_allowed",
            Refusal::AmbiguousRequest => "ambiguous_request",
            Refusal::InvalidPath => "invalid_path",
            Refusal::InvalidHost => "invalid_host",
            Refusal::HeaderTooLarge => "header_too_large",
            Refusal::BodyTooLarge => "body_too_large",
            Refusal::RateLimited { .. } => "rate_limited",
            Refusal::NoHealthyBackend { .. } => "no_healthy_backend",
            Refusal::BadGateway => "bad_gateway",
            Refusal::GatewayTimeout => "gateway_timeout",
            Refusal::BadRequest => "bad_request",
        }
    }

    fn body(self) -> Bytes {
        let text: &'static str = match self {
            Refusal::MethodNotAllowed => r#"{"error":"method not allowed"}"#,
            Refusal::AmbiguousRequest => r#"{"error":"ambiguous request"}"#,
            Refusal::InvalidPath => r#"{"error":"invalid path"}"#,
            Refusal::InvalidHost => r#"{"error":"invalid host"}"#,
            Refusal::HeaderTooLarge => r#"{"error":"request header too large"}"#,
            Refusal::BodyTooLarge => r#"{"error":"request body too large"}"#,
            Refusal::RateLimited { retry_after } => {
                return Bytes::from(format!(
                    r#"{{"error":"rate limit exceeded","retry_after":{retry_after}}}"#
                ))
            }
            Refusal::NoHealthyBackend { .. } => r#"{"error":"no healthy backend"}"#,
            Refusal::BadGateway => r#"{"error":"bad gateway"}"#,
            Refusal::GatewayTimeout => r#"{"error":"gateway timeout"}"#,
            Refusal::BadRequest => r#"{"error":"bad request"}"#,
        };
        Bytes::from_static(text.as_bytes())
    }

    /// SECURITY: after a framing problem (smuggling attempt, oversized body) the rest of the
    /// connection's bytes cannot be trusted to start a new request, so the connection is closed.
    pub fn closes_connection(self) -> bool {
        matches!(
            self,
            Refusal::AmbiguousRequest
                | Refusal::BodyTooLarge
                | Refusal::HeaderTooLarge
                | Refusal::BadRequest
        )
    }
}

/// Writes the JSON answer for `refusal`. `allow` is the `Allow` header value for 405s.
pub async fn send(
    session: &mut Session,
    refusal: Refusal,
    request_id: &http::HeaderValue,
    allow: &str,
) -> pingora::Result<()> {
    let body = refusal.body();
    let mut resp = ResponseHeader::build(refusal.status(), Some(10))?;
    resp.insert_header("Content-Type", "application/json")?;
    resp.insert_header("Content-Length", body.len())?;
    resp.insert_header("Cache-Control", "no-store")?;
    if !request_id.is_empty() {
        resp.insert_header("X-Request-ID", request_id.clone())?;
    }
    match refusal {
        Refusal::RateLimited { retry_after } | Refusal::NoHealthyBackend { retry_after } => {
            resp.insert_header("Retry-After", retry_after)?;
        }
        Refusal::MethodNotAllowed => resp.insert_header("Allow", allow)?,
        _ => {}
    }
    harden_response(&mut resp)?;
    if refusal.closes_connection() {
        resp.insert_header("Connection", "close")?;
        session.set_keepalive(None);
    }
    session.write_response_header(Box::new(resp), false).await?;
    session.write_response_body(Some(body), true).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_indexed_in_order() {
        for (i, refusal) in Refusal::ALL.iter().enumerate() {
            assert_eq!(refusal.index(), i);
        }
    }

    #[test]
    fn bodies_are_the_documented_json() {
        for refusal in Refusal::ALL {
            let body: serde_json::Value = serde_json::from_slice(&refusal.body()).unwrap();
            assert!(body["error"].is_string(), "{refusal:?}");
        }
        assert_eq!(
            &Refusal::RateLimited { retry_after: 7 }.body()[..],
            br#"{"error":"rate limit exceeded","retry_after":7}"#
        );
    }
}
