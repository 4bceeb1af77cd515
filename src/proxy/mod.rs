//! The one `ProxyHttp` implementation. Each phase reads like a line of a table of contents and
//! delegates to a leaf module; per-request state lives in [`RequestCtx`].
//!
//! Request order (§3): rate limit → validation → upstream selection and forwarding → response
//! rewriting. Responses Aegis writes itself (a [`LocalReply`]) go through [`respond::send`].
//!
//! Over 400 lines on purpose: one trait implementation whose phases each delegate in a few lines;
//! split across files, the request's path through Pingora would no longer read in one place.

mod ctx;
pub mod deadline;
mod finish;
pub mod forward;
mod listener;
pub mod refused;
pub mod respond;
mod routing;
pub mod rules;
pub mod trace;
mod tunnel;

pub use ctx::{new_request_id, Attempt, RequestCtx};
pub use listener::ListenerRole;

use crate::balance::{Pools, Selection, UpstreamPool};
use crate::breaker::Outcome;
use crate::capacity::{Capacity, LocalResource};
use crate::config::ConfigHandle;
use crate::lifecycle::Lifecycle;
use crate::limit::{ClientKey, RateLimiter, RouteLimits, Verdict};
use crate::metrics::Metrics;
use crate::reply::{LocalReply, Refusal, UpstreamFailure};
use crate::security::headers::finish_backend_response;
use async_trait::async_trait;
use pingora::prelude::HttpPeer;
use pingora_core::protocols::http::ServerSession;
use pingora_core::{Error, ErrorSource, ErrorType, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};
use std::sync::Arc;
use std::time::Instant;

/// Aegis's proxy: owns the pools and every policy the request path consults.
pub struct AegisProxy {
    /// The default pool (`pools.default_pool()`): every request's without `routes`.
    pub pool: Arc<UpstreamPool>,
    /// Every pool, by id, for the requests routes send elsewhere (§17).
    pub pools: Arc<Pools>,
    pub limiter: Arc<RateLimiter>,
    /// The routes' own limits (§17; empty without them).
    pub route_limits: Arc<RouteLimits>,
    pub metrics: Arc<Metrics>,
    pub lifecycle: Arc<Lifecycle>,
    pub capacity: Arc<Capacity>,
    /// The configuration; each request loads it once (`RequestCtx::config`) and keeps it.
    pub config: Arc<ConfigHandle>,
    /// The listener this proxy serves (one proxy per listener).
    pub listener: ListenerRole,
}

impl AegisProxy {
    /// Answers the request with `refusal`, remembering why for the access log.
    async fn refuse(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        refusal: Refusal,
    ) -> Result<bool> {
        let reply = LocalReply::Refused(refusal);
        ctx.reply = Some(reply);
        let location = match (refusal, &self.listener.redirect_to_https) {
            (Refusal::RedirectToHttps, Some(origin)) => Some(crate::tls::redirect::location(
                origin,
                &session.req_header().uri,
            )),
            _ => None,
        };
        respond::send(
            session,
            reply,
            &self.answer_headers(ctx, location.as_deref()),
        )
        .await?;
        Ok(true)
    }

    /// The headers of an answer Aegis writes itself on this listener.
    fn answer_headers<'a>(
        &'a self,
        ctx: &'a RequestCtx,
        location: Option<&'a str>,
    ) -> respond::AnswerHeaders<'a> {
        respond::AnswerHeaders {
            request_id: &ctx.request_id,
            allow: &ctx.config.server.allowed_methods,
            hsts: self.listener.hsts(&ctx.config.security.hsts),
            location,
        }
    }
}

