//! The YAML file as written: serde structs that mirror it key for key.
//!
//! Every leaf is a [`Field`], which never fails to deserialize: a value of the wrong type is kept
//! as [`Field::Invalid`] so that validation can report *every* problem with its key path instead of
//! stopping at the first. Unknown keys are captured per section (`unknown`) for the same reason,
//! and refused by validation.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_yaml::Value;
use std::collections::BTreeMap;

/// One YAML value as found in the file: absent, well-typed, or of the wrong type.
#[derive(Debug, Clone, Default)]
pub enum Field<T> {
    /// The key is absent (or explicitly `null`): the default applies.
    #[default]
    Missing,
    /// The key holds a value of the expected type.
    Value(T),
    /// The key holds something else; kept so the error can show it.
    Invalid(Value),
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        if value.is_null() {
            return Ok(Field::Missing);
        }
        Ok(match serde_yaml::from_value::<T>(value.clone()) {
            Ok(typed) => Field::Value(typed),
            Err(_) => Field::Invalid(value),
        })
    }
}

/// Keys that no section knows, by name.
pub type Unknown = BTreeMap<String, Value>;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawConfig {
    pub server: Field<RawServer>,
    pub upstream: Field<RawUpstream>,
    pub backends: Field<Vec<Field<RawBackend>>>,
    pub health_check: Field<RawHealthCheck>,
    pub rate_limit: Field<RawRateLimit>,
    pub adaptive: Field<RawAdaptive>,
    pub circuit_breaker: Field<RawCircuitBreaker>,
    pub logging: Field<RawLogging>,
    pub tui: Field<RawTui>,
    pub admin: Field<RawAdmin>,
    pub development: Field<RawDevelopment>,
    pub security: Field<RawSecurity>,
    pub listeners: Field<Vec<Field<RawListener>>>,
    pub http2: Field<RawHttp2>,
    pub cluster: Field<RawCluster>,
    pub websocket: Field<RawWebsocket>,
    pub pools: Field<BTreeMap<String, Field<RawPool>>>,
    pub routes: Field<Vec<Field<RawRoute>>>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

/// `pools.<name>` as written (§17): the part-one keys of one pool.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RawPool {
    pub backends: Field<Vec<Field<RawBackend>>>,
    pub health_check: Field<RawHealthCheck>,
    pub circuit_breaker: Field<RawCircuitBreaker>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

/// `routes[]` as written (§17).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RawRoute {
    pub name: Field<String>,
    pub host: Field<String>,
    pub path_prefix: Field<String>,
    pub pool: Field<String>,
    pub strip_prefix: Field<bool>,
    pub rate_limit: Field<RawRateLimit>,
    pub max_body_bytes: Field<i64>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RawServer {
    pub address: Field<String>,
    pub port: Field<i64>,
    pub threads: Field<i64>,
    pub allowed_hosts: Field<Vec<String>>,
    pub allowed_methods: Field<Vec<String>>,
    pub read_timeout: Field<String>,
    pub write_timeout: Field<String>,
    pub idle_timeout: Field<String>,
    pub max_header_bytes: Field<i64>,
    pub max_body_bytes: Field<i64>,
    pub shutdown_timeout: Field<String>,
    pub max_connections: Field<i64>,
    pub pid_file: Field<String>,
    pub upgrade_sock: Field<String>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RawUpstream {
    pub connect_timeout: Field<String>,
    pub response_header_timeout: Field<String>,
    pub max_retries: Field<i64>,
    pub ca_file: Field<String>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RawBackend {
    pub url: Field<String>,
    pub weight: Field<i64>,
    pub protocol: Field<String>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RawHealthCheck {
    pub interval: Field<String>,
    pub timeout: Field<String>,
    pub path: Field<String>,
    pub unhealthy_threshold: Field<i64>,
    pub healthy_threshold: Field<i64>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RawRateLimit {
    pub requests_per_second: Field<f64>,
    pub burst: Field<i64>,
    pub cleanup_interval: Field<String>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RawAdaptive {
    pub enabled: Field<bool>,
    pub evaluation_interval: Field<String>,
    pub latency_threshold_ms: Field<f64>,
    pub reduction_factor: Field<f64>,
    pub recovery_factor: Field<f64>,
    pub min_rate: Field<f64>,
    pub max_rate: Field<f64>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RawCircuitBreaker {
    pub failure_threshold: Field<i64>,
    pub success_threshold: Field<i64>,
    pub open_timeout: Field<String>,
    pub half_open_max_requests: Field<i64>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RawLogging {
    pub level: Field<String>,
    pub format: Field<String>,
    pub file: Field<String>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RawTui {
    pub enabled: Field<bool>,
    pub refresh_interval: Field<String>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RawAdmin {
    pub enabled: Field<bool>,
    pub address: Field<String>,
    pub token_file: Field<String>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RawDevelopment {
    pub allow_loopback_backends: Field<bool>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RawSecurity {
    pub allowed_backend_networks: Field<Vec<String>>,
    pub hsts: Field<RawHsts>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

/// `listeners[]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RawListener {
    pub address: Field<String>,
    pub tls: Field<RawListenerTls>,
    pub http2: Field<bool>,
    pub h2c: Field<bool>,
    pub redirect_to_https: Field<String>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

/// `listeners[].tls` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RawListenerTls {
    pub certificates: Field<Vec<Field<RawCertificate>>>,
    /// A string (`"1.2"`) or, unquoted in YAML, a number (`1.2`).
    pub min_version: Field<Value>,
    pub acme: Field<RawAcme>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

/// `listeners[].tls.acme` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RawAcme {
    pub directory: Field<String>,
    pub email: Field<String>,
    pub domains: Field<Vec<String>>,
    pub storage: Field<String>,
    pub challenge: Field<String>,
    pub directory_ca: Field<String>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

/// `listeners[].tls.certificates[]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RawCertificate {
    pub cert: Field<String>,
    pub key: Field<String>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

/// `security.hsts` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RawHsts {
    pub enabled: Field<bool>,
    pub max_age: Field<i64>,
    pub include_subdomains: Field<bool>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RawHttp2 {
    pub max_concurrent_streams: Field<i64>,
    pub initial_stream_window: Field<i64>,
    pub initial_connection_window: Field<i64>,
    pub max_send_buffer: Field<i64>,
    pub max_control_frames_per_second: Field<i64>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RawWebsocket {
    pub enabled: Field<bool>,
    pub idle_timeout: Field<String>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RawCluster {
    pub redis_url: Field<String>,
    pub sync_interval: Field<String>,
    pub key_prefix: Field<String>,
    pub instance_name: Field<String>,
    pub redis_password_file: Field<String>,
    pub redis_ca_file: Field<String>,
    #[serde(flatten)]
    pub unknown: Unknown,
}
