//! Automatic certificates (SPEC §18) end to end against Pebble, the ACME test server (Debian's
//! `pebble`, with `pebble-challtestsrv` answering every name with 127.0.0.1), all on loopback:
//! a fresh Aegis obtains a certificate for two names and serves them (a client trusting Pebble's
//! root sees the right names), a restart reuses the stored account and certificate (no request
//! to Pebble's new-account or new-order endpoints), short-lived certificates are renewed and
//! swapped in while an open connection goes on, a stopped Pebble leaves the old certificate
//! serving while failures are counted and retried, http-01 is answered on a plain listener, and
//! `-t` checks the settings without contacting the directory.

mod common;

use common::http::{Connection, Duplex};
use common::pebble::{Pebble, PebbleSettings};
use common::tls::{client_config, connect, TlsStream};
use common::{free_port, run_aegis, scratch_dir, wait_until, Aegis};
use fake_backends::FakeBackend;
use rustls::pki_types::CertificateDer;
use rustls::ClientConfig;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const NAMES: [&str; 2] = ["a.acme.test", "b.acme.test"];
/// Generous: the whole suite runs on two cores.
const ISSUE_TIMEOUT: Duration = Duration::from_secs(60);

/// The YAML of a TLS listener on `address` with `acme` for [`NAMES`] (plus `more` lines).
fn acme_listener(address: &str, pebble: &Pebble, storage: &Path, more: &str) -> String {
    format!(
        r#"
listeners:
  - address: "{address}"
    tls:
      acme:
        directory: "{}"
        email: ops@acme.test
        domains: [{}]
        storage: "{}"
        directory_ca: "{}"
{more}"#,
        pebble.directory(),
        NAMES.join(", "),
        storage.display(),
        pebble.https_ca_file.display(),
    )
}

/// Starts Aegis with `extra` in a fresh directory (so that the same config can be started
/// again after a stop).
fn start(backend: &FakeBackend, extra: &str) -> Aegis {
    let dir = scratch_dir();
    let config = common::config::with_extra(&[(backend.url(), 1)], extra, &dir);
    let path = common::config::write(&config, &dir);
    let mut aegis = Aegis::spawn_config(path, &[], &[]);
    aegis.wait_bound();
    aegis
}

/// The first (only) entry of `/status`'s `acme` list.
fn acme_status(aegis: &Aegis) -> serde_json::Value {
    aegis.status()["acme"][0].clone()
}

/// Waits until `/status` says `field` reached `at_least`; returns how long it took.
fn wait_for(aegis: &Aegis, field: &str, at_least: u64, timeout: Duration) -> Duration {
    let started = Instant::now();
    let reached = wait_until(timeout, || {
        acme_status(aegis)[field].as_u64().unwrap_or(0) >= at_least
    });
    assert!(
        reached,
        "acme.{field} did not reach {at_least} in {timeout:?}: {}\n{}",
        acme_status(aegis),
        aegis.output()
    );
    started.elapsed()
}

/// A TLS client that trusts only Pebble's current root, offers `alpn` and never resumes.
fn client(root: CertificateDer<'static>, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut config = client_config(root, alpn);
    // Every handshake a full one: a resumed session shows the certificate of the session it
    // resumes, not the one served now.
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// A verified handshake with `sni`: the stream and the leaf certificate it was shown.
fn handshake(
    addr: SocketAddr,
    sni: &str,
    config: &Arc<ClientConfig>,
) -> std::io::Result<(TlsStream, Vec<u8>)> {
    let stream = connect(addr, sni, config.clone())?;
    let leaf = stream.conn.peer_certificates().expect("a certificate")[0].to_vec();
    Ok((stream, leaf))
}

/// The DNS names of a certificate.
fn names(der: &[u8]) -> Vec<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).expect("a certificate");
    let san = cert
        .subject_alternative_name()
        .expect("SAN parses")
        .expect("a SAN extension");
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
            _ => None,
        })
        .collect()
}

/// `GET /` on an open connection: the status.
fn get(connection: &mut Connection<Box<dyn Duplex>>) -> u16 {
    connection
        .send_raw(b"GET / HTTP/1.1\r\nHost: a.acme.test\r\n\r\n")
        .expect("send");
    connection.read_response(false).expect("a response").status
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("exists")
        .permissions()
        .mode()
        & 0o777
}

/// The one folder `storage` holds (per directory URL).
fn folder(storage: &Path) -> PathBuf {
    let mut entries = std::fs::read_dir(storage).expect("storage exists");
    entries.next().expect("one folder").expect("entry").path()
}

