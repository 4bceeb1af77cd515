//! Renders a [`Snapshot`] in the Prometheus text format with the `prometheus` crate's encoder
//! (`aegis_` prefix, the backend URL as a label), following Prometheus's conventions (§14.2):
//! base units (seconds), counters ending in `_total`, latency as histograms that add up across
//! instances, HELP and TYPE on every family. `promtool check metrics` is run on it in
//! `tests/prometheus.rs`; the names are listed in `docs/operations.md`.
//!
//! - `histogram`: histogram families from the recorders' cumulative counts.
//! - `sections`: capacity, TLS, cluster-mode and configuration series.
//! - `acme`: the automatic certificates' series (§18).

mod acme;
mod histogram;
mod sections;

use crate::status::Snapshot;
use prometheus::core::Collector;
use prometheus::{Encoder, GaugeVec, IntCounterVec, Opts, Registry, TextEncoder};
use std::collections::BTreeMap;

/// Registers `metric` and hands it back to be filled in.
fn register<M: Collector + Clone + 'static>(
    registry: &Registry,
    metric: M,
) -> prometheus::Result<M> {
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<GaugeVec> {
    register(r, GaugeVec::new(Opts::new(name, help), labels)?)
}

fn counter(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    register(r, IntCounterVec::new(Opts::new(name, help), labels)?)
}

fn build(s: &Snapshot) -> prometheus::Result<Registry> {
    let r = Registry::new();
    requests(&r, s)?;
    let protocols = counter(
        &r,
        "aegis_requests_by_protocol_total",
        "Requests by client protocol (http/1.1, h2).",
        &["protocol"],
    )?;
    for (protocol, n) in &s.totals.protocols {
        protocols.with_label_values(&[protocol]).inc_by(*n);
    }
    gauge(
        &r,
        "aegis_requests_per_second",
        "Requests per second over the last second.",
        &[],
    )?
    .with_label_values(&[])
    .set(s.totals.requests_per_sec);
    gauge(&r, "aegis_in_flight_requests", "Requests in flight.", &[])?
        .with_label_values(&[])
        .set(s.totals.in_flight as f64);
    gauge(
        &r,
        "aegis_websocket_tunnels",
        "WebSocket tunnels open.",
        &[],
    )?
    .with_label_values(&[])
    .set(s.totals.websocket_tunnels as f64);
    counter(
        &r,
        "aegis_websocket_tunnels_total",
        "WebSocket tunnels opened (101 from a backend).",
        &[],
    )?
    .with_label_values(&[])
    .inc_by(s.totals.websocket_tunnels_opened);
    gauge(&r, "aegis_uptime_seconds", "Seconds since start.", &[])?
        .with_label_values(&[])
        .set(s.uptime_secs);
    gauge(&r, "aegis_draining", "1 while draining at shutdown.", &[])?
        .with_label_values(&[])
        .set(if s.draining { 1.0 } else { 0.0 });

    let b_requests = counter(
        &r,
        "aegis_backend_requests_total",
        "Requests sent to a backend.",
        &["pool", "backend"],
    )?;
    let b_failures = counter(
        &r,
        "aegis_backend_failures_total",
        "Failed backend requests (connect error, timeout, 5xx).",
        &["pool", "backend"],
    )?;
    let b_rate = gauge(
        &r,
        "aegis_backend_requests_per_second",
        "Backend requests per second.",
        &["pool", "backend"],
    )?;
    let b_in_flight = gauge(
        &r,
        "aegis_backend_in_flight",
        "Requests in flight to a backend.",
        &["pool", "backend"],
    )?;
    let b_healthy = gauge(
        &r,
        "aegis_backend_healthy",
        "1 when the backend passes its health checks.",
        &["pool", "backend"],
    )?;
    let b_drained = gauge(
        &r,
        "aegis_backend_drained",
        "1 while an operator has drained the backend (no new requests).",
        &["pool", "backend"],
    )?;
    let b_breaker = gauge(
        &r,
        "aegis_backend_breaker_state",
        "1 for the breaker's current state.",
        &["pool", "backend", "state"],
    )?;
    let b_warmup = gauge(
        &r,
        "aegis_backend_warmup_ratio",
        "Warm-up level, 0.25 to 1.",
        &["pool", "backend"],
    )?;
    let b_weight = gauge(
        &r,
        "aegis_backend_effective_weight",
        "Weight after warm-up.",
        &["pool", "backend"],
    )?;
    let b_errors = gauge(
        &r,
        "aegis_backend_error_ratio",
        "Failed share of backend requests over the last minute.",
        &["pool", "backend"],
    )?;
    for b in &s.backends {
        // §17: the same URL may serve two pools; each is its own series.
        let l = [b.pool.as_str(), b.url.as_str()];
        b_requests.with_label_values(&l).inc_by(b.requests);
        b_failures.with_label_values(&l).inc_by(b.failures);
        b_rate.with_label_values(&l).set(b.requests_per_sec);
        b_in_flight.with_label_values(&l).set(b.in_flight as f64);
        b_healthy
            .with_label_values(&l)
            .set(if b.healthy { 1.0 } else { 0.0 });
        b_drained
            .with_label_values(&l)
            .set(if b.admin_state == "drained" { 1.0 } else { 0.0 });
        for state in ["closed", "half-open", "open"] {
            let on = if b.breaker == state { 1.0 } else { 0.0 };
            b_breaker
                .with_label_values(&[b.pool.as_str(), b.url.as_str(), state])
                .set(on);
        }
        b_warmup
            .with_label_values(&l)
            .set(b.warmup_percent as f64 / 100.0);
        b_weight.with_label_values(&l).set(b.effective_weight);
        b_errors.with_label_values(&l).set(b.error_rate);
    }

    sections::capacity(&r, s)?;
    sections::cluster(&r, s)?;
    sections::config(&r, s)?;
    acme::acme(&r, s)?;

    let rl = &s.rate_limit;
    let rates = [
        (
            "aegis_rate_limit_current_rate",
            "Per-client rate limit, requests per second.",
            rl.current_rate,
        ),
        (
            "aegis_rate_limit_min_rate",
            "Lowest per-client rate the adaptive loop may set (adaptive.min_rate).",
            rl.min_rate,
        ),
        (
            "aegis_rate_limit_max_rate",
            "Highest per-client rate the adaptive loop may set (adaptive.max_rate).",
            rl.max_rate,
        ),
    ];
    for (name, help, value) in rates {
        gauge(&r, name, help, &[])?
            .with_label_values(&[])
            .set(value);
    }
    gauge(
        &r,
        "aegis_adaptive_enabled",
        "1 when the adaptive loop adjusts the rate.",
        &[],
    )?
    .with_label_values(&[])
    .set(if rl.adaptive_enabled { 1.0 } else { 0.0 });
    gauge(
        &r,
        "aegis_rate_limit_limited_per_second",
        "429 answers per second.",
        &[],
    )?
    .with_label_values(&[])
    .set(rl.limited_per_sec);
    gauge(
        &r,
        "aegis_rate_limit_limited_clients",
        "Distinct clients limited in the last second.",
        &[],
    )?
    .with_label_values(&[])
    .set(rl.limited_clients as f64);
    if let Some(p95) = rl.p95_ms {
        gauge(
            &r,
            "aegis_adaptive_p95_seconds",
            "P95 upstream latency at the last adaptive evaluation.",
            &[],
        )?
        .with_label_values(&[])
        .set(p95 / 1000.0);
    }
    sections::tls(&r, s)?;
    Ok(r)
}

/// Requests, responses by status class and Aegis's own answers by reason; with `routes` (§17)
/// each by `route` too (the route's name; `""`, i.e. no label, for requests no route took).
/// Without `routes` the series are exactly those of a config without the feature.
fn requests(r: &Registry, s: &Snapshot) -> prometheus::Result<()> {
    let routed = !s.totals.routes.is_empty();
    let with_route = |label: &'static str| {
        if routed {
            vec![label, "route"]
        } else {
            vec![label]
        }
    };
    let requests = counter(
        r,
        "aegis_requests_total",
        "Requests handled.",
        if routed { &["route"] } else { &[] },
    )?;
    let responses = counter(
        r,
        "aegis_responses_total",
        "Responses by status class.",
        &with_route("class"),
    )?;
    let refusals = counter(
        r,
        "aegis_refusals_total",
        "Requests Aegis answered itself, by reason.",
        &with_route("reason"),
    )?;
    let count = |route: Option<&str>,
                 n: u64,
                 classes: &BTreeMap<String, u64>,
                 reasons: &BTreeMap<String, u64>| {
        requests
            .with_label_values(&route.into_iter().collect::<Vec<_>>())
            .inc_by(n);
        for (family, counts) in [(&responses, classes), (&refusals, reasons)] {
            for (value, n) in counts {
                let labels: Vec<&str> = [value.as_str()].into_iter().chain(route).collect();
                family.with_label_values(&labels).inc_by(*n);
            }
        }
    };
    if !routed {
        let t = &s.totals;
        count(None, t.requests, &t.responses, &t.refusals);
    }
    for t in &s.totals.routes {
        let route = Some(t.route.as_deref().unwrap_or(""));
        count(route, t.requests, &t.responses, &t.refusals);
    }
    Ok(())
}

