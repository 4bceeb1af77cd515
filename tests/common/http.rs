//! A small HTTP/1.1 client over raw TCP: byte-exact requests, and a parser for the responses.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

#[derive(Debug, Clone, Default)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }
}

/// Checks the security headers of §6 on any response.
pub fn assert_hardened(resp: &Response) {
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("x-xss-protection", "0"),
        ("referrer-policy", "strict-origin-when-cross-origin"),
        (
            "permissions-policy",
            "camera=(), microphone=(), geolocation=()",
        ),
        ("server", "aegis"),
    ] {
        assert_eq!(resp.header(name), Some(value), "{name} on {resp:?}");
    }
    assert!(resp.header("x-powered-by").is_none());
}

/// SPEC §15.1: no answer names the framework. Every answer a test reads (HTTP/1 here, HTTP/2 in
/// `h2::Client`) is checked.
pub fn assert_not_pingora(resp: &Response) {
    assert!(
        !resp
            .header("server")
            .is_some_and(|s| s.to_ascii_lowercase().contains("pingora")),
        "an answer says Server: Pingora: {resp:?}"
    );
}

/// Checks a response Aegis generated: status, JSON error body, security headers.
pub fn assert_refused(resp: &Response, status: u16, error: &str) {
    assert_eq!(resp.status, status, "{resp:?}");
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert_eq!(resp.json()["error"], error, "{}", resp.text());
    assert_hardened(resp);
}

/// A byte stream a [`Connection`] can run over: TCP, or TLS on top of it.
pub trait Duplex: Read + Write + Send {}

impl<T: Read + Write + Send> Duplex for T {}

/// A keep-alive connection, over plain TCP unless made with [`Connection::over`].
pub struct Connection<S = TcpStream> {
    reader: BufReader<S>,
}

impl Connection {
    pub fn open(addr: SocketAddr) -> std::io::Result<Connection> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(15)))?;
        stream.set_nodelay(true)?;
        Ok(Connection::over(stream))
    }
}

impl<S: Read + Write> Connection<S> {
    /// A connection over an established stream (e.g. a TLS session).
    pub fn over(stream: S) -> Connection<S> {
        Connection {
            reader: BufReader::new(stream),
        }
    }

    pub fn stream(&mut self) -> &mut S {
        self.reader.get_mut()
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.reader.get_mut().write_all(bytes)
    }

    /// Sends `GET path` (keep-alive) and reads the response.
    pub fn get(&mut self, path: &str) -> std::io::Result<Response> {
        let req = format!("GET {path} HTTP/1.1\r\nHost: test.local\r\n\r\n");
        self.send_raw(req.as_bytes())?;
        self.read_response(false)
    }

    /// Reads one response (`head_only` for answers to HEAD).
    pub fn read_response(&mut self, head_only: bool) -> std::io::Result<Response> {
        read_response(&mut self.reader, head_only)
    }
}

fn bad(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_string())
}

pub fn read_response(reader: &mut impl BufRead, head_only: bool) -> std::io::Result<Response> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(&format!("bad status line {line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 {
            return Err(bad("eof in headers"));
        }
        let h = h.trim_end_matches(['\r', '\n']);
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').ok_or_else(|| bad("bad header"))?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let mut resp = Response {
        status,
        headers,
        body: Vec::new(),
    };
    assert_not_pingora(&resp);
    if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok(resp);
    }
    if let Some(len) = resp.header("content-length") {
        let len: usize = len.parse().map_err(|_| bad("bad content-length"))?;
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        resp.body = body;
    } else if resp
        .header("transfer-encoding")
        .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| bad("bad chunk size"))?;
            if size == 0 {
                let mut end = String::new();
                reader.read_line(&mut end)?;
                break;
            }
            let mut chunk = vec![0; size];
            reader.read_exact(&mut chunk)?;
            resp.body.extend_from_slice(&chunk);
            let mut crlf = [0; 2];
            reader.read_exact(&mut crlf)?;
        }
    } else {
        reader.read_to_end(&mut resp.body)?;
    }
    Ok(resp)
}

/// Sends raw bytes on a fresh connection and reads one response.
pub fn raw(addr: SocketAddr, request: &[u8]) -> std::io::Result<Response> {
    let mut conn = Connection::open(addr)?;
    conn.send_raw(request)?;
    conn.read_response(request.starts_with(b"HEAD "))
}

/// `GET path` with `Connection: close` on a fresh connection; panics on I/O errors.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    let req = format!("GET {path} HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n");
    raw(addr, req.as_bytes()).unwrap_or_else(|e| panic!("GET {path} on {addr}: {e}"))
}

/// Sends raw bytes and returns everything the server sends until it closes (or times out).
pub fn raw_exchange(addr: SocketAddr, request: &[u8], timeout: Duration) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(timeout)).unwrap();
    let _ = stream.write_all(request);
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    out
}
