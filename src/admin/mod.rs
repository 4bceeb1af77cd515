//! The admin listener (§7.3), separate from the public port: `GET /metrics` (Prometheus text),
//! `GET /status` (the snapshot as JSON) and `GET /healthz` (200 while serving, 503 while
//! draining).
//!
//! It runs as a Pingora background service with its own small HTTP/1.1 responder, and keeps
//! answering while the proxy drains at shutdown, so that `/healthz` can say 503 until the process
//! exits. Its socket uses `SO_REUSEPORT` so that a graceful upgrade's new process can bind it
//! while the old one still serves.

mod prometheus_text;

use crate::security::headers::SECURITY_HEADERS;
use crate::status::Observer;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Largest admin request head read.
const MAX_HEAD: usize = 8192;
/// Time a client gets to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The admin listener service.
pub struct AdminService {
    pub address: SocketAddr,
    pub observer: Arc<Observer>,
}

/// One admin answer.
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Reply {
    fn json(status: u16, body: &str) -> Self {
        Reply {
            status,
            content_type: "application/json",
            body: body.as_bytes().to_vec(),
        }
    }
}

/// Routes one request line to its answer.
pub fn route(observer: &Observer, method: &str, path: &str) -> Reply {
    let path = path.split('?').next().unwrap_or_default();
    if method != "GET" && method != "HEAD" {
        return Reply::json(405, r#"{"error":"method not allowed"}"#);
    }
    match path {
        "/metrics" => Reply {
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: prometheus_text::render(&observer.snapshot()),
        },
        "/status" => Reply {
            status: 200,
            content_type: "application/json",
            body: serde_json::to_vec(&observer.snapshot()).unwrap_or_default(),
        },
        "/healthz" if observer.is_draining() => Reply::json(503, r#"{"status":"draining"}"#),
        "/healthz" => Reply::json(200, r#"{"status":"ok"}"#),
        _ => Reply::json(404, r#"{"error":"not found"}"#),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        503 => "Service Unavailable",
        _ => "",
    }
}

async fn serve(mut stream: TcpStream, observer: Arc<Observer>) {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let complete = tokio::time::timeout(READ_TIMEOUT, async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        true
    })
    .await
    .unwrap_or(false);
    if !complete {
        return;
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split(' ');
    let (method, path) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let reply = if path.starts_with('/') {
        route(&observer, method, path)
    } else {
        Reply::json(400, r#"{"error":"bad request"}"#)
    };
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n",
        reply.status,
        reason(reply.status),
        reply.content_type,
        reply.body.len()
    );
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
        log::info!("admin listener on {}", self.address);
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(serve(stream, self.observer.clone()));
                }
                Err(e) => {
                    log::warn!("admin accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}
