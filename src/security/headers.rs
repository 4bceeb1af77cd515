//! Response security headers (§6) and hop-by-hop header handling (§3.7).

use pingora_http::{RequestHeader, ResponseHeader};

/// Headers every response carries, proxied or generated (§6).
///
/// SECURITY: `nosniff` stops MIME confusion, `DENY` stops clickjacking, `X-XSS-Protection: 0`
/// turns off the legacy auditor (itself an XSS vector), the referrer policy keeps paths from
/// leaking cross-origin, and the permissions policy denies powerful features by default.
pub const SECURITY_HEADERS: [(&str, &str); 6] = [
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("X-XSS-Protection", "0"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    (
        "Permissions-Policy",
        "camera=(), microphone=(), geolocation=()",
    ),
    ("Server", "aegis"),
];

/// Hop-by-hop headers (RFC 9110 §7.6.1 and the older RFC 2616 list). They describe one
/// connection and must not be forwarded.
pub const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The names listed in `Connection` headers (`Connection: close, X-Foo` → `x-foo`), lower-cased.
fn connection_tokens<'a>(values: impl Iterator<Item = &'a http::HeaderValue>) -> Vec<String> {
    values
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty() && t != "close" && t != "keep-alive")
        .collect()
}

/// Removes hop-by-hop headers, and every header named in `Connection`, from a request going
/// upstream.
///
/// SECURITY: a client naming e.g. `X-Forwarded-For` or an auth header in `Connection` could
/// otherwise get a proxy to drop or keep headers the backend relies on.
pub fn strip_hop_by_hop_request(req: &mut RequestHeader) {
    if !req.headers.keys().any(is_hop_by_hop) {
        return;
    }
    let named = connection_tokens(req.headers.get_all(http::header::CONNECTION).iter());
    for name in HOP_BY_HOP.iter().copied() {
        req.remove_header(name);
    }
    for name in named {
        req.remove_header(&name);
    }
}

/// Removes hop-by-hop headers from a backend's response, keeping `Transfer-Encoding`, which
/// Pingora itself uses to frame the body it relays (it re-frames the response for the client).
pub fn strip_hop_by_hop_response(resp: &mut ResponseHeader) {
    if !resp
        .headers
        .keys()
        .any(|n| is_hop_by_hop(n) && n != http::header::TRANSFER_ENCODING)
    {
        return;
    }
    let named = connection_tokens(resp.headers.get_all(http::header::CONNECTION).iter());
    for name in HOP_BY_HOP
        .iter()
        .copied()
        .filter(|n| *n != "transfer-encoding")
    {
        resp.remove_header(name);
    }
    for name in named
        .iter()
        .filter(|n| n.as_str() != "transfer-encoding" && n.as_str() != "content-length")
    {
        resp.remove_header(name.as_str());
    }
}

/// Adds the §6 security headers (replacing any the backend sent) and removes what leaks the
/// backend's identity.
///
/// SECURITY: `X-Powered-By` and the backend's `Server` tell an attacker which exploits to try.
pub fn harden_response(resp: &mut ResponseHeader) -> pingora::Result<()> {
    resp.remove_header("x-powered-by");
    for (name, value) in SECURITY_HEADERS {
        resp.insert_header(name, http::HeaderValue::from_static(value))?;
    }
    Ok(())
}

/// True when `name` is one of [`HOP_BY_HOP`] (compared without parsing any string).
fn is_hop_by_hop(name: &http::HeaderName) -> bool {
    use http::header::*;
    name == CONNECTION
        || name == PROXY_AUTHENTICATE
        || name == PROXY_AUTHORIZATION
        || name == TE
        || name == TRAILER
        || name == TRANSFER_ENCODING
        || name == UPGRADE
        || name.as_str() == "keep-alive"
}

#[cfg(test)]
mod tests {
    use super::*;

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
        strip_hop_by_hop_request(&mut req);
        let names: Vec<_> = req.headers.keys().map(|k| k.as_str().to_string()).collect();
        assert_eq!(names, vec!["x-kept"]);
    }

    #[test]
    fn response_is_hardened() {
        let mut resp = ResponseHeader::build(200, None).unwrap();
        resp.append_header("Server", "nginx/1.0").unwrap();
        resp.append_header("X-Powered-By", "PHP/5").unwrap();
        resp.append_header("Connection", "x-hop").unwrap();
        resp.append_header("X-Hop", "1").unwrap();
        strip_hop_by_hop_response(&mut resp);
        harden_response(&mut resp).unwrap();
        assert_eq!(resp.headers.get("server").unwrap(), "aegis");
        assert!(resp.headers.get("x-powered-by").is_none());
        assert!(resp.headers.get("x-hop").is_none());
        assert!(resp.headers.get("connection").is_none());
        assert_eq!(resp.headers.get("x-frame-options").unwrap(), "DENY");
    }
}
