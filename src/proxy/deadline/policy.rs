//! The connection's time policy (§3.6), pure: which deadline applies in which phase of a request,
//! and what the connection's one timer does to wait for it. The stream (`stream.rs`) only reads
//! the clock and follows these answers.

use std::time::Duration;

/// `server.read_timeout` and `server.idle_timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    pub read_timeout: Duration,
    pub idle_timeout: Duration,
}

/// Where a connection stands in its request cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the first bytes of request number `request` (1 for a new connection).
    AwaitingRequest { request: u32 },
    /// A request header has started to arrive and is not complete.
    ReadingHeader,
    /// The proxy has the header; the request runs as long as it needs (Pingora's own per-read
    /// timeouts apply to the body).
    Serving,
    /// A WebSocket handshake or tunnel (§11.4): closed once no byte has gone either way for
    /// the limit (the backend's `response_header_timeout` until its 101, then
    /// `websocket.idle_timeout`).
    Tunnel { idle: Duration },
}

impl Deadlines {
    /// How long `phase` may last from its start, or `None` when Aegis sets no limit on it.
    pub fn limit(&self, phase: Phase) -> Option<Duration> {
        match phase {
            // SECURITY: a connection that sends nothing is closed: after `read_timeout` on a new
            // connection, `idle_timeout` between keep-alive requests.
            Phase::AwaitingRequest { request } if request <= 1 => Some(self.read_timeout),
            Phase::AwaitingRequest { .. } => Some(self.idle_timeout),
            // SECURITY: slowloris — a header that has started to arrive must be complete within
            // `read_timeout`, however slowly its bytes trickle in.
            Phase::ReadingHeader => Some(self.read_timeout),
            Phase::Serving => None,
            // SECURITY: an idle tunnel holds a socket on each side; it does not last forever.
            Phase::Tunnel { idle } => Some(idle),
        }
    }
}

/// What the connection's timer does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerStep {
    /// Leave it armed where it is and wait.
    Wait,
    /// Re-arm it for the deadline.
    Rearm,
    /// The deadline has passed.
    Expired,
}

/// The timer, armed for `armed_for`, is used to wait for `deadline`; `fired` says it just went
/// off. It is moved earlier when it must be, and later only once it has fired early, so that
/// waits whose deadline keeps moving later (one per keep-alive request) leave the timer wheel
/// alone. Generic over the clock so tests can use plain numbers.
pub fn timer_step<T: Ord>(armed_for: T, deadline: T, fired: bool) -> TimerStep {
    match (fired, armed_for.cmp(&deadline)) {
        (false, std::cmp::Ordering::Greater) => TimerStep::Rearm,
        (false, _) => TimerStep::Wait,
        (true, std::cmp::Ordering::Less) => TimerStep::Rearm,
        (true, _) => TimerStep::Expired,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_phase_has_its_limit() {
        let deadlines = Deadlines {
            read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        };
        let table = [
            (Phase::AwaitingRequest { request: 1 }, Some(10)),
            (Phase::AwaitingRequest { request: 2 }, Some(60)),
            (Phase::AwaitingRequest { request: 1000 }, Some(60)),
            (Phase::ReadingHeader, Some(10)),
            (Phase::Serving, None),
            (
                Phase::Tunnel {
                    idle: Duration::from_secs(300),
                },
                Some(300),
            ),
        ];
        for (phase, secs) in table {
            assert_eq!(
                deadlines.limit(phase),
                secs.map(Duration::from_secs),
                "{phase:?}"
            );
        }
    }

    #[test]
    fn the_timer_moves_earlier_at_once_and_later_only_after_firing() {
        // (armed for, deadline, fired, step)
        let table = [
            (10, 10, false, TimerStep::Wait),
            // A later deadline (the next keep-alive request's) leaves the timer alone.
            (10, 70, false, TimerStep::Wait),
            // An earlier one (a header started) must move it.
            (70, 20, false, TimerStep::Rearm),
            (10, 10, true, TimerStep::Expired),
            (20, 10, true, TimerStep::Expired),
            // Fired for an old deadline: re-armed for the current one.
            (10, 70, true, TimerStep::Rearm),
        ];
        for (armed_for, deadline, fired, step) in table {
            assert_eq!(
                timer_step(armed_for, deadline, fired),
                step,
                "armed for {armed_for}, deadline {deadline}, fired {fired}"
            );
        }
    }
}
