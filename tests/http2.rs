//! HTTP/2 from clients (SPEC §11.2), black-box over h2c: every refusal of §3 with the same JSON
//! answer, requests reaching an HTTP/1.1 backend with their length from the stream, malformed
//! streams refused and never forwarded, the deadlines before and between streams, and the
//! protocol in the access log and metrics.
//! Just over 400 lines: the h2 refusals share one frame-level client set up once here.

mod common;

use common::h2::{self as raw, frame, request_block, Client, Raw};
use common::http::{assert_hardened, assert_refused};
use common::{wait_until, Aegis};
use fake_backends::FakeBackend;
use std::time::{Duration, Instant};

const EXTRA: &str = r#"
server:
  allowed_methods: [GET, HEAD, POST]
  allowed_hosts: [localhost, test.local]
  max_header_bytes: 2048
  max_body_bytes: 1000
  read_timeout: 1s
  idle_timeout: 2s
listeners:
  - address: 127.0.0.1:{port}
    h2c: true
"#;

fn setup() -> (FakeBackend, Aegis) {
    let backend = FakeBackend::start("b").unwrap();
    let aegis = Aegis::start(&[(backend.url(), 1)], EXTRA);
    (backend, aegis)
}

#[test]
fn every_refusal_of_section_3_has_the_same_json_over_h2() {
    let (backend, aegis) = setup();
    let mut client = Client::connect(aegis.addr()).unwrap();
    let url = "http://localhost/";

    let resp = client.request("PUT", url, &[], None).unwrap();
    assert_refused(&resp, 405, "method not allowed");
    assert_eq!(resp.header("allow"), Some("GET, HEAD, POST"));
    for path in [
        "/../etc/passwd",
        "/a/%2e%2e/b",
        "/%252e%252e/x",
        "/a%00b",
        "/%ZZ",
    ] {
        let resp = client
            .request("GET", &format!("http://localhost{path}"), &[], None)
            .unwrap();
        assert_refused(&resp, 400, "invalid path");
    }
    // SECURITY: `:authority` goes through the Host allowlist.
    for authority in ["evil.example", "localhost.evil.example:443"] {
        let resp = client
            .request("GET", &format!("http://{authority}/"), &[], None)
            .unwrap();
        assert_refused(&resp, 400, "invalid host");
    }
    let big = "x".repeat(3000);
    let resp = client
        .request("GET", url, &[("x-big", &big)], None)
        .unwrap();
    assert_refused(&resp, 431, "request header too large");
    let body = [b'a'; 2000];
    let resp = client
        .request("POST", url, &[("content-length", "2000")], Some(&body))
        .unwrap();
    assert_refused(&resp, 413, "request body too large");
    assert_eq!(
        backend.request_count(),
        0,
        "refused before any byte was forwarded"
    );
    // A body without a declared length is cut off once it passes the limit (§3.5): the backend
    // request is aborted, never complete.
    let resp = client.request("POST", url, &[], Some(&body)).unwrap();
    assert_refused(&resp, 413, "request body too large");
    assert!(backend.requests().is_empty(), "{:?}", backend.requests());
    // The connection survives its refused streams.
    let resp = client.get("/fine").unwrap();
    assert_eq!(resp.status, 200);
    assert_hardened(&resp);
    assert!(resp.header("x-request-id").is_some());
}

#[test]
fn the_rate_limit_counts_streams() {
    let backend = FakeBackend::start("b").unwrap();
    let extra = format!(
        r#"
{EXTRA}rate_limit:
  requests_per_second: 1
  burst: 3
adaptive:
  min_rate: 1
"#
    );
    let aegis = Aegis::start(&[(backend.url(), 1)], &extra);
    let mut client = Client::connect(aegis.addr()).unwrap();
    let statuses: Vec<u16> = (0..6)
        .map(|_| {
            let resp = client.get("/").unwrap();
            if resp.status == 429 {
                assert_refused(&resp, 429, "rate limit exceeded");
                assert!(resp.json()["retry_after"].as_u64().unwrap() >= 1);
                assert!(resp.header("retry-after").is_some());
            }
            resp.status
        })
        .collect();
    assert_eq!(&statuses[..3], &[200, 200, 200], "{statuses:?}");
    assert!(statuses[3..].contains(&429), "{statuses:?}");
}

