//! Request validation (§3.1–§3.5) as the proxy runs it: [`check`] reads what it needs from
//! Pingora's session and asks the pure validators in `security::request`, under the request's
//! `server` settings.

use crate::config::ServerSettings;
use crate::reply::Refusal;
use crate::security::request::{check_framing, check_path, head_size, host_allowed, Violation};
use http::{Method, Version};
use pingora_core::protocols::http::ServerSession;
use pingora_proxy::Session;

/// The first rule the request breaks, in §3's order, or `None` when it may be forwarded.
/// `max_body_bytes` is `server.max_body_bytes`, or the request's route's own (§17).
pub fn check(rules: &ServerSettings, max_body_bytes: u64, session: &Session) -> Option<Refusal> {
    let req = session.req_header();
    // SECURITY: CONNECT would turn Aegis into an open tunnel and TRACE reflects request
    // headers (cross-site tracing); both are refused whatever the config lists.
    if req.method == Method::CONNECT
        || req.method == Method::TRACE
        || !rules.allowed_methods.contains(&req.method)
    {
        return Some(Refusal::MethodNotAllowed);
    }
    match session.as_downstream() {
        ServerSession::H1(h1) => {
            let raw = h1.get_headers_raw_bytes();
            // SECURITY: request smuggling — Pingora drops Content-Length when
            // Transfer-Encoding is present, so the conflict is only visible in the raw bytes.
            if check_framing(&raw) == Err(Violation::Ambiguous) {
                return Some(Refusal::AmbiguousRequest);
            }
            if head_size(&raw) > rules.max_header_bytes {
                return Some(Refusal::HeaderTooLarge);
            }
        }
        // HTTP/2 framing needs no check here: the `h2` crate refuses connection-specific
        // headers and a Content-Length that disagrees with the DATA frames, and Pingora
        // conflicting Content-Lengths (see docs/tls.md).
        ServerSession::H2(_) if h2_head_size(req) > rules.max_header_bytes => {
            return Some(Refusal::HeaderTooLarge);
        }
        _ => {}
    }
    // SECURITY: path traversal against backends that map paths onto files.
    if check_path(req.raw_path()).is_err() {
        return Some(Refusal::InvalidPath);
    }
    // SECURITY: Host header injection (cache poisoning, password-reset links) and requests
    // without a Host that backends would resolve to a default virtual host.
    let mut hosts = req.headers.get_all(http::header::HOST).iter();
    let host = match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => return Some(Refusal::InvalidHost),
        (Some(host), None) => Some(host.to_str().unwrap_or("\u{0}")),
        // HTTP/2 names the host in `:authority` (Pingora has already refused a Host header
        // that disagrees with it).
        (None, _) if req.version == Version::HTTP_2 => req.uri.authority().map(|a| a.as_str()),
        (None, _) => None,
    };
    match host {
        Some(host) if !host_allowed(host, &rules.allowed_hosts) => {
            return Some(Refusal::InvalidHost)
        }
        Some(_) => {}
        None if req.version >= Version::HTTP_11 || !rules.allowed_hosts.is_empty() => {
            return Some(Refusal::InvalidHost)
        }
        None => {}
    }
    // SECURITY: memory and backend exhaustion by huge uploads, refused before any byte is
    // forwarded when the length is declared.
    if let Some(length) = req.headers.get(http::header::CONTENT_LENGTH) {
        // A list of one repeated value (`5, 5`, RFC 9110 §8.6) has passed the framing
        // checks above and Pingora's; its first item is the length.
        let length = length
            .to_str()
            .ok()
            .and_then(|v| v.split(',').next()?.trim().parse::<u64>().ok());
        if length.is_none_or(|n| n > max_body_bytes) {
            return Some(Refusal::BodyTooLarge);
        }
    }
    None
}

/// The size an HTTP/2 request's header would have as HTTP/1 (request line, `name: value` lines,
/// `:authority` as Host), so that `server.max_header_bytes` means the same for both.
fn h2_head_size(req: &pingora_http::RequestHeader) -> usize {
    let line = req.method.as_str().len() + 1 + req.raw_path().len() + " HTTP/1.1\r\n".len();
    let host = req
        .uri
        .authority()
        .map_or(0, |a| "host: \r\n".len() + a.as_str().len());
    let fields: usize = req
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + ": \r\n".len() + value.len())
        .sum();
    line + host + fields + "\r\n".len()
}
