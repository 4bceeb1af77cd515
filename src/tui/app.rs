//! Dashboard state: the last snapshot, the last error, the selected line of the backends table,
//! the collapsed pools, the answer to the last action, and what a key press means. Drawing it is `render.rs`'s job
//! (`impl Widget for &App`); this file knows nothing of the screen.

use super::rows::{self, Item};
use crate::status::Snapshot;
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use std::collections::BTreeSet;

/// What the event loop should do after a key press.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Keep running.
    None,
    /// Leave the dashboard (and, in-process, begin a graceful shutdown).
    Quit,
    /// Drain the backend with this id (`d`, §12.2).
    Drain(String),
    /// Enable the backend with this id (`e`).
    Enable(String),
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
    /// The selected line of the backends table (↑/↓): a backend or a pool heading.
    selected: usize,
    /// Pools shown as their heading line only (`c`, `C`), by name: kept across snapshots.
    collapsed: BTreeSet<String>,
    /// The answer to the last drain/enable: `Ok(what was done)` or `Err(why not)`.
    notice: Option<Result<String, String>>,
}

impl App {
    /// An app with no data yet: it shows "waiting for data…" until the first [`App::update`].
    pub fn new(source_label: String) -> Self {
        Self {
            source_label,
            snapshot: None,
            error: None,
            selected: 0,
            collapsed: BTreeSet::new(),
            notice: None,
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

    /// Shows the answer to a drain or enable in the footer.
    pub fn notify(&mut self, notice: Result<String, String>) {
        self.notice = Some(notice);
    }

    /// `q`, `Q`, `Esc` and Ctrl-C quit; ↑/↓ select a line, `d` drains and `e` enables the
    /// selected backend; `c` collapses or expands the selected line's pool, `C` every pool;
    /// every other key is ignored. Ctrl-C has to be handled here because raw mode turns it into a
    /// key press instead of a SIGINT.
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
            KeyCode::Up => {
                self.selected = self.selected().saturating_sub(1);
                Action::None
            }
            KeyCode::Down => {
                self.selected = (self.selected() + 1).min(self.items().len().saturating_sub(1));
                Action::None
            }
            KeyCode::Char('d') => self.selected_id().map_or(Action::None, Action::Drain),
            KeyCode::Char('e') => self.selected_id().map_or(Action::None, Action::Enable),
            KeyCode::Char('c') => {
                self.toggle_collapsed(false);
                Action::None
            }
            KeyCode::Char('C') => {
                self.toggle_collapsed(true);
                Action::None
            }
            _ => Action::None,
        }
    }

    /// The backends table's lines for the last snapshot (see [`rows::items`]).
    pub fn items(&self) -> Vec<Item> {
        self.snapshot
            .as_ref()
            .map_or_else(Vec::new, |s| rows::items(s, &self.collapsed))
    }

    /// Collapses the selected line's pool, or expands it if it is collapsed (`all`: every pool,
    /// expanded only when all were collapsed); the selection moves to that pool's heading.
    fn toggle_collapsed(&mut self, all: bool) {
        let Some(snapshot) = self.snapshot.as_ref().filter(|s| rows::grouped(s)) else {
            return;
        };
        let current = self.items().get(self.selected()).copied();
        let pool = current
            .and_then(|item| rows::pool_of(snapshot, item))
            .map(str::to_string);
        if all {
            let names: BTreeSet<String> = snapshot.pools.iter().map(|p| p.name.clone()).collect();
            if names.is_subset(&self.collapsed) {
                self.collapsed.retain(|name| !names.contains(name));
            } else {
                self.collapsed.extend(names);
            }
        } else if let Some(name) = &pool {
            if !self.collapsed.remove(name) {
                self.collapsed.insert(name.clone());
            }
        }
        let heading = pool.and_then(|name| {
            let found = snapshot.pools.iter().position(|p| p.name == name)?;
            self.items().iter().position(|&i| i == Item::Pool(found))
        });
        if let Some(line) = heading {
            self.selected = line;
        }
    }

    /// The id of the selected backend, if a backend line is selected.
    fn selected_id(&self) -> Option<String> {
        let backends = &self.snapshot.as_ref()?.backends;
        match self.items().get(self.selected())? {
            Item::Backend(b) => backends.get(*b).map(|b| b.id.clone()),
            Item::Pool(_) => None,
        }
    }

    /// The selected line, kept within the table's lines for the last snapshot.
    pub fn selected(&self) -> usize {
        self.selected.min(self.items().len().saturating_sub(1))
    }

