//! The terminal dashboard (§7.4): ratatui + crossterm, on its own thread.
//!
//! Laid out like ratatui's templates:
//!
//! - this file: the public API, terminal setup/teardown (also on panic) and the event loop;
//! - `app`: [`App`], the state drawn (last snapshot, last error) and key handling → [`Action`];
//! - `render`: `impl Widget for &App`, the screen layout, sized for 80×24 and using the extra room
//!   of larger terminals; `header` draws the header and footer lines, `table` the backends
//!   (columns by priority; `rows` groups them under pool headings, §17), `panels` the
//!   rate-limit panel, the sparkline and the events, `format` the numbers and times;
//! - `remote`: [`RemoteSource`], which polls a running instance's `/status`
//!   (`aegis dashboard --admin ADDR`);
//! - [`sanitize`]: control-character stripping for everything displayed.
//!
//! Data comes from a [`SnapshotSource`]: in-process, a closure over the metrics observer; remote,
//! [`RemoteSource`]. The source is polled on a helper thread every refresh, so a slow or
//! unreachable instance never delays key handling: `q` always answers within [`TICK`].
//! `d`/`e` go to a [`BackendControl`] (in-process, the pool; remote, the admin endpoints) on a
//! short-lived thread of their own, for the same reason.

mod acme;
mod app;
mod cluster;
mod format;
mod header;
mod panels;
mod remote;
mod render;
mod rows;
pub mod sanitize;
mod table;

pub use app::{Action, App};
pub use remote::RemoteSource;

use crate::status::Snapshot;
use crossterm::event::{self, Event};
use crossterm::terminal::{self, EnterAlternateScreen, LeaveAlternateScreen};
use crossterm::{cursor, execute};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use std::io;
use std::panic::{self, PanicHookInfo};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// How often the event loop wakes to check `stop`, draw new data and read keys.
pub const TICK: Duration = Duration::from_millis(100);
/// Refresh intervals below this are raised to it, so a zero from a caller cannot spin the fetcher.
const MIN_REFRESH: Duration = Duration::from_millis(100);

/// Where the dashboard gets its data.
pub trait SnapshotSource: Send {
    /// The latest snapshot, or a human-readable reason it is unavailable (shown on screen, then
    /// retried next refresh).
    fn snapshot(&mut self) -> Result<Snapshot, String>;
}

/// Drains and enables backends for the `d` and `e` keys (§12.2).
pub trait BackendControl: Send + Sync {
    /// Drains (`drained`) or enables the backend `id`: what was done, or why it was not.
    fn set_drained(&self, id: &str, drained: bool) -> Result<String, String>;
}

/// In-process: a closure that builds a snapshot never fails.
impl<F: FnMut() -> Snapshot + Send> SnapshotSource for F {
    fn snapshot(&mut self) -> Result<Snapshot, String> {
        Ok(self())
    }
}

/// Runs the dashboard on the current thread until the user quits (`q`, `Esc`, Ctrl-C) or `stop`
/// returns true (checked every [`TICK`]; lets the server end the dashboard when it shuts down by
/// a signal). `source` is polled every `refresh` (at least 100 ms) on a helper thread.
///
/// The terminal is restored on exit and on panic: a panic hook restores it, then calls the hook
/// that was installed before; the previous hook is put back when `run` returns. A panic on any
/// thread restores the terminal (the process may be going down) and ends the dashboard with an
/// error. Returns `Ok(())`
/// when the user quit or `stop()` became true, and an error if the terminal could not be driven
/// or the snapshot source panicked.
pub fn run(
    source: Box<dyn SnapshotSource>,
    control: Arc<dyn BackendControl>,
    label: String,
    refresh: Duration,
    stop: Box<dyn Fn() -> bool + Send>,
) -> io::Result<()> {
    let refresh = refresh.max(MIN_REFRESH);
    let guard = TerminalGuard::enter()?;
    let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    terminal.clear()?;

    let (results_tx, results_rx) = mpsc::channel();
    // Dropping `wake_tx` tells the fetcher to stop, even in the middle of its wait.
    let (wake_tx, wake_rx) = mpsc::channel();
    let fetcher = thread::Builder::new()
        .name("aegis-dashboard-fetch".into())
        .spawn(move || fetch_loop(source, refresh, &results_tx, &wake_rx))?;

    let outcome = event_loop(
        &mut terminal,
        App::new(label),
        &results_rx,
        &control,
        &*stop,
        &guard.active,
    );
    drop(terminal);
    let restored = guard.leave();
    drop(wake_tx);
    // A panic in the source was already reported by the panic hook; `outcome` says so too.
    let _ = fetcher.join();
    outcome.and(restored)
}

