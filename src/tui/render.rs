//! Drawing: `impl Widget for &App` lays the screen out for the terminal's size and draws each
//! panel from the snapshot (the ratatui-template way: the state knows nothing of drawing).
//!
//! Every string taken from the snapshot goes through [`clean`] before it reaches a widget.

use super::acme::acme_line;
use super::app::App;
use super::cluster::cluster_line;
use super::header::{draw_footer, header_lines};
use super::panels::{draw_events, draw_rate_limit, draw_sparkline};
use super::sanitize::clean;
use super::table::backends_table;
use crate::status::snapshot::Snapshot;
use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::Stylize;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Widget, Wrap};

/// At this width and above the rate-limit panel and the sparkline sit side by side.
const WIDE: u16 = 120;
/// At this height and above the rate-limit panel and the sparkline get taller.
const TALL: u16 = 40;
/// Rows always left to the events panel (borders + one event) before the backends table grows.
const EVENTS_MIN_HEIGHT: u16 = 3;

/// The whole dashboard.
impl Widget for &App {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let [body, footer] =
            Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(area);
        match self.snapshot() {
            Some(snapshot) => draw_snapshot(snapshot, self.selected(), body, buf),
            None => draw_waiting(self, body, buf),
        }
        draw_footer(self, footer, buf);
    }
}

/// The first screen, before any snapshot arrived.
fn draw_waiting(app: &App, area: Rect, buf: &mut Buffer) {
    let mut lines = vec![
        Line::from(format!("Aegis — {}", clean(app.source_label()))).bold(),
        Line::from(""),
        Line::from("waiting for data…"),
    ];
    if let Some(error) = app.error() {
        lines.push(Line::from(clean(error)).red());
    }
    let height = u16::try_from(lines.len()).unwrap_or(u16::MAX);
    let [_, middle, _] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(height),
        Constraint::Fill(1),
    ])
    .areas(area);
    let text = Paragraph::new(lines)
        .alignment(Alignment::Center)
        .wrap(Wrap { trim: true });
    text.render(middle, buf);
}

