//! The snapshot source of `aegis dashboard --admin ADDR`: polls a running instance's `/status`
//! over a small HTTP/1.1 client on `std::net::TcpStream`, its response read with `httparse`; and
//! its [`BackendControl`]: `POST /backends/{id}/drain` or `/enable` with the token of
//! `--token-file`.
//!
//! One short-lived connection per refresh (`Connection: close`), so a restarted or upgraded
//! instance is picked up without any reconnect logic.

use super::{BackendControl, SnapshotSource};
use crate::config::Secret;
use crate::status::Snapshot;
use httparse::Status;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Connect and per-read timeout: the admin listener is local or near, so a second is generous.
const IO_TIMEOUT: Duration = Duration::from_secs(1);
/// Upper bound on one whole exchange, so a server that trickles bytes cannot stall the refresh.
const EXCHANGE_DEADLINE: Duration = Duration::from_secs(3);
/// Largest response accepted. A snapshot is a few KB per backend plus a bounded event ring.
const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// Reads snapshots from `http://ADDR/status` and drains or enables backends there.
#[derive(Debug, Clone)]
pub struct RemoteSource {
    admin: SocketAddr,
    /// Sent as `Authorization: Bearer` with every request when set.
    token: Option<Secret>,
}

impl RemoteSource {
    /// A source for the admin listener at `admin` (`admin.address` of the running instance),
    /// with the admin token if one was given.
    pub fn new(admin: SocketAddr, token: Option<Secret>) -> Self {
        Self { admin, token }
    }

    /// One `GET /status`, as a snapshot.
    pub fn fetch(&self) -> Result<Snapshot, String> {
        let admin = self.admin;
        let body =
            exchange(admin, "GET", "/status", self.token.as_ref()).map_err(
                |failure| match failure {
                    Failure::Connect(error) => {
                        format!("cannot reach {admin}: {} — retrying", describe(&error))
                    }
                    Failure::Io(error) => {
                        format!("{admin}/status: {} — retrying", describe(&error))
                    }
                    Failure::Http(reason) => format!("{admin}/status: {reason} — retrying"),
                },
            )?;
        serde_json::from_slice(&body)
            .map_err(|error| format!("{admin}/status: invalid snapshot JSON ({error}) — retrying"))
    }
}

impl SnapshotSource for RemoteSource {
    fn snapshot(&mut self) -> Result<Snapshot, String> {
        self.fetch()
    }
}

impl BackendControl for RemoteSource {
    fn set_drained(&self, id: &str, drained: bool) -> Result<String, String> {
        let action = if drained { "drain" } else { "enable" };
        let path = format!("/backends/{id}/{action}");
        let admin = self.admin;
        exchange(admin, "POST", &path, self.token.as_ref())
            .map(|_| format!("{action}: {id} done"))
            .map_err(|failure| match failure {
                Failure::Connect(error) | Failure::Io(error) => {
                    format!("{action} {id}: {admin}: {}", describe(&error))
                }
                Failure::Http(reason) => format!("{action} {id}: {reason}"),
            })
    }
}

enum Failure {
    /// No connection could be opened.
    Connect(io::Error),
    /// Connecting, writing or reading failed.
    Io(io::Error),
    /// The peer answered, but not with a usable HTTP response.
    Http(String),
}

impl From<io::Error> for Failure {
    fn from(error: io::Error) -> Self {
        Failure::Io(error)
    }
}

/// Short lower-case wording for the common failures ("connection refused", "timed out").
fn describe(error: &io::Error) -> String {
    match error.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => "timed out".to_string(),
        kind @ (ErrorKind::ConnectionRefused
        | ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::UnexpectedEof
        | ErrorKind::NotConnected) => kind.to_string(),
        _ => error.to_string(),
    }
}

