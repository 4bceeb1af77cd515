//! Renders a [`Snapshot`] in the Prometheus text format with the `prometheus` crate's encoder
//! (`aegis_` prefix, the backend URL as a label).

use crate::status::Snapshot;
use prometheus::core::Collector;
use prometheus::{Encoder, GaugeVec, IntCounterVec, Opts, Registry, TextEncoder};

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
    counter(&r, "aegis_requests_total", "Requests handled.", &[])?
        .with_label_values(&[])
        .inc_by(s.totals.requests);
    let by_label = [
        (
            "aegis_responses_total",
            "Responses by status class.",
            "class",
            &s.totals.responses,
        ),
        (
            "aegis_refusals_total",
            "Requests Aegis answered itself, by reason.",
            "reason",
            &s.totals.refusals,
        ),
    ];
    for (name, help, label, counts) in by_label {
        let family = counter(&r, name, help, &[label])?;
        for (value, n) in counts {
            family.with_label_values(&[value]).inc_by(*n);
        }
    }
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
        &["backend"],
    )?;
    let b_failures = counter(
        &r,
        "aegis_backend_failures_total",
        "Failed backend requests (connect error, timeout, 5xx).",
        &["backend"],
    )?;
    let b_rate = gauge(
        &r,
        "aegis_backend_requests_per_second",
        "Backend requests per second.",
        &["backend"],
    )?;
    let b_latency = gauge(
        &r,
        "aegis_backend_latency_ms",
        "Upstream latency quantiles over the last minute.",
        &["backend", "quantile"],
    )?;
    let b_in_flight = gauge(
        &r,
        "aegis_backend_in_flight",
        "Requests in flight to a backend.",
        &["backend"],
    )?;
    let b_healthy = gauge(
        &r,
        "aegis_backend_healthy",
        "1 when the backend passes its health checks.",
        &["backend"],
    )?;
    let b_breaker = gauge(
        &r,
        "aegis_backend_breaker_state",
        "1 for the breaker's current state.",
        &["backend", "state"],
    )?;
    let b_warmup = gauge(
        &r,
        "aegis_backend_warmup_ratio",
        "Warm-up level, 0.25 to 1.",
        &["backend"],
    )?;
    let b_weight = gauge(
        &r,
        "aegis_backend_effective_weight",
        "Weight after warm-up.",
        &["backend"],
    )?;
    let b_errors = gauge(
        &r,
        "aegis_backend_error_ratio",
        "Failed share of backend requests over the last minute.",
        &["backend"],
    )?;
    for b in &s.backends {
        let l = [b.url.as_str()];
        b_requests.with_label_values(&l).inc_by(b.requests);
        b_failures.with_label_values(&l).inc_by(b.failures);
        b_rate.with_label_values(&l).set(b.requests_per_sec);
        for (q, v) in [("0.5", b.p50_ms), ("0.95", b.p95_ms), ("0.99", b.p99_ms)] {
            if let Some(v) = v {
                b_latency.with_label_values(&[b.url.as_str(), q]).set(v);
            }
        }
        b_in_flight.with_label_values(&l).set(b.in_flight as f64);
        b_healthy
            .with_label_values(&l)
            .set(if b.healthy { 1.0 } else { 0.0 });
        for state in ["closed", "half-open", "open"] {
            let on = if b.breaker == state { 1.0 } else { 0.0 };
            b_breaker
                .with_label_values(&[b.url.as_str(), state])
                .set(on);
        }
        b_warmup
            .with_label_values(&l)
            .set(b.warmup_percent as f64 / 100.0);
        b_weight.with_label_values(&l).set(b.effective_weight);
        b_errors.with_label_values(&l).set(b.error_rate);
    }

    capacity(&r, s)?;
    cluster(&r, s)?;

    let rl = &s.rate_limit;
    gauge(
        &r,
        "aegis_rate_limit_current_rate",
        "Per-client rate limit, requests per second.",
        &[],
    )?
    .with_label_values(&[])
    .set(rl.current_rate);
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
            "aegis_adaptive_p95_ms",
            "P95 upstream latency at the last adaptive evaluation.",
            &[],
        )?
        .with_label_values(&[])
        .set(p95);
    }
    tls(&r, s)?;
    Ok(r)
}

