//! The one place that wires concrete types together: config → pool, health checks, proxy,
//! lifecycle → a Pingora server. Just over 400 lines on purpose: the startup order reads top to
//! bottom in one file.

use crate::acme::Acme;
use crate::admin::auth::AdminAuth;
use crate::admin::{Admin, AdminService};
use crate::balance::health::HealthChecks;
use crate::balance::{AdminState, Pools, UpstreamPool};
use crate::capacity::Capacity;
use crate::cluster::{Cluster, ClusterService};
use crate::config::{Config, ConfigHandle, ListenerSettings};
use crate::events::EventLog;
use crate::lifecycle::{self, DrainService, Lifecycle, OperatorSignals, ShutdownSignals};
use crate::limit::adaptive::{AdaptiveService, AdaptiveStatus};
use crate::limit::{RateLimiter, RouteLimits};
use crate::metrics::Metrics;
use crate::proxy::deadline::HeaderDeadline;
use crate::proxy::{AegisProxy, ListenerRole};
use crate::reload::{Reloader, Targets, Trigger};
use crate::status::{BoundAddresses, Observer, SamplerService, Sources, StaticInfo};
use crate::tls::{CertificateResolver, Terminator};
use pingora::apps::HttpServerOptions;
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{RunArgs, Server};
use pingora::services::background::background_service;
use pingora::services::listening::Service;
use pingora_proxy::HttpProxy;
use std::sync::{Arc, Mutex};

/// L4 read buffer per client connection (see `run`).
const L4_READ_BUFFER: usize = crate::proxy::deadline::FIRST_READ_BYTES;
/// L4 write buffer per client connection: Pingora's default, one MSS.
const L4_WRITE_BUFFER: usize = 1460;

/// How the process was asked to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `-d`: detach, write the pid file.
    pub daemon: bool,
    /// `-u`: take the listening sockets over from a running instance.
    pub upgrade: bool,
    /// Show the dashboard on this terminal.
    pub dashboard: bool,
    /// The file logs go to, if not stdout; a daemon's standard error goes there too.
    pub log_file: Option<std::path::PathBuf>,
    /// The config file (reloads read it again) and the SHA-256 of what was loaded.
    pub config_path: std::path::PathBuf,
    pub config_sha256: String,
}

/// The shared state built from a config, before any socket is opened.
pub struct Components {
    /// The configuration, as one value a reload swaps.
    pub config: Arc<ConfigHandle>,
    pub events: Arc<EventLog>,
    /// Every pool (§17); without `routes`, only `default`.
    pub pools: Arc<Pools>,
    /// The default pool, `pools.default_pool()`.
    pub pool: Arc<UpstreamPool>,
    pub lifecycle: Arc<Lifecycle>,
    pub metrics: Arc<Metrics>,
    pub limiter: Arc<RateLimiter>,
    /// The routes' own limits (§17).
    pub route_limits: Arc<RouteLimits>,
    pub adaptive: Arc<Mutex<AdaptiveStatus>>,
    pub observer: Arc<Observer>,
    pub capacity: Arc<Capacity>,
    /// Set in cluster mode (`cluster.redis_url`).
    pub cluster: Option<Arc<Cluster>>,
    /// Where the listeners are bound, once they are.
    pub bound: Arc<BoundAddresses>,
    /// Automatic certificates (§18): challenge answers and the listeners' managers.
    pub acme: Arc<Acme>,
}

