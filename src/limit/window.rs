//! The sliding window of the per-client limiter (§5.1), as pure arithmetic: Cloudflare's
//! approximation over two fixed windows, `estimate = previous × (1 − elapsed fraction) +
//! current`, and the honest `Retry-After` of a refusal.

use super::Verdict;

pub use crate::config::window_for;

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
}
