//! Listeners (SPEC §11.1): several plain listeners, `redirect_to_https`, and the old
//! `server.address:port` meaning one plain listener.

mod common;

use common::http::{self, Connection};
use common::{run_aegis, scratch_dir, Aegis};
use fake_backends::FakeBackend;

#[test]
fn several_plain_listeners_are_served() {
    let backend = FakeBackend::start("b").unwrap();
    let aegis = Aegis::start(
        &[(backend.url(), 1)],
        r#"
listeners:
  - address: 127.0.0.1:0
  - address: 127.0.0.2:0
"#,
    );
    for addr in [aegis.listener(0), aegis.listener(1)] {
        let resp = http::get(addr, "/x");
        assert_eq!(resp.status, 200, "{addr}: {resp:?}");
        assert!(resp.header("strict-transport-security").is_none());
    }
    assert_eq!(backend.request_count(), 2);
    // No TLS: the backend is told so.
    assert_eq!(
        backend.requests()[0].header("x-forwarded-proto"),
        Some("http")
    );
}

#[test]
fn port_zero_listeners_report_their_bound_addresses_in_the_log_and_status() {
    let backend = FakeBackend::start("b").unwrap();
    let aegis = Aegis::start(
        &[(backend.url(), 1)],
        r#"
listeners:
  - address: 127.0.0.1:0
  - address: 127.0.0.2:0
    h2c: true
admin:
  address: 127.0.0.1:0
"#,
    );
    // The harness found every socket in the log (`listener`/`address` and `admin` fields).
    let (first, second) = (aegis.listener(0), aegis.listener(1));
    assert_ne!(first.port(), 0);
    assert_ne!(second.port(), 0);
    assert_eq!(second.ip().to_string(), "127.0.0.2");
    let log = aegis.output();
    assert!(
        log.contains(&format!("listening on http://{second} (h2c)")),
        "{log}"
    );
    assert!(
        log.contains(&format!("admin listening on {}", aegis.admin_addr())),
        "{log}"
    );
    // /status says the same, and its label (the dashboards' header) shows the bound ports.
    let status = aegis.status();
    assert_eq!(
        status["bound"],
        serde_json::json!({
            "listeners": [first.to_string(), second.to_string()],
            "admin": aegis.admin_addr().to_string(),
        })
    );
    assert_eq!(
        status["listen"],
        format!("http://{first}, http://{second} (h2c)")
    );
    assert_eq!(http::get(first, "/").status, 200);
}

#[test]
fn two_port_zero_listeners_on_one_address_are_refused_with_a_hint() {
    let path = scratch_dir().join("aegis.yml");
    let config = r#"
listeners:
  - address: 127.0.0.1:0
  - address: 127.0.0.1:0
backends:
  - url: http://127.0.0.1:9
development:
  allow_loopback_backends: true
"#;
    std::fs::write(&path, config).unwrap();
    let (code, out, err) = run_aegis(&["-t", "-c", &path.display().to_string()]);
    assert_eq!(code, 2, "{out}{err}");
    let expected = "listeners[1].address: 127.0.0.1:0 overlaps listeners[0] (127.0.0.1:0); \
                    port 0 picks a port once per address";
    assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
}

