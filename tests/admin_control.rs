//! Runtime control (SPEC §12.2): `POST /backends/{id}/drain` and `/enable` behind the admin
//! token of `admin.token_file`, against the real binary.

mod common;

use common::http::{assert_refused, raw, Response};
use common::{run_aegis, scratch_dir, token_file, wait_until, Aegis};
use fake_backends::FakeBackend;
use std::net::SocketAddr;
use std::time::Duration;

fn admin_yaml(token_file: &std::path::Path) -> String {
    format!(
        r#"
admin:
  token_file: {}
"#,
        token_file.display()
    )
}

/// `METHOD path` on the admin listener with an optional bearer token.
fn admin(addr: SocketAddr, method: &str, path: &str, token: Option<&str>) -> Response {
    let authorization = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: admin\r\n{authorization}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    raw(addr, request.as_bytes()).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

fn id(url: &str) -> String {
    url.replacen("://", "-", 1)
}

#[test]
fn without_a_token_file_actions_are_forbidden_and_reads_open() {
    let a = FakeBackend::start("a").unwrap();
    let aegis = Aegis::start(&[(a.url(), 1)], "");
    let path = format!("/backends/{}/drain", id(&a.url()));
    let answer = admin(aegis.admin_addr(), "POST", &path, Some("anything"));
    assert_refused(&answer, 403, "admin token not configured");
    assert_eq!(aegis.admin_get("/status").status, 200);
    assert_eq!(aegis.backend_status(0)["admin_state"], "enabled");
}

#[test]
fn token_guards_actions_wrong_tokens_get_401_then_429() {
    let a = FakeBackend::start("a").unwrap();
    let file = token_file("c0rrect-horse", 0o600);
    let aegis = Aegis::start(&[(a.url(), 1)], &admin_yaml(&file));
    let addr = aegis.admin_addr();
    let drain = format!("/backends/{}/drain", id(&a.url()));

    // Reads stay open on a loopback admin address.
    assert_eq!(aegis.admin_get("/status").status, 200);
    let missing = admin(addr, "POST", &drain, None);
    assert_refused(&missing, 401, "unauthorized");
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
    assert_refused(
        &admin(addr, "POST", &drain, Some("c0rrect-hors")),
        401,
        "unauthorized",
    );
    assert_eq!(aegis.backend_status(0)["admin_state"], "enabled");

    let right = admin(addr, "POST", &drain, Some("c0rrect-horse"));
    assert_eq!(right.status, 200, "{}", right.text());
    assert_eq!(right.json()["admin_state"], "drained");
    assert_eq!(aegis.backend_status(0)["admin_state"], "drained");
    let unknown = admin(
        addr,
        "POST",
        "/backends/http-nope/drain",
        Some("c0rrect-horse"),
    );
    assert_refused(&unknown, 404, "no backend with that id");
    let get = admin(addr, "GET", &drain, None);
    assert_eq!(get.status, 405);
    let put = admin(addr, "PUT", &drain, Some("c0rrect-horse"));
    assert_eq!(put.status, 405);

    // Two failures so far; three more use up the five, then even the right token waits.
    for _ in 0..3 {
        assert_eq!(admin(addr, "POST", &drain, Some("guess")).status, 401);
    }
    let limited = admin(addr, "POST", &drain, Some("c0rrect-horse"));
    assert_refused(&limited, 429, "too many failed attempts");
    let wait: u64 = limited
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=60).contains(&wait), "{wait}");
    let log = aegis.output();
    assert!(!log.contains("c0rrect-horse"), "the token was logged");
    assert!(!log.contains("guess"), "a guessed token was logged");
}

#[test]
fn a_token_file_others_may_read_is_refused_at_startup() {
    let a = FakeBackend::start("a").unwrap();
    let file = token_file("t0ken", 0o644);
    let dir = scratch_dir();
    let mut config = common::base_config(0, 0, &[(a.url(), 1)], &dir);
    config["admin"]["token_file"] = serde_yaml::Value::String(file.display().to_string());
    let conf = dir.join("aegis.yml");
    std::fs::write(&conf, serde_yaml::to_string(&config).unwrap()).unwrap();
    let (status, _, stderr) = run_aegis(&["-c", conf.to_str().unwrap()]);
    assert_eq!(status, 2, "{stderr}");
    assert!(
        stderr.contains("admin.token_file: ") && stderr.contains("may be read by group or others"),
        "{stderr}"
    );
}

