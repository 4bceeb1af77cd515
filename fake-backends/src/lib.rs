//! Controllable fake HTTP/1.1 backends for testing Aegis.
//!
//! [`FakeBackend::start`] binds a hand-written HTTP/1.1 server on an
//! ephemeral port. Its behaviour (status, latency, extra headers, body size,
//! deliberately broken modes, refusing connections) can be changed at any
//! time from any thread, and everything it receives is recorded.
//!
//! The API is synchronous: servers run on a small internal tokio runtime, so
//! plain `#[test]` functions can use it without a runtime of their own.
//!
//! The crate also carries what every test of the workspace shares: the HTTP/1.1
//! test [`client`] and [`wait_until`], the one way a test waits for something.
//!
//! ```no_run
//! use fake_backends::FakeBackend;
//!
//! let backend = FakeBackend::start("backend-1")?;
//! backend.set_status(503);
//! println!("point the proxy at {}", backend.url());
//! # Ok::<(), anyhow::Error>(())
//! ```

pub mod client;
pub mod grpc;
mod http;
mod response;
mod server;
pub mod websocket;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::runtime::Runtime;

use crate::server::{Session, Shared};

/// How long stopping a backend waits for its listener and connections to close.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long re-listening on the same port is retried after refusing connections.
const REBIND_TIMEOUT: Duration = Duration::from_secs(5);

/// The shared runtime every backend of this process runs on.
fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fake-backend")
            .enable_all()
            .build()
            .expect("the fake-backends tokio runtime must be creatable for backends to run at all")
    })
}

/// How a backend answers non-health requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Answer normally.
    #[default]
    Normal,
    /// Read the request, then close the socket without answering.
    CloseImmediately,
    /// Read the request, then never answer; the socket stays open until the
    /// client closes it or the backend stops.
    Hang,
    /// Send a 200 head with `Content-Length: 100000` and 1000 body bytes, then
    /// reset the connection (`SO_LINGER` 0 and close).
    ResetMidBody,
    /// Answer a WebSocket handshake (`Upgrade: websocket` with a `Sec-WebSocket-Key`) with
    /// 101 and echo every frame (`websocket::echo`) while the status is 200; with another
    /// status, answer it as a normal response. Other requests are answered normally.
    WebSocketEcho,
}

/// A non-health request as received by a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// Request method, e.g. `GET`.
    pub method: String,
    /// Request target exactly as received (path and query).
    pub target: String,
    /// Protocol version, e.g. `HTTP/1.1`.
    pub version: String,
    /// Headers in order, names as received, values trimmed of surrounding whitespace.
    pub headers: Vec<(String, String)>,
    /// Decoded body (chunked framing removed).
    pub body: Vec<u8>,
    /// Address of the connecting peer.
    pub peer: SocketAddr,
}

impl RecordedRequest {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_all(name).into_iter().next()
    }

    /// All values of header `name` (case-insensitive), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A running fake backend. Dropping it stops the server: the listener and all
/// of its connections are closed before `drop` returns.
#[derive(Debug)]
pub struct FakeBackend {
    shared: Arc<Shared>,
    addr: SocketAddr,
    /// `None` while refusing connections.
    session: Mutex<Option<Session>>,
}

