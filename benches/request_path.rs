//! Criterion micro-benchmarks of each request-path layer (SPEC §9: each well under 1 µs per
//! request): the rate-limit check, backend selection, request validation, metrics recording and
//! the adaptive decision, plus the per-request work around them in the proxy (request id, masked
//! client address, response header rewriting) so their share is visible too.
//!
//! Run with `cargo bench --bench request_path` (or `just bench`). Measurement times are kept short
//! so the whole run takes under a minute; compare figures from one run, not across machines.

use aegis::balance::{schedule, Selection, UpstreamPool};
use aegis::breaker::Outcome;
use aegis::config::{parse, Config, ConfigHandle};
use aegis::events::EventLog;
use aegis::limit::policy::decide;
use aegis::limit::{ClientKey, RateLimiter};
use aegis::metrics::histogram::LatencyHistogram;
use aegis::metrics::{BackendMetrics, Metrics};
use aegis::proxy::trace;
use aegis::route::{HostPattern, RouteMatch, RouteTable};
use aegis::security::headers::finish_backend_response;
use aegis::security::mask::MaskedIp;
use aegis::security::request::{check_framing, check_path, host_allowed};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use pingora_http::ResponseHeader;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A config with three backends and a rate limit high enough never to refuse in a benchmark.
const CONFIG: &str = "\
backends:
  - url: http://a.example
  - url: http://b.example
  - url: http://c.example
rate_limit:
  requests_per_second: 1000000
  burst: 1000000
adaptive:
  max_rate: 1000000
";

/// A typical browser request head (≈ 330 bytes), as received on the wire.
const BROWSER_HEAD: &[u8] = b"GET /products/shoes?color=red&size=42 HTTP/1.1\r\n\
Host: shop.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Connection: keep-alive\r\n\
Cookie: session=8f14e45fceea167a5a36dedd4bea2543\r\n\
\r\n";

/// Distinct clients cycled through by the "many clients" benchmark: more than the sketch's
/// counters per row, so the rows are visited all over instead of staying in cache.
const CLIENTS: u32 = 1 << 18;

fn config() -> Config {
    parse(CONFIG).expect("the benchmark config is valid")
}

fn rate_limit(c: &mut Criterion) {
    let config = config();
    let limiter = RateLimiter::new(&config.rate_limit, &config.adaptive);
    let one = ClientKey::of(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    c.bench_function("limit/check_hot_client", |b| {
        b.iter(|| limiter.check(black_box(one)))
    });
    let keys: Vec<ClientKey> = (0..CLIENTS)
        .map(|i| ClientKey::of(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i))))
        .collect();
    let mut next = 0usize;
    c.bench_function("limit/check_rotating_262k_clients", |b| {
        b.iter(|| {
            next = (next + 1) % keys.len();
            limiter.check(black_box(keys[next]))
        })
    });
    // Cluster mode (§13): the same hot client with the shared table in front (Redis "up", the
    // client synced), as the request path of a cluster instance pays it.
    let table = std::sync::Arc::new(aegis::cluster::SharedTable::default());
    table.set_up(2);
    let shared = RateLimiter::new(&config.rate_limit, &config.adaptive).with_shared(table.clone());
    shared.check(one);
    table.drain(1);
    table.apply(1, 0.0, &[(one, 1)]);
    c.bench_function("limit/check_hot_client_cluster", |b| {
        b.iter(|| shared.check(black_box(one)))
    });
    let v6: IpAddr = "2001:db8:1:2::1".parse().expect("a valid IPv6 literal");
    c.bench_function("limit/client_key_of_ipv6", |b| {
        b.iter(|| ClientKey::of(black_box(v6)))
    });
}

