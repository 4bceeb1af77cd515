//! Active health checks (§4.2) on Pingora's machinery: one `HttpHealthCheck` per backend (each
//! with its own Host and SNI), run by `pingora-load-balancing`'s `HealthCheckService` every
//! `health_check.interval`, with the thresholds of the config. Every probe result also feeds
//! warm-up, and health flips update the pool.

use super::UpstreamPool;
use crate::capacity::{Capacity, LocalResource};
use crate::config::HealthCheckSettings;
use async_trait::async_trait;
use pingora::prelude::HttpPeer;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use pingora_core::{Error, ErrorType, Result};
use pingora_http::RequestHeader;
use pingora_load_balancing::discovery::Static;
use pingora_load_balancing::health_check::{HealthCheck, HttpHealthCheck};
use pingora_load_balancing::{Backend, Backends, HealthCheckService, HealthRegistry};
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The probe for each backend, found by the backend's pinned address.
struct ProbeSet {
    probes: HashMap<SocketAddr, (usize, HttpHealthCheck)>,
    pool: Arc<UpstreamPool>,
    capacity: Arc<Capacity>,
    timeout: Duration,
    healthy_threshold: usize,
    unhealthy_threshold: usize,
}

#[async_trait]
impl HealthCheck for ProbeSet {
    async fn check(&self, target: &Backend) -> Result<()> {
        let Some((index, probe)) = self.probes.get(&addr_of(target)) else {
            return Error::e_explain(ErrorType::InternalError, "unknown health check target");
        };
        let result = match tokio::time::timeout(self.timeout, probe.check(target)).await {
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
                return if self.pool.backends()[*index].is_healthy() {
                    Ok(())
                } else {
                    result
                };
            }
        }
        self.pool.observe_probe(*index, result.is_ok());
        result
    }

    async fn health_status_change(&self, target: &Backend, healthy: bool) {
        if let Some((index, _)) = self.probes.get(&addr_of(target)) {
            self.pool.set_healthy(*index, healthy);
        }
    }

    fn backend_summary(&self, target: &Backend) -> String {
        match self.probes.get(&addr_of(target)) {
            Some((index, _)) => self.pool.backends()[*index].spec.url.clone(),
            None => format!("{target:?}"),
        }
    }

    fn health_threshold(&self, success: bool) -> usize {
        if success {
            self.healthy_threshold
        } else {
            self.unhealthy_threshold
        }
    }
}

fn addr_of(target: &Backend) -> SocketAddr {
    match target.addr {
        pingora::protocols::l4::socket::SocketAddr::Inet(addr) => addr,
        _ => SocketAddr::from(([0, 0, 0, 0], 0)),
    }
}

/// The health-check background service: publishes the backends to a health registry once, then
/// runs Pingora's `HealthCheckService` until shutdown.
pub struct HealthService {
    backends: Backends,
    checks: HealthCheckService,
}

impl HealthService {
    pub fn new(
        pool: Arc<UpstreamPool>,
        capacity: Arc<Capacity>,
        settings: &HealthCheckSettings,
    ) -> pingora::Result<Self> {
        let mut probes = HashMap::new();
        let mut targets = BTreeSet::new();
        for backend in pool.backends() {
            let mut probe = HttpHealthCheck::new(&backend.spec.host_header, backend.spec.tls);
            let mut req = RequestHeader::build("GET", settings.path.as_bytes(), None)?;
            req.insert_header("Host", &backend.spec.host_header)?;
            req.insert_header("User-Agent", "aegis-health-check")?;
            probe.req = req;
            let sni = if backend.spec.tls {
                backend.spec.host.clone()
            } else {
                String::new()
            };
            let mut peer = HttpPeer::new(backend.addr, backend.spec.tls, sni);
            peer.options.connection_timeout = Some(settings.timeout);
            peer.options.total_connection_timeout = Some(settings.timeout);
            peer.options.read_timeout = Some(settings.timeout);
            probe.peer_template = peer;
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
            probes.insert(backend.addr, (backend.index, probe));
            targets.insert(Backend {
                addr: pingora::protocols::l4::socket::SocketAddr::Inet(backend.addr),
                weight: 1,
                ext: Default::default(),
            });
        }
        let registry = Arc::new(HealthRegistry::new());
        registry.set_health_check(Box::new(ProbeSet {
            probes,
            pool,
            capacity,
            timeout: settings.timeout,
            healthy_threshold: settings.healthy_threshold as usize,
            unhealthy_threshold: settings.unhealthy_threshold as usize,
        }));
        let backends = Backends::new_with_health_registry(Static::new(targets), registry.clone());
        let mut checks = HealthCheckService::new(registry);
        checks.health_check_frequency = Some(settings.interval);
        checks.parallel_health_check = true;
        Ok(HealthService { backends, checks })
    }
}

#[async_trait]
impl BackgroundService for HealthService {
    async fn start(&self, shutdown: ShutdownWatch) {
        if let Err(e) = self.backends.update(|_| {}).await {
            log::error!("cannot publish backends to the health checks: {e}");
            return;
        }
        self.checks.start(shutdown).await;
        log::info!("health checks stopped");
    }
}
