//! Configuration: the YAML file (`raw`), its validation into domain types (`validate`, with the
//! field conversions of `checker` and the URL rules of `backend_url`), and the startup resolution
//! of backend hosts with the anti-SSRF check (`resolve`).
//!
//! This is the only module that knows serde. Everything else reads [`Config`], whose values are
//! already checked: ports are in range, durations are positive, backends are pinned to the
//! addresses that passed the SSRF check.

mod backend_url;
mod certificates;
mod checker;
mod cluster;
mod hsts;
mod http2;
mod listeners;
mod raw;
mod resolve;
mod secret;
mod validate;

use ipnet::IpNet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use certificates::{load_certificates, LoadedCertificate, Validity, EXPIRY_WARNING};
pub use cluster::{ClusterSettings, RedisUrl};
pub use hsts::HstsSettings;
pub use http2::Http2Settings;
pub use listeners::{CertificateSpec, ListenerSettings, ListenerTls, TlsVersion};
pub use resolve::resolve_backends;
pub use secret::{read_secret_file, Secret};
pub use validate::{parse, parse_level};

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
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            path: path.display().to_string(),
            message: format!("cannot read the config file: {e}"),
        }])
    })?;
    let mut config = parse(&text)?;
    resolve_backends(&mut config)?;
    load_certificates(&mut config)?;
    Ok(config)
}

/// The validated configuration. Defaults are those of SPEC §2.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerSettings,
    pub upstream: UpstreamSettings,
    pub backends: Vec<BackendSpec>,
    pub health_check: HealthCheckSettings,
    pub rate_limit: RateLimitSettings,
    pub adaptive: AdaptiveSettings,
    pub circuit_breaker: BreakerSettings,
    pub logging: LoggingSettings,
    pub tui: TuiSettings,
    pub admin: AdminSettings,
    pub development: DevelopmentSettings,
    pub security: SecuritySettings,
    /// `listeners` (§11.1); never empty: without the section, one plain listener on
    /// `server.address:server.port`.
    pub listeners: Vec<ListenerSettings>,
    /// Problems that do not stop Aegis (a certificate about to expire), with their key paths.
    pub warnings: Vec<ConfigError>,
    pub http2: Http2Settings,
    pub cluster: ClusterSettings,
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Listen address; `0.0.0.0` by default, IPv6 allowed.
    pub address: IpAddr,
    /// Listen port, 8080 by default.
    pub port: u16,
    /// Pingora worker threads; the number of CPU cores by default.
    pub threads: usize,
    /// Host allowlist (§3.4); empty means any host.
    pub allowed_hosts: Vec<String>,
    /// Methods that pass (§3.1), upper-case.
    pub allowed_methods: Vec<String>,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_body_bytes: u64,
    pub shutdown_timeout: Duration,
    /// Client connections held at once; beyond it new ones wait in the listen backlog. `None`:
    /// derived from the open-file limit at startup (see `capacity`).
    pub max_connections: Option<usize>,
    pub pid_file: PathBuf,
    pub upgrade_sock: PathBuf,
}

impl ServerSettings {
    /// The public listen address as a socket address.
    pub fn listen_addr(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.port)
    }
}

#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    pub connect_timeout: Duration,
    pub response_header_timeout: Duration,
    pub max_retries: u32,
}

/// One backend: where it is, how to talk to it, and the address pinned at startup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSpec {
    /// The URL as normalised: `scheme://host[:port]`.
    pub url: String,
    /// `https://` backends are reached over TLS (rustls), with SNI set to `host`.
    pub tls: bool,
    /// Host name (or IP literal) from the URL, without brackets.
    pub host: String,
    pub port: u16,
    /// Value of the `Host` header sent upstream: `host[:port]` as in the URL.
    pub host_header: String,
    pub weight: u32,
    /// The address that passed the SSRF check; Aegis connects here and never re-resolves.
    /// `None` until [`resolve_backends`] has run.
    pub addr: Option<SocketAddr>,
}

#[derive(Debug, Clone)]
pub struct HealthCheckSettings {
    pub interval: Duration,
    pub timeout: Duration,
    pub path: String,
    pub unhealthy_threshold: u32,
    pub healthy_threshold: u32,
}

#[derive(Debug, Clone)]
pub struct RateLimitSettings {
    /// Per-client sustained rate, requests per second: the adaptive loop's starting point.
    pub requests_per_second: f64,
    /// Requests a client may send at once.
    pub burst: u32,
    /// Accepted for compatibility with the Go Aegis; memory is bounded by design.
    pub cleanup_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct AdaptiveSettings {
    pub enabled: bool,
    pub evaluation_interval: Duration,
    pub latency_threshold: Duration,
    pub reduction_factor: f64,
    pub recovery_factor: f64,
    pub min_rate: f64,
    pub max_rate: f64,
}

#[derive(Debug, Clone)]
pub struct BreakerSettings {
    pub failure_threshold: u32,
    pub success_threshold: u32,
    pub open_timeout: Duration,
    pub half_open_max_requests: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Debug, Clone)]
pub struct LoggingSettings {
    pub level: log::LevelFilter,
    pub format: LogFormat,
    /// Where logs go instead of stdout; while the dashboard runs, `aegis.log` when unset.
    pub file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct TuiSettings {
    pub enabled: bool,
    pub refresh_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct AdminSettings {
    pub enabled: bool,
    pub address: SocketAddr,
    /// `admin.token_file`: the bearer token the mutating endpoints need (§12.2), read at load
    /// from a file only its owner may read. `None`: they answer 403.
    pub token: Option<Secret>,
}

#[derive(Debug, Clone)]
pub struct DevelopmentSettings {
    pub allow_loopback_backends: bool,
}

#[derive(Debug, Clone)]
pub struct SecuritySettings {
    pub allowed_backend_networks: Vec<IpNet>,
    pub hsts: HstsSettings,
}
