//! The admin listener (§7.3), separate from the public port: `GET /metrics` (Prometheus text),
//! `GET /status` (the snapshot as JSON), `GET /healthz` (200 while serving, 503 while
//! draining), and the runtime control of §12.2: `POST /backends/{id}/drain` and `/enable`, and
//! `POST /reload` (§12.1: the config file applied again; 200 with the new generation, or 422
//! with every problem). Every request passes [`auth::AdminAuth::check`] first (`auth.rs`).
//!
//! It runs as a Pingora background service with its own small HTTP/1.1 responder (requests read
//! with `httparse`, the parser under Pingora's own HTTP/1 code), and keeps
//! answering while the proxy drains at shutdown, so that `/healthz` can say 503 until the process
//! exits. Its socket uses `SO_REUSEPORT` so that a graceful upgrade's new process can bind it
//! while the old one still serves.

pub mod auth;
mod metrics_text;
mod reply;
pub mod web;

pub use reply::Reply;

use crate::balance::{AdminState, Pools};
use crate::reload::{Outcome, Reloader, Trigger};
use crate::security::headers::SECURITY_HEADERS;
use crate::status::{BoundAddresses, Observer};
use async_trait::async_trait;
use auth::{Access, AdminAuth};
use httparse::Status;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Largest admin request head read.
const MAX_HEAD: usize = 8192;
/// Most header lines parsed in an admin request; more is answered 400.
const MAX_HEADERS: usize = 128;
/// Time a client gets to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest request body read (the admin endpoints take none; a small one is read and ignored
/// so that closing the connection does not reset it before the answer is read).
const MAX_BODY: usize = 1024;

/// The admin listener service.
pub struct AdminService {
    /// `admin.address`; port 0 lets the kernel pick one (logged, and in `/status`).
    pub address: SocketAddr,
    pub admin: Arc<Admin>,
    pub bound: Arc<BoundAddresses>,
}

/// What the admin endpoints read and act on.
pub struct Admin {
    pub observer: Arc<Observer>,
    pub pool: Arc<Pools>,
    pub reloader: Arc<Reloader>,
    pub auth: AdminAuth,
}

/// What a `POST` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action<'a> {
    /// `POST /backends/{id}/drain` or `/enable`.
    Backend(&'a str, AdminState),
    /// `POST /reload`.
    Reload,
}

/// One admin request, as routed.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The path, query string included.
    pub path: &'a str,
    /// The `Authorization` header's value.
    pub authorization: Option<&'a [u8]>,
    pub client: IpAddr,
}

