//! `delegate_stream!`: the write half and Pingora's transport traits of a stream wrapper, each
//! handed to its `inner` stream (a boxed Pingora `Stream`). Aegis wraps client sockets twice (the connection deadlines of
//! `proxy::deadline` and the HTTP/2 frame counter of `http2::io`); both change how a connection
//! *reads* and nothing else, so everything else is written once here.
//!
//! The wrapper implements `AsyncRead` and `Peek` itself (reading is what it changes); it may
//! watch its writes with a function called after each (the connection deadlines time a
//! WebSocket tunnel's idleness in both directions).

/// Implements `AsyncWrite`, `Shutdown`, `UniqueID`, `Ssl`, `GetTimingDigest`, `GetProxyDigest`
/// and `GetSocketDigest` for `$wrapper` by calling the same method on `self.inner`.
macro_rules! delegate_stream {
    ($wrapper:ty) => {
        delegate_stream!($wrapper, |_wrapper, _written| {});
    };
    // `$on_write` is called with the wrapper and each write's byte count (0 when none).
    ($wrapper:ty, $on_write:expr) => {
        impl tokio::io::AsyncWrite for $wrapper {
            fn poll_write(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let polled =
                    tokio::io::AsyncWrite::poll_write(std::pin::Pin::new(&mut self.inner), cx, buf);
                if let std::task::Poll::Ready(Ok(n)) = &polled {
                    let on_write: fn(&mut Self, usize) = $on_write;
                    on_write(&mut *self, *n);
                }
                polled
            }

            fn poll_flush(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                tokio::io::AsyncWrite::poll_flush(std::pin::Pin::new(&mut self.inner), cx)
            }

            fn poll_shutdown(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                tokio::io::AsyncWrite::poll_shutdown(std::pin::Pin::new(&mut self.inner), cx)
            }

            fn poll_write_vectored(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let polled = tokio::io::AsyncWrite::poll_write_vectored(
                    std::pin::Pin::new(&mut self.inner),
                    cx,
                    bufs,
                );
                if let std::task::Poll::Ready(Ok(n)) = &polled {
                    let on_write: fn(&mut Self, usize) = $on_write;
                    on_write(&mut *self, *n);
                }
                polled
            }

            fn is_write_vectored(&self) -> bool {
                tokio::io::AsyncWrite::is_write_vectored(&self.inner)
            }
        }

        #[async_trait::async_trait]
        impl pingora::protocols::Shutdown for $wrapper {
            async fn shutdown(&mut self) {
                pingora::protocols::Shutdown::shutdown(&mut *self.inner).await
            }
        }

        impl pingora::protocols::UniqueID for $wrapper {
            fn id(&self) -> pingora::protocols::UniqueIDType {
                pingora::protocols::UniqueID::id(&*self.inner)
            }
        }

        impl pingora::protocols::Ssl for $wrapper {
            fn get_ssl(&self) -> Option<&pingora::protocols::tls::TlsRef> {
                pingora::protocols::Ssl::get_ssl(&*self.inner)
            }

            fn get_ssl_digest(&self) -> Option<std::sync::Arc<pingora::protocols::tls::SslDigest>> {
                pingora::protocols::Ssl::get_ssl_digest(&*self.inner)
            }

            fn selected_alpn_proto(&self) -> Option<pingora::protocols::ALPN> {
                pingora::protocols::Ssl::selected_alpn_proto(&*self.inner)
            }
        }

        impl pingora::protocols::GetTimingDigest for $wrapper {
            fn get_timing_digest(&self) -> Vec<Option<pingora::protocols::TimingDigest>> {
                pingora::protocols::GetTimingDigest::get_timing_digest(&*self.inner)
            }

            fn get_read_pending_time(&self) -> std::time::Duration {
                pingora::protocols::GetTimingDigest::get_read_pending_time(&*self.inner)
            }

            fn get_write_pending_time(&self) -> std::time::Duration {
                pingora::protocols::GetTimingDigest::get_write_pending_time(&*self.inner)
            }
        }

        impl pingora::protocols::GetProxyDigest for $wrapper {
            fn get_proxy_digest(
                &self,
            ) -> Option<std::sync::Arc<pingora::protocols::raw_connect::ProxyDigest>> {
                pingora::protocols::GetProxyDigest::get_proxy_digest(&*self.inner)
            }

            fn set_proxy_digest(&mut self, digest: pingora::protocols::raw_connect::ProxyDigest) {
                pingora::protocols::GetProxyDigest::set_proxy_digest(&mut *self.inner, digest)
            }
        }

        impl pingora::protocols::GetSocketDigest for $wrapper {
            fn get_socket_digest(
                &self,
            ) -> Option<std::sync::Arc<pingora::protocols::SocketDigest>> {
                pingora::protocols::GetSocketDigest::get_socket_digest(&*self.inner)
            }

            fn set_socket_digest(&mut self, digest: pingora::protocols::SocketDigest) {
                pingora::protocols::GetSocketDigest::set_socket_digest(&mut *self.inner, digest)
            }
        }
    };
}
