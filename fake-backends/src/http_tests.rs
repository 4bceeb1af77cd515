//! Unit tests for the HTTP request parser.

use super::*;

async fn read_one(raw: &[u8]) -> Result<(Head, Vec<u8>), RecvError> {
    let mut reader = Reader::new(raw);
    let head = reader.read_head().await?;
    let kind = head.body_kind()?;
    let body = reader.read_body(kind).await?;
    Ok((head, body))
}

#[test]
fn finds_end_of_head() {
    assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nrest"), Some(18));
    assert_eq!(find_head_end(b"GET / HTTP/1.1\n\nrest"), Some(16));
    assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nHost: a\r\n"), None);
}

#[tokio::test]
async fn parses_request_line_and_headers() {
    let raw =
        b"\r\nGET /a?b=c HTTP/1.1\r\nHost: x\r\nX-Thing:   spaced value \t\r\nx-thing: 2\r\n\r\n";
    let (head, body) = read_one(raw).await.expect("valid request");
    assert_eq!(head.method, "GET");
    assert_eq!(head.target, "/a?b=c");
    assert_eq!(head.path(), "/a");
    assert_eq!(head.version, "HTTP/1.1");
    assert_eq!(
        head.headers,
        vec![
            ("Host".to_string(), "x".to_string()),
            ("X-Thing".to_string(), "spaced value".to_string()),
            ("x-thing".to_string(), "2".to_string()),
        ]
    );
    assert_eq!(head.header("X-THING"), Some("spaced value"));
    assert!(head.keep_alive());
    assert!(body.is_empty());
}

#[tokio::test]
async fn keep_alive_rules() {
    let (h, _) = read_one(b"GET / HTTP/1.1\r\nConnection: Close\r\n\r\n")
        .await
        .expect("valid");
    assert!(!h.keep_alive());
    let (h, _) = read_one(b"GET / HTTP/1.0\r\n\r\n").await.expect("valid");
    assert!(!h.keep_alive());
    let (h, _) = read_one(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .await
        .expect("valid");
    assert!(h.keep_alive());
}

#[tokio::test]
async fn reads_content_length_body_and_leaves_next_request() {
    let raw = b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /next HTTP/1.1\r\n\r\n";
    let mut reader = Reader::new(&raw[..]);
    let head = reader.read_head().await.expect("head");
    let kind = head.body_kind().expect("framing");
    assert_eq!(kind, BodyKind::Length(5));
    assert_eq!(reader.read_body(kind).await.expect("body"), b"hello");
    let next = reader.read_head().await.expect("second head");
    assert_eq!(next.target, "/next");
    assert!(matches!(reader.read_head().await, Err(RecvError::Closed)));
}

#[tokio::test]
async fn decodes_chunked_body_with_extensions_and_trailers() {
    let raw = b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
                5;name=value\r\nhello\r\nA\r\n, world!!!\r\n0\r\nX-Trailer: yes\r\n\r\n";
    let (head, body) = read_one(raw).await.expect("valid chunked request");
    assert_eq!(head.body_kind().expect("framing"), BodyKind::Chunked);
    assert_eq!(body, b"hello, world!!!");
}

#[tokio::test]
async fn rejects_garbage() {
    for raw in [
        &b"this is not http\r\n\r\n"[..],
        b"GET / HTTP/2.0\r\n\r\n",
        b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nA: b\r\n  folded\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        b"POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ] {
        let result = read_one(raw).await;
        assert!(
            matches!(result, Err(RecvError::Malformed(_))),
            "expected Malformed for {:?}, got {result:?}",
            String::from_utf8_lossy(raw)
        );
    }
}

#[tokio::test]
async fn rejects_oversized_head() {
    let mut raw = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
    raw.extend(std::iter::repeat_n(b'x', MAX_HEAD + 10));
    raw.extend_from_slice(b"\r\n\r\n");
    assert!(matches!(read_one(&raw).await, Err(RecvError::Malformed(_))));
}

#[tokio::test]
async fn truncated_request_is_an_io_error() {
    assert!(matches!(
        read_one(b"GET / HTTP/1.1\r\nHost").await,
        Err(RecvError::Io(_))
    ));
    assert!(matches!(
        read_one(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc").await,
        Err(RecvError::Io(_))
    ));
}