impl Admin {
    /// Checks the request's access (see [`AdminAuth::check`]), then answers it. A method the
    /// path does not take is answered 405 first. Blocking for `POST /reload` (it reads files
    /// and resolves names): run `POST`s off the async workers.
    pub fn route(&self, request: &Request, now: Instant) -> Reply {
        let path = request.path.split('?').next().unwrap_or_default();
        let action = parse_action(path);
        let access = match (request.method, &action) {
            // The web dashboard's own files hold no data: open, so that a browser can load the
            // page that then asks for the token (`docs/decisions/runtime-control.md`).
            ("GET" | "HEAD", None) if web::is_asset(path) => Access::Public,
            ("GET" | "HEAD", None) => Access::Read,
            ("POST", Some(_)) => Access::Act,
            _ => return Reply::json(405, r#"{"error":"method not allowed"}"#),
        };
        if let Err(refused) = self
            .auth
            .check(access, request.authorization, request.client, now)
        {
            return refused;
        }
        match action {
            None => self.read(path),
            Some(Action::Backend(id, state)) => self.act(id, state),
            Some(Action::Reload) => self.reload(),
        }
    }

    /// `POST /reload`.
    fn reload(&self) -> Reply {
        match self.reloader.reload(Trigger::Admin) {
            Outcome::Applied { generation } => Reply::json(
                200,
                &serde_json::json!({"result": "applied", "generation": generation}).to_string(),
            ),
            Outcome::Refused { errors } => Reply::json(
                422,
                &serde_json::json!({"result": "refused", "errors": errors}).to_string(),
            ),
        }
    }

    /// `POST /backends/{id}/drain` and `/enable`.
    fn act(&self, id: &str, state: AdminState) -> Reply {
        match self.pool.set_admin_state(id, state) {
            Some(url) => {
                log::info!("admin: backend {url} {}", state.as_str());
                let body =
                    serde_json::json!({ "id": id, "url": url, "admin_state": state.as_str() });
                Reply::json(200, &body.to_string())
            }
            None => Reply::json(404, r#"{"error":"no backend with that id"}"#),
        }
    }

    fn read(&self, path: &str) -> Reply {
        if let Some(asset) = web::asset(path) {
            return asset;
        }
        let observer = &self.observer;
        match path {
            "/metrics" => Reply {
                status: 200,
                content_type: "text/plain; version=0.0.4; charset=utf-8",
                body: metrics_text::render(&observer.snapshot()),
                headers: Vec::new(),
            },
            "/status" => Reply {
                status: 200,
                content_type: "application/json",
                body: serde_json::to_vec(&observer.snapshot()).unwrap_or_default(),
                headers: Vec::new(),
            },
            "/healthz" if observer.is_draining() => Reply::json(503, r#"{"status":"draining"}"#),
            "/healthz" => Reply::json(200, r#"{"status":"ok"}"#),
            _ => Reply::json(404, r#"{"error":"not found"}"#),
        }
    }
}

/// The action a `POST` path asks for: `/backends/{id}/drain`, `/backends/{id}/enable` or
/// `/reload`.
fn parse_action(path: &str) -> Option<Action<'_>> {
    if path == "/reload" {
        return Some(Action::Reload);
    }
    let (id, verb) = path.strip_prefix("/backends/")?.rsplit_once('/')?;
    match verb {
        "drain" => Some(Action::Backend(id, AdminState::Drained)),
        "enable" => Some(Action::Backend(id, AdminState::Enabled)),
        _ => None,
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// What the bytes of a request head received so far say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Head<'a> {
    /// More bytes are needed.
    Incomplete,
    /// A request to route, its head `length` bytes long and announcing a body of `body` bytes.
    Request {
        method: &'a str,
        path: &'a str,
        authorization: Option<&'a [u8]>,
        length: usize,
        body: usize,
    },
    /// Not an HTTP/1.x request for a path: answered 400.
    Malformed,
}

/// Parses `received` with `httparse`. `full` says nothing more will be read (the head reached
/// [`MAX_HEAD`]): a head cut there is still answered by its request line, as it always was.
fn parse_head(received: &[u8], full: bool) -> Head<'_> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let length = match request.parse(received) {
        Ok(Status::Partial) if !full => return Head::Incomplete,
        Ok(Status::Partial) => received.len(),
        Ok(Status::Complete(length)) => length,
        Err(_) => return Head::Malformed,
    };
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    let authorization = header("authorization");
    let body = match header("content-length").map(std::str::from_utf8) {
        None => 0,
        Some(Ok(text)) => match text.trim().parse() {
            Ok(n) => n,
            Err(_) => return Head::Malformed,
        },
        Some(Err(_)) => return Head::Malformed,
    };
    match (request.method, request.path) {
        (Some(method), Some(path)) if path.starts_with('/') => Head::Request {
            method,
            path,
            authorization,
            length,
            body,
        },
        _ => Head::Malformed,
    }
}

async fn serve(mut stream: TcpStream, client: IpAddr, admin: Arc<Admin>) {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    // SECURITY: a client gets READ_TIMEOUT and MAX_HEAD for its request head, so a slow or
    // endless one cannot hold the admin listener's tasks.
    let received = tokio::time::timeout(READ_TIMEOUT, async {
        while parse_head(&head, head.len() >= MAX_HEAD) == Head::Incomplete {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        true
    })
    .await
    .unwrap_or(false);
    if !received {
        return;
    }
    let (method, reply) = match parse_head(&head, true) {
        Head::Request { body, .. } if body > MAX_BODY => (
            "",
            Reply::json(413, r#"{"error":"request body too large"}"#),
        ),
        Head::Request {
            method,
            path,
            authorization,
            length,
            body,
        } => {
            // The (ignored) body is read so that the answer is not lost to a reset.
            let missing = (length + body).saturating_sub(head.len());
            let mut rest = vec![0u8; missing];
            let read = tokio::time::timeout(READ_TIMEOUT, stream.read_exact(&mut rest)).await;
            if !matches!(read, Ok(Ok(_))) {
                return;
            }
            let request = Request {
                method,
                path,
                authorization,
                client,
            };
            let reply = if method == "POST" {
                // An action may be a reload (files, DNS): off the async workers.
                let (path, authorization) = (path.to_string(), authorization.map(<[u8]>::to_vec));
                let admin = admin.clone();
                let routed = tokio::task::spawn_blocking(move || {
                    let request = Request {
                        method: "POST",
                        path: &path,
                        authorization: authorization.as_deref(),
                        client,
                    };
                    admin.route(&request, Instant::now())
                });
                routed.await.unwrap_or_else(|e| {
                    log::error!(
                        "admin: {method} {path} failed to run: {e}",
                        path = request.path
                    );
                    Reply::json(500, r#"{"error":"internal error"}"#)
                })
            } else {
                admin.route(&request, Instant::now())
            };
            (method, reply)
        }
        Head::Incomplete | Head::Malformed => ("", Reply::json(400, r#"{"error":"bad request"}"#)),
    };
    write_reply(&mut stream, method, &reply).await;
}

async fn write_reply(stream: &mut TcpStream, method: &str, reply: &Reply) {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n",
        reply.status,
        reason(reply.status),
        reply.content_type,
        reply.body.len()
    );
    for (name, value) in &reply.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    for (name, value) in SECURITY_HEADERS {
        out.push_str(&format!(
            "{name}: {}\r\n",
            value.to_str().unwrap_or_default()
        ));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if method != "HEAD" {
        bytes.extend_from_slice(&reply.body);
    }
    let _ = tokio::time::timeout(READ_TIMEOUT, stream.write_all(&bytes)).await;
    let _ = stream.shutdown().await;
}

fn bind(address: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(address)?;
    socket.listen(128)
}

#[async_trait]
impl BackgroundService for AdminService {
    async fn start(&self, _shutdown: ShutdownWatch) {
        // The shutdown watch is deliberately not followed: the admin listener answers (with
        // /healthz 503) until the drain monitor ends the process.
        let listener = match bind(self.address) {
            Ok(listener) => listener,
            Err(e) => {
                log::error!("admin listener cannot bind {}: {e}; /metrics, /status and /healthz are unavailable", self.address);
                return;
            }
        };
        match listener.local_addr() {
            Ok(bound) => self.bound.admin_bound(bound),
            Err(e) => log::warn!("admin listener on {}: no local address: {e}", self.address),
        }
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    tokio::spawn(serve(stream, peer.ip(), self.admin.clone()));
                }
                Err(e) => {
                    log::warn!("admin accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
