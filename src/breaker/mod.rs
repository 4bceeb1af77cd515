//! The per-backend circuit breaker (§4.4): a pure state machine that takes time as an argument
//! ([`CircuitBreaker`]), and its thread-safe cell for the request path ([`BreakerCell`]).

mod cell;

pub use cell::BreakerCell;

use crate::config::BreakerSettings;
use std::time::{Duration, Instant};

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Traffic flows; consecutive failures are counted.
    Closed,
    /// No traffic until `open_timeout` has passed.
    Open,
    /// A few probe requests test the backend.
    HalfOpen,
}

impl BreakerState {
    /// Lower-case name, as shown in logs, `/status` and the dashboard.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        }
    }
}

/// A change of state worth logging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Opened,
    HalfOpened,
    Closed,
}

/// How a request sent to a backend ended, as its breaker counts it (§4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The backend answered below 500.
    Success,
    /// It answered 5xx, or could not be reached or read.
    Failure,
    /// Nothing to learn: the client left, or a stale pooled connection is retried elsewhere.
    Nothing,
}

/// Permission to send one request, handed back with its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    /// True when the request is one of the half-open probes.
    pub probe: bool,
}

/// The breaker's state machine. Not thread-safe by itself; see [`BreakerCell`].
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    failure_threshold: u32,
    success_threshold: u32,
    open_timeout: Duration,
    half_open_max: u32,
    state: BreakerState,
    failures: u32,
    successes: u32,
    probes_in_flight: u32,
    opened_at: Option<Instant>,
}

impl CircuitBreaker {
    pub fn new(settings: &BreakerSettings) -> Self {
        CircuitBreaker {
            failure_threshold: settings.failure_threshold,
            success_threshold: settings.success_threshold,
            open_timeout: settings.open_timeout,
            half_open_max: settings.half_open_max_requests,
            state: BreakerState::Closed,
            failures: 0,
            successes: 0,
            probes_in_flight: 0,
            opened_at: None,
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Takes new thresholds (a reload) and keeps the state: an open breaker stays open until
    /// its (new) `open_timeout` from when it opened.
    pub fn reconfigure(&mut self, settings: &BreakerSettings) {
        self.failure_threshold = settings.failure_threshold;
        self.success_threshold = settings.success_threshold;
        self.open_timeout = settings.open_timeout;
        self.half_open_max = settings.half_open_max_requests;
    }

    /// Consecutive failures counted while closed.
    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }

    /// When an open breaker may move to half-open.
    pub fn half_open_at(&self) -> Option<Instant> {
        match self.state {
            BreakerState::Open => self.opened_at.map(|t| t + self.open_timeout),
            _ => None,
        }
    }

    /// Moves open → half-open once `open_timeout` has passed. Called whenever a backend is
    /// being chosen, so an open backend is never stranded because nothing picks it.
    pub fn poll(&mut self, now: Instant) -> Option<Transition> {
        match self.half_open_at() {
            Some(at) if now >= at => {
                self.state = BreakerState::HalfOpen;
                self.successes = 0;
                self.probes_in_flight = 0;
                Some(Transition::HalfOpened)
            }
            _ => None,
        }
    }

    /// Asks to send a request now.
    pub fn try_acquire(&mut self, now: Instant) -> (Option<Ticket>, Option<Transition>) {
        let transition = self.poll(now);
        let ticket = match self.state {
            BreakerState::Closed => Some(Ticket { probe: false }),
            BreakerState::Open => None,
            BreakerState::HalfOpen if self.probes_in_flight < self.half_open_max => {
                self.probes_in_flight += 1;
                Some(Ticket { probe: true })
            }
            BreakerState::HalfOpen => None,
        };
        (ticket, transition)
    }

    /// Gives back a ticket whose request produced no outcome (e.g. the client left).
    fn release(&mut self, ticket: Ticket) {
        if ticket.probe && self.state == BreakerState::HalfOpen {
            self.probes_in_flight = self.probes_in_flight.saturating_sub(1);
        }
    }

    /// Records the outcome of a request sent with `ticket`.
    pub fn record(&mut self, ticket: Ticket, outcome: Outcome, now: Instant) -> Option<Transition> {
        let success = match outcome {
            Outcome::Success => true,
            Outcome::Failure => false,
            Outcome::Nothing => {
                self.release(ticket);
                return None;
            }
        };
        match self.state {
            BreakerState::Closed if success => {
                self.failures = 0;
                None
            }
            BreakerState::Closed => {
                self.failures += 1;
                (self.failures >= self.failure_threshold).then(|| self.open(now))
            }
            // Outcomes of requests sent before the breaker opened say nothing new.
            BreakerState::Open => None,
            BreakerState::HalfOpen if !ticket.probe => None,
            BreakerState::HalfOpen => {
                self.probes_in_flight = self.probes_in_flight.saturating_sub(1);
                if !success {
                    return Some(self.open(now));
                }
                self.successes += 1;
                if self.successes >= self.success_threshold {
                    self.state = BreakerState::Closed;
                    self.failures = 0;
                    self.opened_at = None;
                    Some(Transition::Closed)
                } else {
                    None
                }
            }
        }
    }

    fn open(&mut self, now: Instant) -> Transition {
        self.state = BreakerState::Open;
        self.opened_at = Some(now);
        self.failures = 0;
        self.successes = 0;
        self.probes_in_flight = 0;
        Transition::Opened
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new(&BreakerSettings {
            failure_threshold: 3,
            success_threshold: 2,
            open_timeout: Duration::from_secs(30),
            half_open_max_requests: 2,
        })
    }

    /// A breaker opened at `t0` by three failures.
    fn opened_at(t0: Instant) -> CircuitBreaker {
        let mut b = breaker();
        for _ in 0..3 {
            b.record(NORMAL, Outcome::Failure, t0);
        }
        assert_eq!(b.state(), BreakerState::Open);
        b
    }

    const NORMAL: Ticket = Ticket { probe: false };
    const PROBE: Ticket = Ticket { probe: true };

    #[test]
    fn opens_after_consecutive_failures_only() {
        let t0 = Instant::now();
        let mut b = breaker();
        assert_eq!(b.record(NORMAL, Outcome::Failure, t0), None);
        assert_eq!(b.record(NORMAL, Outcome::Failure, t0), None);
        assert_eq!(
            b.record(NORMAL, Outcome::Success, t0),
            None,
            "a success resets the count"
        );
        assert_eq!(b.record(NORMAL, Outcome::Failure, t0), None);
        assert_eq!(b.record(NORMAL, Outcome::Failure, t0), None);
        assert_eq!(
            b.record(NORMAL, Outcome::Failure, t0),
            Some(Transition::Opened)
        );
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.try_acquire(t0), (None, None));
    }

