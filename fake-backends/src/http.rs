//! HTTP/1.1 request reading for the fake backends: heads parsed by `httparse`
//! (as in Pingora and the shared test client), bodies framed by hand
//! (`Content-Length` and chunked) so that the server can also misbehave on
//! purpose.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest accepted request head (request line plus headers).
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// Largest accepted request body.
pub(crate) const MAX_BODY: usize = 64 * 1024 * 1024;
/// Largest accepted chunk-size or trailer line.
const MAX_LINE: usize = 8 * 1024;

/// Why a request could not be read.
#[derive(Debug)]
pub(crate) enum RecvError {
    /// The peer closed the connection cleanly before starting a new request.
    Closed,
    /// The request is malformed; answer 400 and close the connection.
    Malformed(&'static str),
    /// I/O error, or the peer closed the connection in the middle of a request.
    Io(#[allow(dead_code, reason = "only shown in Debug output, e.g. test failures")] io::Error),
}

impl From<io::Error> for RecvError {
    fn from(err: io::Error) -> Self {
        RecvError::Io(err)
    }
}

fn unexpected_eof() -> RecvError {
    RecvError::Io(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "connection closed in the middle of a request",
    ))
}

/// How the body of a request is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    /// No body.
    Empty,
    /// Exactly this many bytes follow the head.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed request line and header block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    pub method: String,
    pub target: String,
    pub version: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All comma-separated, lower-cased tokens of every header called `name`.
    fn tokens(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect()
    }

    /// Whether the client wants the connection kept open after this exchange.
    pub fn keep_alive(&self) -> bool {
        let connection = self.tokens("connection");
        if connection.iter().any(|t| t == "close") {
            return false;
        }
        self.version == "HTTP/1.1" || connection.iter().any(|t| t == "keep-alive")
    }

    /// Whether the client sent `Expect: 100-continue`.
    pub fn expects_continue(&self) -> bool {
        self.header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    }

    /// The path part of the request target (without the query string).
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// Determines how the request body is framed.
    pub fn body_kind(&self) -> Result<BodyKind, RecvError> {
        let te = self.tokens("transfer-encoding");
        if let Some(last) = te.last() {
            return if last == "chunked" {
                Ok(BodyKind::Chunked)
            } else {
                Err(RecvError::Malformed("unsupported transfer-encoding"))
            };
        }
        let mut length: Option<usize> = None;
        let values = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"));
        for part in values.flat_map(|(_, v)| v.split(',')) {
            let part = part.trim();
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(RecvError::Malformed("invalid content-length"));
            }
            let n: usize = part
                .parse()
                .map_err(|_| RecvError::Malformed("invalid content-length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(RecvError::Malformed("conflicting content-length values"));
            }
            length = Some(n);
        }
        match length {
            Some(n) if n > MAX_BODY => Err(RecvError::Malformed("request body too large")),
            None | Some(0) => Ok(BodyKind::Empty),
            Some(n) => Ok(BodyKind::Length(n)),
        }
    }
}

/// Buffered reader of HTTP requests from a byte stream.
pub(crate) struct Reader<S> {
    stream: S,
    buf: Vec<u8>,
}

impl<S: AsyncRead + Unpin> Reader<S> {
    /// Wraps a stream.
    pub fn new(stream: S) -> Self {
        Reader {
            stream,
            buf: Vec::new(),
        }
    }

    /// The stream and the bytes read past the last request.
    pub fn into_parts(self) -> (S, Vec<u8>) {
        (self.stream, self.buf)
    }

    /// The underlying stream (for writing responses).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Reads more bytes into the buffer; returns 0 on EOF.
    async fn fill(&mut self) -> io::Result<usize> {
        self.buf.reserve(16 * 1024);
        self.stream.read_buf(&mut self.buf).await
    }

    /// Removes and returns the first `n` buffered bytes.
    fn take(&mut self, n: usize) -> Vec<u8> {
        let rest = self.buf.split_off(n);
        std::mem::replace(&mut self.buf, rest)
    }

    /// Reads the next request head.
    pub async fn read_head(&mut self) -> Result<Head, RecvError> {
        loop {
            // RFC 9112 2.2: ignore empty lines received before a request line.
            loop {
                if self.buf.starts_with(b"\r\n") {
                    self.buf.drain(..2);
                } else if self.buf.starts_with(b"\n") {
                    self.buf.drain(..1);
                } else {
                    break;
                }
            }
            if let Some(end) = find_head_end(&self.buf) {
                if end > MAX_HEAD {
                    return Err(RecvError::Malformed("request head too large"));
                }
                let raw = self.take(end);
                return parse_head(&raw);
            }
            if self.buf.len() > MAX_HEAD {
                return Err(RecvError::Malformed("request head too large"));
            }
            let was_empty = self.buf.is_empty();
            if self.fill().await? == 0 {
                return Err(if was_empty {
                    RecvError::Closed
                } else {
                    unexpected_eof()
                });
            }
        }
    }

