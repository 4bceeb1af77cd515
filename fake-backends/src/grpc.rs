//! An HTTP/2 fake backend (h2c, or h2 over TLS with ALPN) with a small gRPC-style service, and
//! the blocking gRPC client the tests call it with. Built on the `h2` crate (the one Pingora
//! uses). Messages are gRPC length-prefixed frames (1 flag byte, 4 length bytes, the bytes);
//! the status goes in the `grpc-status` and `grpc-message` trailers.
//!
//! Service (any other path gets 404 with `grpc-status: 12`):
//! - `GET /health`: 200 `ok`;
//! - `POST /echo.Echo/Unary`: the request's messages back, then `grpc-status: 0`;
//! - `POST /echo.Echo/Missing`: no message, `grpc-status: 5`, `grpc-message: not%20here`;
//! - `POST /echo.Echo/Stream`: three messages; after the first it waits (at most 10 s) until
//!   [`GrpcBackend::release`], so a test can see the first arrive while the call is still open.
//!
//! With [`GrpcBackend::set_status`] other than 200, every non-health request gets that HTTP
//! status and no body.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use h2::server::SendResponse;
use h2::RecvStream;
use http::{HeaderMap, HeaderValue, Request, Response};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};

/// How long the streaming call waits for [`GrpcBackend::release`].
const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);

/// One request as the backend saw it.
#[derive(Debug, Clone)]
pub struct GrpcRequest {
    pub path: String,
    pub headers: HeaderMap,
}

#[derive(Default)]
struct State {
    status: AtomicU16,
    connections: AtomicUsize,
    health_probes: AtomicUsize,
    streams_open: AtomicUsize,
    requests: Mutex<Vec<GrpcRequest>>,
    release: Notify,
}

/// A running HTTP/2 backend; stopped when dropped.
pub struct GrpcBackend {
    addr: SocketAddr,
    tls: bool,
    state: Arc<State>,
    stop: watch::Sender<bool>,
}

impl GrpcBackend {
    /// An h2c backend (HTTP/2 with prior knowledge) on an ephemeral port of 127.0.0.1.
    pub fn start_h2c() -> anyhow::Result<GrpcBackend> {
        Self::start_h2c_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
    }

    /// An h2c backend listening on `addr`.
    pub fn start_h2c_on(addr: SocketAddr) -> anyhow::Result<GrpcBackend> {
        Self::start(addr, None)
    }

    /// An h2 backend: TLS with ALPN `h2`, with the PEM certificate chain and key given.
    pub fn start_h2(cert_pem: &[u8], key_pem: &[u8]) -> anyhow::Result<GrpcBackend> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .context("certificate PEM")?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).context("key PEM")?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        Self::start(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), Some(acceptor))
    }

    fn start(
        addr: SocketAddr,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> anyhow::Result<GrpcBackend> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::default());
        state.status.store(200, Ordering::Relaxed);
        let (stop, stopped) = watch::channel(false);
        let handle = crate::runtime().handle();
        let listener = {
            let _entered = handle.enter();
            TcpListener::from_std(listener)?
        };
        let backend = GrpcBackend {
            addr,
            tls: tls.is_some(),
            state: Arc::clone(&state),
            stop,
        };
        handle.spawn(accept(listener, tls, state, stopped));
        Ok(backend)
    }

    /// `http://127.0.0.1:port`, or `https://localhost:port` for h2 (the name its certificate
    /// should carry).
    pub fn url(&self) -> String {
        if self.tls {
            format!("https://localhost:{}", self.addr.port())
        } else {
            format!("http://{}", self.addr)
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The HTTP status of every non-health answer (200: the service answers).
    pub fn set_status(&self, status: u16) {
        self.state.status.store(status, Ordering::Relaxed);
    }

    /// Lets a waiting streaming call send the rest of its messages.
    pub fn release(&self) {
        self.state.release.notify_one();
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::Relaxed)
    }

    /// `GET /health` requests answered so far (each health pass may open its own connection).
    pub fn health_probes(&self) -> usize {
        self.state.health_probes.load(Ordering::Relaxed)
    }

    /// Calls in progress (their response not finished).
    pub fn streams_open(&self) -> usize {
        self.state.streams_open.load(Ordering::Relaxed)
    }

    /// Non-health requests received, in order.
    pub fn requests(&self) -> Vec<GrpcRequest> {
        self.state
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for GrpcBackend {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

async fn accept(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: Arc<State>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let (tcp, _) = tokio::select! {
            _ = stopped.wait_for(|s| *s) => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(_) => continue,
            },
        };
        state.connections.fetch_add(1, Ordering::Relaxed);
        let state = Arc::clone(&state);
        let tls = tls.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = stopped.wait_for(|s| *s) => {}
                _ = serve(tcp, tls, state) => {}
            }
        });
    }
}

async fn serve(tcp: TcpStream, tls: Option<tokio_rustls::TlsAcceptor>, state: Arc<State>) {
    let _ = tcp.set_nodelay(true);
    match tls {
        Some(acceptor) => {
            if let Ok(stream) = acceptor.accept(tcp).await {
                serve_h2(stream, state).await;
            }
        }
        None => serve_h2(tcp, state).await,
    }
}