    #[test]
    fn half_opens_after_timeout_and_caps_probes() {
        let t0 = Instant::now();
        let mut b = opened_at(t0);
        assert_eq!(b.half_open_at(), Some(t0 + Duration::from_secs(30)));
        assert_eq!(b.try_acquire(t0 + Duration::from_secs(29)).0, None);
        let t1 = t0 + Duration::from_secs(30);
        assert_eq!(
            b.try_acquire(t1),
            (Some(PROBE), Some(Transition::HalfOpened))
        );
        assert_eq!(b.try_acquire(t1), (Some(PROBE), None));
        assert_eq!(
            b.try_acquire(t1),
            (None, None),
            "at most half_open_max_requests in flight"
        );
        b.record(PROBE, Outcome::Nothing, t1);
        assert_eq!(
            b.try_acquire(t1).0,
            Some(PROBE),
            "a released probe frees a place"
        );
    }

    /// A breaker opened at `t0` and, `after` later, sending its first probe.
    fn probing(t0: Instant, after: Duration) -> (CircuitBreaker, Instant) {
        let mut b = opened_at(t0);
        let t1 = t0 + after;
        assert_eq!(b.try_acquire(t1).0, Some(PROBE));
        (b, t1)
    }

    #[test]
    fn closes_after_successful_probes() {
        let (mut b, t1) = probing(Instant::now(), Duration::from_secs(31));
        b.try_acquire(t1);
        assert_eq!(
            b.record(NORMAL, Outcome::Failure, t1),
            None,
            "late results of old requests are ignored"
        );
        assert_eq!(b.record(PROBE, Outcome::Success, t1), None);
        assert_eq!(
            b.record(PROBE, Outcome::Success, t1),
            Some(Transition::Closed)
        );
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.consecutive_failures(), 0);
    }

    #[test]
    fn failed_probe_reopens_and_restarts_the_timer() {
        let (mut b, t1) = probing(Instant::now(), Duration::from_secs(40));
        assert_eq!(
            b.record(PROBE, Outcome::Failure, t1),
            Some(Transition::Opened)
        );
        assert_eq!(b.half_open_at(), Some(t1 + Duration::from_secs(30)));
        assert_eq!(b.try_acquire(t1 + Duration::from_secs(29)).0, None);
        assert_eq!(
            b.try_acquire(t1 + Duration::from_secs(30)).1,
            Some(Transition::HalfOpened)
        );
    }
}
