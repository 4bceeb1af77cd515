//! HTTP/2 from clients (§11.2): ALPN h2 on TLS, h2c with prior knowledge where enabled.
//!
//! The dispatch loop (`proxy::deadline`) hands a connection here once it knows it speaks
//! HTTP/2. [`serve`] runs Pingora's own HTTP/2 machinery (`h2` crate handshake, Pingora's
//! `HttpSession` per stream, the same `HttpServerApp` as HTTP/1), so every stream goes through
//! the whole request path of §3. Around it, Aegis adds what neither Pingora nor the `h2` crate
//! bound:
//!
//! - the handshake (preface + SETTINGS) must finish within `read_timeout`, and a connection
//!   with no open stream is closed after `idle_timeout`;
//! - control-frame floods (PING, SETTINGS, RST_STREAM, PRIORITY) are counted per second on the
//!   raw bytes (`frames`, `io`) and end the connection with GOAWAY ENHANCE_YOUR_CALM;
//! - a stream whose response cannot be written for `write_timeout` (zero-window stall) ends the
//!   connection the same way;
//! - malformed streams that Pingora rejects are budgeted per connection (Pingora's public
//!   accept call does not keep its own budget across calls).
//!
//! The `h2` settings each limit maps onto are chosen in [`Http2Config::options`].

mod frames;
mod io;

use crate::config::Http2Settings;
use crate::security::mask::MaskedIp;
use bytes::BytesMut;
use io::{Abuse, GuardedIo, Watch};
use pingora::apps::HttpServerApp;
use pingora::protocols::http::v2::server::{self, H2Accept, H2Options, HttpSession};
use pingora::protocols::http::ServerSession;
use pingora::protocols::{Digest, Stream};
use pingora::server::ShutdownWatch;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

pub use frames::PREFACE;

/// Streams Pingora may reject as malformed (forbidden bytes in `:path`, conflicting
/// Content-Length, bad authority) before the connection is ended: Pingora's own budget.
const MAX_MALFORMED_STREAMS: usize = 32;
/// How long a connection being ended gets to write its GOAWAY.
const GOAWAY_FLUSH: Duration = Duration::from_secs(1);

/// Everything an HTTP/2 connection needs from the config.
#[derive(Debug, Clone)]
pub struct Http2Config {
    pub settings: Http2Settings,
    pub max_header_bytes: usize,
    pub read_timeout: Duration,
    pub idle_timeout: Duration,
}

impl Http2Config {
    /// The HTTP/2 part of `config`, for one connection.
    pub fn new(config: &crate::config::Config) -> Self {
        Http2Config {
            settings: config.http2.clone(),
            max_header_bytes: config.server.max_header_bytes,
            read_timeout: config.server.read_timeout,
            idle_timeout: config.server.idle_timeout,
        }
    }

    /// The `h2` crate's server settings, each set deliberately.
    pub fn options(&self) -> H2Options {
        let s = &self.settings;
        let mut options = H2Options::default();
        // SECURITY: stream exhaustion — streams open at once per connection (SETTINGS).
        options.max_concurrent_streams(s.max_concurrent_streams);
        // SECURITY: header floods. Aegis answers headers over `server.max_header_bytes` with its
        // JSON 431 (the guard measures them as HTTP/1 would); HPACK counts 32 more bytes per
        // field, so the codec's limit is twice that, and the `h2` crate refuses what is larger
        // still (bare 431) and ends the connection at four times it. This limit also bounds the
        // CONTINUATION frames one header block may use (CVE-2024-27316).
        let header_list = self
            .max_header_bytes
            .saturating_mul(2)
            .min(u32::MAX as usize);
        options.max_header_list_size(header_list as u32);
        // Flow control: how much request body one stream / one connection may have in flight
        // before Aegis forwarded it, i.e. the memory a client can make Aegis hold.
        options.initial_window_size(s.initial_stream_window);
        options.initial_connection_window_size(s.initial_connection_window);
        // SECURITY: a client that does not read makes Aegis buffer responses; at most this much
        // per stream (the `h2` default is 400 KiB).
        options.max_send_buffer_size(s.max_send_buffer);
        // SECURITY: rapid reset (CVE-2023-44487) — streams the client resets before Aegis has
        // accepted them; more than this at once ends the connection (ENHANCE_YOUR_CALM). The
        // `h2` default, stated so it cannot drift. Resets of accepted streams are counted by
        // the frame counter.
        options.max_pending_accept_reset_streams(20);
        // SECURITY: streams the `h2` crate itself resets for protocol errors (malformed headers,
        // Content-Length disagreeing with DATA): a client causing this many is not a browser,
        // the connection ends with ENHANCE_YOUR_CALM (the `h2` default allows 1024).
        options.max_local_error_reset_streams(Some(MAX_MALFORMED_STREAMS * 2));
        // Reset streams remembered so late frames for them are ignored, not errors.
        options.max_concurrent_reset_streams(s.max_concurrent_streams as usize);
        options
    }
}

