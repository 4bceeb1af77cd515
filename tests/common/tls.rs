//! TLS for the black-box tests: certificates made at test time (rcgen: a private CA and leaf
//! certificates for any names and validity), and a rustls client that trusts that CA.

use super::http::{Connection, Duplex, Response};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A private certificate authority that issues leaf certificates into a directory.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A leaf certificate's files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl CertFiles {
    /// `{cert: …, key: …}` for a listener's certificate list.
    pub fn yaml(&self) -> String {
        format!(
            "{{cert: \"{}\", key: \"{}\"}}",
            self.cert.display(),
            self.key.display()
        )
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCa {
    pub fn new() -> Self {
        let key = KeyPair::generate().expect("a CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Aegis test CA");
        let cert = params.self_signed(&key).expect("a CA certificate");
        TestCa { cert, key }
    }

    /// A certificate for `names`, valid from yesterday for `days` days, written to
    /// `dir/stem.crt` and `dir/stem.key`.
    pub fn issue(&self, dir: &Path, stem: &str, names: &[&str], days: u64) -> CertFiles {
        let now = SystemTime::now();
        self.issue_between(
            dir,
            stem,
            names,
            now - Duration::from_secs(86_400),
            now + Duration::from_secs(days * 86_400),
        )
    }

    /// A certificate valid from `not_before` to `not_after`.
    pub fn issue_between(
        &self,
        dir: &Path,
        stem: &str,
        names: &[&str],
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> CertFiles {
        let key = KeyPair::generate().expect("a leaf key");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("leaf params");
        params.not_before = not_before.into();
        params.not_after = not_after.into();
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("a leaf certificate");
        let files = CertFiles {
            cert: dir.join(format!("{stem}.crt")),
            key: dir.join(format!("{stem}.key")),
        };
        std::fs::write(&files.cert, cert.pem()).expect("write the certificate");
        std::fs::write(&files.key, key.serialize_pem()).expect("write the key");
        files
    }

    /// Writes this CA's certificate (PEM) to `path`, for a server or client that trusts it.
    pub fn write_pem(&self, path: &Path) {
        std::fs::write(path, self.cert.pem()).expect("write the CA certificate");
    }

    /// A rustls client that trusts this CA and offers `alpn` (HTTP/1.1 when empty).
    pub fn client(&self, alpn: &[&str]) -> Arc<ClientConfig> {
        let alpn: Vec<&[u8]> = if alpn.is_empty() {
            vec![b"http/1.1"]
        } else {
            alpn.iter().map(|p| p.as_bytes()).collect()
        };
        Arc::new(client_config(self.cert.der().clone(), &alpn))
    }
}

/// A rustls client (ring, TLS 1.2 and 1.3) that trusts only `root` and offers `alpn`.
pub fn client_config(root: CertificateDer<'static>, alpn: &[&[u8]]) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    roots.add(root).expect("the root is a valid trust anchor");
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("TLS 1.2 and 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// A TLS client connection, handshake done.
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// Connects to `addr` with `sni` and completes the handshake.
pub fn connect(
    addr: SocketAddr,
    sni: &str,
    config: Arc<ClientConfig>,
) -> std::io::Result<TlsStream> {
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    tcp.set_read_timeout(Some(Duration::from_secs(15)))?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from(sni.to_string())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let client = ClientConnection::new(config, name).map_err(std::io::Error::other)?;
    let mut stream = StreamOwned::new(client, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

/// How a test reaches Aegis: plain TCP, or TLS with an SNI name.
#[derive(Clone)]
pub enum Transport {
    Plain,
    Tls {
        config: Arc<ClientConfig>,
        sni: String,
    },
}

impl Transport {
    /// A keep-alive connection to `addr`.
    pub fn connect(&self, addr: SocketAddr) -> std::io::Result<Connection<Box<dyn Duplex>>> {
        let stream: Box<dyn Duplex> = match self {
            Transport::Plain => {
                let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
                tcp.set_read_timeout(Some(Duration::from_secs(15)))?;
                tcp.set_nodelay(true)?;
                Box::new(tcp)
            }
            Transport::Tls { config, sni } => Box::new(connect(addr, sni, config.clone())?),
        };
        Ok(Connection::over(stream))
    }

    /// Sends raw bytes on a fresh connection and reads one response.
    pub fn raw(&self, addr: SocketAddr, request: &[u8]) -> std::io::Result<Response> {
        let mut conn = self.connect(addr)?;
        conn.send_raw(request)?;
        conn.read_response(request.starts_with(b"HEAD "))
    }
}
