//! Per-client rate limiting (§5.1) on `pingora-limits`, and the adaptive loop (§5.2) in
//! `adaptive`.
//!
//! # The limiter
//! A client may send `burst` requests at once; after that it is held to `rate` requests per
//! second. Both come from one sliding window of length `W = burst / rate` (at least 1 s) that
//! admits `L = rate × W` requests: a fresh client gets `L = burst` at once, and a greedy one
//! settles at `L / W = rate`. The window is Cloudflare's sliding-window approximation over two
//! fixed windows, `estimate = previous × (1 − elapsed fraction) + current`, kept in
//! `pingora-limits`' `Rate` (two count-min sketches), so memory is fixed whatever the number of
//! clients. Only admitted requests are counted: a client that keeps hammering while limited
//! still gets its `rate`, no less.
//!
//! When the adaptive loop changes the rate, `W` stays and `L` follows (`L = rate × W`): the burst
//! scales with the rate.
//!
//! In cluster mode (§13) the limiter also takes [`SharedCounts`]: what the other instances
//! admitted for the client, as of the last sync, is taken off `L`. Without it the request path is
//! unchanged but for one branch on `None`.

pub mod adaptive;
pub mod policy;
pub mod pool_scale;
mod route;
mod window;

pub use pool_scale::base_rate;
pub use route::RouteLimits;

pub use window::{evaluate, window_for, Window};

use crate::config::{AdaptiveSettings, RateLimitSettings};
use arc_swap::ArcSwap;
use pingora_limits::rate::{Rate, RateComponents};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Count-min sketch rows (independent hashes).
pub const SKETCH_HASHES: usize = 3;
/// Counters per row. With 5,000 active clients a row holds ~0.08 clients per counter, so a client
/// collides with another in all three rows with probability ≈ 4·10⁻⁴ (§5.1 wants < 0.1 % of
/// requests falsely limited). Memory: 2 windows × 3 × 65,536 × 8 bytes = 3 MiB, allocated once.
pub const SKETCH_SLOTS: usize = 1 << 16;

/// The key a client is limited by: its TCP peer address, IPv6 grouped by /64.
///
/// SECURITY: never a header such as X-Forwarded-For, which the client writes itself; and a
/// single IPv6 host usually holds a whole /64, so limiting per address would let it rotate
/// through 2^64 keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(u128);

impl ClientKey {
    /// The key as a number (an IPv4 address, or an IPv6 /64 prefix with the low bit set).
    pub fn id(self) -> u128 {
        self.0
    }

    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => ClientKey(u32::from(v4) as u128),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey(u32::from(v4) as u128),
                None => ClientKey((u128::from(v6) >> 64 << 64) | 1),
            },
        }
    }
}

/// The limiter's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Refuse; a request would pass again after this many whole seconds (at least 1).
    Limit {
        retry_after: u64,
    },
}

/// Requests other Aegis instances admitted per client (cluster mode, §13; see `crate::cluster`).
/// Both calls are local: nothing here waits for the network.
pub trait SharedCounts: Send + Sync {
    /// Requests the other instances admitted for `client` over the last window, as last synced;
    /// `limit` is what the whole cluster admits per window.
    fn others(&self, client: ClientKey, limit: f64) -> f64;
    /// This instance admitted one request from `client`.
    fn admitted(&self, client: ClientKey);
}

/// One sliding window: its counts (two count-min sketches) and its length.
struct Counts {
    window: Rate,
    secs: f64,
}

impl Counts {
    fn new(secs: f64) -> Self {
        Counts {
            window: Rate::new_with_estimator_config(
                Duration::from_secs_f64(secs),
                SKETCH_HASHES,
                SKETCH_SLOTS,
            ),
            secs,
        }
    }

    /// The verdict for one more request counted under `key` (a client, or a route and a
    /// client), without counting it.
    fn verdict<K: std::hash::Hash>(&self, key: &K, limit: f64) -> Verdict {
        self.window.rate_with(key, |c: RateComponents| {
            evaluate(&Window {
                previous: c.prev_samples as f64,
                current: c.curr_samples as f64,
                elapsed: c.current_interval_fraction,
                limit,
                length_secs: self.secs,
            })
        })
    }
}

/// The windows a request is checked against: the current one, and after a reload that changed
/// the window's length, the one before it until its counts have aged out.
struct Windows {
    current: Arc<Counts>,
    /// The window before a reload, with the moment its counts no longer matter.
    previous: Option<(Arc<Counts>, Instant)>,
}

