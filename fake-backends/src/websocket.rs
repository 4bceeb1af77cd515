//! WebSocket (RFC 6455), as much as the tests need: the handshake key, frames encoded and
//! decoded by hand (pure, over byte slices), the fake backend's echo loop and a blocking test
//! client. Frames are whole messages here (no fragmentation); control frames are echoed like
//! any other, and a close frame is answered with a close and ends the connection.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The largest frame payload either side accepts (a test sends at most a few MiB).
pub const MAX_PAYLOAD: usize = 16 * 1024 * 1024;

/// Opcodes (RFC 6455 §5.2).
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2).
pub fn accept_key(key: &str) -> String {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key.trim().as_bytes());
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha.digest().bytes())
}

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub opcode: u8,
    pub payload: Vec<u8>,
}

/// Encodes a final frame; `mask` for a client's frames (RFC 6455 §5.3).
pub fn encode(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(0x80 | opcode);
    let masked = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(masked | n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(masked | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(masked | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// Decodes the frame at the start of `buf`: `Ok(None)` until it is whole, else the frame
/// (unmasked) and the bytes it took.
pub fn decode(buf: &[u8]) -> Result<Option<(Frame, usize)>, String> {
    if buf.len() < 2 {
        return Ok(None);
    }
    if buf[0] & 0x80 == 0 {
        return Err("fragmented frames are not supported".into());
    }
    let opcode = buf[0] & 0x0f;
    let masked = buf[1] & 0x80 != 0;
    let (len, mut at) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (usize::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
        127 if buf.len() >= 10 => {
            let len = u64::from_be_bytes(buf[2..10].try_into().expect("8 bytes"));
            (usize::try_from(len).unwrap_or(usize::MAX), 10)
        }
        126 | 127 => return Ok(None),
        n => (usize::from(n), 2),
    };
    if len > MAX_PAYLOAD {
        return Err(format!("frame of {len} bytes"));
    }
    let key = if masked {
        let Some(key) = buf.get(at..at + 4) else {
            return Ok(None);
        };
        at += 4;
        Some([key[0], key[1], key[2], key[3]])
    } else {
        None
    };
    let Some(payload) = buf.get(at..at + len) else {
        return Ok(None);
    };
    let payload = match key {
        Some(key) => payload
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[i % 4])
            .collect(),
        None => payload.to_vec(),
    };
    Ok(Some((Frame { opcode, payload }, at + len)))
}

/// The backend's side after its 101: echoes every frame back (unmasked) until a close frame,
/// which it answers, or the end of the connection. `buffered` are bytes read past the
/// handshake.
pub(crate) async fn echo<S>(stream: &mut S, mut buffered: Vec<u8>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        while let Ok(Some((frame, used))) = decode(&buffered) {
            buffered.drain(..used);
            let out = encode(frame.opcode, &frame.payload, None);
            if stream.write_all(&out).await.is_err() || frame.opcode == CLOSE {
                return;
            }
        }
        if decode(&buffered).is_err() {
            return;
        }
        buffered.reserve(64 * 1024);
        match stream.read_buf(&mut buffered).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// A blocking WebSocket client for tests, over a stream whose handshake was answered 101.
pub struct Client {
    stream: TcpStream,
    buffered: Vec<u8>,
}

/// What [`Client::connect`] got: the tunnel on a 101, else the answer.
pub enum Handshake {
    Open(Client, crate::client::Response),
    Refused(crate::client::Response),
}

/// A handshake request for `path` with extra header lines (each ending in `\r\n`).
pub fn handshake_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: test.local\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

impl Client {
    /// Sends `request` (see [`handshake_request`]) to `addr` and reads the answer: a 101's
    /// head, or any other whole response.
    pub fn connect(addr: SocketAddr, request: &str) -> std::io::Result<Handshake> {
        let mut connection = crate::client::Connection::open(addr)?;
        connection.send_raw(request.as_bytes())?;
        let response = connection.read_response(false)?;
        if response.status != 101 {
            return Ok(Handshake::Refused(response));
        }
        let (stream, buffered) = connection.into_parts();
        Ok(Handshake::Open(Client { stream, buffered }, response))
    }

    /// The socket (for timeouts).
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Sends one frame, masked as a client must.
    pub fn send(&mut self, opcode: u8, payload: &[u8]) -> std::io::Result<()> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        self.stream.write_all(&encode(opcode, payload, Some(mask)))
    }

    /// Reads the next frame; an error when the connection ends first.
    pub fn recv(&mut self) -> std::io::Result<Frame> {
        loop {
            match decode(&self.buffered) {
                Ok(Some((frame, used))) => {
                    self.buffered.drain(..used);
                    return Ok(frame);
                }
                Ok(None) => {}
                Err(e) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the tunnel closed",
                ));
            }
            self.buffered.extend_from_slice(&chunk[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_example_key_is_accepted() {
        // RFC 6455 §1.3.
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn frames_of_every_length_form_round_trip() {
        for len in [0, 1, 125, 126, 65_535, 65_536, 200_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            for mask in [None, Some([1, 2, 3, 4])] {
                let wire = encode(BINARY, &payload, mask);
                assert_eq!(decode(&wire[..wire.len() - 1]).unwrap(), None);
                let (frame, used) = decode(&wire).unwrap().unwrap();
                assert_eq!(used, wire.len());
                assert_eq!(frame.opcode, BINARY);
                assert_eq!(frame.payload, payload, "len {len} mask {mask:?}");
            }
        }
    }
}
