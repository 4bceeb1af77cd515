//! Connection deadlines (§3.6): a request header must arrive whole within `read_timeout`, a new
//! connection must start its first request within `read_timeout`, and an idle keep-alive
//! connection is closed after `idle_timeout`.
//!
//! Pingora times out each read of a request header separately, so a client sending one byte
//! every few seconds would hold a connection open forever, and its keep-alive timeout registers
//! a timer for every request. [`HeaderDeadline`] wraps Pingora's HTTP proxy app and serves each
//! HTTP/1 connection itself, with its socket wrapped in a [`DeadlineStream`] that keeps one
//! timer per connection:
//!
//! - the wait for a request's first bytes happens outside Pingora (an idle connection holds no
//!   Pingora session, only its socket and this loop: about 17 KiB). It may last `read_timeout`
//!   on a new connection and `idle_timeout` between keep-alive requests. The timer is armed
//!   once and only moved when it fires early, so a busy connection does not touch the timer
//!   wheel per request. The bytes read become the start of Pingora's header buffer;
//!   idle connections are not woken at shutdown: they end with the process, and a request
//!   arriving on one during the drain is served with `Connection: close`;
//! - once a header has started to arrive and Pingora has to read again because it is not
//!   complete, the header must be complete `read_timeout` after its first bytes, or the stream
//!   fails the read and Pingora drops the connection;
//! - the proxy marks the header as read in `early_request_filter` (it finds this stream under
//!   Pingora's session); after that the request runs as long as it needs (Pingora's own per-read
//!   timeouts apply to the body);
//! - a WebSocket handshake and the tunnel after it are timed here too (`mark_tunnel`): every
//!   byte read from or written to the client is activity, so one timer covers both directions.
//!
//! A header that arrives in one read (every ordinary request) costs one clock read and no timer
//! operation. A request pipelined behind the last one is already read: it is served at once,
//! without waiting on the socket (docs/decisions/pipelining.md).
//!
//! - `policy`: which deadline applies when, and what the one timer does (pure, tested by table);
//! - `stream`: [`DeadlineStream`], which follows it (tested over `tokio::io::duplex` with paused
//!   time);
//! - `delegate`: Pingora's stream traits, handed to the wrapped stream.

mod delegate;
pub mod policy;
mod stream;

pub use policy::Deadlines;
pub use stream::{DeadlineStream, FIRST_READ_BYTES};

use crate::config::ConfigHandle;
use crate::http2::{self, Http2Config};
use async_trait::async_trait;
use bytes::BytesMut;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::{Stream, ALPN};
use pingora::server::ShutdownWatch;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Called by the proxy once a request header has been parsed: the header deadline no longer
/// applies to the connection's reads.
pub fn mark_header_read(stream: Option<&Stream>) {
    if let Some(stream) = stream.and_then(|s| s.as_any().downcast_ref::<DeadlineStream>()) {
        stream.in_header.store(false, Ordering::Relaxed);
    }
}

/// Called by the proxy for a WebSocket handshake it forwards (with the backend's response
/// timeout) and again at the backend's 101 (with `websocket.idle_timeout`): from then on the
/// connection is closed once no byte has gone either way for `idle` (§11.4). The next request
/// on the connection (after an answer other than 101) starts without it.
pub fn mark_tunnel(stream: Option<&Stream>, idle: std::time::Duration) {
    if let Some(stream) = stream.and_then(|s| s.as_any().downcast_ref::<DeadlineStream>()) {
        let ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX).max(1);
        stream.tunnel_idle_ms.store(ms, Ordering::Relaxed);
    }
}

/// Pingora's HTTP app with a whole-header deadline on every HTTP/1 request; one per listener.
/// HTTP/2 connections (ALPN h2, or the h2c preface where `h2c` is on) go to [`crate::http2`].
pub struct HeaderDeadline<A> {
    pub inner: Arc<A>,
    /// Where `read_timeout`, `idle_timeout` and the HTTP/2 limits come from: loaded once per
    /// connection, so a reload applies to connections accepted after it.
    pub config: Arc<ConfigHandle>,
    /// The listener terminates TLS: each connection starts with this handshake (under its own
    /// deadline); after it, the stream is the decrypted one and `selected_alpn_proto` tells
    /// what the client chose.
    pub tls: Option<Arc<crate::tls::Terminator>>,
    /// A plain listener accepts HTTP/2 with prior knowledge (`listeners[].h2c`).
    pub h2c: bool,
}

#[async_trait]
impl<A: HttpServerApp + Send + Sync + 'static> ServerApp for HeaderDeadline<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let config = self.config.current();
        let stream = match &self.tls {
            Some(tls) => tls.accept(stream, config.server.read_timeout).await?,
            None => stream,
        };
        if stream.selected_alpn_proto() == Some(ALPN::H2) {
            let h2 = Http2Config::new(&config);
            http2::serve(&self.inner, stream, BytesMut::new(), shutdown, &h2).await;
            return None;
        }
        let deadlines = Deadlines {
            read_timeout: config.server.read_timeout,
            idle_timeout: config.server.idle_timeout,
        };
        let h2c = self.h2c.then(|| Http2Config::new(&config));
        drop(config);
        let mut stream = Box::new(DeadlineStream::new(stream, deadlines));
        let mut settings: Option<HttpPersistentSettings> = None;
        loop {
            stream.begin_request();
            // A request the client pipelined behind the last one (RFC 9112 §9.3.2) was read
            // with it: it is served next, in order, without waiting for the socket.
            let pipelined = settings
                .as_mut()
                .and_then(HttpPersistentSettings::take_pipelined_prefix);
            let first = match pipelined {
                Some(first) => first,
                // The wait for a request happens here, outside Pingora: an idle keep-alive
                // connection holds no Pingora session, only this loop and its socket.
                None => std::future::poll_fn(|cx| stream.poll_first_bytes(cx)).await?,
            };
            if let Some(h2) = h2c.as_ref().filter(|_| stream.request == 1) {
                if starts_like_preface(&first) {
                    // The connection's first bytes are (the start of) the HTTP/2 preface; the
                    // `h2` crate reads them again and checks the rest.
                    let inner = stream.inner;
                    http2::serve(&self.inner, inner, first, shutdown, h2).await;
                    return None;
                }
            }
            let mut session = ServerSession::new_http1(stream);
            if let Some(settings) = settings.take() {
                settings.apply_to_session(&mut session);
            }
            session.set_pipelined_prefix(first);
            // Bytes read past a request are kept for the next one instead of ending the
            // connection (Pingora's default); each request still passes every check alone.
            session.set_pipelining_enabled(true);
            // The stream times the request header, not Pingora's keep-alive timer.
            session.set_keepalive(Some(0));
            if *shutdown.borrow() {
                session.set_keepalive(None);
            }
            let (next, next_settings) = self
                .inner
                .process_new_http(session, shutdown)
                .await?
                .consume();
            stream = next.into_any().downcast::<DeadlineStream>().ok()?;
            settings = next_settings;
        }
    }

    async fn cleanup(&self) {
        self.inner.http_cleanup().await;
    }
}

/// Whether a connection's first bytes are the HTTP/2 preface, or as much of it as arrived. No
/// HTTP/1 request starts this way (`PRI` is no method Aegis allows).
fn starts_like_preface(first: &[u8]) -> bool {
    let n = first.len().min(http2::PREFACE.len());
    first[..n] == http2::PREFACE[..n]
}
