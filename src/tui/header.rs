//! The header (version, listen address, uptime, totals) and the footer (keys, then where the data
//! comes from or why the last refresh failed).

use super::app::App;
use super::format::{humanize_uptime, number};
use super::panels::label;
use super::rows::grouped;
use super::sanitize::clean;
use crate::status::snapshot::Snapshot;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

pub(super) fn header_lines(snapshot: &Snapshot, wide: bool) -> Vec<Line<'static>> {
    let totals = &snapshot.totals;
    let mut first = vec![
        Span::styled(
            format!("Aegis {}", clean(&snapshot.version)),
            Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
        ),
        label("  listen "),
        Span::raw(clean(&snapshot.listen)),
        label("  up "),
        Span::raw(humanize_uptime(snapshot.uptime_secs)),
        label("  config "),
        Span::raw(format!("gen {}", snapshot.config.generation)),
    ];
    // §12.1: the last reload, red when it was refused (the old configuration still serves).
    if let Some(last) = &snapshot.config.last_reload {
        let style = if last.result == "applied" {
            Style::new().fg(Color::Green)
        } else {
            Style::new()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD)
        };
        first.push(label(" last reload "));
        first.push(Span::styled(
            format!(" {} ({}) ", clean(&last.result), clean(&last.trigger)),
            style,
        ));
    }
    if snapshot.draining {
        first.push(Span::raw("  "));
        first.push(Span::styled(
            " DRAINING ",
            Style::new()
                .fg(Color::Black)
                .bg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
        ));
    }
    let capacity = &snapshot.capacity;
    let local_errors: u64 = capacity.local_resource_errors.values().sum();
    if local_errors > 0 {
        // Aegis's own shortage (descriptors, ports): the operator's problem, not a backend's.
        first.push(Span::raw("  "));
        first.push(Span::styled(
            format!(" LOCAL ERRORS {local_errors} "),
            Style::new()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD),
        ));
    }
    let mut second = vec![
        label("requests "),
        Span::raw(totals.requests.to_string()),
        label("  req/s "),
        Span::raw(number(totals.requests_per_sec)).bold(),
        label("  in-flight "),
        Span::raw(totals.in_flight.to_string()),
        label("  ws "),
        Span::raw(totals.websocket_tunnels.to_string()),
        label("  conns "),
        Span::raw(format!(
            "{}/{}",
            capacity.client_connections, capacity.max_connections
        )),
    ];
    if wide {
        for (class, count) in &totals.responses {
            second.push(label(format!("  {}", clean(class))));
            second.push(Span::raw(format!(" {count}")));
        }
        let refused: u64 = totals.refusals.values().sum();
        second.push(label("  refused "));
        second.push(Span::raw(refused.to_string()));
    }
    vec![Line::from(first), Line::from(second)]
}

/// The keys, then the last refresh error in red, or the answer to the last drain/enable, or
/// where the data comes from.
pub(super) fn draw_footer(app: &App, area: Rect, buf: &mut Buffer) {
    let key = |k: &'static str| Span::styled(k, Style::new().fg(Color::Yellow).bold());
    // Below 100 columns the keys go without their words, leaving room for the message.
    let words = area.width >= 100;
    let word = |w: &'static str| Span::raw(if words { w } else { " " });
    let mut spans = vec![
        Span::raw(" "),
        key("q"),
        Span::raw(" quit "),
        key("↑↓"),
        word(" select "),
        key("d"),
        word(" drain "),
        key("e"),
        word(" enable  "),
    ];
    // §17: with named pools, `c` collapses the selected pool to its heading (`C`: every pool).
    // Named even below 100 columns: the key is new and not obvious.
    if app.snapshot().is_some_and(grouped) {
        if words {
            spans.extend([
                key("c"),
                Span::raw(" collapse "),
                key("C"),
                Span::raw(" all  "),
            ]);
        } else {
            spans.extend([key("c/C"), Span::raw(" collapse ")]);
        }
    }
    if !words {
        spans.push(Span::raw(" "));
    }
    let notice = app.notice().map(|n| n.as_deref().map_err(String::as_str));
    match (app.error(), notice) {
        (Some(error), _) | (None, Some(Err(error))) => spans.push(Span::styled(
            clean(error),
            Style::new().fg(Color::Red).bold(),
        )),
        (None, Some(Ok(done))) => {
            spans.push(Span::styled(clean(done), Style::new().fg(Color::Green)))
        }
        (None, None) => spans.push(label(clean(app.source_label()))),
    }
    Paragraph::new(Line::from(spans)).render(area, buf);
}