/// The per-client limiter, shared by every worker.
pub struct RateLimiter {
    windows: ArcSwap<Windows>,
    /// Current rate (f64 bits), set by the adaptive loop.
    rate: AtomicU64,
    burst: AtomicU32,
    /// The cluster's counts, when `cluster.redis_url` is set.
    shared: Option<Arc<dyn SharedCounts>>,
}

impl RateLimiter {
    /// Builds the limiter; the starting rate is `requests_per_second` clamped into the adaptive
    /// bounds (§5.2).
    pub fn new(limits: &RateLimitSettings, adaptive: &AdaptiveSettings) -> Self {
        let rate = base_rate(limits, adaptive);
        RateLimiter {
            windows: ArcSwap::from_pointee(Windows {
                current: Arc::new(Counts::new(window_for(limits.burst, rate))),
                previous: None,
            }),
            rate: AtomicU64::new(rate.to_bits()),
            burst: AtomicU32::new(limits.burst),
            shared: None,
        }
    }

    /// Takes the other instances' counts into account (cluster mode).
    pub fn with_shared(mut self, shared: Arc<dyn SharedCounts>) -> Self {
        self.shared = Some(shared);
        self
    }

    /// Applies reloaded settings (§12.1). The adaptive rate restarts from the new
    /// `requests_per_second` only if that changed; otherwise it stays, clamped into the new
    /// bounds. Every client's count survives: when the window's length (`burst / rate`)
    /// changes, a new window starts and the old one keeps counting for as long as its counts
    /// matter (two of its lengths), a request passing only if both admit it.
    pub fn reconfigure(
        &self,
        old: &RateLimitSettings,
        limits: &RateLimitSettings,
        adaptive: &AdaptiveSettings,
        now: Instant,
    ) {
        let rate = if limits.requests_per_second != old.requests_per_second {
            base_rate(limits, adaptive)
        } else {
            self.rate().clamp(adaptive.min_rate, adaptive.max_rate)
        };
        self.burst.store(limits.burst, Ordering::Relaxed);
        let secs = window_for(limits.burst, base_rate(limits, adaptive));
        let windows = self.windows.load_full();
        if secs != windows.current.secs {
            let old = windows.current.clone();
            let until = now + Duration::from_secs_f64(old.secs * 2.0);
            self.windows.store(Arc::new(Windows {
                current: Arc::new(Counts::new(secs)),
                previous: Some((old, until)),
            }));
        }
        self.set_rate(rate);
    }

    /// The sliding window's length in seconds (`burst / requests_per_second`).
    pub fn window_secs(&self) -> f64 {
        self.windows.load().current.secs
    }

    pub fn rate(&self) -> f64 {
        f64::from_bits(self.rate.load(Ordering::Relaxed))
    }

    /// Applies a new rate to every client at once.
    pub fn set_rate(&self, rate: f64) {
        self.rate.store(rate.to_bits(), Ordering::Relaxed);
    }

    pub fn burst(&self) -> u32 {
        self.burst.load(Ordering::Relaxed)
    }

    /// Checks one request from `client`, counting it when admitted.
    pub fn check(&self, client: ClientKey) -> Verdict {
        self.check_keyed(&client, client, self.rate())
    }

