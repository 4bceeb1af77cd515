//! `/status` `pools` (§17): each pool's backends, how many are up, and its traffic over the
//! latency window, built from the backends' entries (what the dashboards' pool headings show).

use super::snapshot::{BackendSnapshot, PoolSnapshot};
use crate::metrics::histogram::quantile_ms;

/// One backend's traffic over the latency window (the last minute).
#[derive(Debug, Clone, Default)]
pub(super) struct Window {
    /// Latency bucket counts recorded in the window.
    pub latency: Vec<u64>,
    pub requests: u64,
    pub failures: u64,
}

/// Whether a backend takes traffic: healthy, not drained, breaker not open.
fn is_up(b: &BackendSnapshot) -> bool {
    b.healthy && b.admin_state == "enabled" && b.breaker != "open"
}

/// The pools named `names`, in that order; `windows[i]` is the window of `backends[i]`.
pub(super) fn pool_snapshots<'a>(
    names: impl IntoIterator<Item = &'a str>,
    backends: &[BackendSnapshot],
    windows: &[Window],
) -> Vec<PoolSnapshot> {
    names
        .into_iter()
        .map(|name| {
            let mine: Vec<(&BackendSnapshot, Option<&Window>)> = backends
                .iter()
                .zip(windows.iter().map(Some).chain(std::iter::repeat(None)))
                .filter(|(b, _)| b.pool == name)
                .collect();
            let mut latency = Vec::new();
            let (mut requests, mut failures) = (0u64, 0u64);
            for window in mine.iter().filter_map(|(_, w)| *w) {
                if latency.len() < window.latency.len() {
                    latency.resize(window.latency.len(), 0);
                }
                for (sum, count) in latency.iter_mut().zip(&window.latency) {
                    *sum += count;
                }
                requests += window.requests;
                failures += window.failures;
            }
            PoolSnapshot {
                name: name.to_string(),
                backends: mine.iter().map(|(b, _)| b.id.clone()).collect(),
                up: mine.iter().filter(|(b, _)| is_up(b)).count(),
                requests_per_sec: mine.iter().map(|(b, _)| b.requests_per_sec).sum(),
                p95_ms: quantile_ms(&latency, 0.95),
                error_rate: if requests == 0 {
                    0.0
                } else {
                    failures as f64 / requests as f64
                },
                in_flight: mine.iter().map(|(b, _)| b.in_flight).sum(),
                adaptive: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::histogram::{bucket_of, BUCKETS};

    fn backend(pool: &str, id: &str, healthy: bool, breaker: &str) -> BackendSnapshot {
        BackendSnapshot {
            pool: pool.into(),
            id: id.into(),
            admin_state: "enabled".into(),
            healthy,
            breaker: breaker.into(),
            requests_per_sec: 10.0,
            in_flight: 2,
            ..BackendSnapshot::default()
        }
    }

    /// `count` responses of `ms` milliseconds, `failures` of them failed.
    fn window(ms: u64, count: u64, failures: u64) -> Window {
        let mut latency = vec![0; BUCKETS];
        latency[bucket_of(ms * 1000)] = count;
        Window {
            latency,
            requests: count,
            failures,
        }
    }

    #[test]
    fn each_pool_sums_its_own_backends() {
        let mut drained = backend("api", "http-c", true, "closed");
        drained.admin_state = "drained".into();
        let backends = [
            backend("default", "http-a", true, "closed"),
            backend("api", "http-b", true, "closed"),
            drained,
            backend("api", "http-d", true, "open"),
            backend("api", "http-e", false, "closed"),
        ];
        // In api, 90 fast responses and 10 slow ones: P95 is the slow backend's latency.
        let windows = [
            window(1, 50, 0),
            window(2, 45, 0),
            window(2, 45, 0),
            window(300, 10, 10),
            Window::default(),
        ];
        let pools = pool_snapshots(["default", "api", "www"], &backends, &windows);
        assert_eq!(pools.len(), 3);
        let (default, api, www) = (&pools[0], &pools[1], &pools[2]);
        assert_eq!((default.name.as_str(), default.up), ("default", 1));
        assert_eq!(default.backends, ["http-a"]);
        assert_eq!(api.backends, ["http-b", "http-c", "http-d", "http-e"]);
        // Drained, breaker open and unhealthy are all down.
        assert_eq!(api.up, 1);
        assert_eq!(api.requests_per_sec, 40.0);
        assert_eq!(api.in_flight, 8);
        let p95 = api.p95_ms.expect("api had responses");
        assert!((290.0..=340.0).contains(&p95), "{p95}");
        assert_eq!(api.error_rate, 0.1);
        // A pool without responses in the window has no P95 and no errors.
        assert_eq!((www.up, www.p95_ms, www.error_rate), (0, None, 0.0));
        assert!(www.backends.is_empty());
    }
}