fn selection(c: &mut Criterion) {
    let config = config();
    let pool = UpstreamPool::new(&config, Arc::new(EventLog::new()));
    let now = Instant::now();
    c.bench_function("balance/select_3_backends", |b| {
        b.iter(|| pool.select(black_box(now), &[]))
    });
    // What the proxy does per request: select, then record the success in the breaker.
    c.bench_function("balance/select_and_record_3_backends", |b| {
        b.iter(|| {
            if let Selection::Chosen { backend, ticket } = pool.select(black_box(now), &[]) {
                pool.record(&backend, ticket, Outcome::Success, now);
            }
        })
    });
    c.bench_function("balance/select_with_instant_now", |b| {
        b.iter(|| pool.select(Instant::now(), &[]))
    });
    let second = pool.backends()[1].clone();
    c.bench_function("balance/peer_clone", |b| {
        b.iter(|| black_box(&second).peer())
    });
    // What every request pays for reading the configuration: one `ArcSwap` load into its
    // context (`RequestCtx::config`), dropped at its end.
    let handle = ConfigHandle::new(config.clone());
    c.bench_function("config/handle_current", |b| {
        b.iter(|| black_box(&handle).current())
    });
    c.bench_function("balance/schedule_build_1_1_2", |b| {
        b.iter(|| schedule::build(black_box(&[(0, 1), (1, 1), (2, 2)])))
    });
}

