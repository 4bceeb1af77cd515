//! Response security headers (§6) and hop-by-hop header handling (§3.7).

use http::{HeaderName, HeaderValue};
use pingora_http::ResponseHeader;

/// Headers every response carries, proxied or generated (§6), as ready-made names and values
/// (no parsing or copying per response).
///
/// SECURITY: `nosniff` stops MIME confusion, `DENY` stops clickjacking, `X-XSS-Protection: 0`
/// turns off the legacy auditor (itself an XSS vector), the referrer policy keeps paths from
/// leaking cross-origin, and the permissions policy denies powerful features by default.
pub const SECURITY_HEADERS: [(HeaderName, HeaderValue); 6] = [
    (
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    ),
    (
        HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    ),
    (
        HeaderName::from_static("x-xss-protection"),
        HeaderValue::from_static("0"),
    ),
    (
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    ),
    (
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
    ),
    (
        HeaderName::from_static("server"),
        HeaderValue::from_static("aegis"),
    ),
];

/// The names listed in `Connection` headers (`Connection: close, X-Foo` → `x-foo`), lower-cased.
fn connection_tokens<'a>(values: impl Iterator<Item = &'a http::HeaderValue>) -> Vec<String> {
    values
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| {
            !t.is_empty()
                && !t.eq_ignore_ascii_case("close")
                && !t.eq_ignore_ascii_case("keep-alive")
        })
        .map(str::to_ascii_lowercase)
        .collect()
}

