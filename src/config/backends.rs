//! The `backends` and `upstream` sections (§2): the servers Aegis forwards to, and how it talks
//! to them. URL rules are in `backend_url`, the address pinning in `resolve`.

use super::backend_url::parse_backend_url;
use super::checker::{show, Checker};
use super::raw::{Field, RawBackend, RawUpstream};
use std::net::SocketAddr;
use std::time::Duration;

/// Largest backend weight: keeps the smooth round-robin schedule small (see `balance::schedule`).
pub const MAX_WEIGHT: i64 = 1000;
/// Most backends one Aegis fronts.
pub const MAX_BACKENDS: usize = 256;

/// `upstream`: connections to backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamSettings {
    /// `upstream.connect_timeout`, default 2s: the TCP (and TLS) connect to a backend; past it
    /// the attempt is a connect failure (retried on another backend, counted by the breaker).
    pub connect_timeout: Duration,
    /// `upstream.response_header_timeout`, default 10s: the wait for a backend's response
    /// header (and each later read); past it the client gets 504.
    pub response_header_timeout: Duration,
    /// `upstream.max_retries`, default 1, 0–16: retries on another backend when connecting
    /// failed (§4.5); a request that reached a backend is never retried.
    pub max_retries: u32,
    /// `upstream.ca_file`, unset by default (the system's roots): PEM certificate(s) of the
    /// authority that signs the certificates of `https://` backends (a private CA). Read when
    /// the config is loaded; kept here as the PEM text.
    pub ca_pem: Option<Vec<u8>>,
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        UpstreamSettings {
            connect_timeout: Duration::from_secs(2),
            response_header_timeout: Duration::from_secs(10),
            max_retries: 1,
            ca_pem: None,
        }
    }
}

/// `backends[]`: one backend, where it is, how to talk to it, and the address pinned when the
/// config was loaded. A backend is identified by its `url` (a reload keeps its state by it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSpec {
    /// `backends[].url`, required: `http://` or `https://` host[:port], no path, userinfo,
    /// query or fragment; kept normalised as `scheme://host[:port]`.
    pub url: String,
    /// `https://` backends are reached over TLS (rustls), with SNI set to `host`.
    pub tls: bool,
    /// Host name (or IP literal) from the URL, without brackets.
    pub host: String,
    /// The port from the URL, or 80/443 by scheme.
    pub port: u16,
    /// Value of the `Host` header sent upstream: `host[:port]` as in the URL.
    pub host_header: String,
    /// `backends[].weight`, default 1, 1–1000: the backend's share of requests relative to the
    /// others (smooth weighted round-robin, §4.1).
    pub weight: u32,
    /// `backends[].protocol`, default `http1`: how Aegis speaks to the backend (§11.3).
    pub protocol: BackendProtocol,
    /// The address that passed the SSRF check; Aegis connects here and never re-resolves.
    /// `None` until [`super::resolve_backends`] has run.
    pub addr: Option<SocketAddr>,
}

/// `backends[].protocol` (§11.3): requests and health checks use it alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendProtocol {
    /// HTTP/1.1 (the default), over TLS for `https://`.
    Http1,
    /// HTTP/2 over TLS, negotiated by ALPN `h2`; `https://` only. Streams share connections.
    H2,
    /// HTTP/2 with prior knowledge over plain TCP (h2c); `http://` only.
    H2c,
}

impl BackendProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendProtocol::Http1 => "http1",
            BackendProtocol::H2 => "h2",
            BackendProtocol::H2c => "h2c",
        }
    }
}

impl Checker {
    pub(super) fn upstream(&mut self, raw: RawUpstream) -> UpstreamSettings {
        self.unknown("upstream", &raw.unknown);
        let default = UpstreamSettings::default();
        UpstreamSettings {
            connect_timeout: self.duration(
                raw.connect_timeout,
                "upstream.connect_timeout",
                default.connect_timeout,
            ),
            response_header_timeout: self.duration(
                raw.response_header_timeout,
                "upstream.response_header_timeout",
                default.response_header_timeout,
            ),
            max_retries: self.int(
                raw.max_retries,
                "upstream.max_retries",
                default.max_retries.into(),
                0,
                16,
            ) as u32,
            ca_pem: self
                .path(raw.ca_file, "upstream.ca_file")
                .and_then(|path| self.ca_file(&path, "upstream.ca_file")),
        }
    }

