//! The backends table, with columns chosen by priority so the most important ones survive at 80
//! columns and the rest appear when the terminal is wider.

use super::format::{ellipsize, millis, number, percentage};
use super::sanitize::clean;
use crate::status::snapshot::BackendSnapshot;
use ratatui::layout::{Alignment, Constraint, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, Row, Table};

/// The URL column never gets narrower than this while other columns are added.
const URL_MIN_WIDTH: u16 = 24;
/// Space between two columns (ratatui's default).
const SPACING: u16 = 1;

/// One column besides the URL. `priority` 1 is dropped last.
struct Column {
    title: &'static str,
    width: u16,
    priority: u8,
    numeric: bool,
    cell: fn(&BackendSnapshot) -> (String, Style),
}

/// In display order. At 80 columns the first seven by priority fit: health, breaker, warm-up,
/// req/s, P95, error rate.
const COLUMNS: [Column; 11] = [
    Column {
        title: "weight",
        width: 6,
        priority: 10,
        numeric: true,
        cell: weight,
    },
    Column {
        title: "eff.w",
        width: 6,
        priority: 11,
        numeric: true,
        cell: effective_weight,
    },
    Column {
        title: "health",
        width: 9,
        priority: 1,
        numeric: false,
        cell: health,
    },
    Column {
        title: "breaker",
        width: 9,
        priority: 2,
        numeric: false,
        cell: breaker,
    },
    Column {
        title: "warm-up",
        width: 7,
        priority: 3,
        numeric: false,
        cell: warmup,
    },
    Column {
        title: "req/s",
        width: 7,
        priority: 4,
        numeric: true,
        cell: requests_per_sec,
    },
    Column {
        title: "P50 ms",
        width: 7,
        priority: 9,
        numeric: true,
        cell: p50,
    },
    Column {
        title: "P95 ms",
        width: 7,
        priority: 5,
        numeric: true,
        cell: p95,
    },
    Column {
        title: "P99 ms",
        width: 7,
        priority: 8,
        numeric: true,
        cell: p99,
    },
    Column {
        title: "err%",
        width: 6,
        priority: 6,
        numeric: true,
        cell: error_rate,
    },
    Column {
        title: "in-flight",
        width: 9,
        priority: 7,
        numeric: true,
        cell: in_flight,
    },
];

fn plain(text: String) -> (String, Style) {
    (text, Style::new())
}

fn weight(b: &BackendSnapshot) -> (String, Style) {
    plain(b.weight.to_string())
}

fn effective_weight(b: &BackendSnapshot) -> (String, Style) {
    plain(number(b.effective_weight))
}

fn health(b: &BackendSnapshot) -> (String, Style) {
    if b.admin_state == "drained" {
        ("drained".into(), Style::new().fg(Color::Magenta).bold())
    } else if b.healthy {
        ("healthy".into(), Style::new().fg(Color::Green))
    } else {
        ("unhealthy".into(), Style::new().fg(Color::Red).bold())
    }
}

fn breaker(b: &BackendSnapshot) -> (String, Style) {
    let style = match b.breaker.as_str() {
        "closed" => Style::new().fg(Color::Green),
        "half-open" => Style::new().fg(Color::Yellow),
        "open" => Style::new().fg(Color::Red).bold(),
        _ => Style::new(),
    };
    (clean(&b.breaker), style)
}

fn warmup(b: &BackendSnapshot) -> (String, Style) {
    if b.warmup_percent >= 100 {
        plain("100%".into())
    } else {
        (
            format!("{}% ↑", b.warmup_percent),
            Style::new().fg(Color::Yellow),
        )
    }
}

fn requests_per_sec(b: &BackendSnapshot) -> (String, Style) {
    plain(number(b.requests_per_sec))
}

fn p50(b: &BackendSnapshot) -> (String, Style) {
    plain(millis(b.p50_ms))
}

fn p95(b: &BackendSnapshot) -> (String, Style) {
    plain(millis(b.p95_ms))
}

fn p99(b: &BackendSnapshot) -> (String, Style) {
    plain(millis(b.p99_ms))
}

