//! Configuration: the YAML file (`raw`), its validation into domain types (`validate`, with the
//! field conversions of `checker` and the URL rules of `backend_url`), and the resolution of
//! backend hosts with the anti-SSRF check (`resolve`) and of certificate files
//! (`certificates`), both done when a file is loaded.
//!
//! Each section has its own file with its settings struct, the struct's `Default` (the one place
//! its defaults live, as SPEC §2 lists them) and its checks: `server`, `backends` (`backends`
//! and `upstream`), `health`, `limits` (`rate_limit` and `adaptive`), `breaker`, `logging`,
//! `admin` (`admin` and `tui`), `security` (`security` and `development`), `hsts`,
//! `listeners` (with `acme`), `http2`, `cluster`, `websocket`. Every field's doc comment names its key, its default and
//! its effect.
//!
//! The running server holds the loaded [`Config`] as one immutable value in a [`ConfigHandle`],
//! which a reload swaps whole (`handle`).
//!
//! This is the only module that knows serde. Everything else reads [`Config`], whose values are
//! already checked: ports are in range, durations are positive, backends are pinned to the
//! addresses that passed the SSRF check.

mod acme;
mod admin;
mod backend_url;
mod backends;
mod breaker;
mod certificates;
mod checker;
mod cluster;
mod handle;
mod health;
mod hsts;
mod http2;
mod limits;
mod listeners;
mod logging;
mod pools;
mod raw;
mod resolve;
mod routes;
mod secret;
mod security;
mod server;
mod sites;
mod validate;
mod websocket;

use std::fmt;
use std::path::Path;

pub use acme::{check_storage, AcmeChallenge, AcmeSettings, MAX_ACME_DOMAINS};
pub use admin::{AdminSettings, TuiSettings};
pub use backends::{BackendProtocol, BackendSpec, UpstreamSettings, MAX_BACKENDS, MAX_WEIGHT};
pub use breaker::BreakerSettings;
pub use certificates::{
    load as load_certificate, load_certificates, LoadedCertificate, Validity, EXPIRY_WARNING,
};
pub use cluster::{ClusterSettings, RedisUrl};
pub use handle::ConfigHandle;
pub use health::HealthCheckSettings;
pub use hsts::HstsSettings;
pub use http2::Http2Settings;
pub use limits::{window_for, AdaptiveSettings, RateLimitSettings};
pub use listeners::{CertificateSpec, ListenerSettings, ListenerTls, TlsVersion};
pub use logging::{parse_level, LogFormat, LoggingSettings};
pub use pools::{PoolId, PoolRef, PoolSettings, DEFAULT_POOL, DEFAULT_POOL_NAME, MAX_POOLS};
pub use resolve::resolve_backends;
pub use routes::{RouteSettings, Routes, MAX_ROUTES, MAX_ROUTE_WINDOWS};
pub use secret::{read_secret_file, Secret};
pub use security::{DevelopmentSettings, SecuritySettings};
pub use server::ServerSettings;
pub use validate::parse;
pub use websocket::WebsocketSettings;

/// A problem found in the configuration, with the key path it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where: `server.port`, `backends[1].url`, or `(file)` for the file as a whole.
    pub path: String,
    /// What was expected.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found in one configuration file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

/// Reads, validates and resolves a configuration file: everything `aegis -t` checks.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    load_file(path).map(|(config, _)| config)
}

/// [`load`], also returning the SHA-256 of the file's bytes (as `/status` shows it). Every
/// problem is reported, not only the first kind: backend hosts are resolved and certificates
/// read even when other values are wrong.
pub fn load_file(path: &Path) -> Result<(Config, String), ConfigErrors> {
    let bytes = std::fs::read(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            path: path.display().to_string(),
            message: format!("cannot read the config file: {e}"),
        }])
    })?;
    let sha256 = hex(ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref());
    let text = String::from_utf8(bytes).map_err(|_| {
        ConfigErrors(vec![ConfigError {
            path: "(file)".into(),
            message: "not UTF-8 text".into(),
        }])
    })?;
    let (mut config, mut errors) = validate::check(&text)?;
    // A backend with a wrong entry is left out of `config.backends`, so the key paths of the
    // resolution would not match the file's: resolve only a list that checked clean.
    let backends_clean = !errors
        .iter()
        .any(|e| e.path.starts_with("backends") || e.path.starts_with("pools"));
    if backends_clean {
        if let Err(e) = resolve_backends(&mut config) {
            errors.extend(e.0);
        }
    }
    if let Err(e) = load_certificates(&mut config) {
        errors.extend(e.0);
    }
    errors.extend(check_storage(&config));
    if errors.is_empty() {
        Ok((config, sha256))
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Every problem [`parse`] finds in `text`, as an operator reads them (for the sections' tests).
#[cfg(test)]
pub(crate) fn problems(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => vec![],
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The validated configuration: every value checked, backends pinned to the addresses that
/// passed the SSRF check, certificates read. Each section's defaults are its `Default` (SPEC §2);
/// a file with only `backends:` is valid.
#[derive(Debug, Clone)]
pub struct Config {
    /// `server`: the default listener, worker threads, request rules and client timeouts.
    pub server: ServerSettings,
    /// `upstream`: connect and response timeouts to backends, retries.
    pub upstream: UpstreamSettings,
    /// `backends`, required, 1–256 entries with distinct URLs: where requests go.
    pub backends: Vec<BackendSpec>,
    /// `health_check`: the active probes.
    pub health_check: HealthCheckSettings,
    /// `rate_limit`: the per-client limit.
    pub rate_limit: RateLimitSettings,
    /// `adaptive`: the loop that moves the per-client rate with latency.
    pub adaptive: AdaptiveSettings,
    /// `circuit_breaker`: one breaker per backend.
    pub circuit_breaker: BreakerSettings,
    /// `logging`: level, format and file of the logs.
    pub logging: LoggingSettings,
    /// `tui`: the terminal dashboard.
    pub tui: TuiSettings,
    /// `admin`: the admin listener.
    pub admin: AdminSettings,
    /// `development`: loopback backends for running on one machine.
    pub development: DevelopmentSettings,
    /// `security`: allowed private backend networks and HSTS.
    pub security: SecuritySettings,
    /// `listeners` (§11.1), default one plain listener on `server.address:server.port`; never
    /// empty.
    pub listeners: Vec<ListenerSettings>,
    /// Problems that do not stop Aegis (a certificate about to expire), with their key paths;
    /// logged at warn when the config is applied.
    pub warnings: Vec<ConfigError>,
    /// `http2`: per-connection HTTP/2 limits.
    pub http2: Http2Settings,
    /// `cluster`: shared limits through Redis; off by default.
    pub cluster: ClusterSettings,
    /// `websocket`: WebSocket tunnels (§11.4).
    pub websocket: WebsocketSettings,
    /// `pools` (§17): the named pools but `default`, in name order; pool `i + 1`. The default
    /// pool (0) is `backends`, `health_check` and `circuit_breaker` above, whether written at the
    /// top level or as `pools.default`.
    pub pools: Vec<PoolSettings>,
    /// Where the default pool's backends were written (`backends` or `pools.default.backends`),
    /// for the key paths of later checks.
    pub backends_key: &'static str,
    /// `routes` (§17), compiled; `None` without the key: every request goes to pool 0, as in
    /// part one.
    pub routes: Option<std::sync::Arc<Routes>>,
}