    /// `backends[i].protocol`, checked against the URL's scheme.
    fn protocol(&mut self, field: Field<String>, path: &str, tls: bool) -> BackendProtocol {
        let expected = "http1, h2 or h2c";
        let Some(text) = self.typed(field, path, expected) else {
            return BackendProtocol::Http1;
        };
        let protocol = match text.as_str() {
            "http1" => BackendProtocol::Http1,
            "h2" => BackendProtocol::H2,
            "h2c" => BackendProtocol::H2c,
            other => {
                self.error(path, format!("expected {expected}, got {other:?}"));
                return BackendProtocol::Http1;
            }
        };
        match (protocol, tls) {
            (BackendProtocol::H2, false) => {
                self.error(path, "h2 needs an https:// URL (h2c is HTTP/2 without TLS)");
            }
            (BackendProtocol::H2c, true) => {
                self.error(path, "h2c needs an http:// URL (h2 is HTTP/2 over TLS)");
            }
            _ => {}
        }
        protocol
    }

    /// The list at `at` (`backends`, or a pool's `pools.api.backends`).
    pub(super) fn backends(
        &mut self,
        field: Field<Vec<Field<RawBackend>>>,
        at: &str,
    ) -> Vec<BackendSpec> {
        let list = match field {
            Field::Missing => Vec::new(),
            Field::Value(list) => list,
            Field::Invalid(v) => {
                self.error(at, format!("expected a list of backends, got {}", show(&v)));
                return Vec::new();
            }
        };
        if list.is_empty() {
            self.error(at, "at least one backend is required");
        }
        if list.len() > MAX_BACKENDS {
            self.error(at, format!("at most {MAX_BACKENDS} backends are supported"));
        }
        let mut specs: Vec<BackendSpec> = Vec::new();
        for (i, entry) in list.into_iter().enumerate() {
            let path = format!("{at}[{i}]");
            let raw = self.section(entry, &path);
            self.unknown(&path, &raw.unknown);
            let weight = self.int(raw.weight, &format!("{path}.weight"), 1, 1, MAX_WEIGHT) as u32;
            let url_path = format!("{path}.url");
            let Some(url) = self.typed(raw.url, &url_path, "a URL such as http://host:port") else {
                if !self.errors.iter().any(|e| e.path == url_path) {
                    self.error(&url_path, "is required");
                }
                continue;
            };
            match parse_backend_url(&url) {
                Err(message) => self.error(&url_path, message),
                Ok(mut spec) => {
                    spec.weight = weight;
                    spec.protocol =
                        self.protocol(raw.protocol, &format!("{path}.protocol"), spec.tls);
                    if let Some(j) = specs.iter().position(|s| s.url == spec.url) {
                        self.error(&url_path, format!("duplicate of {at}[{j}] ({})", spec.url));
                    } else {
                        specs.push(spec);
                    }
                }
            }
        }
        specs
    }
}

#[cfg(test)]
mod tests {

    use crate::config::problems as errors;

    #[test]
    fn duplicates_missing_backends_and_bad_types() {
        let errs = errors("backends:\n  - url: http://a.example\n  - url: http://a.example/\n");
        assert!(
            errs[0].starts_with("backends[1].url: duplicate of backends[0]"),
            "{errs:?}"
        );
        let errs = errors("server:\n  port: 8080\n");
        assert!(
            errs.iter()
                .any(|e| e.starts_with("backends: at least one backend")),
            "{errs:?}"
        );
        let errs = errors("backends:\n  - weight: 0\n");
        assert!(errs
            .iter()
            .any(|e| e.starts_with("backends[0].weight: must be between 1")));
        assert!(
            errs.iter().any(|e| e == "backends[0].url: is required"),
            "{errs:?}"
        );
        let errs = errors("backends: 3\n");
        assert!(errs[0].starts_with("backends: expected a list"), "{errs:?}");
    }

    #[test]
    fn the_protocol_must_match_the_scheme() {
        let config = crate::config::parse(
            "backends:\n  - url: http://a.example\n    protocol: h2c\n  - url: https://b.example\n    protocol: h2\n  - url: http://c.example\n",
        )
        .expect("valid");
        let protocols: Vec<_> = config
            .backends
            .iter()
            .map(|b| b.protocol.as_str())
            .collect();
        assert_eq!(protocols, ["h2c", "h2", "http1"]);
        assert_eq!(
            errors("backends:\n  - url: http://a.example\n    protocol: h2\n  - url: https://b.example\n    protocol: h2c\n  - url: http://c.example\n    protocol: http3\n"),
            vec![
                "backends[0].protocol: h2 needs an https:// URL (h2c is HTTP/2 without TLS)".to_string(),
                "backends[1].protocol: h2c needs an http:// URL (h2 is HTTP/2 over TLS)".to_string(),
                "backends[2].protocol: expected http1, h2 or h2c, got \"http3\"".to_string(),
            ]
        );
    }
}
