//! Drawing: `impl Widget for &App` lays the screen out for the terminal's size and draws each
//! panel from the snapshot (the ratatui-template way: the state knows nothing of drawing).
//!
//! Every string taken from the snapshot goes through [`clean`] before it reaches a widget.

use super::acme::acme_line;
use super::app::App;
use super::cluster::cluster_line;
use super::header::{draw_footer, header_lines};
use super::panels::{draw_events, draw_rate_limit, draw_sparkline};
use super::rows::Item;
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
            Some(snapshot) => draw_snapshot(snapshot, &self.items(), self.selected(), body, buf),
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

/// The dashboard proper: header, backends (the lines `items`, see `rows`), rate limit, sparkline,
/// events.
fn draw_snapshot(
    snapshot: &Snapshot,
    items: &[Item],
    selected: usize,
    area: Rect,
    buf: &mut Buffer,
) {
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
    let rows = u16::try_from(items.len().max(1)).unwrap_or(u16::MAX);
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
    backends_table(snapshot, items, selected, backends).render(backends, buf);
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
#[path = "render_tests.rs"]
mod tests;