tokio::task_local! {
    /// The stream a task serves, so the request path can report progress and abuse.
    static STREAM: Arc<StreamState>;
}

/// Called by the proxy when writing a response to an HTTP/2 client timed out: its window stayed
/// closed for `write_timeout`. The stream has failed; this ends its connection too.
pub fn response_write_stalled() {
    // SECURITY: zero-window stall — a client that never opens its flow-control window loses
    // the connection, so it cannot hold streams and buffers one `write_timeout` after another.
    let _ = STREAM.try_with(|stream| stream.watch.raise(Abuse::StalledWrite));
}

/// Called by the proxy for each piece of an HTTP/2 request body it reads.
pub fn request_body_progress(end_of_stream: bool) {
    let _ = STREAM.try_with(|stream| stream.progress(end_of_stream));
}

/// One stream, as its task and the request path see it.
struct StreamState {
    watch: Arc<Watch>,
    started: Instant,
    /// Milliseconds after `started` at which the request body last made progress;
    /// [`BODY_DONE`] once it is complete (or there is none).
    last_body: AtomicU64,
}

const BODY_DONE: u64 = u64::MAX;

impl StreamState {
    fn progress(&self, end_of_stream: bool) {
        let at = if end_of_stream {
            BODY_DONE
        } else {
            self.started.elapsed().as_millis() as u64
        };
        self.last_body.store(at, Ordering::Relaxed);
    }

    /// Resolves once the request body has made no progress for `read_timeout`; never once it
    /// is complete.
    async fn upload_stalled(&self, read_timeout: Duration) {
        loop {
            let last = self.last_body.load(Ordering::Relaxed);
            if last == BODY_DONE {
                return std::future::pending().await;
            }
            let deadline = self.started + Duration::from_millis(last) + read_timeout;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline.into()).await;
        }
    }
}

/// Serves an HTTP/2 connection until it ends. `prefix` holds the bytes already read from it
/// (the start of an h2c preface), which the `h2` crate reads first.
pub async fn serve<A>(
    app: &Arc<A>,
    stream: Stream,
    prefix: BytesMut,
    shutdown: &ShutdownWatch,
    config: &Http2Config,
) where
    A: HttpServerApp + Send + Sync + 'static,
{
    let digest = Arc::new(Digest {
        ssl_digest: stream.get_ssl_digest(),
        timing_digest: stream.get_timing_digest(),
        proxy_digest: stream.get_proxy_digest(),
        socket_digest: stream.get_socket_digest(),
    });
    let client = digest
        .socket_digest
        .as_ref()
        .and_then(|d| d.peer_addr())
        .and_then(|a| a.as_inet())
        .map(|a| MaskedIp(a.ip()).to_string())
        .unwrap_or_else(|| "-".into());
    let io = GuardedIo::new(
        stream,
        prefix,
        config.settings.max_control_frames_per_second,
    );
    let watch = io.watch();
    // SECURITY: slowloris before the first request — the preface and the client's SETTINGS
    // must arrive within `read_timeout`, as an HTTP/1 request header must.
    let handshake = server::handshake(Box::new(io), Some(config.options()));
    let mut conn = match tokio::time::timeout(config.read_timeout, handshake).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            log::debug!("HTTP/2 handshake with {client} failed: {e}");
            return;
        }
        Err(_) => {
            log::debug!("HTTP/2 handshake with {client} not done within read_timeout");
            return;
        }
    };
    let active = Arc::new(Active::default());
    let mut shutdown = shutdown.clone();
    let mut draining = false;
    let mut malformed = 0;
    loop {
        let accepted = tokio::select! {
            biased;
            abuse = watch.wait() => {
                log::warn!("HTTP/2 client {client}: {}; connection closed (GOAWAY)", describe(abuse));
                end(conn, h2::Reason::ENHANCE_YOUR_CALM).await;
                return;
            }
            _ = shutdown.changed(), if !draining => {
                conn.graceful_shutdown();
                draining = true;
                continue;
            }
            // SECURITY: a connection with no open stream is closed after `idle_timeout`.
            _ = active.idle_for(config.idle_timeout), if !draining => {
                end(conn, h2::Reason::NO_ERROR).await;
                return;
            }
            accepted = HttpSession::from_h2_conn(&mut conn, digest.clone()) => accepted,
        };
        match accepted {
            Err(e) => {
                let h2 = e.root_cause().downcast_ref::<h2::Error>();
                match h2.filter(|e| e.is_go_away() && e.is_library()) {
                    // The `h2` crate's own defences (CONTINUATION floods, resets before
                    // accept, too many protocol errors, oversized header lists).
                    Some(e) if e.reason() == Some(h2::Reason::ENHANCE_YOUR_CALM) => log::warn!(
                        "HTTP/2 client {client}: over an h2 codec limit (too many CONTINUATION \
                         frames, resets before accept, stream errors, or header bytes); \
                         connection closed (GOAWAY)"
                    ),
                    // Clients often close without GOAWAY; malformed frames end here too.
                    _ => log::debug!("HTTP/2 connection with {client} ended: {e}"),
                }
                return;
            }
            Ok(None) => return,
            Ok(Some(accepted)) => {
                let session = match accepted {
                    H2Accept::Session(session) if session.refused().is_none() => Some(session),
                    // Marked refused by the patched pingora-core (an invalid or conflicting
                    // authority): served all the same, so that the proxy answers it with
                    // Aegis's 400 (`request_error_filter`); it counts as malformed.
                    H2Accept::Session(session) => {
                        malformed += 1;
                        Some(session)
                    }
                    // Reset by Pingora (a forbidden byte in `:path`, conflicting lengths).
                    H2Accept::Rejected => {
                        malformed += 1;
                        None
                    }
                };
                if malformed >= MAX_MALFORMED_STREAMS {
                    log::warn!("HTTP/2 client {client}: {malformed} malformed streams; connection closed (GOAWAY)");
                    end(conn, h2::Reason::ENHANCE_YOUR_CALM).await;
                    return;
                }
                let Some(session) = session else {
                    continue;
                };
                let uploading = !session.is_body_done();
                let stream = Arc::new(StreamState {
                    watch: watch.clone(),
                    started: Instant::now(),
                    last_body: AtomicU64::new(if uploading { 0 } else { BODY_DONE }),
                });
                let guard = active.start();
                let task = serve_stream(
                    app.clone(),
                    session,
                    shutdown.clone(),
                    stream.clone(),
                    config.read_timeout,
                );
                tokio::spawn(STREAM.scope(stream, async move {
                    let _guard = guard;
                    task.await
                }));
            }
        }
    }
}

