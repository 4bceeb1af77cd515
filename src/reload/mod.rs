//! Reload (§12.1): a new configuration file applied to the running process, by `SIGHUP`,
//! `POST /reload` on the admin listener, or `aegis reload` (which sends the signal).
//!
//! The file is checked exactly as at startup (`config::load_file`: values, DNS and SSRF,
//! certificates), then against the configuration in force for keys that need new sockets or a
//! new process (`fixed`). Any problem refuses the whole reload: each is logged at error level,
//! shown as one event and counted, and nothing changes. A valid file is applied in one pass:
//! certificates swapped into each TLS listener's resolver, backends matched by URL
//! (`Pools::reconfigure`), the limiter's settings (`RateLimiter::reconfigure`), the log
//! level and format, and last the new `Config` stored in the `ConfigHandle`, which every later
//! request and connection reads. Nothing is closed: connections and requests under way go on.

pub mod fixed;

use crate::balance::{MembershipChange, Pools};
use crate::config::{Config, ConfigHandle, Routes};
use crate::events::{Event, EventLog};
use crate::limit::{RateLimiter, RouteLimits};
use crate::metrics::Metrics;
use crate::status::snapshot::{ConfigSnapshot, ConfigSource, ReloadSnapshot};
use crate::tls::CertificateResolver;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// What asked for a reload (shown in events and `/status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Signal,
    Admin,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Signal => "SIGHUP",
            Trigger::Admin => "POST /reload",
        }
    }
}

/// How a reload ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Applied {
        generation: u64,
    },
    /// Every problem, `key.path: message`; nothing changed.
    Refused {
        errors: Vec<String>,
    },
}

/// Everything a reload changes, and what `/status` says about it.
pub struct Reloader {
    path: PathBuf,
    config: Arc<ConfigHandle>,
    pool: Arc<Pools>,
    limiter: Arc<RateLimiter>,
    route_limits: Arc<RouteLimits>,
    /// The per-route counters follow the routes (§17).
    metrics: Arc<Metrics>,
    events: Arc<EventLog>,
    /// Each TLS listener's resolver, by its index in `listeners`.
    resolvers: Vec<(usize, Arc<CertificateResolver>)>,
    state: Mutex<State>,
    /// Held for a whole reload: one at a time (`state` is only held to read or write it).
    running: Mutex<()>,
    applied: AtomicU64,
    refused: AtomicU64,
}

/// The configuration in force and the last attempt.
struct State {
    generation: u64,
    loaded_at: SystemTime,
    sha256: String,
    reloads: u64,
    last: Option<ReloadSnapshot>,
}

/// What the reloader acts on, built in `server.rs`.
pub struct Targets {
    pub config: Arc<ConfigHandle>,
    pub pool: Arc<Pools>,
    pub limiter: Arc<RateLimiter>,
    pub route_limits: Arc<RouteLimits>,
    pub metrics: Arc<Metrics>,
    pub events: Arc<EventLog>,
    pub resolvers: Vec<(usize, Arc<CertificateResolver>)>,
}

