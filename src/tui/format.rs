//! Number, duration and time formatting for the dashboard, kept short to fit narrow columns.

use ratatui::text::Span;

/// Uptime as `45s`, `2m03s`, `1h02m03s` or `3d04h05m`.
pub(super) fn humanize_uptime(secs: f64) -> String {
    // `as` saturates: NaN and negatives become 0, huge values u64::MAX.
    let total = secs as u64;
    let (days, hours) = (total / 86_400, total / 3_600 % 24);
    let (minutes, seconds) = (total / 60 % 60, total % 60);
    match (days, total / 3_600, total / 60) {
        (d, _, _) if d > 0 => format!("{d}d{hours:02}h{minutes:02}m"),
        (_, h, _) if h > 0 => format!("{h}h{minutes:02}m{seconds:02}s"),
        (_, _, m) if m > 0 => format!("{m}m{seconds:02}s"),
        _ => format!("{seconds}s"),
    }
}

/// `HH:MM:SS` (UTC) of a Unix timestamp.
pub(super) fn clock_utc(at_unix: u64) -> String {
    let of_day = at_unix % 86_400;
    format!(
        "{:02}:{:02}:{:02}",
        of_day / 3_600,
        of_day / 60 % 60,
        of_day % 60
    )
}

/// A rate or a latency: one decimal below 1000, none above, so columns stay narrow.
pub(super) fn number(value: f64) -> String {
    if !value.is_finite() {
        "-".to_string()
    } else if value.abs() >= 1000.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// A latency in milliseconds, or `-` when there were no samples.
pub(super) fn millis(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), number)
}

/// A 0..=1 share as a percentage: `2.5%`.
pub(super) fn percentage(share: f64) -> String {
    if share.is_finite() {
        format!("{:.1}%", share * 100.0)
    } else {
        "-".to_string()
    }
}

/// `text` cut to `width` terminal columns, ending in `…` when cut.
pub(super) fn ellipsize(text: &str, width: usize) -> String {
    if Span::raw(text).width() <= width {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    let mut buffer = [0u8; 4];
    for c in text.chars() {
        let char_width = Span::raw(&*c.encode_utf8(&mut buffer)).width();
        if used + char_width + 1 > width {
            break;
        }
        used += char_width;
        out.push(c);
    }
    if width > 0 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_is_humanised() {
        let cases = [
            (0.0, "0s"),
            (45.9, "45s"),
            (123.0, "2m03s"),
            (3_723.0, "1h02m03s"),
            (86_400.0 * 3.0 + 4.0 * 3_600.0 + 5.0 * 60.0, "3d04h05m"),
            (-5.0, "0s"),
            (f64::NAN, "0s"),
        ];
        for (secs, expected) in cases {
            assert_eq!(humanize_uptime(secs), expected, "{secs}");
        }
    }

    #[test]
    fn clock_is_utc_time_of_day() {
        assert_eq!(clock_utc(0), "00:00:00");
        // 2024-01-01T13:14:15Z
        assert_eq!(clock_utc(1_704_114_855), "13:14:15");
    }

    #[test]
    fn numbers_stay_short() {
        assert_eq!(number(12.345), "12.3");
        assert_eq!(number(12_345.6), "12346");
        assert_eq!(number(f64::INFINITY), "-");
        assert_eq!(millis(None), "-");
        assert_eq!(millis(Some(45.24)), "45.2");
        assert_eq!(percentage(0.025), "2.5%");
    }

    #[test]
    fn ellipsize_cuts_to_width() {
        assert_eq!(ellipsize("http://a:1", 20), "http://a:1");
        assert_eq!(ellipsize("http://backend.example:8080", 10), "http://ba…");
        assert_eq!(ellipsize("日本語テキスト", 7), "日本語…");
        assert_eq!(ellipsize("abc", 0), "");
    }
}
