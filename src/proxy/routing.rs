//! Routing as the proxy runs it (§17): the request's route and pool from its Host and path,
//! chosen once in `request_filter`, and `strip_prefix` applied to what the backend receives.

use super::{AegisProxy, RequestCtx};
use crate::config::{RouteSettings, Routes, DEFAULT_POOL};
use crate::limit::pool_scale::effective_rate;
use crate::limit::{base_rate, ClientKey, Verdict};
use crate::reply::Refusal;
use crate::route::path;
use pingora_core::{Error, ErrorType, Result};
use pingora_http::RequestHeader;
use pingora_proxy::Session;

/// The host a request names: its (first) Host header, or HTTP/2's `:authority`. Validation
/// refuses a request with two Host headers later; until then the first one routes it.
fn request_host(req: &RequestHeader) -> Option<&str> {
    match req.headers.get(http::header::HOST) {
        Some(host) => host.to_str().ok(),
        None => req.uri.authority().map(|a| a.as_str()),
    }
}

impl AegisProxy {
    /// Chooses the request's route and pool; false when nothing takes it (no route matches and
    /// there is no default pool), which is answered 404 once the rate limit and validation have
    /// had their say.
    pub(super) fn route(&self, session: &Session, ctx: &mut RequestCtx, routes: &Routes) -> bool {
        let req = session.req_header();
        let pool = match routes.find(request_host(req), req.uri.path()) {
            Some((id, route)) => {
                ctx.route = Some(id);
                route.pool
            }
            None => match routes.fallback {
                Some(pool) => pool,
                None => return false,
            },
        };
        if pool != DEFAULT_POOL {
            // Always found: the pools of every configuration a request can hold are kept
            // (`balance::pools`). Were it not, the request would be refused, not misrouted.
            ctx.pool = self.pools.get(&ctx.config, pool);
            return ctx.pool.is_some();
        }
        true
    }

    /// The request's route, if it took one.
    fn route_of(ctx: &RequestCtx) -> Option<&RouteSettings> {
        let id = ctx.route?;
        ctx.config.routes.as_ref()?.list.get(usize::from(id))
    }

    /// The rate limit of a routed request (§17): the route's own limit, or the top-level one,
    /// either counted per route and client, at its configured rate times its pool's adaptive
    /// scale. In cluster mode the top-level limit stays per client (the cluster's counts are,
    /// and one loop moves its rate), and validation refuses routes' own limits there.
    pub(super) fn route_limit(&self, ctx: &RequestCtx, client: ClientKey) -> Verdict {
        let Some(route) = Self::route_of(ctx) else {
            return self.limiter.check(client);
        };
        let config = &ctx.config;
        if route.rate_limit.is_none() && config.cluster.enabled() {
            return self.limiter.check(client);
        }
        let scale = ctx.pool.as_deref().unwrap_or(&self.pool).adaptive_scale();
        let base = base_rate(&config.rate_limit, &config.adaptive);
        match &route.rate_limit {
            Some(own) => {
                let rate = effective_rate(own.requests_per_second, scale, base, &config.adaptive);
                self.route_limits.check(route.key, own, rate, client)
            }
            None => {
                let rate = effective_rate(base, scale, base, &config.adaptive);
                self.limiter.check_keyed(&(route.key, client), client, rate)
            }
        }
    }

    /// Counts a finished request under its route (§17, the `route` label), with `routes` only.
    pub(super) fn count_route(&self, ctx: &RequestCtx, status: u16) {
        let route = ctx
            .route
            .zip(Self::route_of(ctx))
            .map(|(id, r)| (usize::from(id), r.key));
        self.metrics.routes.record(route, status, ctx.reply);
    }

    /// The route and pool names of the access line (§17), with `routes` only.
    pub(super) fn routing_names<'c>(&'c self, ctx: &'c RequestCtx) -> Option<(&'c str, &'c str)> {
        ctx.config.routes.as_ref()?;
        let route = Self::route_of(ctx).map_or("-", |r| r.name.as_str());
        let pool = match &ctx.pool {
            Some(pool) => pool.name.as_str(),
            None if ctx.reply == Some(Refusal::NoRoute.into()) => "-",
            None => self.pool.name.as_str(),
        };
        Some((route, pool))
    }

    /// The request body limit: the route's `max_body_bytes`, or `server.max_body_bytes`.
    pub(super) fn max_body(&self, ctx: &RequestCtx) -> u64 {
        let server = ctx.config.server.max_body_bytes;
        if ctx.route.is_none() {
            return server;
        }
        Self::route_of(ctx)
            .and_then(|r| r.max_body_bytes)
            .unwrap_or(server)
    }

    /// `strip_prefix` (§17): the backend receives the path without the route's prefix, the
    /// query kept (`/v1/x?q` → `/x?q`, `/v1` → `/`).
    pub(super) fn strip_prefix(
        &self,
        session: &Session,
        upstream: &mut RequestHeader,
        ctx: &RequestCtx,
    ) -> Result<()> {
        let Some(route) = Self::route_of(ctx).filter(|r| r.strip_prefix) else {
            return Ok(());
        };
        let uri = &session.req_header().uri;
        let rest = path::strip(uri.path(), route.matches.prefix.len());
        let target = match uri.query() {
            Some(query) => format!("{rest}?{query}"),
            None => rest.to_string(),
        };
        match http::Uri::try_from(target) {
            Ok(uri) => {
                upstream.set_uri(uri);
                Ok(())
            }
            Err(_) => Error::e_explain(ErrorType::InternalError, "stripped path is not a URI"),
        }
    }
}