impl Reloader {
    /// `path` is the file the configuration in force came from, `sha256` its hash.
    pub fn new(path: PathBuf, sha256: String, targets: Targets) -> Self {
        Reloader {
            path,
            config: targets.config,
            pool: targets.pool,
            limiter: targets.limiter,
            route_limits: targets.route_limits,
            metrics: targets.metrics,
            events: targets.events,
            resolvers: targets.resolvers,
            state: Mutex::new(State {
                generation: 1,
                loaded_at: SystemTime::now(),
                sha256,
                reloads: 0,
                last: None,
            }),
            running: Mutex::new(()),
            applied: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// Reloads the file. Blocking (DNS, files): run it off the async workers. Reloads are
    /// serialised: one at a time, each against the configuration the previous one left.
    pub fn reload(&self, trigger: Trigger) -> Outcome {
        let _running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.config.current();
        let loaded = crate::config::load_file(&self.path)
            .map_err(|e| e.0)
            .and_then(|found| {
                let refused = fixed::refused(&old, &found.0);
                if refused.is_empty() {
                    Ok(found)
                } else {
                    Err(refused)
                }
            });
        let outcome = match loaded {
            Err(errors) => {
                let errors: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
                self.refuse(trigger, &errors);
                Outcome::Refused { errors }
            }
            Ok((new, sha256)) => {
                let change = self.apply(&old, new);
                let mut state = self.lock();
                state.generation += 1;
                state.loaded_at = SystemTime::now();
                state.sha256 = sha256;
                self.applied.fetch_add(1, Ordering::Relaxed);
                self.events.record(Event::ConfigReloaded {
                    generation: state.generation,
                    trigger: trigger.as_str().into(),
                    changes: describe(&change),
                });
                Outcome::Applied {
                    generation: state.generation,
                }
            }
        };
        let mut state = self.lock();
        state.reloads += 1;
        state.last = Some(ReloadSnapshot {
            at_unix: unix(SystemTime::now()),
            result: match outcome {
                Outcome::Applied { .. } => "applied",
                Outcome::Refused { .. } => "refused",
            }
            .into(),
            trigger: trigger.as_str().into(),
            errors: match &outcome {
                Outcome::Applied { .. } => Vec::new(),
                Outcome::Refused { errors } => errors.clone(),
            },
        });
        outcome
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn refuse(&self, trigger: Trigger, errors: &[String]) {
        for error in errors {
            log::error!("configuration reload refused: {error}");
        }
        self.refused.fetch_add(1, Ordering::Relaxed);
        self.events.record(Event::ConfigReloadRefused {
            trigger: trigger.as_str().into(),
            problems: errors.to_vec(),
        });
    }

    /// Applies a checked configuration; the new `Config` is stored last.
    fn apply(&self, old: &Config, new: Config) -> MembershipChange {
        for warning in &new.warnings {
            log::warn!("{warning}");
        }
        // Certificate rotation: new handshakes use the new files, open connections go on.
        for (index, resolver) in &self.resolvers {
            let certificates: Vec<_> = new.listeners[*index]
                .tls
                .iter()
                .flat_map(|tls| tls.certificates.iter())
                .filter_map(|spec| spec.loaded.clone())
                .collect();
            resolver.set_files(certificates);
        }
        // The new pools are published before the configuration whose routes name them.
        let new = Arc::new(new);
        let change = self.pool.reconfigure(&new);
        self.limiter.reconfigure(
            &old.rate_limit,
            &new.rate_limit,
            &new.adaptive,
            Instant::now(),
        );
        self.route_limits.reconfigure(&new);
        self.metrics
            .routes
            .reconfigure(new.routes.as_deref().map(Routes::names));
        if !crate::logging::apply(&new.logging) && new.logging.level != old.logging.level {
            log::info!("logging.level changed, but --log-level or RUST_LOG decides the level");
        }
        self.config.store(new);
        change
    }

    /// Reloads applied and refused since startup.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.applied.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
        )
    }
}

impl ConfigSource for Reloader {
    fn config_snapshot(&self) -> ConfigSnapshot {
        let state = self.lock();
        let (applied, refused) = self.counts();
        ConfigSnapshot {
            path: self.path.display().to_string(),
            generation: state.generation,
            loaded_at_unix: unix(state.loaded_at),
            sha256: state.sha256.clone(),
            reloads: state.reloads,
            reloads_applied: applied,
            reloads_refused: refused,
            last_reload: state.last.clone(),
        }
    }
}

/// What a reload did to the backends, for its event.
fn describe(change: &MembershipChange) -> String {
    let mut parts = Vec::new();
    if !change.pools_added.is_empty() {
        parts.push(format!("added pool {}", change.pools_added.join(", ")));
    }
    if !change.pools_removed.is_empty() {
        parts.push(format!("removed pool {}", change.pools_removed.join(", ")));
    }
    if !change.added.is_empty() {
        parts.push(format!("added {}", change.added.join(", ")));
    }
    if !change.removed.is_empty() {
        parts.push(format!("removed {}", change.removed.join(", ")));
    }
    for (url, from, to) in &change.reweighted {
        parts.push(format!("{url} weight {from} -> {to}"));
    }
    if parts.is_empty() {
        "backends unchanged".into()
    } else {
        parts.join("; ")
    }
}

fn unix(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
