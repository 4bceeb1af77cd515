//! Routing as the proxy runs it (§17): the request's route and pool from its Host and path,
//! chosen once in `request_filter`, and `strip_prefix` applied to what the backend receives.

use super::{AegisProxy, RequestCtx};
use crate::config::{Routes, DEFAULT_POOL};
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
            ctx.pool = self.pools.get(pool).cloned();
        }
        true
    }

    /// `strip_prefix` (§17): the backend receives the path without the route's prefix, the
    /// query kept (`/v1/x?q` → `/x?q`, `/v1` → `/`).
    pub(super) fn strip_prefix(
        &self,
        session: &Session,
        upstream: &mut RequestHeader,
        ctx: &RequestCtx,
    ) -> Result<()> {
        let route = ctx
            .route
            .and_then(|id| ctx.config.routes.as_ref()?.list.get(usize::from(id)));
        let Some(route) = route.filter(|r| r.strip_prefix) else {
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
