//! The `listeners` section (§11.1): where Aegis accepts clients, plain or TLS, and what each
//! listener offers (HTTP/2 by ALPN, h2c, a redirect to HTTPS). Without `listeners`, one plain
//! listener on `server.address:server.port`, as before.
//!
//! Certificate files are only named here; `certificates` reads and checks them when the config
//! is loaded (`config::load`).
//!
//! Over 400 lines with its unit tests (the code is ~340): one section's checks, kept together.

use super::checker::{show, Checker};
use super::raw::{Field, RawListener, RawListenerTls};
use serde_yaml::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Most listeners one Aegis opens.
pub const MAX_LISTENERS: usize = 32;
/// Most certificates one TLS listener holds.
pub const MAX_CERTIFICATES: usize = 256;

/// One listening socket and what it serves.
#[derive(Debug, Clone)]
pub struct ListenerSettings {
    /// `listeners[].address`: `IP:port` (`[::]:8443` for IPv6).
    pub address: SocketAddr,
    /// `listeners[].tls`: absent for a plain listener.
    pub tls: Option<ListenerTls>,
    /// `listeners[].http2`: offer h2 by ALPN; default true on TLS listeners, meaningless on
    /// plain ones (see `h2c`).
    pub http2: bool,
    /// `listeners[].h2c`: HTTP/2 with prior knowledge on a plain listener; default false.
    pub h2c: bool,
    /// `listeners[].redirect_to_https`: on a plain listener, answer every request with a 308 to
    /// this origin (`https://host[:port]`, no trailing slash) + the request's path and query.
    pub redirect_to_https: Option<String>,
}

impl ListenerSettings {
    /// A plain HTTP/1.1 listener: what `server.address:server.port` means without `listeners`.
    pub fn plain(address: SocketAddr) -> Self {
        ListenerSettings {
            address,
            tls: None,
            http2: false,
            h2c: false,
            redirect_to_https: None,
        }
    }

    /// `http://0.0.0.0:8080`, `https://0.0.0.0:8443 (h2)`: for logs and the dashboard.
    pub fn describe(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut text = format!("{scheme}://{}", self.address);
        if self.tls.is_some() && self.http2 {
            text.push_str(" (h2)");
        }
        if self.tls.is_none() && self.h2c {
            text.push_str(" (h2c)");
        }
        if self.redirect_to_https.is_some() {
            text.push_str(" (redirect)");
        }
        text
    }
}

/// A TLS listener's certificates and versions.
#[derive(Debug, Clone)]
pub struct ListenerTls {
    /// The first is the default; the others are chosen by SNI. May be empty with `acme`.
    pub certificates: Vec<CertificateSpec>,
    /// `min_version`: `"1.2"` (default) or `"1.3"`. Nothing older is ever spoken.
    pub min_version: TlsVersion,
    /// `acme` (§18): a certificate obtained and renewed automatically; absent by default.
    pub acme: Option<super::acme::AcmeSettings>,
}

/// A TLS protocol version Aegis speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

/// One certificate: its files, and what was read from them when the config was loaded.
#[derive(Debug, Clone)]
pub struct CertificateSpec {
    /// PEM file with the full chain, leaf first.
    pub cert: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// The parsed and checked certificate; `None` until `config::load` has read the files.
    pub loaded: Option<Arc<super::certificates::LoadedCertificate>>,
}

impl Checker {
    /// `listeners`, or the one plain listener on `default_address` when it is absent.
    pub(super) fn listeners(
        &mut self,
        field: Field<Vec<Field<RawListener>>>,
        default_address: SocketAddr,
    ) -> Vec<ListenerSettings> {
        let list = match field {
            Field::Missing => return vec![ListenerSettings::plain(default_address)],
            Field::Value(list) => list,
            Field::Invalid(v) => {
                self.error(
                    "listeners",
                    format!("expected a list of listeners, got {}", show(&v)),
                );
                return vec![ListenerSettings::plain(default_address)];
            }
        };
        if list.is_empty() {
            self.error("listeners", "must list at least one listener");
        }
        if list.len() > MAX_LISTENERS {
            self.error(
                "listeners",
                format!("at most {MAX_LISTENERS} listeners are supported"),
            );
        }
        let mut listeners: Vec<ListenerSettings> = Vec::new();
        // The `listeners[i]` index of each listener kept (those with errors are not).
        let mut indices: Vec<usize> = Vec::new();
        for (i, entry) in list.into_iter().enumerate() {
            let path = format!("listeners[{i}]");
            let raw = self.section(entry, &path);
            let Some(listener) = self.listener(raw, &path) else {
                continue;
            };
            if let Some(k) = listeners
                .iter()
                .position(|other| addresses_overlap(other.address, listener.address))
            {
                let hint = if listener.address.port() == 0 {
                    "; port 0 picks a port once per address: give each such listener its own \
                     address (127.0.0.2:0, …)"
                } else {
                    ""
                };
                self.error(
                    &format!("{path}.address"),
                    format!(
                        "{} overlaps listeners[{}] ({}){hint}",
                        listener.address, indices[k], listeners[k].address
                    ),
                );
            }
            listeners.push(listener);
            indices.push(i);
        }
        if listeners.is_empty() {
            listeners.push(ListenerSettings::plain(default_address));
        }
        listeners
    }

