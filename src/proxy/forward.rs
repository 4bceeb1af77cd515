//! What the backend receives (§3.7), and how upstream errors map to client answers.

use super::respond::Refusal;
use crate::security::headers::strip_hop_by_hop_request;
use pingora_core::{Error, ErrorSource, ErrorType, Result};
use pingora_http::RequestHeader;
use pingora_proxy::Session;

/// Rewrites the request going upstream: hop-by-hop headers out, forwarding headers set, `Host`
/// set to the backend's.
pub fn prepare_upstream_request(
    session: &Session,
    upstream: &mut RequestHeader,
    host: &http::HeaderValue,
    request_id: &http::HeaderValue,
) -> Result<()> {
    strip_hop_by_hop_request(upstream);
    // Repeated identical Content-Length headers (the only repeats validation lets through) are
    // forwarded as one, so the backend never has to resolve a repeat.
    let mut lengths = upstream
        .headers
        .get_all(http::header::CONTENT_LENGTH)
        .iter();
    if let (Some(first), Some(_)) = (lengths.next().cloned(), lengths.next()) {
        upstream.remove_header(&http::header::CONTENT_LENGTH);
        upstream.insert_header(http::header::CONTENT_LENGTH, first)?;
    }
    // SECURITY: an absolute-form target (`GET http://other.example/ HTTP/1.1`) is forwarded in
    // origin form, so the backend cannot be steered to a different authority than `Host`.
    if !upstream.raw_path().starts_with(b"/") {
        let target = std::str::from_utf8(upstream.raw_path())
            .ok()
            .and_then(|t| t.parse::<http::Uri>().ok());
        let origin_form = target
            .as_ref()
            .and_then(|t| t.path_and_query())
            .map_or("/", |pq| pq.as_str())
            .parse::<http::Uri>()
            .map_err(|e| Error::because(ErrorType::InvalidHTTPHeader, "absolute-form target", e))?;
        upstream.set_uri(origin_form);
    }
    // SECURITY: X-Forwarded-For is replaced, never appended to: a client-sent value would let
    // anyone claim any address to the backend (and to IP-based rules behind it).
    match session.client_addr().and_then(|a| a.as_inet()) {
        Some(addr) => upstream.insert_header("X-Forwarded-For", addr.ip().to_string())?,
        None => {
            upstream.remove_header("X-Forwarded-For");
        }
    }
    let proto = if session
        .digest()
        .and_then(|d| d.ssl_digest.as_ref())
        .is_some()
    {
        "https"
    } else {
        "http"
    };
    upstream.insert_header("X-Forwarded-Proto", http::HeaderValue::from_static(proto))?;
    // SECURITY: a client-chosen request id could collide with or forge another request's trail.
    upstream.insert_header("X-Request-ID", request_id.clone())?;
    upstream.insert_header("Host", host.clone())?;
    Ok(())
}

/// The answer for a request that failed without a refusal of Aegis's own.
pub fn refusal_for(e: &Error) -> Option<Refusal> {
    match (e.esource(), e.etype()) {
        (_, ErrorType::HTTPStatus(503)) => Some(Refusal::NoHealthyBackend { retry_after: 1 }),
        (_, ErrorType::HTTPStatus(413)) => Some(Refusal::BodyTooLarge),
        (_, ErrorType::HTTPStatus(code)) if *code < 500 => Some(Refusal::BadRequest),
        (
            ErrorSource::Upstream,
            ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout,
        ) => Some(Refusal::GatewayTimeout),
        (ErrorSource::Upstream, _) => Some(Refusal::BadGateway),
        (
            ErrorSource::Downstream,
            ErrorType::ReadTimedout
            | ErrorType::WriteTimedout
            | ErrorType::WriteError
            | ErrorType::ReadError
            | ErrorType::ConnectionClosed,
        ) => None,
        (ErrorSource::Downstream, _) => Some(Refusal::BadRequest),
        _ => Some(Refusal::BadGateway),
    }
}
