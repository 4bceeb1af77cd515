//! [`DeadlineStream`]: a client connection whose request headers must arrive whole within a
//! deadline, with one timer per connection. It follows the pure policy of `policy.rs`; the loop
//! in `mod.rs` drives it.

use super::policy::{timer_step, Deadlines, Phase, TimerStep};
use bytes::BytesMut;
use pingora::protocols::Stream;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::{Instant, Sleep};

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
    pub(super) inner: Stream,
    deadlines: Deadlines,
    /// True from the start of a request until the proxy has its header.
    pub(super) in_header: AtomicBool,
    /// Requests begun on this connection (1 for the first).
    pub(super) request: u32,
    /// When the wait for this request's first byte times out (set when the wait begins).
    idle_deadline: Option<Instant>,
    /// Set on the first read after the header started: it was not complete in one read.
    header_deadline: Option<Instant>,
    /// The connection's one timer, and the instant it is armed for.
    timer: Option<(Pin<Box<Sleep>>, Instant)>,
    /// Set by the proxy (`mark_tunnel`) for a WebSocket handshake and its tunnel: milliseconds
    /// without a byte either way after which the connection is closed; 0 when not a tunnel.
    pub(super) tunnel_idle_ms: AtomicU64,
    /// The last byte read or written in tunnel mode (set when the first read waits in it).
    tunnel_activity: Option<Instant>,
}

impl DeadlineStream {
    pub fn new(inner: Stream, deadlines: Deadlines) -> Self {
        Self {
            inner,
            deadlines,
            in_header: AtomicBool::new(false),
            request: 0,
            idle_deadline: None,
            header_deadline: None,
            timer: None,
            tunnel_idle_ms: AtomicU64::new(0),
            tunnel_activity: None,
        }
    }

