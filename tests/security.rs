//! The adversarial suite (SPEC §3.1–§3.6, §6): byte-exact requests over raw TCP against the real
//! binary, with a fake backend that records what reaches it. Every case is either refused —
//! and then nothing reaches the backend — or forwarded as one normalised request.
//! Over 400 lines: one self-contained case per defence, run over plain TCP and over TLS alike.

mod common;

use common::http::{assert_hardened, assert_refused, Connection, Duplex, Response};
use common::tls::{TestCa, Transport};
use common::Aegis;
use fake_backends::FakeBackend;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

const EXTRA: &str = r#"
server:
  allowed_methods: [GET, HEAD, POST]
  allowed_hosts: [app.example, "*.api.example"]
  max_header_bytes: 2048
  max_body_bytes: 1000
  read_timeout: 1s
"#;

/// Aegis as the cases reach it: over plain TCP, or over TLS on a TLS listener (§11.1: every
/// part-one guarantee holds there too, through the same cases).
struct Target {
    aegis: Aegis,
    transport: Transport,
}

impl std::ops::Deref for Target {
    type Target = Aegis;

    fn deref(&self) -> &Aegis {
        &self.aegis
    }
}

impl Target {
    /// A keep-alive connection over this target's transport.
    fn connect(&self) -> Connection<Box<dyn Duplex>> {
        self.transport.connect(self.aegis.addr()).expect("connect")
    }
}

fn setup() -> (FakeBackend, Target) {
    setup_over(false)
}

/// Aegis with the suite's settings, its port plain or TLS (a certificate for the allowed hosts).
fn setup_over(tls: bool) -> (FakeBackend, Target) {
    let backend = FakeBackend::start("b").unwrap();
    if !tls {
        let aegis = Aegis::start(&[(backend.url(), 1)], EXTRA);
        return (
            backend,
            Target {
                aegis,
                transport: Transport::Plain,
            },
        );
    }
    let ca = TestCa::new();
    let files = ca.issue(
        &common::scratch_dir(),
        "site",
        &["app.example", "*.api.example"],
        30,
    );
    let listeners = format!(
        r#"
listeners:
  - address: 127.0.0.1:{{port}}
    tls:
      certificates: [{}]
"#,
        files.yaml()
    );
    let aegis = Aegis::start(&[(backend.url(), 1)], &format!("{EXTRA}{listeners}"));
    let transport = Transport::Tls {
        config: ca.client(&[]),
        sni: "app.example".into(),
    };
    (backend, Target { aegis, transport })
}

fn send(target: &Target, bytes: &[u8]) -> Response {
    target
        .transport
        .raw(target.addr(), bytes)
        .unwrap_or_else(|e| panic!("{e} for {:?}", String::from_utf8_lossy(bytes)))
}

fn smuggling_attempts_are_refused_and_never_forwarded(tls: bool) {
    let (backend, aegis) = setup_over(tls);
    // Refused by Aegis from the raw header: JSON 400, connection closed.
    let cases: [&[u8]; 4] = [
        b"POST / HTTP/1.1\r\nHost: app.example\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: app.example\r\nContent-Length: 4\r\nTransfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: app.example\r\ncontent-LENGTH: 4\r\ntransfer-ENCODING: Chunked\r\n\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\nHost: app.example\n\n",
    ];
    for case in cases {
        let resp = send(&aegis, case);
        assert_refused(&resp, 400, "ambiguous request");
        assert_eq!(resp.header("connection"), Some("close"));
    }
    // Forms Pingora's own parser refuses before any proxy phase runs: Aegis answers them all the
    // same (§15.1), through the `request_error_filter` hook.
    let parser_cases: [(&[u8], &str); 9] = [
        (b"POST / HTTP/1.1\r\nHost: app.example\r\nContent-Length: 4\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", "ambiguous request"),
        (b"POST / HTTP/1.1\r\nHost: app.example\r\nTransfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n", "ambiguous request"),
        (b"POST / HTTP/1.1\r\nHost: app.example\r\nTransfer-Encoding: identity\r\n\r\n", "ambiguous request"),
        (b"POST / HTTP/1.1\r\nHost: app.example\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde", "ambiguous request"),
        (b"POST / HTTP/1.1\r\nHost: app.example\r\nContent-Length: 4, 5\r\n\r\nabcde", "ambiguous request"),
        (b"GET / HTTP/1.1\r\nHost: app.example\r\nX-Folded: a\r\n  b\r\n\r\n", "ambiguous request"),
        (b"GET / HTTP/1.1\r\nHost: app.example\r\nX-Nul: a\0b\r\n\r\n", "ambiguous request"),
        (b"GET http://evil.example/ HTTP/1.1\r\nHost: app.example\r\n\r\n", "bad request"),
        (b"GET / HTTP/1.1\r\nHost: app.example\r\nHost: app.example\r\n\r\n", "bad request"),
    ];
    for (case, error) in parser_cases {
        let resp = send(&aegis, case);
        assert_refused(&resp, 400, error);
        assert_eq!(resp.header("connection"), Some("close"));
    }
    assert_eq!(
        backend.request_count(),
        0,
        "a smuggling attempt reached the backend"
    );
}

