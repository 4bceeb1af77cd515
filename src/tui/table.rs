//! The backends table, with columns chosen by priority so the most important ones survive at 80
//! columns and the rest appear when the terminal is wider. With named pools (§17) each pool has a
//! heading line summing its backends in the same columns (up count, req/s, P95, errors,
//! in-flight); the table scrolls to keep the selected line in view. (Just over 400 lines: one
//! declaration per column.)

use super::format::{ellipsize, millis, number, percentage};
use super::rows::Item;
use super::sanitize::clean;
use crate::status::snapshot::{BackendSnapshot, PoolSnapshot, Snapshot};
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
    /// The pool heading's cell in this column (blank where a sum means nothing).
    pool_cell: fn(&PoolSnapshot) -> (String, Style),
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
        pool_cell: blank,
    },
    Column {
        title: "eff.w",
        width: 6,
        priority: 11,
        numeric: true,
        cell: effective_weight,
        pool_cell: blank,
    },
    Column {
        title: "health",
        width: 9,
        priority: 1,
        numeric: false,
        cell: health,
        pool_cell: pool_up,
    },
    Column {
        title: "breaker",
        width: 9,
        priority: 2,
        numeric: false,
        cell: breaker,
        pool_cell: blank,
    },
    Column {
        title: "warm-up",
        width: 7,
        priority: 3,
        numeric: false,
        cell: warmup,
        pool_cell: blank,
    },
    Column {
        title: "req/s",
        width: 7,
        priority: 4,
        numeric: true,
        cell: requests_per_sec,
        pool_cell: pool_requests_per_sec,
    },
    Column {
        title: "P50 ms",
        width: 7,
        priority: 9,
        numeric: true,
        cell: p50,
        pool_cell: blank,
    },
    Column {
        title: "P95 ms",
        width: 7,
        priority: 5,
        numeric: true,
        cell: p95,
        pool_cell: pool_p95,
    },
    Column {
        title: "P99 ms",
        width: 7,
        priority: 8,
        numeric: true,
        cell: p99,
        pool_cell: blank,
    },
    Column {
        title: "err%",
        width: 6,
        priority: 6,
        numeric: true,
        cell: error_rate,
        pool_cell: pool_error_rate,
    },
    Column {
        title: "in-flight",
        width: 9,
        priority: 7,
        numeric: true,
        cell: in_flight,
        pool_cell: pool_in_flight,
    },
];

fn blank(_: &PoolSnapshot) -> (String, Style) {
    plain(String::new())
}

/// `3/4 up`: green when all are up, yellow when some are, red `0/4 down` when none is.
fn pool_up(p: &PoolSnapshot) -> (String, Style) {
    let total = p.backends.len();
    match p.up {
        0 => (
            format!("0/{total} down"),
            Style::new().fg(Color::Red).bold(),
        ),
        up if up >= total => (format!("{up}/{total} up"), Style::new().fg(Color::Green)),
        up => (format!("{up}/{total} up"), Style::new().fg(Color::Yellow)),
    }
}

fn pool_requests_per_sec(p: &PoolSnapshot) -> (String, Style) {
    plain(number(p.requests_per_sec))
}

fn pool_p95(p: &PoolSnapshot) -> (String, Style) {
    plain(millis(p.p95_ms))
}

fn pool_error_rate(p: &PoolSnapshot) -> (String, Style) {
    (percentage(p.error_rate), error_style(p.error_rate))
}

fn pool_in_flight(p: &PoolSnapshot) -> (String, Style) {
    plain(p.in_flight.to_string())
}

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

fn error_style(rate: f64) -> Style {
    match rate {
        rate if rate >= 0.05 => Style::new().fg(Color::Red),
        rate if rate >= 0.01 => Style::new().fg(Color::Yellow),
        _ => Style::new(),
    }
}

fn error_rate(b: &BackendSnapshot) -> (String, Style) {
    (percentage(b.error_rate), error_style(b.error_rate))
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

/// The first line shown when `len` lines share `shown` rows: the least scrolling that keeps
/// the `selected` line in view.
fn scroll_offset(len: usize, shown: usize, selected: usize) -> usize {
    if shown == 0 {
        return 0;
    }
    selected
        .min(len.saturating_sub(1))
        .saturating_sub(shown - 1)
}

/// The backends table for `area` (borders included): the lines `items` of `snapshot`, scrolled
/// so that the `selected` line (reversed) is in view.
pub(super) fn backends_table(
    snapshot: &Snapshot,
    items: &[Item],
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

    let grouped = items.iter().any(|i| matches!(i, Item::Pool(_)));
    let shown = usize::from(area.height.saturating_sub(3));
    let offset = scroll_offset(items.len(), shown, selected);
    let rows: Vec<Row> = if items.is_empty() {
        vec![Row::new(
            [Cell::from("no backends in snapshot").dark_gray()],
        )]
    } else {
        items
            .iter()
            .enumerate()
            .skip(offset)
            .take(shown.max(1))
            .map(|(i, item)| {
                let row = match *item {
                    Item::Pool(p) => {
                        let pool = &snapshot.pools[p];
                        // Collapsed: its backends do not follow its heading.
                        let expanded = matches!(items.get(i + 1),
                            Some(Item::Backend(b)) if snapshot.backends[*b].pool == pool.name);
                        pool_row(pool, expanded, &columns, url_width)
                    }
                    Item::Backend(b) => {
                        backend_row(&snapshot.backends[b], grouped, &columns, url_width)
                    }
                };
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
    let count = snapshot.backends.len();
    let pools = items.iter().filter(|i| matches!(i, Item::Pool(_))).count();
    let mut title = if grouped {
        format!(" Backends ({count} in {pools} pools) ")
    } else {
        format!(" Backends ({count}) ")
    };
    if items.len() > shown {
        let last = (offset + shown).min(items.len());
        title.push_str(&format!("lines {}-{last} of {} ", offset + 1, items.len()));
    }
    Table::new(rows, widths)
        .header(header)
        .column_spacing(SPACING)
        .block(Block::bordered().title(title))
}

/// A backend's line: its URL (indented under its pool's heading when `grouped`), then the
/// visible columns.
fn backend_row(
    backend: &BackendSnapshot,
    grouped: bool,
    columns: &[&Column],
    url_width: usize,
) -> Row<'static> {
    let name = if grouped {
        format!("  {}", clean(&backend.url))
    } else {
        clean(&backend.url)
    };
    let url = Cell::from(ellipsize(&name, url_width));
    Row::new(std::iter::once(url).chain(columns.iter().map(|c| {
        let (text, style) = (c.cell)(backend);
        aligned(text, style, c.numeric)
    })))
}

/// A pool's heading line: `▾ name` (`▸ name` when collapsed), then its sums in the visible
/// columns.
fn pool_row(
    pool: &PoolSnapshot,
    expanded: bool,
    columns: &[&Column],
    url_width: usize,
) -> Row<'static> {
    let marker = if expanded { '▾' } else { '▸' };
    // The pool's own adaptive rate (§17), as the web dashboard shows it: in the name's cell,
    // which has room the summed columns do not (a long name is cut first, at the end).
    let rate = pool
        .adaptive
        .as_ref()
        .map_or_else(String::new, |a| format!(" · limit {}/s", number(a.rate)));
    let name = Cell::from(ellipsize(
        &format!("{marker} {}{rate}", clean(&pool.name)),
        url_width,
    ));
    Row::new(std::iter::once(name).chain(columns.iter().map(|c| {
        let (text, style) = (c.pool_cell)(pool);
        aligned(text, style, c.numeric)
    })))
    .bold()
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
