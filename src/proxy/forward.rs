//! What the backend receives (§3.7), and how upstream errors map to client answers.

use super::trace::{TRACEPARENT, TRACESTATE};
use crate::balance::Backend;
use crate::config::BackendProtocol;
use crate::reply::{LocalReply, Refusal, UpstreamFailure};
use crate::security::headers::{lists_token, strip_hop_by_hop, Direction, X_REQUEST_ID};
use http::{HeaderName, HeaderValue};
use pingora_core::{Error, ErrorSource, ErrorType, Result};
use pingora_http::RequestHeader;
use pingora_proxy::Session;
use std::net::IpAddr;

/// `X-Forwarded-For`, `X-Forwarded-Proto`.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// Rewrites the request going upstream: hop-by-hop headers out, forwarding headers set, `Host`
/// set to the backend's, `traceparent` set to Aegis's hop (§14.3; `tracestate` dropped with a
/// trace Aegis restarted, whose state belongs to no one). A WebSocket handshake (`websocket`)
/// keeps its `Upgrade` (§11.4).
///
/// Like the response (`finish_backend_response`), the headers are rewritten as a plain
/// `http::HeaderMap` rather than through Pingora's case-preserving header API, which costs
/// about 2,000 instructions per inserted header; header names therefore reach the backend in
/// lower case (the common ones in title case), as they do from HAProxy, Envoy and any HTTP/2
/// hop. The request target is kept byte for byte.
pub fn prepare_upstream_request(
    session: &Session,
    upstream: &mut RequestHeader,
    backend: &Backend,
    request_id: &HeaderValue,
    traceparent: &HeaderValue,
    websocket: bool,
) -> Result<()> {
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
    // The target as received, when the URI would not reproduce it (e.g. bytes that are not
    // UTF-8): it is restored after the rewrite.
    let raw_target = {
        let from_uri = upstream
            .uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .as_bytes();
        (upstream.raw_path() != from_uri).then(|| upstream.raw_path().to_vec())
    };
    let client = session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip());
    let tls = session
        .digest()
        .and_then(|d| d.ssl_digest.as_ref())
        .is_some();

    let empty = RequestHeader::from(http::Request::new(()).into_parts().0);
    let mut parts: http::request::Parts = std::mem::replace(upstream, empty).into();
    let headers = &mut parts.headers;
    // gRPC asks for trailers with `TE: trailers`, the one TE value HTTP/2 allows (RFC 9113
    // §8.2.2); it goes on to an HTTP/2 backend, never to an HTTP/1.1 one.
    let trailers = backend.spec.protocol != BackendProtocol::Http1
        && lists_token(headers, http::header::TE, "trailers");
    strip_hop_by_hop(headers, Direction::Request);
    if trailers {
        headers.insert(http::header::TE, HeaderValue::from_static("trailers"));
    }
    if websocket {
        // §11.4: a WebSocket handshake keeps `Upgrade: websocket` and `Connection: upgrade`,
        // and nothing else hop-by-hop (never `Upgrade: h2c`, `super::tunnel`).
        super::tunnel::set_upgrade_headers(headers);
    }
    if session.req_header().version == http::Version::HTTP_2 {
        // SECURITY: smuggling by downgrade — an HTTP/2 body's length is where its DATA frames
        // end, so the backend gets it chunked (Pingora frames it once no Content-Length is
        // left), never a client-declared Content-Length that the stream might not match.
        headers.remove(http::header::CONTENT_LENGTH);
        // RFC 9113 §8.2.3: a Cookie split into several HTTP/2 fields MUST reach an HTTP/1.1 hop
        // as one, joined with "; ".
        join_cookies(headers);
    }
    // Repeated identical Content-Length headers, or a list of one repeated value (the only
    // repeats validation lets through, RFC 9110 §8.6), are forwarded as one plain number, so
    // the backend never has to resolve a repeat.
    let mut lengths = headers.get_all(http::header::CONTENT_LENGTH).iter();
    if let Some(first) = lengths.next().cloned() {
        let repeated = lengths.next().is_some();
        let item = first
            .as_bytes()
            .split(|&b| b == b',')
            .next()
            .unwrap_or_default();
        if repeated || item.len() != first.len() {
            let item = item.trim_ascii();
            headers.insert(
                http::header::CONTENT_LENGTH,
                HeaderValue::from_bytes(item).unwrap_or(first),
            );
        }
    }
    // The trace went on when the incoming `traceparent` is the one continued (same trace id).
    let continued = headers
        .get(TRACEPARENT)
        .is_some_and(|v| v.as_bytes().get(3..35) == traceparent.as_bytes().get(3..35));
    if !continued {
        headers.remove(TRACESTATE);
    }
    headers.reserve(5);
    // SECURITY: X-Forwarded-For is replaced, never appended to: a client-sent value would let
    // anyone claim any address to the backend (and to IP-based rules behind it).
    match client {
        Some(ip) => {
            headers.insert(X_FORWARDED_FOR, client_ip_value(ip));
        }
        None => {
            headers.remove(X_FORWARDED_FOR);
        }
    }
    let proto = if tls { "https" } else { "http" };
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    // SECURITY: a client-chosen request id could collide with or forge another request's trail.
    headers.insert(X_REQUEST_ID, request_id.clone());
    headers.insert(http::header::HOST, backend.host_value.clone());
    headers.insert(TRACEPARENT, traceparent.clone());
    *upstream = RequestHeader::from(parts);
    if let Some(raw) = raw_target {
        upstream.set_raw_path(&raw)?;
    }
    Ok(())
}

