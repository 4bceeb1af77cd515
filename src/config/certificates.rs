//! Reading and checking the listeners' certificates (§11.1), at startup and by `aegis -t`, the
//! way `resolve` pins backend addresses: the files are read once, here, and the proxy serves
//! what was checked. Errors:
//! unreadable or unparsable files, a key that does not match its certificate, an expired
//! certificate and two certificates for the same name are errors with their key path; one that
//! expires within [`EXPIRY_WARNING`] is a warning.

use super::{Config, ConfigError, ConfigErrors};
use rustls::crypto::ring::default_provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A certificate this close to its end is reported as a warning.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 3600);

/// A certificate chain with its key, as rustls serves it, and what Aegis needs to know of it.
#[derive(Debug)]
pub struct LoadedCertificate {
    pub key: Arc<CertifiedKey>,
    /// DNS names from the subject alternative names, lower case (`*.example.com` kept as is);
    /// the subject's common name when there are none.
    pub names: Vec<String>,
    /// Start of validity, seconds since the Unix epoch (ACME renews by the lifetime, §18).
    pub not_before: i64,
    /// End of validity, seconds since the Unix epoch.
    pub not_after: i64,
}

impl LoadedCertificate {
    /// The name the certificate is shown and measured by: its first name, or `-`.
    pub fn primary_name(&self) -> &str {
        self.names.first().map_or("-", String::as_str)
    }
}

/// How a certificate's validity stands at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    Valid,
    /// Expires within [`EXPIRY_WARNING`]: this many whole days are left.
    ExpiresSoon {
        days: i64,
    },
    Expired,
}

/// Judges `not_after` (Unix seconds) at `now` (Unix seconds).
pub fn validity(not_after: i64, now: i64) -> Validity {
    let left = not_after - now;
    if left <= 0 {
        Validity::Expired
    } else if left <= EXPIRY_WARNING.as_secs() as i64 {
        Validity::ExpiresSoon {
            days: left / 86_400,
        }
    } else {
        Validity::Valid
    }
}

/// Reads every listener's certificates into `config` (`CertificateSpec::loaded`); errors and
/// warnings carry the certificate's key path.
pub fn load_certificates(config: &mut Config) -> Result<(), ConfigErrors> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut errors = Vec::new();
    for (i, listener) in config.listeners.iter_mut().enumerate() {
        let Some(tls) = listener.tls.as_mut() else {
            continue;
        };
        let mut seen: Vec<(String, usize)> = Vec::new();
        for (j, spec) in tls.certificates.iter_mut().enumerate() {
            let path = format!("listeners[{i}].tls.certificates[{j}]");
            let loaded = match load(&spec.cert, &spec.key) {
                Ok(loaded) => loaded,
                Err((field, message)) => {
                    errors.push(ConfigError {
                        path: format!("{path}.{field}"),
                        message,
                    });
                    continue;
                }
            };
            match validity(loaded.not_after, now) {
                Validity::Valid => {}
                Validity::ExpiresSoon { days } => config.warnings.push(ConfigError {
                    path: format!("{path}.cert"),
                    message: format!(
                        "{} expires in {days} day{} ({})",
                        loaded.primary_name(),
                        if days == 1 { "" } else { "s" },
                        show_time(loaded.not_after)
                    ),
                }),
                Validity::Expired => errors.push(ConfigError {
                    path: format!("{path}.cert"),
                    message: format!(
                        "{} expired on {}",
                        loaded.primary_name(),
                        show_time(loaded.not_after)
                    ),
                }),
            }
            for name in &loaded.names {
                if let Some((_, other)) = seen.iter().find(|(seen, _)| seen == name) {
                    errors.push(ConfigError {
                        path: format!("{path}.cert"),
                        message: format!(
                            "{name} is also served by listeners[{i}].tls.certificates[{other}]"
                        ),
                    });
                } else {
                    seen.push((name.clone(), j));
                }
            }
            spec.loaded = Some(Arc::new(loaded));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Reads one certificate chain and key; on failure, which field (`cert` or `key`) and why.
pub fn load(
    cert_path: &Path,
    key_path: &Path,
) -> Result<LoadedCertificate, (&'static str, String)> {
    let cert_pem = std::fs::read(cert_path)
        .map_err(|e| ("cert", format!("cannot read {}: {e}", cert_path.display())))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ("cert", format!("not a PEM certificate file: {e}")))?;
    let Some(leaf) = chain.first() else {
        return Err((
            "cert",
            "no certificate found in the file (PEM expected)".into(),
        ));
    };
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| ("cert", format!("the certificate cannot be parsed: {e}")))?;
    let names = names(&parsed);
    let not_before = parsed.validity().not_before.timestamp();
    let not_after = parsed.validity().not_after.timestamp();

    let key_pem = std::fs::read(key_path)
        .map_err(|e| ("key", format!("cannot read {}: {e}", key_path.display())))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        (
            "key",
            format!("no private key found in the file (PEM expected): {e}"),
        )
    })?;
    let signing_key = default_provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| ("key", format!("the private key cannot be used: {e}")))?;
    let certified = CertifiedKey::new(chain, signing_key);
    // SECURITY: a key that does not belong to the certificate would make every handshake fail
    // (or, with a swapped file, serve the wrong identity): refuse it before any port opens.
    certified
        .keys_match()
        .map_err(|_| ("key", "does not match the certificate".to_string()))?;
    Ok(LoadedCertificate {
        key: Arc::new(certified),
        names,
        not_before,
        not_after,
    })
}

/// The DNS names a certificate is valid for, lower case.
fn names(cert: &x509_parser::certificate::X509Certificate<'_>) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let mut names: Vec<String> = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::DNSName(dns) = name {
                let dns = dns.trim_end_matches('.').to_ascii_lowercase();
                if !names.contains(&dns) {
                    names.push(dns);
                }
            }
        }
    }
    if names.is_empty() {
        if let Some(cn) = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
        {
            names.push(cn.to_ascii_lowercase());
        }
    }
    names
}

/// A Unix time as `2026-12-03T08:00:00Z`.
fn show_time(unix: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_secs(unix.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_by_time_left() {
        let day = 86_400;
        assert_eq!(validity(1_000, 1_000), Validity::Expired);
        assert_eq!(validity(1_000, 2_000), Validity::Expired);
        assert_eq!(
            validity(20 * day, 10 * day),
            Validity::ExpiresSoon { days: 10 }
        );
        assert_eq!(validity(14 * day, 0), Validity::ExpiresSoon { days: 14 });
        assert_eq!(validity(15 * day, 0), Validity::Valid);
    }

    #[test]
    fn missing_files_name_the_field() {
        let err = load(
            Path::new("/nonexistent/a.crt"),
            Path::new("/nonexistent/a.key"),
        )
        .expect_err("no such file");
        assert_eq!(err.0, "cert");
        assert!(
            err.1.starts_with("cannot read /nonexistent/a.crt"),
            "{}",
            err.1
        );
    }
}
