//! The shared test client (`fake_backends::client`: byte-exact requests over raw TCP or TLS,
//! responses parsed with httparse), plus the checks that only make sense against Aegis. Every
//! response a test reads once it started an Aegis is checked with [`assert_not_pingora`].

pub use fake_backends::client::{
    connect, get, raw, raw_exchange, read_response, Connection, Duplex, Response,
};

/// Checks the security headers of §6 on any response.
pub fn assert_hardened(resp: &Response) {
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("x-xss-protection", "0"),
        ("referrer-policy", "strict-origin-when-cross-origin"),
        (
            "permissions-policy",
            "camera=(), microphone=(), geolocation=()",
        ),
        ("server", "aegis"),
    ] {
        assert_eq!(resp.header(name), Some(value), "{name} on {resp:?}");
    }
    assert!(resp.header("x-powered-by").is_none());
}

/// SPEC §15.1: no answer names the framework. Installed on the shared client when a test starts
/// an Aegis ([`install_checks`]), so every HTTP/1 answer a test reads is checked; HTTP/2 answers
/// in `h2::Client`.
pub fn assert_not_pingora(resp: &Response) {
    assert!(
        !resp
            .header("server")
            .is_some_and(|s| s.to_ascii_lowercase().contains("pingora")),
        "an answer says Server: Pingora: {resp:?}"
    );
}

/// Makes the shared client check every answer it reads from now on (see `assert_not_pingora`).
pub fn install_checks() {
    fake_backends::client::check_every_response(assert_not_pingora);
}

/// Checks a response Aegis generated: status, JSON error body, security headers.
pub fn assert_refused(resp: &Response, status: u16, error: &str) {
    assert_eq!(resp.status, status, "{resp:?}");
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert_eq!(resp.json()["error"], error, "{}", resp.text());
    assert_hardened(resp);
}
