//! Validation: turns the raw YAML into a [`Config`], collecting every problem with its key path.

use super::backend_url::parse_backend_url;
use super::checker::{show, Checker};
use super::raw::*;
use super::*;
use serde_yaml::Value;
use std::net::Ipv4Addr;

/// Methods that pass by default (§2).
const DEFAULT_METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
/// Largest backend weight: keeps the smooth round-robin schedule small (see `balance::schedule`).
pub const MAX_WEIGHT: i64 = 1000;
/// Most backends one Aegis fronts.
pub const MAX_BACKENDS: usize = 256;

/// Parses and validates a configuration text, without resolving backend hosts.
pub fn parse(text: &str) -> Result<Config, ConfigErrors> {
    let raw: RawConfig = match serde_yaml::from_str::<Value>(text) {
        Err(e) => return Err(file_error(format!("not valid YAML: {e}"))),
        Ok(Value::Null) => RawConfig::default(),
        Ok(value @ Value::Mapping(_)) => serde_yaml::from_value(value)
            .map_err(|e| file_error(format!("cannot read the config: {e}")))?,
        Ok(_) => {
            return Err(file_error(
                "the config must be a mapping of sections".into(),
            ))
        }
    };
    let mut check = Checker::default();
    let config = check.config(raw);
    if check.errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(check.errors))
    }
}

fn file_error(message: String) -> ConfigErrors {
    ConfigErrors(vec![ConfigError {
        path: "(file)".into(),
        message,
    }])
}

impl Checker {
    fn config(&mut self, raw: RawConfig) -> Config {
        self.unknown("", &raw.unknown);
        let server = self.section(raw.server, "server");
        let upstream = self.section(raw.upstream, "upstream");
        let health = self.section(raw.health_check, "health_check");
        let rate = self.section(raw.rate_limit, "rate_limit");
        let adaptive = self.section(raw.adaptive, "adaptive");
        let breaker = self.section(raw.circuit_breaker, "circuit_breaker");
        let logging = self.section(raw.logging, "logging");
        let tui = self.section(raw.tui, "tui");
        let admin = self.section(raw.admin, "admin");
        let development = self.section(raw.development, "development");
        let security = self.section(raw.security, "security");
        let http2 = self.section(raw.http2, "http2");
        let cluster = self.section(raw.cluster, "cluster");
        let backends = self.backends(raw.backends);
        let server = self.server(server);
        let listeners = self.listeners(raw.listeners, server.listen_addr());

        let rate_limit = self.rate_limit(rate);
        let adaptive = self.adaptive(adaptive);
        let cluster = self.cluster(cluster, server.port);
        let config = Config {
            server,
            upstream: self.upstream(upstream),
            backends,
            health_check: self.health_check(health),
            rate_limit,
            adaptive,
            circuit_breaker: self.breaker(breaker),
            logging: self.logging(logging),
            tui: self.tui(tui),
            admin: self.admin(admin),
            development: self.development(development),
            security: self.security(security),
            listeners,
            warnings: Vec::new(),
            http2: self.http2(http2),
            cluster,
        };
        self.across_sections(&config);
        config
    }

    /// Rules that involve more than one section.
    fn across_sections(&mut self, config: &Config) {
        let admin = config.admin.address;
        for listener in &config.listeners {
            let public = listener.address;
            let same_ip = public.ip() == admin.ip()
                || public.ip().is_unspecified()
                || admin.ip().is_unspecified();
            // SECURITY: the admin endpoints must never be reachable through a public port (§7.3).
            if config.admin.enabled && public.port() == admin.port() && same_ip {
                self.error(
                    "admin.address",
                    format!("must differ from the public listener ({public})"),
                );
            }
        }
    }

