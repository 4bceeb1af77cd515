//! Dashboard state: the last snapshot, the last error, and what a key press means. Drawing it is
//! `render.rs`'s job (`impl Widget for &App`); this file knows nothing of the screen.

use crate::status::Snapshot;
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// What the event loop should do after a key press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Keep running.
    None,
    /// Leave the dashboard (and, in-process, begin a graceful shutdown).
    Quit,
}

/// Everything the dashboard draws, independent of the terminal.
#[derive(Debug, Clone)]
pub struct App {
    /// Where the data comes from ("local" or "remote 127.0.0.1:9100"); shown in the footer.
    source_label: String,
    /// The last snapshot received; kept on screen when a later refresh fails.
    snapshot: Option<Snapshot>,
    /// Why the last refresh failed, until a refresh succeeds again.
    error: Option<String>,
}

impl App {
    /// An app with no data yet: it shows "waiting for data…" until the first [`App::update`].
    pub fn new(source_label: String) -> Self {
        Self {
            source_label,
            snapshot: None,
            error: None,
        }
    }

    /// Takes the result of one refresh. A failure keeps the last snapshot on screen and shows the
    /// reason; the next success clears it.
    pub fn update(&mut self, result: Result<Snapshot, String>) {
        match result {
            Ok(snapshot) => {
                self.snapshot = Some(snapshot);
                self.error = None;
            }
            Err(reason) => self.error = Some(reason),
        }
    }

    /// `q`, `Q`, `Esc` and Ctrl-C quit; every other key is ignored. Ctrl-C has to be handled here
    /// because raw mode turns it into a key press instead of a SIGINT.
    pub fn on_key(&mut self, key: KeyEvent) -> Action {
        // Terminals that report releases (Windows, the kitty protocol) would otherwise count a
        // key twice.
        if key.kind == KeyEventKind::Release {
            return Action::None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Char('q' | 'Q') | KeyCode::Esc => Action::Quit,
            KeyCode::Char('c' | 'C') if ctrl => Action::Quit,
            _ => Action::None,
        }
    }

    /// Where the data comes from, as shown in the footer.
    pub fn source_label(&self) -> &str {
        &self.source_label
    }

    /// The last snapshot received, if any.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// Why the last refresh failed, if it did.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn quit_keys_quit_and_other_keys_do_nothing() {
        let cases = [
            (press(KeyCode::Char('q'), KeyModifiers::NONE), Action::Quit),
            (press(KeyCode::Char('Q'), KeyModifiers::SHIFT), Action::Quit),
            (press(KeyCode::Esc, KeyModifiers::NONE), Action::Quit),
            (
                press(KeyCode::Char('c'), KeyModifiers::CONTROL),
                Action::Quit,
            ),
            (press(KeyCode::Char('c'), KeyModifiers::NONE), Action::None),
            (press(KeyCode::Char('x'), KeyModifiers::NONE), Action::None),
            (press(KeyCode::Enter, KeyModifiers::NONE), Action::None),
            (press(KeyCode::Up, KeyModifiers::NONE), Action::None),
        ];
        let mut app = App::new("test".into());
        for (key, expected) in cases {
            assert_eq!(app.on_key(key), expected, "{key:?}");
        }
    }

    #[test]
    fn key_release_is_ignored() {
        let mut app = App::new("test".into());
        let mut key = press(KeyCode::Char('q'), KeyModifiers::NONE);
        key.kind = KeyEventKind::Release;
        assert_eq!(app.on_key(key), Action::None);
    }

    #[test]
    fn failed_refresh_keeps_last_snapshot_and_success_clears_error() {
        let mut app = App::new("test".into());
        app.update(Err("down".into()));
        assert!(app.snapshot().is_none());
        assert_eq!(app.error(), Some("down"));

        let snapshot = Snapshot {
            version: "1.2.3".into(),
            ..Snapshot::default()
        };
        app.update(Ok(snapshot.clone()));
        assert_eq!(app.error(), None);

        app.update(Err("cannot reach".into()));
        assert_eq!(app.snapshot(), Some(&snapshot));
        assert_eq!(app.error(), Some("cannot reach"));
    }
}
