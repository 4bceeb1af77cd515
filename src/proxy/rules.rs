//! Request validation (§3.1–§3.5) as the proxy runs it: [`RequestRules`] reads what it needs from
//! Pingora's session and asks the pure validators in `security::request`.

use crate::reply::Refusal;
use crate::security::request::{check_framing, check_path, head_size, host_allowed, Violation};
use http::{Method, Version};
use pingora_core::protocols::http::ServerSession;
use pingora_proxy::Session;

/// The rules a request must meet to be forwarded, copied out of the config once.
#[derive(Debug, Clone)]
pub struct RequestRules {
    /// Upper-case method names that pass.
    pub allowed_methods: Vec<Method>,
    /// Lower-case Host patterns; empty allows any host.
    pub allowed_hosts: Vec<String>,
    pub max_header_bytes: usize,
    pub max_body_bytes: u64,
}

impl RequestRules {
    /// The first rule the request breaks, in §3's order, or `None` when it may be forwarded.
    pub fn check(&self, session: &Session) -> Option<Refusal> {
        let req = session.req_header();
        // SECURITY: CONNECT would turn Aegis into an open tunnel and TRACE reflects request
        // headers (cross-site tracing); both are refused whatever the config lists.
        if req.method == Method::CONNECT
            || req.method == Method::TRACE
            || !self.allowed_methods.contains(&req.method)
        {
            return Some(Refusal::MethodNotAllowed);
        }
        if let ServerSession::H1(h1) = session.as_downstream() {
            let raw = h1.get_headers_raw_bytes();
            // SECURITY: request smuggling — Pingora drops Content-Length when Transfer-Encoding is
            // present, so the conflict is only visible in the raw bytes.
            if check_framing(&raw) == Err(Violation::Ambiguous) {
                return Some(Refusal::AmbiguousRequest);
            }
            if head_size(&raw) > self.max_header_bytes {
                return Some(Refusal::HeaderTooLarge);
            }
        }
        // SECURITY: path traversal against backends that map paths onto files.
        if check_path(req.raw_path()).is_err() {
            return Some(Refusal::InvalidPath);
        }
        // SECURITY: Host header injection (cache poisoning, password-reset links) and requests
        // without a Host that backends would resolve to a default virtual host.
        let mut hosts = req.headers.get_all(http::header::HOST).iter();
        match (hosts.next(), hosts.next()) {
            (Some(_), Some(_)) => return Some(Refusal::InvalidHost),
            (None, _) if req.version == Version::HTTP_11 => return Some(Refusal::InvalidHost),
            (None, _) if !self.allowed_hosts.is_empty() => return Some(Refusal::InvalidHost),
            (Some(host), _) => {
                let host = host.to_str().unwrap_or("\u{0}");
                if !host_allowed(host, &self.allowed_hosts) {
                    return Some(Refusal::InvalidHost);
                }
            }
            (None, _) => {}
        }
        // SECURITY: memory and backend exhaustion by huge uploads, refused before any byte is
        // forwarded when the length is declared.
        if let Some(length) = req.headers.get(http::header::CONTENT_LENGTH) {
            let length = length
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok());
            if length.is_none_or(|n| n > self.max_body_bytes) {
                return Some(Refusal::BodyTooLarge);
            }
        }
        None
    }
}