    fn server(&mut self, raw: RawServer) -> ServerSettings {
        self.unknown("server", &raw.unknown);
        let address = match self.typed(raw.address, "server.address", "an IP address") {
            None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Some(text) => {
                let text = text.trim().trim_start_matches('[').trim_end_matches(']');
                text.parse().unwrap_or_else(|_| {
                    self.error(
                        "server.address",
                        format!("expected an IP address such as 0.0.0.0 or ::, got {text:?}"),
                    );
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                })
            }
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
        let allowed_hosts = self
            .typed(
                raw.allowed_hosts,
                "server.allowed_hosts",
                "a list of host names",
            )
            .unwrap_or_default();
        let allowed_hosts = allowed_hosts
            .iter()
            .enumerate()
            .filter_map(|(i, host)| self.allowed_host(host, &format!("server.allowed_hosts[{i}]")))
            .collect();
        let allowed_methods = match self.typed(
            raw.allowed_methods,
            "server.allowed_methods",
            "a list of HTTP methods",
        ) {
            None => DEFAULT_METHODS.iter().map(|m| m.to_string()).collect(),
            Some(methods) => self.methods(methods),
        };
        ServerSettings {
            address,
            port: self.int(raw.port, "server.port", 8080, 1, 65535) as u16,
            threads: self.int(raw.threads, "server.threads", cores, 1, 1024) as usize,
            allowed_hosts,
            allowed_methods,
            read_timeout: self.duration(raw.read_timeout, "server.read_timeout", secs(5)),
            write_timeout: self.duration(raw.write_timeout, "server.write_timeout", secs(10)),
            idle_timeout: self.duration(raw.idle_timeout, "server.idle_timeout", secs(120)),
            max_header_bytes: self.int(
                raw.max_header_bytes,
                "server.max_header_bytes",
                8192,
                256,
                1 << 20,
            ) as usize,
            max_body_bytes: self.int(
                raw.max_body_bytes,
                "server.max_body_bytes",
                10 << 20,
                1,
                i64::MAX,
            ) as u64,
            shutdown_timeout: self.duration(
                raw.shutdown_timeout,
                "server.shutdown_timeout",
                secs(30),
            ),
            max_connections: match raw.max_connections {
                Field::Missing => None,
                field => Some(self.int(field, "server.max_connections", 1, 1, 1 << 24) as usize),
            },
            pid_file: self
                .path(raw.pid_file, "server.pid_file")
                .unwrap_or_else(|| "/tmp/aegis.pid".into()),
            upgrade_sock: self
                .path(raw.upgrade_sock, "server.upgrade_sock")
                .unwrap_or_else(|| "/tmp/aegis_upgrade.sock".into()),
        }
    }

    fn allowed_host(&mut self, host: &str, path: &str) -> Option<String> {
        let host = host.trim().to_ascii_lowercase();
        let bare = host.strip_prefix("*.").unwrap_or(&host);
        let valid = !bare.is_empty()
            && bare
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':' | '[' | ']'))
            && !bare.contains('*');
        if valid {
            Some(host)
        } else {
            self.error(
                path,
                format!("expected a host name or *.domain pattern, got {host:?}"),
            );
            None
        }
    }

    fn methods(&mut self, methods: Vec<String>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (i, method) in methods.iter().enumerate() {
            let path = format!("server.allowed_methods[{i}]");
            let upper = method.trim().to_ascii_uppercase();
            if upper.is_empty() || !upper.bytes().all(|b| b.is_ascii_alphabetic()) {
                self.error(
                    &path,
                    format!("expected an HTTP method name, got {method:?}"),
                );
            } else if upper == "CONNECT" || upper == "TRACE" {
                // SECURITY: CONNECT opens tunnels and TRACE reflects headers (cross-site tracing);
                // both stay refused even when listed.
                self.error(&path, format!("{upper} is never allowed through Aegis"));
            } else if !out.contains(&upper) {
                out.push(upper);
            }
        }
        if methods.is_empty() {
            self.error("server.allowed_methods", "must list at least one method");
        }
        out
    }

    fn upstream(&mut self, raw: RawUpstream) -> UpstreamSettings {
        self.unknown("upstream", &raw.unknown);
        UpstreamSettings {
            connect_timeout: self.duration(
                raw.connect_timeout,
                "upstream.connect_timeout",
                secs(2),
            ),
            response_header_timeout: self.duration(
                raw.response_header_timeout,
                "upstream.response_header_timeout",
                secs(10),
            ),
            max_retries: self.int(raw.max_retries, "upstream.max_retries", 1, 0, 16) as u32,
        }
    }

    fn backends(&mut self, field: Field<Vec<Field<RawBackend>>>) -> Vec<BackendSpec> {
        let list = match field {
            Field::Missing => Vec::new(),
            Field::Value(list) => list,
            Field::Invalid(v) => {
                self.error(
                    "backends",
                    format!("expected a list of backends, got {}", show(&v)),
                );
                return Vec::new();
            }
        };
        if list.is_empty() {
            self.error("backends", "at least one backend is required");
        }
        if list.len() > MAX_BACKENDS {
            self.error(
                "backends",
                format!("at most {MAX_BACKENDS} backends are supported"),
            );
        }
        let mut specs: Vec<BackendSpec> = Vec::new();
        for (i, entry) in list.into_iter().enumerate() {
            let path = format!("backends[{i}]");
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
                    if let Some(j) = specs.iter().position(|s| s.url == spec.url) {
                        self.error(
                            &url_path,
                            format!("duplicate of backends[{j}] ({})", spec.url),
                        );
                    } else {
                        specs.push(spec);
                    }
                }
            }
        }
        specs
    }

    fn health_check(&mut self, raw: RawHealthCheck) -> HealthCheckSettings {
        self.unknown("health_check", &raw.unknown);
        let path = match self.typed(raw.path, "health_check.path", "a path such as /health") {
            None => "/health".to_string(),
            Some(p) if !p.starts_with('/') || p.chars().any(|c| c.is_control() || c == ' ') => {
                self.error(
                    "health_check.path",
                    format!("expected a path starting with /, got {p:?}"),
                );
                "/health".to_string()
            }
            Some(p) => p,
        };
        HealthCheckSettings {
            interval: self.duration(raw.interval, "health_check.interval", secs(10)),
            timeout: self.duration(raw.timeout, "health_check.timeout", secs(3)),
            path,
            unhealthy_threshold: self.int(
                raw.unhealthy_threshold,
                "health_check.unhealthy_threshold",
                3,
                1,
                1000,
            ) as u32,
            healthy_threshold: self.int(
                raw.healthy_threshold,
                "health_check.healthy_threshold",
                2,
                1,
                1000,
            ) as u32,
        }
    }

    fn rate_limit(&mut self, raw: RawRateLimit) -> RateLimitSettings {
        self.unknown("rate_limit", &raw.unknown);
        RateLimitSettings {
            requests_per_second: self.number(
                raw.requests_per_second,
                "rate_limit.requests_per_second",
                100.0,
                "greater than 0 and at most 1000000",
                |v| v > 0.0 && v <= 1e6,
            ),
            burst: self.int(raw.burst, "rate_limit.burst", 150, 1, 1_000_000) as u32,
            cleanup_interval: self.duration(
                raw.cleanup_interval,
                "rate_limit.cleanup_interval",
                secs(60),
            ),
        }
    }

    fn adaptive(&mut self, raw: RawAdaptive) -> AdaptiveSettings {
        self.unknown("adaptive", &raw.unknown);
        let min_rate = self.number(
            raw.min_rate,
            "adaptive.min_rate",
            10.0,
            "greater than 0",
            |v| v > 0.0,
        );
        let max_rate = self.number(
            raw.max_rate,
            "adaptive.max_rate",
            500.0,
            "greater than 0",
            |v| v > 0.0,
        );
        if min_rate >= max_rate {
            self.error(
                "adaptive.min_rate",
                format!("must be less than adaptive.max_rate ({min_rate} >= {max_rate})"),
            );
        }
        let threshold_ms = self.number(
            raw.latency_threshold_ms,
            "adaptive.latency_threshold_ms",
            500.0,
            "greater than 0",
            |v| v > 0.0 && v < 3.6e6,
        );
        AdaptiveSettings {
            enabled: self.boolean(raw.enabled, "adaptive.enabled", true),
            evaluation_interval: self.duration(
                raw.evaluation_interval,
                "adaptive.evaluation_interval",
                secs(10),
            ),
            latency_threshold: Duration::from_secs_f64(threshold_ms / 1000.0),
            reduction_factor: self.number(
                raw.reduction_factor,
                "adaptive.reduction_factor",
                0.8,
                "between 0 and 1 (exclusive)",
                |v| v > 0.0 && v < 1.0,
            ),
            recovery_factor: self.number(
                raw.recovery_factor,
                "adaptive.recovery_factor",
                1.1,
                "greater than 1",
                |v| v > 1.0,
            ),
            min_rate,
            max_rate,
        }
    }

    fn breaker(&mut self, raw: RawCircuitBreaker) -> BreakerSettings {
        self.unknown("circuit_breaker", &raw.unknown);
        BreakerSettings {
            failure_threshold: self.int(
                raw.failure_threshold,
                "circuit_breaker.failure_threshold",
                5,
                1,
                1_000_000,
            ) as u32,
            success_threshold: self.int(
                raw.success_threshold,
                "circuit_breaker.success_threshold",
                3,
                1,
                1_000_000,
            ) as u32,
            open_timeout: self.duration(raw.open_timeout, "circuit_breaker.open_timeout", secs(30)),
            half_open_max_requests: self.int(
                raw.half_open_max_requests,
                "circuit_breaker.half_open_max_requests",
                3,
                1,
                1_000_000,
            ) as u32,
        }
    }

    fn logging(&mut self, raw: RawLogging) -> LoggingSettings {
        self.unknown("logging", &raw.unknown);
        let level = match self.typed(raw.level, "logging.level", "debug, info, warn or error") {
            None => log::LevelFilter::Info,
            Some(text) => parse_level(&text).unwrap_or_else(|| {
                self.error(
                    "logging.level",
                    format!("expected debug, info, warn or error, got {text:?}"),
                );
                log::LevelFilter::Info
            }),
        };
        let format = match self
            .typed(raw.format, "logging.format", "json or text")
            .as_deref()
        {
            None => LogFormat::Json,
            Some(text) => match text.trim().to_ascii_lowercase().as_str() {
                "json" => LogFormat::Json,
                "text" => LogFormat::Text,
                _ => {
                    self.error(
                        "logging.format",
                        format!("expected json or text, got {text:?}"),
                    );
                    LogFormat::Json
                }
            },
        };
        LoggingSettings {
            level,
            format,
            file: self.path(raw.file, "logging.file"),
        }
    }

    fn tui(&mut self, raw: RawTui) -> TuiSettings {
        self.unknown("tui", &raw.unknown);
        TuiSettings {
            enabled: self.boolean(raw.enabled, "tui.enabled", true),
            refresh_interval: self.duration(raw.refresh_interval, "tui.refresh_interval", secs(1)),
        }
    }

    fn admin(&mut self, raw: RawAdmin) -> AdminSettings {
        self.unknown("admin", &raw.unknown);
        let default: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 9100));
        let address = match self.typed(raw.address, "admin.address", "host:port") {
            None => default,
            Some(text) => text.trim().parse().unwrap_or_else(|_| {
                self.error(
                    "admin.address",
                    format!("expected IP:port such as 127.0.0.1:9100, got {text:?}"),
                );
                default
            }),
        };
        let token = self
            .path(raw.token_file, "admin.token_file")
            .and_then(|path| self.secret_file(&path, "admin.token_file"));
        AdminSettings {
            enabled: self.boolean(raw.enabled, "admin.enabled", true),
            address,
            token,
        }
    }

    fn development(&mut self, raw: RawDevelopment) -> DevelopmentSettings {
        self.unknown("development", &raw.unknown);
        DevelopmentSettings {
            allow_loopback_backends: self.boolean(
                raw.allow_loopback_backends,
                "development.allow_loopback_backends",
                false,
            ),
        }
    }

    fn security(&mut self, raw: RawSecurity) -> SecuritySettings {
        self.unknown("security", &raw.unknown);
        let path = "security.allowed_backend_networks";
        let list = self
            .typed(raw.allowed_backend_networks, path, "a list of CIDRs")
            .unwrap_or_default();
        let mut networks = Vec::new();
        for (i, text) in list.iter().enumerate() {
            match text.trim().parse::<IpNet>() {
                Ok(net) => networks.push(net.trunc()),
                Err(_) => self.error(
                    &format!("{path}[{i}]"),
                    format!("expected a CIDR such as 10.0.0.0/8, got {text:?}"),
                ),
            }
        }
        SecuritySettings {
            allowed_backend_networks: networks,
            hsts: self.hsts(raw.hsts),
        }
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Parses a log level name as `logging.level` and `--log-level` accept it.
pub fn parse_level(text: &str) -> Option<log::LevelFilter> {
    match text.trim().to_ascii_lowercase().as_str() {
        "debug" => Some(log::LevelFilter::Debug),
        "info" => Some(log::LevelFilter::Info),
        "warn" | "warning" => Some(log::LevelFilter::Warn),
        "error" => Some(log::LevelFilter::Error),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        match parse(text) {
            Ok(_) => vec![],
            Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn go_fixture_loads_with_its_meaning() {
        let text = include_str!("../../tests/data/aegis-go.yml");
        let config = parse(text).expect("the Go Aegis example config must load");
        assert_eq!(config.server.port, 8080);
        assert_eq!(config.server.max_body_bytes, 10485760);
        assert_eq!(config.backends.len(), 3);
        assert_eq!(config.backends[2].weight, 2);
        assert_eq!(config.backends[0].url, "http://localhost:8081");
        assert_eq!(config.health_check.interval, Duration::from_secs(10));
        assert_eq!(config.rate_limit.burst, 150);
        assert_eq!(
            config.adaptive.latency_threshold,
            Duration::from_millis(500)
        );
        assert_eq!(config.circuit_breaker.half_open_max_requests, 3);
        assert_eq!(config.logging.format, LogFormat::Json);
        assert!(config.development.allow_loopback_backends);
    }

    #[test]
    fn only_backends_is_enough_and_defaults_apply() {
        let config = parse("backends:\n  - url: http://example.com\n").expect("valid");
        assert_eq!(config.server.port, 8080);
        assert_eq!(config.server.read_timeout, Duration::from_secs(5));
        assert_eq!(config.upstream.max_retries, 1);
        assert_eq!(config.backends[0].port, 80);
        assert_eq!(config.backends[0].host_header, "example.com");
        assert_eq!(config.admin.address.to_string(), "127.0.0.1:9100");
        assert_eq!(config.server.allowed_methods.len(), 7);
        assert_eq!(config.server.max_connections, None, "derived at startup");
        let set = parse("server:\n  max_connections: 500\nbackends:\n  - url: http://a.example\n");
        assert_eq!(set.expect("valid").server.max_connections, Some(500));
        let errs = errors("server:\n  max_connections: 0\nbackends:\n  - url: http://a.example\n");
        assert!(
            errs.iter()
                .any(|e| e.starts_with("server.max_connections: must be between 1 and")),
            "{errs:?}"
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let text = "server:\n  port: 70000\n  prot: 1\n  read_timeout: 5\nbackends:\n  - url: http://a.example\n  - url: ftp://b.example\n  - url: http://user:pw@c.example\nadaptive:\n  min_rate: 600\n  reduction_factor: 1.5\nbogus: 1\n";
        let errs = errors(text);
        let expect = [
            "server.port: must be between 1 and 65535, got 70000",
            "server.prot: unknown key",
            "server.read_timeout: expected a duration",
            "backends[1].url: scheme \"ftp\" is not allowed (use http or https)",
            "backends[2].url: must not contain user info",
            "adaptive.min_rate: must be less than adaptive.max_rate",
            "adaptive.reduction_factor: must be between 0 and 1",
            "bogus: unknown key",
        ];
        for e in expect {
            assert!(
                errs.iter().any(|got| got.starts_with(e)),
                "missing {e:?} in {errs:#?}"
            );
        }
    }

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
        assert!(errors("[1, 2]")[0].starts_with("(file): the config must be a mapping"));
        assert!(errors("server: [")[0].starts_with("(file): not valid YAML"));
    }

    #[test]
    fn admin_must_not_share_the_public_listener() {
        let errs = errors("server:\n  port: 9100\nbackends:\n  - url: http://a.example\n");
        assert_eq!(
            errs,
            vec!["admin.address: must differ from the public listener (0.0.0.0:9100)"]
        );
        let ok = "server:\n  port: 9100\nadmin:\n  enabled: false\nbackends:\n  - url: http://a.example\n";
        assert!(errors(ok).is_empty());
    }

    #[test]
    fn methods_and_hosts() {
        let errs = errors(
            "server:\n  allowed_methods: [get, TRACE]\n  allowed_hosts: ['*.example.com', 'bad host']\nbackends:\n  - url: http://a.example\n",
        );
        assert_eq!(
            errs,
            vec![
                "server.allowed_hosts[1]: expected a host name or *.domain pattern, got \"bad host\"",
                "server.allowed_methods[1]: TRACE is never allowed through Aegis",
            ]
        );
    }
}