#[test]
fn h2_requests_reach_the_backend_as_http11_with_the_length_from_the_stream() {
    let (backend, aegis) = setup();
    let mut client = Client::connect(aegis.addr()).unwrap();
    let resp = client
        .request(
            "POST",
            "http://localhost/upload?x=1",
            &[
                ("content-length", "11"),
                ("te", "trailers"),
                ("x-forwarded-for", "198.51.100.1"),
                ("x-request-id", "forged"),
            ],
            Some(b"hello world"),
        )
        .unwrap();
    assert_eq!(resp.status, 200);
    let resp = client.get("/plain").unwrap();
    assert_eq!(resp.status, 200);

    let seen = backend.requests();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let post = &seen[0];
    assert_eq!(
        (
            post.method.as_str(),
            post.target.as_str(),
            post.version.as_str()
        ),
        ("POST", "/upload?x=1", "HTTP/1.1")
    );
    // SECURITY: no smuggling by downgrade — the body is framed by Aegis, not by the client's
    // Content-Length.
    assert_eq!(
        post.header("transfer-encoding"),
        Some("chunked"),
        "{post:?}"
    );
    assert_eq!(post.header("content-length"), None, "{post:?}");
    assert_eq!(post.body, b"hello world");
    assert_eq!(post.header("te"), None);
    assert_eq!(post.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(post.header("x-forwarded-proto"), Some("http"));
    assert_eq!(post.header_all("host"), vec![backend.addr().to_string()]);
    assert_ne!(post.header("x-request-id"), Some("forged"));
    let get = &seen[1];
    assert_eq!(get.header("content-length"), None, "{get:?}");
    assert_eq!(get.header("transfer-encoding"), None, "{get:?}");
    assert!(get.body.is_empty());
}

/// Sends `frames` on a new connection and returns what came back within 5 s, stopping at the
/// first RST_STREAM or GOAWAY.
fn exchange(aegis: &Aegis, frames: &[Vec<u8>]) -> raw::Seen {
    let mut conn = Raw::connect(aegis.addr(), &[]);
    conn.send(&frames.concat()).unwrap();
    conn.read_until(Duration::from_secs(5), |seen| {
        !seen.resets.is_empty() || !seen.headers.is_empty()
    })
}

#[test]
fn malformed_streams_are_refused_and_never_forwarded() {
    let (backend, aegis) = setup();
    let headers = |extra: &[(&[u8], &[u8])], end_stream: bool| {
        let flags = raw::END_HEADERS | if end_stream { raw::END_STREAM } else { 0 };
        frame(raw::HEADERS, flags, 1, &request_block("POST", "/m", extra))
    };
    // Stream errors: RST_STREAM PROTOCOL_ERROR, from the `h2` crate or Pingora.
    let stream_cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
        (
            "connection",
            vec![headers(&[(b"connection", b"keep-alive")], true)],
        ),
        (
            "transfer-encoding",
            vec![headers(&[(b"transfer-encoding", b"chunked")], true)],
        ),
        ("keep-alive", vec![headers(&[(b"keep-alive", b"5")], true)]),
        ("upgrade", vec![headers(&[(b"upgrade", b"h2c")], true)]),
        (
            "proxy-connection",
            vec![headers(&[(b"proxy-connection", b"x")], true)],
        ),
        ("te: gzip", vec![headers(&[(b"te", b"gzip")], true)]),
        (
            "content-length over DATA",
            vec![
                headers(&[(b"content-length", b"100")], false),
                frame(raw::DATA, raw::END_STREAM, 1, b"short"),
            ],
        ),
        (
            "DATA over content-length",
            vec![
                headers(&[(b"content-length", b"3")], false),
                frame(raw::DATA, raw::END_STREAM, 1, b"much longer"),
            ],
        ),
        (
            "two content-lengths",
            vec![
                headers(
                    &[(b"content-length", b"3"), (b"content-length", b"4")],
                    false,
                ),
                frame(raw::DATA, raw::END_STREAM, 1, b"abc"),
            ],
        ),
    ];
    for (case, frames) in &stream_cases {
        let seen = exchange(&aegis, frames);
        assert!(
            seen.resets.contains(&(1, raw::PROTOCOL_ERROR)) || seen.goaway.is_some(),
            "{case}: {seen:?}"
        );
        assert!(seen.headers.is_empty(), "{case}: answered {seen:?}");
    }
    // Connection errors: bytes HTTP/2 forbids in names and values end the connection (GOAWAY
    // PROTOCOL_ERROR from the `h2` crate's HPACK decoder).
    let connection_cases: [(&str, &[u8], &[u8]); 5] = [
        ("uppercase name", b"X-Upper", b"1"),
        ("space in name", b"x bad", b"1"),
        ("CR LF in value", b"x-a", b"1\r\nx-b: 2"),
        ("NUL in value", b"x-a", b"1\0"),
        ("LF in value", b"x-a", b"1\nb"),
    ];
    for (case, name, value) in connection_cases {
        let seen = exchange(&aegis, &[headers(&[(name, value)], true)]);
        assert_eq!(seen.goaway, Some(raw::PROTOCOL_ERROR), "{case}: {seen:?}");
        assert!(seen.headers.is_empty(), "{case}: answered {seen:?}");
    }
    // A length disagreement shows only when the DATA frames arrive, after the head may have
    // gone out: the backend then sees an aborted chunked request, never a complete one, and
    // never the client's Content-Length. Once Aegis has no request in flight and the backend
    // none half-received, every upstream exchange is over.
    let settled = wait_until(Duration::from_secs(5), || {
        aegis.status()["totals"]["in_flight"] == 0 && backend.in_flight() == 0
    });
    assert!(settled, "{}", aegis.status()["totals"]);
    assert!(backend.requests().is_empty(), "{:?}", backend.requests());
    assert_eq!(
        Client::connect(aegis.addr())
            .unwrap()
            .get("/")
            .unwrap()
            .status,
        200
    );
}

