//! Recent state-change events (breaker opened, backend unhealthy, warm-up step, rate changes):
//! logged as they happen and kept in a small ring for the dashboard and `/status`.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::SystemTime;

/// Events kept; older ones fall off.
const CAPACITY: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub at: SystemTime,
    pub level: log::Level,
    pub message: String,
}

/// A bounded ring of recent events. Written rarely (state changes only), read once per refresh.
#[derive(Debug, Default)]
pub struct EventLog {
    ring: Mutex<VecDeque<Event>>,
}

impl EventLog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Logs `message` at `level` and keeps it.
    pub fn record(&self, level: log::Level, message: String) {
        log::log!(target: "aegis::events", level, "{message}");
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        if ring.len() == CAPACITY {
            ring.pop_front();
        }
        ring.push_back(Event {
            at: SystemTime::now(),
            level,
            message,
        });
    }

    /// The kept events, oldest first.
    pub fn recent(&self) -> Vec<Event> {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        ring.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_events_only() {
        let log = EventLog::new();
        for i in 0..(CAPACITY + 5) {
            log.record(log::Level::Info, format!("event {i}"));
        }
        let recent = log.recent();
        assert_eq!(recent.len(), CAPACITY);
        assert_eq!(recent[0].message, "event 5");
        assert_eq!(
            recent.last().unwrap().message,
            format!("event {}", CAPACITY + 4)
        );
    }
}
