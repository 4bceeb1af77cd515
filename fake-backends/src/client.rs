//! The test client shared by every test of the workspace: byte-exact HTTP/1.1 requests over raw
//! TCP (or any byte stream, such as a TLS session), and their responses read back with `httparse`.
//!
//! Requests are written as the caller gives them, so tests can send malformed or adversarial
//! bytes; only the response side is parsed. Every read has a timeout, so a test never hangs on a
//! silent peer.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

/// How long a connect may take before it counts as failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a read waits for the peer before it fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest response head the client accepts (a runaway peer cannot make it buffer forever).
const MAX_HEAD: usize = 256 * 1024;
/// Most header lines in one response head.
const MAX_HEADERS: usize = 128;

/// A check run on every response head the client reads, installed once per test process with
/// [`check_every_response`].
static RESPONSE_CHECK: OnceLock<fn(&Response)> = OnceLock::new();

/// Runs `check` on every response head read from now on, by any connection of this process
/// (the Aegis tests check that no answer says `Server: Pingora`). The first check installed
/// stays; later calls change nothing.
pub fn check_every_response(check: fn(&Response)) {
    let _ = RESPONSE_CHECK.set(check);
}

/// A response as received: status, headers in order, and the body without its framing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Headers in order, names as received, values trimmed.
    pub headers: Vec<(String, String)>,
    /// The body, chunked framing removed.
    pub body: Vec<u8>,
}

impl Response {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_all(name).into_iter().next()
    }

    /// Every value of header `name` (case-insensitive), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }
}

/// A byte stream a [`Connection`] can run over: TCP, or TLS on top of it.
pub trait Duplex: Read + Write + Send {}

impl<T: Read + Write + Send> Duplex for T {}

/// A keep-alive connection, over plain TCP unless made with [`Connection::over`].
pub struct Connection<S = TcpStream> {
    reader: BufReader<S>,
}

/// A TCP connection to `addr` with [`READ_TIMEOUT`] on reads and writes, and no Nagle delay.
pub fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    stream.set_write_timeout(Some(READ_TIMEOUT))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

impl Connection {
    /// Opens a TCP connection to `addr` (see [`connect`]).
    pub fn open(addr: SocketAddr) -> std::io::Result<Connection> {
        Ok(Connection::over(connect(addr)?))
    }
}

impl<S: Read + Write> Connection<S> {
    /// A connection over an established stream (e.g. a TLS session).
    pub fn over(stream: S) -> Connection<S> {
        Connection {
            reader: BufReader::new(stream),
        }
    }

    /// The underlying stream (for raw writes, timeouts, or shutting down one direction).
    pub fn stream(&mut self) -> &mut S {
        self.reader.get_mut()
    }

    /// Writes `bytes` exactly as given.
    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.reader.get_mut().write_all(bytes)
    }

    /// Sends `GET path` (keep-alive, `Host: test.local`) and reads the response.
    pub fn get(&mut self, path: &str) -> std::io::Result<Response> {
        let request = format!("GET {path} HTTP/1.1\r\nHost: test.local\r\n\r\n");
        self.send_raw(request.as_bytes())?;
        self.read_response(false)
    }

    /// Sends `bytes` and reads one response (without a body when `bytes` is a HEAD request).
    pub fn exchange(&mut self, bytes: &[u8]) -> std::io::Result<Response> {
        self.send_raw(bytes)?;
        self.read_response(bytes.starts_with(b"HEAD "))
    }

    /// Reads one response (`head_only` for answers to HEAD).
    pub fn read_response(&mut self, head_only: bool) -> std::io::Result<Response> {
        read_response(&mut self.reader, head_only)
    }

    /// The stream and the bytes read past the last response (e.g. the first frames after a
    /// 101).
    pub fn into_parts(self) -> (S, Vec<u8>) {
        let buffered = self.reader.buffer().to_vec();
        (self.reader.into_inner(), buffered)
    }

    /// Whether the peer has closed the connection: the next read sees end of file (or a reset).
    /// Waits up to the stream's read timeout for that; bytes that arrive instead mean "open".
    pub fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.reader.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

fn invalid(message: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message.into())
}

/// Reads a response head: every byte up to and including the empty line.
fn read_head(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    loop {
        let before = head.len();
        if reader.read_until(b'\n', &mut head)? == 0 {
            return Err(if head.is_empty() {
                std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed")
            } else {
                invalid("connection closed in the response head")
            });
        }
        let line = &head[before..];
        if line == b"\r\n" || line == b"\n" {
            return Ok(head);
        }
        if head.len() > MAX_HEAD {
            return Err(invalid("response head too large"));
        }
    }
}