/// The latency histograms (§14.2): every request as the client saw it, and each backend's
/// response time.
fn histograms(s: &Snapshot) -> [prometheus::proto::MetricFamily; 2] {
    [
        histogram::family(
            "aegis_http_request_duration_seconds",
            "Time from a request's head read to its response done, answered by Aegis or a backend.",
            &[],
            [(Vec::new(), &s.totals.request_duration)],
        ),
        histogram::family(
            "aegis_upstream_response_duration_seconds",
            "Time from a request sent to a backend to its response head received.",
            // Sorted by name, as the other families' labels are written.
            &["backend", "pool"],
            s.backends
                .iter()
                .map(|b| (vec![b.url.as_str(), b.pool.as_str()], &b.response_duration)),
        ),
    ]
}

/// The snapshot in the Prometheus text exposition format.
pub fn render(snapshot: &Snapshot) -> Vec<u8> {
    let mut out = Vec::new();
    match build(snapshot) {
        Ok(registry) => {
            let mut families = registry.gather();
            families.extend(histograms(snapshot));
            families.sort_by(|a, b| a.get_name().cmp(b.get_name()));
            if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
                log::error!("cannot encode metrics: {e}");
            }
        }
        Err(e) => log::error!("cannot build metrics: {e}"),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::snapshot::BackendSnapshot;

    #[test]
    fn renders_backend_series_with_labels() {
        let snapshot = Snapshot {
            backends: vec![BackendSnapshot {
                pool: "api".into(),
                url: "http://a.example".into(),
                admin_state: "drained".into(),
                requests: 7,
                breaker: "open".into(),
                p95_ms: Some(12.5),
                response_duration: {
                    let h = crate::metrics::duration::DurationHistogram::default();
                    for us in [1_000, 2_000, 40_000_000] {
                        h.record(std::time::Duration::from_micros(us));
                    }
                    h.read()
                },
                ..Default::default()
            }],
            tls: crate::status::snapshot::TlsSnapshot {
                handshake_failures: 3,
                certificates: vec![crate::status::snapshot::CertificateSnapshot {
                    name: "example.com".into(),
                    expires_unix: 1_900_000_000,
                }],
                ..Default::default()
            },
            ..Default::default()
        };
        let text = String::from_utf8(render(&snapshot)).unwrap();
        assert!(
            text.contains("aegis_tls_handshake_failures_total 3"),
            "{text}"
        );
        assert!(
            text.contains(
                "aegis_tls_certificate_expiry_timestamp_seconds{name=\"example.com\"} 1900000000"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "aegis_backend_requests_total{backend=\"http://a.example\",pool=\"api\"} 7"
            ),
            "{text}"
        );
        assert!(
            text.contains("aegis_backend_drained{backend=\"http://a.example\",pool=\"api\"} 1"),
            "{text}"
        );
        assert!(text.contains(
            "aegis_backend_breaker_state{backend=\"http://a.example\",pool=\"api\",state=\"open\"} 1"
        ));
        assert!(text.contains(
            "aegis_upstream_response_duration_seconds_bucket{backend=\"http://a.example\",pool=\"api\",le=\"0.0025\"} 2"
        ), "{text}");
        assert!(text.contains(
            "aegis_upstream_response_duration_seconds_bucket{backend=\"http://a.example\",pool=\"api\",le=\"+Inf\"} 3"
        ), "{text}");
        assert!(
            text.contains(
                "aegis_upstream_response_duration_seconds_sum{backend=\"http://a.example\",pool=\"api\"} 40.003"
            ),
            "{text}"
        );
        assert!(
            text.contains("aegis_http_request_duration_seconds_count 0"),
            "{text}"
        );
        assert!(!text.contains("_ms"), "{text}");
    }

    #[test]
    fn with_routes_the_request_counters_carry_the_route() {
        use crate::status::snapshot::RouteTotals;
        let route = |name: Option<&str>, n: u64| RouteTotals {
            route: name.map(str::to_string),
            requests: n,
            responses: BTreeMap::from([("2xx".to_string(), n)]),
            refusals: BTreeMap::from([("no_route".to_string(), n)]),
        };
        let mut snapshot = Snapshot::default();
        snapshot.totals.requests = 9;
        let plain = String::from_utf8(render(&snapshot)).unwrap();
        assert!(plain.contains("\naegis_requests_total 9\n"), "{plain}");
        snapshot.totals.routes = vec![route(Some("api"), 4), route(None, 5)];
        let text = String::from_utf8(render(&snapshot)).unwrap();
        for line in [
            "aegis_requests_total{route=\"api\"} 4",
            "aegis_requests_total{route=\"\"} 5",
            "aegis_responses_total{class=\"2xx\",route=\"api\"} 4",
            "aegis_refusals_total{reason=\"no_route\",route=\"\"} 5",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        assert!(!text.contains("aegis_requests_total 9"), "{text}");
    }
}