    /// [`Self::check`] with the request counted under `key` (§17: a route and the client), so
    /// that the client has the allowance once per key, at `rate` (§17: the route's pool's
    /// scale applied). The cluster's counts stay per client.
    pub fn check_keyed<K: std::hash::Hash>(
        &self,
        key: &K,
        client: ClientKey,
        rate: f64,
    ) -> Verdict {
        let windows = self.windows.load();
        let mut limit = rate * windows.current.secs;
        if let Some(shared) = &self.shared {
            limit -= shared.others(client, limit);
        }
        let mut verdict = windows.current.verdict(key, limit);
        // Only for a while after a reload changed the window's length.
        let previous = windows
            .previous
            .as_ref()
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(counts, _)| &**counts);
        if let (Verdict::Allow, Some(previous)) = (verdict, previous) {
            verdict = previous.verdict(key, rate * previous.secs);
        }
        if verdict == Verdict::Allow {
            windows.current.window.observe(key, 1);
            if let Some(previous) = previous {
                previous.window.observe(key, 1);
            }
            if let Some(shared) = &self.shared {
                shared.admitted(client);
            }
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_grouped_by_64() {
        let a = ClientKey::of("2001:db8:1:2::1".parse().unwrap());
        let b = ClientKey::of("2001:db8:1:2:ffff::9".parse().unwrap());
        let c = ClientKey::of("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            ClientKey::of("::ffff:10.0.0.1".parse().unwrap()),
            ClientKey::of("10.0.0.1".parse().unwrap())
        );
        assert_ne!(
            ClientKey::of("10.0.0.1".parse().unwrap()),
            ClientKey::of("10.0.0.2".parse().unwrap())
        );
    }

    #[test]
    fn live_limiter_admits_the_burst_then_refuses() {
        let limits = RateLimitSettings {
            requests_per_second: 10.0,
            burst: 20,
            cleanup_interval: Duration::from_secs(60),
        };
        let adaptive = crate::config::parse("backends:\n  - url: http://a.example\n")
            .unwrap()
            .adaptive;
        let limiter = RateLimiter::new(&limits, &adaptive);
        let key = ClientKey::of("192.0.2.1".parse().unwrap());
        let other = ClientKey::of("192.0.2.2".parse().unwrap());
        let admitted = (0..40)
            .filter(|_| limiter.check(key) == Verdict::Allow)
            .count();
        assert_eq!(admitted, 20);
        assert_eq!(limiter.check(other), Verdict::Allow);
    }

    #[test]
    fn counts_survive_a_reload_that_changes_the_window() {
        let limits = RateLimitSettings {
            requests_per_second: 10.0,
            burst: 20,
            cleanup_interval: Duration::from_secs(60),
        };
        let adaptive = AdaptiveSettings::default();
        let limiter = RateLimiter::new(&limits, &adaptive);
        let key = ClientKey::of("192.0.2.1".parse().unwrap());
        let admitted = (0..40)
            .filter(|_| limiter.check(key) == Verdict::Allow)
            .count();
        assert_eq!(admitted, 20);
        assert_eq!(limiter.window_secs(), 2.0);
        // A reload to 20 requests/s with burst 40: the same 2 s window, counts kept.
        let same = RateLimitSettings {
            requests_per_second: 20.0,
            burst: 40,
            ..limits.clone()
        };
        limiter.reconfigure(&limits, &same, &adaptive, Instant::now());
        assert_eq!(limiter.rate(), 20.0);
        let more = (0..40)
            .filter(|_| limiter.check(key) == Verdict::Allow)
            .count();
        assert_eq!(
            more, 20,
            "the new limit (40 per window) less the 20 already counted"
        );
        // A reload to a lower limit in a 1 s window: the client that used its burst stays
        // limited by its counts in the old window (40 counted, 10/s × 2 s = 20 allowed there).
        let shorter = RateLimitSettings {
            requests_per_second: 10.0,
            burst: 10,
            ..limits.clone()
        };
        limiter.reconfigure(&same, &shorter, &adaptive, Instant::now());
        assert_eq!(limiter.window_secs(), 1.0);
        assert!(matches!(limiter.check(key), Verdict::Limit { .. }));
        // Another client gets the new burst.
        let other = ClientKey::of("192.0.2.9".parse().unwrap());
        let fresh = (0..80)
            .filter(|_| limiter.check(other) == Verdict::Allow)
            .count();
        assert_eq!(fresh, 10);
    }

    #[test]
    fn the_adaptive_rate_restarts_only_when_requests_per_second_changed() {
        let limits = RateLimitSettings::default();
        let adaptive = AdaptiveSettings::default();
        let limiter = RateLimiter::new(&limits, &adaptive);
        limiter.set_rate(64.0);
        let burst_only = RateLimitSettings {
            burst: 300,
            ..limits.clone()
        };
        limiter.reconfigure(&limits, &burst_only, &adaptive, Instant::now());
        assert_eq!(limiter.rate(), 64.0);
        assert_eq!(limiter.burst(), 300);
        let narrower = AdaptiveSettings {
            max_rate: 50.0,
            ..adaptive.clone()
        };
        limiter.reconfigure(&burst_only, &burst_only, &narrower, Instant::now());
        assert_eq!(limiter.rate(), 50.0, "clamped into the new bounds");
        let faster = RateLimitSettings {
            requests_per_second: 200.0,
            ..burst_only.clone()
        };
        limiter.reconfigure(&burst_only, &faster, &adaptive, Instant::now());
        assert_eq!(limiter.rate(), 200.0);
    }
}