    /// Reads a request body framed as `kind`.
    pub async fn read_body(&mut self, kind: BodyKind) -> Result<Vec<u8>, RecvError> {
        match kind {
            BodyKind::Empty => Ok(Vec::new()),
            BodyKind::Length(n) => self.read_exact(n).await,
            BodyKind::Chunked => self.read_chunked().await,
        }
    }

    async fn read_exact(&mut self, n: usize) -> Result<Vec<u8>, RecvError> {
        while self.buf.len() < n {
            if self.fill().await? == 0 {
                return Err(unexpected_eof());
            }
        }
        Ok(self.take(n))
    }

    /// Reads one line, without its `\r\n` (or bare `\n`) terminator.
    async fn read_line(&mut self) -> Result<Vec<u8>, RecvError> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line = self.take(i + 1);
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            if self.buf.len() > MAX_LINE {
                return Err(RecvError::Malformed("line too long"));
            }
            if self.fill().await? == 0 {
                return Err(unexpected_eof());
            }
        }
    }

    async fn read_chunked(&mut self) -> Result<Vec<u8>, RecvError> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line().await?;
            // Chunk extensions (";name=value") are ignored.
            let size_part = line.split(|&b| b == b';').next().unwrap_or_default();
            let size =
                parse_hex(trim(size_part)).ok_or(RecvError::Malformed("invalid chunk size"))?;
            if size == 0 {
                break;
            }
            if body.len() + size > MAX_BODY {
                return Err(RecvError::Malformed("request body too large"));
            }
            let chunk = self.read_exact(size).await?;
            body.extend_from_slice(&chunk);
            if !self.read_line().await?.is_empty() {
                return Err(RecvError::Malformed("missing CRLF after chunk data"));
            }
        }
        // Trailer section: discarded, up to the terminating empty line.
        let mut trailer_bytes = 0;
        loop {
            let line = self.read_line().await?;
            if line.is_empty() {
                return Ok(body);
            }
            trailer_bytes += line.len();
            if trailer_bytes > MAX_HEAD {
                return Err(RecvError::Malformed("trailers too large"));
            }
        }
    }

    /// Reads and discards everything until the peer closes or errors.
    pub async fn drain_until_eof(&mut self) {
        loop {
            self.buf.clear();
            match self.fill().await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }
}

/// Index just past the empty line ending a request head, if present.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.iter().enumerate().find_map(|(i, &b)| {
        if b != b'\n' {
            return None;
        }
        let rest = &buf[i + 1..];
        if rest.starts_with(b"\n") {
            Some(i + 2)
        } else if rest.starts_with(b"\r\n") {
            Some(i + 3)
        } else {
            None
        }
    })
}

fn trim(bytes: &[u8]) -> &[u8] {
    let is_ws = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ws(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ws(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

fn parse_hex(bytes: &[u8]) -> Option<usize> {
    if bytes.is_empty() || bytes.len() > 15 || !bytes.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    usize::from_str_radix(std::str::from_utf8(bytes).ok()?, 16).ok()
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Most header lines in one request head.
const MAX_HEADERS: usize = 256;

/// Parses a complete request head (including its terminating empty line) with `httparse`, the
/// parser Pingora uses: methods and header names must be tokens, the version HTTP/1.0 or 1.1,
/// and obsolete line folding is refused.
fn parse_head(raw: &[u8]) -> Result<Head, RecvError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut slots);
    match request.parse(raw) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(RecvError::Malformed("incomplete head")),
        Err(httparse::Error::Version) => {
            return Err(RecvError::Malformed("unsupported HTTP version"))
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(RecvError::Malformed("too many header lines"))
        }
        Err(_) => return Err(RecvError::Malformed("malformed request head")),
    }
    let (Some(method), Some(target), Some(minor)) = (request.method, request.path, request.version)
    else {
        return Err(RecvError::Malformed("malformed request line"));
    };
    let headers = request
        .headers
        .iter()
        .map(|h| (h.name.to_string(), lossy(trim(h.value))))
        .collect();
    Ok(Head {
        method: method.to_string(),
        target: target.to_string(),
        version: format!("HTTP/1.{minor}"),
        headers,
    })
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
