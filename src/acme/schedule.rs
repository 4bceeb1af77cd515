//! When to order a certificate (§18), pure: times are Unix seconds passed in.
//!
//! - No certificate (or one that does not cover the configured names, or has expired): now.
//! - A valid certificate: when a third of its lifetime is left (day 60 of Let's Encrypt's 90).
//! - After a failure: again after a backoff that doubles with each failure in a row, from
//!   [`FIRST_RETRY`] up to a cap. The cap is [`MAX_RETRY_WITHOUT_CERTIFICATE`] while no
//!   certificate is served (the site is down for those names: keep trying), otherwise a tenth
//!   of the served certificate's lifetime, at most [`MAX_RETRY`] (a renewal has a third of the
//!   lifetime to succeed: many tries fit). Short-lived certificates retry proportionally sooner.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The first retry after a failure, at most.
pub const FIRST_RETRY: Duration = Duration::from_secs(10);
/// The longest wait between tries while a valid certificate is served.
pub const MAX_RETRY: Duration = Duration::from_secs(3600);
/// The longest wait between tries while no certificate is served.
pub const MAX_RETRY_WITHOUT_CERTIFICATE: Duration = Duration::from_secs(600);

/// The moment a certificate valid from `not_before` to `not_after` is renewed: a third of its
/// lifetime before its end.
pub fn renew_at(not_before: i64, not_after: i64) -> i64 {
    not_after - (not_after - not_before).max(0) / 3
}

/// What a served certificate means for ordering at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// None, expired, or not covering every configured name: order now.
    Missing,
    /// Valid: order at this time (renewal).
    RenewAt(i64),
}

/// Judges the served certificate's validity period (`None`: no certificate) at `now`.
pub fn need(validity: Option<(i64, i64)>, now: i64) -> Need {
    match validity {
        Some((not_before, not_after)) if not_after > now => {
            Need::RenewAt(renew_at(not_before, not_after))
        }
        _ => Need::Missing,
    }
}

/// The wait after `failures` failed tries in a row (1 = the first failure), given the served
/// certificate's lifetime in seconds (`None`: no valid certificate).
pub fn backoff(failures: u32, lifetime: Option<i64>) -> Duration {
    let cap = match lifetime {
        None => MAX_RETRY_WITHOUT_CERTIFICATE,
        Some(seconds) => Duration::from_secs((seconds.max(10) / 10) as u64).min(MAX_RETRY),
    };
    // A short-lived certificate's cap is below FIRST_RETRY: it retries at the cap.
    let first = FIRST_RETRY.min(cap);
    let doubled = first.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    doubled.min(cap)
}

/// Now, in Unix seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A Unix time as `2026-12-03T08:00:00Z`.
pub fn show_time(unix: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_secs(unix.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn renewal_when_a_third_of_the_lifetime_is_left() {
        assert_eq!(renew_at(0, 90 * DAY), 60 * DAY);
        assert_eq!(renew_at(1_000, 1_060), 1_040);
        assert_eq!(need(None, 5), Need::Missing);
        assert_eq!(need(Some((0, 90)), 90), Need::Missing, "expired");
        assert_eq!(need(Some((0, 90)), 89), Need::RenewAt(60));
        assert_eq!(need(Some((0, 90)), 70), Need::RenewAt(60), "overdue: now");
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let s = Duration::from_secs;
        // Without a certificate: 10 s, 20 s, 40 s, … capped at 10 minutes.
        let tries: Vec<Duration> = (1..=8).map(|n| backoff(n, None)).collect();
        assert_eq!(
            tries,
            [s(10), s(20), s(40), s(80), s(160), s(320), s(600), s(600)]
        );
        // A 90-day certificate: capped at one hour.
        assert_eq!(backoff(1, Some(90 * DAY)), s(10));
        assert_eq!(backoff(12, Some(90 * DAY)), s(3600));
        // A one-minute certificate: a tenth of its lifetime, 6 s, from the first retry.
        assert_eq!(backoff(1, Some(60)), s(6));
        assert_eq!(backoff(5, Some(60)), s(6));
        assert_eq!(backoff(u32::MAX, None), s(600));
    }
}
