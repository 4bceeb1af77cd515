//! Reload (§12.1), black-box: the config file of a running Aegis is rewritten and applied by
//! `POST /reload`, `SIGHUP` or `aegis reload`, while clients keep sending requests.
//! Over 400 lines: each scenario rewrites a running instance's config; they share the writer,
//! the keep-alive load and the result readers kept here.

mod common;

use common::http::{self, Connection};
use common::load::Load;
use common::tls::{self, TestCa};
use common::{token_file, wait_until, Aegis};
use fake_backends::FakeBackend;
use serde_yaml::Value;
use std::time::Duration;

fn backend(name: &str) -> FakeBackend {
    FakeBackend::start(name).expect("backend starts")
}

/// The admin token `POST /reload` needs (§12.2).
const TOKEN: &str = "rel0ad-t0ken";

/// Aegis in front of `backends` with `extra` YAML and the admin token file.
fn start(backends: &[(String, u32)], extra: &str) -> Aegis {
    let file = token_file(TOKEN, 0o600);
    let extra = format!("{extra}admin:\n  token_file: {}\n", file.display());
    Aegis::start(backends, &extra)
}

/// Rewrites the running instance's config file: `edit` changes the YAML as loaded.
fn rewrite(aegis: &Aegis, edit: impl FnOnce(&mut Value)) {
    let text = std::fs::read_to_string(&aegis.config_path).expect("config readable");
    let mut config: Value = serde_yaml::from_str(&text).expect("config is YAML");
    edit(&mut config);
    std::fs::write(&aegis.config_path, serde_yaml::to_string(&config).unwrap()).unwrap();
}

/// Sets the backends list of the config file.
fn set_backends(aegis: &Aegis, backends: &[(&FakeBackend, u32)]) {
    let list: Vec<Value> = backends
        .iter()
        .map(|(b, weight)| {
            serde_yaml::from_str(&format!("{{url: \"{}\", weight: {weight}}}", b.url())).unwrap()
        })
        .collect();
    rewrite(aegis, |config| {
        config["backends"] = Value::Sequence(list);
    });
}

/// `POST /reload` on the admin listener, with the admin token.
fn post_reload(aegis: &Aegis) -> http::Response {
    post_reload_with(aegis, &format!("Authorization: Bearer {TOKEN}\r\n"))
}

fn post_reload_with(aegis: &Aegis, headers: &str) -> http::Response {
    let request =
        format!("POST /reload HTTP/1.1\r\nHost: admin\r\n{headers}Content-Length: 0\r\n\r\n");
    http::raw(aegis.admin_addr(), request.as_bytes()).expect("the admin listener answers")
}

fn backend_named<'a>(status: &'a serde_json::Value, url: &str) -> Option<&'a serde_json::Value> {
    status["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["url"] == url)
}

