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
//!   timeouts apply to the body).
//!
//! A header that arrives in one read (every ordinary request) costs one clock read and no timer
//! operation.

use crate::http2::{self, Http2Config};
use async_trait::async_trait;
use bytes::BytesMut;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::tls::{SslDigest, TlsRef};
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, Stream,
    TimingDigest, UniqueID, UniqueIDType, ALPN,
};
use pingora::server::ShutdownWatch;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Called by the proxy once a request header has been parsed: the header deadline no longer
/// applies to the connection's reads.
pub fn mark_header_read(stream: Option<&Stream>) {
    if let Some(stream) = stream.and_then(|s| s.as_any().downcast_ref::<DeadlineStream>()) {
        stream.in_header.store(false, Ordering::Relaxed);
    }
}

/// Pingora's HTTP app with a whole-header deadline on every HTTP/1 request; one per listener.
/// HTTP/2 connections (ALPN h2, or the h2c preface where `h2c` is on) go to [`crate::http2`].
pub struct HeaderDeadline<A> {
    pub inner: Arc<A>,
    pub read_timeout: Duration,
    pub idle_timeout: Duration,
    /// The listener terminates TLS: each connection starts with this handshake (under its own
    /// deadline); after it, the stream is the decrypted one and `selected_alpn_proto` tells
    /// what the client chose.
    pub tls: Option<Arc<crate::tls::Terminator>>,
    /// A plain listener accepts HTTP/2 with prior knowledge (`listeners[].h2c`).
    pub h2c: bool,
    pub http2: Http2Config,
}

#[async_trait]
impl<A: HttpServerApp + Send + Sync + 'static> ServerApp for HeaderDeadline<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let stream = match &self.tls {
            Some(tls) => tls.accept(stream).await?,
            None => stream,
        };
        if stream.selected_alpn_proto() == Some(ALPN::H2) {
            http2::serve(&self.inner, stream, BytesMut::new(), shutdown, &self.http2).await;
            return None;
        }
        let mut stream = Box::new(DeadlineStream::new(
            stream,
            self.read_timeout,
            self.idle_timeout,
        ));
        let mut settings: Option<HttpPersistentSettings> = None;
        loop {
            stream.begin_request();
            // The wait for a request happens here, outside Pingora: an idle keep-alive
            // connection holds no Pingora session, only this loop and its socket.
            let first = std::future::poll_fn(|cx| stream.poll_first_bytes(cx)).await?;
            if self.h2c && stream.request == 1 && starts_like_preface(&first) {
                // The connection's first bytes are (the start of) the HTTP/2 preface; the
                // `h2` crate reads them again and checks the rest.
                let inner = stream.inner;
                http2::serve(&self.inner, inner, first, shutdown, &self.http2).await;
                return None;
            }
            let mut session = ServerSession::new_http1(stream);
            if let Some(settings) = settings.take() {
                settings.apply_to_session(&mut session);
            }
            session.set_pipelined_prefix(first);
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

thread_local! {
    /// Where each worker thread reads the first bytes of a request before they are handed to
    /// Pingora (copied out, so no connection holds a buffer while idle).
    static FIRST_READ: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0; FIRST_READ_BYTES].into_boxed_slice());
}

/// The most the first read of a request takes in; also the size of Pingora's L4 read buffer
/// (`server.rs`), so that this read bypasses that buffer.
pub const FIRST_READ_BYTES: usize = 4096;

/// A downstream connection whose request headers must arrive whole within a deadline.
#[derive(Debug)]
pub struct DeadlineStream {
    inner: Stream,
    read_timeout: Duration,
    idle_timeout: Duration,
    /// True from the start of a request until the proxy has its header.
    in_header: AtomicBool,
    /// Requests begun on this connection (1 for the first).
    request: u32,
    /// When the wait for this request's first byte times out (set when the wait begins).
    idle_deadline: Option<Instant>,
    /// Set on the first read after the header started: it was not complete in one read.
    header_deadline: Option<Instant>,
    /// The connection's one timer, and the instant it is armed for.
    timer: Option<(Pin<Box<Sleep>>, Instant)>,
}

