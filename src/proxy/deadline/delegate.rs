//! The Pingora stream traits of [`DeadlineStream`], each handed to the wrapped stream: the
//! deadline changes how a connection reads; its writes only keep a tunnel from being idle.

use super::stream::DeadlineStream;
use async_trait::async_trait;
use pingora::protocols::Peek;

// The write half and the transport traits (`crate::delegate`).
delegate_stream!(DeadlineStream, DeadlineStream::wrote);

#[async_trait]
impl Peek for DeadlineStream {
    async fn try_peek(&mut self, buf: &mut [u8]) -> std::io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}
