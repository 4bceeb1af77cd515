//! Certificate choice by SNI (§11.1): the certificate whose names match the client's server name
//! (exact first, then a `*.` wildcard one label deep), else the listener's default (its first).
//!
//! A listener's certificates come from two places: its files (`tls.certificates`, which a reload
//! replaces) and, with `tls.acme`, the certificate obtained automatically (§18, which a renewal
//! replaces). Either change rebuilds the set, which lives behind an `ArcSwap`: no restart, and no
//! lock in the handshake.

use super::challenge::{is_validation, AlpnChallenges};
use crate::config::LoadedCertificate;
use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// One listener's certificates, indexed by name.
#[derive(Debug, Default)]
pub struct CertificateSet {
    /// For a client without SNI or with an unknown name; none while the listener has no
    /// certificate yet (an ACME listener before its first certificate): the handshake fails.
    default: Option<Arc<CertifiedKey>>,
    /// `api.example.com` → certificate.
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// `example.com` → the certificate for `*.example.com`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    /// ACME names whose certificate is not there yet: refused rather than answered with
    /// another name's certificate.
    pending: HashSet<String>,
}

impl CertificateSet {
    /// Indexes `certificates` in priority order; the first is the default.
    pub fn new(certificates: &[Arc<LoadedCertificate>]) -> Self {
        let mut set = CertificateSet {
            default: certificates.first().map(|c| c.key.clone()),
            ..CertificateSet::default()
        };
        for certificate in certificates {
            for name in &certificate.names {
                // Validation refuses two certificates for one name; should it happen anyway,
                // the first listed wins, as it would for the default.
                match name.strip_prefix("*.") {
                    Some(parent) => set
                        .wildcard
                        .entry(parent.to_string())
                        .or_insert_with(|| certificate.key.clone()),
                    None => set
                        .exact
                        .entry(name.clone())
                        .or_insert_with(|| certificate.key.clone()),
                };
            }
        }
        set
    }

    /// The set of a listener: the ACME certificate first for its names, then the files (the
    /// first file is the default; without files, the ACME certificate). Before the ACME
    /// certificate exists, its `acme_names` are refused.
    fn build(parts: &Parts) -> Self {
        let mut ordered: Vec<Arc<LoadedCertificate>> = Vec::new();
        ordered.extend(parts.acme.iter().cloned());
        ordered.extend(parts.files.iter().cloned());
        let mut set = CertificateSet::new(&ordered);
        if let Some(first) = parts.files.first() {
            set.default = Some(first.key.clone());
        }
        if parts.acme.is_none() {
            set.pending = parts.acme_names.iter().cloned().collect();
        }
        set
    }

    /// The certificate for `server_name` (the SNI, any case), or the default.
    pub fn choose(&self, server_name: Option<&str>) -> Option<&Arc<CertifiedKey>> {
        let Some(name) = server_name else {
            return self.default.as_ref();
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(found) = self.exact.get(&name) {
            return Some(found);
        }
        if !self.pending.is_empty() && self.pending.contains(&name) {
            return None;
        }
        // A wildcard covers exactly one label: `*.example.com` matches `a.example.com`, not
        // `example.com` nor `a.b.example.com` (RFC 6125 §6.4.3).
        name.split_once('.')
            .and_then(|(label, parent)| (!label.is_empty()).then_some(parent))
            .and_then(|parent| self.wildcard.get(parent))
            .or(self.default.as_ref())
    }
}

/// Where a listener's certificates come from (see the module comment).
#[derive(Debug, Default)]
struct Parts {
    files: Vec<Arc<LoadedCertificate>>,
    acme: Option<Arc<LoadedCertificate>>,
    acme_names: Vec<String>,
}

/// The rustls certificate resolver of one TLS listener.
#[derive(Debug)]
pub struct CertificateResolver {
    set: ArcSwap<CertificateSet>,
    /// What `set` was built from; held only to rebuild it.
    parts: Mutex<Parts>,
    /// With ACME's tls-alpn-01: the validation handshakes under way.
    challenges: Option<Arc<AlpnChallenges>>,
}

impl CertificateResolver {
    /// A listener's resolver with its certificate files (the first is the default).
    pub fn new(files: Vec<Arc<LoadedCertificate>>) -> Self {
        let parts = Parts {
            files,
            ..Parts::default()
        };
        CertificateResolver {
            set: ArcSwap::from_pointee(CertificateSet::build(&parts)),
            parts: Mutex::new(parts),
            challenges: None,
        }
    }

