//! Requests Pingora's HTTP/1 parser refuses before any proxy phase runs (§15.1): a coding list
//! in Transfer-Encoding, obs-fold, a NUL in a header, two Host headers, a malformed request
//! line… Pingora calls the `request_error_filter` hook (a patch of pingora-proxy,
//! `docs/decisions/parser-refusals.md`), and Aegis answers as it answers its own refusals: JSON,
//! the security headers, `Server: aegis`, an access-log line and a count in
//! `aegis_refusals_total`. The connection is closed afterwards.

use super::{new_request_id, respond, AegisProxy};
use crate::limit::{ClientKey, Verdict};
use crate::logging::{access, AccessEntry};
use crate::reply::{LocalReply, Refusal};
use crate::security::request::{check_framing, Violation};
use pingora_core::protocols::http::ServerSession;
use pingora_core::Error;
use std::time::Instant;

impl AegisProxy {
    /// Answers a request whose header Pingora's parser refused, logs and counts it (the
    /// `request_error_filter` hook).
    pub(super) async fn answer_refused_header(
        &self,
        session: &mut ServerSession,
        error: &Error,
    ) -> pingora_core::Result<()> {
        let started = Instant::now();
        let client = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        // §3 stage 1 first, as for any request: a flood of garbage is throttled too.
        let limited = client
            .map(ClientKey::of)
            .and_then(|key| match self.limiter.check(key) {
                Verdict::Limit { retry_after } => {
                    self.metrics.record_limited_client(&key);
                    Some(Refusal::RateLimited { retry_after })
                }
                _ => None,
            });
        let refusal =
            limited.unwrap_or_else(|| refusal_for(error, refused_header(session).as_deref()));
        let reply = LocalReply::Refused(refusal);
        let request_id = new_request_id();
        let config = self.config.current();
        let headers = respond::AnswerHeaders {
            request_id: &request_id,
            allow: &[],
            hsts: self.listener.hsts(&config.security.hsts),
            location: None,
        };
        let sent = respond::send_bare(session, reply, &headers).await;
        let total = started.elapsed();
        self.metrics
            .record_response(reply.status(), Some(reply), total);
        let tls = if self.listener.tls {
            crate::tls::version_label(
                session
                    .digest()
                    .and_then(|d| d.ssl_digest.as_ref())
                    .map(|d| d.version.as_ref()),
            )
        } else {
            "-"
        };
        if access::enabled() {
            // Nothing of the request is trusted enough to log: no method, no path.
            access::write(&AccessEntry {
                client,
                method: "-",
                protocol: match session {
                    ServerSession::H2(_) => "h2",
                    _ => "http/1.1",
                },
                path: "-",
                status: reply.status(),
                bytes: *sent.as_ref().unwrap_or(&0),
                backend: "-",
                upstream: None,
                total,
                request_id: request_id.to_str().unwrap_or("-"),
                trace_id: "-",
                refusal: reply.reason(),
                tls,
                // Refused before any hook: no route was chosen.
                routing: None,
            });
        }
        sent.map(|_| ())
    }
}

/// Why Pingora's parser refused a request header, as Aegis answers it: 431 for a header too
/// large or with too many fields, "ambiguous request" for framing (Content-Length,
/// Transfer-Encoding, or a head Aegis's own framing check calls ambiguous: bare CR or LF,
/// obs-fold, control bytes, whitespace in a name), "bad request" for anything else.
///
/// `raw` is the header as received, when Pingora kept it. Pingora says what it refused in its
/// error's context and cause (httparse's error); both are matched here, and the conformance
/// suite (`tests/conformance.rs`) pins the answers, so that a Pingora upgrade that rewords
/// them shows there.
pub fn refusal_for(error: &Error, raw: Option<&[u8]>) -> Refusal {
    let context = error.context.as_ref().map(|c| c.as_str()).unwrap_or("");
    let cause = error
        .cause
        .as_ref()
        .map(|c| c.to_string())
        .unwrap_or_default();
    if context.starts_with("Request header larger than") || cause == "too many headers" {
        return Refusal::HeaderTooLarge;
    }
    let framing_header = ["Content-Length", "Transfer-Encoding"]
        .iter()
        .any(|name| context.contains(name));
    // SECURITY: request smuggling — a refused head whose framing two parsers could read
    // differently is reported (and counted) as such, the same answer Aegis's own framing
    // check gives when Pingora lets such a head through.
    if framing_header || raw.is_some_and(|raw| check_framing(raw) == Err(Violation::Ambiguous)) {
        return Refusal::AmbiguousRequest;
    }
    Refusal::BadRequest
}

/// The refused header's bytes as received, when the session kept them.
pub fn refused_header(session: &ServerSession) -> Option<bytes::Bytes> {
    match session {
        ServerSession::H1(h1) => h1.received_header_bytes(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora_core::ErrorType::InvalidHTTPHeader;

    fn parse_error(context: &'static str, cause: Option<httparse::Error>) -> Error {
        let mut e = Error::new(InvalidHTTPHeader);
        e.context = Some(context.into());
        e.cause = cause.map(|c| Box::new(c) as _);
        *e
    }

    #[test]
    fn framing_errors_are_ambiguous_requests() {
        for context in [
            "non-chunked final Transfer-Encoding",
            "HTTP/1.0 requests cannot include Transfer-Encoding header",
            "invalid Content-Length header",
        ] {
            assert_eq!(
                refusal_for(&parse_error(context, None), None),
                Refusal::AmbiguousRequest,
                "{context}"
            );
        }
    }

    #[test]
    fn heads_aegis_calls_ambiguous_are_ambiguous_whatever_pingora_says() {
        let e = parse_error("buf: …", Some(httparse::Error::HeaderName));
        for head in [
            &b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: a\0b\r\n\r\n",
        ] {
            assert_eq!(
                refusal_for(&e, Some(head)),
                Refusal::AmbiguousRequest,
                "{head:?}"
            );
        }
        let clean = b"GET / HTTP/1.1\r\nX@Y: a\r\n\r\n";
        assert_eq!(refusal_for(&e, Some(clean)), Refusal::BadRequest);
        assert_eq!(refusal_for(&e, None), Refusal::BadRequest);
    }

    #[test]
    fn oversized_heads_are_431() {
        let big = parse_error("Request header larger than 1048575", None);
        assert_eq!(refusal_for(&big, None), Refusal::HeaderTooLarge);
        let many = parse_error("buf: …", Some(httparse::Error::TooManyHeaders));
        assert_eq!(refusal_for(&many, None), Refusal::HeaderTooLarge);
    }

    #[test]
    fn anything_else_is_a_bad_request() {
        for context in [
            "multiple Host header fields",
            "userinfo in request target",
            "",
        ] {
            assert_eq!(
                refusal_for(&parse_error(context, None), None),
                Refusal::BadRequest,
                "{context}"
            );
        }
    }
}
