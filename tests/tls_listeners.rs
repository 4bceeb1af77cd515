//! TLS listeners (SPEC §11.1) against the real binary: SNI chooses among two certificates (an
//! unknown name gets the default), only TLS 1.2 and 1.3 are spoken, HSTS only over TLS, the
//! backend learns the request came over HTTPS, a stalled handshake is cut, and `-t` checks the
//! certificate files with key paths. Certificates are made by the test (rcgen).
//! Just over 400 lines: every case shares the test CA and the certificate layout set up here.

mod common;

use common::http::Connection;
use common::tls::{connect, CertFiles, TestCa, Transport};
use common::{run_aegis, scratch_dir, wait_until, Aegis};
use fake_backends::FakeBackend;
use rustls::pki_types::CertificateDer;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// Two certificates, `a.test` (+ `www.a.test`, the default) and `*.b.test`, and an Aegis with a
/// TLS listener serving them on its port and a plain one on `plain`.
struct Site {
    ca: TestCa,
    a: CertFiles,
    b: CertFiles,
    backend: FakeBackend,
    aegis: Aegis,
    /// The plain listener's address.
    plain: std::net::SocketAddr,
}

fn site(extra: &str) -> Site {
    let dir = scratch_dir();
    let ca = TestCa::new();
    let a = ca.issue(&dir, "a", &["a.test", "www.a.test"], 90);
    let b = ca.issue(&dir, "b", &["*.b.test"], 90);
    let backend = FakeBackend::start("b").unwrap();
    let aegis = Aegis::start(
        &[(backend.url(), 1)],
        &format!(
            r#"
listeners:
  - address: 127.0.0.1:{{port}}
    tls:
      certificates: [{}, {}]
  - address: 127.0.0.2:0
{extra}"#,
            a.yaml(),
            b.yaml()
        ),
    );
    Site {
        ca,
        a,
        b,
        backend,
        plain: aegis.listener(1),
        aegis,
    }
}

/// The leaf certificate a server presented.
fn presented(stream: &common::tls::TlsStream) -> CertificateDer<'static> {
    stream
        .conn
        .peer_certificates()
        .expect("a server certificate")[0]
        .clone()
}

fn leaf_of(files: &CertFiles) -> CertificateDer<'static> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_file(&files.cert).expect("a PEM certificate")
}

#[test]
fn sni_chooses_the_certificate_and_an_unknown_name_gets_the_default() {
    let site = site("");
    let client = site.ca.client(&[]);
    for (sni, expected) in [
        ("a.test", &site.a),
        ("www.a.test", &site.a),
        ("api.b.test", &site.b),
    ] {
        let stream = connect(site.aegis.addr(), sni, client.clone())
            .unwrap_or_else(|e| panic!("{sni}: {e}"));
        assert_eq!(presented(&stream), leaf_of(expected), "{sni}");
        let mut conn = Connection::over(stream);
        let resp = conn.get("/").unwrap();
        assert_eq!(resp.status, 200, "{sni}");
    }
    // An unknown name gets the default certificate, which the client then finds is not valid
    // for the name it asked for.
    let error = connect(site.aegis.addr(), "unknown.test", client).expect_err("wrong name");
    let presented_names = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
        .and_then(|e| match e {
            rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { presented, .. },
            ) => Some(presented.clone()),
            _ => None,
        });
    assert_eq!(
        presented_names,
        Some(vec![
            "DnsName(\"a.test\")".to_string(),
            "DnsName(\"www.a.test\")".to_string()
        ]),
        "{error}"
    );
}

