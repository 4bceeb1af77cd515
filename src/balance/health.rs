//! Active health checks (§4.2) on Pingora's machinery: one `HttpHealthCheck` per backend (each
//! with its own Host and SNI), run over a `pingora-load-balancing` `HealthRegistry`, whose
//! per-target `Health` applies the thresholds. Every probe result also feeds warm-up, and
//! health flips update the pool.
//!
//! The loop is Aegis's own (Pingora's `HealthCheckService` fixes its interval when it starts):
//! before each pass it reads the current members of the pool and `health_check` settings, so a
//! reload's new interval, path, timeout, thresholds and backends apply from the next pass, and
//! a reload that adds backends wakes it for a pass at once (their first probe lets them join).
//! The registry's targets are keyed by the backend's serial, not its address, so a kept backend
//! keeps its probe history even if its host now resolves elsewhere.
//!
//! One loop per pool, each a task of the one [`HealthChecks`] background service, which starts
//! the loop of a pool a reload adds and stops (aborts) the loop of a pool a reload removes: the
//! number of loops is the number of pools in force.

use super::{Backend, Pools, UpstreamPool};
use crate::capacity::{Capacity, LocalResource};
use crate::config::{ConfigHandle, HealthCheckSettings};
use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use pingora_core::{Error, ErrorType, Result};
use pingora_http::RequestHeader;
use pingora_load_balancing::discovery::ServiceDiscovery;
use pingora_load_balancing::health_check::{HealthCheck, HttpHealthCheck};
use pingora_load_balancing::{Backend as Target, Backends, HealthRegistry};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// The probes of one pass, by backend serial.
struct Probes {
    by_serial: HashMap<u64, (Arc<Backend>, Arc<HttpHealthCheck>)>,
    /// The settings the probes were built with (`None` before the first pass).
    settings: Option<HealthCheckSettings>,
    timeout: Duration,
    healthy_threshold: usize,
    unhealthy_threshold: usize,
}

impl Probes {
    /// The probes for `backends` under `settings`: a backend's probe is kept from `self` while the
    /// settings are unchanged and built only for new members or new settings. A probe owns a
    /// Pingora connector, whose construction reads and parses the system's whole CA bundle (about
    /// 35,000 instructions per request of the load bench when rebuilt every pass).
    fn next(&self, backends: Vec<Arc<Backend>>, settings: &HealthCheckSettings) -> Probes {
        let same = self.settings.as_ref() == Some(settings);
        let mut by_serial = HashMap::with_capacity(backends.len());
        for backend in backends {
            let kept = self
                .by_serial
                .get(&backend.serial)
                .filter(|_| same)
                .map(|(_, probe)| probe.clone());
            match kept.map_or_else(|| probe(&backend, settings).map(Arc::new), Ok) {
                Ok(probe) => {
                    by_serial.insert(backend.serial, (backend, probe));
                }
                Err(e) => log::error!("cannot build the probe of {}: {e}", backend.spec.url),
            }
        }
        Probes {
            by_serial,
            settings: Some(settings.clone()),
            timeout: settings.timeout,
            healthy_threshold: settings.healthy_threshold as usize,
            unhealthy_threshold: settings.unhealthy_threshold as usize,
        }
    }
}

/// The `HealthCheck` the registry runs: finds a target's probe by backend serial.
struct ProbeSet {
    probes: Arc<ArcSwap<Probes>>,
    pool: Arc<UpstreamPool>,
    capacity: Arc<Capacity>,
}

/// The registry's target for a backend. Pingora identifies a target by address and weight;
/// Aegis puts the backend's serial in `weight` (nothing here balances by it), so that every
/// backend is its own target and keeps its `Health` when its address changes.
fn target(backend: &Backend) -> Target {
    Target {
        addr: pingora::protocols::l4::socket::SocketAddr::Inet(backend.addr),
        weight: backend.serial as usize,
        ext: Default::default(),
    }
}

fn serial_of(target: &Target) -> u64 {
    target.weight as u64
}

