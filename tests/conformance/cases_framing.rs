//! Message framing cases (RFC 9112 §6, RFC 9110 §8.6; SPEC §3.2 and §3.5): Content-Length
//! forms, Transfer-Encoding forms, both together.

use crate::table::Send::{H1Built, H1Eof, H1};
use crate::table::*;

const CL0: Headers = Headers::Are(&[("Content-Length", "0")]);

pub const CASES: &[Case] = &[
    Case { id: "cl-01", what: "Content-Length: 0", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 0\r\n\r\n"), expect: &[fwd("POST", "/", CL0, b"")], rfc: "RFC 9110 §8.6", note: "" },
    Case { id: "cl-02", what: "POST with neither length nor coding", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[fwd("POST", "/", Headers::Are(&[]), b"")], rfc: "RFC 9112 §6.3", note: "" },
    Case { id: "cl-03", what: "GET with a body", send: H1(b"GET / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhello"), expect: &[fwd("GET", "/", CL5, b"hello")], rfc: "RFC 9110 §9.3.1", note: "" },
    Case { id: "cl-04", what: "leading zeros", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 005\r\n\r\nhello"), expect: &[fwd("POST", "/", Headers::Are(&[("Content-Length", "005")]), b"hello")], rfc: "RFC 9110 §8.6", note: "1*DIGIT: leading zeros are valid; forwarded as sent" },
    Case { id: "cl-05", what: "a plus sign", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: +5\r\n\r\nhello"), expect: &[AMBIGUOUS], rfc: "RFC 9110 §8.6", note: "" },
    Case { id: "cl-06", what: "a minus sign", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: -1\r\n\r\nhello"), expect: &[AMBIGUOUS], rfc: "RFC 9110 §8.6", note: "" },
    Case { id: "cl-07", what: "hexadecimal", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 0x5\r\n\r\nhello"), expect: &[AMBIGUOUS], rfc: "RFC 9110 §8.6", note: "" },
    Case { id: "cl-08", what: "a space inside the number", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 1 0\r\n\r\nhello"), expect: &[AMBIGUOUS], rfc: "RFC 9110 §8.6", note: "" },
    Case { id: "cl-09", what: "an empty value", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length:\r\n\r\nhello"), expect: &[AMBIGUOUS], rfc: "RFC 9110 §8.6", note: "" },
    Case { id: "cl-10", what: "trailing whitespace", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5 \t\r\n\r\nhello"), expect: &[fwd("POST", "/", CL5, b"hello")], rfc: "RFC 9112 §5.1", note: "" },
    Case { id: "cl-11", what: "two identical headers", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"), expect: &[fwd("POST", "/", CL5, b"hello")], rfc: "RFC 9110 §8.6", note: "collapsed to one" },
    Case { id: "cl-12", what: "two differing headers", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"), expect: &[AMBIGUOUS], rfc: "RFC 9112 §6.3", note: "" },
    Case { id: "cl-13", what: "an identical list", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5, 5\r\n\r\nhello"), expect: &[fwd("POST", "/", CL5, b"hello")], rfc: "RFC 9110 §8.6", note: "a list of one repeated value is accepted, and forwarded as one number" },
    Case { id: "cl-14", what: "a differing list", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5, 6\r\n\r\nhello!"), expect: &[AMBIGUOUS], rfc: "RFC 9112 §6.3", note: "" },
    Case { id: "cl-15", what: "20 digits (over 64 bits)", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 99999999999999999999\r\n\r\nhello"), expect: &[AMBIGUOUS], rfc: "RFC 9110 §8.6", note: "" },
    Case { id: "cl-16", what: "2^64 exactly", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 18446744073709551616\r\n\r\nhello"), expect: &[AMBIGUOUS], rfc: "RFC 9110 §8.6", note: "" },
    Case { id: "cl-17", what: "a huge but valid length", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 9999999999\r\n\r\nhello"), expect: &[BODY_TOO_LARGE], rfc: "RFC 9110 §15.5.14", note: "" },
    Case { id: "cl-18", what: "one byte over max_body_bytes", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 1001\r\n\r\n"), expect: &[BODY_TOO_LARGE], rfc: "RFC 9110 §15.5.14", note: "" },
    Case { id: "cl-19", what: "exactly max_body_bytes", send: H1Built(body_1000), expect: &[fwd("POST", "/", Headers::Are(&[("Content-Length", "1000")]), KILOBYTE)], rfc: "RFC 9110 §8.6", note: "" },
    Case { id: "cl-20", what: "a body shorter than declared, then end of input", send: H1Eof(b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 10\r\n\r\nhello"), expect: &[Outcome::Cut(&Outcome::Closed)], rfc: "RFC 9112 §8", note: "incomplete message: the backend request is aborted" },
    Case { id: "cl-21", what: "an obs-folded Content-Length", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length:\r\n 5\r\n\r\nhello"), expect: &[AMBIGUOUS], rfc: "RFC 9112 §5.2", note: "" },
    Case { id: "cl-22", what: "Content_Length (underscore) is just another header", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nContent_Length: 5\r\nContent-Length: 0\r\n\r\n"), expect: &[fwd("POST", "/", Headers::Are(&[("content_length", "5"), ("Content-Length", "0")]), b"")], rfc: "RFC 9110 §5.1", note: "nginx drops the underscore header by default" },
    Case { id: "te-01", what: "Transfer-Encoding: chunked", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), expect: &[post_chunked("/", b"hello")], rfc: "RFC 9112 §7.1", note: "" },
    Case { id: "te-02", what: "coding name in capitals", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: CHUNKED\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), expect: &[post_chunked("/", b"hello")], rfc: "RFC 9112 §7", note: "coding names are case-insensitive" },
    Case { id: "te-03", what: "name in odd case", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\ntRANSFER-eNCODING: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), expect: &[post_chunked("/", b"hello")], rfc: "RFC 9110 §5.1", note: "" },
    Case { id: "te-04", what: "leading tab before the value", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding:\tchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), expect: &[post_chunked("/", b"hello")], rfc: "RFC 9112 §5.1", note: "" },
    Case { id: "te-05", what: "chunked, chunked", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), expect: &[AMBIGUOUS], rfc: "RFC 9112 §6.1", note: "" },
    Case { id: "te-06", what: "gzip, chunked", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), expect: &[AMBIGUOUS], rfc: "RFC 9112 §6.1", note: "stricter: a valid coding list; the RFC suggests 501 for codings a server does not know, Aegis answers 400 for any list" },
    Case { id: "te-07", what: "chunked, identity", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), expect: &[AMBIGUOUS], rfc: "RFC 9112 §6.3", note: "" },
    Case { id: "te-08", what: "identity alone", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: identity\r\n\r\n"), expect: &[AMBIGUOUS], rfc: "RFC 9112 §6.3", note: "" },
    Case { id: "te-09", what: "gzip alone (chunked not final)", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: gzip\r\n\r\n"), expect: &[AMBIGUOUS], rfc: "RFC 9112 §6.3", note: "" },
    Case { id: "te-10", what: "an unknown coding (xchunked)", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: xchunked\r\n\r\n"), expect: &[AMBIGUOUS], rfc: "RFC 9112 §6.3", note: "" },
    Case { id: "te-11", what: "two headers, chunked twice", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), expect: &[AMBIGUOUS], rfc: "RFC 9112 §6.1", note: "" },
    Case { id: "te-12", what: "an empty value", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding:\r\n\r\n"), expect: &[AMBIGUOUS], rfc: "RFC 9112 §6.1", note: "" },
    Case { id: "te-13", what: "chunked on HTTP/1.0", send: H1(b"POST / HTTP/1.0\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), expect: &[AMBIGUOUS], rfc: "RFC 9112 §6.1", note: "" },
    Case { id: "te-14", what: "a space before the colon", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding : chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), expect: &[AMBIGUOUS], rfc: "RFC 9112 §5.1", note: "" },
    Case { id: "te-15", what: "an obs-folded value", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding:\r\n chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), expect: &[AMBIGUOUS], rfc: "RFC 9112 §5.2", note: "" },
    Case { id: "te-16", what: "a vertical tab after the value", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\x0b\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), expect: &[AMBIGUOUS], rfc: "RFC 9110 §5.5", note: "" },
    Case { id: "te-17", what: "Transfer_Encoding (underscore) with a Content-Length", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer_Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello"), expect: &[fwd("POST", "/", Headers::Are(&[("transfer_encoding", "chunked"), ("Content-Length", "5")]), b"hello")], rfc: "RFC 9110 §5.1", note: "not a framing header: framed by Content-Length; nginx would drop it" },
    Case { id: "clte-01", what: "Content-Length then Transfer-Encoding", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), expect: &[AMBIGUOUS], rfc: "RFC 9112 §6.3", note: "stricter: the RFC lets Transfer-Encoding win (then close); SPEC §3.2 refuses both together" },
    Case { id: "clte-02", what: "Transfer-Encoding then Content-Length", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"), expect: &[AMBIGUOUS], rfc: "RFC 9112 §6.3", note: "stricter, as clte-01" },
    Case { id: "clte-03", what: "Content-Length: 0 with chunked", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), expect: &[AMBIGUOUS], rfc: "RFC 9112 §6.3", note: "stricter, as clte-01" },
    Case { id: "clte-04", what: "both, Transfer-Encoding in odd case", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\ncontent-LENGTH: 5\r\ntransfer-ENCODING: Chunked\r\n\r\n0\r\n\r\n"), expect: &[AMBIGUOUS], rfc: "RFC 9112 §6.3", note: "stricter, as clte-01" },
    Case { id: "clte-05", what: "both, with an unknown coding", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\nTransfer-Encoding: identity\r\n\r\nhello"), expect: &[AMBIGUOUS], rfc: "RFC 9112 §6.3", note: "" },
    Case { id: "clte-06", what: "both on HTTP/1.0", send: H1(b"POST / HTTP/1.0\r\nHost: a.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello"), expect: &[AMBIGUOUS], rfc: "RFC 9112 §6.1", note: "" },
    Case { id: "clte-07", what: "TE.CL smuggling: a request hidden in the chunked body", send: H1(b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n1e\r\nGET /admin HTTP/1.1\r\nX: \r\n0\r\n\r\n"), expect: &[AMBIGUOUS, Outcome::Closed], rfc: "RFC 9112 §11.2", note: "refused, and the connection closed: the hidden request is never read" },
];

const KILOBYTE: &[u8] = &[b'k'; 1000];

fn body_1000() -> Vec<u8> {
    let mut bytes = b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 1000\r\n\r\n".to_vec();
    bytes.extend_from_slice(KILOBYTE);
    bytes
}
