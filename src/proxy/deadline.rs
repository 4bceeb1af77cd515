//! The slowloris defence (§3.6): a request header must arrive whole within `read_timeout`.
//!
//! Pingora times out each read of a request header separately (and, on a fresh connection, with
//! the keep-alive timeout), so a client sending one byte every few seconds would hold a
//! connection open forever. [`HeaderDeadline`] wraps Pingora's HTTP proxy app and serves each
//! HTTP/1 connection itself: it waits for a request's first byte (at most `read_timeout` on a new
//! connection, `idle_timeout` between keep-alive requests), then gives the whole header
//! `read_timeout`. The proxy marks the header as read in `early_request_filter` through a
//! task-local flag; after that the request runs as long as it needs.

use async_trait::async_trait;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

tokio::task_local! {
    static HEADER_READ: Arc<AtomicBool>;
}

/// Called by the proxy once a request header has been parsed.
pub fn mark_header_read() {
    let _ = HEADER_READ.try_with(|flag| flag.store(true, Ordering::Release));
}

/// Pingora's HTTP app with a whole-header deadline on every HTTP/1 request.
pub struct HeaderDeadline<A> {
    pub inner: Arc<A>,
    pub read_timeout: Duration,
    pub idle_timeout: Duration,
}

#[async_trait]
impl<A: HttpServerApp + Send + Sync + 'static> ServerApp for HeaderDeadline<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let mut stream = stream;
        let mut settings: Option<HttpPersistentSettings> = None;
        let mut shutdown_changes = shutdown.clone();
        // One timer per connection, re-armed for each wait: cheaper than a new one per wait.
        let timer = tokio::time::sleep(self.read_timeout);
        tokio::pin!(timer);
        let mut wait = self.read_timeout;
        loop {
            // SECURITY: slowloris — a connection that sends nothing is dropped after the wait,
            // and one that dribbles its header after `read_timeout`.
            if *shutdown.borrow() {
                return None;
            }
            timer.as_mut().reset(Instant::now() + wait);
            let mut byte = [0u8; 1];
            tokio::select! {
                peeked = stream.try_peek(&mut byte) => peeked.ok()?,
                _ = &mut timer => return None,
                _ = shutdown_changes.changed() => return None,
            };
            let mut session = ServerSession::new_http1(stream);
            match settings.take() {
                Some(settings) => settings.apply_to_session(&mut session),
                None => session.set_keepalive(Some(self.idle_timeout.as_secs().max(1))),
            }
            if *shutdown.borrow() {
                session.set_keepalive(None);
            }
            let header_read = Arc::new(AtomicBool::new(false));
            let request = HEADER_READ.scope(
                header_read.clone(),
                self.inner.process_new_http(session, shutdown),
            );
            tokio::pin!(request);
            timer.as_mut().reset(Instant::now() + self.read_timeout);
            let reused = tokio::select! {
                reused = &mut request => reused,
                _ = &mut timer => {
                    if !header_read.load(Ordering::Acquire) {
                        log::debug!("request header not received within {:?}; connection closed", self.read_timeout);
                        return None;
                    }
                    request.await
                }
            };
            let (next, next_settings) = reused?.consume();
            stream = next;
            settings = next_settings;
            wait = self.idle_timeout;
        }
    }

    async fn cleanup(&self) {
        self.inner.http_cleanup().await;
    }
}