    /// With `tls.acme`: the names the ACME certificate will carry (refused until it is there)
    /// and, for tls-alpn-01, the validation handshakes to answer.
    pub fn with_acme(self, names: Vec<String>, challenges: Option<Arc<AlpnChallenges>>) -> Self {
        self.rebuild(|parts| parts.acme_names = names);
        CertificateResolver { challenges, ..self }
    }

    /// Whether validation handshakes (`acme-tls/1`) are answered.
    pub fn answers_alpn_challenges(&self) -> bool {
        self.challenges.is_some()
    }

    /// Replaces the certificate files (a reload); handshakes under way finish with the old ones.
    pub fn set_files(&self, files: Vec<Arc<LoadedCertificate>>) {
        self.rebuild(|parts| parts.files = files);
    }

    /// Puts in the ACME certificate (obtained or renewed); the old one serves the handshakes
    /// under way and the connections already open.
    pub fn set_acme(&self, certificate: Arc<LoadedCertificate>) {
        self.rebuild(|parts| parts.acme = Some(certificate));
    }

    /// The ACME certificate being served, if any.
    pub fn acme(&self) -> Option<Arc<LoadedCertificate>> {
        self.lock().acme.clone()
    }

    /// Every certificate being served (files and ACME), for `/status` and `/metrics`.
    pub fn certificates(&self) -> Vec<Arc<LoadedCertificate>> {
        let parts = self.lock();
        parts.acme.iter().chain(&parts.files).cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Parts> {
        self.parts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn rebuild(&self, change: impl FnOnce(&mut Parts)) {
        let mut parts = self.lock();
        change(&mut parts);
        self.set.store(Arc::new(CertificateSet::build(&parts)));
    }
}

impl ResolvesServerCert for CertificateResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Some(challenges) = &self.challenges {
            // SECURITY: only a handshake offering nothing but `acme-tls/1` (RFC 8737) gets a
            // challenge certificate, and only for a name whose validation Aegis itself started;
            // any other `acme-tls/1` handshake fails, so no client can make Aegis present a
            // certificate it did not mean to.
            if client_hello.alpn().is_some_and(is_validation) {
                return challenges.get(client_hello.server_name()?);
            }
        }
        self.set.load().choose(client_hello.server_name()).cloned()
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
            not_before: 0,
            not_after: 0,
        })
    }

    #[test]
    fn sni_picks_exact_then_wildcard_then_default() {
        let first = certificate(&["example.com", "www.example.com"]);
        let api = certificate(&["api.example.net"]);
        let wild = certificate(&["*.example.org"]);
        let set = CertificateSet::new(&[first.clone(), api.clone(), wild.clone()]);
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
                Arc::ptr_eq(set.choose(name).expect("a certificate"), &expected.key),
                "{name:?} chose the wrong certificate"
            );
        }
    }

    #[test]
    fn files_and_acme_rebuild_the_set() {
        let file = certificate(&["static.test"]);
        let acme = certificate(&["a.test", "b.test"]);
        let chosen = |resolver: &CertificateResolver, name: Option<&str>| {
            resolver.set.load().choose(name).cloned()
        };
        let resolver = CertificateResolver::new(vec![])
            .with_acme(vec!["a.test".into(), "b.test".into()], None);
        // No certificate yet: every handshake fails cleanly.
        assert!(chosen(&resolver, None).is_none());
        assert!(chosen(&resolver, Some("a.test")).is_none());
        resolver.set_files(vec![file.clone()]);
        // The file serves its own and unknown names, never a pending ACME name.
        assert!(Arc::ptr_eq(
            &chosen(&resolver, Some("x.test")).unwrap(),
            &file.key
        ));
        assert!(chosen(&resolver, Some("b.test")).is_none());
        resolver.set_acme(acme.clone());
        assert!(Arc::ptr_eq(
            &chosen(&resolver, Some("B.test")).unwrap(),
            &acme.key
        ));
        assert!(Arc::ptr_eq(&chosen(&resolver, None).unwrap(), &file.key));
        let renewed = certificate(&["a.test", "b.test"]);
        resolver.set_acme(renewed.clone());
        assert!(Arc::ptr_eq(
            &chosen(&resolver, Some("a.test")).unwrap(),
            &renewed.key
        ));
        // Without files, the ACME certificate is the default.
        resolver.set_files(vec![]);
        assert!(Arc::ptr_eq(&chosen(&resolver, None).unwrap(), &renewed.key));
        assert_eq!(resolver.certificates().len(), 1);
    }
}
