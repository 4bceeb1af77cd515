//! Resilience on real traffic (SPEC §4.3–§4.5): the circuit breaker per backend, warm-up of a
//! recovered backend, and the answer when nothing can take a request.

mod common;

use common::http::Connection;
use common::{wait_until, Aegis};
use fake_backends::FakeBackend;
use std::time::Duration;

const BREAKER: &str = r#"
health_check:
  interval: 1h
circuit_breaker:
  failure_threshold: 3
  success_threshold: 2
  open_timeout: 1s
  half_open_max_requests: 2
"#;

#[test]
fn a_failing_backend_is_opened_and_gets_no_traffic() {
    let (bad, good) = (
        FakeBackend::start("bad").unwrap(),
        FakeBackend::start("good").unwrap(),
    );
    bad.set_status(500);
    let aegis = Aegis::start(
        &[(bad.url(), 1), (good.url(), 1)],
        r#"
health_check:
  interval: 1h
circuit_breaker:
  failure_threshold: 3
  open_timeout: 1h
"#,
    );
    let mut conn = Connection::open(aegis.addr()).unwrap();
    let statuses: Vec<u16> = (0..40).map(|_| conn.get("/").unwrap().status).collect();
    assert_eq!(
        bad.request_count(),
        3,
        "exactly failure_threshold requests reach the bad backend"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 500).count(), 3);
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 37);
    assert_eq!(aegis.backend_status(0)["breaker"], "open");
    assert!(aegis.output().contains("circuit breaker for") && aegis.output().contains("opened"));
}

/// Aegis in front of `flaky` (failing) and `good`, with flaky's breaker opened by
/// `failure_threshold` (3) failed requests.
fn with_an_open_breaker(flaky: &FakeBackend, good: &FakeBackend) -> Aegis {
    flaky.set_status(500);
    let aegis = Aegis::start(&[(flaky.url(), 1), (good.url(), 1)], BREAKER);
    assert!(wait_until(Duration::from_secs(5), || {
        aegis.get("/");
        flaky.request_count() >= 3
    }));
    assert_eq!(aegis.backend_status(0)["breaker"], "open");
    flaky.reset_stats();
    aegis
}

/// Sends requests until, `open_timeout` after opening, the breaker lets one through to `flaky`
/// as a probe; true if one arrived.
fn wait_for_a_probe(aegis: &Aegis, flaky: &FakeBackend) -> bool {
    wait_until(Duration::from_secs(5), || {
        aegis.get("/");
        flaky.request_count() >= 1
    })
}

#[test]
fn half_open_admits_at_most_half_open_max_requests_probes_at_once() {
    let (flaky, good) = (
        FakeBackend::start("flaky").unwrap(),
        FakeBackend::start("good").unwrap(),
    );
    let aegis = with_an_open_breaker(&flaky, &good);
    // Slow good answers: the first probe (one of success_threshold = 2) keeps it half-open.
    flaky.set_status(200);
    flaky.set_latency(Duration::from_millis(400));
    assert!(wait_for_a_probe(&aegis, &flaky));
    assert_eq!(aegis.backend_status(0)["breaker"], "half-open");
    flaky.reset_stats();
    let addr = aegis.addr();
    let clients: Vec<_> = (0..8)
        .map(|_| std::thread::spawn(move || common::http::get(addr, "/").status))
        .collect();
    let statuses: Vec<u16> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert!(
        flaky.request_count() >= 1,
        "the half-open backend was probed"
    );
    assert!(
        flaky.max_in_flight() <= 2,
        "{} probes at once",
        flaky.max_in_flight()
    );
}

#[test]
fn half_open_closes_after_success_threshold_good_probes() {
    let (flaky, good) = (
        FakeBackend::start("flaky").unwrap(),
        FakeBackend::start("good").unwrap(),
    );
    let aegis = with_an_open_breaker(&flaky, &good);
    flaky.set_status(200);
    assert!(wait_for_a_probe(&aegis, &flaky));
    assert_eq!(aegis.backend_status(0)["breaker"], "half-open");
    assert!(wait_until(Duration::from_secs(5), || {
        aegis.get("/");
        aegis.backend_status(0)["breaker"] == "closed"
    }));
    assert!(flaky.request_count() >= 2, "success_threshold probes");
    // Closed: flaky takes a share again (a warming-up quarter of it: 1 request in 5).
    flaky.reset_stats();
    for _ in 0..20 {
        assert_eq!(aegis.get("/").status, 200);
    }
    assert!(flaky.request_count() >= 2, "{}", flaky.request_count());
}