#[test]
fn obtains_for_two_names_serves_them_and_reuses_storage_after_a_restart() {
    let tls_port = free_port();
    let pebble = Pebble::start(&PebbleSettings {
        tls_port,
        http_port: free_port(),
        validity_seconds: None,
    });
    let backend = FakeBackend::start("b").expect("backend");
    let storage = scratch_dir().join("acme");
    let extra = acme_listener(&format!("127.0.0.1:{tls_port}"), &pebble, &storage, "");
    let aegis = start(&backend, &extra);
    let took = wait_for(&aegis, "issued", 1, ISSUE_TIMEOUT);
    eprintln!("first certificate obtained {took:?} after the listeners were bound");

    let trusting = client(pebble.root(), &[b"http/1.1"]);
    let mut first_leaf = Vec::new();
    for name in NAMES {
        let (stream, leaf) = handshake(aegis.addr(), name, &trusting)
            .unwrap_or_else(|e| panic!("{name}: a verified handshake ({e})"));
        assert_eq!(names(&leaf), NAMES, "{name}");
        let mut connection = Connection::over(Box::new(stream) as Box<dyn Duplex>);
        assert_eq!(get(&mut connection), 200, "{name} is proxied");
        first_leaf = leaf;
    }
    // SECURITY: only a validation in progress gets a challenge certificate: a client offering
    // acme-tls/1 now is refused.
    let alpn_only = client(pebble.root(), &[b"acme-tls/1"]);
    assert!(handshake(aegis.addr(), NAMES[0], &alpn_only).is_err());

    let status = acme_status(&aegis);
    assert_eq!(status["state"], "valid", "{status}");
    assert_eq!(status["accounts_created"], 1);
    let metrics = aegis.admin_get("/metrics").text();
    assert!(
        metrics.contains("aegis_acme_orders_total{name=\"a.acme.test\",result=\"issued\"} 1"),
        "{metrics}"
    );
    let folder = folder(&storage);
    assert_eq!(mode(&storage), 0o700);
    assert_eq!(mode(&folder), 0o700);
    for file in ["account.json", "a.acme.test.crt", "a.acme.test.key"] {
        assert_eq!(mode(&folder.join(file)), 0o600, "{file}");
    }
    let account = std::fs::read(folder.join("account.json")).expect("account stored");
    // SECURITY: the keys never reach the log.
    let key_pem = std::fs::read_to_string(folder.join("a.acme.test.key")).expect("key");
    let key_body = key_pem.lines().nth(1).expect("a PEM body line");
    assert!(!aegis.output().contains(key_body));

    // A restart serves the stored certificate at once: no new account, no new order.
    drop(aegis);
    let orders_before = pebble.log().matches("POST /order-plz").count();
    let aegis = start(&backend, &extra);
    let (_, leaf) = handshake(aegis.addr(), NAMES[1], &trusting).expect("served at once");
    assert_eq!(leaf, first_leaf, "the stored certificate");
    let status = acme_status(&aegis);
    assert_eq!(status["issued"], 0, "{status}");
    assert_eq!(status["accounts_created"], 0, "{status}");
    assert_eq!(status["state"], "valid", "{status}");
    assert_eq!(std::fs::read(folder.join("account.json")).unwrap(), account);
    let log = pebble.log();
    assert_eq!(log.matches("POST /order-plz").count(), orders_before);
    assert_eq!(log.matches("POST /sign-me-up").count(), 1, "one account");

    // A reload (which rotates certificate files) keeps the ACME certificate.
    aegis.signal("HUP");
    assert!(wait_until(Duration::from_secs(10), || {
        aegis.status()["config"]["reloads_applied"] == 1
    }));
    let (_, leaf) = handshake(aegis.addr(), NAMES[0], &trusting).expect("served after reload");
    assert_eq!(leaf, first_leaf);
}

