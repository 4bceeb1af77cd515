//! The routes' own rate limits (§17, `routes[].rate_limit`): a client is counted per route
//! (key: the route's name key and the client). Routes share one sliding window per distinct
//! window length (`burst / requests_per_second`, at most `MAX_ROUTE_WINDOWS`, 3 MiB each), as a
//! window's length is fixed when it is built; a reload keeps the windows whose length is still
//! used, so clients' counts survive it.

use super::{ClientKey, Counts, Verdict};
use crate::config::{window_for, Config, RateLimitSettings};
use arc_swap::ArcSwap;
use std::sync::Arc;

/// The windows of the routes' own limits.
pub struct RouteLimits {
    windows: ArcSwap<Vec<Arc<Counts>>>,
}

/// Every distinct window length of `config`'s routes' limits.
fn lengths(config: &Config) -> Vec<f64> {
    let mut lengths: Vec<f64> = Vec::new();
    let routes = config.routes.as_ref().map_or(&[][..], |r| &r.list[..]);
    for limits in routes.iter().filter_map(|r| r.rate_limit.as_ref()) {
        let secs = window_for(limits.burst, limits.requests_per_second);
        if !lengths.contains(&secs) {
            lengths.push(secs);
        }
    }
    lengths
}

impl RouteLimits {
    /// The windows `config`'s routes need (none without routes or route limits).
    pub fn new(config: &Config) -> Self {
        RouteLimits {
            windows: ArcSwap::from_pointee(
                lengths(config)
                    .into_iter()
                    .map(|secs| Arc::new(Counts::new(secs)))
                    .collect(),
            ),
        }
    }

    /// Applies a reloaded configuration: windows of a length still used are kept (with their
    /// counts), new lengths get new windows, the others go.
    pub fn reconfigure(&self, config: &Config) {
        let old = self.windows.load_full();
        let windows = lengths(config)
            .into_iter()
            .map(|secs| match old.iter().find(|w| w.secs == secs) {
                Some(kept) => kept.clone(),
                None => Arc::new(Counts::new(secs)),
            })
            .collect();
        self.windows.store(Arc::new(windows));
    }

    /// Checks one request from `client` on the route keyed `route` with its own `limits`, at
    /// `rate` (§17: `limits.requests_per_second` under its pool's adaptive scale; the window's
    /// length stays that of `limits`), counting it when admitted. A request whose window is not
    /// there (it started under the configuration a reload is replacing) passes.
    pub fn check(
        &self,
        route: u64,
        limits: &RateLimitSettings,
        rate: f64,
        client: ClientKey,
    ) -> Verdict {
        let secs = window_for(limits.burst, limits.requests_per_second);
        let windows = self.windows.load();
        let Some(window) = windows.iter().find(|w| w.secs == secs) else {
            return Verdict::Allow;
        };
        let key = (route, client);
        let verdict = window.verdict(&key, rate * secs);
        if verdict == Verdict::Allow {
            window.window.observe(&key, 1);
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_held_per_route_and_counts_survive_a_reload() {
        let text = "pools:\n  a:\n    backends: [{url: http://a.example}]\nroutes:\n  - {path_prefix: /x, pool: a, rate_limit: {requests_per_second: 5, burst: 10}}\n  - {path_prefix: /y, pool: a, rate_limit: {requests_per_second: 5, burst: 10}}\n  - {pool: a, rate_limit: {requests_per_second: 1, burst: 3}}\n";
        let config = crate::config::parse(text).expect("valid");
        let limits = RouteLimits::new(&config);
        assert_eq!(
            limits.windows.load().len(),
            2,
            "two distinct lengths: 2 s and 3 s"
        );
        let routes = &config.routes.as_ref().unwrap().list;
        let client = ClientKey::of("192.0.2.1".parse().unwrap());
        let admitted = |route: &crate::config::RouteSettings| {
            (0..30)
                .filter(|_| {
                    let own = route.rate_limit.as_ref().unwrap();
                    limits.check(route.key, own, own.requests_per_second, client) == Verdict::Allow
                })
                .count()
        };
        assert_eq!(admitted(&routes[0]), 10);
        // The same client on another route with the same window: its own allowance.
        assert_eq!(admitted(&routes[1]), 10);
        assert_eq!(admitted(&routes[2]), 3);
        limits.reconfigure(&config);
        assert_eq!(admitted(&routes[0]), 0, "counts kept across a reload");
    }
}