#[test]
fn alpn_picks_h2_when_offered_and_http1_for_http1_clients() {
    let site = site("");
    // `http2` is on by default on TLS listeners: h2 is chosen when the client offers it (the
    // HTTP/2 exchange itself is tested in tests/http2_tls.rs).
    let stream = connect(
        site.aegis.addr(),
        "a.test",
        site.ca.client(&["h2", "http/1.1"]),
    )
    .unwrap();
    assert_eq!(stream.conn.alpn_protocol(), Some(&b"h2"[..]));
    let stream = connect(site.aegis.addr(), "a.test", site.ca.client(&["http/1.1"])).unwrap();
    assert_eq!(stream.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    let mut conn = Connection::over(stream);
    assert_eq!(conn.get("/").unwrap().status, 200);
}

#[test]
fn hsts_and_forwarded_proto_over_tls_only() {
    let site = site(
        r#"
security:
  hsts:
    include_subdomains: true
"#,
    );
    let tls = Transport::Tls {
        config: site.ca.client(&[]),
        sni: "a.test".into(),
    };
    let get = b"GET /x HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-Proto: http\r\n\r\n";
    let resp = tls.raw(site.aegis.addr(), get).unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("strict-transport-security"),
        Some("max-age=31536000; includeSubDomains")
    );
    // SECURITY: a client-sent X-Forwarded-Proto is replaced, over TLS and over plain HTTP.
    let seen = site.backend.requests().pop().unwrap();
    assert_eq!(seen.header_all("x-forwarded-proto"), vec!["https"]);
    // Aegis's own answers carry HSTS too.
    let refused = tls
        .raw(
            site.aegis.addr(),
            b"TRACE / HTTP/1.1\r\nHost: a.test\r\n\r\n",
        )
        .unwrap();
    assert_eq!(refused.status, 405);
    assert!(refused.header("strict-transport-security").is_some());

    let plain = Transport::Plain.raw(site.plain, get).unwrap();
    assert_eq!(plain.status, 200);
    assert!(plain.header("strict-transport-security").is_none());
    let seen = site.backend.requests().pop().unwrap();
    assert_eq!(seen.header_all("x-forwarded-proto"), vec!["http"]);

    // The access log and metrics carry the TLS version.
    let metrics = site.aegis.admin_get("/metrics").text();
    assert!(
        metrics.contains("aegis_tls_requests_total{version=\"TLSv1.3\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("aegis_tls_certificate_expiry_timestamp_seconds{name=\"a.test\"}"),
        "{metrics}"
    );
    assert!(common::wait_until(Duration::from_secs(3), || site
        .aegis
        .output()
        .contains("\"tls\":\"TLSv1.3\"")));
}

#[test]
fn tls_1_1_and_older_clients_are_refused_and_counted() {
    let site = site("");
    // rustls cannot speak TLS 1.1; OpenSSL can, once its own security level allows it.
    let output = Command::new("openssl")
        .args(["s_client", "-connect", &site.aegis.addr().to_string()])
        .args([
            "-servername",
            "a.test",
            "-tls1_1",
            "-cipher",
            "DEFAULT:@SECLEVEL=0",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("openssl is installed");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains("alert") && text.contains("Cipher is (NONE)"),
        "the server did not refuse the TLS 1.1 handshake:\n{text}"
    );
    // Counted once the connection's task has seen the failure, which may be just after the
    // client read the alert and left.
    let counted = wait_until(Duration::from_secs(5), || {
        site.aegis
            .admin_get("/metrics")
            .text()
            .contains("aegis_tls_handshake_failures_total 1")
    });
    assert!(counted, "{}", site.aegis.admin_get("/metrics").text());
    // A TLS 1.2 client is served.
    let output = Command::new("openssl")
        .args(["s_client", "-connect", &site.aegis.addr().to_string()])
        .args(["-servername", "a.test", "-tls1_2"])
        .stdin(Stdio::null())
        .output()
        .expect("openssl is installed");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("Protocol  : TLSv1.2"), "{text}");
}

#[test]
fn a_stalled_handshake_is_cut_after_read_timeout() {
    let site = site(
        r#"
server:
  read_timeout: 1s
"#,
    );
    let mut stream = TcpStream::connect(site.aegis.addr()).unwrap();
    // The first bytes of a ClientHello record, then nothing.
    stream
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let closed = matches!(stream.read(&mut buf), Ok(0) | Err(_));
    let waited = started.elapsed();
    assert!(closed, "the stalled handshake was not cut");
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_millis(3000),
        "cut after {waited:?}"
    );
    // Others are served meanwhile and after.
    let resp = Transport::Tls {
        config: site.ca.client(&[]),
        sni: "a.test".into(),
    }
    .raw(site.aegis.addr(), b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
    .unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(site.backend.request_count(), 1);
}

/// `aegis -t` on a config whose one TLS listener holds `certificates`; (exit code, stderr).
fn check(dir: &Path, certificates: &[String]) -> (i32, String) {
    let path = dir.join("aegis.yml");
    std::fs::write(
        &path,
        format!(
            r#"
listeners:
  - address: 127.0.0.1:8443
    tls:
      certificates: [{}]
backends:
  - url: http://127.0.0.1:9
development:
  allow_loopback_backends: true
"#,
            certificates.join(", ")
        ),
    )
    .unwrap();
    let (code, out, err) = run_aegis(&["-t", "-c", &path.display().to_string()]);
    (code, out + &err)
}

#[test]
fn bad_certificates_are_config_errors_with_key_paths() {
    let dir = scratch_dir();
    let ca = TestCa::new();
    let good = ca.issue(&dir, "good", &["good.test"], 90);
    let other = ca.issue(&dir, "other", &["other.test"], 90);
    let twin = ca.issue(&dir, "twin", &["good.test"], 90);
    let day = Duration::from_secs(86_400);
    let now = SystemTime::now();
    let expired = ca.issue_between(&dir, "expired", &["old.test"], now - 30 * day, now - day);
    let soon = ca.issue(&dir, "soon", &["soon.test"], 5);
    std::fs::write(dir.join("garbage.crt"), "not a certificate").unwrap();
    let entry = |cert: &Path, key: &Path| {
        format!(
            "{{cert: \"{}\", key: \"{}\"}}",
            cert.display(),
            key.display()
        )
    };
    let cases: [(String, &str); 5] = [
        (
            entry(&dir.join("missing.crt"), &good.key),
            "listeners[0].tls.certificates[1].cert: cannot read",
        ),
        (
            entry(&dir.join("garbage.crt"), &good.key),
            "listeners[0].tls.certificates[1].cert: no certificate found",
        ),
        (
            entry(&good.cert, &other.key),
            "listeners[0].tls.certificates[1].key: does not match the certificate",
        ),
        (
            expired.yaml(),
            "listeners[0].tls.certificates[1].cert: old.test expired on",
        ),
        (
            twin.yaml(),
            "listeners[0].tls.certificates[1].cert: good.test is also served by listeners[0].tls.certificates[0]",
        ),
    ];
    for (second, expected) in cases {
        let (code, text) = check(&dir, &[good.yaml(), second]);
        assert_eq!(code, 2, "{text}");
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    // Expiring within 14 days: valid, with a warning naming the key.
    let (code, text) = check(&dir, &[good.yaml(), soon.yaml()]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(
            "warning: listeners[0].tls.certificates[1].cert: soon.test expires in 4 days"
        ) || text.contains(
            "warning: listeners[0].tls.certificates[1].cert: soon.test expires in 5 days"
        ),
        "{text}"
    );
}

#[test]
fn an_invalid_certificate_opens_no_port() {
    let dir = scratch_dir();
    let port = common::free_port();
    let path = dir.join("aegis.yml");
    std::fs::write(
        &path,
        format!(
            r#"
listeners:
  - address: 127.0.0.1:{port}
    tls:
      certificates: [{{cert: /nonexistent.crt, key: /nonexistent.key}}]
backends:
  - url: http://127.0.0.1:9
development:
  allow_loopback_backends: true
"#
        ),
    )
    .unwrap();
    let (code, _, err) = run_aegis(&["-c", &path.display().to_string(), "--headless"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("listeners[0].tls.certificates[0].cert"),
        "{err}"
    );
    assert!(TcpStream::connect(common::local(port)).is_err());
}

#[test]
fn slowloris_over_tls_is_cut_by_the_header_deadline() {
    let site = site(
        r#"
server:
  read_timeout: 1s
"#,
    );
    let mut stream = connect(site.aegis.addr(), "a.test", site.ca.client(&[])).unwrap();
    stream
        .sock
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let started = Instant::now();
    stream.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    let mut cut = None;
    while started.elapsed() < Duration::from_secs(4) {
        let mut buf = [0u8; 64];
        let closed = stream.write_all(b"X").and_then(|_| stream.flush()).is_err()
            || match stream.read(&mut buf) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
            };
        if closed {
            cut = Some(started.elapsed());
            break;
        }
    }
    let cut = cut.expect("a dribbling TLS client was not cut");
    assert!(
        cut >= Duration::from_millis(900) && cut < Duration::from_millis(2500),
        "cut after {cut:?}"
    );
    assert_eq!(site.backend.request_count(), 0);
}