/// Reads one response from `reader` (`head_only` for answers to HEAD): the head parsed with
/// `httparse`, then a body framed by `Content-Length`, chunked encoding, or the connection's end.
pub fn read_response(reader: &mut impl BufRead, head_only: bool) -> std::io::Result<Response> {
    let head = read_head(reader)?;
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut slots);
    match parsed.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(invalid("incomplete response head")),
        Err(e) => {
            let text = String::from_utf8_lossy(&head);
            return Err(invalid(format!("bad response head ({e}): {text:?}")));
        }
    }
    let status = parsed.code.ok_or_else(|| invalid("no status code"))?;
    let headers = parsed
        .headers
        .iter()
        .map(|h| {
            let value = String::from_utf8_lossy(h.value).trim().to_string();
            (h.name.to_string(), value)
        })
        .collect();
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
    };
    if let Some(check) = RESPONSE_CHECK.get() {
        check(&response);
    }
    if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok(response);
    }
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|te| te.eq_ignore_ascii_case("chunked"));
    if chunked {
        response.body = read_chunked(reader)?;
    } else if let Some(length) = response.header("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| invalid(format!("bad content-length {length:?}")))?;
        response.body = vec![0; length];
        reader.read_exact(&mut response.body)?;
    } else {
        reader.read_to_end(&mut response.body)?;
    }
    Ok(response)
}

/// Reads a chunked body (sizes parsed by `httparse`), discarding trailers.
fn read_chunked(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut line = Vec::new();
        reader.read_until(b'\n', &mut line)?;
        let size = match httparse::parse_chunk_size(&line) {
            Ok(httparse::Status::Complete((_, size))) => size,
            _ => {
                let text = String::from_utf8_lossy(&line);
                return Err(invalid(format!("bad chunk size line {text:?}")));
            }
        };
        if size == 0 {
            // Trailer lines, if any, up to the empty line.
            loop {
                line.clear();
                if reader.read_until(b'\n', &mut line)? == 0 || line == b"\r\n" || line == b"\n" {
                    return Ok(body);
                }
            }
        }
        let size = usize::try_from(size).map_err(|_| invalid("chunk too large"))?;
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0; 2];
        reader.read_exact(&mut crlf)?;
        if &crlf != b"\r\n" {
            return Err(invalid("no CRLF after chunk data"));
        }
    }
}

/// Sends raw bytes on a fresh connection and reads one response.
pub fn raw(addr: SocketAddr, request: &[u8]) -> std::io::Result<Response> {
    Connection::open(addr)?.exchange(request)
}

/// `GET path` with `Connection: close` on a fresh connection; panics on I/O errors.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    let request = format!("GET {path} HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n");
    raw(addr, request.as_bytes()).unwrap_or_else(|e| panic!("GET {path} on {addr}: {e}"))
}

/// Sends raw bytes and returns everything the server sends until it closes the connection, or
/// until it stays silent for `timeout`.
pub fn raw_exchange(addr: SocketAddr, request: &[u8], timeout: Duration) -> Vec<u8> {
    let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).expect("connect");
    stream
        .set_read_timeout(Some(timeout))
        .expect("a non-zero read timeout");
    let _ = stream.write_all(request);
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8], head_only: bool) -> std::io::Result<Response> {
        read_response(&mut std::io::Cursor::new(bytes.to_vec()), head_only)
    }

    #[test]
    fn reads_length_chunked_and_close_delimited_bodies() {
        let cases: [(&[u8], &[u8]); 3] = [
            (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef", b"abc"),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\nab\r\n1\r\nc\r\n0\r\nT: 1\r\n\r\n",
                b"abc",
            ),
            (b"HTTP/1.0 200 OK\r\n\r\nuntil the end", b"until the end"),
        ];
        for (bytes, body) in cases {
            let response = parse(bytes, false).unwrap();
            assert_eq!(response.status, 200);
            assert_eq!(response.body, body, "{:?}", String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn head_answers_and_bodiless_statuses_have_no_body() {
        let head = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true).unwrap();
        assert_eq!(head.header("CONTENT-LENGTH"), Some("5"));
        assert!(head.body.is_empty());
        let not_modified = parse(b"HTTP/1.1 304 Not Modified\r\n\r\n", false).unwrap();
        assert_eq!(not_modified.status, 304);
    }

    #[test]
    fn repeated_headers_keep_their_order() {
        let response = parse(
            b"HTTP/1.1 200 OK\r\nA: 1\r\nB: x\r\na:  2 \r\nContent-Length: 0\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!(response.header_all("a"), vec!["1", "2"]);
    }

    #[test]
    fn malformed_or_truncated_responses_are_errors_not_panics() {
        let cases: [&[u8]; 5] = [
            b"",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n",
            b"NOT HTTP\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ];
        for bytes in cases {
            assert!(
                parse(bytes, false).is_err(),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}