#[test]
fn a_non_loopback_admin_address_needs_the_token_for_every_endpoint() {
    let a = FakeBackend::start("a").unwrap();
    let file = token_file("n0n-loopback", 0o600);
    // 0.0.0.0 is not loopback; the test still talks to it over 127.0.0.1 (`admin_addr`).
    let yaml = format!(
        r#"
admin:
  address: 0.0.0.0:0
  token_file: {}
"#,
        file.display()
    );
    let aegis = Aegis::start(&[(a.url(), 1)], &yaml);
    let addr = aegis.admin_addr();
    for path in ["/status", "/metrics", "/healthz", "/nope"] {
        assert_refused(&admin(addr, "GET", path, None), 401, "unauthorized");
    }
    // The web dashboard's page holds no data: it loads, then asks for the token.
    let page = admin(addr, "GET", "/", None);
    assert_eq!(page.status, 200);
    assert!(!page.text().contains(&a.url()));
    let status = admin(addr, "GET", "/status", Some("n0n-loopback"));
    assert_eq!(status.status, 200);
    assert_eq!(status.json()["backends"][0]["url"], a.url());
    let healthz = admin(addr, "GET", "/healthz", Some("n0n-loopback"));
    assert_eq!(healthz.status, 200);
    drop(aegis);

    // Without a token file such an admin listener answers nothing but 403.
    let aegis = Aegis::start(
        &[(a.url(), 1)],
        r#"
admin:
  address: 0.0.0.0:0
"#,
    );
    let addr = aegis.admin_addr();
    assert_refused(
        &admin(addr, "GET", "/status", None),
        403,
        "admin token not configured",
    );
    assert!(aegis
        .output()
        .contains("is not loopback and admin.token_file is unset"));
}

#[test]
fn a_drained_backend_gets_no_new_request_while_its_in_flight_one_completes() {
    let (a, b) = (
        FakeBackend::start("a").unwrap(),
        FakeBackend::start("b").unwrap(),
    );
    let file = token_file("dr4in", 0o600);
    let aegis = Aegis::start(&[(a.url(), 1), (b.url(), 1)], &admin_yaml(&file));
    let addr = aegis.admin_addr();
    let act = |action: &str, url: &str| {
        let answer = admin(
            addr,
            "POST",
            &format!("/backends/{}/{action}", id(url)),
            Some("dr4in"),
        );
        assert_eq!(answer.status, 200, "{action} {url}: {}", answer.text());
    };

    // Only `a` takes requests while `b` is drained; one slow request is under way on `a`.
    act("drain", &b.url());
    a.set_latency(Duration::from_millis(1500));
    let proxy = aegis.addr();
    let slow = std::thread::spawn(move || common::http::get(proxy, "/slow"));
    assert!(wait_until(Duration::from_secs(5), || a.in_flight() == 1));

    // Now `a` is drained: its in-flight request goes on, every new one goes to `b`.
    act("enable", &b.url());
    act("drain", &a.url());
    a.set_latency(Duration::ZERO);
    let before = a.request_count();
    for _ in 0..20 {
        assert_eq!(aegis.get("/").status, 200);
    }
    assert_eq!(
        a.request_count(),
        before,
        "a drained backend got a new request"
    );
    assert_eq!(b.request_count(), 20);
    let slow = slow.join().expect("slow request thread");
    assert_eq!(slow.status, 200, "the in-flight request did not complete");
    assert_eq!(a.in_flight(), 0);

    // The state shows in /status, /metrics and the events.
    let status = aegis.status();
    assert_eq!(status["backends"][0]["admin_state"], "drained");
    assert_eq!(status["backends"][0]["id"], id(&a.url()));
    assert_eq!(status["backends"][1]["admin_state"], "enabled");
    let metrics = aegis.admin_get("/metrics").text();
    let drained = format!(
        "aegis_backend_drained{{backend=\"{}\",pool=\"default\"}} 1",
        a.url()
    );
    assert!(metrics.contains(&drained), "{metrics}");
    let events = status["events"].to_string();
    assert!(
        events.contains(&format!("backend {} drained by an operator", a.url())),
        "{events}"
    );

    // Enabled again, it takes its share at once.
    act("enable", &a.url());
    for _ in 0..20 {
        aegis.get("/");
    }
    assert!(
        a.request_count() >= before + 9,
        "an enabled backend got no traffic"
    );
}

#[test]
fn a_drained_backend_stays_drained_across_a_reload() {
    let (a, b) = (
        FakeBackend::start("a").unwrap(),
        FakeBackend::start("b").unwrap(),
    );
    let file = token_file("r3load", 0o600);
    let aegis = Aegis::start(&[(a.url(), 1), (b.url(), 1)], &admin_yaml(&file));
    let drain = format!("/backends/{}/drain", id(&a.url()));
    assert_eq!(
        admin(aegis.admin_addr(), "POST", &drain, Some("r3load")).status,
        200
    );
    // A reload that changes a's weight keeps a (same URL) and its admin state.
    let text = std::fs::read_to_string(&aegis.config_path).expect("config");
    let text = text.replacen("weight: 1", "weight: 3", 1);
    std::fs::write(&aegis.config_path, text).expect("config");
    aegis.signal("HUP");
    assert!(wait_until(Duration::from_secs(10), || {
        aegis.status()["config"]["reloads_applied"] == 1
    }));
    let status = aegis.status();
    assert_eq!(status["backends"][0]["weight"], 3, "{status}");
    assert_eq!(status["backends"][0]["admin_state"], "drained");
    let before = a.request_count();
    for _ in 0..10 {
        assert_eq!(aegis.get("/").status, 200);
    }
    assert_eq!(a.request_count(), before);
}
