//! Unit tests of the pool: selection, breakers, warm-up and reconfiguration by URL.

use super::*;
use crate::breaker::BreakerState;
use crate::config::parse;

fn pool(yaml: &str) -> UpstreamPool {
    let config = parse(yaml).unwrap();
    UpstreamPool::new(&config, Arc::new(EventLog::new()))
}

const THREE: &str = "backends:\n  - url: http://a.example\n  - url: http://b.example\n  - url: http://c.example\n    weight: 2\ncircuit_breaker:\n  failure_threshold: 2\n  open_timeout: 10s\n  half_open_max_requests: 1\n";

fn pick(pool: &UpstreamPool, now: Instant) -> String {
    match pool.select(now, &[]) {
        Selection::Chosen { backend, .. } => backend.spec.url.clone(),
        other => panic!("nothing chosen: {other:?}"),
    }
}

fn counts(pool: &UpstreamPool, n: usize) -> Vec<(String, usize)> {
    let now = Instant::now();
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for _ in 0..n {
        *counts.entry(pick(pool, now)).or_default() += 1;
    }
    counts.into_iter().collect()
}

fn url(name: &str) -> String {
    format!("http://{name}.example")
}

fn backend(pool: &UpstreamPool, name: &str) -> Arc<Backend> {
    pool.backends()
        .into_iter()
        .find(|b| b.spec.url == url(name))
        .expect("a member")
}

#[test]
fn selection_follows_weights() {
    let pool = pool(THREE);
    assert_eq!(
        counts(&pool, 400),
        vec![(url("a"), 100), (url("b"), 100), (url("c"), 200)]
    );
}

#[test]
fn unhealthy_and_open_backends_are_skipped() {
    let pool = pool(THREE);
    let now = Instant::now();
    let (a, b) = (backend(&pool, "a"), backend(&pool, "b"));
    pool.set_healthy(&backend(&pool, "c"), false);
    let ticket = Ticket { probe: false };
    pool.record(&a, ticket, Outcome::Failure, now);
    pool.record(&a, ticket, Outcome::Failure, now);
    assert_eq!(a.breaker_state(), BreakerState::Open);
    for _ in 0..10 {
        assert_eq!(pick(&pool, now), url("b"));
    }
    assert!(matches!(
        pool.select(now, &[b.serial]),
        Selection::Unavailable { retry_after: 10 }
    ));
    // After open_timeout the open backend half-opens and takes one probe at a time.
    let later = now + Duration::from_secs(10);
    let chosen: Vec<Selection> = (0..4).map(|_| pool.select(later, &[b.serial])).collect();
    assert!(
        matches!(&chosen[0], Selection::Chosen { backend, ticket: Ticket { probe: true } } if backend.serial == a.serial)
    );
    assert!(chosen[1..]
        .iter()
        .all(|s| matches!(s, Selection::Unavailable { .. })));
}

#[test]
fn a_recovered_backend_warms_up() {
    let pool = pool(THREE);
    let c = backend(&pool, "c");
    pool.set_healthy(&c, false);
    pool.set_healthy(&c, true);
    assert_eq!(c.warmup_percent(), 25);
    // Weights 1:1:2 with the third at 25 % → 1:1:0.5 → 400:400:200 out of 1000.
    assert_eq!(
        counts(&pool, 1000),
        vec![(url("a"), 400), (url("b"), 400), (url("c"), 200)]
    );
    for _ in 0..9 {
        pool.observe_probe(&c, true);
    }
    assert_eq!(c.warmup_percent(), 100);
}

#[test]
fn reconfigure_keeps_state_by_url_and_applies_weights_at_once() {
    let pool = pool(THREE);
    let now = Instant::now();
    let a = backend(&pool, "a");
    let ticket = Ticket { probe: false };
    pool.record(&a, ticket, Outcome::Failure, now);
    pool.record(&a, ticket, Outcome::Failure, now);
    a.metrics.started();
    let next = parse(
        "backends:\n  - url: http://a.example\n  - url: http://b.example\n    weight: 3\n  - url: http://d.example\ncircuit_breaker:\n  failure_threshold: 2\n  open_timeout: 10s\n",
    )
    .unwrap();
    let change = pool.reconfigure(&next);
    assert_eq!(
        change,
        MembershipChange {
            added: vec![url("d")],
            removed: vec![url("c")],
            reweighted: vec![(url("b"), 1, 3)],
            ..MembershipChange::default()
        }
    );
    // The kept backend's breaker is still open and its counters go on.
    let kept = backend(&pool, "a");
    assert_eq!(kept.serial, a.serial);
    assert_eq!(kept.breaker_state(), BreakerState::Open);
    assert_eq!(kept.metrics.in_flight(), 1);
    // The added one waits for its first passing probe; the removed one is gone.
    let d = backend(&pool, "d");
    assert!(d.is_joining() && !d.is_healthy());
    assert_eq!(counts(&pool, 30), vec![(url("b"), 30)]);
    pool.observe_probe(&d, false);
    assert!(d.is_joining());
    pool.observe_probe(&d, true);
    assert!(!d.is_joining() && d.is_healthy());
    assert_eq!(d.warmup_percent(), 25);
    // b at weight 3 (×4 quarters) against d at 1 × 1 quarter: 12 : 1.
    assert_eq!(counts(&pool, 130), vec![(url("b"), 120), (url("d"), 10)]);
}

#[test]
fn a_drained_backend_gets_nothing_until_enabled() {
    let pool = pool(THREE);
    assert_eq!(backend(&pool, "c").id(), "http-c.example");
    assert_eq!(
        pool.set_admin_state("http-c.example", AdminState::Drained),
        Some(url("c"))
    );
    assert!(backend(&pool, "c").is_drained());
    assert_eq!(counts(&pool, 100), vec![(url("a"), 50), (url("b"), 50)]);
    assert_eq!(pool.set_admin_state("http-nope", AdminState::Drained), None);
    pool.set_admin_state("http-c.example", AdminState::Enabled);
    assert_eq!(
        counts(&pool, 400),
        vec![(url("a"), 100), (url("b"), 100), (url("c"), 200)]
    );
    let events: Vec<String> = pool
        .events()
        .recent()
        .iter()
        .map(|e| e.event.to_string())
        .collect();
    assert_eq!(
        events,
        [
            "backend http://c.example drained by an operator",
            "backend http://c.example enabled by an operator"
        ]
    );
}

#[test]
fn a_reload_keeps_a_drained_backend_drained() {
    let pool = pool(THREE);
    pool.set_admin_state("http-a.example", AdminState::Drained);
    let next =
        parse("backends:\n  - url: http://a.example\n    weight: 5\n  - url: http://b.example\n")
            .unwrap();
    pool.reconfigure(&next);
    assert!(backend(&pool, "a").is_drained());
    assert_eq!(counts(&pool, 10), vec![(url("b"), 10)]);
}

#[test]
fn added_backends_serve_at_once_when_no_kept_one_can() {
    let pool = pool(THREE);
    let next = parse("backends:\n  - url: http://d.example\n  - url: http://e.example\n").unwrap();
    pool.reconfigure(&next);
    let d = backend(&pool, "d");
    assert!(d.is_healthy() && !d.is_joining());
    assert_eq!(d.warmup_percent(), 25);
    assert_eq!(counts(&pool, 10), vec![(url("d"), 5), (url("e"), 5)]);
}