#[test]
fn renews_short_lived_certificates_and_keeps_serving_while_the_directory_is_down() {
    let tls_port = free_port();
    let mut pebble = Pebble::start(&PebbleSettings {
        tls_port,
        http_port: free_port(),
        // Renewal after 30 s (a third of the lifetime left), then retries every 4 s (a tenth):
        // two failures well before the renewed certificate ends, even on a loaded machine.
        validity_seconds: Some(45),
    });
    let backend = FakeBackend::start("b").expect("backend");
    let storage = scratch_dir().join("acme");
    let extra = acme_listener(&format!("127.0.0.1:{tls_port}"), &pebble, &storage, "");
    let aegis = start(&backend, &extra);
    wait_for(&aegis, "issued", 1, ISSUE_TIMEOUT);
    let trusting = client(pebble.root(), &[b"http/1.1"]);
    let (stream, first) = handshake(aegis.addr(), NAMES[0], &trusting).expect("handshake");
    let mut open = Connection::over(Box::new(stream) as Box<dyn Duplex>);
    assert_eq!(get(&mut open), 200);

    let took = wait_for(&aegis, "renewed", 1, ISSUE_TIMEOUT);
    eprintln!("renewed {took:?} after the first certificate was served (lifetime 45 s)");
    let (_, renewed) = handshake(aegis.addr(), NAMES[1], &trusting).expect("handshake");
    assert_ne!(renewed, first, "new handshakes get the renewed certificate");
    assert_eq!(names(&renewed), NAMES);
    assert_eq!(get(&mut open), 200, "the open connection goes on");

    // The directory goes away: the renewed certificate keeps serving while renewals fail and
    // are retried.
    pebble.stop();
    wait_for(&aegis, "failures", 2, ISSUE_TIMEOUT);
    let status = acme_status(&aegis);
    assert_eq!(status["state"], "retrying", "{status}");
    assert!(
        status["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("Connection refused")),
        "{status}"
    );
    let (_, served) = handshake(aegis.addr(), NAMES[0], &trusting).expect("still served");
    assert_eq!(served, renewed);
    let metrics = aegis.admin_get("/metrics").text();
    let failed = metrics
        .lines()
        .find(|l| l.starts_with("aegis_acme_orders_total{name=\"a.acme.test\",result=\"failed\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(failed >= 2, "{metrics}");
    assert!(aegis
        .output()
        .contains("acme: order for a.acme.test failed"));
}

#[test]
fn http01_is_answered_on_the_plain_listener_only_for_pending_tokens() {
    let http_port = free_port();
    let pebble = Pebble::start(&PebbleSettings {
        tls_port: free_port(),
        http_port,
        validity_seconds: None,
    });
    let backend = FakeBackend::start("b").expect("backend");
    let storage = scratch_dir().join("acme");
    let plain = format!("  - address: \"127.0.0.1:{http_port}\"\n");
    let extra = acme_listener(
        "127.0.0.1:0",
        &pebble,
        &storage,
        &format!("        challenge: http-01\n{plain}"),
    );
    let aegis = start(&backend, &extra);
    wait_for(&aegis, "issued", 1, ISSUE_TIMEOUT);
    let trusting = client(pebble.root(), &[b"h2", b"http/1.1"]);
    let (_, leaf) = handshake(aegis.addr(), NAMES[1], &trusting).expect("verified");
    assert_eq!(names(&leaf), NAMES);
    // A token Aegis did not issue goes through the request path like any request: the backend
    // answers it, Aegis does not.
    let response = common::http::get(aegis.listener(1), "/.well-known/acme-challenge/not-a-token");
    assert_eq!(response.header("x-backend"), Some("b"));
}

#[test]
fn check_mode_validates_acme_settings_without_contacting_the_directory() {
    let dir = scratch_dir();
    let storage = dir.join("acme");
    std::fs::create_dir(&storage).expect("storage");
    std::fs::set_permissions(&storage, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let config = |allowed: &str| {
        format!(
            "server:\n  allowed_hosts: [{allowed}]\nlisteners:\n  - address: 127.0.0.1:0\n    tls:\n      acme:\n        directory: https://127.0.0.1:1/dir\n        domains: [a.acme.test, b.other.test]\n        storage: {}\nbackends:\n  - url: http://127.0.0.1:1\ndevelopment:\n  allow_loopback_backends: true\n",
            storage.display()
        )
    };
    let path = dir.join("bad.yml");
    std::fs::write(&path, config("'*.acme.test'")).expect("config");
    let (code, _, err) = run_aegis(&["-t", "-c", path.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    for expected in [
        "listeners[0].tls.acme.domains[1]: b.other.test is not covered by server.allowed_hosts",
        "listeners[0].tls.acme.storage:",
        "is open to other users (mode 755)",
    ] {
        assert!(err.contains(expected), "{expected:?} in {err}");
    }
    // Fixed, the file checks clean although nothing answers at the directory's address.
    std::fs::set_permissions(&storage, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    std::fs::write(&path, config("'*.acme.test', '*.other.test'")).expect("config");
    let started = Instant::now();
    let (code, out, err) = run_aegis(&["-t", "-c", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}
