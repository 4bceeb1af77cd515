//! The sections of `/metrics` beyond requests and backends: capacity, TLS, cluster mode and
//! the configuration (reloads).

use super::{counter, gauge};
use crate::status::Snapshot;
use prometheus::Registry;

/// Connections and descriptors against their limits, and local resource errors.
pub(super) fn capacity(r: &Registry, s: &Snapshot) -> prometheus::Result<()> {
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
pub(super) fn tls(r: &Registry, s: &Snapshot) -> prometheus::Result<()> {
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
pub(super) fn cluster(r: &Registry, s: &Snapshot) -> prometheus::Result<()> {
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

/// The configuration in force and the reloads (§12.1).
pub(super) fn config(r: &Registry, s: &Snapshot) -> prometheus::Result<()> {
    let c = &s.config;
    let reloads = counter(
        r,
        "aegis_config_reloads_total",
        "Configuration reloads, by result (success: applied; failure: refused, nothing changed).",
        &["result"],
    )?;
    reloads
        .with_label_values(&["success"])
        .inc_by(c.reloads_applied);
    reloads
        .with_label_values(&["failure"])
        .inc_by(c.reloads_refused);
    gauge(
        r,
        "aegis_config_generation",
        "Generation of the configuration in force: 1 at startup, one more per applied reload.",
        &[],
    )?
    .with_label_values(&[])
    .set(c.generation as f64);
    gauge(
        r,
        "aegis_config_loaded_timestamp_seconds",
        "When the configuration in force was loaded (Unix time).",
        &[],
    )?
    .with_label_values(&[])
    .set(c.loaded_at_unix as f64);
    Ok(())
}
