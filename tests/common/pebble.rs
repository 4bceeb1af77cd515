//! A real ACME server for the ACME tests: Debian's `pebble`, with `pebble-challtestsrv` as its
//! DNS server (every name answers 127.0.0.1, so Pebble validates challenges against Aegis on
//! loopback). Each `Pebble` has its own config, its own HTTPS certificate (from a test CA the
//! caller trusts through `directory_ca`) and its own ports; both processes are killed on drop.
//!
//! Pebble validates tls-alpn-01 on one fixed port (`tlsPort`) and http-01 on another
//! (`httpPort`), read from its config at start: the Aegis under test listens on those ports, so
//! they are picked before Pebble starts (a bound-then-released port, retried on a collision:
//! neither program reads back a port 0). Pebble signs with a root it generates at each start;
//! [`Pebble::root`] fetches it from the management interface for the test's TLS client.

use super::tls::{connect, TestCa};
use super::{free_port, scratch_dir, wait_until};
use rustls::pki_types::CertificateDer;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Pebble {
    pebble: Option<Child>,
    dns: Child,
    dir: PathBuf,
    /// The CA of Pebble's own HTTPS certificate (its directory and management interface).
    pub https_ca: TestCa,
    /// `https_ca` as a PEM file, for `directory_ca`.
    pub https_ca_file: PathBuf,
    pub acme_port: u16,
    pub management_port: u16,
}

/// Which ports Pebble validates on, and how long its certificates live.
pub struct PebbleSettings {
    pub tls_port: u16,
    pub http_port: u16,
    /// `certificateValidityPeriod` in seconds; `None`: Pebble's default (about 5 years).
    pub validity_seconds: Option<u64>,
}

impl Pebble {
    pub fn start(settings: &PebbleSettings) -> Pebble {
        let dir = scratch_dir();
        let https_ca = TestCa::new();
        let https = https_ca.issue(&dir, "pebble-https", &["127.0.0.1", "localhost"], 2);
        let https_ca_file = dir.join("pebble-https-ca.pem");
        https_ca.write_pem(&https_ca_file);
        for _ in 0..5 {
            let dns_port = free_port();
            let dns = Command::new("pebble-challtestsrv")
                .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
                .args(["-management", &format!("127.0.0.1:{}", free_port())])
                .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
                .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
                .stdin(Stdio::null())
                .stdout(log_file(&dir, "challtestsrv.log"))
                .stderr(log_file(&dir, "challtestsrv.log"))
                .spawn()
                .expect("pebble-challtestsrv starts (Debian package pebble)");
            let (acme_port, management_port) = (free_port(), free_port());
            let config = serde_json::json!({"pebble": {
                "listenAddress": format!("127.0.0.1:{acme_port}"),
                "managementListenAddress": format!("127.0.0.1:{management_port}"),
                "certificate": https.cert,
                "privateKey": https.key,
                "httpPort": settings.http_port,
                "tlsPort": settings.tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false,
                "certificateValidityPeriod": settings.validity_seconds.unwrap_or(0),
            }});
            std::fs::write(dir.join("pebble.json"), config.to_string()).expect("pebble config");
            let mut pebble = Pebble {
                pebble: None,
                dns,
                dir: dir.clone(),
                https_ca: TestCa::new(),
                https_ca_file: https_ca_file.clone(),
                acme_port,
                management_port,
            };
            if pebble.spawn(dns_port) {
                pebble.https_ca = https_ca;
                return pebble;
            }
            // A port was taken meanwhile: drop (kills both) and try others.
            pebble.dir = scratch_dir();
        }
        panic!(
            "pebble did not start on any of five port sets; see {}",
            dir.display()
        );
    }

    /// Starts `pebble` against the DNS server on `dns_port`; false if it did not come up.
    fn spawn(&mut self, dns_port: u16) -> bool {
        let log = self.dir.join("pebble.log");
        let child = Command::new("pebble")
            .arg("-config")
            .arg(self.dir.join("pebble.json"))
            .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
            // No artificial validation delays, no rejected nonces: the tests measure Aegis.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdin(Stdio::null())
            .stdout(log_file(&self.dir, "pebble.log"))
            .stderr(log_file(&self.dir, "pebble.log"))
            .spawn()
            .expect("pebble starts (Debian package pebble)");
        self.pebble = Some(child);
        let ports = [self.acme_port, self.management_port];
        let listening = wait_until(Duration::from_secs(20), || {
            std::fs::read_to_string(&log)
                .is_ok_and(|text| text.contains("ACME directory available"))
                && ports.iter().all(|port| {
                    std::net::TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], *port))).is_ok()
                })
        });
        // Pebble exits when one of its ports was taken meanwhile (after logging the other).
        listening
            && self
                .pebble
                .as_mut()
                .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// The ACME directory URL.
    pub fn directory(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.acme_port)
    }

    /// The root Pebble signs certificates under (generated at its start), from its management
    /// interface.
    pub fn root(&self) -> CertificateDer<'static> {
        let address = SocketAddr::from(([127, 0, 0, 1], self.management_port));
        let mut stream =
            connect(address, "127.0.0.1", self.https_ca.client(&[])).expect("management TLS");
        stream
            .write_all(b"GET /roots/0 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .expect("request the root");
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        let text = String::from_utf8_lossy(&response);
        let pem = &text[text.find("-----BEGIN").expect("a PEM root in the answer")..];
        use rustls::pki_types::pem::PemObject;
        CertificateDer::from_pem_slice(pem.as_bytes()).expect("the root parses")
    }

    /// Stops Pebble (the DNS server stays): the directory is unreachable from now on.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.pebble.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Pebble's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pebble.log")).unwrap_or_default()
    }
}

fn log_file(dir: &std::path::Path, name: &str) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(name))
        .expect("log file")
}

impl Drop for Pebble {
    fn drop(&mut self) {
        self.stop();
        let _ = self.dns.kill();
        let _ = self.dns.wait();
        if std::thread::panicking() {
            eprintln!("pebble log ({}):\n{}", self.dir.display(), self.log());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
