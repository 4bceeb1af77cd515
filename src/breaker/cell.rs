//! [`BreakerCell`]: a [`CircuitBreaker`] shared by the worker threads.
//!
//! The common case — breaker closed, no failures counted — is answered from atomics without
//! taking the lock, so a healthy backend's requests never serialize on it. The lock is taken only
//! when something changes: a failure, or any request while open or half-open.

use super::{BreakerState, CircuitBreaker, Outcome, Ticket, Transition};
use crate::config::BreakerSettings;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::Instant;

pub struct BreakerCell {
    inner: Mutex<CircuitBreaker>,
    /// Mirror of the state, for lock-free reads.
    state: AtomicU8,
    /// True when closed with no failure counted: a success then changes nothing.
    clean: AtomicBool,
}

fn encode(state: BreakerState) -> u8 {
    match state {
        BreakerState::Closed => 0,
        BreakerState::Open => 1,
        BreakerState::HalfOpen => 2,
    }
}

fn decode(value: u8) -> BreakerState {
    match value {
        0 => BreakerState::Closed,
        1 => BreakerState::Open,
        _ => BreakerState::HalfOpen,
    }
}

impl BreakerCell {
    pub fn new(settings: &BreakerSettings) -> Self {
        BreakerCell {
            inner: Mutex::new(CircuitBreaker::new(settings)),
            state: AtomicU8::new(encode(BreakerState::Closed)),
            clean: AtomicBool::new(true),
        }
    }

    /// Takes new thresholds, keeping the state (see [`CircuitBreaker::reconfigure`]).
    pub fn reconfigure(&self, settings: &BreakerSettings) {
        self.with(|b| b.reconfigure(settings));
    }

    pub fn state(&self) -> BreakerState {
        decode(self.state.load(Ordering::Acquire))
    }

    /// When an open breaker may half-open.
    pub fn half_open_at(&self) -> Option<Instant> {
        if self.state() != BreakerState::Open {
            return None;
        }
        self.with(|b| b.half_open_at()).0
    }

    /// Open → half-open when due.
    pub fn poll(&self, now: Instant) -> Option<Transition> {
        if self.state() != BreakerState::Open {
            return None;
        }
        self.with(|b| b.poll(now)).1
    }

    pub fn try_acquire(&self, now: Instant) -> (Option<Ticket>, Option<Transition>) {
        if self.state() == BreakerState::Closed {
            return (Some(Ticket { probe: false }), None);
        }
        let ((ticket, transition), _) = self.with(|b| b.try_acquire(now));
        (ticket, transition)
    }

    /// Records how the request sent with `ticket` ended.
    pub fn record(&self, ticket: Ticket, outcome: Outcome, now: Instant) -> Option<Transition> {
        // The common cases change nothing and take no lock: a success while closed and clean,
        // and a request that taught nothing and held no probe place.
        let unchanged = match outcome {
            Outcome::Success => !ticket.probe && self.clean.load(Ordering::Acquire),
            Outcome::Nothing => !ticket.probe,
            Outcome::Failure => false,
        };
        if unchanged {
            return None;
        }
        self.with(|b| b.record(ticket, outcome, now)).0
    }

    /// Runs `f` under the lock and refreshes the atomic mirrors.
    fn with<T>(&self, f: impl FnOnce(&mut CircuitBreaker) -> T) -> (T, Option<Transition>) {
        // A panic while holding this lock cannot leave the plain-data breaker half-updated in a
        // harmful way, so a poisoned lock is still used.
        let mut breaker = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let before = breaker.state();
        let out = f(&mut breaker);
        let after = breaker.state();
        self.state.store(encode(after), Ordering::Release);
        self.clean.store(
            after == BreakerState::Closed && breaker.consecutive_failures() == 0,
            Ordering::Release,
        );
        let transition = match (before, after) {
            (BreakerState::Open, BreakerState::HalfOpen) => Some(Transition::HalfOpened),
            _ => None,
        };
        (out, transition)
    }
}