#[async_trait]
impl ProxyHttp for AegisProxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new(self.lifecycle.begin_request(), self.config.current())
    }

    async fn request_error_filter(&self, session: &mut ServerSession, error: &Error) -> Result<()> {
        self.answer_refused_header(session, error).await
    }

    async fn early_request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        deadline::mark_header_read(session.stream());
        ctx.request_id = new_request_id();
        session.set_read_timeout(Some(ctx.config.server.read_timeout));
        session.set_write_timeout(Some(ctx.config.server.write_timeout));
        if self.lifecycle.is_draining() {
            // Shutting down: this response ends the connection (`Connection: close`).
            session.set_keepalive(None);
        } else if session.get_keepalive().is_some() {
            // Keep-alive without Pingora's per-request timer: the connection's stream times
            // the idle wait itself (`idle_timeout`, see `deadline`). Only where the client keeps
            // the connection (Pingora has read its version and `Connection` header): an
            // HTTP/1.0 request without `keep-alive` ends it (RFC 9112 §9.3).
            session.set_keepalive(Some(0));
        }
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        // §18: an ACME http-01 validation of Aegis's own pending order is answered before every
        // other stage: the CA's validators must not be rate limited, refused or redirected.
        if let Some(http01) = &self.listener.acme_http01 {
            if let Some(answer) = http01.answer(session.req_header().uri.path()) {
                respond::send_acme_answer(session, &answer).await?;
                return Ok(true);
            }
        }
        // §17: the route is chosen first (the pool depends on it); without `routes`, this one
        // branch is all the feature costs.
        let routed = match ctx.config.routes.clone() {
            None => true,
            Some(routes) => self.route(session, ctx, &routes),
        };
        // §3 stage 1: the rate limit comes first, so that floods of invalid requests are
        // throttled too.
        if let Some(client) = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| ClientKey::of(a.ip()))
        {
            let verdict = match ctx.route {
                None => self.limiter.check(client),
                Some(_) => self.route_limit(ctx, client),
            };
            if let Verdict::Limit { retry_after } = verdict {
                self.metrics.record_limited_client(&client);
                return self
                    .refuse(session, ctx, Refusal::RateLimited { retry_after })
                    .await;
            }
        }
        // §3 stage 2: validation (§3.1–§3.5).
        if let Some(refusal) = rules::check(&ctx.config.server, self.max_body(ctx), session) {
            if session.req_header().method == http::Method::CONNECT {
                // SECURITY: what follows a CONNECT is tunnel data, never another request.
                session.set_keepalive(None);
            }
            return self.refuse(session, ctx, refusal).await;
        }
        // §11.1: a redirecting listener answers every valid request (the Host allowlist has
        // applied above) with a 308 to its configured origin.
        if self.listener.redirect_to_https.is_some() {
            return self.refuse(session, ctx, Refusal::RedirectToHttps).await;
        }
        if !routed {
            return self.refuse(session, ctx, Refusal::NoRoute).await;
        }
        Ok(false)
    }

    async fn request_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        ctx.body_bytes += body.as_ref().map_or(0, |b| b.len() as u64);
        if session.req_header().version == http::Version::HTTP_2 {
            crate::http2::request_body_progress(end_of_stream);
        }
        // SECURITY: a chunked body declares no length; cut it off as soon as it passes the
        // limit, aborting the backend request (§3.5).
        if ctx.body_bytes > self.max_body(ctx) {
            ctx.reply = Some(Refusal::BodyTooLarge.into());
            return Error::e_explain(ErrorType::HTTPStatus(413), "request body too large");
        }
        Ok(())
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        // The first attempt uses the request's start time (microseconds old) instead of reading
        // the clock again.
        let now = if ctx.tried.is_empty() {
            ctx.started
        } else {
            Instant::now()
        };
        if ctx.tried.is_empty() {
            ctx.websocket = self.is_websocket(session, ctx);
        }
        // Retries stay within the request's pool (§17).
        let selection = ctx
            .pool
            .as_deref()
            .unwrap_or(&self.pool)
            .select(now, &ctx.tried);
        match selection {
            Selection::Chosen { backend, ticket } => {
                let mut peer = backend.peer();
                if ctx.websocket {
                    // The connection's idle clock times the handshake and the tunnel
                    // (`tunnel`), in both directions; a per-read limit would cut a tunnel
                    // whose backend only listens.
                    peer.options.read_timeout = None;
                }
                backend.metrics.started();
                ctx.tried.push(backend.serial);
                ctx.upstream_latency = None;
                ctx.last_backend = Some(backend.clone());
                ctx.attempt = Some(Attempt {
                    backend,
                    ticket,
                    outcome: None,
                });
                Ok(peer)
            }
            // A retry that finds no other backend answers for the failure it retried: the
            // backend was unreachable (502), not "nothing available".
            Selection::Unavailable { .. } if ctx.connect_failures > 0 => {
                ctx.reply = Some(UpstreamFailure::BadGateway.into());
                Error::e_explain(ErrorType::HTTPStatus(502), "no other backend to retry on")
            }
            Selection::Unavailable { retry_after } => {
                ctx.attempt = None;
                ctx.reply = Some(Refusal::NoHealthyBackend { retry_after }.into());
                Error::e_explain(ErrorType::HTTPStatus(503), "no backend available")
            }
        }
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let Some(attempt) = &ctx.attempt else {
            return Error::e_explain(ErrorType::InternalError, "no backend chosen");
        };
        let backend = &attempt.backend;
        // §14.3: one `traceparent` per request (a retry is the same hop of the same trace).
        let traceparent = ctx.traceparent.get_or_insert_with(|| {
            trace::outgoing(trace::incoming(
                session.req_header().headers.get_all(trace::TRACEPARENT),
            ))
        });
        forward::prepare_upstream_request(
            session,
            upstream,
            backend,
            &ctx.request_id,
            traceparent,
            ctx.websocket,
        )?;
        if ctx.websocket {
            tunnel::forwarding_handshake(session, &ctx.config);
        }
        if ctx.route.is_some() {
            self.strip_prefix(session, upstream, ctx)?;
        }
        ctx.upstream_sent = Some(Instant::now());
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let now = Instant::now();
        if let Some(sent) = ctx.upstream_sent {
            ctx.upstream_latency = Some(now.saturating_duration_since(sent));
        }
        // §4.4: a 5xx answer is a failure, any other answer a success.
        let outcome = if upstream_response.status.as_u16() < 500 {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        self.record_outcome_at(ctx, outcome, || now);
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        finish_backend_response(
            upstream_response,
            &ctx.request_id,
            self.listener.hsts(&ctx.config.security.hsts),
        );
        if ctx.websocket && upstream_response.status == http::StatusCode::SWITCHING_PROTOCOLS {
            self.open_tunnel(session, upstream_response, ctx)?;
        }
        Ok(())
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        // SECURITY: Aegis's own shortage of descriptors, buffers or ports must not open a healthy
        // backend's breaker (which would turn an overload into an outage) nor be retried on
        // another backend (a retry storm that needs the very resource that is missing).
        if let Some(kind) = LocalResource::of_error(&e) {
            let total = self.capacity.record_local_error(kind);
            // Logged at the 1st, 2nd, 4th, 8th… occurrence: a shortage comes in floods.
            if total.is_power_of_two() {
                log::warn!(
                    "cannot open a connection to backend {peer}: Aegis is short of {} \
                     ({total} so far; answered 503, the backend is not blamed): {e}",
                    kind.kind()
                );
            }
            self.end_attempt(ctx, Outcome::Nothing);
            ctx.reply = Some(LocalReply::Refused(Refusal::Overloaded));
            e.set_retry(false);
            return e;
        }
        log::warn!("cannot connect to backend {peer}: {e}");
        self.end_attempt(ctx, Outcome::Failure);
        ctx.connect_failures += 1;
        // §4.5: nothing reached the backend, so another one may take the request.
        e.set_retry(ctx.connect_failures <= ctx.config.upstream.max_retries);
        e
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("backend: {peer}"));
        // A failure on a pooled connection the backend had already closed is retried by Pingora
        // (for idempotent requests): the request never reached a live backend. Anything else
        // reached the backend and is not retried (§4.5).
        if !session.req_header().method.is_idempotent() || session.as_ref().retry_buffer_truncated()
        {
            e.set_retry(false);
        } else {
            e.retry.decide_reuse(client_reused);
        }
        if e.retry() {
            if let Some(attempt) = &ctx.attempt {
                let id = attempt.backend.serial;
                ctx.tried.retain(|i| *i != id);
            }
            self.end_attempt(ctx, Outcome::Nothing);
        } else if *e.esource() == ErrorSource::Upstream {
            log::warn!("backend {peer} failed: {e}");
            self.record_outcome(ctx, Outcome::Failure);
        }
        e
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let reply = ctx.reply.or_else(|| forward::reply_for(e));
        if *e.esource() == ErrorSource::Upstream {
            self.record_outcome(ctx, Outcome::Failure);
        }
        let Some(reply) = reply else {
            // The client is gone; there is nobody to answer.
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        };
        ctx.reply = Some(reply);
        if let Err(write_error) =
            respond::send(session, reply, &self.answer_headers(ctx, None)).await
        {
            log::debug!("cannot send the error response: {write_error}");
        }
        FailToProxy {
            error_code: reply.status(),
            can_reuse_downstream: !reply.closes_connection() && reply.status() < 500,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        self.finish(session, e, ctx);
    }

    fn suppress_error_log(&self, _session: &Session, ctx: &RequestCtx, error: &Error) -> bool {
        tunnel::ended_by_client(ctx, error)
    }

    fn request_summary(&self, session: &Session, _ctx: &RequestCtx) -> String {
        // SECURITY: Pingora's default summary includes the query string; logs must not.
        let req = session.req_header();
        format!("{} {}", req.method, req.uri.path())
    }
}