#[test]
fn a_failed_probe_reopens_the_breaker_at_once() {
    let (flaky, good) = (
        FakeBackend::start("flaky").unwrap(),
        FakeBackend::start("good").unwrap(),
    );
    let aegis = with_an_open_breaker(&flaky, &good);
    // Still failing after open_timeout: the first probe fails and the breaker opens again.
    assert!(wait_for_a_probe(&aegis, &flaky));
    assert_eq!(aegis.backend_status(0)["breaker"], "open");
    let probes = flaky.request_count();
    for _ in 0..10 {
        assert_eq!(aegis.get("/").status, 200);
    }
    assert_eq!(
        flaky.request_count(),
        probes,
        "a re-opened backend got traffic"
    );
}

#[test]
fn passing_health_checks_do_not_close_an_open_breaker() {
    let (sick, good) = (
        FakeBackend::start("sick").unwrap(),
        FakeBackend::start("good").unwrap(),
    );
    sick.set_status(503); // real requests fail, /health still answers 200
    let aegis = Aegis::start(
        &[(sick.url(), 1), (good.url(), 1)],
        r#"
health_check:
  interval: 100ms
circuit_breaker:
  failure_threshold: 2
  open_timeout: 1h
"#,
    );
    while sick.request_count() < 2 {
        aegis.get("/");
    }
    let probes = sick.health_probes();
    assert!(wait_until(Duration::from_secs(5), || sick.health_probes()
        >= probes + 3));
    let status = aegis.backend_status(0);
    assert_eq!(status["healthy"], true);
    assert_eq!(status["breaker"], "open");
    for _ in 0..10 {
        assert_eq!(aegis.get("/").header("x-backend"), Some("good"));
    }
}

#[test]
fn a_recovered_backend_warms_up_from_a_quarter_share() {
    let (steady, back) = (
        FakeBackend::start("steady").unwrap(),
        FakeBackend::start("back").unwrap(),
    );
    // Probes every 300 ms: one warm-up step (3 good probes) lasts about 0.9 s.
    let aegis = Aegis::start(
        &[(steady.url(), 1), (back.url(), 1)],
        r#"
health_check:
  interval: 300ms
  unhealthy_threshold: 1
  healthy_threshold: 1
"#,
    );
    back.set_health_status(500);
    assert!(wait_until(Duration::from_secs(5), || aegis
        .backend_status(1)["healthy"]
        == false));
    back.set_health_status(200);
    assert!(wait_until(Duration::from_secs(5), || aegis
        .backend_status(1)["warmup_percent"]
        == 25));
    let mut conn = Connection::open(aegis.addr()).unwrap();
    let share = |conn: &mut Connection| {
        let picks: Vec<bool> = (0..100)
            .map(|_| conn.get("/").unwrap().header("x-backend") == Some("back"))
            .collect();
        picks.iter().filter(|p| **p).count()
    };
    let first = share(&mut conn);
    let still_quarter = aegis.backend_status(1)["warmup_percent"] == 25;
    if still_quarter {
        // Weights 1 : 0.25 → 20 % of requests (a full share would be 50 %).
        assert!(
            (15..=25).contains(&first),
            "{first}% during the first probe window"
        );
    } else {
        assert!(first < 40, "{first}%: warm-up did not reduce the share");
    }
    assert!(wait_until(Duration::from_secs(10), || aegis
        .backend_status(1)["warmup_percent"]
        == 100));
    let full = share(&mut conn);
    assert!((45..=55).contains(&full), "{full}% after warm-up");
    let log = aegis.output();
    for step in ["warm-up at 50%", "warm-up at 75%", "warm-up at 100%"] {
        assert!(log.contains(step), "{step} not logged");
    }
}

#[test]
fn all_backends_open_gives_503_with_retry_after() {
    let (a, b) = (
        FakeBackend::start("a").unwrap(),
        FakeBackend::start("b").unwrap(),
    );
    a.set_status(500);
    b.set_status(502);
    let aegis = Aegis::start(
        &[(a.url(), 1), (b.url(), 1)],
        r#"
health_check:
  interval: 1h
circuit_breaker:
  failure_threshold: 2
  open_timeout: 20s
"#,
    );
    let mut last = aegis.get("/");
    for _ in 0..10 {
        if last.status == 503 {
            break;
        }
        last = aegis.get("/");
    }
    assert_eq!(last.status, 503, "{last:?}");
    assert_eq!(
        last.json(),
        serde_json::json!({"error": "no healthy backend"})
    );
    let retry: u64 = last.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=20).contains(&retry), "Retry-After {retry}");
    assert_eq!(
        a.request_count() + b.request_count(),
        4,
        "open backends got traffic"
    );
}
