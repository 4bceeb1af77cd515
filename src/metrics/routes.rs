//! Requests counted per route (§17: the request and refusal counters carry `route`): with
//! `routes` only, each finished request is counted once more, under the route it took or under
//! "no route" (the default pool's unmatched requests, the 404s). The label values are the
//! configuration's route names, never anything from the request.
//!
//! The counters of the routes in force are a list by route id, swapped whole by a reload (a
//! route's counters follow its name across reloads; a removed route's series go). A request
//! finishing under the configuration a reload replaced finds its route by key, or counts as
//! "no route" when its route is gone.

use crate::reply::LocalReply;
use arc_swap::ArcSwapOption;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// One route's counters (or those of the requests no route took).
#[derive(Default)]
pub struct RouteCounters {
    requests: AtomicU64,
    classes: [AtomicU64; 5],
    local_replies: [AtomicU64; LocalReply::KINDS],
}

impl RouteCounters {
    fn record(&self, status: u16, reply: Option<LocalReply>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if (100..600).contains(&status) {
            self.classes[(status / 100 - 1) as usize].fetch_add(1, Ordering::Relaxed);
        }
        if let Some(reply) = reply {
            self.local_replies[reply.index()].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One route's counts as read: its name (`None`: no route), requests, responses by status class
/// (`1xx`…`5xx`) and Aegis's own answers by [`LocalReply::index`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteCounts {
    pub route: Option<String>,
    pub requests: u64,
    pub classes: [u64; 5],
    pub local_replies: [u64; LocalReply::KINDS],
}

/// The routes in force: `(name, key, counters)` by route id, and the requests no route took.
struct RouteSet {
    routes: Vec<(String, u64, Arc<RouteCounters>)>,
    unrouted: Arc<RouteCounters>,
}

/// The per-route counters; empty (nothing counted, nothing shown) without `routes`.
#[derive(Default)]
pub struct RouteMetrics {
    set: ArcSwapOption<RouteSet>,
}

impl RouteMetrics {
    /// Applies the routes of a (re)loaded configuration, as `(name, key)` in route id order
    /// (`None`: no `routes`). Counters are kept by name.
    pub fn reconfigure<'a>(&self, routes: Option<impl Iterator<Item = (&'a str, u64)>>) {
        let old = self.set.load_full();
        let set = routes.map(|routes| {
            let kept = |name: &str| {
                old.as_ref()
                    .and_then(|o| o.routes.iter().find(|(n, _, _)| n == name))
                    .map(|(_, _, counters)| counters.clone())
            };
            RouteSet {
                routes: routes
                    .map(|(name, key)| (name.to_string(), key, kept(name).unwrap_or_default()))
                    .collect(),
                unrouted: old.as_ref().map(|o| o.unrouted.clone()).unwrap_or_default(),
            }
        });
        self.set.store(set.map(Arc::new));
    }

    /// Counts one finished request under its route (`(id, key)`), or under "no route".
    pub fn record(&self, route: Option<(usize, u64)>, status: u16, reply: Option<LocalReply>) {
        let set = self.set.load();
        let Some(set) = set.as_deref() else {
            return;
        };
        let counters = route
            .and_then(|(id, key)| match set.routes.get(id) {
                Some((_, k, counters)) if *k == key => Some(counters),
                // The route list changed while the request ran: find its route by key.
                _ => set.routes.iter().find(|(_, k, _)| *k == key).map(|r| &r.2),
            })
            .unwrap_or(&set.unrouted);
        counters.record(status, reply);
    }

    /// Every route's counts, in route order, then "no route"; empty without `routes`.
    pub fn read(&self) -> Vec<RouteCounts> {
        let set = self.set.load();
        let Some(set) = set.as_deref() else {
            return Vec::new();
        };
        let read = |route: Option<&str>, c: &RouteCounters| RouteCounts {
            route: route.map(str::to_string),
            requests: c.requests.load(Ordering::Relaxed),
            classes: std::array::from_fn(|i| c.classes[i].load(Ordering::Relaxed)),
            local_replies: std::array::from_fn(|i| c.local_replies[i].load(Ordering::Relaxed)),
        };
        set.routes
            .iter()
            .map(|(name, _, c)| read(Some(name), c))
            .chain([read(None, &set.unrouted)])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::Refusal;

    #[test]
    fn requests_are_counted_by_route_and_kept_by_name_across_reloads() {
        let metrics = RouteMetrics::default();
        metrics.record(None, 200, None);
        assert!(metrics.read().is_empty(), "nothing without routes");
        metrics.reconfigure(Some([("api", 11), ("www", 22)].into_iter()));
        let limited = LocalReply::from(Refusal::RateLimited { retry_after: 1 });
        metrics.record(Some((0, 11)), 200, None);
        metrics.record(Some((0, 11)), 429, Some(limited));
        metrics.record(Some((1, 22)), 503, None);
        metrics.record(None, 404, Some(Refusal::NoRoute.into()));
        let counts = metrics.read();
        let names: Vec<_> = counts.iter().map(|c| c.route.as_deref()).collect();
        assert_eq!(names, [Some("api"), Some("www"), None]);
        assert_eq!(counts[0].requests, 2);
        assert_eq!(counts[0].classes, [0, 1, 0, 1, 0]);
        assert_eq!(counts[0].local_replies[limited.index()], 1);
        assert_eq!(counts[1].classes, [0, 0, 0, 0, 1]);
        assert_eq!(counts[2].requests, 1);
        // A reload drops api and moves www first: www's counts go with it; a request of the
        // old list still finds www by key, and api's counts as no route.
        metrics.reconfigure(Some([("www", 22), ("new", 33)].into_iter()));
        metrics.record(Some((1, 22)), 200, None);
        metrics.record(Some((0, 11)), 200, None);
        let counts = metrics.read();
        let names: Vec<_> = counts.iter().map(|c| c.route.as_deref()).collect();
        assert_eq!(names, [Some("www"), Some("new"), None]);
        assert_eq!((counts[0].requests, counts[1].requests), (2, 0));
        assert_eq!(counts[2].requests, 2);
        metrics.reconfigure(None::<std::iter::Empty<(&str, u64)>>);
        assert!(metrics.read().is_empty());
    }
}