#[test]
fn twenty_reloads_under_load_fail_no_request_and_shares_follow_the_new_weights() {
    let (a, b, c, d) = (backend("a"), backend("b"), backend("c"), backend("d"));
    let aegis = start(&[(a.url(), 1), (b.url(), 1), (c.url(), 1)], "");
    let load = Load::start(aegis.addr(), &[("test.local", "*"); 4]);
    load.wait_for(200);
    for i in 0..20 {
        // Odd reloads remove c, add d and reweight a; even ones go back.
        if i % 2 == 0 {
            set_backends(&aegis, &[(&a, 3), (&b, 1), (&d, 1)]);
        } else {
            set_backends(&aegis, &[(&a, 1), (&b, 1), (&c, 1)]);
        }
        let result = if i % 2 == 0 {
            let resp = post_reload(&aegis);
            assert_eq!(resp.status, 200, "{}", resp.text());
            resp.json()["result"].clone()
        } else {
            aegis.sighup()["result"].clone()
        };
        assert_eq!(result, "applied", "reload {i}; output:\n{}", aegis.output());
        load.wait_for(100);
    }
    let (sent, failures) = load.stop();
    assert!(sent >= 2000, "only {sent} requests");
    assert!(
        failures.is_empty(),
        "{} of {sent} requests failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    let status = aegis.status();
    assert_eq!(status["config"]["generation"], 21);
    assert_eq!(status["config"]["reloads_applied"], 20);
    assert_eq!(
        status["config"]["last_reload"]["trigger"], "SIGHUP",
        "{status}"
    );

    // The last reload keeps a and b only, at 3:1; both were there from the start (full weight).
    set_backends(&aegis, &[(&a, 3), (&b, 1)]);
    assert_eq!(post_reload(&aegis).status, 200);
    for backend in [&a, &b] {
        backend.reset_stats();
    }
    let mut conn = Connection::open(aegis.addr()).unwrap();
    for _ in 0..400 {
        assert_eq!(conn.get("/").unwrap().status, 200);
    }
    assert_eq!((a.request_count(), b.request_count()), (300, 100));
    // Removed backends vanish from /metrics and /status.
    let metrics = aegis.admin_get("/metrics").text();
    assert!(metrics.contains(&a.url()), "{metrics}");
    for gone in [&c, &d] {
        assert!(
            !metrics.contains(&gone.url()),
            "{} still in /metrics",
            gone.url()
        );
    }
    assert_eq!(aegis.status()["backends"].as_array().unwrap().len(), 2);
    assert!(
        metrics.contains("aegis_config_reloads_total{result=\"success\"} 21"),
        "{metrics}"
    );
}

#[test]
fn a_kept_backend_keeps_its_open_breaker_and_an_added_one_joins_warming_up() {
    let (a, b, d) = (backend("a"), backend("b"), backend("d"));
    a.set_status(500);
    let aegis = start(
        &[(a.url(), 1), (b.url(), 1)],
        "circuit_breaker:\n  failure_threshold: 3\n  open_timeout: 60s\n",
    );
    let opened = wait_until(Duration::from_secs(10), || {
        aegis.get("/");
        backend_named(&aegis.status(), &a.url()).unwrap()["breaker"] == "open"
    });
    assert!(opened, "a's breaker never opened");
    let failures = backend_named(&aegis.status(), &a.url()).unwrap()["failures"]
        .as_u64()
        .unwrap();

    set_backends(&aegis, &[(&a, 1), (&b, 2), (&d, 4)]);
    assert_eq!(post_reload(&aegis).status, 200);
    let status = aegis.status();
    let kept = backend_named(&status, &a.url()).unwrap();
    assert_eq!(kept["breaker"], "open", "{status}");
    assert!(kept["failures"].as_u64().unwrap() >= failures, "{status}");
    assert_eq!(backend_named(&status, &b.url()).unwrap()["weight"], 2);
    // The added backend gets traffic after its first passing probe, at 25 % of its weight.
    let joined = wait_until(Duration::from_secs(10), || {
        backend_named(&aegis.status(), &d.url()).unwrap()["healthy"] == true
    });
    assert!(joined, "d never joined: {}", aegis.status());
    let d_status = aegis.status();
    let d_now = backend_named(&d_status, &d.url()).unwrap();
    assert!(d_now["warmup_percent"].as_u64().unwrap() < 100, "{d_now}");
    assert!(d.health_probes() >= 1);
    let to_a = a.request_count();
    let served = wait_until(Duration::from_secs(5), || {
        aegis.get("/");
        d.request_count() > 0
    });
    assert!(served, "d got no request");
    assert_eq!(
        a.request_count(),
        to_a,
        "a's breaker is open: no new request"
    );
}

/// The `listeners` part of a config with a TLS listener on `{port}` serving `cert`.
fn tls_listener(cert: &tls::CertFiles) -> String {
    format!(
        "listeners:\n  - address: 127.0.0.1:{{port}}\n    tls:\n      certificates: [{}]\n",
        cert.yaml()
    )
}

#[test]
fn an_invalid_reload_changes_nothing_and_every_problem_is_listed() {
    let (a, b) = (backend("a"), backend("b"));
    let dir = common::scratch_dir();
    let ca = TestCa::new();
    let cert = ca.issue(&dir, "site", &["localhost"], 30);
    let aegis = start(&[(a.url(), 1), (b.url(), 1)], &tls_listener(&cert));
    let client = tls::Transport::Tls {
        config: ca.client(&[]),
        sni: "localhost".into(),
    };
    assert_eq!(
        client
            .raw(aegis.addr(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap()
            .status,
        200
    );

    // An unknown key, a backend at the cloud metadata address, and a certificate file that
    // is no longer one.
    rewrite(&aegis, |config| {
        config["bogus"] = Value::from(1);
        let list = config["backends"].as_sequence_mut().unwrap();
        list.push(serde_yaml::from_str("{url: \"http://169.254.169.254\"}").unwrap());
    });
    std::fs::write(&cert.cert, "not a certificate").unwrap();
    let expected = [
        "bogus: unknown key",
        "backends[2].url: ",
        "listeners[0].tls.certificates[0]",
    ];

    let (code, _out, err) =
        common::run_aegis(&["reload", "-c", aegis.config_path.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    for problem in expected {
        assert!(err.contains(problem), "{problem:?} missing from:\n{err}");
    }
    assert!(err.contains("169.254.169.254"), "{err}");

    let resp = post_reload(&aegis);
    assert_eq!(resp.status, 422, "{}", resp.text());
    let body = resp.json();
    assert_eq!(body["result"], "refused");
    let errors: Vec<String> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_string())
        .collect();
    for problem in expected {
        assert!(
            errors.iter().any(|e| e.starts_with(problem)),
            "{problem:?} missing: {errors:?}"
        );
    }

    // Nothing changed: same generation, same backends, the old certificate still served.
    let status = aegis.status();
    assert_eq!(status["config"]["generation"], 1);
    assert_eq!(status["config"]["last_reload"]["result"], "refused");
    assert_eq!(
        status["config"]["last_reload"]["errors"]
            .as_array()
            .unwrap()
            .len(),
        errors.len()
    );
    assert_eq!(status["backends"].as_array().unwrap().len(), 2);
    let events = status["events"].to_string();
    assert!(events.contains("refused"), "{events}");
    let metrics = aegis.admin_get("/metrics").text();
    assert!(
        metrics.contains("aegis_config_reloads_total{result=\"failure\"} 1"),
        "{metrics}"
    );
    for _ in 0..4 {
        let resp = client
            .raw(aegis.addr(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        assert_eq!(resp.status, 200);
    }
    assert!(aegis
        .output()
        .contains("configuration reload refused: bogus: unknown key"));
}

#[test]
fn keys_that_need_new_sockets_are_refused_by_name_and_aegis_reload_reports_the_result() {
    let (a, b) = (backend("a"), backend("b"));
    // `aegis reload` reads the result from the admin listener it finds in the file's
    // `admin.address`: a port known before the start, not port 0.
    let file = token_file(TOKEN, 0o600);
    let admin_port = common::free_port();
    let aegis = Aegis::start(
        &[(a.url(), 1), (b.url(), 1)],
        &format!(
            r#"
admin:
  address: 127.0.0.1:{admin_port}
  token_file: {}
"#,
            file.display()
        ),
    );
    // `aegis reload` signals the pid in `server.pid_file` (a daemon writes it).
    let pid_file = aegis.dir.join("aegis.pid");
    std::fs::write(&pid_file, aegis.pid().to_string()).unwrap();
    let conf = aegis.config_path.to_str().unwrap().to_string();
    // The port as configured (0: the kernel picked `aegis.port`).
    let configured: Value = serde_yaml::from_str(&std::fs::read_to_string(&conf).unwrap()).unwrap();
    let configured_port = configured["server"]["port"].clone();

    rewrite(&aegis, |config| {
        config["server"]["port"] = Value::from(aegis.port as u64 + 1);
        config["server"]["read_timeout"] = Value::from("2s");
    });
    let (code, _out, err) = common::run_aegis(&["reload", "-c", &conf]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("server.port: cannot change on reload") && err.contains("graceful upgrade"),
        "{err}"
    );
    assert!(
        !err.contains("read_timeout"),
        "only the refused key is named: {err}"
    );
    // POST /reload is an admin action: without the token, nothing happens.
    let resp = post_reload_with(&aegis, "");
    assert_eq!(resp.status, 401, "{}", resp.text());
    let resp = post_reload(&aegis);
    assert_eq!(resp.status, 422);
    assert!(resp.text().contains("server.port: cannot change on reload"));
    assert_eq!(aegis.status()["config"]["generation"], 1);
    assert_eq!(aegis.get("/").status, 200);

    rewrite(&aegis, |config| {
        config["server"]["port"] = configured_port.clone();
    });
    set_backends(&aegis, &[(&a, 2), (&b, 1)]);
    let (code, out, err) = common::run_aegis(&["reload", "-c", &conf]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("applied; configuration generation 2"), "{out}");
    let status = aegis.status();
    assert_eq!(backend_named(&status, &a.url()).unwrap()["weight"], 2);
    let sha = status["config"]["sha256"].as_str().unwrap();
    assert_eq!(sha.len(), 64);
}

#[test]
fn certificate_rotation_is_seen_by_new_handshakes_while_open_connections_go_on() {
    let a = backend("a");
    let dir = common::scratch_dir();
    let ca = TestCa::new();
    let cert = ca.issue(&dir, "site", &["localhost"], 30);
    let first = std::fs::read_to_string(&cert.cert).unwrap();
    let aegis = start(
        &[(a.url(), 1)],
        &format!(
            "{}security:\n  hsts:\n    max_age: 100\n",
            tls_listener(&cert)
        ),
    );
    let served_der = |stream: &tls::TlsStream| {
        stream.conn.peer_certificates().unwrap()[0]
            .as_ref()
            .to_vec()
    };
    let open = tls::connect(aegis.addr(), "localhost", ca.client(&[])).unwrap();
    let before = served_der(&open);
    let mut open = Connection::over(open);
    let resp = open.get("/").unwrap();
    assert_eq!(
        resp.header("strict-transport-security"),
        Some("max-age=100")
    );

    // The same files, a new certificate in them; and a new HSTS max-age.
    ca.issue(&dir, "site", &["localhost"], 60);
    assert_ne!(std::fs::read_to_string(&cert.cert).unwrap(), first);
    rewrite(&aegis, |config| {
        config["security"]["hsts"]["max_age"] = Value::from(200);
    });
    let resp = post_reload(&aegis);
    assert_eq!(resp.status, 200, "{}", resp.text());

    let fresh = tls::connect(aegis.addr(), "localhost", ca.client(&[])).unwrap();
    let after = served_der(&fresh);
    assert_ne!(before, after, "a new handshake gets the new certificate");
    let pem = std::fs::read_to_string(&cert.cert).unwrap();
    let der = rustls_pemfile_der(&pem);
    assert_eq!(after, der);
    let mut fresh = Connection::over(fresh);
    let resp = fresh.get("/").unwrap();
    assert_eq!(
        resp.header("strict-transport-security"),
        Some("max-age=200")
    );
    // The connection opened before the reload goes on, with the new settings per request.
    let resp = open.get("/").unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("strict-transport-security"),
        Some("max-age=200")
    );
}

/// The DER of the first certificate in a PEM text.
fn rustls_pemfile_der(pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("a PEM certificate")
        .as_ref()
        .to_vec()
}

#[test]
fn a_reload_applies_a_lower_rate_limit_and_client_counts_survive_it() {
    let a = backend("a");
    // A 60 s window (burst / rate), so that the counts do not age during the test.
    let aegis = start(
        &[(a.url(), 1)],
        "rate_limit:\n  requests_per_second: 1000\n  burst: 60000\nadaptive:\n  min_rate: 0.5\n",
    );
    let mut conn = Connection::open(aegis.addr()).unwrap();
    for _ in 0..50 {
        assert_eq!(conn.get("/").unwrap().status, 200);
    }
    rewrite(&aegis, |config| {
        config["rate_limit"]["requests_per_second"] = Value::from(1);
        config["rate_limit"]["burst"] = Value::from(60);
    });
    assert_eq!(post_reload(&aegis).status, 200);
    let statuses: Vec<u16> = (0..30).map(|_| conn.get("/").unwrap().status).collect();
    let admitted = statuses.iter().filter(|s| **s == 200).count();
    // 60 per window, 50 already counted: about 10 more, then 429.
    assert!((8..=12).contains(&admitted), "{statuses:?}");
    assert_eq!(*statuses.last().unwrap(), 429, "{statuses:?}");
    assert_eq!(aegis.status()["rate_limit"]["current_rate"], 1.0);
}

#[test]
fn a_removed_backend_finishes_its_requests_in_flight_and_gets_no_new_one() {
    let (a, b) = (backend("a"), backend("b"));
    b.set_latency(Duration::from_millis(1500));
    let aegis = start(&[(b.url(), 1)], "");
    let addr = aegis.addr();
    let slow = std::thread::spawn(move || http::get(addr, "/"));
    assert!(wait_until(Duration::from_secs(5), || b.in_flight() == 1));

    set_backends(&aegis, &[(&a, 1)]);
    let resp = post_reload(&aegis);
    assert_eq!(resp.status, 200, "{}", resp.text());
    // New requests go to the new member only; the one in flight at b still gets its answer.
    for _ in 0..5 {
        assert_eq!(aegis.get("/").status, 200);
    }
    assert_eq!((a.request_count(), b.request_count()), (5, 1));
    let answered = slow.join().expect("the slow request");
    assert_eq!(answered.status, 200, "{}", answered.text());
    assert!(!aegis.admin_get("/metrics").text().contains(&b.url()));
}
