//! The lower panels: rate limit and adaptive control, the requests/s sparkline, and the events.

use super::format::{clock_utc, number};
use super::sanitize::clean;
use crate::status::snapshot::{EventSnapshot, RateLimitSnapshot};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Sparkline, Widget};
use std::borrow::Cow;

/// Dimmed text: field names and secondary information.
pub(super) fn label<'a>(text: impl Into<Cow<'a, str>>) -> Span<'a> {
    Span::styled(text, Style::new().fg(Color::DarkGray))
}

/// The rate-limit and adaptive panel: two lines when narrow, four when wide.
pub(super) fn draw_rate_limit(limit: &RateLimitSnapshot, wide: bool, area: Rect, buf: &mut Buffer) {
    let rate = vec![
        label("rate "),
        Span::raw(format!("{}/s", number(limit.current_rate))).bold(),
        label("  burst "),
        Span::raw(limit.burst.to_string()),
        label("  min "),
        Span::raw(number(limit.min_rate)),
        label(" max "),
        Span::raw(number(limit.max_rate)),
    ];
    let refused = vec![
        label("429/s "),
        Span::raw(number(limit.limited_per_sec)),
        label("  limited clients "),
        Span::raw(limit.limited_clients.to_string()),
    ];
    let (p95, decision) = if limit.adaptive_enabled {
        adaptive_spans(limit)
    } else {
        (vec![label("adaptive off")], Vec::new())
    };
    let lines = if wide {
        vec![rate, p95, decision, refused]
    } else {
        let mut first = rate;
        first.push(Span::raw("  "));
        first.extend(refused);
        let mut second = p95;
        if !decision.is_empty() {
            second.push(Span::raw("  "));
            second.extend(decision);
        }
        vec![first, second]
    };
    let lines: Vec<Line> = lines.into_iter().map(Line::from).collect();
    let title = if limit.adaptive_enabled {
        " Rate limit · adaptive "
    } else {
        " Rate limit "
    };
    Paragraph::new(lines)
        .block(Block::bordered().title(title))
        .render(area, buf);
}

/// "P95 123.4 / 200 ms" coloured against the threshold, and "last reduce: why".
fn adaptive_spans(limit: &RateLimitSnapshot) -> (Vec<Span<'static>>, Vec<Span<'static>>) {
    let p95_style = match limit.p95_ms {
        Some(p95) if p95 > limit.threshold_ms => Style::new().fg(Color::Red).bold(),
        // The hold band of §5.2: between 70 % of the threshold and the threshold.
        Some(p95) if p95 >= 0.7 * limit.threshold_ms => Style::new().fg(Color::Yellow),
        Some(_) => Style::new().fg(Color::Green),
        None => Style::new(),
    };
    let p95 = limit.p95_ms.map_or_else(|| "-".to_string(), number);
    let p95 = vec![
        label("P95 "),
        Span::styled(p95, p95_style),
        label(" / threshold "),
        Span::raw(format!("{} ms", number(limit.threshold_ms))),
    ];
    let decision_style = match limit.last_decision.as_str() {
        "reduce" => Style::new().fg(Color::Red),
        "recover" => Style::new().fg(Color::Green),
        _ => Style::new(),
    };
    let mut decision = vec![
        label("last "),
        Span::styled(clean(&limit.last_decision), decision_style),
    ];
    if !limit.last_reason.is_empty() {
        decision.push(label(": "));
        decision.push(Span::raw(clean(&limit.last_reason)));
    }
    (p95, decision)
}

/// Requests per second, newest at the right edge. Each second takes one column, or several when
/// the panel is wide enough to hold the whole minute more than once.
pub(super) fn draw_sparkline(history: &[u64], area: Rect, buf: &mut Buffer) {
    let block = Block::bordered();
    let inner = block.inner(area);
    let width = usize::from(inner.width);
    let shown = &history[history.len().saturating_sub(width)..];
    let stretch = if shown.is_empty() {
        1
    } else {
        (width / shown.len()).max(1)
    };
    let data: Vec<u64> = shown
        .iter()
        .flat_map(|&value| std::iter::repeat_n(value, stretch))
        .collect();
    let peak = shown.iter().copied().max().unwrap_or(0);
    let title = format!(" req/s · last {}s · peak {peak} ", shown.len());
    block.title(title).render(area, buf);
    if data.is_empty() {
        Paragraph::new(label("no data yet")).render(inner, buf);
        return;
    }
    let used = u16::try_from(data.len())
        .unwrap_or(u16::MAX)
        .min(inner.width);
    let chart = Rect {
        x: inner.x + inner.width - used,
        width: used,
        ..inner
    };
    let sparkline = Sparkline::default()
        .data(&data)
        .max(peak.max(1))
        .style(Style::new().fg(Color::Cyan));
    sparkline.render(chart, buf);
}