impl Components {
    pub fn new(config: Arc<ConfigHandle>, capacity: Capacity) -> Self {
        let handle = config;
        let config = &*handle.current();
        let capacity = Arc::new(capacity);
        let events = Arc::new(EventLog::new());
        let pools = Arc::new(Pools::new(&handle.current(), events.clone()));
        let pool = pools.default_pool();
        let lifecycle = Lifecycle::new();
        let metrics = Arc::new(Metrics::new());
        metrics
            .routes
            .reconfigure(config.routes.as_deref().map(crate::config::Routes::names));
        let cluster = config.cluster.enabled().then(|| {
            Arc::new(Cluster::new(
                config.cluster.clone(),
                config.adaptive.enabled,
                config.adaptive.evaluation_interval,
            ))
        });
        let mut limiter = RateLimiter::new(&config.rate_limit, &config.adaptive);
        if let Some(cluster) = &cluster {
            limiter = limiter.with_shared(cluster.table.clone());
        }
        let limiter = Arc::new(limiter);
        let route_limits = Arc::new(RouteLimits::new(config));
        let adaptive = Arc::new(Mutex::new(AdaptiveStatus::default()));
        let bound = Arc::new(BoundAddresses::new(
            config.listeners.iter().map(|l| (l.address, l.describe())),
        ));
        let acme = Arc::new(Acme::new(config));
        let info = StaticInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
        };
        let observer = Arc::new(Observer::new(Sources {
            info,
            config: handle.clone(),
            metrics: metrics.clone(),
            pool: pools.clone(),
            limiter: limiter.clone(),
            adaptive: adaptive.clone(),
            events: events.clone(),
            lifecycle: lifecycle.clone(),
            capacity: capacity.clone(),
            cluster: cluster
                .clone()
                .map(|c| c as Arc<dyn crate::status::snapshot::ClusterSource>),
            acme: acme.status_source(),
            reload: std::sync::OnceLock::new(),
            bound: bound.clone(),
        }));
        Components {
            config: handle,
            events,
            pools,
            pool,
            lifecycle,
            metrics,
            limiter,
            route_limits,
            adaptive,
            observer,
            capacity,
            cluster,
            bound,
            acme,
        }
    }
}