fn error_rate(b: &BackendSnapshot) -> (String, Style) {
    let style = match b.error_rate {
        rate if rate >= 0.05 => Style::new().fg(Color::Red),
        rate if rate >= 0.01 => Style::new().fg(Color::Yellow),
        _ => Style::new(),
    };
    (percentage(b.error_rate), style)
}

fn in_flight(b: &BackendSnapshot) -> (String, Style) {
    plain(b.in_flight.to_string())
}

/// The columns that fit in `width`, most important first, returned in display order.
fn visible_columns(width: u16) -> Vec<&'static Column> {
    let mut by_priority: Vec<&Column> = COLUMNS.iter().collect();
    by_priority.sort_by_key(|column| column.priority);
    let mut budget = width.saturating_sub(URL_MIN_WIDTH);
    let mut chosen = Vec::new();
    for column in by_priority {
        let needed = column.width + SPACING;
        if needed > budget {
            break;
        }
        budget -= needed;
        chosen.push(column.title);
    }
    COLUMNS
        .iter()
        .filter(|column| chosen.contains(&column.title))
        .collect()
}

fn aligned(text: String, style: Style, numeric: bool) -> Cell<'static> {
    let line = Line::styled(text, style);
    Cell::from(if numeric {
        line.alignment(Alignment::Right)
    } else {
        line
    })
}

/// The backends table for `area` (borders included), the `selected` row reversed.
pub(super) fn backends_table(
    backends: &[BackendSnapshot],
    selected: usize,
    area: Rect,
) -> Table<'static> {
    let inner_width = area.width.saturating_sub(2);
    let columns = visible_columns(inner_width);
    let others: u16 = columns.iter().map(|c| c.width + SPACING).sum();
    let url_width = usize::from(inner_width.saturating_sub(others));

    let header = Row::new(
        std::iter::once(Cell::from("backend")).chain(
            columns
                .iter()
                .map(|c| aligned(c.title.into(), Style::new(), c.numeric)),
        ),
    )
    .style(Style::new().fg(Color::DarkGray).bold());

    let rows: Vec<Row> = if backends.is_empty() {
        vec![Row::new(
            [Cell::from("no backends in snapshot").dark_gray()],
        )]
    } else {
        backends
            .iter()
            .enumerate()
            .map(|(i, backend)| {
                // §17: a named pool's backends read `pool/URL` (the default pool's, the URL).
                let name = match backend.pool.as_str() {
                    "" | "default" => clean(&backend.url),
                    pool => clean(&format!("{pool}/{}", backend.url)),
                };
                let url = Cell::from(ellipsize(&name, url_width));
                let row = Row::new(std::iter::once(url).chain(columns.iter().map(|c| {
                    let (text, style) = (c.cell)(backend);
                    aligned(text, style, c.numeric)
                })));
                if i == selected {
                    row.reversed()
                } else {
                    row
                }
            })
            .collect()
    };

    let widths = std::iter::once(Constraint::Fill(1))
        .chain(columns.iter().map(|c| Constraint::Length(c.width)));
    let shown = usize::from(area.height.saturating_sub(3));
    let title = if backends.len() > shown {
        format!(" Backends ({}, {shown} shown) ", backends.len())
    } else {
        format!(" Backends ({}) ", backends.len())
    };
    Table::new(rows, widths)
        .header(header)
        .column_spacing(SPACING)
        .block(Block::bordered().title(title))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn titles(width: u16) -> Vec<&'static str> {
        visible_columns(width).iter().map(|c| c.title).collect()
    }

    #[test]
    fn eighty_columns_keep_the_important_columns() {
        assert_eq!(
            titles(78),
            ["health", "breaker", "warm-up", "req/s", "P95 ms", "err%"]
        );
    }

    #[test]
    fn wide_terminals_show_every_column() {
        assert_eq!(titles(158).len(), COLUMNS.len());
    }

    #[test]
    fn tiny_terminals_show_only_the_url() {
        assert!(titles(18).is_empty());
    }
}
