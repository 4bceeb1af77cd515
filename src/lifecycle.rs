//! Shutdown and drain (§8): Aegis's own shutdown-signal watcher for Pingora, the in-flight request
//! count, and the drain monitor that ends the process once the last request has its answer.
//!
//! Pingora's own behaviour does not fit (§8): its SIGINT is a fast shutdown, and after a graceful
//! one it sleeps the whole grace period even when nothing is in flight. Aegis maps SIGTERM and
//! SIGINT (and the dashboard's `q`) to a graceful terminate, SIGQUIT to a graceful upgrade, and
//! exits as soon as the requests in flight are done, or when `server.shutdown_timeout` has passed.

use async_trait::async_trait;
use pingora::server::{ShutdownSignal, ShutdownSignalWatch, ShutdownWatch};
use pingora::services::background::BackgroundService;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::Notify;

/// How long the in-flight count must stay at zero before the process exits: covers a request
/// whose connection was accepted just before shutdown but whose header is still arriving.
const SETTLE: Duration = Duration::from_millis(300);

/// The process-wide lifecycle state shared by the proxy, the admin listener and the dashboard.
#[derive(Debug, Default)]
pub struct Lifecycle {
    in_flight: AtomicUsize,
    draining: AtomicBool,
    trigger: Notify,
}

impl Lifecycle {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Counts a request as in flight until the returned guard is dropped.
    pub fn begin_request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// True from the shutdown signal on (`/healthz` then answers 503).
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Starts a graceful shutdown, as SIGTERM does (the dashboard's `q`).
    pub fn request_shutdown(&self) {
        self.draining.store(true, Ordering::Release);
        self.trigger.notify_one();
    }
}

/// A request in flight; decrements the count when dropped.
#[derive(Debug)]
pub struct InFlight(Arc<Lifecycle>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Aegis's shutdown-signal watcher, handed to Pingora's `RunArgs`.
pub struct ShutdownSignals {
    pub lifecycle: Arc<Lifecycle>,
}

#[async_trait]
impl ShutdownSignalWatch for ShutdownSignals {
    async fn recv(&self) -> ShutdownSignal {
        let (Ok(mut quit), Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::quit()),
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            log::error!("cannot install signal handlers; only the dashboard can stop Aegis");
            self.lifecycle.trigger.notified().await;
            return ShutdownSignal::GracefulTerminate;
        };
        let signal = tokio::select! {
            _ = quit.recv() => {
                log::info!("SIGQUIT: handing the listening sockets to the new process");
                ShutdownSignal::GracefulUpgrade
            }
            _ = term.recv() => {
                log::info!("SIGTERM: draining in-flight requests");
                ShutdownSignal::GracefulTerminate
            }
            _ = int.recv() => {
                log::info!("SIGINT: draining in-flight requests");
                ShutdownSignal::GracefulTerminate
            }
            _ = self.lifecycle.trigger.notified() => {
                log::info!("shutdown requested from the dashboard: draining in-flight requests");
                ShutdownSignal::GracefulTerminate
            }
        };
        self.lifecycle.draining.store(true, Ordering::Release);
        signal
    }
}

/// The operator's other signals (§14.4): SIGUSR1 reopens `logging.file` (logrotate moves the
/// file, then signals), SIGHUP reloads the configuration (§12.1). Their default action would
/// end the process, so both are caught for as long as it runs (the shutdown watch is not
/// followed: a rotation during a drain must not kill the process either).
pub struct OperatorSignals {
    /// The process is a daemon: its standard error is the log file and follows it.
    pub daemon: bool,
    /// What SIGHUP does: reload the config file (`reload::Reloader`, which logs, records and
    /// counts the outcome). Blocking; run off the async workers.
    pub on_hangup: Arc<dyn Fn() + Send + Sync>,
}

#[async_trait]
impl BackgroundService for OperatorSignals {
    async fn start(&self, _shutdown: ShutdownWatch) {
        let (Ok(mut usr1), Ok(mut hup)) = (
            signal(SignalKind::user_defined1()),
            signal(SignalKind::hangup()),
        ) else {
            log::error!(
                "cannot install the SIGUSR1 and SIGHUP handlers; those signals would end Aegis"
            );
            return;
        };
        loop {
            tokio::select! {
                _ = usr1.recv() => match crate::logging::reopen(self.daemon) {
                    Ok(Some(path)) => log::info!("SIGUSR1: log file {} reopened", path.display()),
                    Ok(None) => log::info!("SIGUSR1: logs go to stdout; no file to reopen"),
                    Err(e) => log::error!("SIGUSR1: {e}"),
                },
                _ = hup.recv() => {
                    log::info!("SIGHUP: reloading the configuration");
                    // DNS and file reads: off the async workers.
                    let reload = tokio::task::spawn_blocking({
                        let on_hangup = self.on_hangup.clone();
                        move || on_hangup()
                    });
                    if let Err(e) = reload.await {
                        log::error!("SIGHUP: the reload failed to run: {e}");
                    }
                }
            }
        }
    }
}

/// Waits for the server's shutdown broadcast (the listeners stop accepting then), waits for the
/// requests in flight (at most `timeout`), and ends the process with status 0.
///
/// It runs as a Pingora background service, so that it starts after `-d` has forked: a thread
/// started before the fork would not exist in the daemon.
pub struct DrainService {
    pub lifecycle: Arc<Lifecycle>,
    pub timeout: Duration,
    pub pid_file: Option<PathBuf>,
}

#[async_trait]
impl BackgroundService for DrainService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        while !*shutdown.borrow() {
            if shutdown.changed().await.is_err() {
                return;
            }
        }
        self.lifecycle.draining.store(true, Ordering::Release);
        let lifecycle = self.lifecycle.clone();
        let timeout = self.timeout;
        let drained = tokio::task::spawn_blocking(move || drain(&lifecycle, timeout)).await;
        if let Err(e) = drained {
            log::error!("drain monitor failed: {e}");
        }
        finish(self.pid_file.as_deref());
    }
}

fn drain(lifecycle: &Lifecycle, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let mut idle_since: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if lifecycle.in_flight() == 0 {
            let since = *idle_since.get_or_insert(now);
            if now.duration_since(since) >= SETTLE {
                return;
            }
        } else {
            idle_since = None;
        }
        if now >= deadline {
            log::warn!(
                "shutdown_timeout reached with {} request(s) still in flight; they are cut",
                lifecycle.in_flight()
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The last words of the process.
pub fn finish(pid_file: Option<&std::path::Path>) -> ! {
    // After a graceful upgrade the new process has rewritten the pid file: remove it only if it
    // is still ours.
    if let Some(path) = pid_file {
        let ours = std::fs::read_to_string(path)
            .is_ok_and(|pid| pid.trim() == std::process::id().to_string());
        if ours {
            let _ = std::fs::remove_file(path);
        }
    }
    // Access lines of the last requests first, then the last word.
    crate::logging::access::flush();
    log::info!("Aegis shutdown complete");
    log::logger().flush();
    std::process::exit(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_guards_count_requests() {
        let lifecycle = Lifecycle::new();
        let a = lifecycle.begin_request();
        let b = lifecycle.begin_request();
        assert_eq!(lifecycle.in_flight(), 2);
        drop(a);
        assert_eq!(lifecycle.in_flight(), 1);
        drop(b);
        assert_eq!(lifecycle.in_flight(), 0);
        assert!(!lifecycle.is_draining());
        lifecycle.request_shutdown();
        assert!(lifecycle.is_draining());
    }
}
