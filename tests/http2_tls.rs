//! HTTP/2 over TLS (SPEC §11.1, §11.2): a TLS listener offers h2 by ALPN when its `http2` is on
//! (the default) and only HTTP/1.1 when it is off; h2 streams over TLS get the same answers.
//! The client is curl (with nghttp2), the certificate made by openssl at test time.

mod common;

use common::{scratch_dir, wait_until, Aegis};
use fake_backends::FakeBackend;
use std::net::SocketAddr;
use std::time::Duration;

/// `curl` over TLS to Aegis at `addr` for `url`'s host; returns (HTTP version, status, body).
fn curl_tls(addr: SocketAddr, url: &str, extra: &[&str]) -> (String, u16, String) {
    let host = url.split('/').nth(2).expect("an absolute URL");
    let out = std::process::Command::new("curl")
        .args(["-sk", "--max-time", "10", "--connect-to"])
        .arg(format!("{host}:{}:{}", addr.ip(), addr.port()))
        .args(extra)
        .args(["-w", "\n%{http_version} %{http_code}", url])
        .output()
        .expect("curl is installed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, last) = text.rsplit_once('\n').expect("curl's status line");
    let (version, status) = last.split_once(' ').expect("version and status");
    (version.into(), status.parse().unwrap_or(0), body.into())
}

#[test]
fn tls_listeners_offer_h2_by_alpn_when_http2_is_on() {
    let backend = FakeBackend::start("b").unwrap();
    let dir = scratch_dir();
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost"])
        .args(["-keyout", "tls.key", "-out", "tls.crt"])
        .current_dir(&dir)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl is installed");
    assert!(status.success());
    let certificates = format!(
        "      certificates:\n        - cert: {0}/tls.crt\n          key: {0}/tls.key\n",
        dir.display()
    );
    let extra = format!(
        r#"
server:
  allowed_hosts: [localhost]
listeners:
  - address: 127.0.0.1:0
    tls:
{certificates}  - address: 127.0.0.2:0
    http2: false
    tls:
{certificates}"#
    );
    let aegis = Aegis::start(&[(backend.url(), 1)], &extra);
    let (addr, port) = (aegis.listener(0), aegis.port);
    let other = aegis.listener(1);

    let (version, status, body) =
        curl_tls(addr, &format!("https://localhost:{port}/x"), &["--http2"]);
    assert_eq!((version.as_str(), status, body.as_str()), ("2", 200, "b"));
    let seen = backend.requests();
    assert_eq!(seen[0].version, "HTTP/1.1");
    assert_eq!(seen[0].header("x-forwarded-proto"), Some("https"));
    // A refusal over h2 on TLS: `:authority` outside the allowlist.
    let (version, status, body) =
        curl_tls(addr, &format!("https://evil.example:{port}/"), &["--http2"]);
    assert_eq!((version.as_str(), status), ("2", 400));
    assert_eq!(body, r#"{"error":"invalid host"}"#);
    // `http2: false`: only HTTP/1.1 is offered.
    let (version, status, _) = curl_tls(
        other,
        &format!("https://localhost:{}/", other.port()),
        &["--http2"],
    );
    assert_eq!((version.as_str(), status), ("1.1", 200));
    let logged = wait_until(Duration::from_secs(5), || {
        aegis
            .output()
            .lines()
            .any(|l| l.contains("\"protocol\":\"h2\"") && l.contains("\"tls\":\"TLSv1.3\""))
    });
    assert!(logged, "{}", aegis.output());
}
