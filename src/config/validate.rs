//! Validation: turns the raw YAML into a [`Config`], collecting every problem with its key path.

//! Each section's settings, their defaults and their checks live in the section's own file
//! (`server`, `backends`, `health`, `limits`, `breaker`, `logging`, `admin`, `security`, `hsts`,
//! `listeners`, `http2`, `cluster`, `websocket`); this file reads the YAML and puts the sections together.

use super::checker::Checker;
use super::raw::*;
use super::sites::DefaultPool;
use super::*;
use serde_yaml::Value;

/// Parses and validates a configuration text, without resolving backend hosts.
pub fn parse(text: &str) -> Result<Config, ConfigErrors> {
    let (config, errors) = check(text)?;
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Validates a configuration text: the config (wrong values replaced by their defaults) and every
/// problem found, or the one problem when the text is not a YAML mapping at all.
pub(super) fn check(text: &str) -> Result<(Config, Vec<ConfigError>), ConfigErrors> {
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
    Ok((config, check.errors))
}

fn file_error(message: String) -> ConfigErrors {
    ConfigErrors(vec![ConfigError {
        path: "(file)".into(),
        message,
    }])
}

/// `server.address` and `server.port` mean the one plain listener only while `listeners` is absent;
/// set beside `listeners` they do nothing, which an operator should hear about (a warning, so that
/// a config written for both forms still loads).
fn ignored_by_listeners<T>(listeners: &Field<T>, server: &RawServer) -> Vec<ConfigError> {
    if matches!(listeners, Field::Missing) {
        return Vec::new();
    }
    [
        ("server.address", !matches!(server.address, Field::Missing)),
        ("server.port", !matches!(server.port, Field::Missing)),
    ]
    .into_iter()
    .filter(|(_, set)| *set)
    .map(|(path, _)| ConfigError {
        path: path.into(),
        message: "ignored: `listeners` is set and names every address Aegis listens on".into(),
    })
    .collect()
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
        let websocket = self.section(raw.websocket, "websocket");
        // With `pools`, the top-level `backends` may be left out (no default pool).
        let backends =
            if matches!(raw.backends, Field::Missing) && !matches!(raw.pools, Field::Missing) {
                Vec::new()
            } else {
                self.backends(raw.backends, "backends")
            };
        let mut warnings = ignored_by_listeners(&raw.listeners, &server);
        let server = self.server(server);
        let listeners = self.listeners(raw.listeners, server.listen_addr());

        let rate_limit = self.rate_limit(rate);
        let adaptive = self.adaptive(adaptive);
        let cluster = self.cluster(cluster, server.port);
        let health_check = self.health_check(health);
        let circuit_breaker = self.breaker(breaker);
        let sites = self.sites(
            (raw.pools, raw.routes),
            DefaultPool {
                backends,
                health_check,
                circuit_breaker,
                key: "backends",
            },
            &mut warnings,
        );
        let config = Config {
            server,
            upstream: self.upstream(upstream),
            backends: sites.default.backends,
            health_check: sites.default.health_check,
            rate_limit,
            adaptive,
            circuit_breaker: sites.default.circuit_breaker,
            logging: self.logging(logging),
            tui: self.tui(tui),
            admin: self.admin(admin),
            development: self.development(development),
            security: self.security(security),
            listeners,
            warnings,
            http2: self.http2(http2),
            cluster,
            websocket: self.websocket(websocket),
            pools: sites.pools,
            backends_key: sites.default.key,
            routes: sites.routes.map(std::sync::Arc::new),
        };
        self.across_sections(&config);
        config
    }

    /// Rules that involve more than one section.
    fn across_sections(&mut self, config: &Config) {
        // Cluster counts are per client (§13); a route's own limit would silently be local to
        // each instance, so it is refused until the shared key is (route, client).
        let routes = config.routes.as_ref().map_or(&[][..], |r| &r.list[..]);
        for (i, route) in routes.iter().enumerate() {
            if config.cluster.enabled() && route.rate_limit.is_some() {
                self.error(
                    &format!("routes[{i}].rate_limit"),
                    "not supported in cluster mode yet (cluster counts are per client, so a \
                     route's own limit would be local to each instance)",
                );
            }
        }
        let admin = config.admin.address;
        for listener in &config.listeners {
            let public = listener.address;
            let same_ip = public.ip() == admin.ip()
                || public.ip().is_unspecified()
                || admin.ip().is_unspecified();
            // SECURITY: the admin endpoints must never be reachable through a public port (§7.3).
            // Port 0 is a fresh port for each socket (the kernel picks it), never a shared one.
            let same_port = public.port() == admin.port() && public.port() != 0;
            if config.admin.enabled && same_port && same_ip {
                self.error(
                    "admin.address",
                    format!("must differ from the public listener ({public})"),
                );
            }
        }
        self.acme_across_sections(config);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn server_address_and_port_beside_listeners_are_ignored_with_a_warning() {
        let text = "server:\n  port: 9000\nlisteners:\n  - address: 127.0.0.1:8443\nbackends:\n  - url: http://a.example\n";
        let config = super::parse(text).expect("valid");
        let warned: Vec<String> = config.warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(
            warned,
            ["server.port: ignored: `listeners` is set and names every address Aegis listens on"]
        );
        assert_eq!(config.listeners[0].address.port(), 8443);
        let plain = super::parse("server:\n  port: 9000\nbackends:\n  - url: http://a.example\n")
            .expect("valid");
        assert!(plain.warnings.is_empty(), "{:?}", plain.warnings);
    }

    use super::*;
    use std::time::Duration;

    use crate::config::problems as errors;

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
        // §17: no routes, one pool.
        assert!(config.routes.is_none() && config.pools.is_empty());
        assert_eq!(config.all_pools().count(), 1);
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
        // Every section without its key is its `Default`: the one place defaults live.
        assert_eq!(config.upstream, UpstreamSettings::default());
        assert_eq!(config.health_check, HealthCheckSettings::default());
        assert_eq!(config.rate_limit, RateLimitSettings::default());
        assert_eq!(config.adaptive, AdaptiveSettings::default());
        assert_eq!(config.circuit_breaker, BreakerSettings::default());
        assert_eq!(config.logging, LoggingSettings::default());
        assert_eq!(config.tui, TuiSettings::default());
        assert_eq!(config.admin, AdminSettings::default());
        assert_eq!(config.development, DevelopmentSettings::default());
        assert_eq!(config.security, SecuritySettings::default());
        assert_eq!(config.http2, Http2Settings::default());
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let text = "server:\n  port: 70000\n  prot: 1\n  read_timeout: 5\nbackends:\n  - url: http://a.example\n  - url: ftp://b.example\n  - url: http://user:pw@c.example\nadaptive:\n  min_rate: 600\n  reduction_factor: 1.5\nbogus: 1\n";
        let errs = errors(text);
        let expect = [
            "server.port: must be between 0 and 65535, got 70000",
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
    fn the_file_must_be_a_yaml_mapping() {
        assert!(errors("[1, 2]")[0].starts_with("(file): the config must be a mapping"));
        assert!(errors("server: [")[0].starts_with("(file): not valid YAML"));
    }
}