/// Joins the Cookie fields of an HTTP/2 request into one (RFC 9113 §8.2.3).
fn join_cookies(headers: &mut http::HeaderMap) {
    let cookies = headers.get_all(http::header::COOKIE);
    if cookies.iter().nth(1).is_none() {
        return;
    }
    let joined = cookies
        .iter()
        .map(HeaderValue::as_bytes)
        .collect::<Vec<_>>()
        .join(&b"; "[..]);
    if let Ok(value) = HeaderValue::from_bytes(&joined) {
        headers.insert(http::header::COOKIE, value);
    }
}

/// The client's address as a header value, remembered per thread: a keep-alive client sends
/// many requests in a row, and a cached value is shared instead of formatted and copied again.
fn client_ip_value(ip: IpAddr) -> HeaderValue {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(IpAddr, HeaderValue)>> =
            const { std::cell::RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        match &*last {
            Some((cached, value)) if *cached == ip => value.clone(),
            _ => {
                let value = HeaderValue::from_str(&ip.to_string())
                    .expect("an IP address is a valid header value");
                *last = Some((ip, value.clone()));
                value
            }
        }
    })
}

/// The answer for a request that failed without a refusal of Aegis's own; `None` when the client
/// is gone and there is nobody to answer.
pub fn reply_for(e: &Error) -> Option<LocalReply> {
    let reply: LocalReply = match (e.esource(), e.etype()) {
        (_, ErrorType::HTTPStatus(503)) => Refusal::NoHealthyBackend { retry_after: 1 }.into(),
        (_, ErrorType::HTTPStatus(413)) => Refusal::BodyTooLarge.into(),
        (_, ErrorType::HTTPStatus(code)) if *code < 500 => Refusal::BadRequest.into(),
        (
            ErrorSource::Upstream,
            ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout,
        ) => UpstreamFailure::GatewayTimeout.into(),
        (ErrorSource::Upstream, _) => UpstreamFailure::BadGateway.into(),
        (
            ErrorSource::Downstream,
            ErrorType::ReadTimedout
            | ErrorType::WriteTimedout
            | ErrorType::WriteError
            | ErrorType::ReadError
            | ErrorType::ConnectionClosed,
        ) => return None,
        (ErrorSource::Downstream, _) => Refusal::BadRequest.into(),
        _ => UpstreamFailure::BadGateway.into(),
    };
    Some(reply)
}
