//! The dashboard's ACME line (§18): per managed certificate, its state, end of validity and
//! failures; red while orders fail.

use super::panels::label;
use super::sanitize::clean;
use crate::acme::schedule::show_time;
use crate::status::snapshot::AcmeSnapshot;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};

/// "acme example.com valid until 2027-03-01T00:00:00Z  issued 1", or "… retrying (3 failures)".
pub(super) fn acme_line(certificates: &[AcmeSnapshot]) -> Line<'static> {
    let mut spans = vec![label("acme")];
    for certificate in certificates {
        let name = certificate.domains.first().map_or("-", String::as_str);
        spans.push(Span::raw(format!("  {} ", clean(name))));
        let failing = certificate.consecutive_failures > 0;
        let state = if failing {
            format!(
                "{} ({} failure{})",
                certificate.state,
                certificate.consecutive_failures,
                if certificate.consecutive_failures == 1 {
                    ""
                } else {
                    "s"
                }
            )
        } else {
            certificate.state.clone()
        };
        let color = if failing { Color::Red } else { Color::Green };
        spans.push(Span::styled(clean(&state), Style::new().fg(color)));
        if let Some(not_after) = certificate.not_after_unix {
            spans.push(label(" until "));
            spans.push(Span::raw(show_time(not_after)));
        }
    }
    Line::from(spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_state_expiry_and_failures() {
        let mut certificate = AcmeSnapshot {
            domains: vec!["a.test".into(), "b.test".into()],
            state: "valid".into(),
            not_after_unix: Some(1_800_000_000),
            ..AcmeSnapshot::default()
        };
        let shown = acme_line(std::slice::from_ref(&certificate)).to_string();
        assert_eq!(shown, "acme  a.test valid until 2027-01-15T08:00:00Z");
        certificate.state = "retrying".into();
        certificate.consecutive_failures = 3;
        let shown = acme_line(&[certificate]).to_string();
        assert!(shown.contains("a.test retrying (3 failures)"), "{shown}");
    }
}