/// The dashboard proper: header, backends, rate limit, sparkline, events.
fn draw_snapshot(snapshot: &Snapshot, selected: usize, area: Rect, buf: &mut Buffer) {
    let wide = area.width >= WIDE;
    let tall = area.height >= TALL;
    // Narrow: rate panel (2 lines) and sparkline stacked. Wide: side by side, 4 lines of text.
    let middle_height = match (wide, tall) {
        (true, true) => 10,
        (true, false) => 6,
        (false, true) => 4 + 6,
        (false, false) => 4 + 4,
    };
    let header_height =
        2 + u16::from(snapshot.cluster.is_some()) + u16::from(!snapshot.acme.is_empty());
    let rows = u16::try_from(snapshot.backends.len().max(1)).unwrap_or(u16::MAX);
    let room = area
        .height
        .saturating_sub(header_height + middle_height + EVENTS_MIN_HEIGHT);
    let backends_height = rows.saturating_add(3).min(room).max(3);
    let [header, backends, middle, events] = Layout::vertical([
        Constraint::Length(header_height),
        Constraint::Length(backends_height),
        Constraint::Length(middle_height),
        Constraint::Min(0),
    ])
    .areas(area);

    let mut header_text = header_lines(snapshot, wide);
    header_text.extend(snapshot.cluster.as_ref().map(cluster_line));
    header_text.extend((!snapshot.acme.is_empty()).then(|| acme_line(&snapshot.acme)));
    Paragraph::new(header_text).render(header, buf);
    backends_table(&snapshot.backends, selected, backends).render(backends, buf);
    if wide {
        let [rate, spark] =
            Layout::horizontal([Constraint::Length(60), Constraint::Min(0)]).areas(middle);
        draw_rate_limit(&snapshot.rate_limit, true, rate, buf);
        draw_sparkline(&snapshot.requests_per_sec_history, spark, buf);
    } else {
        let [rate, spark] =
            Layout::vertical([Constraint::Length(4), Constraint::Min(0)]).areas(middle);
        draw_rate_limit(&snapshot.rate_limit, false, rate, buf);
        draw_sparkline(&snapshot.requests_per_sec_history, spark, buf);
    }
    draw_events(&snapshot.events, events, buf);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::snapshot::{BackendSnapshot, EventSnapshot, RateLimitSnapshot, Totals};
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    fn backend(url: &str, healthy: bool, breaker: &str, warmup: u8) -> BackendSnapshot {
        BackendSnapshot {
            url: url.into(),
            weight: 2,
            effective_weight: 2.0 * f64::from(warmup) / 100.0,
            warmup_percent: warmup,
            healthy,
            breaker: breaker.into(),
            ..BackendSnapshot::default()
        }
    }

    fn three_backends() -> Snapshot {
        let mut history: Vec<u64> = (0..60).collect();
        history[59] = 120;
        Snapshot {
            version: "0.1.0".into(),
            listen: "0.0.0.0:8080".into(),
            uptime_secs: 3_723.0,
            draining: false,
            totals: Totals {
                requests: 98_765,
                requests_per_sec: 42.5,
                in_flight: 7,
                ..Totals::default()
            },
            backends: vec![
                BackendSnapshot {
                    requests_per_sec: 31.5,
                    p50_ms: Some(12.0),
                    p95_ms: Some(45.2),
                    p99_ms: Some(88.8),
                    error_rate: 0.002,
                    in_flight: 4,
                    ..backend("http://10.0.0.1:8080", true, "closed", 100)
                },
                BackendSnapshot {
                    error_rate: 1.0,
                    ..backend("http://10.0.0.2:8080", false, "open", 100)
                },
                BackendSnapshot {
                    requests_per_sec: 6.25,
                    p95_ms: Some(130.5),
                    ..backend("http://10.0.0.3:8080", true, "half-open", 50)
                },
            ],
            rate_limit: RateLimitSnapshot {
                current_rate: 80.0,
                burst: 20,
                min_rate: 10.0,
                max_rate: 200.0,
                adaptive_enabled: true,
                last_decision: "reduce".into(),
                last_reason: "p95 above threshold".into(),
                p95_ms: Some(250.0),
                threshold_ms: 200.0,
                limited_per_sec: 3.0,
                limited_clients: 9,
                ..RateLimitSnapshot::default()
            },
            requests_per_sec_history: history,
            events: vec![
                EventSnapshot {
                    at_unix: 1_704_114_855,
                    level: "info".into(),
                    message: "older event".into(),
                },
                EventSnapshot {
                    at_unix: 1_704_114_900,
                    level: "error".into(),
                    message: "breaker opened for http://10.0.0.2:8080".into(),
                },
            ],
            ..Snapshot::default()
        }
    }

    /// Renders `app` at `width`×`height` and returns the screen, one line per row.
    fn screen(app: &App, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
        terminal
            .draw(|frame| frame.render_widget(app, frame.area()))
            .expect("draw");
        let buffer = terminal.backend().buffer();
        (0..height)
            .map(|y| {
                (0..width)
                    .map(|x| buffer[(x, y)].symbol())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn app_with(snapshot: Snapshot) -> App {
        let mut app = App::new("local".into());
        app.update(Ok(snapshot));
        app
    }

    /// Every `|`-separated needle of `expected` is somewhere in `text`.
    fn assert_shows(text: &str, expected: &str) {
        for needle in expected.split('|') {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }

    /// Each backend's screen line shows its `|`-separated needles.
    fn assert_rows(text: &str, rows: [(&str, &str); 3]) {
        for (url, expected) in rows {
            assert_shows(row(text, url), expected);
        }
    }

    /// The screen line of the backend whose URL starts with `url`.
    fn row<'a>(text: &'a str, url: &str) -> &'a str {
        let found = text.lines().find(|line| line.contains(url));
        found.unwrap_or_else(|| panic!("no row for {url} in\n{text}"))
    }

    #[test]
    fn eighty_by_twenty_four_shows_the_essentials() {
        let text = screen(&app_with(three_backends()), 80, 24);
        assert_shows(
            &text,
            "Aegis 0.1.0|0.0.0.0:8080|1h02m03s|98765|42.5|in-flight 7",
        );
        assert_shows(&text, "health|breaker|warm-up|req/s|P95 ms|err%");
        assert_rows(
            &text,
            [
                (
                    "http://10.0.0.1:8080",
                    " healthy |closed|100%|31.5|45.2|0.2%",
                ),
                (
                    "http://10.0.0.2:8080",
                    "unhealthy|open |100%|0.0| - |100.0%",
                ),
                (
                    "http://10.0.0.3:8080",
                    " healthy |half-open|50% ↑|6.2|130.5",
                ),
            ],
        );
        assert_shows(
            &text,
            "80.0/s|burst 20|250.0|last reduce: p95 above threshold|429/s 3.0",
        );
        assert_shows(
            &text,
            "13:15:00 ERROR breaker opened|13:14:15 INFO  older event|q quit",
        );
        let newest = text.find("13:15:00").expect("newest event shown");
        let oldest = text.find("13:14:15").expect("oldest event shown");
        assert!(newest < oldest, "events not newest first:\n{text}");
        // The less important columns are dropped at 80 columns.
        assert!(!text.contains("P99 ms"), "{text}");
    }

    #[test]
    fn connections_and_local_errors_are_shown() {
        let mut snapshot = three_backends();
        snapshot.capacity.client_connections = 412;
        snapshot.capacity.max_connections = 415;
        let errors = &mut snapshot.capacity.local_resource_errors;
        errors.insert("process_files".into(), 9);
        assert_shows(
            &screen(&app_with(snapshot), 80, 24),
            "conns 412/415|LOCAL ERRORS 9",
        );
    }

    #[test]
    fn wide_terminal_shows_every_column_and_more() {
        let text = screen(&app_with(three_backends()), 160, 48);
        assert_shows(&text, "weight|eff.w|P50 ms|P95 ms|P99 ms|err%|in-flight");
        assert_rows(
            &text,
            [
                (
                    "http://10.0.0.1:8080",
                    " healthy |closed|100%|31.5|12.0|45.2|88.8|0.2%",
                ),
                ("10.0.0.2", "unhealthy|open |100.0%"),
                (
                    "http://10.0.0.3:8080",
                    " healthy |half-open|50% ↑| 1.0 |6.2|130.5",
                ),
            ],
        );
        assert_shows(
            &text,
            "last 60s|peak 120|limited clients 9|refused|breaker opened",
        );
    }

    #[test]
    fn draining_is_highlighted() {
        let snapshot = Snapshot {
            draining: true,
            ..three_backends()
        };
        assert_shows(&screen(&app_with(snapshot), 80, 24), "DRAINING");
    }

    #[test]
    fn empty_snapshot_renders_at_every_size() {
        let app = app_with(Snapshot::default());
        for (width, height) in [(80, 24), (160, 48), (20, 5), (1, 1)] {
            screen(&app, width, height);
        }
        assert_shows(&screen(&app, 80, 24), "no backends|no events yet|q quit");
        screen(&app_with(three_backends()), 20, 5);
    }

    #[test]
    fn waiting_screen_before_first_snapshot_shows_the_error() {
        let mut app = App::new("remote 127.0.0.1:9100".into());
        assert_shows(&screen(&app, 80, 24), "waiting for data…|q quit");
        app.update(Err(
            "cannot reach 127.0.0.1:9100: connection refused — retrying".into(),
        ));
        assert_shows(
            &screen(&app, 80, 24),
            "waiting for data…|connection refused",
        );
        screen(&app, 20, 5);
    }

    #[test]
    fn failed_refresh_keeps_last_data_and_shows_the_error() {
        let mut app = app_with(three_backends());
        app.update(Err(
            "cannot reach 127.0.0.1:9100: connection refused — retrying".into(),
        ));
        assert_shows(
            &screen(&app, 80, 24),
            "http://10.0.0.1:8080|cannot reach 127.0.0.1:9100: connection refused",
        );
    }

    #[test]
    fn escape_sequences_from_the_snapshot_never_reach_the_screen() {
        let evil = "http://x\x1b[31mEVIL\x1b]0;title\x07";
        let mut snapshot = three_backends();
        snapshot.version = "\x1b[2J".into();
        snapshot.backends[0].url = evil.into();
        snapshot.events[1].message = evil.into();
        snapshot.rate_limit.last_reason = "\u{9b}31m".into();
        let mut app = app_with(snapshot);
        app.update(Err("\x1b]52;c;aGk=\x07".into()));
        for (width, height) in [(80, 24), (160, 48)] {
            let text = screen(&app, width, height);
            assert!(
                !text.chars().any(|c| c.is_control() && c != '\n'),
                "{text:?}"
            );
            assert_shows(&text, "EVIL");
        }
    }
}