/// Draws on new data and on resize, reads keys, and checks `stop`, until one says to quit or a
/// panic took the terminal back.
fn event_loop(
    terminal: &mut Terminal<CrosstermBackend<io::Stdout>>,
    mut app: App,
    results: &Receiver<Result<Snapshot, String>>,
    control: &Arc<dyn BackendControl>,
    stop: &dyn Fn() -> bool,
    terminal_active: &AtomicBool,
) -> io::Result<()> {
    let mut dirty = true;
    let (notices_tx, notices) = mpsc::channel();
    loop {
        if stop() {
            return Ok(());
        }
        // A panic on any thread restores the terminal (see `TerminalGuard`); drawing on would
        // bury the panic message under a screen that no longer updates properly.
        if !terminal_active.load(Ordering::SeqCst) {
            return Err(io::Error::other(
                "a panic restored the terminal; the dashboard stopped",
            ));
        }
        loop {
            match results.try_recv() {
                Ok(result) => {
                    app.update(result);
                    dirty = true;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    return Err(io::Error::other("the dashboard's snapshot source panicked"));
                }
            }
        }
        while let Ok(notice) = notices.try_recv() {
            app.notify(notice);
            dirty = true;
        }
        if dirty {
            terminal.draw(|frame| frame.render_widget(&app, frame.area()))?;
            dirty = false;
        }
        if event::poll(TICK)? {
            match event::read()? {
                Event::Key(key) => {
                    let (id, drained) = match app.on_key(key) {
                        Action::Quit => return Ok(()),
                        Action::None => {
                            dirty = true;
                            continue;
                        }
                        Action::Drain(id) => (id, true),
                        Action::Enable(id) => (id, false),
                    };
                    let (control, tx) = (control.clone(), notices_tx.clone());
                    // A remote instance may be slow to answer; keys keep working meanwhile.
                    let _ = thread::Builder::new()
                        .name("aegis-dashboard-control".into())
                        .spawn(move || tx.send(control.set_drained(&id, drained)));
                }
                Event::Resize(..) => dirty = true,
                _ => {}
            }
        }
    }
}

/// Polls `source` every `refresh` until the dashboard hangs up (drops its end of `wake` or of
/// `results`).
fn fetch_loop(
    mut source: Box<dyn SnapshotSource>,
    refresh: Duration,
    results: &Sender<Result<Snapshot, String>>,
    wake: &Receiver<()>,
) {
    loop {
        let next = Instant::now() + refresh;
        if results.send(source.snapshot()).is_err() {
            return;
        }
        match wake.recv_timeout(next.saturating_duration_since(Instant::now())) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

type PanicHook = Box<dyn Fn(&PanicHookInfo<'_>) + Sync + Send + 'static>;

/// Raw mode + alternate screen for as long as it lives, with a panic hook that restores the
/// terminal before the panic message is printed (otherwise the message would be lost in the
/// alternate screen and the shell left in raw mode).
struct TerminalGuard {
    /// True while the terminal is ours to restore; whoever flips it to false restores it.
    active: Arc<AtomicBool>,
    previous_hook: Option<Arc<PanicHook>>,
}

impl TerminalGuard {
    fn enter() -> io::Result<Self> {
        let active = Arc::new(AtomicBool::new(false));
        let previous_hook: Arc<PanicHook> = Arc::new(panic::take_hook());
        let hook_active = Arc::clone(&active);
        let hook_previous = Arc::clone(&previous_hook);
        panic::set_hook(Box::new(move |info| {
            if hook_active.swap(false, Ordering::SeqCst) {
                let _ = restore_terminal();
            }
            hook_previous(info);
        }));
        let guard = Self {
            active,
            previous_hook: Some(previous_hook),
        };
        // From here on, an early return drops `guard`, which undoes whatever was done.
        guard.active.store(true, Ordering::SeqCst);
        terminal::enable_raw_mode()?;
        execute!(io::stdout(), EnterAlternateScreen, cursor::Hide)?;
        Ok(guard)
    }

    /// Restores the terminal (unless the panic hook already did) and reinstalls the previous
    /// panic hook.
    fn leave(mut self) -> io::Result<()> {
        self.release()
    }

    fn release(&mut self) -> io::Result<()> {
        let restored = if self.active.swap(false, Ordering::SeqCst) {
            restore_terminal()
        } else {
            Ok(())
        };
        // `take_hook` may not be called while panicking; the process is going down anyway.
        if let Some(previous) = self.previous_hook.take().filter(|_| !thread::panicking()) {
            drop(panic::take_hook());
            // Ours was dropped with the hook just taken, so this is the only reference left
            // (unless someone stacked a hook on ours meanwhile; then theirs stays in charge).
            if let Ok(previous) = Arc::try_unwrap(previous) {
                panic::set_hook(previous);
            }
        }
        restored
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = self.release();
    }
}

/// Leaves raw mode and the alternate screen and shows the cursor; tries every step even if one
/// fails.
fn restore_terminal() -> io::Result<()> {
    let raw = terminal::disable_raw_mode();
    let screen = execute!(io::stdout(), LeaveAlternateScreen, cursor::Show);
    raw.and(screen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closure_is_a_snapshot_source() {
        let mut calls = 0;
        let mut source = move || {
            calls += 1;
            Snapshot {
                version: format!("call {calls}"),
                ..Snapshot::default()
            }
        };
        assert_eq!(
            SnapshotSource::snapshot(&mut source).map(|s| s.version),
            Ok("call 1".to_string())
        );
    }

    #[test]
    fn fetcher_sends_results_and_stops_when_the_dashboard_hangs_up() {
        let (results_tx, results_rx) = mpsc::channel();
        let (wake_tx, wake_rx) = mpsc::channel::<()>();
        let source: Box<dyn SnapshotSource> = Box::new(Snapshot::default);
        // A refresh far in the future: only the hang-up can end the wait.
        let fetcher = thread::spawn(move || {
            fetch_loop(source, Duration::from_secs(3600), &results_tx, &wake_rx)
        });
        assert_eq!(results_rx.recv(), Ok(Ok(Snapshot::default())));
        drop(wake_tx);
        fetcher.join().expect("fetcher ends cleanly");
        assert_eq!(results_rx.try_recv(), Err(TryRecvError::Disconnected));
    }
}
