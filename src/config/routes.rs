//! The `routes` section (§17): which pool a request goes to, by host and path, first match
//! wins. Checked here (every problem with its key path, a shadowed route as a warning) and
//! compiled once into the `route::RouteTable` the proxy looks requests up in.

use super::checker::{show, Checker};
use super::pools::{valid_name, PoolId, DEFAULT_POOL, DEFAULT_POOL_NAME};
use super::raw::{Field, RawRoute};
use super::{ConfigError, RateLimitSettings};
use crate::route::{path, HostPattern, RouteId, RouteMatch, RouteTable};

/// Most routes one configuration may list.
pub const MAX_ROUTES: usize = 1000;

/// `routes[]`: one route.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteSettings {
    /// `routes[].name`, default `routes[i]`: names the route in the access log and metrics
    /// labels (letters, digits, `-`, `_`; unique).
    pub name: String,
    /// `routes[].host` (exact or `*.name`, any host when absent) and `routes[].path_prefix`
    /// (segment-aware, every path when absent).
    pub matches: RouteMatch,
    /// `routes[].pool`, required: where the route's requests go.
    pub pool: PoolId,
    /// `routes[].strip_prefix`, default false, needs `path_prefix`: the backend receives the
    /// path without the prefix (`/v1/x?q` → `/x?q`, `/v1` → `/`).
    pub strip_prefix: bool,
    /// `routes[].rate_limit` (`requests_per_second`, `burst`), default none: the route's own
    /// per-client limit, counted per route and client. Without it the top-level `rate_limit`
    /// applies, also per route and client (in cluster mode: per client, across routes).
    pub rate_limit: Option<RateLimitSettings>,
    /// `routes[].max_body_bytes`, default `server.max_body_bytes`: larger request bodies on
    /// this route get 413.
    pub max_body_bytes: Option<u64>,
    /// A number for the route's name, the route's part of its clients' limiter keys (so a
    /// reload that moves a route in the list keeps its clients' counts).
    pub key: u64,
}

/// Most distinct window lengths (`burst / requests_per_second`) among the routes' own rate
/// limits: each is one pair of count-min sketches (3 MiB).
pub const MAX_ROUTE_WINDOWS: usize = 8;

/// The routes of a configuration, compiled.
#[derive(Debug)]
pub struct Routes {
    /// In configuration order; a [`RouteId`] indexes it.
    pub list: Vec<RouteSettings>,
    pub table: RouteTable,
    /// Where a request that no route matches goes: the default pool when the configuration has
    /// one, else nowhere (404 `{"error":"no route"}`).
    pub fallback: Option<PoolId>,
}

impl Routes {
    /// The route of a request with this Host value and path (§17: first match wins).
    pub fn find(&self, host: Option<&str>, path: &str) -> Option<(RouteId, &RouteSettings)> {
        let id = self.table.find(host, path)?;
        Some((id, self.list.get(usize::from(id))?))
    }

    /// Each route's name and key, by route id (what the per-route counters are kept by).
    pub fn names(&self) -> impl Iterator<Item = (&str, u64)> {
        self.list.iter().map(|r| (r.name.as_str(), r.key))
    }
}

/// Why a `path_prefix` is refused, if it is.
fn prefix_problem(prefix: &str) -> Option<&'static str> {
    if !prefix.starts_with('/') {
        return Some("must start with /");
    }
    // SECURITY: a prefix is compared with the decoded path, so escapes, queries and dot
    // segments in it could never match as written, or would match what validation refuses.
    if prefix
        .chars()
        .any(|c| matches!(c, '?' | '#' | '%') || c.is_whitespace() || c.is_control())
    {
        return Some("must not hold ?, #, %, spaces or control characters");
    }
    if prefix
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Some("must not hold . or .. segments");
    }
    None
}

impl Checker {
    /// `routes`, naming pools by `pool_id` (which knows `default` when the config has it).
    pub(super) fn routes(
        &mut self,
        field: Field<Vec<Field<RawRoute>>>,
        pool_id: &dyn Fn(&str) -> Option<PoolId>,
        pool_names: &[&str],
        warnings: &mut Vec<ConfigError>,
    ) -> Option<Routes> {
        let entries = match field {
            Field::Missing => return None,
            Field::Value(list) => list,
            Field::Invalid(v) => {
                self.error(
                    "routes",
                    format!("expected a list of routes, got {}", show(&v)),
                );
                return None;
            }
        };
        if entries.is_empty() {
            self.error(
                "routes",
                "at least one route is required (or leave the key out)",
            );
        }
        if entries.len() > MAX_ROUTES {
            self.error(
                "routes",
                format!("at most {MAX_ROUTES} routes are supported"),
            );
        }
        let mut list: Vec<RouteSettings> = Vec::new();
        // Each checked route's index in the file (a route with a problem is left out).
        let mut written: Vec<usize> = Vec::new();
        for (i, entry) in entries.into_iter().enumerate() {
            let at = format!("routes[{i}]");
            let raw = self.section(entry, &at);
            self.unknown(&at, &raw.unknown);
            if let Some(route) = self.route(raw, &at, pool_id, pool_names) {
                self.compare(&at, &route, (&list, &written), warnings);
                list.push(route);
                written.push(i);
            }
        }
        self.route_windows(&list, &written);
        let matches: Vec<RouteMatch> = list.iter().map(|r| r.matches.clone()).collect();
        Some(Routes {
            table: RouteTable::new(&matches),
            fallback: pool_id(DEFAULT_POOL_NAME),
            list,
        })
    }