#[test]
fn slow_prefaces_and_idle_connections_are_closed() {
    let (_backend, aegis) = setup();
    // Half a preface, then nothing: closed after read_timeout (1s), as a slow HTTP/1 header is.
    let started = Instant::now();
    let mut conn = std::net::TcpStream::connect(aegis.addr()).unwrap();
    std::io::Write::write_all(&mut conn, &raw::PREFACE[..16]).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 64];
    // Aegis's SETTINGS come first, then the close.
    while let Ok(n @ 1..) = std::io::Read::read(&mut conn, &mut buf) {
        assert!(n > 0);
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "{waited:?}"
    );

    // A connection with no stream open: GOAWAY NO_ERROR after idle_timeout (2s).
    let started = Instant::now();
    let mut conn = Raw::connect(aegis.addr(), &[]);
    let seen = conn.read_until(Duration::from_secs(6), |_| false);
    assert_eq!(seen.goaway, Some(0), "{seen:?}");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(1900) && waited < Duration::from_secs(4));
}

#[test]
fn a_stalled_request_body_ends_the_connection() {
    let (backend, aegis) = setup();
    let mut conn = Raw::connect(aegis.addr(), &[]);
    let head = request_block("POST", "/slow", &[(b"content-length", b"10")]);
    conn.send(&frame(raw::HEADERS, raw::END_HEADERS, 1, &head))
        .unwrap();
    conn.send(&frame(raw::DATA, 0, 1, b"abc")).unwrap();
    // The connection itself stays busy (PINGs), the upload does not move: after read_timeout
    // (1s) without body progress the connection ends.
    let started = Instant::now();
    let mut seen = raw::Seen::default();
    for i in 0..30u64 {
        conn.send(&frame(raw::PING, 0, 0, &i.to_be_bytes()))
            .unwrap_or(());
        seen = conn.read_until(Duration::from_millis(200), |_| false);
        if seen.goaway.is_some() || seen.closed {
            break;
        }
    }
    assert_eq!(seen.goaway, Some(raw::ENHANCE_YOUR_CALM), "{seen:?}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    assert!(aegis
        .output()
        .contains("HTTP/2 client 127.0.x.x: request body stalled for read_timeout"));
    assert!(backend.requests().is_empty(), "{:?}", backend.requests());
    // The stream's request finished through the proxy: its access line is written.
    assert!(wait_until(Duration::from_secs(3), || aegis
        .output()
        .contains("\"path\":\"/slow\"")));
}