/// One request (`GET /status`, `POST /backends/…`) and the response body, de-chunked.
fn exchange(
    admin: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&Secret>,
) -> Result<Vec<u8>, Failure> {
    let deadline = Instant::now() + EXCHANGE_DEADLINE;
    let mut stream = TcpStream::connect_timeout(&admin, IO_TIMEOUT).map_err(Failure::Connect)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let authorization = token
        .map(|t| format!("Authorization: Bearer {}\r\n", t.expose()))
        .unwrap_or_default();
    let length = if method == "POST" {
        "Content-Length: 0\r\n"
    } else {
        ""
    };
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {admin}\r\nAccept: application/json\r\n\
         User-Agent: aegis-dashboard\r\n{authorization}{length}Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes())?;

    let mut received = Vec::new();
    let mut eof = false;
    loop {
        if let Some(body) = parse_response(&received, eof).map_err(Failure::Http)? {
            return Ok(body);
        }
        if eof {
            return Err(Failure::Http("response ended early".into()));
        }
        if Instant::now() > deadline {
            return Err(Failure::Io(ErrorKind::TimedOut.into()));
        }
        let mut chunk = [0u8; 16 * 1024];
        let read = stream.read(&mut chunk)?;
        eof = read == 0;
        // SECURITY: the peer may be anything listening on that address; cap what we buffer.
        if received.len() + read > MAX_RESPONSE_BYTES {
            return Err(Failure::Http("response too large".into()));
        }
        received.extend_from_slice(&chunk[..read]);
    }
}

/// The body of a complete `200` response in `received`, `None` if more bytes are needed, or why
/// the response is unusable. `eof` says the peer closed, which ends a body without a length.
fn parse_response(received: &[u8], eof: bool) -> Result<Option<Vec<u8>>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let header_end = match response.parse(received) {
        Ok(Status::Complete(end)) => end,
        Ok(Status::Partial) => return Ok(None),
        Err(httparse::Error::Version) => return Err("not an HTTP/1.x response".into()),
        Err(error) => return Err(format!("malformed response header ({error})")),
    };
    match response.code {
        Some(200) => {}
        Some(code) => {
            let reason = response.reason.unwrap_or_default();
            return Err(format!("answered {code} {reason}").trim_end().to_string());
        }
        None => return Err("malformed status line".into()),
    }

    let mut content_length = None;
    let mut chunked = false;
    for header in response.headers.iter() {
        let value = std::str::from_utf8(header.value)
            .map_err(|_| format!("invalid {} header", header.name))?
            .trim();
        if header.name.eq_ignore_ascii_case("content-length") {
            let length = value
                .parse::<usize>()
                .map_err(|_| "invalid Content-Length".to_string())?;
            content_length = Some(length);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        }
    }

    let body = &received[header_end..];
    if chunked {
        decode_chunked(body)
    } else if let Some(length) = content_length {
        if length > MAX_RESPONSE_BYTES {
            return Err("response too large".into());
        }
        Ok((body.len() >= length).then(|| body[..length].to_vec()))
    } else {
        Ok(eof.then(|| body.to_vec()))
    }
}