fn validation(c: &mut Criterion) {
    c.bench_function("validate/check_framing_330b_head", |b| {
        b.iter(|| check_framing(black_box(BROWSER_HEAD)))
    });
    c.bench_function("validate/check_path_plain", |b| {
        b.iter(|| check_path(black_box(b"/products/shoes/42?color=red&size=42")))
    });
    c.bench_function("validate/check_path_escaped", |b| {
        b.iter(|| check_path(black_box(b"/search/caf%C3%A9%20cr%C3%A8me?q=1")))
    });
    let allowed: Vec<String> = ["example.com", "*.example.com", "api.example.org"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    c.bench_function("validate/host_allowed_3_patterns", |b| {
        b.iter(|| host_allowed(black_box("shop.example.com"), black_box(&allowed)))
    });
    c.bench_function("validate/host_allowed_empty_list", |b| {
        b.iter(|| host_allowed(black_box("shop.example.com"), black_box(&[])))
    });
}

/// 100 routes as a large multi-site config writes them: per site an exact host with a path
/// route before its catch-all, wildcard sites, and host-less path routes last.
fn hundred_routes() -> RouteTable {
    let route = |host: Option<String>, prefix: &str| RouteMatch {
        host: host.map(|h| HostPattern::parse(&h).expect("a valid host")),
        prefix: prefix.trim_end_matches('/').to_string(),
    };
    let mut routes = Vec::new();
    for site in 0..25 {
        routes.push(route(Some(format!("api{site}.example.com")), "/v1/"));
        routes.push(route(Some(format!("api{site}.example.com")), "/"));
    }
    for site in 0..20 {
        routes.push(route(Some(format!("*.site{site}.example.org")), "/"));
    }
    for site in 0..20 {
        routes.push(route(None, &format!("/service{site}/")));
    }
    routes.push(route(Some("*.example.com".into()), "/"));
    for site in 0..9 {
        routes.push(route(Some(format!("shop{site}.example.net")), "/"));
    }
    assert_eq!(routes.len(), 100);
    RouteTable::new(&routes)
}

fn routing(c: &mut Criterion) {
    let table = hundred_routes();
    let mut group = c.benchmark_group("route_match");
    group.bench_function("100_routes_hit_first", |b| {
        b.iter(|| {
            table.find(
                black_box(Some("api0.example.com")),
                black_box("/v1/users/42"),
            )
        })
    });
    group.bench_function("100_routes_hit_wildcard", |b| {
        b.iter(|| {
            table.find(
                black_box(Some("Www.Shop.Site17.example.org:443")),
                black_box("/products/shoes"),
            )
        })
    });
    group.bench_function("100_routes_hit_last", |b| {
        b.iter(|| table.find(black_box(Some("shop8.example.net")), black_box("/cart")))
    });
    group.bench_function("100_routes_miss", |b| {
        b.iter(|| table.find(black_box(Some("unknown.example.io")), black_box("/x/y")))
    });
    group.bench_function("100_routes_escaped_path", |b| {
        b.iter(|| {
            table.find(
                black_box(Some("api3.example.com")),
                black_box("/v1/caf%C3%A9"),
            )
        })
    });
    group.finish();
}

fn metrics(c: &mut Criterion) {
    let metrics = Metrics::new();
    let backend = BackendMetrics::default();
    c.bench_function("metrics/record_response", |b| {
        b.iter(|| metrics.record_response(black_box(200), None, Duration::from_micros(700)))
    });
    let latency = Duration::from_micros(850);
    c.bench_function("metrics/backend_started_finished", |b| {
        b.iter(|| {
            black_box(&backend).started();
            backend.finished(Outcome::Success, Some(latency));
        })
    });
    let histogram = LatencyHistogram::default();
    c.bench_function("metrics/histogram_record", |b| {
        b.iter(|| histogram.record(black_box(latency)))
    });
}

fn adaptive(c: &mut Criterion) {
    let config = config();
    let settings = config.adaptive;
    // The three outcomes; each builds its reason string (runs once per evaluation interval,
    // never per request).
    c.bench_function("adaptive/decide_reduce", |b| {
        b.iter(|| decide(black_box(Some(900.0)), 100.0, false, &settings))
    });
    c.bench_function("adaptive/decide_recover", |b| {
        b.iter(|| decide(black_box(Some(20.0)), 100.0, false, &settings))
    });
    c.bench_function("adaptive/decide_no_samples", |b| {
        b.iter(|| decide(black_box(None), 100.0, false, &settings))
    });
}

/// Per-request work the proxy does around the layers above.
fn around_the_layers(c: &mut Criterion) {
    // With uuid's `fast-rng` feature the random bytes come from a thread-local CSPRNG; without
    // it, from a getrandom(2) system call per id (≈ 1.3 µs here).
    c.bench_function("proxy/request_id_uuid_v4_to_string", |b| {
        b.iter(|| uuid::Uuid::new_v4().to_string())
    });
    // §14.3: the `traceparent` sent upstream, continuing a client's trace or starting one
    // (parse, random ids, hex, one header value).
    let mut headers = http::HeaderMap::new();
    headers.insert(
        trace::TRACEPARENT,
        http::HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    );
    c.bench_function("proxy/traceparent_continue", |b| {
        b.iter(|| {
            trace::outgoing(trace::incoming(
                black_box(&headers).get_all(trace::TRACEPARENT),
            ))
        })
    });
    let none = http::HeaderMap::new();
    c.bench_function("proxy/traceparent_start", |b| {
        b.iter(|| {
            trace::outgoing(trace::incoming(
                black_box(&none).get_all(trace::TRACEPARENT),
            ))
        })
    });
    let client = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
    c.bench_function("proxy/masked_ip_to_string", |b| {
        b.iter(|| MaskedIp(black_box(client)).to_string())
    });
    // The response rewriting `response_filter` does on a typical backend answer.
    let request_id = http::HeaderValue::from_static("0b8e9c56-3b43-4f5e-9c1e-6a2f6f0d1e2a");
    c.bench_function("proxy/response_strip_and_harden", |b| {
        b.iter_batched(
            typical_response,
            |mut resp| {
                finish_backend_response(&mut resp, &request_id, None);
                resp
            },
            BatchSize::SmallInput,
        )
    });
}

/// A backend's answer as the response filter sees it.
fn typical_response() -> ResponseHeader {
    let mut resp = ResponseHeader::build(200, Some(8)).expect("a valid status");
    for (name, value) in [
        ("Server", "nginx"),
        ("Date", "Mon, 30 Nov 2026 06:29:15 GMT"),
        ("Content-Type", "text/plain"),
        ("Content-Length", "23"),
    ] {
        resp.append_header(name, value).expect("a valid header");
    }
    resp
}

criterion_group! {
    name = request_path;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(30)
        .nresamples(10_000)
        .without_plots();
    targets = rate_limit, selection, validation, routing, metrics, adaptive, around_the_layers
}
criterion_main!(request_path);
