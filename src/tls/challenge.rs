//! tls-alpn-01 (RFC 8737, ACME §18): while an ACME order is being validated, a handshake that
//! offers exactly the `acme-tls/1` protocol for one of the order's names gets a self-signed
//! certificate carrying the key authorization's digest. The ACME server checks it and closes;
//! no HTTP is ever spoken on such a connection.

use arc_swap::ArcSwap;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The ALPN protocol of tls-alpn-01 validation handshakes.
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// The pending tls-alpn-01 challenges of one listener: name → challenge certificate.
#[derive(Debug, Default)]
pub struct AlpnChallenges {
    /// Read by handshakes without a lock; written (rarely) under `writer`.
    certificates: ArcSwap<HashMap<String, Arc<CertifiedKey>>>,
    writer: Mutex<()>,
}

impl AlpnChallenges {
    /// Answers validation handshakes for `name` with a certificate for `digest` (SHA-256 of
    /// the key authorization) until [`AlpnChallenges::remove`].
    pub fn insert(&self, name: &str, digest: &[u8]) -> Result<(), String> {
        let certificate = challenge_certificate(name, digest)?;
        self.update(|map| {
            map.insert(name.to_ascii_lowercase(), Arc::new(certificate));
        });
        Ok(())
    }

    pub fn remove(&self, name: &str) {
        self.update(|map| {
            map.remove(&name.to_ascii_lowercase());
        });
    }

    /// The challenge certificate for `server_name`, if a validation for it is under way.
    pub fn get(&self, server_name: &str) -> Option<Arc<CertifiedKey>> {
        let name = server_name.trim_end_matches('.').to_ascii_lowercase();
        self.certificates.load().get(&name).cloned()
    }

    fn update(&self, change: impl FnOnce(&mut HashMap<String, Arc<CertifiedKey>>)) {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut map = HashMap::clone(&self.certificates.load());
        change(&mut map);
        self.certificates.store(Arc::new(map));
    }
}

/// Whether a client's ALPN list is a validation handshake's: exactly `acme-tls/1` (RFC 8737
/// §3: the ACME server offers that one protocol and nothing else).
pub fn is_validation<'a>(mut offered: impl Iterator<Item = &'a [u8]>) -> bool {
    offered.next() == Some(ACME_TLS_ALPN) && offered.next().is_none()
}

/// The self-signed certificate RFC 8737 §3 asks for: `name` as its only SAN and the critical
/// `id-pe-acmeIdentifier` extension holding `digest`, with a fresh key.
fn challenge_certificate(name: &str, digest: &[u8]) -> Result<CertifiedKey, String> {
    let key = rcgen::KeyPair::generate().map_err(|e| format!("challenge key: {e}"))?;
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()])
        .map_err(|e| format!("challenge certificate for {name}: {e}"))?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let certificate = params
        .self_signed(&key)
        .map_err(|e| format!("challenge certificate for {name}: {e}"))?;
    let signing_key = rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            key.serialize_der(),
        )))
        .map_err(|e| format!("challenge key: {e}"))?;
    Ok(CertifiedKey::new(
        vec![certificate.der().clone()],
        signing_key,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_lone_acme_tls_offer_is_a_validation() {
        let offer = |list: &[&'static [u8]]| is_validation(list.iter().copied());
        assert!(offer(&[b"acme-tls/1"]));
        assert!(!offer(&[b"h2", b"acme-tls/1"]));
        assert!(!offer(&[b"acme-tls/1", b"http/1.1"]));
        assert!(!offer(&[b"h2"]));
        assert!(!offer(&[]));
    }

    #[test]
    fn challenges_are_kept_by_name_until_removed() {
        let challenges = AlpnChallenges::default();
        challenges
            .insert("A.example.com", &[7u8; 32])
            .expect("certificate");
        let certificate = challenges.get("a.example.com.").expect("pending");
        let (_, parsed) =
            x509_parser::parse_x509_certificate(&certificate.cert[0]).expect("parses");
        // id-pe-acmeIdentifier (1.3.6.1.5.5.7.1.31), critical, with the digest as an OCTET STRING.
        let extension = parsed
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31")
            .expect("acmeIdentifier");
        assert!(extension.critical);
        assert_eq!(&extension.value[2..], &[7u8; 32]);
        assert!(challenges.get("b.example.com").is_none());
        challenges.remove("a.example.com");
        assert!(challenges.get("a.example.com").is_none());
    }
}
