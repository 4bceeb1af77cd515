//! `listeners[].tls.acme` (§18): certificates obtained and renewed automatically from an ACME
//! directory (Let's Encrypt, step-ca, Pebble). What is checked here, without contacting the
//! directory: the directory URL's form, the domains (DNS names an ACME CA can validate with the
//! chosen challenge, covered by `server.allowed_hosts` when it is set), that `http-01` has a
//! plain listener to be answered on, and (when a file is loaded, [`check_storage`]) that the
//! storage directory is private and writable.
//!
//! Over 400 lines with its unit tests (the code is ~300): one section's checks, kept together.

use super::checker::Checker;
use super::raw::{Field, RawAcme};
use super::{Config, ConfigError};
use crate::security::request::host_allowed;
use std::path::{Path, PathBuf};

/// Most names one ACME certificate carries (Let's Encrypt's limit is 100).
pub const MAX_ACME_DOMAINS: usize = 100;

/// How the ACME server checks that Aegis controls a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcmeChallenge {
    /// RFC 8737: on the TLS listener itself, a handshake offering only the `acme-tls/1` ALPN
    /// gets a challenge certificate (port 443 for a public CA).
    TlsAlpn01,
    /// RFC 8555 §8.3: `GET /.well-known/acme-challenge/<token>` on a plain listener (port 80
    /// for a public CA), answered before any other stage of the request path.
    Http01,
}

impl AcmeChallenge {
    pub fn as_str(self) -> &'static str {
        match self {
            AcmeChallenge::TlsAlpn01 => "tls-alpn-01",
            AcmeChallenge::Http01 => "http-01",
        }
    }
}

/// One TLS listener's automatic certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeSettings {
    /// `directory`, required: the ACME directory URL (`https://…`), e.g.
    /// `https://acme-v02.api.letsencrypt.org/directory`.
    pub directory: String,
    /// `email`, optional: the account's contact (`mailto:`), for the CA's expiry notices.
    pub email: Option<String>,
    /// `domains`, required, 1–100 distinct lower-case DNS names: the certificate's names, the
    /// first one naming its files.
    pub domains: Vec<String>,
    /// `storage`, required: the directory holding the account key and the certificates
    /// (created 0700 if missing; files 0600).
    pub storage: PathBuf,
    /// `challenge`, default `tls-alpn-01`: `tls-alpn-01` or `http-01`.
    pub challenge: AcmeChallenge,
    /// `directory_ca`, optional: a PEM CA certificate to trust for the directory's HTTPS instead
    /// of the system roots (a private CA such as step-ca or Pebble).
    pub directory_ca: Option<PathBuf>,
}

impl Checker {
    pub(super) fn acme(&mut self, field: Field<RawAcme>, path: &str) -> Option<AcmeSettings> {
        if matches!(field, Field::Missing) {
            return None;
        }
        let raw = self.section(field, path);
        self.unknown(path, &raw.unknown);
        let directory_path = format!("{path}.directory");
        let directory = match self.typed(raw.directory, &directory_path, "a URL") {
            None => {
                if !self.errors.iter().any(|e| e.path == directory_path) {
                    self.error(
                        &directory_path,
                        "is required (the ACME directory URL, such as \
                         https://acme-v02.api.letsencrypt.org/directory)",
                    );
                }
                None
            }
            Some(text) => match directory_url(&text) {
                Ok(url) => Some(url),
                Err(message) => {
                    self.error(&directory_path, message);
                    None
                }
            },
        };
        let email_path = format!("{path}.email");
        let email = self
            .typed(raw.email, &email_path, "an email address")
            .and_then(|text| {
                let text = text.trim().to_string();
                let valid = text
                    .split_once('@')
                    .is_some_and(|(user, host)| !user.is_empty() && host.contains('.'))
                    && !text.contains([' ', ',', ':', '<', '>']);
                if !valid {
                    self.error(
                        &email_path,
                        format!("expected an email address such as ops@example.com, got {text:?}"),
                    );
                    return None;
                }
                Some(text)
            });
        let domains = self.acme_domains(raw.domains, &format!("{path}.domains"));
        let storage_path = format!("{path}.storage");
        let storage = self.path(raw.storage, &storage_path);
        if storage.is_none() && !self.errors.iter().any(|e| e.path == storage_path) {
            self.error(
                &storage_path,
                "is required (a directory for the account key and certificates)",
            );
        }
        let challenge_path = format!("{path}.challenge");
        let challenge = match self.typed(raw.challenge, &challenge_path, "a challenge type") {
            None => AcmeChallenge::TlsAlpn01,
            Some(text) => match text.trim() {
                "tls-alpn-01" => AcmeChallenge::TlsAlpn01,
                "http-01" => AcmeChallenge::Http01,
                other => {
                    self.error(
                        &challenge_path,
                        format!("expected \"tls-alpn-01\" or \"http-01\", got {other:?}"),
                    );
                    AcmeChallenge::TlsAlpn01
                }
            },
        };
        let directory_ca = self.path(raw.directory_ca, &format!("{path}.directory_ca"));
        Some(AcmeSettings {
            directory: directory?,
            email,
            domains,
            storage: storage?,
            challenge,
            directory_ca,
        })
    }

