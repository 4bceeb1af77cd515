//! The policy of the adaptive loop (§5.2), pure: from one interval's P95 upstream latency and the
//! current rate, whether the rate tightens, relaxes or holds. The per-client loop
//! (`adaptive`) and the per-pool loop (`pool_scale`) both apply it.

use crate::config::AdaptiveSettings;

/// What an evaluation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Reduce,
    Recover,
    Hold,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Reduce => "reduce",
            Decision::Recover => "recover",
            Decision::Hold => "hold",
        }
    }
}

/// The outcome of one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub rate: f64,
    pub decision: Decision,
    pub reason: String,
}

/// The policy of §5.2. `p95_ms` is `None` when the interval had no samples; `last_reduced` is
/// whether the previous evaluation reduced (hysteresis: never two reductions in a row).
pub fn decide(
    p95_ms: Option<f64>,
    rate: f64,
    last_reduced: bool,
    cfg: &AdaptiveSettings,
) -> Evaluation {
    let threshold = cfg.latency_threshold.as_secs_f64() * 1000.0;
    let hold = |reason: String| Evaluation {
        rate,
        decision: Decision::Hold,
        reason,
    };
    let Some(p95) = p95_ms else {
        return hold("no upstream samples in the interval".into());
    };
    if p95 > threshold {
        if last_reduced {
            return hold(format!(
                "P95 {p95:.0}ms above {threshold:.0}ms, but the previous evaluation reduced"
            ));
        }
        let new = (rate * cfg.reduction_factor).max(cfg.min_rate);
        if new >= rate {
            return hold(format!(
                "P95 {p95:.0}ms above {threshold:.0}ms; already at min_rate"
            ));
        }
        return Evaluation {
            rate: new,
            decision: Decision::Reduce,
            reason: format!("P95 {p95:.0}ms above {threshold:.0}ms"),
        };
    }
    if p95 < 0.7 * threshold {
        let new = (rate * cfg.recovery_factor).min(cfg.max_rate);
        if new <= rate {
            return hold(format!("P95 {p95:.0}ms healthy; already at max_rate"));
        }
        return Evaluation {
            rate: new,
            decision: Decision::Recover,
            reason: format!("P95 {p95:.0}ms below 70% of {threshold:.0}ms"),
        };
    }
    hold(format!("P95 {p95:.0}ms within the band"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> AdaptiveSettings {
        AdaptiveSettings::default()
    }

    #[test]
    fn decision_table() {
        let c = cfg();
        let table: [(Option<f64>, f64, bool, f64, Decision); 10] = [
            (Some(600.0), 100.0, false, 80.0, Decision::Reduce),
            (Some(600.0), 100.0, true, 100.0, Decision::Hold), // hysteresis
            (Some(600.0), 11.0, false, 10.0, Decision::Reduce), // clamped at min
            (Some(600.0), 10.0, false, 10.0, Decision::Hold),  // at min already
            (Some(500.0), 100.0, false, 100.0, Decision::Hold), // at threshold: band
            (Some(350.0), 100.0, false, 100.0, Decision::Hold), // exactly 70 %: band
            (
                Some(349.0),
                100.0,
                false,
                110.0000000000001,
                Decision::Recover,
            ),
            (Some(10.0), 480.0, true, 500.0, Decision::Recover), // clamped at max
            (Some(10.0), 500.0, false, 500.0, Decision::Hold),   // at max already
            (None, 100.0, true, 100.0, Decision::Hold),          // no samples
        ];
        for (p95, rate, last_reduced, want_rate, want) in table {
            let e = decide(p95, rate, last_reduced, &c);
            assert_eq!(
                e.decision, want,
                "{p95:?} {rate} {last_reduced}: {}",
                e.reason
            );
            assert!(
                (e.rate - want_rate).abs() < 1e-9,
                "{p95:?} {rate}: {}",
                e.rate
            );
        }
    }

    #[test]
    fn sustained_latency_steps_down_without_two_reductions_in_a_row() {
        let c = cfg();
        let (mut rate, mut last_reduced) = (100.0, false);
        let mut decisions = Vec::new();
        for _ in 0..40 {
            let e = decide(Some(900.0), rate, last_reduced, &c);
            last_reduced = e.decision == Decision::Reduce;
            rate = e.rate;
            decisions.push(e.decision);
        }
        assert_eq!(rate, 10.0);
        assert!(decisions
            .windows(2)
            .all(|w| !(w[0] == Decision::Reduce && w[1] == Decision::Reduce)));
    }
}