fn legitimate_framing_is_forwarded_once_and_normalised(tls: bool) {
    let (backend, aegis) = setup_over(tls);
    let resp = send(
        &aegis,
        b"POST /form HTTP/1.1\r\nHost: app.example\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    );
    assert_eq!(resp.status, 200);
    let resp = send(
        &aegis,
        b"POST /chunks HTTP/1.1\r\nHost: app.example\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    );
    assert_eq!(resp.status, 200);
    let resp = send(
        &aegis,
        b"GET http://app.example/abs?x=1 HTTP/1.1\r\nHost: app.example\r\n\r\n",
    );
    assert_eq!(resp.status, 200);
    assert_hardened(&resp);
    let seen = backend.requests();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0].body, b"hello");
    assert_eq!(seen[0].header_all("content-length"), vec!["5"]);
    assert_eq!(seen[1].body, b"hello");
    assert_eq!(
        seen[2].target, "/abs?x=1",
        "absolute-form must reach the backend in origin form"
    );
    assert_eq!(
        seen[2].header("host"),
        Some(backend.addr().to_string().as_str())
    );
}

fn traversal_and_malformed_paths_are_refused(tls: bool) {
    let (backend, aegis) = setup_over(tls);
    for path in [
        "/../etc/passwd",
        "/a/%2e%2e/b",
        "/a/%2E%2e/b",
        "/%252e%252e/etc/passwd",
        "/..%5cwindows",
        "/a/..%2fb",
        "/%ZZ",
        "/a%4",
        "/a%00b",
    ] {
        let req = format!("GET {path} HTTP/1.1\r\nHost: app.example\r\n\r\n");
        assert_refused(&send(&aegis, req.as_bytes()), 400, "invalid path");
    }
    assert_eq!(backend.request_count(), 0);
    // Lookalikes pass, exactly as sent.
    for path in ["/a..b", "/.../x", "/q?next=../../x", "/%2e/x"] {
        let req = format!("GET {path} HTTP/1.1\r\nHost: app.example\r\n\r\n");
        assert_eq!(send(&aegis, req.as_bytes()).status, 200, "{path}");
        assert_eq!(backend.requests().last().unwrap().target, path);
    }
}

fn hosts_outside_the_allowlist_are_refused(tls: bool) {
    let (backend, aegis) = setup_over(tls);
    for host in [
        "evil.example",
        "api.example",
        "app.example.evil",
        "x.app.example",
    ] {
        let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
        assert_refused(&send(&aegis, req.as_bytes()), 400, "invalid host");
    }
    assert_refused(
        &send(&aegis, b"GET / HTTP/1.1\r\n\r\n"),
        400,
        "invalid host",
    );
    // Two Host headers: Pingora's parser refuses them, Aegis answers (§15.1).
    let resp = send(
        &aegis,
        b"GET / HTTP/1.1\r\nHost: app.example\r\nHost: evil.example\r\n\r\n",
    );
    assert_refused(&resp, 400, "bad request");
    assert_eq!(backend.request_count(), 0);
    for host in [
        "app.example",
        "APP.example:8080",
        "v1.api.example",
        "a.b.api.example",
    ] {
        let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
        assert_eq!(send(&aegis, req.as_bytes()).status, 200, "{host}");
    }
}

fn disallowed_methods_get_405_with_allow(tls: bool) {
    let (backend, aegis) = setup_over(tls);
    for method in ["DELETE", "PUT", "TRACE", "CONNECT", "PROPFIND"] {
        let target = if method == "CONNECT" {
            "app.example:443"
        } else {
            "/"
        };
        let req = format!("{method} {target} HTTP/1.1\r\nHost: app.example\r\n\r\n");
        let resp = send(&aegis, req.as_bytes());
        assert_refused(&resp, 405, "method not allowed");
        assert_eq!(resp.header("allow"), Some("GET, HEAD, POST"));
    }
    assert_eq!(backend.request_count(), 0);
}

