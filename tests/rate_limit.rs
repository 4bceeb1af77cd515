//! Per-client rate limiting and the adaptive loop (SPEC §5), against the real binary.

mod common;

use common::http::{read_response, Response};
use common::{connect_from, rss_kib, wait_until, Aegis};
use fake_backends::FakeBackend;
use std::io::{BufReader, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::{Duration, Instant};

/// A keep-alive client from a chosen loopback source address.
struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    fn new(source: Ipv4Addr, aegis: &Aegis) -> Client {
        Client {
            reader: BufReader::new(connect_from(source, aegis.addr()).expect("connect")),
        }
    }

    fn get(&mut self) -> Response {
        self.reader
            .get_mut()
            .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        read_response(&mut self.reader, false).unwrap()
    }
}

fn limit_config(rate: u32, burst: u32) -> String {
    format!(
        r#"
rate_limit:
  requests_per_second: {rate}
  burst: {burst}
adaptive:
  enabled: false
  min_rate: 1
  max_rate: 1000
"#
    )
}

#[test]
fn a_fast_client_is_limited_and_another_is_not() {
    let backend = FakeBackend::start("b").unwrap();
    let aegis = Aegis::start(&[(backend.url(), 1)], &limit_config(5, 10));
    let mut greedy = Client::new(Ipv4Addr::new(127, 0, 0, 2), &aegis);
    let statuses: Vec<u16> = (0..15).map(|_| greedy.get().status).collect();
    assert_eq!(&statuses[..10], &[200; 10], "the burst passes");
    let limited = greedy.get();
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("content-type"), Some("application/json"));
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=3).contains(&retry), "Retry-After {retry}");
    assert_eq!(
        limited.json(),
        serde_json::json!({"error": "rate limit exceeded", "retry_after": retry})
    );
    assert_eq!(limited.header("x-frame-options"), Some("DENY"));
    assert_eq!(
        backend.request_count(),
        10,
        "limited requests reach no backend"
    );

    let mut polite = Client::new(Ipv4Addr::new(127, 0, 0, 3), &aegis);
    assert_eq!(polite.get().status, 200);
    // Limited requests are not backend failures: the breaker stays closed.
    assert_eq!(aegis.backend_status(0)["breaker"], "closed");
    assert!(
        aegis.status()["totals"]["refusals"]["rate_limited"]
            .as_u64()
            .unwrap()
            >= 6
    );
}

#[test]
fn a_greedy_client_is_held_to_the_rate() {
    let backend = FakeBackend::start("b").unwrap();
    let rate = 50.0;
    let aegis = Aegis::start(&[(backend.url(), 1)], &limit_config(50, 50));
    let mut greedy = Client::new(Ipv4Addr::new(127, 0, 0, 9), &aegis);
    // Spend the burst, then measure admissions over four seconds of hammering.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        greedy.get();
    }
    let measure = Instant::now();
    let mut admitted = 0u32;
    while measure.elapsed() < Duration::from_secs(4) {
        if greedy.get().status == 200 {
            admitted += 1;
        }
    }
    let sustained = admitted as f64 / measure.elapsed().as_secs_f64();
    assert!(
        (sustained - rate).abs() <= rate * 0.10,
        "sustained {sustained:.1} req/s, want {rate} ± 10 %"
    );
}