/// Maps the config onto Pingora's server settings.
fn server_conf(config: &Config, options: &RunOptions) -> ServerConf {
    let shutdown = config.server.shutdown_timeout.as_secs_f64().ceil() as u64;
    ServerConf {
        daemon: options.daemon,
        // §8: a daemon lets go of its caller. After the fork Pingora (the `daemonize` crate) points
        // stdin and stdout at /dev/null and stderr at this file, so that `aegis -d | cat`, `ssh
        // host aegis -d` or a captured CI step return at once. Logs already go to the same file;
        // stderr only catches what bypasses the logger (a panic message).
        error_log: options
            .daemon
            .then(|| daemon_stderr(options.log_file.as_deref())),
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

/// Where a daemon's standard error goes: the log file, as an absolute path (the daemon changes
/// its working directory to `/`), or /dev/null.
fn daemon_stderr(log_file: Option<&std::path::Path>) -> String {
    log_file
        .and_then(|path| std::path::absolute(path).ok())
        .map_or_else(
            || "/dev/null".to_string(),
            |path| path.display().to_string(),
        )
}

/// Builds the Pingora server with every Aegis service and runs it until shutdown. Does not return
/// on a normal shutdown: the process exits with status 0 once drained.
pub fn run(config: Config, options: RunOptions) -> anyhow::Result<()> {
    let conf = server_conf(&config, &options);
    let capacity = crate::capacity::plan(
        config.server.max_connections,
        conf.upstream_keepalive_pool_size,
        config.all_pools().map(|p| p.backends.len()).sum(),
    );
    let components = Components::new(ConfigHandle::new(config), capacity);
    let config = components.config.current();
    let opt = Opt {
        upgrade: options.upgrade,
        daemon: options.daemon,
        ..Opt::default()
    };
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();

    let mut resolvers = Vec::new();
    for (index, listener) in config.listeners.iter().enumerate() {
        let (service, resolver) =
            listener_service(&components, (index, listener), &server.configuration)?;
        server.add_service(service);
        if let Some(resolver) = &resolver {
            let events = &components.events;
            components
                .acme
                .attach((index, listener), resolver, events)?;
        }
        resolvers.extend(resolver.map(|r| (index, r)));
    }
    if let Some(acme) = components.acme.service() {
        server.add_service(background_service("acme", acme));
    }
    let reloader = Arc::new(Reloader::new(
        options.config_path.clone(),
        options.config_sha256.clone(),
        Targets {
            config: components.config.clone(),
            pool: components.pools.clone(),
            limiter: components.limiter.clone(),
            route_limits: components.route_limits.clone(),
            metrics: components.metrics.clone(),
            events: components.events.clone(),
            resolvers,
        },
    ));
    components.observer.attach_config(reloader.clone());

    // One health loop per pool, each with its pool's settings (§17); a reload starts and stops
    // pools' loops.
    server.add_service(background_service(
        "health checks",
        HealthChecks {
            pools: components.pools.clone(),
            capacity: components.capacity.clone(),
            config: components.config.clone(),
        },
    ));
    server.add_service(background_service(
        "sampler",
        SamplerService(components.observer.clone()),
    ));
    // Always running: `adaptive.enabled` is read at each evaluation (a reload may turn it on).
    server.add_service(background_service(
        "adaptive",
        AdaptiveService {
            config: components.config.clone(),
            limiter: components.limiter.clone(),
            pool: components.pools.clone(),
            events: components.events.clone(),
            status: components.adaptive.clone(),
            cluster: components
                .cluster
                .clone()
                .map(|c| c as Arc<dyn crate::limit::adaptive::ClusterRate>),
        },
    ));
    if let Some(cluster) = &components.cluster {
        server.add_service(background_service(
            "cluster sync",
            ClusterService {
                cluster: cluster.clone(),
                limiter: components.limiter.clone(),
                events: components.events.clone(),
            },
        ));
    }
    if config.admin.enabled {
        if !config.admin.address.ip().is_loopback() && config.admin.token.is_none() {
            log::warn!(
                "admin.address {} is not loopback and admin.token_file is unset: every admin endpoint answers 403",
                config.admin.address
            );
        }
        server.add_service(background_service(
            "admin",
            AdminService {
                address: config.admin.address,
                admin: Arc::new(Admin {
                    observer: components.observer.clone(),
                    pool: components.pools.clone(),
                    reloader: reloader.clone(),
                    auth: AdminAuth::new(
                        config.admin.token.clone(),
                        config.admin.address.ip().is_loopback(),
                    ),
                }),
                bound: components.bound.clone(),
            },
        ));
    }

    // Each listener logs `listening on …` with its bound address once its socket is bound.
    log::info!(
        "Aegis {} starting: {}",
        env!("CARGO_PKG_VERSION"),
        listeners_label(&config)
    );
    for warning in &config.warnings {
        log::warn!("{warning}");
    }
    for (pool, backend) in components
        .pools
        .all()
        .iter()
        .flat_map(|p| p.backends().into_iter().map(move |b| (p, b)))
    {
        log::info!(
            "backend {} (weight {}) at {}",
            pool.label(&backend),
            backend.spec.weight,
            backend.addr
        );
    }

    server.add_service(background_service(
        "operator signals",
        OperatorSignals {
            daemon: options.daemon,
            on_hangup: {
                let reloader = reloader.clone();
                Arc::new(move || {
                    reloader.reload(Trigger::Signal);
                })
            },
        },
    ));
    let pid_file = options.daemon.then(|| config.server.pid_file.clone());
    server.add_service(background_service(
        "drain",
        DrainService {
            lifecycle: components.lifecycle.clone(),
            timeout: config.server.shutdown_timeout,
            pid_file: pid_file.clone(),
        },
    ));
    if options.dashboard {
        spawn_dashboard(&components, &config);
    }
    server.run(RunArgs {
        shutdown_signal: Box::new(ShutdownSignals {
            lifecycle: components.lifecycle.clone(),
        }),
    });
    lifecycle::finish(pid_file.as_deref())
}

/// A public listener's Pingora service.
type ListenerService = Service<HeaderDeadline<HttpProxy<AegisProxy>>>;

/// The Pingora service of one listener: its own proxy instance (which knows whether the
/// listener is TLS or redirects) inside the connection loop of `proxy::deadline`; with TLS, the
/// certificate resolver a reload swaps.
fn listener_service(
    components: &Components,
    (index, listener): (usize, &ListenerSettings),
    server_conf: &Arc<ServerConf>,
) -> anyhow::Result<(ListenerService, Option<Arc<CertificateResolver>>)> {
    let proxy = AegisProxy {
        pool: components.pool.clone(),
        pools: components.pools.clone(),
        limiter: components.limiter.clone(),
        route_limits: components.route_limits.clone(),
        metrics: components.metrics.clone(),
        lifecycle: components.lifecycle.clone(),
        capacity: components.capacity.clone(),
        config: components.config.clone(),
        listener: ListenerRole {
            acme_http01: components.acme.http_for(listener),
            ..ListenerRole::new(listener)
        },
    };
    let mut http_proxy = HttpProxy::new(proxy, server_conf.clone());
    http_proxy.handle_init_modules();
    // CONNECT reaches request_filter, which refuses it with Aegis's JSON 405 instead of
    // Pingora's bare one.
    let mut server_options = HttpServerOptions::default();
    server_options.allow_connect_method_proxying = true;
    http_proxy.server_options = Some(server_options);
    let tls = listener.tls.as_ref().map(|tls| {
        let challenges = components.acme.alpn(index);
        let metrics = components.metrics.clone();
        Arc::new(Terminator::new(tls, listener.http2, metrics, challenges))
    });
    let resolver = tls.as_ref().map(|t| t.resolver().clone());
    let app = HeaderDeadline {
        inner: Arc::new(http_proxy),
        config: components.config.clone(),
        tls,
        h2c: listener.h2c,
    };
    let mut service = Service::new(format!("aegis {}", listener.describe()), app);
    // Pingora's 64 KiB L4 read buffer is meant for TLS record reads; for plain HTTP/1 it only
    // costs memory on every idle keep-alive connection (it is zero-filled on allocation). Aegis
    // reads headers and bodies through Pingora's own HTTP buffers, and rustls reads TLS records
    // in pieces of at most 4 KiB, so a small one is enough for both.
    service.add_listener(
        ListenerConfig::tcp(listener.address.to_string())
            .l4_buffer(L4BufferSettings::new(L4_READ_BUFFER, L4_WRITE_BUFFER)),
    );
    // Beyond `server.max_connections` (counted over every listener), clients wait in the
    // listen backlog (see `capacity`).
    service.set_accept_gate(components.capacity.gate());
    // With port 0 the kernel picks the port: the bound address is logged and kept for /status.
    let bound = components.bound.clone();
    service.set_on_bound(Arc::new(move |_, address| {
        bound.listener_bound(index, address)
    }));
    Ok((service, resolver))
}

/// Every listener, for logs and the dashboard header: `http://0.0.0.0:8080, https://…`.
pub fn listeners_label(config: &Config) -> String {
    config
        .listeners
        .iter()
        .map(ListenerSettings::describe)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The dashboard on its own thread; `q` starts a graceful shutdown, and the dashboard closes
/// itself once a shutdown has begun by any other way.
fn spawn_dashboard(components: &Components, config: &Config) {
    let observer = components.observer.clone();
    let control = Arc::new(LocalControl(components.pools.clone()));
    let lifecycle = components.lifecycle.clone();
    let watching = components.lifecycle.clone();
    let label = format!("listening on {}", listeners_label(config));
    let refresh = config.tui.refresh_interval;
    let spawned = std::thread::Builder::new()
        .name("aegis-dashboard".into())
        .spawn(move || {
            let source = Box::new(move || observer.snapshot());
            let stop = Box::new(move || watching.is_draining());
            match crate::tui::run(source, control, label, refresh, stop) {
                // `q`, Esc or Ctrl-C: the operator asked for a shutdown.
                Ok(()) => lifecycle.request_shutdown(),
                // The terminal failed; keep serving without the dashboard.
                Err(e) => log::error!("dashboard failed: {e}; still serving, headless"),
            }
        });
    if let Err(e) = spawned {
        log::error!("cannot start the dashboard: {e}; running headless");
    }
}

/// The in-process dashboard's `d`/`e`: acts on the pool directly (§12.2).
struct LocalControl(Arc<Pools>);

impl crate::tui::BackendControl for LocalControl {
    fn set_drained(&self, id: &str, drained: bool) -> Result<String, String> {
        let state = if drained {
            AdminState::Drained
        } else {
            AdminState::Enabled
        };
        match self.0.set_admin_state(id, state) {
            Some(url) => Ok(format!("{url} {}", state.as_str())),
            None => Err(format!("no backend {id}")),
        }
    }
}