    fn listener(&mut self, raw: RawListener, path: &str) -> Option<ListenerSettings> {
        self.unknown(path, &raw.unknown);
        let address_path = format!("{path}.address");
        let address = match self.typed(raw.address, &address_path, "IP:port") {
            None => {
                if !self.errors.iter().any(|e| e.path == address_path) {
                    self.error(&address_path, "is required (IP:port such as 0.0.0.0:8443)");
                }
                None
            }
            Some(text) => match text.trim().parse::<SocketAddr>() {
                Ok(address) => Some(address),
                Err(_) => {
                    self.error(
                        &address_path,
                        format!("expected IP:port such as 0.0.0.0:8443 or [::]:8443, got {text:?}"),
                    );
                    None
                }
            },
        };
        let tls = match raw.tls {
            Field::Missing => None,
            field => {
                let tls_path = format!("{path}.tls");
                let raw_tls = self.section(field, &tls_path);
                Some(self.listener_tls(raw_tls, &tls_path))
            }
        };
        let http2 = self.boolean(raw.http2, &format!("{path}.http2"), tls.is_some());
        let h2c = self.boolean(raw.h2c, &format!("{path}.h2c"), false);
        if h2c && tls.is_some() {
            self.error(
                &format!("{path}.h2c"),
                "is for plain listeners; a TLS listener offers HTTP/2 by ALPN (http2: true)",
            );
        }
        let redirect_path = format!("{path}.redirect_to_https");
        let redirect_to_https = self
            .typed(
                raw.redirect_to_https,
                &redirect_path,
                "an origin such as https://example.com",
            )
            .and_then(|text| match https_origin(&text) {
                Ok(origin) => Some(origin),
                Err(message) => {
                    self.error(&redirect_path, message);
                    None
                }
            });
        if redirect_to_https.is_some() && tls.is_some() {
            self.error(
                &redirect_path,
                "is for plain listeners; this listener already speaks TLS",
            );
        }
        Some(ListenerSettings {
            address: address?,
            tls,
            http2,
            h2c,
            redirect_to_https,
        })
    }

    fn listener_tls(&mut self, raw: RawListenerTls, path: &str) -> ListenerTls {
        self.unknown(path, &raw.unknown);
        let certificates_path = format!("{path}.certificates");
        let list = match raw.certificates {
            Field::Missing => Vec::new(),
            Field::Value(list) => list,
            Field::Invalid(v) => {
                self.error(
                    &certificates_path,
                    format!("expected a list of {{cert, key}}, got {}", show(&v)),
                );
                Vec::new()
            }
        };
        let acme = self.acme(raw.acme, &format!("{path}.acme"));
        if list.is_empty()
            && acme.is_none()
            && !self.errors.iter().any(|e| e.path == certificates_path)
        {
            self.error(
                &certificates_path,
                "at least one certificate is required (cert and key files), or acme",
            );
        }
        if list.len() > MAX_CERTIFICATES {
            self.error(
                &certificates_path,
                format!("at most {MAX_CERTIFICATES} certificates are supported"),
            );
        }
        let mut certificates = Vec::new();
        for (i, entry) in list.into_iter().enumerate() {
            let path = format!("{certificates_path}[{i}]");
            let raw = self.section(entry, &path);
            self.unknown(&path, &raw.unknown);
            let cert = self.required_path(raw.cert, &format!("{path}.cert"));
            let key = self.required_path(raw.key, &format!("{path}.key"));
            if let (Some(cert), Some(key)) = (cert, key) {
                certificates.push(CertificateSpec {
                    cert,
                    key,
                    loaded: None,
                });
            }
        }
        let version_path = format!("{path}.min_version");
        let min_version = match self.typed(raw.min_version, &version_path, "\"1.2\" or \"1.3\"") {
            None => TlsVersion::Tls12,
            Some(value) => match version_text(&value).as_deref() {
                Some("1.2") => TlsVersion::Tls12,
                Some("1.3") => TlsVersion::Tls13,
                _ => {
                    // SECURITY: TLS 1.0 and 1.1 are broken (BEAST, POODLE-era CBC, SHA-1
                    // handshakes); rustls does not speak them and Aegis does not offer them.
                    self.error(
                        &version_path,
                        format!("expected \"1.2\" or \"1.3\", got {}", show(&value)),
                    );
                    TlsVersion::Tls12
                }
            },
        };
        ListenerTls {
            certificates,
            min_version,
            acme,
        }
    }