impl DeadlineStream {
    pub fn new(inner: Stream, read_timeout: Duration, idle_timeout: Duration) -> Self {
        Self {
            inner,
            read_timeout,
            idle_timeout,
            in_header: AtomicBool::new(false),
            request: 0,
            idle_deadline: None,
            header_deadline: None,
            timer: None,
        }
    }

    /// Waits for the first bytes of the next request and returns them in a buffer Pingora's
    /// request parser takes over as its own (its "pipelined prefix"), so they are copied once
    /// and Pingora allocates no header buffer of its own. `None` when the connection ended:
    /// closed by the client, failed, or idle too long.
    fn poll_first_bytes(&mut self, cx: &mut Context<'_>) -> Poll<Option<BytesMut>> {
        let polled = FIRST_READ.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let mut read = ReadBuf::new(&mut scratch[..]);
            match Pin::new(&mut self.inner).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) if !read.filled().is_empty() => {
                    let mut first = BytesMut::with_capacity(FIRST_READ_BYTES);
                    first.extend_from_slice(read.filled());
                    Poll::Ready(Some(first))
                }
                Poll::Ready(_) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            }
        });
        match polled {
            Poll::Ready(first) => Poll::Ready(first),
            Poll::Pending => {
                // SECURITY: a connection that sends nothing is closed: after `read_timeout`
                // on a new connection, `idle_timeout` between keep-alive requests.
                let wait = if self.request <= 1 {
                    self.read_timeout
                } else {
                    self.idle_timeout
                };
                let deadline = *self
                    .idle_deadline
                    .get_or_insert_with(|| Instant::now() + wait);
                match self.poll_deadline(cx, deadline) {
                    Poll::Ready(()) => Poll::Ready(None),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    /// Starts the next request on this connection: its header deadline applies until the proxy
    /// marks the header read.
    fn begin_request(&mut self) {
        self.request += 1;
        self.in_header.store(true, Ordering::Relaxed);
        self.idle_deadline = None;
        self.header_deadline = None;
    }

    /// Polls the connection's timer towards `deadline`: ready once `deadline` has passed. The
    /// timer is moved earlier when it must be, and later only when it fires early, so waits
    /// whose deadline keeps moving later (one per keep-alive request) leave it alone.
    fn poll_deadline(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<()> {
        let (timer, armed_for) = self
            .timer
            .get_or_insert_with(|| (Box::pin(tokio::time::sleep_until(deadline)), deadline));
        if *armed_for > deadline {
            timer.as_mut().reset(deadline);
            *armed_for = deadline;
        }
        loop {
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if *armed_for >= deadline {
                return Poll::Ready(());
            }
            timer.as_mut().reset(deadline);
            *armed_for = deadline;
        }
    }

    fn header_timed_out(&self) -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "request header not complete within read_timeout ({:?}): slowloris",
                self.read_timeout
            ),
        )
    }
}

impl AsyncRead for DeadlineStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        // Pingora reads only after the loop has taken a request's first bytes, so a read in the
        // header phase is always for a header that has started to arrive.
        if !this.in_header.load(Ordering::Relaxed) {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        // SECURITY: slowloris — a header that has started to arrive must be complete within
        // `read_timeout`, however slowly its bytes trickle in.
        let deadline = *this
            .header_deadline
            .get_or_insert_with(|| Instant::now() + this.read_timeout);
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if polled.is_pending() && this.poll_deadline(cx, deadline).is_ready() {
            return Poll::Ready(Err(this.header_timed_out()));
        }
        polled
    }
}

impl AsyncWrite for DeadlineStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[async_trait]
impl Shutdown for DeadlineStream {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}

impl UniqueID for DeadlineStream {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for DeadlineStream {
    fn get_ssl(&self) -> Option<&TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for DeadlineStream {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for DeadlineStream {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest)
    }
}

impl GetSocketDigest for DeadlineStream {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.inner.set_socket_digest(digest)
    }
}

#[async_trait]
impl Peek for DeadlineStream {
    async fn try_peek(&mut self, buf: &mut [u8]) -> std::io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}
