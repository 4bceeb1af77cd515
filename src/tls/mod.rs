//! TLS termination on the listeners (§11.1), with rustls through Pingora.
//!
//! - [`resolver`]: chooses a certificate by SNI, from a set behind an `ArcSwap`.
//! - [`challenge`]: ACME tls-alpn-01 validation certificates (§18).
//! - [`Terminator`]: one TLS listener's rustls configuration; its handshake runs inside Aegis's
//!   own connection loop (`proxy::deadline`), under a deadline, and failures are counted.
//! - [`redirect`]: the `redirect_to_https` answer's `Location`.
//!
//! See `docs/tls.md` and `docs/decisions/tls-handshake.md`.

pub mod challenge;
pub mod redirect;
pub mod resolver;

pub use challenge::AlpnChallenges;
pub use resolver::{CertificateResolver, CertificateSet};

use crate::config::{ListenerTls, LoadedCertificate, TlsVersion};
use crate::metrics::Metrics;
use pingora::listeners::tls::Acceptor;
use pingora::protocols::l4::stream::Stream as TcpStream;
use pingora::protocols::{Ssl, Stream, ALPN};
use rustls::server::ServerConfig;
use std::sync::Arc;
use std::time::Duration;

/// A TLS listener's rustls side: its configuration, certificates and handshake deadline.
pub struct Terminator {
    acceptor: Acceptor,
    resolver: Arc<CertificateResolver>,
    metrics: Arc<Metrics>,
}

impl Terminator {
    /// Builds the TLS side of a listener from its checked certificates (`config::load` has read
    /// them) and, with `tls.acme`, the names its ACME certificate will carry; `challenges` when
    /// it answers tls-alpn-01 validations.
    pub fn new(
        tls: &ListenerTls,
        http2: bool,
        metrics: Arc<Metrics>,
        challenges: Option<Arc<AlpnChallenges>>,
    ) -> Self {
        let certificates: Vec<Arc<LoadedCertificate>> = tls
            .certificates
            .iter()
            .filter_map(|spec| spec.loaded.clone())
            .collect();
        let mut resolver = CertificateResolver::new(certificates);
        if let Some(acme) = &tls.acme {
            resolver = resolver.with_acme(acme.domains.clone(), challenges);
        }
        let resolver = Arc::new(resolver);
        Terminator {
            acceptor: Acceptor::from_server_config(Arc::new(server_config(
                tls.min_version,
                http2,
                resolver.clone(),
            ))),
            resolver,
            metrics,
        }
    }

    /// The listener's certificate resolver (a reload swaps its set).
    pub fn resolver(&self) -> &Arc<CertificateResolver> {
        &self.resolver
    }

    /// Runs the TLS handshake on a new connection. `None` when it failed or took longer than
    /// `handshake_timeout` (`server.read_timeout`); the failure is counted and logged at debug
    /// level only (a scan or a client with old TLS would otherwise flood the log).
    pub async fn accept(&self, stream: Stream, handshake_timeout: Duration) -> Option<Stream> {
        // A listener's connections arrive as Pingora's TCP stream (the listener itself is plain
        // TCP; the handshake is ours), the concrete type rustls is driven over.
        let Ok(tcp) = stream.into_any().downcast::<TcpStream>() else {
            log::error!("TLS listener got a connection that is not a TCP stream");
            return None;
        };
        // SECURITY: slowloris on TLS — a client that starts a handshake and stalls must not
        // hold the connection; the whole handshake has `read_timeout`, like a request header.
        match tokio::time::timeout(handshake_timeout, self.acceptor.tls_handshake(*tcp)).await {
            Ok(Ok(tls)) => {
                if let Some(ALPN::Custom(custom)) = tls.selected_alpn_proto() {
                    // An ACME tls-alpn-01 validation (§18): the handshake was the answer; RFC
                    // 8737 speaks nothing over it.
                    if custom.protocol() == challenge::ACME_TLS_ALPN {
                        log::debug!("ACME tls-alpn-01 validation handshake answered");
                        return None;
                    }
                }
                Some(Box::new(tls))
            }
            Ok(Err(e)) => {
                // A connection closed before it sent anything TLS (a TCP health probe, a port
                // scan) is not a failed handshake.
                if !closed_by_client(&e) {
                    self.metrics.record_handshake_failure();
                }
                log::debug!("TLS handshake failed: {e}");
                None
            }
            Err(_) => {
                self.metrics.record_handshake_failure();
                log::debug!("TLS handshake not complete within {handshake_timeout:?}");
                None
            }
        }
    }
}

/// Whether a handshake ended because the client closed the connection. Pingora keeps only the
/// text of tokio-rustls's error (`explain_err`), whose end-of-stream message is this one.
fn closed_by_client(e: &pingora::Error) -> bool {
    e.root_cause().to_string().ends_with("tls handshake eof")
        || e.to_string().ends_with("tls handshake eof")
}

/// The rustls server configuration of a TLS listener.
fn server_config(
    min_version: TlsVersion,
    offer_h2: bool,
    resolver: Arc<CertificateResolver>,
) -> ServerConfig {
    let resolver_answers_alpn = resolver.answers_alpn_challenges();
    // SECURITY: TLS 1.2 and 1.3 only (rustls speaks nothing older); `min_version: "1.3"` drops
    // 1.2. The ring provider's defaults keep only AEAD suites with forward secrecy.
    let versions: &[&'static rustls::SupportedProtocolVersion] = match min_version {
        TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .expect("the ring provider supports TLS 1.2 and 1.3")
            .with_no_client_auth()
            .with_cert_resolver(resolver);
    config.alpn_protocols = if offer_h2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    // Last, so that no client offering HTTP ever selects it; the resolver refuses it unless a
    // validation is under way.
    if resolver_answers_alpn {
        config
            .alpn_protocols
            .push(challenge::ACME_TLS_ALPN.to_vec());
    }
    // SECURITY: the client's cipher order would let it pick the weakest suite both support.
    config.ignore_client_order = true;
    config
}

/// `TLSv1.3`, `TLSv1.2` (or `-` on a plain connection) from Pingora's name for the version.
pub fn version_label(version: Option<&str>) -> &'static str {
    match version {
        Some("TLSv1_3") | Some("TLSv1.3") => "TLSv1.3",
        Some("TLSv1_2") | Some("TLSv1.2") => "TLSv1.2",
        Some(_) => "TLS",
        None => "-",
    }
}
