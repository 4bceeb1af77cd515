//! The socket of an HTTP/2 connection as the `h2` crate reads it: first the bytes the dispatch
//! loop already read (an h2c preface), then the socket, with every frame header counted by a
//! [`FrameCounter`] on the way. When the client floods control frames, reads stop (the `h2`
//! crate sees nothing more) and the connection's [`Watch`] wakes the accept loop, which ends
//! the connection with GOAWAY.

use super::frames::{Flood, FrameCounter};
use async_trait::async_trait;
use bytes::{Buf, BytesMut};
use pingora::protocols::{Peek, Stream};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::Notify;

/// Why a connection must end, raised by its socket or its streams, seen by its accept loop.
#[derive(Debug, Default)]
pub struct Watch {
    reason: Mutex<Option<Abuse>>,
    wake: Notify,
}

/// What a client did to lose its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abuse {
    Flood(Flood),
    /// A response could not be written for `write_timeout` (closed flow-control window).
    StalledWrite,
    /// A request body made no progress for `read_timeout`.
    StalledUpload,
}

impl Watch {
    /// Records why the connection must end (the first reason wins) and wakes the accept loop.
    pub fn raise(&self, abuse: Abuse) {
        let mut reason = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if reason.is_none() {
            *reason = Some(abuse);
            self.wake.notify_one();
        }
    }

    pub fn raised(&self) -> Option<Abuse> {
        *self.reason.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resolves once a reason has been raised.
    pub async fn wait(&self) -> Abuse {
        loop {
            if let Some(abuse) = self.raised() {
                return abuse;
            }
            self.wake.notified().await;
        }
    }
}

/// An HTTP/2 client connection's socket, with its control frames counted.
#[derive(Debug)]
pub struct GuardedIo {
    inner: Stream,
    /// Bytes read before the connection was known to be HTTP/2, replayed first.
    prefix: BytesMut,
    counter: FrameCounter,
    watch: Arc<Watch>,
}

impl GuardedIo {
    pub fn new(inner: Stream, prefix: BytesMut, control_frames_per_second: u32) -> Self {
        GuardedIo {
            inner,
            prefix,
            counter: FrameCounter::new(control_frames_per_second),
            watch: Arc::new(Watch::default()),
        }
    }

    pub fn watch(&self) -> Arc<Watch> {
        self.watch.clone()
    }
}

impl AsyncRead for GuardedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        // SECURITY: once a flood is detected nothing more reaches the `h2` crate; the accept
        // loop (woken by the watch) sends GOAWAY and closes.
        if this.watch.raised().is_some() {
            return Poll::Pending;
        }
        let before = buf.filled().len();
        if this.prefix.is_empty() {
            std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        } else {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.advance(n);
        }
        // SECURITY: PING/SETTINGS/RST_STREAM/PRIORITY floods (the `h2` crate answers each
        // without limit) are counted here, per connection and second.
        if let Err(flood) = this.counter.feed(&buf.filled()[before..], Instant::now()) {
            this.watch.raise(Abuse::Flood(flood));
        }
        Poll::Ready(Ok(()))
    }
}

// The write half and Pingora's transport traits, passed through to the socket. Pingora's HTTP/2
// sessions read the connection's digests once, before the handshake.
delegate_stream!(GuardedIo);

#[async_trait]
impl Peek for GuardedIo {}
