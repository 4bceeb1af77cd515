//! Accept loop, shared state and per-connection request handling.

use std::net::SocketAddr;
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::watch;

use crate::http::{BodyKind, Head, Reader, RecvError};
use crate::response::{bad_request, reset_mid_body, Body, Next, Outgoing};
use crate::{Mode, RecordedRequest};

/// Behaviour of a backend; a snapshot is taken for every request.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub status: u16,
    pub latency: Duration,
    pub health_status: u16,
    pub health_latency: Duration,
    pub mode: Mode,
    pub headers: Vec<(String, String)>,
    pub body_size: Option<usize>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            status: 200,
            latency: Duration::ZERO,
            health_status: 200,
            health_latency: Duration::ZERO,
            mode: Mode::Normal,
            headers: Vec::new(),
            body_size: None,
        }
    }
}

/// Observations about the requests a backend received.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub requests: Vec<RecordedRequest>,
    pub request_count: usize,
    pub health_probes: usize,
    pub in_flight: usize,
    pub max_in_flight: usize,
}

/// State shared between a `FakeBackend` handle and its tasks.
#[derive(Debug)]
pub(crate) struct Shared {
    pub name: String,
    config: Mutex<Config>,
    stats: Mutex<Stats>,
}

impl Shared {
    /// Fresh state with the default behaviour.
    pub fn new(name: &str) -> Self {
        Shared {
            name: name.to_string(),
            config: Mutex::new(Config::default()),
            stats: Mutex::new(Stats::default()),
        }
    }

    /// Locks the behaviour configuration (a panicking holder cannot corrupt it).
    pub fn config(&self) -> MutexGuard<'_, Config> {
        self.config.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Locks the statistics.
    pub fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Counts one non-health request as in flight for as long as it lives.
struct InFlight(Arc<Shared>);

impl InFlight {
    fn enter(shared: &Arc<Shared>) -> Self {
        let mut stats = shared.stats();
        stats.request_count += 1;
        stats.in_flight += 1;
        stats.max_in_flight = stats.max_in_flight.max(stats.in_flight);
        InFlight(Arc::clone(shared))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut stats = self.0.stats();
        stats.in_flight = stats.in_flight.saturating_sub(1);
    }
}

/// One listening period of a backend: its accept loop and every connection
/// accepted by it. Stopping it closes the listener and all those connections.
#[derive(Debug)]
pub(crate) struct Session {
    shutdown: watch::Sender<bool>,
    /// Disconnects once the accept task and all connection tasks have ended.
    done: mpsc::Receiver<()>,
}

impl Session {
    /// Starts serving `listener` on the runtime behind `handle`.
    pub fn start(
        listener: std::net::TcpListener,
        shared: Arc<Shared>,
        handle: &Handle,
    ) -> std::io::Result<Session> {
        listener.set_nonblocking(true)?;
        let listener = {
            let _runtime = handle.enter();
            TcpListener::from_std(listener)?
        };
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (done_tx, done) = mpsc::channel();
        handle.spawn(accept_loop(listener, shared, shutdown_rx, done_tx));
        Ok(Session { shutdown, done })
    }

    /// Stops the session and waits (at most `timeout`) until its listener and
    /// connections are closed.
    pub fn stop(self, timeout: Duration) {
        self.shutdown.send_replace(true);
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.done.recv_timeout(left) {
                Ok(()) => {}
                Err(mpsc::RecvTimeoutError::Disconnected | mpsc::RecvTimeoutError::Timeout) => {
                    return
                }
            }
        }
    }
}

/// Resolves once shutdown is requested (or the session handle is gone).
async fn cancelled(mut shutdown: watch::Receiver<bool>) {
    // An error means the sender was dropped, which also means "stop".
    let _ = shutdown.wait_for(|stop| *stop).await;
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
) {
    let accept = async {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    let conn = serve_connection(stream, peer, Arc::clone(&shared));
                    let stop = cancelled(shutdown.clone());
                    let done = done.clone();
                    tokio::spawn(async move {
                        tokio::select! {
                            _ = stop => {}
                            _ = conn => {}
                        }
                        drop(done);
                    });
                }
                // E.g. EMFILE: back off briefly instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    };
    tokio::select! {
        _ = cancelled(shutdown.clone()) => {}
        _ = accept => {}
    }
    // Parameters would be dropped in reverse order (`done` first); the
    // listener must be closed before `Session::stop` can observe `done` gone.
    drop(listener);
    drop(done);
}

