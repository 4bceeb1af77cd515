//! Certificate choice by SNI (§11.1): the certificate whose names match the client's server name
//! (exact first, then a `*.` wildcard one label deep), else the listener's default (its first).
//!
//! The set lives behind an `ArcSwap`, so a reload can swap a listener's certificates without a
//! restart and without a lock in the handshake.

use crate::config::LoadedCertificate;
use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::sync::Arc;

/// One listener's certificates, indexed by name.
#[derive(Debug)]
pub struct CertificateSet {
    default: Arc<CertifiedKey>,
    /// `api.example.com` → certificate.
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// `example.com` → the certificate for `*.example.com`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
}

impl CertificateSet {
    /// Indexes `certificates`; the first is the default. `None` when the list is empty.
    pub fn new(certificates: &[Arc<LoadedCertificate>]) -> Option<Self> {
        let default = certificates.first()?.key.clone();
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        for certificate in certificates {
            for name in &certificate.names {
                // Validation refuses two certificates for one name; should it happen anyway,
                // the first listed wins, as it would for the default.
                match name.strip_prefix("*.") {
                    Some(parent) => wildcard
                        .entry(parent.to_string())
                        .or_insert_with(|| certificate.key.clone()),
                    None => exact
                        .entry(name.clone())
                        .or_insert_with(|| certificate.key.clone()),
                };
            }
        }
        Some(CertificateSet {
            default,
            exact,
            wildcard,
        })
    }

    /// The certificate for `server_name` (the SNI, any case), or the default.
    pub fn choose(&self, server_name: Option<&str>) -> &Arc<CertifiedKey> {
        let Some(name) = server_name else {
            return &self.default;
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(found) = self.exact.get(&name) {
            return found;
        }
        // A wildcard covers exactly one label: `*.example.com` matches `a.example.com`, not
        // `example.com` nor `a.b.example.com` (RFC 6125 §6.4.3).
        name.split_once('.')
            .and_then(|(label, parent)| (!label.is_empty()).then_some(parent))
            .and_then(|parent| self.wildcard.get(parent))
            .unwrap_or(&self.default)
    }
}

/// The rustls certificate resolver of one TLS listener.
#[derive(Debug)]
pub struct CertificateResolver {
    set: ArcSwap<CertificateSet>,
}

impl CertificateResolver {
    pub fn new(set: CertificateSet) -> Self {
        CertificateResolver {
            set: ArcSwap::from_pointee(set),
        }
    }

    /// Replaces the certificates; handshakes already under way finish with the old ones.
    pub fn swap(&self, set: CertificateSet) {
        self.set.store(Arc::new(set));
    }
}

impl ResolvesServerCert for CertificateResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.set.load().choose(client_hello.server_name()).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::CertificateDer;

    /// A key that never signs: only the identity of the `Arc` matters here.
    #[derive(Debug)]
    struct NoKey;

    impl rustls::sign::SigningKey for NoKey {
        fn choose_scheme(
            &self,
            _offered: &[rustls::SignatureScheme],
        ) -> Option<Box<dyn rustls::sign::Signer>> {
            None
        }

        fn algorithm(&self) -> rustls::SignatureAlgorithm {
            rustls::SignatureAlgorithm::ED25519
        }
    }

    fn certificate(names: &[&str]) -> Arc<LoadedCertificate> {
        Arc::new(LoadedCertificate {
            key: Arc::new(CertifiedKey::new(
                vec![CertificateDer::from(names.join(",").into_bytes())],
                Arc::new(NoKey),
            )),
            names: names.iter().map(|n| n.to_string()).collect(),
            not_after: 0,
        })
    }

    #[test]
    fn sni_picks_exact_then_wildcard_then_default() {
        let first = certificate(&["example.com", "www.example.com"]);
        let api = certificate(&["api.example.net"]);
        let wild = certificate(&["*.example.org"]);
        let set = CertificateSet::new(&[first.clone(), api.clone(), wild.clone()])
            .expect("three certificates");
        let cases: [(Option<&str>, &Arc<LoadedCertificate>); 9] = [
            (Some("example.com"), &first),
            (Some("WWW.Example.com."), &first),
            (Some("api.example.net"), &api),
            (Some("a.example.org"), &wild),
            (Some("example.org"), &first),
            (Some("a.b.example.org"), &first),
            (Some(".example.org"), &first),
            (Some("unknown.test"), &first),
            (None, &first),
        ];
        for (name, expected) in cases {
            assert!(
                Arc::ptr_eq(set.choose(name), &expected.key),
                "{name:?} chose the wrong certificate"
            );
        }
    }

    #[test]
    fn swap_replaces_the_set() {
        let a = certificate(&["a.test"]);
        let b = certificate(&["b.test"]);
        let resolver =
            CertificateResolver::new(CertificateSet::new(std::slice::from_ref(&a)).expect("one"));
        assert!(Arc::ptr_eq(resolver.set.load().choose(None), &a.key));
        resolver.swap(CertificateSet::new(std::slice::from_ref(&b)).expect("one"));
        assert!(Arc::ptr_eq(resolver.set.load().choose(None), &b.key));
    }
}