/// One stream through the proxy, watched for a stalled request body.
async fn serve_stream<A>(
    app: Arc<A>,
    session: HttpSession,
    shutdown: ShutdownWatch,
    stream: Arc<StreamState>,
    read_timeout: Duration,
) where
    A: HttpServerApp + Send + Sync + 'static,
{
    let process = app.process_new_http(ServerSession::new_http2(session), &shutdown);
    tokio::pin!(process);
    tokio::select! {
        _ = &mut process => return,
        // SECURITY: slow uploads (R.U.D.Y.) — Pingora reads HTTP/2 request bodies without a
        // timeout, so a stalled body would hold its backend request forever. No progress for
        // `read_timeout` ends the connection; the proxy then sees the stream fail and finishes
        // the request as for any client error.
        _ = stream.upload_stalled(read_timeout) => stream.watch.raise(Abuse::StalledUpload),
    }
    process.await;
}

fn describe(abuse: Abuse) -> String {
    match abuse {
        Abuse::Flood(flood) => format!(
            "{} flood (over http2.max_control_frames_per_second)",
            flood.name()
        ),
        Abuse::StalledWrite => {
            "response stalled for write_timeout (flow-control window kept closed)".into()
        }
        Abuse::StalledUpload => "request body stalled for read_timeout".into(),
    }
}

/// Ends the connection: GOAWAY with `reason`, then a short wait for the `h2` crate to write
/// it. Open streams fail.
async fn end(mut conn: h2::server::Connection<Stream, bytes::Bytes>, reason: h2::Reason) {
    conn.abrupt_shutdown(reason);
    let flush = async { while let Some(Ok(_)) = conn.accept().await {} };
    let _ = tokio::time::timeout(GOAWAY_FLUSH, flush).await;
}

/// Streams being served on one connection.
#[derive(Default)]
struct Active {
    count: AtomicUsize,
    idle: Notify,
}

/// Held by a stream's task while it runs.
struct StreamGuard(Arc<Active>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.0.idle.notify_one();
        }
    }
}

impl Active {
    fn start(self: &Arc<Self>) -> StreamGuard {
        self.count.fetch_add(1, Ordering::Relaxed);
        StreamGuard(self.clone())
    }

    /// Resolves once no stream has been open for `idle`.
    async fn idle_for(&self, idle: Duration) {
        while self.count.load(Ordering::Relaxed) != 0 {
            self.idle.notified().await;
        }
        tokio::time::sleep(idle).await;
    }
}