async fn serve_h2<S>(io: S, state: Arc<State>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let Ok(mut connection) = h2::server::handshake(io).await else {
        return;
    };
    while let Some(Ok((request, respond))) = connection.accept().await {
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            state.streams_open.fetch_add(1, Ordering::Relaxed);
            let _ = answer(request, respond, &state).await;
            state.streams_open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// A gRPC message frame.
pub fn message(bytes: &[u8]) -> Bytes {
    let mut frame = Vec::with_capacity(bytes.len() + 5);
    frame.push(0);
    frame.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    frame.extend_from_slice(bytes);
    frame.into()
}

/// The messages in a run of gRPC frames (an incomplete tail is left out).
pub fn messages(mut body: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while body.len() >= 5 {
        let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        let Some(bytes) = body.get(5..5 + len) else {
            break;
        };
        out.push(bytes.to_vec());
        body = &body[5 + len..];
    }
    out
}

fn trailers(status: u32, message: &str) -> HeaderMap {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from(status));
    trailers.insert(
        "grpc-message",
        HeaderValue::from_str(message).expect("a plain message"),
    );
    trailers
}

async fn read_all(body: &mut RecvStream) -> Result<Vec<u8>, h2::Error> {
    let mut all = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        all.extend_from_slice(&chunk);
    }
    Ok(all)
}

async fn answer(
    request: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    state: &State,
) -> Result<(), h2::Error> {
    let path = request.uri().path().to_string();
    let (parts, mut body) = request.into_parts();
    let received = read_all(&mut body).await?;
    if path == "/health" {
        state.health_probes.fetch_add(1, Ordering::Relaxed);
        let head = Response::builder()
            .status(200)
            .body(())
            .expect("a response");
        let mut send = respond.send_response(head, false)?;
        return send.send_data(Bytes::from_static(b"ok"), true);
    }
    state
        .requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(GrpcRequest {
            path: path.clone(),
            headers: parts.headers,
        });
    let status = state.status.load(Ordering::Relaxed);
    if status != 200 {
        let head = Response::builder()
            .status(status)
            .body(())
            .expect("a response");
        respond.send_response(head, true)?;
        return Ok(());
    }
    let head = Response::builder()
        .status(200)
        .header("content-type", "application/grpc")
        .body(())
        .expect("a response");
    let mut send = respond.send_response(head, false)?;
    match path.as_str() {
        "/echo.Echo/Unary" => {
            for m in messages(&received) {
                send.send_data(message(&m), false)?;
            }
            send.send_trailers(trailers(0, "echoed"))
        }
        "/echo.Echo/Missing" => send.send_trailers(trailers(5, "not%20here")),
        "/echo.Echo/Stream" => {
            send.send_data(message(b"first"), false)?;
            let released = tokio::time::timeout(RELEASE_TIMEOUT, state.release.notified()).await;
            if released.is_err() {
                return send.send_trailers(trailers(4, "never%20released"));
            }
            send.send_data(message(b"second"), false)?;
            send.send_data(message(b"third"), false)?;
            send.send_trailers(trailers(0, "streamed"))
        }
        _ => send.send_trailers(trailers(12, "unimplemented")),
    }
}

/// What a gRPC call got back.
#[derive(Debug, Clone)]
pub struct GrpcReply {
    pub status: u16,
    pub headers: HeaderMap,
    pub messages: Vec<Vec<u8>>,
    pub trailers: Option<HeaderMap>,
}

impl GrpcReply {
    /// A trailer's value.
    pub fn trailer(&self, name: &str) -> Option<&str> {
        self.trailers.as_ref()?.get(name)?.to_str().ok()
    }
}

/// Calls `path` over h2c at `addr` with `requests` as the messages; `on_first` runs once the
/// first response message has arrived (before the rest is read). Blocking, with a 15 s bound.
pub fn call(
    addr: SocketAddr,
    path: &str,
    requests: &[&[u8]],
    on_first: impl FnOnce() + Send + 'static,
) -> anyhow::Result<GrpcReply> {
    let body: Vec<u8> = requests.iter().flat_map(|r| message(r)).collect();
    let path = path.to_string();
    let call = async move {
        let tcp = TcpStream::connect(addr).await?;
        let (client, connection) = h2::client::handshake(tcp).await?;
        tokio::spawn(connection);
        let mut client = client.ready().await?;
        let request = Request::builder()
            .method("POST")
            .uri(format!("http://test.local{path}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())?;
        let (response, mut send) = client.send_request(request, false)?;
        // A proxy may answer (e.g. 503) before the request is sent: its answer is what counts.
        let _ = send.send_data(body.into(), true);
        let response = response.await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let mut body = response.into_body();
        let mut received = Vec::new();
        let mut on_first = Some(on_first);
        while let Some(chunk) = body.data().await {
            let chunk = chunk?;
            let _ = body.flow_control().release_capacity(chunk.len());
            received.extend_from_slice(&chunk);
            if !messages(&received).is_empty() {
                if let Some(first) = on_first.take() {
                    first();
                }
            }
        }
        let trailers = body.trailers().await?;
        anyhow::Ok(GrpcReply {
            status,
            headers,
            messages: messages(&received),
            trailers,
        })
    };
    crate::runtime().block_on(async {
        tokio::time::timeout(Duration::from_secs(15), call)
            .await
            .context("the call took over 15 s")?
    })
}
