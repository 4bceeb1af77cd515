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

use crate::config::{AdaptiveSettings, RateLimitSettings};
use pingora_limits::rate::{Rate, RateComponents};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

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

/// The per-client limiter, shared by every worker.
pub struct RateLimiter {
    window: Rate,
    window_secs: f64,
    /// Current rate (f64 bits), set by the adaptive loop.
    rate: AtomicU64,
    burst: u32,
    /// The cluster's counts, when `cluster.redis_url` is set.
    shared: Option<Arc<dyn SharedCounts>>,
}

impl RateLimiter {
    /// Builds the limiter; the starting rate is `requests_per_second` clamped into the adaptive
    /// bounds (§5.2).
    pub fn new(limits: &RateLimitSettings, adaptive: &AdaptiveSettings) -> Self {
        let rate = limits
            .requests_per_second
            .clamp(adaptive.min_rate, adaptive.max_rate);
        let window_secs = window_for(limits.burst, rate);
        RateLimiter {
            window: Rate::new_with_estimator_config(
                Duration::from_secs_f64(window_secs),
                SKETCH_HASHES,
                SKETCH_SLOTS,
            ),
            window_secs,
            rate: AtomicU64::new(rate.to_bits()),
            burst: limits.burst,
            shared: None,
        }
    }

    /// Takes the other instances' counts into account (cluster mode).
    pub fn with_shared(mut self, shared: Arc<dyn SharedCounts>) -> Self {
        self.shared = Some(shared);
        self
    }

    /// The sliding window's length in seconds (`burst / rate` at startup).
    pub fn window_secs(&self) -> f64 {
        self.window_secs
    }

    pub fn rate(&self) -> f64 {
        f64::from_bits(self.rate.load(Ordering::Relaxed))
    }

    /// Applies a new rate to every client at once.
    pub fn set_rate(&self, rate: f64) {
        self.rate.store(rate.to_bits(), Ordering::Relaxed);
    }

    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// Checks one request from `client`, counting it when admitted.
    pub fn check(&self, client: ClientKey) -> Verdict {
        let mut limit = self.rate() * self.window_secs;
        if let Some(shared) = &self.shared {
            limit -= shared.others(client, limit);
        }
        let verdict = self.window.rate_with(&client, |c: RateComponents| {
            evaluate(&Window {
                previous: c.prev_samples as f64,
                current: c.curr_samples as f64,
                elapsed: c.current_interval_fraction,
                limit,
                length_secs: self.window_secs,
            })
        });
        if verdict == Verdict::Allow {
            self.window.observe(&client, 1);
            if let Some(shared) = &self.shared {
                shared.admitted(client);
            }
        }
        verdict
    }
}

/// The window length for a burst and a rate: `burst / rate` seconds, kept within 1 s..=60 s.
pub fn window_for(burst: u32, rate: f64) -> f64 {
    (burst as f64 / rate).clamp(1.0, 60.0)
}

/// One client's sliding window as a request finds it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Requests admitted in the previous fixed window.
    pub previous: f64,
    /// Requests admitted so far in the current fixed window.
    pub current: f64,
    /// How far into the current fixed window we are, 0..1.
    pub elapsed: f64,
    /// Requests the window admits (`rate × length_secs`).
    pub limit: f64,
    /// The window's length in seconds.
    pub length_secs: f64,
}

/// The sliding-window decision for one more request.
pub fn evaluate(window: &Window) -> Verdict {
    let estimate = window.previous * (1.0 - window.elapsed) + window.current;
    if estimate + 1.0 <= window.limit {
        return Verdict::Allow;
    }
    Verdict::Limit {
        retry_after: retry_after(window),
    }
}

/// Whole seconds until one more request fits, assuming the client sends nothing meanwhile.
fn retry_after(window: &Window) -> u64 {
    let Window {
        previous,
        current,
        elapsed: fraction,
        limit,
        length_secs,
    } = *window;
    let room = limit - 1.0;
    let wait_fraction = if current <= room && previous > 0.0 {
        // The previous window's weight fades within this window.
        let needed = 1.0 - (room - current) / previous;
        if needed <= 1.0 {
            (needed - fraction).max(0.0)
        } else {
            after_rotation(current, room, fraction)
        }
    } else {
        after_rotation(current, room, fraction)
    };
    ((wait_fraction * length_secs).ceil() as u64).max(1)
}

/// Fraction of a window to wait when the current window must first become the previous one.
fn after_rotation(current: f64, room: f64, fraction: f64) -> f64 {
    let rest = 1.0 - fraction;
    if current <= room || current <= 0.0 {
        return rest;
    }
    rest + (1.0 - room / current).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Burst 150 at rate 100: a 1.5 s window admitting 150, at the start of a fresh window.
    const FRESH: Window = Window {
        previous: 0.0,
        current: 0.0,
        elapsed: 0.0,
        limit: 150.0,
        length_secs: 1.5,
    };

    fn limited() -> Verdict {
        Verdict::Limit { retry_after: 1 }
    }

    #[test]
    fn a_fresh_client_gets_its_burst_at_once() {
        assert_eq!(window_for(150, 100.0), FRESH.length_secs);
        for n in 0..150 {
            let window = Window {
                current: n as f64,
                ..FRESH
            };
            assert_eq!(evaluate(&window), Verdict::Allow, "{n}");
        }
        let full = Window {
            current: 150.0,
            ..FRESH
        };
        assert!(matches!(evaluate(&full), Verdict::Limit { .. }));
    }

    #[test]
    fn sliding_window_table() {
        // (window, verdict): `Limit` carries the honest `retry_after`.
        let table = [
            // A full previous window and half the current gone: 150 × 0.5 = 75 counted.
            (
                Window {
                    previous: 150.0,
                    current: 74.0,
                    elapsed: 0.5,
                    ..FRESH
                },
                Verdict::Allow,
            ),
            // 75 + 75: the previous window's weight must drop by one request: 1/150 of it.
            (
                Window {
                    previous: 150.0,
                    current: 75.0,
                    elapsed: 0.5,
                    ..FRESH
                },
                limited(),
            ),
            // Burst used up at the very start of a window: wait the rest of it (1.5 s → 2 s)
            // and then for the new previous window to fade by 1/150th (0.01 s): 2 s.
            (
                Window {
                    current: 150.0,
                    ..FRESH
                },
                Verdict::Limit { retry_after: 2 },
            ),
            // A 10 s window where the previous window was full and the current one is too.
            (
                Window {
                    previous: 100.0,
                    current: 100.0,
                    elapsed: 0.9,
                    limit: 100.0,
                    length_secs: 10.0,
                },
                Verdict::Limit { retry_after: 2 },
            ),
            // Long windows give long waits: a 60 s window just started and full.
            (
                Window {
                    current: 600.0,
                    limit: 600.0,
                    length_secs: 60.0,
                    ..FRESH
                },
                Verdict::Limit { retry_after: 61 },
            ),
        ];
        for (window, verdict) in table {
            assert_eq!(evaluate(&window), verdict, "{window:?}");
        }
    }

    #[test]
    fn window_is_clamped() {
        assert_eq!(window_for(50, 100.0), 1.0);
        assert_eq!(window_for(10_000, 10.0), 60.0);
    }

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
}
