//! Response encoding and writing, including the deliberately broken answers.

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Size of the pieces in which a `set_body_size` body is written.
const BODY_PIECE: usize = 16 * 1024;
/// `Content-Length` announced by [`crate::Mode::ResetMidBody`].
const RESET_ANNOUNCED_LEN: usize = 100_000;
/// Body bytes actually sent by [`crate::Mode::ResetMidBody`] before the reset.
const RESET_SENT_LEN: usize = 1000;

/// What to do with a connection after one exchange.
pub(crate) enum Next {
    /// Read the next request from the same connection.
    KeepAlive,
    /// Close the connection.
    Close,
    /// A WebSocket handshake was answered 101: the connection echoes frames from now on.
    Upgrade,
}

/// Standard reason phrase for `status` (a generic one for unknown codes).
fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Whether a response with `status` may carry a body (and `Content-Length`).
pub(crate) fn body_allowed(status: u16) -> bool {
    !(100..200).contains(&status) && status != 204 && status != 304
}

/// Encodes a response status line and header block, including the final empty line.
pub(crate) fn encode_head<'a>(
    status: u16,
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// The body of a response.
#[derive(Clone, Copy)]
pub(crate) enum Body<'a> {
    /// No body (e.g. for HEAD).
    None,
    /// These bytes.
    Bytes(&'a [u8]),
    /// This many bytes of `a`, written in [`BODY_PIECE`] pieces.
    Filler(usize),
}

/// A response head about to be written.
pub(crate) struct Outgoing<'a> {
    /// Response status code.
    pub status: u16,
    /// Announced body length (also for HEAD, where no body follows).
    pub content_length: usize,
    /// Extra headers, sent verbatim after the standard ones.
    pub extra: &'a [(String, String)],
    /// Whether the client allows keeping the connection open.
    pub keep_alive: bool,
    /// Whether the request was HTTP/1.0 (keep-alive must then be explicit).
    pub version_1_0: bool,
}

impl Outgoing<'_> {
    /// Writes the head and `body` (bodies are suppressed for statuses that
    /// cannot carry one) and decides whether to keep the connection.
    pub async fn send(
        &self,
        stream: &mut TcpStream,
        name: &str,
        body: Body<'_>,
    ) -> std::io::Result<Next> {
        let closes = |(n, v): &(String, String)| {
            n.eq_ignore_ascii_case("connection")
                && v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close"))
        };
        let keep_alive = self.keep_alive && !self.extra.iter().any(closes);
        let length = self.content_length.to_string();
        let mut headers = vec![("Content-Type", "text/plain")];
        if body_allowed(self.status) {
            headers.push(("Content-Length", length.as_str()));
        }
        headers.push(("X-Backend", name));
        if !keep_alive {
            headers.push(("Connection", "close"));
        } else if self.version_1_0 {
            headers.push(("Connection", "keep-alive"));
        }
        headers.extend(self.extra.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        let mut out = encode_head(self.status, headers);
        let body = if body_allowed(self.status) {
            body
        } else {
            Body::None
        };
        if let Body::Bytes(bytes) = body {
            out.extend_from_slice(bytes);
        }
        stream.write_all(&out).await?;
        if let Body::Filler(size) = body {
            write_filler(stream, size).await?;
        }
        Ok(if keep_alive {
            Next::KeepAlive
        } else {
            Next::Close
        })
    }
}

/// Writes `size` bytes of `a` in [`BODY_PIECE`] pieces.
async fn write_filler(stream: &mut TcpStream, size: usize) -> std::io::Result<()> {
    let piece = [b'a'; BODY_PIECE];
    let mut left = size;
    while left > 0 {
        let n = left.min(BODY_PIECE);
        stream.write_all(&piece[..n]).await?;
        left -= n;
    }
    Ok(())
}

/// Sends a 200 head announcing more body than is sent, then resets the connection.
pub(crate) async fn reset_mid_body(stream: &mut TcpStream, name: &str) -> std::io::Result<()> {
    let length = RESET_ANNOUNCED_LEN.to_string();
    let headers = [
        ("Content-Type", "text/plain"),
        ("Content-Length", length.as_str()),
        ("X-Backend", name),
    ];
    let mut out = encode_head(200, headers);
    out.resize(out.len() + RESET_SENT_LEN, b'a');
    stream.write_all(&out).await?;
    stream.flush().await?;
    // SO_LINGER 0: closing the socket (when the caller drops it) sends RST.
    stream.set_zero_linger()
}

/// Answers 400 and closes the connection.
pub(crate) async fn bad_request(stream: &mut TcpStream, why: &str) -> std::io::Result<Next> {
    let body = format!("bad request: {why}\n");
    let length = body.len().to_string();
    let headers = [
        ("Content-Type", "text/plain"),
        ("Content-Length", length.as_str()),
        ("Connection", "close"),
    ];
    let mut out = encode_head(400, headers);
    out.extend_from_slice(body.as_bytes());
    stream.write_all(&out).await?;
    Ok(Next::Close)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_response_head() {
        let head = encode_head(503, [("A", "1"), ("B", "two")]);
        assert_eq!(
            head,
            b"HTTP/1.1 503 Service Unavailable\r\nA: 1\r\nB: two\r\n\r\n"
        );
        assert!(!body_allowed(204));
        assert!(body_allowed(500));
    }
}