    fn acme_domains(&mut self, field: Field<Vec<String>>, path: &str) -> Vec<String> {
        let list = match self.typed(field, path, "a list of domain names") {
            None => {
                if !self.errors.iter().any(|e| e.path == path) {
                    self.error(path, "is required (the certificate's names)");
                }
                return Vec::new();
            }
            Some(list) => list,
        };
        if list.is_empty() {
            self.error(path, "must list at least one name");
        }
        if list.len() > MAX_ACME_DOMAINS {
            self.error(
                path,
                format!("at most {MAX_ACME_DOMAINS} names fit one certificate"),
            );
        }
        let mut domains: Vec<String> = Vec::new();
        for (i, name) in list.iter().enumerate() {
            let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
            match domain_problem(&name) {
                Some(problem) => self.error(&format!("{path}[{i}]"), problem),
                None if domains.contains(&name) => {
                    self.error(&format!("{path}[{i}]"), format!("{name} is listed twice"))
                }
                None => domains.push(name),
            }
        }
        domains
    }

    /// ACME rules across sections: the names pass the Host allowlist (else the certificate
    /// would be for names whose requests Aegis refuses), one name per listener, and `http-01`
    /// has a plain listener to be answered on.
    pub(super) fn acme_across_sections(&mut self, config: &Config) {
        let has_plain = config.listeners.iter().any(|l| l.tls.is_none());
        for (i, listener) in config.listeners.iter().enumerate() {
            let Some(acme) = listener.tls.as_ref().and_then(|t| t.acme.as_ref()) else {
                continue;
            };
            let path = format!("listeners[{i}].tls.acme");
            for (j, name) in acme.domains.iter().enumerate() {
                if !host_allowed(name, &config.server.allowed_hosts) {
                    self.error(
                        &format!("{path}.domains[{j}]"),
                        format!("{name} is not covered by server.allowed_hosts"),
                    );
                }
            }
            if acme.challenge == AcmeChallenge::Http01 && !has_plain {
                self.error(
                    &format!("{path}.challenge"),
                    "http-01 is answered on a plain listener: add one (port 80 for a public CA) \
                     or use tls-alpn-01",
                );
            }
        }
    }
}

/// The directory URL, checked: `https://host[:port]/path` (or `http://` to a loopback host, for
/// a local test CA), no user info.
fn directory_url(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text.trim())
        .map_err(|e| format!("expected an https:// URL, got {text:?} ({e})"))?;
    // SECURITY: the account key signs every request to the directory, and the certificate
    // comes back from it: plain HTTP would let anyone on the path swap either.
    let loopback = matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
        || url.host_str() == Some("localhost");
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        other => return Err(format!("expected an https:// URL, got scheme {other:?}")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain user info".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("a host is required".into());
    }
    Ok(url.to_string())
}

