//! Metrics that fit Prometheus (SPEC §14.2): `promtool check metrics` finds nothing to say about
//! `/metrics` of a busy Aegis (TLS listener, adaptive loop, a failing backend), the latency
//! histograms count what was sent, and with routes the request and refusal counters carry
//! `route` (§17). promtool comes with Debian's `prometheus` package (`.ci/run` installs it).

mod common;

use common::tls::TestCa;
use common::{scratch_dir, wait_until, Aegis};
use fake_backends::FakeBackend;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

/// `promtool check metrics` on `text`: its exit status and what it printed.
fn promtool_check_metrics(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (apt install prometheus)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

/// The value of the sample line `series` in `text`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

#[test]
fn promtool_finds_nothing_to_say_about_the_metrics() {
    let dir = scratch_dir();
    let ca = TestCa::new();
    let cert = ca.issue(&dir, "a", &["a.test"], 30);
    let (good, bad) = (
        FakeBackend::start("good").unwrap(),
        FakeBackend::start("bad").unwrap(),
    );
    bad.set_status(503);
    let aegis = Aegis::start(
        &[(good.url(), 1), (bad.url(), 1)],
        &format!(
            r#"
listeners:
  - address: 127.0.0.1:0
  - address: 127.0.0.2:0
    tls:
      certificates: [{}]
adaptive:
  enabled: true
  evaluation_interval: 200ms
"#,
            cert.yaml()
        ),
    );
    let plain = aegis.listener(0);
    for _ in 0..10 {
        common::http::get(plain, "/");
    }
    common::http::get(plain, "/%ZZ");
    // The adaptive loop has evaluated at least once (its P95 gauge is in seconds).
    assert!(wait_until(Duration::from_secs(10), || aegis.status()
        ["rate_limit"]["last_decision"]
        != "none"));
    let text = aegis.admin_get("/metrics").text();
    let (clean, said) = promtool_check_metrics(&text);
    assert!(
        clean && said.trim().is_empty(),
        r#"
promtool: {said}
{text}"#
    );

    // Every family has HELP and TYPE; counters end in _total; no millisecond units are left.
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut words = line.split_whitespace().skip(2);
        let (name, kind) = (words.next().unwrap(), words.next().unwrap());
        assert!(text.contains(&format!("# HELP {name} ")), "{name}");
        assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
    }
    assert!(!text.contains("_ms"), "{text}");
    assert!(text.contains("aegis_adaptive_p95_seconds "), "{text}");
    assert!(
        text.contains("aegis_tls_certificate_expiry_timestamp_seconds{name=\"a.test\"}"),
        "{text}"
    );
}

#[test]
fn latency_histograms_count_every_request_in_seconds() {
    let backend = FakeBackend::start("a").unwrap();
    let aegis = Aegis::start(&[(backend.url(), 1)], "");
    for _ in 0..5 {
        assert_eq!(aegis.get("/").status, 200);
    }
    // 150 ms of backend delay lands above le=0.1 and at or below le=0.25.
    backend.set_latency(Duration::from_millis(150));
    assert_eq!(aegis.get("/").status, 200);
    assert_eq!(aegis.get("/%ZZ").status, 400);

    let url = backend.url();
    let upstream = |suffix: &str, extra: &str| {
        format!("aegis_upstream_response_duration_seconds{suffix}{{backend=\"{url}\",pool=\"default\"{extra}}}")
    };
    let mut text = String::new();
    assert!(wait_until(Duration::from_secs(5), || {
        text = aegis.admin_get("/metrics").text();
        sample(&text, "aegis_http_request_duration_seconds_count") == Some(7.0)
    }));
    assert_eq!(sample(&text, &upstream("_count", "")), Some(6.0), "{text}");
    assert_eq!(
        sample(&text, &upstream("_bucket", ",le=\"+Inf\"")),
        Some(6.0)
    );
    assert_eq!(
        sample(&text, &upstream("_bucket", ",le=\"0.1\"")),
        Some(5.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, &upstream("_bucket", ",le=\"0.25\"")),
        Some(6.0)
    );
    let sum = sample(&text, &upstream("_sum", "")).unwrap();
    assert!((0.15..1.0).contains(&sum), "{sum}");
    // The client's view includes the request Aegis refused itself.
    assert_eq!(
        sample(
            &text,
            "aegis_http_request_duration_seconds_bucket{le=\"30\"}"
        ),
        Some(7.0),
        "{text}"
    );
}

