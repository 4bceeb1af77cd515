//! What happens when a request ends: the current attempt's outcome goes to its backend's breaker
//! and metrics (once), the response to the metrics, and one line to the access log.

use super::{trace, AegisProxy, RequestCtx};
use crate::breaker::Outcome;
use crate::logging::{access, AccessEntry};
use pingora_core::{Error, ErrorSource, ErrorType};
use pingora_proxy::Session;
use std::time::Instant;

impl AegisProxy {
    /// Records the current attempt's outcome in its backend's breaker (once).
    pub(super) fn record_outcome(&self, ctx: &mut RequestCtx, outcome: Outcome) {
        self.record_outcome_at(ctx, outcome, Instant::now);
    }

    /// [`Self::record_outcome`], reading the time from `now` only when an outcome is recorded.
    pub(super) fn record_outcome_at(
        &self,
        ctx: &mut RequestCtx,
        outcome: Outcome,
        now: impl FnOnce() -> Instant,
    ) {
        let Some(attempt) = ctx.attempt.as_mut() else {
            return;
        };
        if attempt.outcome.is_some() {
            return;
        }
        attempt.outcome = Some(outcome);
        ctx.pool.as_deref().unwrap_or(&self.pool).record(
            &attempt.backend,
            attempt.ticket,
            outcome,
            now(),
        );
    }

    /// Ends the current attempt: breaker outcome (if not yet recorded) and backend metrics.
    pub(super) fn end_attempt(&self, ctx: &mut RequestCtx, outcome: Outcome) {
        self.record_outcome(ctx, outcome);
        if let Some(attempt) = ctx.attempt.take() {
            let outcome = attempt.outcome.unwrap_or(outcome);
            attempt
                .backend
                .metrics
                .finished(outcome, ctx.upstream_latency);
        }
    }

    /// The request has ended (answered, refused or failed): the attempt's outcome, the response
    /// metrics and the access line.
    pub(super) fn finish(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        self.end_attempt(ctx, Outcome::Nothing);
        let h2 = session.req_header().version == http::Version::HTTP_2;
        if h2
            && e.is_some_and(|e| {
                *e.etype() == ErrorType::WriteTimedout && *e.esource() == ErrorSource::Downstream
            })
        {
            crate::http2::response_write_stalled();
        }
        let status = session
            .response_written()
            .map(|r| r.status.as_u16())
            .or(ctx.reply.map(|r| r.status()))
            .unwrap_or(0);
        let total = ctx.started.elapsed();
        self.metrics.record_response(status, ctx.reply, total);
        if ctx.config.routes.is_some() {
            self.count_route(ctx, status);
        }
        let tls = if self.listener.tls {
            let version = crate::tls::version_label(
                session
                    .digest()
                    .and_then(|d| d.ssl_digest.as_ref())
                    .map(|d| d.version.as_ref()),
            );
            self.metrics.record_tls_request(version);
            version
        } else {
            "-"
        };
        if h2 {
            self.metrics.record_h2();
        }
        if !access::enabled() {
            return;
        }
        let req = session.req_header();
        // SECURITY: the path is logged without its query string, and no header values at all:
        // query strings, cookies and credentials stay out of the logs; the client is masked.
        let entry = AccessEntry {
            client: session
                .client_addr()
                .and_then(|a| a.as_inet())
                .map(|a| a.ip()),
            method: req.method.as_str(),
            protocol: match req.version {
                http::Version::HTTP_2 => "h2",
                http::Version::HTTP_10 => "http/1.0",
                _ => "http/1.1",
            },
            path: req.uri.path(),
            status,
            bytes: session.body_bytes_sent(),
            backend: ctx
                .last_backend
                .as_ref()
                .map_or("-", |b| b.spec.url.as_str()),
            upstream: ctx.upstream_latency,
            total,
            request_id: ctx.request_id.to_str().unwrap_or("-"),
            // A request answered before it went upstream logs the trace it came with, if any.
            trace_id: match &ctx.traceparent {
                Some(sent) => trace::trace_id(sent),
                None => trace::incoming(req.headers.get_all(trace::TRACEPARENT))
                    .and_then(|t| std::str::from_utf8(t.trace_id).ok())
                    .unwrap_or("-"),
            },
            refusal: ctx.reply.map_or("-", |r| r.reason()),
            tls,
            routing: self.routing_names(ctx),
        };
        access::write(&entry);
    }
}
