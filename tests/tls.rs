//! `https://` backends (SPEC §2, §3.7): Aegis connects over TLS (rustls), verifies the
//! certificate against the name in the URL, and sends that name as SNI and Host.

mod common;

use common::{scratch_dir, wait_until, Aegis};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A TLS backend: Python's http.server behind ssl, answering every GET with the Host it saw.
struct TlsBackend {
    child: Child,
    port: u16,
}

impl Drop for TlsBackend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SERVER: &str = r#"
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = ("tls " + self.headers.get("Host", "-")).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
cert, key = sys.argv[1], sys.argv[2]
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

/// A private CA and a `localhost` certificate it signed; returns (ca, cert, key) paths.
fn certificates(dir: &Path) -> (String, String, String) {
    let path = |name: &str| dir.join(name).display().to_string();
    let openssl = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl is installed");
        assert!(status.success(), "openssl {args:?}");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=Aegis test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
    ]);
    std::fs::write(dir.join("leaf.ext"), "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "leaf.ext",
        "-out",
        "leaf.pem",
    ]);
    (path("ca.pem"), path("leaf.pem"), path("leaf.key"))
}

/// Starts the TLS backend on port 0; it prints the port it is listening on once bound.
fn tls_backend(cert: &str, key: &str) -> TlsBackend {
    let mut child = Command::new("python3")
        .args(["-c", SERVER, cert, key])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 is installed");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    // Ends at the port's line, or at end of file if the server could not start.
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the backend's output");
    let port = line.trim().parse().unwrap_or_else(|_| {
        let _ = child.kill();
        panic!("the TLS backend did not start: {line:?}")
    });
    TlsBackend { child, port }
}

#[test]
fn https_backends_are_reached_over_verified_tls() {
    let dir = scratch_dir();
    let (ca, cert, key) = certificates(&dir);
    let backend = tls_backend(&cert, &key);
    let url = format!("https://localhost:{}", backend.port);
    // The test CA is trusted through SSL_CERT_FILE, which Pingora's rustls root loading honours.
    let aegis = Aegis::start_env(&[(url, 1)], "", &[], &[("SSL_CERT_FILE", &ca)]);
    let resp = aegis.get("/");
    assert_eq!(resp.status, 200, "{}", aegis.output());
    assert_eq!(resp.text(), format!("tls localhost:{}", backend.port));
    // Health probes go over TLS too: the backend stays healthy.
    assert!(wait_until(Duration::from_secs(3), || aegis
        .backend_status(0)["healthy"]
        == true));
}

#[test]
fn an_untrusted_certificate_is_a_502_not_a_plaintext_fallback() {
    let dir = scratch_dir();
    let (_ca, cert, key) = certificates(&dir);
    let backend = tls_backend(&cert, &key);
    let url = format!("https://localhost:{}", backend.port);
    let aegis = Aegis::start(
        &[(url, 1)],
        r#"
health_check:
  interval: 1h
"#,
    );
    let resp = aegis.get("/");
    assert_eq!(resp.status, 502);
    assert_eq!(resp.json(), serde_json::json!({"error": "bad gateway"}));
}