/// Whether a comma-separated header lists `token` (case-insensitively), in any of its fields.
pub fn lists_token(headers: &http::HeaderMap, name: HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Adds the §6 security headers to a response Aegis generates (with Pingora's case-preserving
/// API: these are rare) and removes what leaks a backend's identity.
///
/// SECURITY: `X-Powered-By` and the backend's `Server` tell an attacker which exploits to try.
pub fn harden_response(resp: &mut ResponseHeader) -> pingora::Result<()> {
    resp.remove_header(&X_POWERED_BY);
    for (name, value) in SECURITY_HEADERS {
        resp.insert_header(name, value)?;
    }
    Ok(())
}

/// Which way a message goes, for [`strip_hop_by_hop`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// To a backend: every hop-by-hop header goes.
    Request,
    /// To the client: `Transfer-Encoding` and `Content-Length` stay, because Pingora frames the
    /// body it relays with them (it re-frames the response for the client).
    Response,
}

/// Removes hop-by-hop headers, and every header named in `Connection`, from a header map.
///
/// SECURITY: a client naming e.g. `X-Forwarded-For` or an auth header in `Connection` could
/// otherwise get a proxy to drop or keep headers the backend relies on.
pub fn strip_hop_by_hop(headers: &mut http::HeaderMap, direction: Direction) {
    // One pass over the names present: most messages carry none, or only `Connection`.
    let mut present = [false; 8];
    let mut any = false;
    for name in headers.keys() {
        if let Some(i) = HOP_BY_HOP_NAMES.iter().position(|h| h == name) {
            let kept = direction == Direction::Response && name == http::header::TRANSFER_ENCODING;
            present[i] = !kept;
            any |= !kept;
        }
    }
    if !any {
        return;
    }
    // Names listed in `Connection` other than `close` and `keep-alive` (rare).
    let named = connection_tokens(headers.get_all(http::header::CONNECTION).iter());
    for (name, _) in HOP_BY_HOP_NAMES.iter().zip(present).filter(|(_, p)| *p) {
        headers.remove(name);
    }
    for name in &named {
        let kept = direction == Direction::Response
            && (name == "transfer-encoding" || name == "content-length");
        if !kept {
            headers.remove(name.as_str());
        }
    }
}

/// Hop-by-hop headers (RFC 9110 §7.6.1 and the older RFC 2616 list). They describe one
/// connection and must not be forwarded.
static HOP_BY_HOP_NAMES: [HeaderName; 8] = [
    http::header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    http::header::PROXY_AUTHENTICATE,
    http::header::PROXY_AUTHORIZATION,
    http::header::TE,
    http::header::TRAILER,
    http::header::TRANSFER_ENCODING,
    http::header::UPGRADE,
];

/// `X-Request-ID`.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// `X-Powered-By`, removed from every response.
const X_POWERED_BY: HeaderName = HeaderName::from_static("x-powered-by");

/// Rewrites a backend's response for the client in one pass over a plain header map: hop-by-hop
/// headers and `X-Powered-By` out, the §6 headers and `X-Request-ID` in.
///
/// Pingora's header API parses each inserted name and keeps a second, case-preserving name map
/// in step (about 2,000 instructions per header, and both maps grow); going through
/// `http::response::Parts` costs a few hundred. The price: header names reach the client the
/// way HTTP/2, HAProxy and Envoy send them, in lower case (Pingora writes the common ones, such
/// as `Content-Type`, in title case), and the backend's reason phrase is replaced by the
/// standard one. HTTP header names are case-insensitive (RFC 9110 §5.1).
///
/// SECURITY: `X-Powered-By` and the backend's `Server` tell an attacker which exploits to try.
/// `hsts` is the `Strict-Transport-Security` value on TLS listeners; it replaces the backend's.
pub fn finish_backend_response(
    resp: &mut ResponseHeader,
    request_id: &HeaderValue,
    hsts: Option<&HeaderValue>,
) {
    let empty = ResponseHeader::from(http::Response::new(()).into_parts().0);
    let mut parts: http::response::Parts = std::mem::replace(resp, empty).into();
    let headers = &mut parts.headers;
    strip_hop_by_hop(headers, Direction::Response);
    headers.remove(X_POWERED_BY);
    headers.reserve(SECURITY_HEADERS.len() + 2);
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, value);
    }
    if !request_id.is_empty() {
        headers.insert(X_REQUEST_ID, request_id.clone());
    }
    if let Some(hsts) = hsts {
        headers.insert(http::header::STRICT_TRANSPORT_SECURITY, hsts.clone());
    }
    *resp = ResponseHeader::from(parts);
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora_http::RequestHeader;

    #[test]
    fn request_loses_hop_by_hop_and_connection_named_headers() {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        for (k, v) in [
            ("Connection", "keep-alive, X-Secret"),
            ("Keep-Alive", "timeout=5"),
            ("TE", "trailers"),
            ("Upgrade", "websocket"),
            ("Proxy-Authorization", "Basic Zm9v"),
            ("X-Secret", "1"),
            ("X-Kept", "1"),
        ] {
            req.append_header(k, v).unwrap();
        }
        let mut parts: http::request::Parts = req.into();
        strip_hop_by_hop(&mut parts.headers, Direction::Request);
        let names: Vec<_> = parts
            .headers
            .keys()
            .map(|k| k.as_str().to_string())
            .collect();
        assert_eq!(names, vec!["x-kept"]);
    }

    #[test]
    fn backend_response_is_finished_in_one_pass() {
        let mut resp = ResponseHeader::build(200, None).unwrap();
        resp.append_header("Server", "nginx/1.0").unwrap();
        resp.append_header("X-Powered-By", "PHP/5").unwrap();
        resp.append_header("Connection", "x-hop").unwrap();
        resp.append_header("X-Hop", "1").unwrap();
        resp.append_header("Transfer-Encoding", "chunked").unwrap();
        resp.append_header("X-Kept", "1").unwrap();
        finish_backend_response(&mut resp, &HeaderValue::from_static("id-1"), None);
        assert_eq!(resp.headers.get("server").unwrap(), "aegis");
        assert!(resp.headers.get("x-powered-by").is_none());
        assert!(resp.headers.get("x-hop").is_none());
        assert!(resp.headers.get("connection").is_none());
        assert_eq!(resp.headers.get("transfer-encoding").unwrap(), "chunked");
        assert_eq!(resp.headers.get("x-kept").unwrap(), "1");
        assert_eq!(resp.headers.get("x-request-id").unwrap(), "id-1");
        for (name, value) in SECURITY_HEADERS {
            assert_eq!(resp.headers.get(&name).unwrap(), value, "{name}");
        }
        let mut wire = Vec::new();
        resp.header_to_h1_wire(&mut wire);
        let wire = String::from_utf8(wire).unwrap();
        assert!(wire.contains("Server: aegis\r\n"), "{wire}");
        assert!(wire.contains("x-request-id: id-1\r\n"), "{wire}");
    }

    #[test]
    fn response_is_hardened() {
        let mut resp = ResponseHeader::build(200, None).unwrap();
        resp.append_header("X-Powered-By", "PHP/5").unwrap();
        harden_response(&mut resp).unwrap();
        assert_eq!(resp.headers.get("server").unwrap(), "aegis");
        assert!(resp.headers.get("x-powered-by").is_none());
        assert_eq!(resp.headers.get("x-frame-options").unwrap(), "DENY");
    }
}
