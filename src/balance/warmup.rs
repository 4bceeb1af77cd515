//! Warm-up (§4.3): a backend that comes back gets 25 %, 50 %, 75 % and then 100 % of its weight,
//! one step after every three consecutive successful health probes.

/// Successful probes in a row that move warm-up one step.
pub const PROBES_PER_STEP: u8 = 3;
/// The level at full weight; levels are quarters.
pub const FULL: u8 = 4;

/// A backend's warm-up level, in quarters of its weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarmUp {
    level: u8,
    streak: u8,
}

impl WarmUp {
    /// Full weight: the state at startup (no warm-up at startup).
    pub fn full() -> Self {
        WarmUp {
            level: FULL,
            streak: 0,
        }
    }

    /// Restart at a quarter of the weight: the backend just came back.
    pub fn restart(&mut self) {
        self.level = 1;
        self.streak = 0;
    }

    /// Current level, 1..=4 quarters.
    pub fn level(&self) -> u8 {
        self.level
    }

    pub fn percent(&self) -> u8 {
        self.level * 25
    }

    pub fn is_warming(&self) -> bool {
        self.level < FULL
    }

    /// Counts a health probe; returns the new level when it stepped up.
    pub fn observe_probe(&mut self, success: bool) -> Option<u8> {
        if !self.is_warming() {
            return None;
        }
        if !success {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        if self.streak < PROBES_PER_STEP {
            return None;
        }
        self.streak = 0;
        self.level += 1;
        Some(self.level)
    }

    /// The weight to schedule with, in quarters: `weight × level`, so that a full-weight backend
    /// counts `4 × weight` and one at 25 % counts `weight`.
    pub fn scaled_weight(&self, weight: u32) -> u32 {
        weight * self.level as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_up_every_three_good_probes() {
        let mut w = WarmUp::full();
        assert_eq!(w.observe_probe(true), None, "no warm-up at startup");
        w.restart();
        assert_eq!(w.percent(), 25);
        let steps: Vec<Option<u8>> = (0..9).map(|_| w.observe_probe(true)).collect();
        assert_eq!(
            steps,
            vec![
                None,
                None,
                Some(2),
                None,
                None,
                Some(3),
                None,
                None,
                Some(4)
            ]
        );
        assert!(!w.is_warming());
        assert_eq!(w.scaled_weight(2), 8);
    }

    #[test]
    fn a_failed_probe_restarts_the_streak() {
        let mut w = WarmUp::full();
        w.restart();
        w.observe_probe(true);
        w.observe_probe(true);
        assert_eq!(w.observe_probe(false), None);
        assert_eq!(w.observe_probe(true), None);
        assert_eq!(w.observe_probe(true), None);
        assert_eq!(w.observe_probe(true), Some(2));
        assert_eq!(w.scaled_weight(3), 6);
    }
}
