//! Aegis: a reverse proxy for small and mid-sized HTTP services, on Cloudflare's Pingora.
//!
//! # Layout
//!
//! - [`cli`]: the command line (§1); `main.rs` only calls [`cli::main`].
//! - [`config`]: YAML → validated [`config::Config`], with every problem reported by key path,
//!   and the DNS resolution with the anti-SSRF check; the [`config::ConfigHandle`] the running
//!   server reads it through. The only module that knows serde.
//! - [`server`]: wires concrete types into a Pingora server; the only place that does.
//! - [`proxy`]: the one `ProxyHttp` implementation; each phase delegates to a leaf module.
//! - [`http2`]: HTTP/2 client connections (h2, h2c): Pingora's streams, Aegis's flood limits.
//! - [`route`]: which route a request takes by host and path (§17), compiled once per config.
//! - [`balance`]: the backend pools, smooth weighted round-robin, health checks and warm-up.
//! - [`breaker`]: the per-backend circuit breaker (pure state machine + lock-light cell).
//! - [`limit`]: the per-client rate limiter on `pingora-limits` and the adaptive loop.
//! - [`cluster`]: cluster mode (§13): limits and the adaptive rate shared through Redis, synced in
//!   the background; off unless `cluster.redis_url` is set.
//! - [`metrics`]: the recorders: lock-free counters and latency histograms.
//! - [`status`]: the once-a-second sampler and the [`status::Snapshot`] that `/status`, `/metrics`
//!   and the dashboard read.
//! - [`reply`]: the answers Aegis writes itself ([`reply::LocalReply`]): its own refusals and
//!   upstream failures.
//! - [`reload`]: a new config file applied to the running process (§12.1), keeping state.
//! - [`admin`]: the admin listener (`/metrics`, `/status`, `/healthz`, `POST /reload`).
//! - [`tui`]: the terminal dashboard (local or fed by a remote `/status`).
//! - [`tls`]: TLS termination on the listeners: certificates (checked at load), SNI choice,
//!   the handshake under a deadline, the `redirect_to_https` target.
//! - [`security`]: SSRF policy, IP masking, security and hop-by-hop headers, request validators.
//! - [`lifecycle`]: shutdown signals, in-flight counting and drain.
//! - [`capacity`]: the open-file limit, the client connection cap, local resource errors.
//! - [`logging`]: JSON or text log lines on `log` + `env_logger`.
//! - [`events`]: the typed state changes ([`events::Event`]) and the ring of recent ones shown to
//!   operators.
//!
//! Invariants: only `proxy` touches Pingora's `Session`; policies (breaker, warm-up, schedule,
//! validation) are pure and take time as an argument; nothing on the request path takes a lock
//! shared by the workers in the common case.

#[macro_use]
mod delegate;

pub mod acme;
pub mod admin;
pub mod balance;
pub mod breaker;
pub mod capacity;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod events;
pub mod http2;
pub mod lifecycle;
pub mod limit;
pub mod logging;
pub mod metrics;
pub mod proxy;
pub mod reload;
pub mod reply;
pub mod route;
pub mod security;
pub mod server;
pub mod status;
pub mod tls;
pub mod tui;
