//! Routes and pools (SPEC §17), what runs per pool beyond selection: each pool's own adaptive
//! loop (a slow pool tightens only its routes' limits), black-box on the real binary with fake
//! backends.

mod common;

use common::http::read_response;
use common::{connect_from, wait_until, Aegis};
use fake_backends::FakeBackend;
use serde_json::Value;
use std::io::{BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

/// Two pools behind two host routes: `api` with a route limit of its own, `www` under the
/// top-level one; both 20 requests/s, burst 20 (a 1 s window), and a fast adaptive loop.
fn two_pools(api: &FakeBackend, www: &FakeBackend) -> String {
    format!(
        r#"
pools:
  api:
    backends: [{{url: "{}"}}]
  www:
    backends: [{{url: "{}"}}]
routes:
  - host: api.example.com
    pool: api
    rate_limit: {{requests_per_second: 20, burst: 20}}
  - host: www.example.com
    pool: www
rate_limit: {{requests_per_second: 20, burst: 20}}
adaptive:
  enabled: true
  evaluation_interval: 500ms
  latency_threshold_ms: 200
  reduction_factor: 0.5
  recovery_factor: 1.1
  min_rate: 5
  max_rate: 20
"#,
        api.url(),
        www.url()
    )
}

/// Keeps requests going to `host` until `stop`: the samples the pool's loop decides on. Four
/// requests per client (loopback address `127.x.y.lane`), so that no client reaches a limit:
/// refused requests would have no latency and would come back at once.
fn traffic(
    addr: SocketAddr,
    host: &'static str,
    lane: u8,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let request = format!("GET /load HTTP/1.1\r\nHost: {host}\r\n\r\n");
        for i in 0u32.. {
            let source = Ipv4Addr::new(127, (i / 250 % 250 + 1) as u8, (i % 250 + 1) as u8, lane);
            let Ok(stream) = connect_from(source, addr) else {
                continue;
            };
            let mut reader = BufReader::new(stream);
            for _ in 0..4 {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let sent = reader.get_mut().write_all(request.as_bytes());
                let Ok(response) = sent.and_then(|_| read_response(&mut reader, false)) else {
                    break;
                };
                assert_eq!(response.status, 200, "{host}");
            }
        }
    })
}

/// `n` requests to `host` at once from the fresh loopback address `source`, each on its own
/// connection: how many were admitted (200).
fn admitted_at_once(addr: SocketAddr, host: &str, source: Ipv4Addr, n: usize) -> usize {
    let start = Arc::new(Barrier::new(n));
    let request = format!("GET /burst HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (start, request) = (start.clone(), request.clone());
            std::thread::spawn(move || {
                let stream = connect_from(source, addr).expect("connect");
                let mut reader = BufReader::new(stream);
                start.wait();
                reader.get_mut().write_all(request.as_bytes()).unwrap();
                read_response(&mut reader, false)
                    .expect("a response")
                    .status
            })
        })
        .collect();
    let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
    statuses.iter().filter(|s| **s == 200).count()
}

/// The `/status` entry of pool `name`.
fn pool(status: &Value, name: &str) -> Value {
    status["pools"]
        .as_array()
        .expect("pools")
        .iter()
        .find(|p| p["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no pool {name} in {status}"))
}

#[test]
fn a_slow_pool_tightens_only_its_own_routes_limits() {
    let (api, www) = (
        FakeBackend::start("api").unwrap(),
        FakeBackend::start("www").unwrap(),
    );
    // api's P95 is twice the 200 ms threshold; www's far below 70 % of it (a margin for a
    // busy machine).
    api.set_latency(Duration::from_millis(400));
    www.set_latency(Duration::from_millis(10));
    let aegis = Aegis::start(&[], &two_pools(&api, &www));
    // Before any slowness: both routes give a fresh client its whole burst.
    let addr = aegis.addr();
    assert_eq!(
        admitted_at_once(addr, "api.example.com", Ipv4Addr::new(127, 0, 7, 1), 25),
        20
    );
    let stop = Arc::new(AtomicBool::new(false));
    let load = [
        traffic(addr, "api.example.com", 1, stop.clone()),
        traffic(addr, "api.example.com", 2, stop.clone()),
        traffic(addr, "www.example.com", 3, stop.clone()),
    ];
    let settled = wait_until(Duration::from_secs(20), || {
        let status = aegis.status();
        pool(&status, "api")["adaptive"]["rate"] == 5.0
            && pool(&status, "www")["adaptive"]["p95_ms"].is_number()
    });
    let status = aegis.status();
    assert!(settled, "pools never settled: {}", status["pools"]);
    let (api_loop, www_loop) = (
        pool(&status, "api")["adaptive"].clone(),
        pool(&status, "www")["adaptive"].clone(),
    );
    assert_eq!(api_loop["scale"], 0.25, "{api_loop}");
    assert_eq!(www_loop["rate"], 20.0, "{www_loop}");
    assert_eq!(www_loop["scale"], 1.0, "{www_loop}");
    assert_eq!(www_loop["last_decision"], "hold", "{www_loop}");
    assert!(
        www_loop["p95_ms"].as_f64().unwrap() < 140.0,
        "www's own latency, not api's: {www_loop}"
    );
    // The route to the slow pool now admits a quarter of its own limit (5 per 1 s window); the
    // other route still gives a fresh client all 20.
    let on_api = admitted_at_once(addr, "api.example.com", Ipv4Addr::new(127, 0, 7, 2), 25);
    let on_www = admitted_at_once(addr, "www.example.com", Ipv4Addr::new(127, 0, 7, 3), 25);
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
    assert!((5..=8).contains(&on_api), "api admitted {on_api} of 25");
    assert_eq!(on_www, 20, "www admitted {on_www} of 25");
    let output = aegis.output();
    assert!(
        output.contains("adaptive: pool api: reduce rate 20.0 -> 10.0 req/s"),
        "the event names the pool"
    );
    assert!(
        !output.contains("adaptive: pool www: reduce"),
        "www tightened"
    );
}
