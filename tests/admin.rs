//! The admin listener (SPEC §7.3): Prometheus `/metrics`, JSON `/status`, `/healthz`, separate
//! from the public port.

mod common;

use common::{wait_until, Aegis};
use fake_backends::FakeBackend;
use std::collections::HashMap;
use std::time::Duration;

/// Parses Prometheus text: `name{labels} value` lines into a map; panics on a malformed line.
fn parse_prometheus(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let kind = rest.split_whitespace().nth(1).unwrap_or_default();
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                    "{line}"
                );
            }
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(name.starts_with("aegis_"), "{line}");
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "{line}");
        }
        samples.insert(series.to_string(), value);
    }
    samples
}

#[test]
fn metrics_and_status_match_the_traffic() {
    let (a, b) = (
        FakeBackend::start("a").unwrap(),
        FakeBackend::start("b").unwrap(),
    );
    b.set_status(500);
    let aegis = Aegis::start(
        &[(a.url(), 1), (b.url(), 1)],
        r#"
circuit_breaker:
  failure_threshold: 3
  open_timeout: 1h
"#,
    );
    for _ in 0..20 {
        aegis.get("/");
    }
    let bad = aegis.get("/%ZZ");
    assert_eq!(bad.status, 400);

    // The access log and counters are written just after each response is sent.
    assert!(wait_until(Duration::from_secs(5), || aegis
        .admin_get("/status")
        .json()["totals"]["requests"]
        == 21));
    let status = aegis.admin_get("/status");
    assert_eq!(status.status, 200);
    assert_eq!(status.header("content-type"), Some("application/json"));
    let json = status.json();
    assert_eq!(json["totals"]["requests"], 21);
    assert_eq!(json["totals"]["refusals"]["invalid_path"], 1);
    let backends = json["backends"].as_array().unwrap();
    let (ja, jb) = (&backends[0], &backends[1]);
    assert_eq!(ja["url"], a.url());
    assert_eq!(jb["breaker"], "open");
    assert_eq!(jb["failures"], 3);
    assert_eq!(jb["requests"], 3);
    assert_eq!(ja["requests"], 17);
    assert_eq!(ja["healthy"], true);
    assert!(ja["p95_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(json["rate_limit"]["current_rate"], 100000.0);
    assert!(json["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["message"].as_str().unwrap().contains("opened")));

    let metrics = aegis.admin_get("/metrics");
    assert_eq!(metrics.status, 200);
    assert!(metrics
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    let samples = parse_prometheus(&metrics.text());
    let series = |name: &str, backend: &str, extra: &str| {
        format!("{name}{{backend=\"{backend}\",pool=\"default\"{extra}}}")
    };
    assert_eq!(
        samples[&series("aegis_backend_requests_total", &a.url(), "")],
        17.0
    );
    assert_eq!(
        samples[&series("aegis_backend_failures_total", &b.url(), "")],
        3.0
    );
    assert_eq!(
        samples[&series("aegis_backend_breaker_state", &b.url(), ",state=\"open\"")],
        1.0
    );
    assert_eq!(
        samples[&series("aegis_backend_breaker_state", &a.url(), ",state=\"closed\"")],
        1.0
    );
    assert_eq!(samples[&series("aegis_backend_healthy", &a.url(), "")], 1.0);
    assert_eq!(samples["aegis_requests_total"], 21.0);
    assert_eq!(
        samples["aegis_refusals_total{reason=\"invalid_path\"}"],
        1.0
    );
}

#[test]
fn healthz_and_unknown_paths() {
    let a = FakeBackend::start("a").unwrap();
    let aegis = Aegis::start(&[(a.url(), 1)], "");
    let health = aegis.admin_get("/healthz");
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    assert_eq!(aegis.admin_get("/nope").status, 404);
    let post = common::http::raw(
        aegis.admin_addr(),
        b"POST /status HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    )
    .unwrap();
    assert_eq!(post.status, 405);
    assert_eq!(health.header("x-frame-options"), Some("DENY"));
}

#[test]
fn admin_paths_are_not_served_on_the_public_port() {
    let a = FakeBackend::start("a").unwrap();
    let aegis = Aegis::start(&[(a.url(), 1)], "");
    for path in ["/metrics", "/status", "/healthz"] {
        let resp = aegis.get(path);
        // Proxied to the backend like any path: the backend's answer, never Aegis's metrics.
        assert_eq!(resp.header("x-backend"), Some("a"), "{path}");
        assert!(!resp.text().contains("aegis_"), "{path}");
    }
    assert!(wait_until(Duration::from_secs(2), || a.request_count() == 3));
}

#[test]
fn admin_can_be_disabled() {
    let a = FakeBackend::start("a").unwrap();
    let aegis = Aegis::start(
        &[(a.url(), 1)],
        r#"
admin:
  enabled: false
"#,
    );
    assert_eq!(aegis.get("/").status, 200);
    // The process listens on its one listener and nothing else.
    assert_eq!(common::listening_ports(aegis.pid()), vec![aegis.port]);
    assert!(!aegis.output().contains("admin listening"));
}
