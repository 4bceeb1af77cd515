//! Listeners (SPEC §11.1): several plain listeners, `redirect_to_https`, and the old
//! `server.address:port` meaning one plain listener.

mod common;

use common::http::{self, Connection};
use common::{free_port, local, run_aegis, scratch_dir, wait_until, Aegis};
use fake_backends::FakeBackend;
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn several_plain_listeners_are_served() {
    let backend = FakeBackend::start("b").unwrap();
    let second = free_port();
    let aegis = Aegis::start(
        &[(backend.url(), 1)],
        &format!("listeners:\n  - address: 127.0.0.1:{{port}}\n  - address: 127.0.0.1:{second}\n"),
    );
    assert!(wait_until(Duration::from_secs(10), || TcpStream::connect(
        local(second)
    )
    .is_ok()));
    for addr in [aegis.addr(), local(second)] {
        let resp = http::get(addr, "/x");
        assert_eq!(resp.status, 200, "{addr}: {resp:?}");
        assert!(resp.header("strict-transport-security").is_none());
    }
    assert_eq!(backend.request_count(), 2);
    // No TLS: the backend is told so.
    assert_eq!(
        backend.requests()[0].header("x-forwarded-proto"),
        Some("http")
    );
    let listen = aegis.status()["listen"].as_str().unwrap_or("").to_string();
    assert_eq!(
        listen,
        format!("http://127.0.0.1:{}, http://127.0.0.1:{second}", aegis.port)
    );
}

#[test]
fn redirect_to_https_keeps_path_and_query_and_never_the_clients_host() {
    let backend = FakeBackend::start("b").unwrap();
    let aegis = Aegis::start(
        &[(backend.url(), 1)],
        "server:\n  allowed_hosts: [app.example]\nlisteners:\n  - address: 127.0.0.1:{port}\n    redirect_to_https: https://app.example:8443\n",
    );
    let mut conn = Connection::open(aegis.addr()).unwrap();
    let cases: [(&str, &str); 3] = [
        (
            "GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: app.example\r\n\r\n",
            "https://app.example:8443/a/b?x=1&y=%20",
        ),
        (
            "POST /form HTTP/1.1\r\nHost: app.example\r\nContent-Length: 0\r\n\r\n",
            "https://app.example:8443/form",
        ),
        // An absolute-form target: only its path and query are kept.
        (
            "GET http://app.example/abs?q=1 HTTP/1.1\r\nHost: app.example\r\n\r\n",
            "https://app.example:8443/abs?q=1",
        ),
    ];
    for (request, location) in cases {
        conn.send_raw(request.as_bytes()).unwrap();
        let resp = conn.read_response(false).unwrap();
        assert_eq!(resp.status, 308, "{request:?}: {resp:?}");
        assert_eq!(resp.header("location"), Some(location), "{request:?}");
        assert_eq!(resp.json()["error"], "https required");
        assert_eq!(resp.header("x-content-type-options"), Some("nosniff"));
        assert!(resp.header("strict-transport-security").is_none());
    }
    // SECURITY: a hostile Host is refused by the allowlist first, and an absolute-form target
    // naming another host by Pingora's parser: no redirect to anywhere.
    let resp = http::raw(
        aegis.addr(),
        b"GET /x HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(resp.status, 400, "{resp:?}");
    assert_eq!(resp.json()["error"], "invalid host");
    assert!(resp.header("location").is_none());
    let resp = http::raw(
        aegis.addr(),
        b"GET http://evil.example/x HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(resp.status, 400, "{resp:?}");
    assert!(resp.header("location").is_none());
    assert_eq!(
        backend.request_count(),
        0,
        "a redirect listener never proxies"
    );
}

#[test]
fn listener_config_errors_name_their_keys() {
    let path = scratch_dir().join("aegis.yml");
    std::fs::write(
        &path,
        "listeners:\n  - address: 127.0.0.1:8080\n    tls:\n      certificates:\n        - cert: /nonexistent/a.crt\n          key: /nonexistent/a.key\n  - address: 127.0.0.1:8080\n    redirect_to_https: http://example.com\nbackends:\n  - url: http://127.0.0.1:9\ndevelopment:\n  allow_loopback_backends: true\n",
    )
    .unwrap();
    let (code, out, err) = run_aegis(&["-t", "-c", &path.display().to_string()]);
    assert_eq!(code, 2, "{out}{err}");
    for expected in [
        "listeners[1].address: 127.0.0.1:8080 overlaps listeners[0] (127.0.0.1:8080)",
        "listeners[1].redirect_to_https: expected an https:// origin, got scheme \"http\"",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
}