    /// At most [`MAX_ROUTE_WINDOWS`] distinct windows among the routes' own limits.
    fn route_windows(&mut self, list: &[RouteSettings], written: &[usize]) {
        let mut windows: Vec<f64> = Vec::new();
        for (route, i) in list.iter().zip(written) {
            let Some(limits) = &route.rate_limit else {
                continue;
            };
            let secs = super::limits::window_for(limits.burst, limits.requests_per_second);
            if windows.contains(&secs) {
                continue;
            }
            if windows.len() == MAX_ROUTE_WINDOWS {
                self.error(
                    &format!("routes[{i}].rate_limit"),
                    format!(
                        "a {MAX_ROUTE_WINDOWS}th distinct window (burst / requests_per_second = \
                         {secs} s) is the most the routes' limits may use (3 MiB each); give \
                         this route the burst / rate ratio of another"
                    ),
                );
            } else {
                windows.push(secs);
            }
        }
    }

    /// One route, or `None` when it has a problem (recorded).
    fn route(
        &mut self,
        raw: RawRoute,
        at: &str,
        pool_id: &dyn Fn(&str) -> Option<PoolId>,
        pool_names: &[&str],
    ) -> Option<RouteSettings> {
        let errors = self.errors.len();
        let name = match self.typed(raw.name, &format!("{at}.name"), "a name") {
            Some(name) if !valid_name(&name) => {
                self.error(
                    &format!("{at}.name"),
                    format!("expected 1-64 letters, digits, '-' or '_', got {name:?}"),
                );
                None
            }
            named => named,
        };
        let host_key = format!("{at}.host");
        let host = self
            .typed(raw.host, &host_key, "a name or *.name")
            .and_then(|host| {
                let pattern = HostPattern::parse(host.trim());
                if pattern.is_none() {
                    self.error(
                        &host_key,
                        format!("expected a name or *.name (no port, no path), got {host:?}"),
                    );
                }
                pattern
            });
        let prefix_key = format!("{at}.path_prefix");
        let prefix = self.typed(raw.path_prefix, &prefix_key, "a path such as /v1/");
        if let Some(problem) = prefix.as_deref().and_then(prefix_problem) {
            self.error(
                &prefix_key,
                format!("{problem}, got {:?}", prefix.as_deref()),
            );
        }
        let strip_prefix = self.boolean(raw.strip_prefix, &format!("{at}.strip_prefix"), false);
        if strip_prefix && prefix.is_none() {
            self.error(
                &format!("{at}.strip_prefix"),
                "needs path_prefix (there is nothing to strip)",
            );
        }
        let pool_key = format!("{at}.pool");
        let pool = match self.typed(raw.pool, &pool_key, "a pool name") {
            None => {
                if !self.errors.iter().any(|e| e.path == pool_key) {
                    self.error(&pool_key, "is required");
                }
                None
            }
            Some(name) => {
                let id = pool_id(&name);
                if id.is_none() {
                    self.error(
                        &pool_key,
                        format!("no pool named {name:?} (pools: {})", pool_names.join(", ")),
                    );
                }
                id
            }
        };
        let rate_limit = match raw.rate_limit {
            Field::Missing => None,
            field => {
                let section = format!("{at}.rate_limit");
                let raw = self.section(field, &section);
                Some(self.rate_limit_at(raw, &section))
            }
        };
        let max_body_bytes = self
            .typed(
                raw.max_body_bytes,
                &format!("{at}.max_body_bytes"),
                "a number of bytes",
            )
            .and_then(|n| match u64::try_from(n) {
                Ok(n) => Some(n),
                Err(_) => {
                    self.error(
                        &format!("{at}.max_body_bytes"),
                        format!("must be at least 0, got {n}"),
                    );
                    None
                }
            });
        if self.errors.len() > errors {
            return None;
        }
        let name = name.unwrap_or_else(|| at.to_string());
        Some(RouteSettings {
            key: name_key(&name),
            rate_limit,
            max_body_bytes,
            name,
            matches: RouteMatch {
                host,
                prefix: path::normalise(prefix.as_deref().unwrap_or("/")).to_string(),
            },
            pool: pool.unwrap_or(DEFAULT_POOL),
            strip_prefix,
        })
    }

    /// A route against the ones before it: the same name or the same host and prefix is an
    /// error; one that an earlier route takes entirely is a warning.
    fn compare(
        &mut self,
        at: &str,
        route: &RouteSettings,
        (earlier, written): (&[RouteSettings], &[usize]),
        warnings: &mut Vec<ConfigError>,
    ) {
        let key = |found: Option<usize>| found.map(|j| format!("routes[{}]", written[j]));
        if let Some(same) = key(earlier.iter().position(|r| r.name == route.name)) {
            self.error(
                &format!("{at}.name"),
                format!("{:?} already names {same}", route.name),
            );
        }
        if let Some(same) = key(earlier.iter().position(|r| r.matches == route.matches)) {
            self.error(at, format!("same host and path_prefix as {same}"));
        } else if let Some(wider) = key(earlier
            .iter()
            .position(|r| route.matches.shadowed_by(&r.matches)))
        {
            warnings.push(ConfigError {
                path: at.to_string(),
                message: format!("is never reached: {wider} matches all its requests"),
            });
        }
    }
}

/// The limiter key of a route's name.
fn name_key(name: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    name.hash(&mut hasher);
    hasher.finish()
}
