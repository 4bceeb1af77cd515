//! `pools` and `routes` put together with the top-level default pool (§17): which pools exist
//! and their ids, `pools.default` against the top-level `backends`, routes naming pools, and
//! the warnings for pools no route reaches.

use super::checker::Checker;
use super::pools::{PoolId, PoolSettings, DEFAULT_POOL, DEFAULT_POOL_NAME};
use super::raw::{Field, RawPool, RawRoute};
use super::{BackendSpec, BreakerSettings, ConfigError, HealthCheckSettings, Routes};
use std::collections::BTreeMap;

/// The default pool (0): the top-level sections, or `pools.default`.
pub(super) struct DefaultPool {
    pub backends: Vec<BackendSpec>,
    pub health_check: HealthCheckSettings,
    pub circuit_breaker: BreakerSettings,
    /// Where its backends were written, for later key paths.
    pub key: &'static str,
}

/// `pools` and `routes` as written.
pub(super) type RawSites = (
    Field<BTreeMap<String, Field<RawPool>>>,
    Field<Vec<Field<RawRoute>>>,
);

/// Every pool and the routes to them.
pub(super) struct Sites {
    pub default: DefaultPool,
    pub pools: Vec<PoolSettings>,
    pub routes: Option<Routes>,
}

impl Checker {
    pub(super) fn sites(
        &mut self,
        (raw_pools, raw_routes): RawSites,
        mut default: DefaultPool,
        warnings: &mut Vec<ConfigError>,
    ) -> Sites {
        let has_routes = !matches!(raw_routes, Field::Missing);
        let checked = self.pools(raw_pools, &default.health_check, &default.circuit_breaker);
        if let Some(pool) = checked.default {
            if default.backends.is_empty() {
                default = DefaultPool {
                    backends: pool.backends,
                    health_check: pool.health_check,
                    circuit_breaker: pool.circuit_breaker,
                    key: "pools.default.backends",
                };
            } else {
                self.error(
                    "pools.default",
                    "the top-level backends are the default pool; use one or the other",
                );
            }
        }
        let pools = checked.named;
        let has_default = !default.backends.is_empty();
        if !has_routes && !has_default && !pools.is_empty() {
            self.error(
                "routes",
                "is required when there are pools but no top-level backends (nothing would \
                 send requests to the pools)",
            );
        }
        let mut names: Vec<&str> = pools.iter().map(|p| p.name.as_str()).collect();
        if has_default {
            names.push(DEFAULT_POOL_NAME);
        }
        names.sort_unstable();
        let pool_id = |name: &str| -> Option<PoolId> {
            if name == DEFAULT_POOL_NAME {
                return has_default.then_some(DEFAULT_POOL);
            }
            let index = pools.iter().position(|p| p.name == name)?;
            PoolId::try_from(index + 1).ok()
        };
        let routes = self.routes(raw_routes, &pool_id, &names, warnings);
        for (i, pool) in pools.iter().enumerate() {
            let used = routes
                .as_ref()
                .is_some_and(|r| r.list.iter().any(|route| usize::from(route.pool) == i + 1));
            if !used {
                warnings.push(ConfigError {
                    path: format!("pools.{}", pool.name),
                    message: "no route sends requests to this pool".into(),
                });
            }
        }
        Sites {
            default,
            pools,
            routes,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{parse, problems as errors};

    const POOLS: &str = "pools:\n  api:\n    backends: [{url: http://api.example}]\n    circuit_breaker: {failure_threshold: 2}\n  web:\n    backends: [{url: http://web.example}]\n    health_check: {path: /up}\n";

    /// Every line of `expect` begins one of `errs`.
    fn assert_reported(errs: &[String], expect: &[&str]) {
        for e in expect {
            assert!(
                errs.iter().any(|got| got.starts_with(e)),
                "missing {e:?} in {errs:#?}"
            );
        }
    }

    fn with(routes: &str) -> String {
        format!("{POOLS}routes:\n{routes}")
    }

    #[test]
    fn two_sites_load_with_pool_ids_and_inherited_sections() {
        let text = format!(
            "health_check: {{interval: 4s}}\n{}",
            with("  - {host: api.example.com, path_prefix: /v1/, pool: api, strip_prefix: true}\n  - {host: \"*.example.com\", pool: web, name: site}\n")
        );
        let config = parse(&text).expect("valid");
        assert!(config.backends.is_empty(), "no default pool");
        let api = config.pool(1).expect("pool 1");
        assert_eq!(
            (api.name, api.circuit_breaker.failure_threshold),
            ("api", 2)
        );
        let web = config.pool(2).expect("pool 2");
        assert_eq!(web.health_check.path, "/up");
        // Absent fields come from the top-level section, field by field.
        assert_eq!(web.health_check.interval, std::time::Duration::from_secs(4));
        let routes = config.routes.as_ref().expect("routes");
        assert_eq!(routes.fallback, None);
        let (id, route) = routes.find(Some("API.example.com:443"), "/v1/x").unwrap();
        assert_eq!((id, route.pool, route.strip_prefix), (0, 1, true));
        assert_eq!(routes.list[0].name, "routes[0]");
        let (_, route) = routes.find(Some("api.example.com"), "/v1x").unwrap();
        assert_eq!((route.name.as_str(), route.pool), ("site", 2));
        assert!(routes.find(Some("example.com"), "/").is_none());
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    }

    #[test]
    fn every_routing_problem_names_its_key() {
        let text = with(concat!(
            "  - {host: api.example.com, pool: apii}\n",
            "  - {host: \"api.*.com\", pool: api}\n",
            "  - {host: \"api.example.com:443\", pool: api}\n",
            "  - {path_prefix: v1, pool: api}\n",
            "  - {path_prefix: \"/a/../b\", pool: api}\n",
            "  - {path_prefix: \"/a%2f\", pool: api}\n",
            "  - {pool: web, strip_prefix: true}\n",
            "  - {host: web.example.com}\n",
            "  - {host: a.example.com, pool: web, bogus: 1}\n",
            "  - {host: a.example.com, pool: api}\n",
            "  - {host: b.example.com, pool: web, name: \"no spaces\"}\n",
        ));
        let errs = errors(&text);
        let expect = [
            "routes[0].pool: no pool named \"apii\" (pools: api, web)",
            "routes[1].host: expected a name or *.name (no port, no path), got \"api.*.com\"",
            "routes[2].host: expected a name or *.name",
            "routes[3].path_prefix: must start with /",
            "routes[4].path_prefix: must not hold . or .. segments",
            "routes[5].path_prefix: must not hold ?, #, %",
            "routes[6].strip_prefix: needs path_prefix",
            "routes[7].pool: is required",
            "routes[8].bogus: unknown key",
            "routes[9]: same host and path_prefix as routes[8]",
            "routes[10].name: expected 1-64 letters",
        ];
        assert_reported(&errs, &expect);
    }

    #[test]
    fn route_limits_are_bounded_and_not_in_cluster_mode() {
        let routes: String = (1..=9)
            .map(|i| format!("  - {{path_prefix: /r{i}, pool: api, rate_limit: {{requests_per_second: 1, burst: {i}}}}}\n"))
            .collect();
        let errs = errors(&with(&routes));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with("routes[8].rate_limit: a 8th distinct window"),
            "{errs:?}"
        );
        let text = format!(
            "cluster: {{redis_url: \"redis://127.0.0.1:6379\"}}\n{}",
            with("  - {pool: api, rate_limit: {requests_per_second: 1, burst: 2}, max_body_bytes: 5}\n  - {pool: web, path_prefix: /w, max_body_bytes: -1}\n")
        );
        assert_reported(
            &errors(&text),
            &[
                "routes[0].rate_limit: not supported in cluster mode yet",
                "routes[1].max_body_bytes: must be at least 0, got -1",
            ],
        );
    }

    #[test]
    fn pools_are_checked_like_the_top_level_backends() {
        let errs = errors(concat!(
            "backends: [{url: http://a.example}]\n",
            "pools:\n  default:\n    backends: [{url: http://b.example}]\n",
            "  web:\n    backends: []\n",
            "  api:\n    backends: [{url: http://c.example}, {url: \"http://c.example/\"}]\n",
            "    health_check: {interval: soon}\n",
            "  \"bad name\":\n    backends: [{url: http://d.example}]\n",
            "routes:\n  - {pool: api}\n  - {pool: web, path_prefix: /w}\n",
        ));
        let expect = [
            "pools.default: the top-level backends are the default pool; use one or the other",
            "pools.web.backends: at least one backend is required",
            "pools.api.backends[1].url: duplicate of pools.api.backends[0]",
            "pools.api.health_check.interval: expected a duration",
            "pools.bad name: a pool name is",
        ];
        assert_reported(&errs, &expect);
        let errs = errors("pools:\n  api:\n    backends: [{url: http://c.example}]\n");
        assert!(errs[0].starts_with("routes: is required"), "{errs:?}");
    }

    #[test]
    fn the_default_pool_catches_what_no_route_matches() {
        let text = format!(
            "backends: [{{url: http://d.example}}]\n{}",
            with("  - {host: api.example.com, pool: api}\n  - {host: x.api.example.com, pool: default}\n  - {path_prefix: /v1/x, pool: web}\n  - {path_prefix: /v1, pool: web}\n")
        );
        let config = parse(&text).expect("valid");
        let routes = config.routes.as_ref().unwrap();
        assert_eq!(routes.fallback, Some(0));
        assert_eq!(routes.list[1].pool, 0);
        let warned: Vec<String> = config.warnings.iter().map(|w| w.to_string()).collect();
        assert!(warned.is_empty(), "{warned:?}");
        let text = with("  - {path_prefix: /v1, pool: api}\n  - {path_prefix: /v1/x, pool: web}\n  - {host: a.example.com, pool: api}\n");
        let warned: Vec<String> = parse(&text)
            .expect("a shadowed route is only a warning")
            .warnings
            .iter()
            .map(|w| w.to_string())
            .collect();
        assert_eq!(
            warned,
            ["routes[1]: is never reached: routes[0] matches all its requests"]
        );
        // `pools.default` is the default pool when the top level has no backends.
        let text = "pools:\n  default:\n    backends: [{url: http://d.example}]\n  api:\n    backends: [{url: http://a.example}]\nroutes:\n  - {host: api.example.com, pool: api}\n";
        let config = parse(text).expect("valid");
        assert_eq!(config.backends[0].url, "http://d.example");
        assert_eq!(config.backends_key, "pools.default.backends");
        assert_eq!(config.routes.as_ref().unwrap().fallback, Some(0));
        // Pools no route reaches are a warning.
        let text = format!("backends: [{{url: http://d.example}}]\n{POOLS}");
        let warned: Vec<String> = parse(&text)
            .unwrap()
            .warnings
            .iter()
            .map(|w| w.to_string())
            .collect();
        assert_eq!(
            warned,
            [
                "pools.api: no route sends requests to this pool",
                "pools.web: no route sends requests to this pool"
            ]
        );
    }
}