#[test]
fn redirect_to_https_keeps_path_and_query_and_never_the_clients_host() {
    let backend = FakeBackend::start("b").unwrap();
    let aegis = Aegis::start(
        &[(backend.url(), 1)],
        r#"
server:
  allowed_hosts: [app.example]
listeners:
  - address: 127.0.0.1:{port}
    redirect_to_https: https://app.example:8443
"#,
    );
    let mut conn = Connection::open(aegis.addr()).unwrap();
    let cases: [(&str, &str); 3] = [
        (
            "GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: app.example\r\n\r\n",
            "https://app.example:8443/a/b?x=1&y=%20",
        ),
        (
            "POST /form HTTP/1.1\r\nHost: app.example\r\nContent-Length: 0\r\n\r\n",
            "https://app.example:8443/form",
        ),
        // An absolute-form target: only its path and query are kept.
        (
            "GET http://app.example/abs?q=1 HTTP/1.1\r\nHost: app.example\r\n\r\n",
            "https://app.example:8443/abs?q=1",
        ),
    ];
    for (request, location) in cases {
        conn.send_raw(request.as_bytes()).unwrap();
        let resp = conn.read_response(false).unwrap();
        assert_eq!(resp.status, 308, "{request:?}: {resp:?}");
        assert_eq!(resp.header("location"), Some(location), "{request:?}");
        assert_eq!(resp.json()["error"], "https required");
        assert_eq!(resp.header("x-content-type-options"), Some("nosniff"));
        assert!(resp.header("strict-transport-security").is_none());
    }
    // SECURITY: a hostile Host is refused by the allowlist first, and an absolute-form target
    // naming another host by Pingora's parser: no redirect to anywhere.
    let resp = http::raw(
        aegis.addr(),
        b"GET /x HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(resp.status, 400, "{resp:?}");
    assert_eq!(resp.json()["error"], "invalid host");
    assert!(resp.header("location").is_none());
    let resp = http::raw(
        aegis.addr(),
        b"GET http://evil.example/x HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(resp.status, 400, "{resp:?}");
    assert!(resp.header("location").is_none());
    assert_eq!(
        backend.request_count(),
        0,
        "a redirect listener never proxies"
    );
}

#[test]
fn listener_config_errors_name_their_keys() {
    let path = scratch_dir().join("aegis.yml");
    std::fs::write(
        &path,
        r#"
listeners:
  - address: 127.0.0.1:8080
    tls:
      certificates:
        - cert: /nonexistent/a.crt
          key: /nonexistent/a.key
  - address: 127.0.0.1:8080
    redirect_to_https: http://example.com
backends:
  - url: http://127.0.0.1:9
development:
  allow_loopback_backends: true
"#,
    )
    .unwrap();
    let (code, out, err) = run_aegis(&["-t", "-c", &path.display().to_string()]);
    assert_eq!(code, 2, "{out}{err}");
    for expected in [
        "listeners[1].address: 127.0.0.1:8080 overlaps listeners[0] (127.0.0.1:8080)",
        "listeners[1].redirect_to_https: expected an https:// origin, got scheme \"http\"",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
}

#[test]
fn the_harness_reads_bound_sockets_from_json_and_text_log_lines() {
    let log = concat!(
        r#"{"ts":"1","level":"info","target":"aegis","msg":"Aegis 0.1.0 starting: http://127.0.0.1:0"}"#,
        "\n",
        r#"{"ts":"2","level":"info","target":"aegis::status","msg":"listening on https://0.0.0.0:4431 (h2)","listener":1,"address":"0.0.0.0:4431"}"#,
        "\n",
        "2026-01-01T00:00:00Z INFO  aegis::status listening on http://127.0.0.1:4430 listener=0 address=127.0.0.1:4430\n",
        r#"{"ts":"3","level":"info","target":"aegis::status","msg":"admin listening on 127.0.0.1:9199","admin":"127.0.0.1:9199"}"#,
        "\n",
    );
    let bound = common::bound::bound_in(log);
    assert_eq!(bound.listeners[&0], "127.0.0.1:4430".parse().unwrap());
    assert_eq!(bound.listeners[&1], "0.0.0.0:4431".parse().unwrap());
    assert_eq!(bound.admin, Some("127.0.0.1:9199".parse().unwrap()));
    assert!(bound.complete(2, true));
    assert!(!bound.complete(3, true));
    assert!(!common::bound::bound_in("").complete(1, false));
    assert_eq!(
        common::bound::connectable(bound.listeners[&1]),
        "127.0.0.1:4431".parse().unwrap()
    );
}