/// Connections and descriptors against their limits, and local resource errors.
fn capacity(r: &Registry, s: &Snapshot) -> prometheus::Result<()> {
    let c = &s.capacity;
    let gauges = [
        (
            "aegis_client_connections",
            "Client connections open.",
            c.client_connections,
        ),
        (
            "aegis_max_connections",
            "Client connections accepted at once (server.max_connections).",
            c.max_connections,
        ),
        (
            "aegis_upstream_connections_in_use",
            "Requests holding or opening an upstream connection.",
            c.upstream_in_use,
        ),
        (
            "aegis_upstream_pool_max",
            "Idle upstream connections kept at most.",
            c.upstream_pool_max,
        ),
        (
            "aegis_open_files_limit",
            "Open-file limit in force.",
            c.open_files_limit,
        ),
    ];
    for (name, help, value) in gauges {
        gauge(r, name, help, &[])?
            .with_label_values(&[])
            .set(value as f64);
    }
    if let Some(open) = c.open_files {
        gauge(r, "aegis_open_files", "Descriptors open.", &[])?
            .with_label_values(&[])
            .set(open as f64);
    }
    let local = counter(
        r,
        "aegis_local_resource_errors_total",
        "Sockets Aegis could not open for lack of its own resources (never blamed on a backend).",
        &["kind"],
    )?;
    for (kind, n) in &c.local_resource_errors {
        local.with_label_values(&[kind]).inc_by(*n);
    }
    Ok(())
}

/// The TLS series: handshake failures, requests by version, certificate expiry.
fn tls(r: &Registry, s: &Snapshot) -> prometheus::Result<()> {
    counter(
        r,
        "aegis_tls_handshake_failures_total",
        "TLS handshakes that failed or timed out.",
        &[],
    )?
    .with_label_values(&[])
    .inc_by(s.tls.handshake_failures);
    let requests = counter(
        r,
        "aegis_tls_requests_total",
        "Requests over TLS, by version.",
        &["version"],
    )?;
    for (version, n) in &s.tls.requests {
        requests.with_label_values(&[version]).inc_by(*n);
    }
    let expiry = gauge(
        r,
        "aegis_tls_certificate_expiry_timestamp_seconds",
        "End of a listener certificate's validity, seconds since the Unix epoch.",
        &["name"],
    )?;
    for certificate in &s.tls.certificates {
        expiry
            .with_label_values(&[&certificate.name])
            .set(certificate.expires_unix as f64);
    }
    Ok(())
}

/// Cluster mode (§13): Redis state, instances, lease, sync lag and errors. Absent when off.
fn cluster(r: &Registry, s: &Snapshot) -> prometheus::Result<()> {
    let Some(c) = &s.cluster else {
        return Ok(());
    };
    let one = |name: &str, help: &str, value: f64| -> prometheus::Result<()> {
        gauge(r, name, help, &[])?.with_label_values(&[]).set(value);
        Ok(())
    };
    let up = if c.redis_up { 1.0 } else { 0.0 };
    one(
        "aegis_cluster_redis_up",
        "1 while Redis answers and limits are shared.",
        up,
    )?;
    one(
        "aegis_cluster_instances",
        "Instances that synced lately, this one included.",
        c.instances.len() as f64,
    )?;
    one(
        "aegis_cluster_tracked_clients",
        "Clients whose counts this instance shares.",
        c.tracked_clients as f64,
    )?;
    if let Some(lag) = c.sync_lag_ms {
        one(
            "aegis_cluster_sync_lag_seconds",
            "Time since the last successful exchange with Redis.",
            lag / 1000.0,
        )?;
    }
    let held = c.lease_holder.as_deref() == Some(c.instance.as_str());
    one(
        "aegis_cluster_lease_held",
        "1 while this instance holds the lease and decides the adaptive rate.",
        if held { 1.0 } else { 0.0 },
    )?;
    if let Some(holder) = &c.lease_holder {
        gauge(
            r,
            "aegis_cluster_lease_holder",
            "The instance deciding the adaptive rate (value 1).",
            &["instance"],
        )?
        .with_label_values(&[holder])
        .set(1.0);
    }
    counter(
        r,
        "aegis_cluster_sync_errors_total",
        "Failed exchanges with Redis.",
        &[],
    )?
    .with_label_values(&[])
    .inc_by(c.sync_errors);
    Ok(())
}

/// The snapshot in the Prometheus text exposition format.
pub fn render(snapshot: &Snapshot) -> Vec<u8> {
    let mut out = Vec::new();
    match build(snapshot) {
        Ok(registry) => {
            if let Err(e) = TextEncoder::new().encode(&registry.gather(), &mut out) {
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
                url: "http://a.example".into(),
                requests: 7,
                breaker: "open".into(),
                p95_ms: Some(12.5),
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
            text.contains("aegis_backend_requests_total{backend=\"http://a.example\"} 7"),
            "{text}"
        );
        assert!(text.contains(
            "aegis_backend_breaker_state{backend=\"http://a.example\",state=\"open\"} 1"
        ));
        assert!(text.contains(
            "aegis_backend_latency_ms{backend=\"http://a.example\",quantile=\"0.95\"} 12.5"
        ));
    }
}