fn oversized_headers_and_bodies_are_refused(tls: bool) {
    let (backend, aegis) = setup_over(tls);
    let big = format!(
        "GET / HTTP/1.1\r\nHost: app.example\r\nX-Big: {}\r\n\r\n",
        "a".repeat(3000)
    );
    assert_refused(
        &send(&aegis, big.as_bytes()),
        431,
        "request header too large",
    );
    let declared = b"POST / HTTP/1.1\r\nHost: app.example\r\nContent-Length: 1001\r\n\r\n";
    let resp = send(&aegis, declared);
    assert_refused(&resp, 413, "request body too large");
    assert_eq!(resp.header("connection"), Some("close"));
    assert_eq!(backend.request_count(), 0);

    // A chunked body that grows past the limit is cut off: 413, and the backend never gets it.
    let mut conn = aegis.connect();
    conn.send_raw(
        b"POST /upload HTTP/1.1\r\nHost: app.example\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 600, "x".repeat(600));
    let _ = conn.send_raw(chunk.as_bytes());
    let _ = conn.send_raw(chunk.as_bytes());
    let resp = conn.read_response(false).unwrap();
    assert_refused(&resp, 413, "request body too large");
    assert!(backend.requests().iter().all(|r| r.body.len() <= 1000));
}

fn client_forwarding_headers_are_replaced(tls: bool) {
    let (backend, aegis) = setup_over(tls);
    let resp = send(
        &aegis,
        b"GET / HTTP/1.1\r\nHost: app.example\r\nX-Forwarded-For: 1.2.3.4, 5.6.7.8\r\nX-Request-ID: mine\r\n\r\n",
    );
    assert_eq!(resp.status, 200);
    let seen = backend.requests().pop().unwrap();
    assert_eq!(seen.header_all("x-forwarded-for"), vec!["127.0.0.1"]);
    assert_ne!(seen.header("x-request-id"), Some("mine"));
    assert_eq!(resp.header("x-request-id"), seen.header("x-request-id"));
}

fn backend_responses_are_hardened(tls: bool) {
    let (backend, aegis) = setup_over(tls);
    backend.set_response_headers(vec![
        ("X-Powered-By".into(), "PHP/5.4".into()),
        ("Server".into(), "Apache/2.2".into()),
        ("Connection".into(), "X-Internal".into()),
        ("X-Internal".into(), "secret".into()),
        ("X-Frame-Options".into(), "ALLOWALL".into()),
        ("X-App".into(), "kept".into()),
    ]);
    let resp = send(&aegis, b"GET / HTTP/1.1\r\nHost: app.example\r\n\r\n");
    assert_eq!(resp.status, 200);
    assert_hardened(&resp);
    assert!(resp.header("x-internal").is_none());
    assert_eq!(resp.header("x-app"), Some("kept"));
    assert_eq!(resp.text(), "b");
    // Error answers from the backend are hardened as well.
    backend.set_status(500);
    let resp = send(&aegis, b"GET / HTTP/1.1\r\nHost: app.example\r\n\r\n");
    assert_eq!(resp.status, 500);
    assert_hardened(&resp);
}

/// Dribbles one byte of header every 200 ms (the socket's read timeout paces it) until the
/// server closes the connection; returns how long that took, or `None` after 4 s.
fn dribble_until_cut(stream: &mut TcpStream) -> Option<Duration> {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let started = Instant::now();
    stream.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    while started.elapsed() < Duration::from_secs(4) {
        let mut buf = [0u8; 64];
        let cut = stream.write_all(b"X").is_err()
            || match std::io::Read::read(stream, &mut buf) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
            };
        if cut {
            return Some(started.elapsed());
        }
    }
    None
}