impl FakeBackend {
    /// Starts a backend called `name` on an ephemeral port of 127.0.0.1.
    pub fn start(name: &str) -> anyhow::Result<FakeBackend> {
        Self::start_on(name, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
    }

    /// Starts a backend called `name` listening on `addr`.
    pub fn start_on(name: &str, addr: SocketAddr) -> anyhow::Result<FakeBackend> {
        let listener = std::net::TcpListener::bind(addr)
            .with_context(|| format!("{name}: cannot listen on {addr}"))?;
        let addr = listener.local_addr().context("local address of listener")?;
        let shared = Arc::new(Shared::new(name));
        let session = Session::start(listener, Arc::clone(&shared), runtime().handle())
            .with_context(|| format!("{name}: cannot serve on {addr}"))?;
        Ok(FakeBackend {
            shared,
            addr,
            session: Mutex::new(Some(session)),
        })
    }

    /// The address the backend listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL of the backend, e.g. `http://127.0.0.1:8081`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The backend's name (sent as body and in `X-Backend`).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Status for every path except `/health` (default 200).
    pub fn set_status(&self, status: u16) {
        self.shared.config().status = status;
    }

    /// Delay before the response head of non-health requests (default 0).
    pub fn set_latency(&self, latency: Duration) {
        self.shared.config().latency = latency;
    }

    /// Status for `GET /health` (default 200).
    pub fn set_health_status(&self, status: u16) {
        self.shared.config().health_status = status;
    }

    /// Delay before answering `GET /health` (default 0).
    pub fn set_health_latency(&self, latency: Duration) {
        self.shared.config().health_latency = latency;
    }

    /// How non-health requests are answered (default [`Mode::Normal`]).
    pub fn set_mode(&self, mode: Mode) {
        self.shared.config().mode = mode;
    }

    /// Extra headers added, verbatim and in order, to every non-health response.
    pub fn set_response_headers(&self, headers: Vec<(String, String)>) {
        self.shared.config().headers = headers;
    }

    /// `None` (default): the body is the backend name. `Some(n)`: the body is
    /// `n` bytes of `a`, written in 16 KiB pieces.
    pub fn set_body_size(&self, size: Option<usize>) {
        self.shared.config().body_size = size;
    }

    /// `true`: stop listening and close every open connection, so that
    /// connects fail with `ECONNREFUSED`. `false`: listen again on the same port.
    ///
    /// # Panics
    ///
    /// If the port cannot be bound again; see [`Self::try_set_refuse_connections`].
    pub fn set_refuse_connections(&self, refuse: bool) {
        if let Err(err) = self.try_set_refuse_connections(refuse) {
            panic!("{err:#}");
        }
    }

    /// Like [`Self::set_refuse_connections`], but reports a failure to listen
    /// again (e.g. another socket took the port in the meantime).
    pub fn try_set_refuse_connections(&self, refuse: bool) -> anyhow::Result<()> {
        let mut session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        if refuse {
            if let Some(running) = session.take() {
                running.stop(STOP_TIMEOUT);
            }
            return Ok(());
        }
        if session.is_none() {
            let listener = rebind(self.addr).with_context(|| {
                format!("{}: cannot listen again on {}", self.name(), self.addr)
            })?;
            let handle = runtime().handle();
            *session = Some(Session::start(listener, Arc::clone(&self.shared), handle)?);
        }
        Ok(())
    }

    /// Every non-health request fully received, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.stats().requests.clone()
    }

    /// Number of non-health requests whose head was received (including ones
    /// still being answered).
    pub fn request_count(&self) -> usize {
        self.shared.stats().request_count
    }

    /// Number of `GET /health` requests received.
    pub fn health_probes(&self) -> usize {
        self.shared.stats().health_probes
    }

    /// Non-health requests received but not yet answered. A request stops
    /// counting just before its response starts being written (or the
    /// connection is closed), so once a client has read a response the
    /// request is no longer in flight.
    pub fn in_flight(&self) -> usize {
        self.shared.stats().in_flight
    }

    /// High-water mark of [`Self::in_flight`] since start or the last reset.
    pub fn max_in_flight(&self) -> usize {
        self.shared.stats().max_in_flight
    }

    /// Clears recorded requests and counters. `max_in_flight` restarts from
    /// the current `in_flight` (0 when nothing is pending).
    pub fn reset_stats(&self) {
        let mut stats = self.shared.stats();
        stats.requests.clear();
        stats.request_count = 0;
        stats.health_probes = 0;
        stats.max_in_flight = stats.in_flight;
    }
}

impl Drop for FakeBackend {
    fn drop(&mut self) {
        let session = self
            .session
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(running) = session.take() {
            running.stop(STOP_TIMEOUT);
        }
    }
}

/// How often [`wait_until`] checks its condition.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Polls `condition` every 10 ms until it holds or `timeout` passes; returns whether it held
/// (checked once more at the deadline). Tests wait for an observable state with this, never
/// with a fixed sleep: `assert!(wait_until(Duration::from_secs(5), || backend.in_flight() == 1))`.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Binds `addr` again, retrying briefly in case the port is momentarily busy.
fn rebind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let deadline = Instant::now() + REBIND_TIMEOUT;
    loop {
        match std::net::TcpListener::bind(addr) {
            Ok(listener) => return Ok(listener),
            Err(err) if Instant::now() >= deadline => return Err(err),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<FakeBackend>();
        assert_send_sync::<RecordedRequest>();
    }

    #[test]
    fn header_lookup_is_case_insensitive() {
        let request = RecordedRequest {
            method: "GET".into(),
            target: "/".into(),
            version: "HTTP/1.1".into(),
            headers: vec![
                ("X-A".into(), "1".into()),
                ("Host".into(), "h".into()),
                ("x-a".into(), "2".into()),
            ],
            body: Vec::new(),
            peer: SocketAddr::from((Ipv4Addr::LOCALHOST, 1)),
        };
        assert_eq!(request.header("x-A"), Some("1"));
        assert_eq!(request.header_all("X-A"), vec!["1", "2"]);
        assert_eq!(request.header("missing"), None);
    }
}
