//! Black-box tests of the proxy core (SPEC §3.7, §4.1, §4.2, §4.5, §8): the real binary, real
//! sockets, controllable fake backends.

mod common;

use common::http::{self, Connection};
use common::{wait_until, Aegis};
use fake_backends::FakeBackend;
use std::time::{Duration, Instant};

fn urls(backends: &[&FakeBackend], weights: &[u32]) -> Vec<(String, u32)> {
    backends
        .iter()
        .zip(weights)
        .map(|(b, w)| (b.url(), *w))
        .collect()
}

#[test]
fn weights_one_one_two_give_smooth_shares() {
    let (a, b, c) = (
        FakeBackend::start("a").unwrap(),
        FakeBackend::start("b").unwrap(),
        FakeBackend::start("c").unwrap(),
    );
    let aegis = Aegis::start(&urls(&[&a, &b, &c], &[1, 1, 2]), "");
    let mut conn = Connection::open(aegis.addr()).unwrap();
    let picks: Vec<String> = (0..1000)
        .map(|_| {
            let resp = conn.get("/").unwrap();
            assert_eq!(resp.status, 200);
            resp.header("x-backend").unwrap().to_string()
        })
        .collect();
    for (name, share) in [("a", 25.0), ("b", 25.0), ("c", 50.0)] {
        let got = picks.iter().filter(|p| *p == name).count() as f64 / 10.0;
        assert!(
            (got - share).abs() <= 2.0,
            "{name}: {got}% of requests, want {share}%"
        );
    }
    // Smooth: every window of four consecutive requests holds a, b once and c twice, and no
    // backend gets two requests in a row.
    for window in picks.windows(4) {
        let count = |n: &str| window.iter().filter(|p| *p == n).count();
        assert_eq!(
            (count("a"), count("b"), count("c")),
            (1, 1, 2),
            "{window:?}"
        );
    }
    assert!(
        picks.windows(2).all(|w| w[0] != w[1]),
        "two in a row: {picks:?}"
    );
}

#[test]
fn failing_health_checks_take_a_backend_out_and_back() {
    let (a, b) = (
        FakeBackend::start("a").unwrap(),
        FakeBackend::start("b").unwrap(),
    );
    let aegis = Aegis::start(&urls(&[&a, &b], &[1, 1]), "");
    b.set_health_status(500);
    // unhealthy_threshold is 2 probes at 100 ms intervals.
    assert!(wait_until(Duration::from_secs(5), || {
        b.reset_stats();
        (0..6).all(|_| aegis.get("/").header("x-backend") == Some("a"))
    }));
    assert_eq!(b.request_count(), 0, "an unhealthy backend got traffic");
    assert!(
        wait_until(Duration::from_secs(5), || b.health_probes() >= 2),
        "probes keep running"
    );
    b.set_health_status(200);
    assert!(
        wait_until(Duration::from_secs(5), || aegis
            .get("/")
            .header("x-backend")
            == Some("b")),
        "backend b never came back"
    );
    assert!(
        aegis.output().contains("is unhealthy"),
        "{}",
        aegis.output()
    );
}

#[test]
fn refused_connections_are_retried_on_another_backend() {
    let (a, b) = (
        FakeBackend::start("a").unwrap(),
        FakeBackend::start("b").unwrap(),
    );
    let aegis = Aegis::start(
        &urls(&[&a, &b], &[1, 1]),
        r#"
health_check:
  interval: 1h # keep the health checks from noticing first
"#,
    );
    b.set_refuse_connections(true);
    for _ in 0..20 {
        let resp = aegis.get("/");
        assert_eq!(resp.status, 200, "{}", resp.text());
        assert_eq!(resp.header("x-backend"), Some("a"));
    }
}

#[test]
fn all_backends_down_gives_503_json() {
    let a = FakeBackend::start("a").unwrap();
    let aegis = Aegis::start(&urls(&[&a], &[1]), "");
    a.set_health_status(503);
    assert!(wait_until(Duration::from_secs(5), || aegis.get("/").status == 503));
    let resp = aegis.get("/");
    assert_eq!(resp.status, 503);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert_eq!(
        resp.json(),
        serde_json::json!({"error": "no healthy backend"})
    );
    let retry: u64 = resp.header("retry-after").unwrap().parse().unwrap();
    assert!(retry >= 1);
    assert_eq!(resp.header("x-frame-options"), Some("DENY"));
}

#[test]
fn backend_sees_only_aegis_forwarding_headers() {
    let a = FakeBackend::start("a").unwrap();
    let aegis = Aegis::start(&urls(&[&a], &[1]), "");
    let request = b"GET /some/path?q=1 HTTP/1.1\r\nHost: public.example\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Request-ID: forged\r\nConnection: keep-alive, X-Secret\r\nX-Secret: s\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nUpgrade: h2c\r\nProxy-Authorization: Basic eA==\r\n\r\n";
    let resp = http::raw(aegis.addr(), request).unwrap();
    assert_eq!(resp.status, 200);
    let seen = a.requests().pop().expect("the backend got the request");
    assert_eq!(seen.target, "/some/path?q=1");
    assert_eq!(seen.header_all("x-forwarded-for"), vec!["127.0.0.1"]);
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(seen.header("host"), Some(a.addr().to_string().as_str()));
    let id = seen.header("x-request-id").unwrap();
    assert_ne!(id, "forged");
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
    assert_eq!(resp.header("x-request-id"), Some(id));
    for gone in [
        "x-secret",
        "keep-alive",
        "te",
        "upgrade",
        "proxy-authorization",
    ] {
        assert!(seen.header(gone).is_none(), "{gone} was forwarded");
    }
    // The access log names the request id and masks the client.
    assert!(wait_until(Duration::from_secs(2), || aegis
        .output()
        .contains(id)));
    let log = aegis.output();
    let line = log.lines().find(|l| l.contains(id)).unwrap();
    assert!(line.contains("\"client\":\"127.0.x.x\""), "{line}");
    assert!(!line.contains("q=1"), "query string logged: {line}");
}

#[test]
fn sigterm_lets_a_slow_request_finish() {
    let a = FakeBackend::start("a").unwrap();
    a.set_latency(Duration::from_millis(1500));
    let mut aegis = Aegis::start(&urls(&[&a], &[1]), "");
    let addr = aegis.addr();
    let slow = std::thread::spawn(move || http::get(addr, "/slow"));
    assert!(wait_until(Duration::from_secs(5), || a.in_flight() == 1));
    let started = Instant::now();
    aegis.signal("TERM");
    let resp = slow.join().unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "a");
    let status = aegis
        .wait_exit(Duration::from_secs(10))
        .expect("aegis exits");
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(aegis.output().contains("Aegis shutdown complete"));
}

#[test]
fn an_unreachable_backend_with_nothing_to_retry_on_is_a_502() {
    let a = FakeBackend::start("a").unwrap();
    let aegis = Aegis::start(
        &urls(&[&a], &[1]),
        r#"
health_check:
  interval: 1h
"#,
    );
    a.set_refuse_connections(true);
    let resp = aegis.get("/");
    assert_eq!(resp.status, 502);
    assert_eq!(resp.json(), serde_json::json!({"error": "bad gateway"}));
    assert!(resp.header("retry-after").is_none());
}