#[test]
fn latency_drives_the_rate_down_and_recovery_brings_it_back() {
    let backend = FakeBackend::start("b").unwrap();
    backend.set_latency(Duration::from_millis(120));
    let aegis = Aegis::start(
        &[(backend.url(), 1)],
        r#"
rate_limit:
  requests_per_second: 80
  burst: 80
adaptive:
  enabled: true
  evaluation_interval: 300ms
  latency_threshold_ms: 60
  reduction_factor: 0.5
  recovery_factor: 2.0
  min_rate: 10
  max_rate: 160
"#,
    );
    let addr = aegis.addr();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let traffic: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = common::http::raw(
                        addr,
                        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                    );
                }
            })
        })
        .collect();
    let rate = || {
        aegis.status()["rate_limit"]["current_rate"]
            .as_f64()
            .unwrap()
    };
    let reached_min = wait_until(Duration::from_secs(15), || rate() == 10.0);
    let decisions: Vec<String> = aegis.status()["rate_limit"]["recent_decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["decision"].as_str().unwrap().to_string())
        .collect();
    assert!(
        reached_min,
        "rate stuck at {}; decisions {decisions:?}",
        rate()
    );
    assert!(
        decisions.iter().filter(|d| *d == "reduce").count() >= 3,
        "{decisions:?}"
    );
    assert!(
        decisions
            .windows(2)
            .all(|w| !(w[0] == "reduce" && w[1] == "reduce")),
        "two reductions in a row: {decisions:?}"
    );
    backend.set_latency(Duration::ZERO);
    let recovered = wait_until(Duration::from_secs(15), || rate() >= 80.0);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in traffic {
        t.join().unwrap();
    }
    assert!(
        recovered,
        "rate stuck at {} after latency went away",
        rate()
    );
    assert!(
        aegis
            .output()
            .contains("adaptive: reduce rate 80.0 -> 40.0"),
        "change not logged"
    );
    assert!(
        aegis.output().contains("adaptive: recover rate"),
        "recovery not logged"
    );
}

/// Distinct loopback source addresses: 127.a.b.c with c in 1..=254.
fn source(i: u32) -> Ipv4Addr {
    let i = i + 1000;
    Ipv4Addr::new(
        127,
        (i / 254 / 256 % 254 + 1) as u8,
        (i / 254 % 256) as u8,
        (i % 254 + 1) as u8,
    )
}

#[test]
fn many_clients_neither_grow_memory_nor_get_falsely_limited() {
    let backend = FakeBackend::start("b").unwrap();
    // Window = burst / rate = 4 s: all 5,000 clients are in the estimator at once.
    let aegis = Aegis::start_env(
        &[(backend.url(), 1)],
        r#"
rate_limit:
  requests_per_second: 1
  burst: 4
adaptive:
  enabled: false
  min_rate: 1
  max_rate: 100
"#,
        &[],
        common::NO_ACCESS_LOG,
    );
    let run = |from: u32, to: u32, per_client: u32| -> (u32, u32) {
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let addr = aegis.addr();
                std::thread::spawn(move || {
                    let (mut ok, mut limited) = (0, 0);
                    for i in (from..to).filter(|i| i % 4 == t) {
                        let Ok(stream) = connect_from(source(i), addr) else {
                            continue;
                        };
                        let mut reader = BufReader::new(stream);
                        for _ in 0..per_client {
                            reader
                                .get_mut()
                                .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                                .unwrap();
                            match read_response(&mut reader, false).map(|r| r.status) {
                                Ok(200) => ok += 1,
                                Ok(429) => limited += 1,
                                other => panic!("unexpected {other:?}"),
                            }
                        }
                    }
                    (ok, limited)
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    };
    // 5,000 clients, each at half its limit (2 of 4 requests per window).
    let (ok, limited) = run(0, 5_000, 2);
    let share = limited as f64 / (ok + limited) as f64;
    println!(
        "false limits: {limited} of {} requests ({:.4} %)",
        ok + limited,
        share * 100.0
    );
    assert!(
        share < 0.001,
        "{limited} of {} well-behaved requests got 429",
        ok + limited
    );

    // Memory: 50,000 more distinct clients must not grow the resident set by 5 MB.
    let before = rss_kib(aegis.pid());
    let started = Instant::now();
    run(5_000, 55_000, 1);
    let after = rss_kib(aegis.pid());
    println!(
        "RSS {before} KiB -> {after} KiB after 50,000 distinct clients ({:?})",
        started.elapsed()
    );
    assert!(
        after < before + 5 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
}