    /// The answer to the last drain or enable, if any.
    pub fn notice(&self) -> Option<&Result<String, String>> {
        self.notice.as_ref()
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
            // Without a snapshot there is no backend to drain.
            (press(KeyCode::Char('d'), KeyModifiers::NONE), Action::None),
        ];
        let mut app = App::new("test".into());
        for (key, expected) in cases {
            assert_eq!(app.on_key(key), expected, "{key:?}");
        }
    }

    #[test]
    fn arrows_select_a_backend_and_d_e_act_on_it() {
        use crate::status::snapshot::BackendSnapshot;
        let mut app = App::new("test".into());
        let backend = |id: &str| BackendSnapshot {
            id: id.into(),
            ..BackendSnapshot::default()
        };
        app.update(Ok(Snapshot {
            backends: vec![backend("http-a"), backend("http-b"), backend("http-c")],
            ..Snapshot::default()
        }));
        let key = |code| press(code, KeyModifiers::NONE);
        assert_eq!(
            app.on_key(key(KeyCode::Char('d'))),
            Action::Drain("http-a".into())
        );
        for _ in 0..5 {
            app.on_key(key(KeyCode::Down));
        }
        assert_eq!(app.selected(), 2);
        app.on_key(key(KeyCode::Up));
        assert_eq!(
            app.on_key(key(KeyCode::Char('e'))),
            Action::Enable("http-b".into())
        );
        // A later snapshot with fewer backends keeps the selection on a row that exists.
        app.update(Ok(Snapshot {
            backends: vec![backend("http-a")],
            ..Snapshot::default()
        }));
        assert_eq!(app.selected(), 0);
        assert_eq!(
            app.on_key(key(KeyCode::Char('d'))),
            Action::Drain("http-a".into())
        );
        app.notify(Err("answered 401".into()));
        assert_eq!(app.notice(), Some(&Err("answered 401".to_string())));
    }

    #[test]
    fn c_collapses_the_selected_pool_and_d_acts_only_on_backends() {
        use crate::status::snapshot::{BackendSnapshot, PoolSnapshot};
        let backend = |pool: &str, id: &str| BackendSnapshot {
            pool: pool.into(),
            id: id.into(),
            ..BackendSnapshot::default()
        };
        let pool = |name: &str| PoolSnapshot {
            name: name.into(),
            ..PoolSnapshot::default()
        };
        let mut app = App::new("test".into());
        app.update(Ok(Snapshot {
            pools: vec![pool("default"), pool("api"), pool("www")],
            backends: vec![
                backend("api", "a1"),
                backend("api", "a2"),
                backend("www", "w1"),
            ],
            ..Snapshot::default()
        }));
        let key = |code| press(code, KeyModifiers::NONE);
        // Lines: api, a1, a2, www, w1. A heading is not a backend: d does nothing there.
        assert_eq!(app.items().len(), 5);
        assert_eq!(app.on_key(key(KeyCode::Char('d'))), Action::None);
        app.on_key(key(KeyCode::Down));
        app.on_key(key(KeyCode::Down));
        assert_eq!(
            app.on_key(key(KeyCode::Char('d'))),
            Action::Drain("a2".into())
        );
        // c on a backend collapses its pool; the selection moves to the pool's heading.
        app.on_key(key(KeyCode::Char('c')));
        assert_eq!(
            app.items(),
            [Item::Pool(1), Item::Pool(2), Item::Backend(2)]
        );
        assert_eq!(app.selected(), 0);
        // The collapsed state outlives a refresh.
        let again = app.snapshot().cloned().map(Ok).expect("a snapshot");
        app.update(again);
        assert_eq!(app.items().len(), 3);
        app.on_key(key(KeyCode::Down));
        app.on_key(key(KeyCode::Down));
        assert_eq!(
            app.on_key(key(KeyCode::Char('e'))),
            Action::Enable("w1".into())
        );
        // C collapses every pool, then expands them all; the selection follows its pool.
        app.on_key(key(KeyCode::Char('C')));
        assert_eq!(app.items(), [Item::Pool(1), Item::Pool(2)]);
        assert_eq!(app.selected(), 1);
        app.on_key(key(KeyCode::Char('C')));
        assert_eq!(app.items().len(), 5);
        assert_eq!(app.selected(), 3);
        // c on an expanded heading collapses it, and again expands it.
        app.on_key(key(KeyCode::Char('c')));
        app.on_key(key(KeyCode::Char('c')));
        assert_eq!((app.items().len(), app.selected()), (5, 3));
    }

    #[test]
    fn c_does_nothing_without_named_pools() {
        use crate::status::snapshot::BackendSnapshot;
        let mut app = App::new("test".into());
        app.update(Ok(Snapshot {
            backends: vec![BackendSnapshot::default(); 2],
            ..Snapshot::default()
        }));
        app.on_key(press(KeyCode::Down, KeyModifiers::NONE));
        app.on_key(press(KeyCode::Char('c'), KeyModifiers::NONE));
        app.on_key(press(KeyCode::Char('C'), KeyModifiers::SHIFT));
        assert_eq!((app.items().len(), app.selected()), (2, 1));
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