async fn serve_connection(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    // Responses are written in few pieces; never let Nagle delay them.
    let _ = stream.set_nodelay(true);
    let mut reader = Reader::new(stream);
    loop {
        match serve_one(&mut reader, peer, &shared).await {
            Ok(Next::KeepAlive) => {}
            Ok(Next::Upgrade) => {
                let (mut stream, buffered) = reader.into_parts();
                crate::websocket::echo(&mut stream, buffered).await;
                return;
            }
            _ => return,
        }
    }
}

/// Reads one request and answers it according to the current configuration.
async fn serve_one(
    reader: &mut Reader<TcpStream>,
    peer: SocketAddr,
    shared: &Arc<Shared>,
) -> std::io::Result<Next> {
    let head = match reader.read_head().await {
        Ok(head) => head,
        Err(RecvError::Malformed(why)) => return bad_request(reader.get_mut(), why).await,
        Err(RecvError::Closed | RecvError::Io(_)) => return Ok(Next::Close),
    };
    let config = shared.config().clone();
    let is_health = head.method == "GET" && head.path() == "/health";
    let in_flight = if is_health {
        shared.stats().health_probes += 1;
        None
    } else {
        Some(InFlight::enter(shared))
    };
    let kind = match head.body_kind() {
        Ok(kind) => kind,
        Err(RecvError::Malformed(why)) => return bad_request(reader.get_mut(), why).await,
        Err(_) => return Ok(Next::Close),
    };
    if kind != BodyKind::Empty && head.expects_continue() {
        reader
            .get_mut()
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await?;
    }
    let body = match reader.read_body(kind).await {
        Ok(body) => body,
        Err(RecvError::Malformed(why)) => return bad_request(reader.get_mut(), why).await,
        Err(_) => return Ok(Next::Close),
    };
    let keep_alive = head.keep_alive();
    let is_head = head.method == "HEAD";

    if is_health {
        tokio::time::sleep(config.health_latency).await;
        let out = Outgoing {
            status: config.health_status,
            content_length: 2,
            extra: &[],
            keep_alive,
            version_1_0: head.version == "HTTP/1.0",
        };
        return out
            .send(reader.get_mut(), &shared.name, Body::Bytes(b"ok"))
            .await;
    }

    let version_1_0 = head.version == "HTTP/1.0";
    let websocket_key = head
        .header("sec-websocket-key")
        .filter(|_| head.header("upgrade").is_some())
        .map(crate::websocket::accept_key);
    record(shared, head, body, peer);
    if let (Mode::WebSocketEcho, Some(accept), 200) = (config.mode, &websocket_key, config.status) {
        tokio::time::sleep(config.latency).await;
        drop(in_flight);
        let head = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\nX-Backend: {}\r\n\r\n",
            shared.name
        );
        reader.get_mut().write_all(head.as_bytes()).await?;
        return Ok(Next::Upgrade);
    }
    match config.mode {
        Mode::CloseImmediately => Ok(Next::Close),
        Mode::Hang => {
            // Never answer; keep the socket until the peer gives up or the
            // backend stops (which cancels this task).
            reader.drain_until_eof().await;
            Ok(Next::Close)
        }
        Mode::ResetMidBody => {
            tokio::time::sleep(config.latency).await;
            drop(in_flight);
            reset_mid_body(reader.get_mut(), &shared.name).await?;
            Ok(Next::Close)
        }
        Mode::Normal | Mode::WebSocketEcho => {
            tokio::time::sleep(config.latency).await;
            let out = Outgoing {
                status: config.status,
                content_length: config.body_size.unwrap_or(shared.name.len()),
                extra: &config.headers,
                keep_alive,
                version_1_0,
            };
            let body = match config.body_size {
                _ if is_head => Body::None,
                Some(size) => Body::Filler(size),
                None => Body::Bytes(shared.name.as_bytes()),
            };
            // Counted as answered before the first byte goes out, so a client
            // that has read the response never observes it as in flight.
            drop(in_flight);
            out.send(reader.get_mut(), &shared.name, body).await
        }
    }
}

/// Stores a fully received non-health request.
fn record(shared: &Shared, head: Head, body: Vec<u8>, peer: SocketAddr) {
    let request = RecordedRequest {
        method: head.method,
        target: head.target,
        version: head.version,
        headers: head.headers,
        body,
        peer,
    };
    shared.stats().requests.push(request);
}
