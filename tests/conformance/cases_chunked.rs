//! Chunked transfer coding cases (RFC 9112 §7.1): sizes, extensions, line ends, trailers, and
//! the body limit of SPEC §3.5 on a body that declares no length.

use crate::table::Send::{H1Built, H1Eof, H1};
use crate::table::*;

/// A POST to `/c` with `Transfer-Encoding: chunked` and this body, as bytes (the cases are
/// ASCII; `concat!` joins strings, not byte strings).
macro_rules! chunked {
    ($body:literal) => {
        concat!(
            "POST /c HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n",
            $body
        )
        .as_bytes()
    };
}

const CUT_BAD: Outcome = Outcome::Cut(&BAD);
const CUT_CLOSED: Outcome = Outcome::Cut(&Outcome::Closed);

pub const CASES: &[Case] = &[
    Case { id: "chunk-01", what: "one chunk", send: H1(chunked!("5\r\nhello\r\n0\r\n\r\n")), expect: &[post_chunked("/c", b"hello")], rfc: "RFC 9112 §7.1", note: "" },
    Case { id: "chunk-02", what: "several chunks", send: H1(chunked!("2\r\nhe\r\n3\r\nllo\r\n1\r\n!\r\n0\r\n\r\n")), expect: &[post_chunked("/c", b"hello!")], rfc: "RFC 9112 §7.1", note: "" },
    Case { id: "chunk-03", what: "no data (last chunk only)", send: H1(chunked!("0\r\n\r\n")), expect: &[post_chunked("/c", b"")], rfc: "RFC 9112 §7.1", note: "" },
    Case { id: "chunk-04", what: "upper-case hex size", send: H1(chunked!("A\r\n0123456789\r\n0\r\n\r\n")), expect: &[post_chunked("/c", b"0123456789")], rfc: "RFC 9112 §7.1", note: "" },
    Case { id: "chunk-05", what: "leading zeros in the size", send: H1(chunked!("0005\r\nhello\r\n0\r\n\r\n")), expect: &[post_chunked("/c", b"hello")], rfc: "RFC 9112 §7.1", note: "" },
    Case { id: "chunk-06", what: "a chunk extension", send: H1(chunked!("5;ext=1\r\nhello\r\n0\r\n\r\n")), expect: &[post_chunked("/c", b"hello")], rfc: "RFC 9112 §7.1.1", note: "extensions are ignored, not passed on" },
    Case { id: "chunk-07", what: "an extension without a value", send: H1(chunked!("5;ext\r\nhello\r\n0\r\n\r\n")), expect: &[post_chunked("/c", b"hello")], rfc: "RFC 9112 §7.1.1", note: "" },
    Case { id: "chunk-08", what: "a quoted extension value", send: H1(chunked!("5;a=\"b c\"\r\nhello\r\n0\r\n\r\n")), expect: &[post_chunked("/c", b"hello")], rfc: "RFC 9112 §7.1.1", note: "" },
    Case { id: "chunk-09", what: "whitespace before an extension", send: H1(chunked!("5 ;a=b\r\nhello\r\n0\r\n\r\n")), expect: &[post_chunked("/c", b"hello")], rfc: "RFC 9112 §7.1.1", note: "BWS before `;` is allowed" },
    Case { id: "chunk-10", what: "an extension on the last chunk", send: H1(chunked!("5\r\nhello\r\n0;last\r\n\r\n")), expect: &[post_chunked("/c", b"hello")], rfc: "RFC 9112 §7.1.1", note: "" },
    Case { id: "chunk-11", what: "a 4 KiB chunk extension", send: H1Built(long_extension), expect: &[post_chunked("/c", b"hello")], rfc: "RFC 9112 §7.1.1", note: "looser: the RFC says a server ought to limit extension length; 4 KiB passes" },
    Case { id: "chunk-12", what: "a trailer field", send: H1(chunked!("5\r\nhello\r\n0\r\nX-Trailer: v\r\n\r\n")), expect: &[post_chunked("/c", b"hello")], rfc: "RFC 9112 §7.1.2", note: "the trailer is dropped, which the RFC allows" },
    Case { id: "chunk-13", what: "a Content-Length in the trailer", send: H1(chunked!("5\r\nhello\r\n0\r\nContent-Length: 50\r\n\r\n")), expect: &[post_chunked("/c", b"hello")], rfc: "RFC 9110 §6.5.1", note: "framing fields in trailers are never used" },
    Case { id: "chunk-14", what: "a non-hex size", send: H1(chunked!("5g\r\nhello\r\n0\r\n\r\n")), expect: &[CUT_BAD], rfc: "RFC 9112 §7.1", note: "" },
    Case { id: "chunk-15", what: "a negative size", send: H1(chunked!("-5\r\nhello\r\n0\r\n\r\n")), expect: &[CUT_BAD], rfc: "RFC 9112 §7.1", note: "" },
    Case { id: "chunk-16", what: "a 0x-prefixed size", send: H1(chunked!("0x5\r\nhello\r\n0\r\n\r\n")), expect: &[CUT_BAD], rfc: "RFC 9112 §7.1", note: "" },
    Case { id: "chunk-17", what: "an empty size line", send: H1(chunked!("\r\nhello\r\n0\r\n\r\n")), expect: &[CUT_BAD], rfc: "RFC 9112 §7.1", note: "bare Pingora (httparse) reads an empty size line as the last chunk and the rest as trailers, losing the data; refused by a patch" },
    Case { id: "chunk-18", what: "a size over 64 bits", send: H1(chunked!("10000000000000000\r\nhello\r\n0\r\n\r\n")), expect: &[CUT_BAD], rfc: "RFC 9112 §7.1", note: "" },
    Case { id: "chunk-19", what: "a huge size (over max_body_bytes), data following", send: H1(chunked!("ffffffff\r\nhello\r\n0\r\n\r\n")), expect: &[CUT_CLOSED], rfc: "RFC 9112 §7.1", note: "a recipient must guard against overflow; the body stalls at the backend until Aegis ends it" },
    Case { id: "chunk-20", what: "chunks growing past max_body_bytes", send: H1Built(chunks_1200), expect: &[Outcome::Cut(&BODY_TOO_LARGE)], rfc: "RFC 9110 §15.5.14", note: "SPEC §3.5: the backend request is aborted" },
    Case { id: "chunk-21", what: "chunks adding up to exactly max_body_bytes", send: H1Built(chunks_1000), expect: &[post_chunked("/c", KILOBYTE)], rfc: "RFC 9112 §7.1", note: "" },
    Case { id: "chunk-22", what: "data longer than the size (no CRLF after it)", send: H1(chunked!("3\r\nhello\r\n0\r\n\r\n")), expect: &[CUT_BAD], rfc: "RFC 9112 §7.1", note: "" },
    Case { id: "chunk-23", what: "the CRLF after the data missing", send: H1Eof(chunked!("5\r\nhello0\r\n\r\n")), expect: &[CUT_BAD], rfc: "RFC 9112 §7.1", note: "" },
    Case { id: "chunk-24", what: "no last chunk, then end of input", send: H1Eof(chunked!("5\r\nhello\r\n")), expect: &[CUT_CLOSED], rfc: "RFC 9112 §8", note: "incomplete message: the backend request is aborted" },
    Case { id: "chunk-25", what: "bare LF after the size", send: H1(chunked!("5\nhello\r\n0\r\n\r\n")), expect: &[CUT_BAD], rfc: "RFC 9112 §2.2", note: "the RFC lets a recipient accept a bare LF; refused, as in the head" },
    Case { id: "chunk-26", what: "bare LF after the data", send: H1(chunked!("5\r\nhello\n0\r\n\r\n")), expect: &[CUT_BAD], rfc: "RFC 9112 §7.1", note: "" },
    Case { id: "chunk-27", what: "bare LF ending the last chunk and the body", send: H1(chunked!("5\r\nhello\r\n0\n\n")), expect: &[CUT_BAD], rfc: "RFC 9112 §2.2", note: "as chunk-25" },
    Case { id: "chunk-28", what: "trailing whitespace after the size", send: H1(chunked!("5 \r\nhello\r\n0\r\n\r\n")), expect: &[post_chunked("/c", b"hello")], rfc: "RFC 9112 §7.1", note: "looser: not in the grammar without an extension; accepted" },
    Case { id: "chunk-29", what: "a size with a bare CR", send: H1(chunked!("5\rhello\r\n0\r\n\r\n")), expect: &[CUT_BAD], rfc: "RFC 9112 §2.2", note: "" },
    Case { id: "chunk-30", what: "a chunked body followed by a pipelined GET", send: H1(b"POST /c HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /next HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[post_chunked("/c", b"hello"), get("/next")], rfc: "RFC 9112 §9.3.2", note: "" },
];

const KILOBYTE: &[u8] = &[b'k'; 1000];

fn long_extension() -> Vec<u8> {
    let mut bytes = chunked!("").to_vec();
    bytes.extend_from_slice(format!("5;x={}\r\nhello\r\n0\r\n\r\n", "e".repeat(4096)).as_bytes());
    bytes
}

fn chunks_1000() -> Vec<u8> {
    let mut bytes = chunked!("").to_vec();
    for _ in 0..4 {
        bytes.extend_from_slice(b"fa\r\n");
        bytes.extend_from_slice(&KILOBYTE[..250]);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"0\r\n\r\n");
    bytes
}

fn chunks_1200() -> Vec<u8> {
    let mut bytes = chunked!("").to_vec();
    for _ in 0..2 {
        bytes.extend_from_slice(format!("258\r\n{}\r\n", "x".repeat(600)).as_bytes());
    }
    bytes.extend_from_slice(b"0\r\n\r\n");
    bytes
}