/// Decodes a chunked body: `None` until the last (zero-size) chunk and its trailers are in.
fn decode_chunked(mut rest: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut body = Vec::new();
    loop {
        // Chunk extensions (";name=value") are allowed and ignored.
        let (size_end, size) = match httparse::parse_chunk_size(rest) {
            Ok(Status::Complete(parsed)) => parsed,
            Ok(Status::Partial) => return Ok(None),
            Err(_) => return Err("invalid chunk size".into()),
        };
        let size = usize::try_from(size)
            .ok()
            .filter(|size| *size <= MAX_RESPONSE_BYTES)
            .ok_or_else(|| "invalid chunk size".to_string())?;
        rest = &rest[size_end..];
        if size == 0 {
            // Trailers, if any, end with an empty line.
            let mut trailers = [httparse::EMPTY_HEADER; 16];
            return match httparse::parse_headers(rest, &mut trailers) {
                Ok(Status::Complete(_)) => Ok(Some(body)),
                Ok(Status::Partial) => Ok(None),
                Err(_) => Err("malformed trailer".into()),
            };
        }
        if rest.len() < size + 2 {
            return Ok(None);
        }
        if &rest[size..size + 2] != b"\r\n" {
            return Err("malformed chunk".into());
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::snapshot::BackendSnapshot;
    use std::net::TcpListener;
    use std::thread;

    fn sample() -> Snapshot {
        Snapshot {
            version: "0.1.0".into(),
            listen: "0.0.0.0:8080".into(),
            backends: vec![BackendSnapshot {
                url: "http://10.0.0.1:8080".into(),
                breaker: "closed".into(),
                healthy: true,
                p95_ms: Some(12.5),
                ..BackendSnapshot::default()
            }],
            ..Snapshot::default()
        }
    }

    /// Serves one connection with `response(body)` and returns the request it read.
    fn serve_once(response: impl FnOnce(&str) -> Vec<u8> + Send + 'static) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let body = serde_json::to_string(&sample()).expect("serialize");
        thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).expect("read request");
                assert!(n > 0, "client closed before sending its request");
                request.extend_from_slice(&buf[..n]);
            }
            let request = String::from_utf8(request).expect("utf-8 request");
            assert!(request.starts_with("GET /status HTTP/1.1\r\n"), "{request}");
            assert!(request.contains("Connection: close\r\n"), "{request}");
            stream.write_all(&response(&body)).expect("write response");
        });
        addr
    }

    #[test]
    fn remote_source_parses_content_length_response() {
        let addr = serve_once(|body| {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        });
        assert_eq!(RemoteSource::new(addr, None).snapshot(), Ok(sample()));
    }

    #[test]
    fn remote_source_parses_chunked_response() {
        let addr = serve_once(|body| {
            let (a, b) = body.split_at(body.len() / 2);
            format!(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x};ext=1\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
                a.len(),
                b.len()
            )
            .into_bytes()
        });
        assert_eq!(RemoteSource::new(addr, None).snapshot(), Ok(sample()));
    }

    #[test]
    fn remote_source_reads_body_to_eof_without_length() {
        let addr = serve_once(|body| format!("HTTP/1.0 200 OK\r\n\r\n{body}").into_bytes());
        assert_eq!(RemoteSource::new(addr, None).snapshot(), Ok(sample()));
    }

    #[test]
    fn remote_source_reports_non_200_status() {
        let addr = serve_once(|_| {
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n".to_vec()
        });
        let error = RemoteSource::new(addr, None)
            .snapshot()
            .expect_err("503 is an error");
        assert!(error.contains("503 Service Unavailable"), "{error}");
        assert!(error.contains(&addr.to_string()), "{error}");
    }

    #[test]
    fn remote_source_against_closed_port_names_the_address() {
        // Bind then drop: the port was free a moment ago and nothing listens on it now.
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("ephemeral port");
        let error = RemoteSource::new(addr, None)
            .snapshot()
            .expect_err("nothing listens");
        assert!(error.contains(&format!("cannot reach {addr}")), "{error}");
        assert!(error.contains("connection refused"), "{error}");
    }

    #[test]
    fn parse_response_waits_for_complete_bodies() {
        type Expected = Result<Option<&'static [u8]>, ()>;
        let cases: [(&[u8], bool, Expected); 10] = [
            (b"HTTP/1.1 200 OK\r\nContent-Le", false, Ok(None)),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
                false,
                Ok(None),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab",
                false,
                Ok(Some(b"ab")),
            ),
            (b"HTTP/1.1 200 OK\r\n\r\nabc", false, Ok(None)),
            (b"HTTP/1.1 200 OK\r\n\r\nabc", true, Ok(Some(b"abc"))),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
                false,
                Ok(None),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n",
                false,
                Ok(None),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
                false,
                Ok(Some(b"abc")),
            ),
            (b"SSH-2.0-OpenSSH\r\n\r\n", false, Err(())),
            (b"HTTP/1.1 200 OK\r\nbroken header\r\n\r\n", false, Err(())),
        ];
        for (received, eof, expected) in cases {
            let got = parse_response(received, eof);
            let got = got.as_ref().map(|body| body.as_deref()).map_err(|_| ());
            assert_eq!(got, expected, "{:?}", String::from_utf8_lossy(received));
        }
    }
}