/// Waits up to `wait` for the server to close `stream`; true when it did.
fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 64];
    match std::io::Read::read(stream, &mut buf) {
        Ok(0) => true,
        Ok(n) => panic!("unexpected {n} bytes from the server"),
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn header_deadline_runs_per_request_not_while_idle() {
    let (backend, aegis) = setup();
    // An idle keep-alive connection outlives read_timeout (1 s): only idle_timeout applies.
    let mut conn = Connection::open(aegis.addr()).unwrap();
    let get = b"GET / HTTP/1.1\r\nHost: app.example\r\n\r\n";
    conn.send_raw(get).unwrap();
    assert_eq!(conn.read_response(false).unwrap().status, 200);
    assert!(
        !closed_within(conn.stream(), Duration::from_millis(1500)),
        "an idle keep-alive connection was closed after read_timeout"
    );
    conn.send_raw(get).unwrap();
    assert_eq!(conn.read_response(false).unwrap().status, 200);
    // The next header on the same connection gets read_timeout again, from its first byte.
    let elapsed = dribble_until_cut(conn.stream()).expect("a dribbling client was not cut");
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_millis(2500),
        "cut after {elapsed:?}"
    );
    // A new connection that sends nothing is dropped after read_timeout.
    let mut silent = TcpStream::connect(aegis.addr()).unwrap();
    let started = Instant::now();
    assert!(closed_within(&mut silent, Duration::from_secs(4)));
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(backend.request_count(), 2);
}

#[test]
fn idle_keepalive_connections_are_closed_after_idle_timeout() {
    let backend = FakeBackend::start("b").unwrap();
    let aegis = Aegis::start(
        &[(backend.url(), 1)],
        r#"
server:
  read_timeout: 1s
  idle_timeout: 2500ms
"#,
    );
    let mut conn = Connection::open(aegis.addr()).unwrap();
    conn.send_raw(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    assert_eq!(conn.read_response(false).unwrap().status, 200);
    let idle_since = Instant::now();
    // Still open past read_timeout (the header deadline does not run while idle)…
    assert!(!closed_within(conn.stream(), Duration::from_millis(1500)));
    // …and closed once idle_timeout has passed.
    assert!(closed_within(conn.stream(), Duration::from_secs(4)));
    let idle = idle_since.elapsed();
    assert!(
        idle >= Duration::from_millis(2400) && idle < Duration::from_millis(4000),
        "closed after {idle:?} idle"
    );
}

#[test]
fn slowloris_is_cut_off_by_read_timeout() {
    let (backend, aegis) = setup();
    let mut stream = TcpStream::connect(aegis.addr()).unwrap();
    let elapsed = dribble_until_cut(&mut stream).expect("a dribbling client was not disconnected");
    assert!(
        elapsed >= Duration::from_millis(900),
        "cut too early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_millis(2500),
        "cut too late: {elapsed:?}"
    );
    assert_eq!(backend.request_count(), 0);
    // Normal clients are unaffected.
    assert_eq!(
        send(&aegis, b"GET / HTTP/1.1\r\nHost: app.example\r\n\r\n").status,
        200
    );
}

/// Each case runs over plain TCP and over TLS.
macro_rules! plain_and_tls {
    ($($case:ident),* $(,)?) => {
        mod plain {
            $(#[test]
            fn $case() {
                super::$case(false)
            })*
        }
        mod over_tls {
            $(#[test]
            fn $case() {
                super::$case(true)
            })*
        }
    };
}

plain_and_tls!(
    smuggling_attempts_are_refused_and_never_forwarded,
    legitimate_framing_is_forwarded_once_and_normalised,
    traversal_and_malformed_paths_are_refused,
    hosts_outside_the_allowlist_are_refused,
    disallowed_methods_get_405_with_allow,
    oversized_headers_and_bodies_are_refused,
    client_forwarding_headers_are_replaced,
    backend_responses_are_hardened,
);

#[test]
fn parser_refusals_are_logged_and_counted_as_aegis_refusals() {
    let (backend, aegis) = setup();
    let before = aegis.admin_get("/metrics").text();
    let count = |metrics: &str, reason: &str| -> u64 {
        let prefix = format!("aegis_refusals_total{{reason=\"{reason}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map_or(0, |n| n.trim().parse().unwrap())
    };
    let resp = send(
        &aegis,
        b"POST / HTTP/1.1\r\nHost: app.example\r\nContent-Length: 4\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
    );
    assert_refused(&resp, 400, "ambiguous request");
    let resp = send(&aegis, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
    assert_refused(&resp, 400, "bad request");
    let id = resp
        .header("x-request-id")
        .expect("a request id")
        .to_string();
    assert!(common::wait_until(Duration::from_secs(5), || {
        let after = aegis.admin_get("/metrics").text();
        count(&after, "ambiguous_request") == count(&before, "ambiguous_request") + 1
            && count(&after, "bad_request") == count(&before, "bad_request") + 1
    }));
    assert!(
        common::wait_until(Duration::from_secs(5), || aegis.output().contains(&id)),
        "no access line for the refused request: {}",
        aegis.output()
    );
    assert_eq!(backend.request_count(), 0);
}