    fn required_path(&mut self, field: Field<String>, path: &str) -> Option<PathBuf> {
        let missing = matches!(field, Field::Missing);
        let value = self.path(field, path);
        if missing {
            self.error(path, "is required (a PEM file)");
        }
        value
    }
}

/// `"1.2"`, `1.2` or `1.3` as text.
fn version_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Whether two listeners would claim the same port: the same address, or the same port with an
/// unspecified address (`0.0.0.0`, `::`) of the same family. Port 0 asks the kernel for a fresh
/// port, so it never collides, except twice on the very same address: Pingora keeps (and hands
/// over in a graceful upgrade) one socket per configured address text, so the two listeners
/// would share one socket.
fn addresses_overlap(a: SocketAddr, b: SocketAddr) -> bool {
    if a.port() == 0 || b.port() == 0 {
        return a == b;
    }
    a.port() == b.port()
        && a.is_ipv4() == b.is_ipv4()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// Checks a `redirect_to_https` origin and returns it without a trailing slash.
///
/// SECURITY: the redirect target is fixed by the operator: only `https://host[:port]`, with no
/// path, query, fragment or user info, so the request can only add its own path and query.
fn https_origin(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text.trim()).map_err(|e| {
        format!("expected an origin such as https://example.com, got {text:?} ({e})")
    })?;
    if url.scheme() != "https" {
        return Err(format!(
            "expected an https:// origin, got scheme {:?}",
            url.scheme()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain user info".into());
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "expected an origin without path, query or fragment (https://host[:port]), got {text:?}"
        ));
    }
    let Some(host) = url.host_str() else {
        return Err("a host is required".into());
    };
    Ok(match url.port() {
        Some(port) => format!("https://{host}:{port}"),
        None => format!("https://{host}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        crate::config::problems(&format!("{text}backends:\n  - url: http://a.example\n"))
    }

    #[test]
    fn without_listeners_one_plain_listener_on_server_address() {
        let config = crate::config::parse(
            "server:\n  address: 127.0.0.1\n  port: 8081\nbackends:\n  - url: http://a.example\n",
        )
        .expect("valid");
        assert_eq!(config.listeners.len(), 1);
        let listener = &config.listeners[0];
        assert_eq!(listener.address.to_string(), "127.0.0.1:8081");
        assert!(listener.tls.is_none() && !listener.http2 && !listener.h2c);
        assert_eq!(config.security.hsts, crate::config::HstsSettings::default());
    }

    #[test]
    fn listeners_with_defaults() {
        let config = crate::config::parse(
            "listeners:\n  - address: 0.0.0.0:8443\n    tls:\n      certificates:\n        - {cert: a.crt, key: a.key}\n        - {cert: b.crt, key: b.key}\n      min_version: 1.3\n  - address: '[::]:8080'\n    redirect_to_https: https://example.com:8443\n  - address: 127.0.0.1:8081\n    h2c: true\nbackends:\n  - url: http://a.example\n",
        )
        .expect("valid");
        let [tls, redirect, h2c] = &config.listeners[..] else {
            panic!("three listeners");
        };
        let settings = tls.tls.as_ref().expect("TLS");
        assert_eq!(settings.certificates.len(), 2);
        assert_eq!(settings.certificates[1].key, PathBuf::from("b.key"));
        assert_eq!(settings.min_version, TlsVersion::Tls13);
        assert!(tls.http2);
        assert!(!redirect.http2 && redirect.tls.is_none());
        assert_eq!(
            redirect.redirect_to_https.as_deref(),
            Some("https://example.com:8443")
        );
        assert!(h2c.h2c);
        assert_eq!(
            tls.describe() + " " + &redirect.describe(),
            "https://0.0.0.0:8443 (h2) http://[::]:8080 (redirect)"
        );
    }

    #[test]
    fn port_zero_is_a_fresh_port_per_address_and_never_the_admin_port() {
        // Two port-0 listeners on distinct addresses, and the admin listener on port 0 too.
        let ok = "listeners:\n  - address: 127.0.0.1:0\n  - address: 127.0.0.2:0\nadmin:\n  address: 127.0.0.1:0\nbackends:\n  - url: http://a.example\n";
        let config = crate::config::parse(ok).expect("port 0 is valid");
        assert_eq!(config.listeners[1].address.port(), 0);
        let errs = errors("listeners:\n  - address: 127.0.0.1:0\n  - address: 127.0.0.1:0\n");
        assert!(
            errs.iter().any(|e| e.starts_with(
                "listeners[1].address: 127.0.0.1:0 overlaps listeners[0] (127.0.0.1:0); port 0 picks a port once per address"
            )),
            "{errs:#?}"
        );
    }

    #[test]
    fn listener_problems_have_key_paths() {
        let errs = errors(
            "listeners:\n  - address: nowhere\n    tls:\n      certificates:\n        - cert: a.crt\n      min_version: '1.1'\n    h2c: true\n    redirect_to_https: http://x\n  - address: 0.0.0.0:9100\n    tls: {}\n  - address: 127.0.0.1:9100\n    bogus: 1\n  - {}\n",
        );
        let expect = [
            "listeners[0].address: expected IP:port",
            "listeners[0].tls.certificates[0].key: is required",
            "listeners[0].tls.min_version: expected \"1.2\" or \"1.3\", got \"1.1\"",
            "listeners[0].h2c: is for plain listeners",
            "listeners[0].redirect_to_https: expected an https:// origin",
            "listeners[1].tls.certificates: at least one certificate is required",
            "listeners[2].bogus: unknown key",
            "listeners[2].address: 127.0.0.1:9100 overlaps listeners[1] (0.0.0.0:9100)",
            "listeners[3].address: is required",
            "admin.address: must differ from the public listener (127.0.0.1:9100)",
        ];
        for e in expect {
            assert!(
                errs.iter().any(|got| got.starts_with(e)),
                "missing {e:?} in {errs:#?}"
            );
        }
        assert!(errors("listeners: []\n")[0].starts_with("listeners: must list at least one"));
        assert!(errors("security:\n  hsts:\n    max_age: -1\n")[0]
            .starts_with("security.hsts.max_age: must be between 0 and 63072000"));
    }

    #[test]
    fn origins_are_checked_and_normalised() {
        assert_eq!(
            https_origin("https://Example.com:8443/").as_deref(),
            Ok("https://example.com:8443")
        );
        assert_eq!(
            https_origin("https://example.com:443").as_deref(),
            Ok("https://example.com")
        );
        for bad in [
            "http://example.com",
            "https://u:p@example.com",
            "https://example.com/path",
            "https://example.com/?q=1",
            "example.com",
        ] {
            assert!(https_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn overlapping_addresses() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(addresses_overlap(a("0.0.0.0:80"), a("127.0.0.1:80")));
        assert!(addresses_overlap(a("127.0.0.1:80"), a("127.0.0.1:80")));
        assert!(!addresses_overlap(a("127.0.0.1:80"), a("127.0.0.2:80")));
        // Port 0: a fresh port per socket, but one socket per configured address in Pingora.
        assert!(!addresses_overlap(a("0.0.0.0:0"), a("127.0.0.1:0")));
        assert!(!addresses_overlap(a("127.0.0.1:0"), a("127.0.0.1:80")));
        assert!(addresses_overlap(a("127.0.0.1:0"), a("127.0.0.1:0")));
        assert!(!addresses_overlap(a("0.0.0.0:80"), a("[::]:80")));
        assert!(!addresses_overlap(a("0.0.0.0:80"), a("0.0.0.0:81")));
    }
}
