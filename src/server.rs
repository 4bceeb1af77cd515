//! The one place that wires concrete types together: config → pool, health checks, proxy,
//! lifecycle → a Pingora server.

use crate::balance::health::HealthService;
use crate::balance::UpstreamPool;
use crate::config::Config;
use crate::events::EventLog;
use crate::lifecycle::{self, Lifecycle, ShutdownSignals};
use crate::proxy::{AegisProxy, ProxySettings};
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{RunArgs, Server};
use pingora::services::background::background_service;
use std::sync::Arc;

/// How the process was asked to run.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// `-d`: detach, write the pid file.
    pub daemon: bool,
    /// `-u`: take the listening sockets over from a running instance.
    pub upgrade: bool,
}

/// The shared state built from a config, before any socket is opened.
pub struct Components {
    pub events: Arc<EventLog>,
    pub pool: Arc<UpstreamPool>,
    pub lifecycle: Arc<Lifecycle>,
}

impl Components {
    pub fn new(config: &Config) -> Self {
        let events = Arc::new(EventLog::new());
        let pool = Arc::new(UpstreamPool::new(config, events.clone()));
        Components {
            events,
            pool,
            lifecycle: Lifecycle::new(),
        }
    }
}

/// Maps the config onto Pingora's server settings.
fn server_conf(config: &Config, options: RunOptions) -> ServerConf {
    let shutdown = config.server.shutdown_timeout.as_secs_f64().ceil() as u64;
    ServerConf {
        daemon: options.daemon,
        threads: config.server.threads,
        pid_file: config.server.pid_file.display().to_string(),
        upgrade_sock: config.server.upgrade_sock.display().to_string(),
        // Aegis's drain monitor ends the process as soon as in-flight requests are done; Pingora's
        // grace period is only the fallback bound (§8).
        grace_period_seconds: Some(shutdown + 1),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    }
}

/// Builds the Pingora server with every Aegis service and runs it until shutdown. Does not return
/// on a normal shutdown: the process exits with status 0 once drained.
pub fn run(config: Config, options: RunOptions) -> anyhow::Result<()> {
    let components = Components::new(&config);
    let opt = Opt {
        upgrade: options.upgrade,
        daemon: options.daemon,
        ..Opt::default()
    };
    let mut server = Server::new_with_opt_and_conf(opt, server_conf(&config, options));
    server.bootstrap();

    let proxy = AegisProxy {
        pool: components.pool.clone(),
        lifecycle: components.lifecycle.clone(),
        settings: ProxySettings {
            max_retries: config.upstream.max_retries,
            read_timeout: config.server.read_timeout,
            write_timeout: config.server.write_timeout,
            idle_timeout: config.server.idle_timeout,
            allow: config.server.allowed_methods.join(", "),
        },
    };
    let listen = config.server.listen_addr();
    let mut service =
        pingora_proxy::http_proxy_service_with_name(&server.configuration, proxy, "aegis");
    service.add_tcp(&listen.to_string());
    server.add_service(service);

    let health = HealthService::new(components.pool.clone(), &config.health_check)?;
    server.add_service(background_service("health checks", health));

    log::info!("Aegis {} listening on {listen}", env!("CARGO_PKG_VERSION"));
    for backend in components.pool.backends() {
        log::info!(
            "backend {} (weight {}) at {}",
            backend.spec.url,
            backend.spec.weight,
            backend.addr
        );
    }

    let pid_file = options.daemon.then(|| config.server.pid_file.clone());
    lifecycle::spawn_drain_monitor(
        components.lifecycle.clone(),
        server.watch_execution_phase(),
        config.server.shutdown_timeout,
        pid_file.clone(),
    );
    server.run(RunArgs {
        shutdown_signal: Box::new(ShutdownSignals {
            lifecycle: components.lifecycle.clone(),
        }),
    });
    lifecycle::finish(pid_file.as_deref())
}