impl ProbeSet {
    fn find(&self, target: &Target) -> Option<Arc<Backend>> {
        self.probes
            .load()
            .by_serial
            .get(&serial_of(target))
            .map(|(backend, _)| backend.clone())
    }
}

#[async_trait]
impl HealthCheck for ProbeSet {
    async fn check(&self, target: &Target) -> Result<()> {
        let probes = self.probes.load_full();
        let Some((backend, probe)) = probes.by_serial.get(&serial_of(target)) else {
            return Error::e_explain(ErrorType::InternalError, "unknown health check target");
        };
        let result = match tokio::time::timeout(probes.timeout, probe.check(target)).await {
            Ok(result) => result,
            Err(_) => Error::e_explain(ErrorType::ReadTimedout, "health check timed out"),
        };
        if let Err(e) = &result {
            if let Some(kind) = LocalResource::of_error(e) {
                // SECURITY: Aegis's own shortage of descriptors or ports says nothing about the
                // backend; a probe that could not start keeps the verdict the backend had
                // (Pingora's health machinery has no "no result"), so an overload cannot mark
                // a healthy backend down.
                self.capacity.record_local_error(kind);
                return if backend.is_healthy() { Ok(()) } else { result };
            }
        }
        self.pool.observe_probe(backend, result.is_ok());
        result
    }

    async fn health_status_change(&self, target: &Target, healthy: bool) {
        if let Some(backend) = self.find(target) {
            self.pool.set_healthy(&backend, healthy);
        }
    }

    fn backend_summary(&self, target: &Target) -> String {
        match self.find(target) {
            Some(backend) => backend.spec.url.clone(),
            None => format!("{target:?}"),
        }
    }

    fn health_threshold(&self, success: bool) -> usize {
        let probes = self.probes.load();
        if success {
            probes.healthy_threshold
        } else {
            probes.unhealthy_threshold
        }
    }
}

/// The probe of one backend under `settings`.
fn probe(backend: &Backend, settings: &HealthCheckSettings) -> Result<HttpHealthCheck> {
    let mut probe = HttpHealthCheck::new(&backend.spec.host_header, backend.spec.tls);
    let mut req = RequestHeader::build("GET", settings.path.as_bytes(), None)?;
    req.insert_header("Host", &backend.spec.host_header)?;
    req.insert_header("User-Agent", "aegis-health-check")?;
    probe.req = req;
    probe.peer_template = backend.probe_peer(settings.timeout);
    // Any 2xx is healthy (§4.2); Pingora's default accepts only 200.
    probe.validator = Some(Box::new(|resp| {
        if resp.status.is_success() {
            Ok(())
        } else {
            Error::e_explain(
                ErrorType::CustomCode("health check status", resp.status.as_u16()),
                "health check answered non-2xx",
            )
        }
    }));
    Ok(probe)
}

/// The pool's current members, as the registry's service discovery.
struct Members(Arc<UpstreamPool>);

#[async_trait]
impl ServiceDiscovery for Members {
    async fn discover(&self) -> Result<(BTreeSet<Target>, HashMap<u64, bool>)> {
        let targets = self.0.backends().iter().map(|b| target(b)).collect();
        Ok((targets, HashMap::new()))
    }
}

/// The health checks of one pool: its loop runs as a task of [`HealthChecks`].
pub struct HealthService {
    probes: Arc<ArcSwap<Probes>>,
    pool: Arc<UpstreamPool>,
    view: Backends,
    registry: Arc<HealthRegistry>,
    config: Arc<ConfigHandle>,
}

impl HealthService {
    pub fn new(
        pool: Arc<UpstreamPool>,
        capacity: Arc<Capacity>,
        config: Arc<ConfigHandle>,
    ) -> Self {
        let probes = Arc::new(ArcSwap::from_pointee(Probes {
            by_serial: HashMap::new(),
            settings: None,
            timeout: Duration::from_secs(1),
            healthy_threshold: 1,
            unhealthy_threshold: 1,
        }));
        // Targets are keyed by backend serial alone (see `target`).
        let registry = Arc::new(HealthRegistry::with_equivalence(serial_of));
        registry.set_health_check(Box::new(ProbeSet {
            probes: probes.clone(),
            pool: pool.clone(),
            capacity,
        }));
        let view =
            Backends::new_with_health_registry(Box::new(Members(pool.clone())), registry.clone());
        HealthService {
            probes,
            pool,
            view,
            registry,
            config,
        }
    }