/// Why `name` cannot be an ACME certificate's name, if it cannot: it must be a DNS name of
/// letters, digits and `-`, with at least two labels, no wildcard (wildcards need dns-01), no
/// IP address.
fn domain_problem(name: &str) -> Option<String> {
    if name.starts_with("*.") {
        return Some(format!(
            "{name}: wildcard names need the dns-01 challenge, which Aegis does not answer"
        ));
    }
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Some(format!(
            "{name}: IP addresses are not supported, only DNS names"
        ));
    }
    let labels: Vec<&str> = name.split('.').collect();
    let label_ok = |label: &&str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if name.len() > 253 || labels.len() < 2 || !labels.iter().all(label_ok) {
        return Some(format!(
            "expected a DNS name such as www.example.com, got {name:?}"
        ));
    }
    None
}

/// Checks every ACME storage directory when a file is loaded (`aegis -t`, startup, reload),
/// without writing anything but a probe file: it must be a directory (or be creatable), not
/// readable or writable by others, and writable by Aegis.
pub fn check_storage(config: &Config) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    for (i, listener) in config.listeners.iter().enumerate() {
        let Some(acme) = listener.tls.as_ref().and_then(|t| t.acme.as_ref()) else {
            continue;
        };
        if let Err(message) = storage_problem(&acme.storage) {
            errors.push(ConfigError {
                path: format!("listeners[{i}].tls.acme.storage"),
                message,
            });
        }
        if let Some(ca) = &acme.directory_ca {
            if let Err(message) = read_ca(ca) {
                errors.push(ConfigError {
                    path: format!("listeners[{i}].tls.acme.directory_ca"),
                    message,
                });
            }
        }
    }
    errors
}

/// Reads a PEM CA certificate file (`directory_ca`).
fn read_ca(path: &Path) -> Result<(), String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    CertificateDer::from_pem_file(path)
        .map(|_| ())
        .map_err(|e| format!("cannot read a PEM certificate from {}: {e}", path.display()))
}

