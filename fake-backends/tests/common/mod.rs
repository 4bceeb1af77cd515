//! Raw `std::net` HTTP/1.1 client helpers shared by the integration tests.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use fake_backends::FakeBackend;

/// Generous bound for anything that should happen promptly.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Opens a connection with read/write timeouts of [`TIMEOUT`].
pub fn connect(backend: &FakeBackend) -> TcpStream {
    let stream = TcpStream::connect(backend.addr()).expect("connect to backend");
    stream
        .set_read_timeout(Some(TIMEOUT))
        .expect("set read timeout");
    stream
        .set_write_timeout(Some(TIMEOUT))
        .expect("set write timeout");
    stream
}

/// A persistent connection sending raw requests and reading parsed responses.
pub struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    /// Connects to `backend`.
    pub fn new(backend: &FakeBackend) -> Client {
        Client {
            reader: BufReader::new(connect(backend)),
        }
    }

    /// Sends `raw` verbatim and reads one response (`head_request`: no body expected).
    pub fn exchange(&mut self, raw: &str, head_request: bool) -> Response {
        self.reader
            .get_mut()
            .write_all(raw.as_bytes())
            .expect("send request");
        read_response(&mut self.reader, head_request)
    }

    /// `GET path` on this connection.
    pub fn get(&mut self, path: &str) -> Response {
        self.exchange(&format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n"), false)
    }

    /// Whether the server has closed the connection (EOF on the next read).
    pub fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.reader.read(&mut byte), Ok(0))
    }
}

/// Reads one response from `reader`.
pub fn read_response<R: BufRead>(reader: &mut R, head_request: bool) -> Response {
    let mut line = String::new();
    reader.read_line(&mut line).expect("read status line");
    let mut parts = line.trim_end().splitn(3, ' ');
    assert_eq!(parts.next(), Some("HTTP/1.1"), "status line {line:?}");
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .expect("numeric status");
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).expect("read header line");
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        let (name, value) = trimmed.split_once(':').expect("header has a colon");
        headers.push((name.to_string(), value.trim().to_string()));
    }
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
    };
    if !head_request {
        let length: usize = response
            .header("content-length")
            .map_or(0, |v| v.parse().expect("numeric content-length"));
        response.body.resize(length, 0);
        reader.read_exact(&mut response.body).expect("read body");
    }
    response
}

/// One `GET path` on a fresh connection (closed afterwards).
pub fn get(backend: &FakeBackend, path: &str) -> Response {
    let mut client = Client::new(backend);
    client.exchange(
        &format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"),
        false,
    )
}

/// Polls `condition` until it holds, panicking after [`TIMEOUT`].
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}