/// The latest events, newest first, as many as fit.
pub(super) fn draw_events(events: &[EventSnapshot], area: Rect, buf: &mut Buffer) {
    let block = Block::bordered().title(" Events · newest first · UTC ");
    let room = usize::from(block.inner(area).height);
    let lines: Vec<Line> = if events.is_empty() {
        vec![Line::from(label("no events yet"))]
    } else {
        events.iter().rev().take(room).map(event_line).collect()
    };
    Paragraph::new(lines).block(block).render(area, buf);
}

fn event_line(event: &EventSnapshot) -> Line<'static> {
    let level = clean(&event.level).to_uppercase();
    let style = match level.as_str() {
        "ERROR" => Style::new().fg(Color::Red).bold(),
        "WARN" => Style::new().fg(Color::Yellow),
        _ => Style::new().fg(Color::Blue),
    };
    Line::from(vec![
        label(clock_utc(event.at_unix)),
        Span::styled(format!(" {level:<5} "), style),
        Span::raw(clean(&event.message)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(width: u16, height: u16, draw: impl FnOnce(Rect, &mut Buffer)) -> Buffer {
        let area = Rect::new(0, 0, width, height);
        let mut buffer = Buffer::empty(area);
        draw(area, &mut buffer);
        buffer
    }

    fn text(buffer: &Buffer) -> String {
        let area = buffer.area;
        (0..area.height)
            .map(|y| {
                (0..area.width)
                    .map(|x| buffer[(x, y)].symbol())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The style of the first cell where `needle` starts on screen.
    fn style_of(buffer: &Buffer, needle: &str) -> Style {
        let width = usize::from(buffer.area.width);
        let screen: Vec<String> = text(buffer).lines().map(str::to_string).collect();
        let (y, line) = screen
            .iter()
            .enumerate()
            .find(|(_, line)| line.contains(needle))
            .unwrap_or_else(|| panic!("{needle:?} not on screen:\n{}", text(buffer)));
        let x = line[..line.find(needle).expect("found above")]
            .chars()
            .count();
        assert!(x < width);
        buffer[(x as u16, y as u16)].style()
    }

    fn adaptive(p95_ms: Option<f64>) -> RateLimitSnapshot {
        RateLimitSnapshot {
            current_rate: 50.0,
            burst: 10,
            min_rate: 5.0,
            max_rate: 100.0,
            adaptive_enabled: true,
            last_decision: "hold".into(),
            last_reason: "p95 within band".into(),
            p95_ms,
            threshold_ms: 200.0,
            ..RateLimitSnapshot::default()
        }
    }

    #[test]
    fn p95_above_threshold_is_red() {
        let buffer = render(80, 4, |a, b| {
            draw_rate_limit(&adaptive(Some(250.0)), false, a, b)
        });
        assert_eq!(style_of(&buffer, "250.0").fg, Some(Color::Red));
        let buffer = render(80, 4, |a, b| {
            draw_rate_limit(&adaptive(Some(50.0)), false, a, b)
        });
        assert_eq!(style_of(&buffer, "50.0 /").fg, Some(Color::Green));
        let shown = text(&buffer);
        assert!(shown.contains("last hold: p95 within band"), "{shown}");
    }

    #[test]
    fn adaptive_off_is_said() {
        let limit = RateLimitSnapshot {
            current_rate: 50.0,
            ..RateLimitSnapshot::default()
        };
        let shown = text(&render(60, 6, |a, b| draw_rate_limit(&limit, true, a, b)));
        assert!(shown.contains("adaptive off"), "{shown}");
        assert!(shown.contains("50.0/s"), "{shown}");
    }

    #[test]
    fn sparkline_keeps_the_newest_seconds_at_the_right() {
        // 28 columns inside the borders: the last 28 of 60 seconds, the peak at the right edge.
        let history: Vec<u64> = (1..=60).collect();
        let buffer = render(30, 3, |a, b| draw_sparkline(&history, a, b));
        assert_eq!(buffer[(28, 1)].symbol(), "█");
        assert!(
            text(&buffer).contains("last 28s · peak 60"),
            "{}",
            text(&buffer)
        );
        let empty = text(&render(30, 3, |a, b| draw_sparkline(&[], a, b)));
        assert!(empty.contains("no data yet"), "{empty}");
    }

    #[test]
    fn events_are_newest_first_and_limited_to_the_room() {
        let events: Vec<EventSnapshot> = (0..10)
            .map(|i| EventSnapshot {
                at_unix: 60 * i,
                level: if i % 2 == 0 { "warn" } else { "error" }.into(),
                message: format!("event {i}"),
            })
            .collect();
        let buffer = render(40, 5, |a, b| draw_events(&events, a, b));
        let shown = text(&buffer);
        let lines: Vec<&str> = shown.lines().collect();
        assert!(lines[1].contains("00:09:00 ERROR event 9"), "{shown}");
        assert!(lines[2].contains("00:08:00 WARN  event 8"), "{shown}");
        assert!(
            lines[3].contains("event 7") && !shown.contains("event 6"),
            "{shown}"
        );
        assert_eq!(style_of(&buffer, "ERROR").fg, Some(Color::Red));
        assert_eq!(style_of(&buffer, "WARN").fg, Some(Color::Yellow));
    }
}