fn storage_problem(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => Err(format!("{} is not a directory", dir.display())),
        Ok(meta) => {
            let mode = meta.permissions().mode() & 0o777;
            // SECURITY: the directory holds the ACME account key and the certificates' private
            // keys: anyone who can read them can impersonate the site or the account.
            if mode & 0o077 != 0 {
                return Err(format!(
                    "{} is open to other users (mode {mode:o}); run chmod 700 on it",
                    dir.display()
                ));
            }
            let probe = dir.join(".aegis-write-test");
            std::fs::write(&probe, b"")
                .and_then(|()| std::fs::remove_file(&probe))
                .map_err(|e| format!("{} is not writable: {e}", dir.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Created 0700 at startup: its parent must exist and let Aegis create it.
            let parent = dir
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            match std::fs::metadata(parent) {
                Ok(meta) if meta.is_dir() && !meta.permissions().readonly() => Ok(()),
                Ok(_) => Err(format!(
                    "{} does not exist and {} is not a writable directory",
                    dir.display(),
                    parent.display()
                )),
                Err(e) => Err(format!(
                    "{} does not exist and {} cannot be read: {e}",
                    dir.display(),
                    parent.display()
                )),
            }
        }
        Err(e) => Err(format!("cannot read {}: {e}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(listener_tls: &str, extra: &str) -> Vec<String> {
        crate::config::problems(&format!(
            "listeners:\n  - address: 127.0.0.1:8443\n    tls:\n{listener_tls}{extra}backends:\n  - url: http://a.example\n"
        ))
    }

    #[test]
    fn acme_settings_with_defaults() {
        let config = crate::config::parse(
            "listeners:\n  - address: 127.0.0.1:8443\n    tls:\n      acme:\n        directory: https://acme-staging-v02.api.letsencrypt.org/directory\n        domains: [Example.com, www.example.com.]\n        storage: /var/lib/aegis/acme\nbackends:\n  - url: http://a.example\n",
        )
        .expect("valid");
        let tls = config.listeners[0].tls.as_ref().expect("TLS");
        assert!(tls.certificates.is_empty());
        let acme = tls.acme.as_ref().expect("acme");
        assert_eq!(acme.domains, ["example.com", "www.example.com"]);
        assert_eq!(acme.challenge, AcmeChallenge::TlsAlpn01);
        assert_eq!(acme.email, None);
        assert_eq!(acme.storage, PathBuf::from("/var/lib/aegis/acme"));
    }

    #[test]
    fn acme_problems_have_key_paths() {
        let errs = errors(
            "      acme:\n        directory: http://acme.example/dir\n        email: nobody\n        domains: ['*.example.com', 10.0.0.1, a.example, A.example, 'bad_name.example', localhost]\n        challenge: dns-01\n        bogus: 1\n",
            "",
        );
        let expect = [
            "listeners[0].tls.acme.bogus: unknown key",
            "listeners[0].tls.acme.directory: expected an https:// URL, got scheme \"http\"",
            "listeners[0].tls.acme.email: expected an email address",
            "listeners[0].tls.acme.domains[0]: *.example.com: wildcard names need the dns-01",
            "listeners[0].tls.acme.domains[1]: 10.0.0.1: IP addresses are not supported",
            "listeners[0].tls.acme.domains[3]: a.example is listed twice",
            "listeners[0].tls.acme.domains[4]: expected a DNS name",
            "listeners[0].tls.acme.domains[5]: expected a DNS name",
            "listeners[0].tls.acme.storage: is required",
            "listeners[0].tls.acme.challenge: expected \"tls-alpn-01\" or \"http-01\"",
        ];
        for e in expect {
            assert!(
                errs.iter().any(|got| got.starts_with(e)),
                "missing {e:?} in {errs:#?}"
            );
        }
        assert!(
            errors("      acme: {}\n", "")
                .iter()
                .any(|e| e.starts_with("listeners[0].tls.acme.directory: is required")),
            "directory is required"
        );
    }

    #[test]
    fn domains_must_pass_the_host_allowlist_and_http01_needs_a_plain_listener() {
        let acme = "      acme:\n        directory: https://ca.example/dir\n        domains: [a.example.com, b.example.net]\n        storage: /tmp/x\n        challenge: http-01\n";
        let errs = errors(acme, "server:\n  allowed_hosts: ['*.example.com']\n");
        assert_eq!(
            errs,
            [
                "listeners[0].tls.acme.domains[1]: b.example.net is not covered by server.allowed_hosts",
                "listeners[0].tls.acme.challenge: http-01 is answered on a plain listener: add one (port 80 for a public CA) or use tls-alpn-01",
            ]
        );
    }

    #[test]
    fn directory_urls() {
        assert!(directory_url("https://acme-v02.api.letsencrypt.org/directory").is_ok());
        assert!(directory_url("http://127.0.0.1:14000/dir").is_ok());
        assert!(directory_url("http://localhost:14000/dir").is_ok());
        for bad in [
            "http://ca.example/dir",
            "ftp://x/y",
            "https://u:p@ca.example/",
            "dir",
        ] {
            assert!(directory_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn storage_must_be_private_and_writable() {
        use std::os::unix::fs::PermissionsExt;
        let base = std::env::temp_dir().join(format!("aegis-acme-storage-{}", std::process::id()));
        std::fs::create_dir_all(&base).expect("temp dir");
        let dir = base.join("acme");
        assert_eq!(storage_problem(&dir), Ok(()), "missing, parent writable");
        std::fs::create_dir(&dir).expect("create");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let open = storage_problem(&dir).expect_err("0755");
        assert!(open.contains("open to other users (mode 755)"), "{open}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        assert_eq!(storage_problem(&dir), Ok(()));
        let file = base.join("file");
        std::fs::write(&file, b"").expect("file");
        assert!(storage_problem(&file)
            .expect_err("a file")
            .ends_with("is not a directory"));
        std::fs::remove_dir_all(&base).expect("clean up");
    }
}
