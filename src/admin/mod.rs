//! The admin listener (§7.3), separate from the public port: `GET /metrics` (Prometheus text),
//! `GET /status` (the snapshot as JSON) and `GET /healthz` (200 while serving, 503 while
//! draining).
//!
//! It runs as a Pingora background service with its own small HTTP/1.1 responder (requests read
//! with `httparse`, the parser under Pingora's own HTTP/1 code), and keeps
//! answering while the proxy drains at shutdown, so that `/healthz` can say 503 until the process
//! exits. Its socket uses `SO_REUSEPORT` so that a graceful upgrade's new process can bind it
//! while the old one still serves.

mod metrics_text;

use crate::security::headers::SECURITY_HEADERS;
use crate::status::Observer;
use async_trait::async_trait;
use httparse::Status;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Largest admin request head read.
const MAX_HEAD: usize = 8192;
/// Most header lines parsed in an admin request; more is answered 400.
const MAX_HEADERS: usize = 128;
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
            body: metrics_text::render(&observer.snapshot()),
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

/// What the bytes of a request head received so far say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Head<'a> {
    /// More bytes are needed.
    Incomplete,
    /// A request to route.
    Request { method: &'a str, path: &'a str },
    /// Not an HTTP/1.x request for a path: answered 400.
    Malformed,
}

/// Parses `received` with `httparse`. `full` says nothing more will be read (the head reached
/// [`MAX_HEAD`]): a head cut there is still answered by its request line, as it always was.
fn parse_head(received: &[u8], full: bool) -> Head<'_> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(received) {
        Ok(Status::Partial) if !full => return Head::Incomplete,
        Ok(_) => {}
        Err(_) => return Head::Malformed,
    }
    match (request.method, request.path) {
        (Some(method), Some(path)) if path.starts_with('/') => Head::Request { method, path },
        _ => Head::Malformed,
    }
}

async fn serve(mut stream: TcpStream, observer: Arc<Observer>) {
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
        Head::Request { method, path } => (method, route(&observer, method, path)),
        Head::Incomplete | Head::Malformed => ("", Reply::json(400, r#"{"error":"bad request"}"#)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_parsed_by_table() {
        let long = format!("GET /status HTTP/1.1\r\nX-Long: {}", "a".repeat(MAX_HEAD));
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: 1\r\n")).collect();
        let many = format!("GET /status HTTP/1.1\r\n{many}\r\n");
        let route = |method, path| Head::Request { method, path };
        let table: [(&[u8], bool, Head); 10] = [
            (b"", false, Head::Incomplete),
            (b"GET /sta", false, Head::Incomplete),
            (
                b"GET /status HTTP/1.1\r\nHost: a\r\n",
                false,
                Head::Incomplete,
            ),
            (
                b"GET /status HTTP/1.1\r\n\r\n",
                false,
                route("GET", "/status"),
            ),
            (
                b"HEAD /healthz?x=1 HTTP/1.0\r\n\r\n",
                false,
                route("HEAD", "/healthz?x=1"),
            ),
            (
                b"POST /metrics HTTP/1.1\r\nA: b\r\n\r\n",
                false,
                route("POST", "/metrics"),
            ),
            // A head cut at the size limit is answered by its request line.
            (long.as_bytes(), true, route("GET", "/status")),
            (b"GET http://a/ HTTP/1.1\r\n\r\n", false, Head::Malformed),
            (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", false, Head::Malformed),
            (many.as_bytes(), false, Head::Malformed),
        ];
        for (received, full, expected) in table {
            assert_eq!(
                parse_head(received, full),
                expected,
                "{:?}",
                String::from_utf8_lossy(&received[..received.len().min(60)])
            );
        }
    }
}