    /// Brings the probes up to the pool's members and the current settings, and publishes the
    /// members to the registry.
    async fn refresh(&self) -> HealthCheckSettings {
        let config = self.config.current();
        let settings = self
            .pool
            .settings(&config)
            .map_or_else(|| config.health_check.clone(), |p| p.health_check.clone());
        let next = self.probes.load().next(self.pool.backends(), &settings);
        self.probes.store(Arc::new(next));
        if let Err(e) = self.view.update(|_| {}).await {
            log::error!("cannot publish backends to the health checks: {e}");
        }
        settings
    }

    /// Probes the pool's members every interval, or at once when a reload added backends,
    /// until the task is aborted.
    async fn run(self) {
        loop {
            let settings = self.refresh().await;
            self.registry.run_health_check(true).await;
            tokio::select! {
                _ = tokio::time::sleep(settings.interval) => {}
                _ = self.pool.probe_now.notified() => {}
            }
        }
    }
}

/// The health-check background service: one loop per pool in force.
pub struct HealthChecks {
    pub pools: Arc<Pools>,
    pub capacity: Arc<Capacity>,
    pub config: Arc<ConfigHandle>,
}

#[async_trait]
impl BackgroundService for HealthChecks {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut loops: Vec<(Arc<UpstreamPool>, tokio::task::JoinHandle<()>)> = Vec::new();
        loop {
            let pools = self.pools.all();
            // A removed pool's loop stops; its requests under way finish without probes.
            loops.retain(|(pool, task)| {
                let kept = pools.iter().any(|p| Arc::ptr_eq(p, pool));
                if !kept {
                    task.abort();
                    log::info!("health checks of pool {} stopped", pool.name);
                }
                kept
            });
            for pool in pools {
                if !loops.iter().any(|(p, _)| Arc::ptr_eq(p, &pool)) {
                    let health = HealthService::new(
                        pool.clone(),
                        self.capacity.clone(),
                        self.config.clone(),
                    );
                    loops.push((pool, tokio::spawn(health.run())));
                }
            }
            // `notify_one` keeps a permit: a reload between `all()` and here is not missed.
            tokio::select! {
                _ = self.pools.changed.notified() => {}
                _ = shutdown.changed() => break,
            }
        }
        for (_, task) in loops {
            task.abort();
        }
        log::info!("health checks stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;
    use crate::events::EventLog;

    #[test]
    fn probes_are_kept_across_passes_and_rebuilt_for_new_settings_or_members() {
        let config =
            parse("backends:\n  - url: http://a.example\n  - url: http://b.example\n").unwrap();
        let pool = UpstreamPool::new(&config, Arc::new(EventLog::new()));
        let empty = Probes {
            by_serial: HashMap::new(),
            settings: None,
            timeout: Duration::ZERO,
            healthy_threshold: 1,
            unhealthy_threshold: 1,
        };
        let settings = config.health_check.clone();
        let first = empty.next(pool.backends(), &settings);
        let second = first.next(pool.backends(), &settings);
        assert_eq!(second.by_serial.len(), 2);
        for (serial, (_, probe)) in &second.by_serial {
            assert!(
                Arc::ptr_eq(probe, &first.by_serial[serial].1),
                "probe rebuilt"
            );
        }
        let slower = HealthCheckSettings {
            timeout: settings.timeout * 2,
            ..settings.clone()
        };
        let third = second.next(pool.backends(), &slower);
        assert_eq!(third.timeout, slower.timeout);
        for (serial, (_, probe)) in &third.by_serial {
            assert!(
                !Arc::ptr_eq(probe, &second.by_serial[serial].1),
                "stale probe kept"
            );
        }
        let one = second.next(pool.backends()[..1].to_vec(), &settings);
        assert_eq!(
            one.by_serial.len(),
            1,
            "a removed member's probe is dropped"
        );
    }
}
