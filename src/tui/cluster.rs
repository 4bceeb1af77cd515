//! The dashboard's cluster line (§13): Redis state, instances seen lately, lease holder, sync lag.

use super::format::number;
use super::panels::label;
use super::sanitize::clean;
use crate::status::snapshot::ClusterSnapshot;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

/// "cluster redis UP  instances 3  lease a:8080 (this)  lag 40 ms", red when Redis is down.
pub(super) fn cluster_line(cluster: &ClusterSnapshot) -> Line<'static> {
    let redis = if cluster.redis_up {
        Span::styled("UP", Style::new().fg(Color::Green))
    } else {
        Span::styled(
            " DOWN: local limits ",
            Style::new()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD),
        )
    };
    let lease = match &cluster.lease_holder {
        Some(holder) if *holder == cluster.instance => format!("{} (this)", clean(holder)),
        Some(holder) => clean(holder),
        None => "-".into(),
    };
    let lag = cluster
        .sync_lag_ms
        .map_or_else(|| "-".to_string(), |ms| format!("{} ms", number(ms)));
    Line::from(vec![
        label("cluster "),
        Span::raw(clean(&cluster.instance)),
        label("  redis "),
        redis,
        label("  instances "),
        Span::raw(cluster.instances.len().to_string()),
        label("  lease "),
        Span::raw(lease),
        label("  sync lag "),
        Span::raw(lag),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_who_decides_and_whether_redis_is_there() {
        let mut cluster = ClusterSnapshot {
            instance: "a:1".into(),
            redis_up: true,
            instances: vec!["a:1".into(), "b:2".into()],
            lease_holder: Some("a:1".into()),
            sync_lag_ms: Some(40.0),
            ..ClusterSnapshot::default()
        };
        let text = |c: &ClusterSnapshot| cluster_line(c).to_string();
        let shown = text(&cluster);
        for want in [
            "redis UP",
            "instances 2",
            "lease a:1 (this)",
            "sync lag 40.0 ms",
        ] {
            assert!(shown.contains(want), "{want} in {shown}");
        }
        cluster.redis_up = false;
        assert!(text(&cluster).contains("DOWN: local limits"));
    }
}
