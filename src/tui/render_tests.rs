//! The dashboard drawn into a test terminal at 80×24 and larger, read back as text.

use super::super::app::App;
use crate::status::snapshot::{
    BackendSnapshot, EventSnapshot, RateLimitSnapshot, Snapshot, Totals,
};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
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

/// Four named pools of four backends each; `db`'s are all down.
fn four_pools() -> Snapshot {
    use crate::status::snapshot::PoolSnapshot;
    let names = ["api", "www", "admin", "db"];
    let backends: Vec<BackendSnapshot> = names
        .iter()
        .enumerate()
        .flat_map(|(p, pool)| {
            (0..4).map(move |i| BackendSnapshot {
                pool: pool.to_string(),
                id: format!("http-10.0.{p}.{i}:80"),
                admin_state: "enabled".into(),
                requests_per_sec: if *pool == "db" { 0.0 } else { 100.0 },
                ..backend(
                    &format!("http://10.0.{p}.{i}:80"),
                    *pool != "db",
                    "closed",
                    100,
                )
            })
        })
        .collect();
    let pools = names
        .iter()
        .map(|name| {
            let mine: Vec<_> = backends.iter().filter(|b| b.pool == *name).collect();
            PoolSnapshot {
                name: name.to_string(),
                backends: mine.iter().map(|b| b.id.clone()).collect(),
                up: mine.iter().filter(|b| b.healthy).count(),
                requests_per_sec: mine.iter().map(|b| b.requests_per_sec).sum(),
                p95_ms: (*name != "db").then_some(12.0),
                error_rate: if *name == "db" { 0.0 } else { 0.02 },
                in_flight: 3,
                adaptive: None,
            }
        })
        .collect();
    Snapshot {
        pools,
        backends,
        ..three_backends()
    }
}

fn keys(app: &mut App, keys: &[KeyCode]) {
    for &code in keys {
        app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
    }
}

#[test]
fn pools_get_headings_and_the_table_scrolls_with_the_selection_at_80x24() {
    let mut app = app_with(four_pools());
    let text = screen(&app, 80, 24);
    assert_eq!(text.lines().count(), 24);
    // The heading sums the pool in the table's own columns; backends are indented under it.
    assert_shows(row(&text, "▾ api"), "4/4 up|400.0|12.0|2.0%");
    assert_shows(
        &text,
        "  http://10.0.0.0:80|Backends (16 in 4 pools) lines 1-7 of 20",
    );
    assert_shows(&text, "c/C collapse");
    assert_shows(&screen(&app, 100, 30), "c collapse C all");
    assert!(!text.contains("10.0.3.3"), "{text}");
    // ↓ to the last line: the table scrolls, the top lines leave the screen.
    keys(&mut app, &[KeyCode::Down; 19]);
    let text = screen(&app, 80, 24);
    assert_shows(&text, "http://10.0.3.3:80|lines 14-20 of 20");
    assert_shows(row(&text, "▾ db"), "0/4 down|0.0| - ");
    assert!(!text.contains("▾ api"), "{text}");
    // The rest of the screen keeps its place.
    assert_shows(
        &text,
        "Aegis 0.1.0|80.0/s|13:15:00 ERROR breaker opened|q quit",
    );
    keys(&mut app, &[KeyCode::Up; 19]);
    assert_shows(&screen(&app, 80, 24), "▾ api|lines 1-7 of 20");
}

#[test]
fn collapsed_pools_are_one_summary_line_each() {
    let mut app = app_with(four_pools());
    keys(&mut app, &[KeyCode::Char('C')]);
    let text = screen(&app, 80, 24);
    for (pool, summary) in [
        ("▸ api", "4/4 up|400.0|12.0|2.0%"),
        ("▸ www", "4/4 up|400.0|12.0"),
        ("▸ admin", "4/4 up|400.0"),
        ("▸ db", "0/4 down|0.0| - |0.0%"),
    ] {
        assert_shows(row(&text, pool), summary);
    }
    assert_shows(&text, "Backends (16 in 4 pools)");
    assert!(!text.contains("│  http://"), "{text}");
    assert!(!text.contains("lines "), "everything fits:\n{text}");
    // ↓↓ then c expands `admin` only.
    keys(
        &mut app,
        &[KeyCode::Down, KeyCode::Down, KeyCode::Char('c')],
    );
    let text = screen(&app, 80, 24);
    assert_shows(
        &text,
        "▸ api|▸ www|▾ admin|http://10.0.2.3:80|lines 1-7 of 8",
    );
    assert!(!text.contains("10.0.0.0"), "{text}");
    keys(&mut app, &[KeyCode::Down; 5]);
    assert_shows(&screen(&app, 80, 24), "▾ admin|▸ db|lines 2-8 of 8");
}

#[test]
fn a_pool_heading_names_its_adaptive_rate() {
    use crate::status::snapshot::PoolAdaptiveSnapshot;
    let mut snapshot = four_pools();
    snapshot.pools[0].adaptive = Some(PoolAdaptiveSnapshot {
        rate: 27.5,
        scale: 0.25,
        last_decision: "reduce".into(),
        last_reason: "P95 900ms above 500ms".into(),
        p95_ms: Some(900.0),
    });
    let text = screen(&app_with(snapshot), 80, 24);
    assert_shows(row(&text, "▾ api"), "▾ api · limit 27.5/s|4/4 up|400.0");
    // A pool whose loop has not decided yet shows no rate.
    assert!(!row(&text, "▾ www").contains("limit"), "{text}");
}

#[test]
fn only_the_default_pool_looks_as_before_pools() {
    use crate::status::snapshot::PoolSnapshot;
    let before = screen(&app_with(three_backends()), 80, 24);
    let mut snapshot = three_backends();
    for b in &mut snapshot.backends {
        b.pool = "default".into();
    }
    snapshot.pools = vec![PoolSnapshot {
        name: "default".into(),
        up: 2,
        ..PoolSnapshot::default()
    }];
    assert_eq!(screen(&app_with(snapshot), 80, 24), before);
    assert!(!before.contains("collapse"), "{before}");
}

#[test]
fn pool_names_are_cleaned() {
    let mut snapshot = four_pools();
    snapshot.pools[0].name = "a\x1b[31mpi\x07".into();
    for b in snapshot.backends.iter_mut().take(4) {
        b.pool = snapshot.pools[0].name.clone();
    }
    let text = screen(&app_with(snapshot), 80, 24);
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{text:?}"
    );
    assert_shows(&text, "4/4 up");
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
