//! HTTP/2 for the black-box tests: a well-behaved client (the `h2` crate, prior knowledge) and
//! a raw frame writer/reader for the hostile ones (floods, malformed streams).

use super::http::Response;
use bytes::Bytes;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A well-behaved HTTP/2 client on one connection (h2c, prior knowledge).
pub struct Client {
    rt: tokio::runtime::Runtime,
    send: h2::client::SendRequest<Bytes>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> anyhow::Result<Client> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let send = rt.block_on(async {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            let (send, conn) = h2::client::handshake(tcp).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok::<_, anyhow::Error>(send)
        })?;
        Ok(Client { rt, send })
    }

    /// `GET path` with `:authority` localhost.
    pub fn get(&mut self, path: &str) -> anyhow::Result<Response> {
        self.request("GET", &format!("http://localhost{path}"), &[], None)
    }

    /// One request; `uri` is absolute (its authority becomes `:authority`).
    pub fn request(
        &mut self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> anyhow::Result<Response> {
        let mut builder = http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder.body(()).expect("a valid request");
        let send = self.send.clone();
        let body = body.map(Bytes::copy_from_slice);
        self.rt.block_on(async move {
            let mut send = send.ready().await?;
            let (response, mut stream) = send.send_request(request, body.is_none())?;
            if let Some(body) = body {
                stream.send_data(body, true)?;
            }
            let response = tokio::time::timeout(Duration::from_secs(10), response).await??;
            let (parts, mut body) = response.into_parts();
            let mut bytes = Vec::new();
            while let Some(chunk) = body.data().await {
                let chunk = chunk?;
                let _ = body.flow_control().release_capacity(chunk.len());
                bytes.extend_from_slice(&chunk);
            }
            let resp = Response {
                status: parts.status.as_u16(),
                headers: parts
                    .headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                    .collect(),
                body: bytes,
            };
            super::http::assert_not_pingora(&resp);
            Ok(resp)
        })
    }
}

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const CONTINUATION: u8 = 0x9;
pub const END_STREAM: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const PROTOCOL_ERROR: u32 = 0x1;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

/// One frame on the wire.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An HPACK integer with an `n`-bit prefix whose other bits are `first`.
fn hpack_int(out: &mut Vec<u8>, first: u8, n: u32, mut value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128 + 128) as u8);
        value /= 128;
    }
    out.push(value as u8);
}

/// A header block of literal fields without indexing, byte for byte (no Huffman): names and
/// values are sent exactly as given, invalid ones included.
pub fn header_block(fields: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.push(0x00);
        hpack_int(&mut out, 0, 7, name.len());
        out.extend_from_slice(name);
        hpack_int(&mut out, 0, 7, value.len());
        out.extend_from_slice(value);
    }
    out
}

/// The pseudo-headers of a request to `localhost`, then `extra`.
pub fn request_block(method: &str, path: &str, extra: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut fields: Vec<(&[u8], &[u8])> = vec![
        (b":method", method.as_bytes()),
        (b":scheme", b"http"),
        (b":authority", b"localhost"),
        (b":path", path.as_bytes()),
    ];
    fields.extend_from_slice(extra);
    header_block(&fields)
}

/// What the server sent on a raw connection.
#[derive(Debug, Default)]
pub struct Seen {
    /// GOAWAY error code, if one came.
    pub goaway: Option<u32>,
    /// (stream, error code) of each RST_STREAM.
    pub resets: Vec<(u32, u32)>,
    /// (stream, flags) of each HEADERS.
    pub headers: Vec<(u32, u8)>,
    /// The connection was closed (EOF or reset) within the deadline.
    pub closed: bool,
    /// Frames read.
    pub frames: usize,
}

/// A hand-driven HTTP/2 connection.
pub struct Raw {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    /// Connects and sends the preface and an empty SETTINGS (plus `settings` pairs).
    pub fn connect(addr: SocketAddr, settings: &[(u16, u32)]) -> Raw {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_write_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut raw = Raw {
            stream,
            buf: Vec::new(),
        };
        let mut payload = Vec::new();
        for (id, value) in settings {
            payload.extend_from_slice(&id.to_be_bytes());
            payload.extend_from_slice(&value.to_be_bytes());
        }
        let mut hello = PREFACE.to_vec();
        hello.extend(frame(SETTINGS, 0, 0, &payload));
        raw.send(&hello).expect("preface");
        raw
    }

    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads frames until `done` says so, a GOAWAY arrives, the connection closes, or
    /// `timeout` passes. SETTINGS from the server are acknowledged.
    pub fn read_until(&mut self, timeout: Duration, mut done: impl FnMut(&Seen) -> bool) -> Seen {
        let deadline = Instant::now() + timeout;
        let mut seen = Seen::default();
        let mut chunk = [0u8; 16384];
        loop {
            while self.buf.len() >= 9 {
                let len = (usize::from(self.buf[0]) << 16)
                    | (usize::from(self.buf[1]) << 8)
                    | usize::from(self.buf[2]);
                if self.buf.len() < 9 + len {
                    break;
                }
                let (kind, flags) = (self.buf[3], self.buf[4]);
                let id = u32::from_be_bytes([self.buf[5], self.buf[6], self.buf[7], self.buf[8]])
                    & 0x7fff_ffff;
                let payload: Vec<u8> = self.buf[9..9 + len].to_vec();
                self.buf.drain(..9 + len);
                seen.frames += 1;
                match kind {
                    GOAWAY if payload.len() >= 8 => {
                        seen.goaway = Some(u32::from_be_bytes([
                            payload[4], payload[5], payload[6], payload[7],
                        ]));
                    }
                    RST_STREAM if payload.len() >= 4 => {
                        let code =
                            u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
                        seen.resets.push((id, code));
                    }
                    HEADERS => seen.headers.push((id, flags)),
                    SETTINGS if flags & 0x1 == 0 => {
                        let _ = self.send(&frame(SETTINGS, 0x1, 0, &[]));
                    }
                    _ => {}
                }
            }
            if seen.goaway.is_some() || done(&seen) {
                return seen;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return seen;
            }
            self.stream
                .set_read_timeout(Some(left.min(Duration::from_millis(200))))
                .unwrap();
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    seen.closed = true;
                    return seen;
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => {
                    seen.closed = true;
                    return seen;
                }
            }
        }
    }
}