#[test]
fn access_log_and_metrics_carry_the_protocol() {
    let (_backend, aegis) = setup();
    let mut client = Client::connect(aegis.addr()).unwrap();
    assert_eq!(client.get("/logged?secret=1").unwrap().status, 200);
    let resp = client
        .request("PUT", "http://localhost/", &[], None)
        .unwrap();
    assert_eq!(resp.status, 405);
    assert_eq!(aegis.get("/h1").status, 200);
    let logged = wait_until(Duration::from_secs(5), || {
        let out = aegis.output();
        out.lines()
            .any(|l| l.contains("\"protocol\":\"h2\"") && l.contains("\"path\":\"/logged\""))
            && out.lines().any(|l| {
                l.contains("\"protocol\":\"h2\"")
                    && l.contains("\"refusal\":\"method_not_allowed\"")
            })
            && out
                .lines()
                .any(|l| l.contains("\"protocol\":\"http/1.1\"") && l.contains("\"path\":\"/h1\""))
    });
    assert!(logged, "{}", aegis.output());
    assert!(!aegis.output().contains("secret"));
    let metrics = aegis.admin_get("/metrics").text();
    assert!(
        metrics.contains("aegis_requests_by_protocol_total{protocol=\"h2\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("aegis_requests_by_protocol_total{protocol=\"http/1.1\"} 1"));
}

#[test]
fn authority_refusals_are_aegis_answers_logged_and_counted() {
    // Pingora answers a Host that differs from `:authority` with a bare 400 of its own; the
    // patched pingora-core hands the stream to Aegis's `request_error_filter` instead
    // (docs/decisions/parser-refusals.md). More forms: conformance cases h2-08 to h2-14.
    let (backend, aegis) = setup();
    let mut client = Client::connect(aegis.addr()).unwrap();
    let resp = client
        .request(
            "GET",
            "http://localhost/",
            &[("host", "evil.example")],
            None,
        )
        .unwrap();
    assert_refused(&resp, 400, "bad request");
    let id = resp
        .header("x-request-id")
        .expect("a request id")
        .to_string();
    // Stream-local: the connection goes on serving.
    assert_eq!(client.get("/").unwrap().status, 200);
    let logged = wait_until(Duration::from_secs(5), || {
        aegis.output().lines().any(|l| {
            l.contains(&id)
                && l.contains("\"protocol\":\"h2\"")
                && l.contains("\"refusal\":\"bad_request\"")
        })
    });
    assert!(logged, "{}", aegis.output());
    let metrics = aegis.admin_get("/metrics").text();
    assert!(
        metrics.contains("aegis_refusals_total{reason=\"bad_request\"} 1"),
        "{metrics}"
    );
    assert_eq!(backend.requests().len(), 1, "only the valid request");
}