#[test]
fn with_routes_the_request_and_refusal_counters_carry_the_route() {
    let (api, www) = (
        FakeBackend::start("api").unwrap(),
        FakeBackend::start("www").unwrap(),
    );
    let aegis = Aegis::start(
        &[],
        &format!(
            r#"
pools:
  api: {{backends: [{{url: "{}"}}]}}
  www: {{backends: [{{url: "{}"}}]}}
routes:
  - {{name: api, host: api.example.com, pool: api, rate_limit: {{requests_per_second: 1, burst: 2}}}}
  - {{host: www.example.com, pool: www}}
"#,
            api.url(),
            www.url()
        ),
    );
    let get = |host: &str| {
        let request = format!("GET /x?token=secret HTTP/1.1\r\nHost: {host}\r\n\r\n");
        common::http::raw(aegis.addr(), request.as_bytes())
            .unwrap()
            .status
    };
    let api_statuses: Vec<u16> = (0..4).map(|_| get("api.example.com")).collect();
    assert_eq!(api_statuses, [200, 200, 429, 429]);
    for _ in 0..3 {
        assert_eq!(get("www.example.com"), 200);
    }
    // No route takes it and there is no default pool: 404, counted with no route label.
    assert_eq!(get("other.example.com"), 404);

    let expected = [
        ("aegis_requests_total{route=\"api\"}", 4.0),
        ("aegis_requests_total{route=\"routes[1]\"}", 3.0),
        ("aegis_requests_total{route=\"\"}", 1.0),
        ("aegis_responses_total{class=\"2xx\",route=\"api\"}", 2.0),
        ("aegis_responses_total{class=\"4xx\",route=\"api\"}", 2.0),
        (
            "aegis_responses_total{class=\"2xx\",route=\"routes[1]\"}",
            3.0,
        ),
        ("aegis_responses_total{class=\"4xx\",route=\"\"}", 1.0),
        (
            "aegis_refusals_total{reason=\"rate_limited\",route=\"api\"}",
            2.0,
        ),
        ("aegis_refusals_total{reason=\"no_route\",route=\"\"}", 1.0),
    ];
    let mut text = String::new();
    let counted = wait_until(Duration::from_secs(5), || {
        text = aegis.admin_get("/metrics").text();
        expected
            .iter()
            .all(|(series, n)| sample(&text, series) == Some(*n))
    });
    assert!(counted, "{expected:?} in\n{text}");
    // Every sample of the three families has a route label (the unlabelled total is gone),
    // and only the config's names appear.
    for line in text.lines().filter(|l| {
        [
            "aegis_requests_total",
            "aegis_responses_total",
            "aegis_refusals_total",
        ]
        .iter()
        .any(|f| l.starts_with(f))
    }) {
        assert!(line.contains("route=\""), "{line}");
        assert!(
            !line.contains("secret") && !line.contains("other.example"),
            "{line}"
        );
    }
    let (clean, said) = promtool_check_metrics(&text);
    assert!(clean && said.trim().is_empty(), "promtool: {said}\n{text}");
    // /status has the same counts by route, `null` for no route.
    let routes = aegis.status()["totals"]["routes"].clone();
    assert_eq!(routes[0]["route"], "api", "{routes}");
    assert_eq!(routes[0]["refusals"]["rate_limited"], 2, "{routes}");
    assert_eq!(routes[2]["route"], serde_json::Value::Null, "{routes}");
    assert_eq!(routes[2]["requests"], 1, "{routes}");

    // A reload that names the second route `web`: api keeps its counts, `routes[1]`'s series go,
    // `web`'s start.
    let text = std::fs::read_to_string(&aegis.config_path).unwrap();
    let mut config: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    config["routes"][1]["name"] = "web".into();
    std::fs::write(&aegis.config_path, serde_yaml::to_string(&config).unwrap()).unwrap();
    assert_eq!(aegis.sighup()["result"], "applied");
    assert_eq!(get("www.example.com"), 200);
    let mut text = String::new();
    let renamed = wait_until(Duration::from_secs(5), || {
        text = aegis.admin_get("/metrics").text();
        sample(&text, "aegis_requests_total{route=\"web\"}") == Some(1.0)
    });
    assert!(renamed, "{text}");
    assert_eq!(
        sample(&text, "aegis_requests_total{route=\"api\"}"),
        Some(4.0)
    );
    assert!(!text.contains("routes[1]"), "{text}");
}