    /// Waits for the first bytes of the next request and returns them in a buffer Pingora's
    /// request parser takes over as its own (its "pipelined prefix"), so they are copied once
    /// and Pingora allocates no header buffer of its own. `None` when the connection ended:
    /// closed by the client, failed, or idle too long.
    pub(super) fn poll_first_bytes(&mut self, cx: &mut Context<'_>) -> Poll<Option<BytesMut>> {
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
        if polled.is_ready() {
            return polled;
        }
        let phase = Phase::AwaitingRequest {
            request: self.request,
        };
        let Some(limit) = self.deadlines.limit(phase) else {
            return Poll::Pending;
        };
        let deadline = *self
            .idle_deadline
            .get_or_insert_with(|| Instant::now() + limit);
        match self.poll_deadline(cx, deadline) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Starts the next request on this connection: its header deadline applies until the proxy
    /// marks the header read.
    pub(super) fn begin_request(&mut self) {
        self.request += 1;
        self.in_header.store(true, Ordering::Relaxed);
        self.idle_deadline = None;
        self.header_deadline = None;
        self.tunnel_idle_ms.store(0, Ordering::Relaxed);
        self.tunnel_activity = None;
    }

    /// After each write: in tunnel mode, bytes to the client are activity too (a live feed
    /// the client only listens to is not idle).
    pub(super) fn wrote(&mut self, written: usize) {
        if written > 0 && self.tunnel_activity.is_some() {
            self.tunnel_activity = Some(Instant::now());
        }
    }

    /// A read in tunnel mode: fails once nothing was read or written for `idle`.
    fn poll_tunnel_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
        idle: Duration,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        match polled {
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                self.tunnel_activity = Some(Instant::now());
                polled
            }
            Poll::Pending => {
                let last = *self.tunnel_activity.get_or_insert_with(Instant::now);
                if self.poll_deadline(cx, last + idle).is_ready() {
                    return Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("WebSocket tunnel idle for {idle:?}: closed"),
                    )));
                }
                Poll::Pending
            }
            _ => polled,
        }
    }

    /// Polls the connection's timer towards `deadline`: ready once `deadline` has passed.
    fn poll_deadline(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<()> {
        let (timer, armed_for) = self
            .timer
            .get_or_insert_with(|| (Box::pin(tokio::time::sleep_until(deadline)), deadline));
        if timer_step(*armed_for, deadline, false) == TimerStep::Rearm {
            timer.as_mut().reset(deadline);
            *armed_for = deadline;
        }
        loop {
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if timer_step(*armed_for, deadline, true) == TimerStep::Expired {
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
                self.deadlines.read_timeout
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
        let phase = if this.in_header.load(Ordering::Relaxed) {
            Phase::ReadingHeader
        } else {
            match this.tunnel_idle_ms.load(Ordering::Relaxed) {
                0 => Phase::Serving,
                ms => Phase::Tunnel {
                    idle: Duration::from_millis(ms),
                },
            }
        };
        if let Phase::Tunnel { idle } = phase {
            return this.poll_tunnel_read(cx, buf, idle);
        }
        let Some(limit) = this.deadlines.limit(phase) else {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        };
        let deadline = *this
            .header_deadline
            .get_or_insert_with(|| Instant::now() + limit);
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if polled.is_pending() && this.poll_deadline(cx, deadline).is_ready() {
            return Poll::Ready(Err(this.header_timed_out()));
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    const READ: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(60);
    /// Tokio's timer wheel rounds a deadline up to its next millisecond.
    const TICK: Duration = Duration::from_millis(2);

    /// A connection to Aegis: the client's end and Aegis's stream.
    fn connection() -> (DuplexStream, DeadlineStream) {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let deadlines = Deadlines {
            read_timeout: READ,
            idle_timeout: IDLE,
        };
        (client, DeadlineStream::new(Box::new(server), deadlines))
    }

    async fn first_bytes(stream: &mut DeadlineStream) -> Option<BytesMut> {
        poll_fn(|cx| stream.poll_first_bytes(cx)).await
    }

    fn assert_took(start: Instant, expected: Duration) {
        let took = start.elapsed();
        assert!(
            took >= expected && took <= expected + TICK,
            "took {took:?}, expected {expected:?}"
        );
    }

    /// Begins a request that never comes: the wait ends after `limit`.
    async fn assert_wait_ends_after(stream: &mut DeadlineStream, limit: Duration) {
        stream.begin_request();
        let start = Instant::now();
        assert_eq!(first_bytes(stream).await, None);
        assert_took(start, limit);
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_connection_that_sends_nothing_ends_after_read_timeout() {
        let (_client, mut stream) = connection();
        assert_wait_ends_after(&mut stream, READ).await;
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_keep_alive_connection_ends_after_idle_timeout() {
        let (mut client, mut stream) = connection();
        stream.begin_request();
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let first = first_bytes(&mut stream).await.expect("the first request");
        assert_eq!(&first[..], b"GET / HTTP/1.1\r\n\r\n");
        stream.in_header.store(false, Ordering::Relaxed);
        assert_wait_ends_after(&mut stream, IDLE).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_connection_ends_the_wait_at_once() {
        let (client, mut stream) = connection();
        stream.begin_request();
        drop(client);
        let start = Instant::now();
        assert_eq!(first_bytes(&mut stream).await, None);
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickled_header_fails_read_timeout_after_its_first_read() {
        let (mut client, mut stream) = connection();
        stream.begin_request();
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        first_bytes(&mut stream)
            .await
            .expect("the header's first bytes");
        // One byte a second, for longer than read_timeout.
        let trickle = tokio::spawn(async move {
            for _ in 0..30 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if client.write_all(b"X").await.is_err() {
                    return;
                }
            }
        });
        let start = Instant::now();
        let mut buf = [0u8; 64];
        let failure = loop {
            match stream.read(&mut buf).await {
                Ok(n) => assert_eq!(n, 1, "bytes keep arriving"),
                Err(e) => break e,
            }
        };
        assert_eq!(failure.kind(), std::io::ErrorKind::TimedOut);
        assert!(failure.to_string().contains("slowloris"), "{failure}");
        assert_took(start, READ);
        trickle.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn once_the_header_is_read_the_request_has_no_deadline() {
        let (mut client, mut stream) = connection();
        stream.begin_request();
        client.write_all(b"POST / HTTP/1.1\r\n\r\n").await.unwrap();
        first_bytes(&mut stream).await.expect("the header");
        let stream: Stream = Box::new(stream);
        super::super::mark_header_read(Some(&stream));
        let mut stream = stream;
        // The body comes far later than read_timeout and idle_timeout.
        tokio::time::sleep(IDLE * 2).await;
        client.write_all(b"body").await.unwrap();
        let mut buf = [0u8; 4];
        stream
            .read_exact(&mut buf)
            .await
            .expect("a slow body is read");
        assert_eq!(&buf, b"body");
    }

    #[tokio::test(start_paused = true)]
    async fn the_timer_of_an_earlier_wait_does_not_end_a_later_one_early() {
        let (mut client, mut stream) = connection();
        // Request 1 waits 5 s: the timer is armed for 10 s (read_timeout).
        stream.begin_request();
        let start = Instant::now();
        let writer = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        };
        let (first, ()) = tokio::join!(first_bytes(&mut stream), writer);
        assert!(first.is_some());
        stream.in_header.store(false, Ordering::Relaxed);
        let armed = stream.timer.as_ref().map(|(_, at)| *at);
        assert_eq!(armed, Some(start + READ));

        // Request 2's wait ends at 5 s + idle_timeout; the timer stays armed for 10 s and is
        // moved only when it fires there.
        stream.begin_request();
        assert_eq!(first_bytes(&mut stream).await, None);
        assert_took(start, Duration::from_secs(5) + IDLE);
    }
}
