//! HTTP/2 cases (RFC 9113 §8, SPEC §11.2): raw header blocks on one stream of an h2c
//! connection, each forwarded to the HTTP/1.1 backend or refused, never forwarded malformed.

use crate::table::Send::{H2Built, H2};
use crate::table::*;

const M: &[u8] = b":method";
const S: &[u8] = b":scheme";
const A: &[u8] = b":authority";
const P: &[u8] = b":path";

/// A GET to `a.test` with these fields after the pseudo-headers.
macro_rules! get_with {
    ($($field:expr),* $(,)?) => {
        &[(M, b"GET"), (S, b"http"), (A, b"a.test"), (P, b"/"), $($field),*]
    };
}

const RESET: Outcome = Outcome::Reset;

pub const CASES: &[Case] = &[
    Case { id: "h2-01", what: "a GET", send: H2(get_with![], b""), expect: &[get("/")], rfc: "RFC 9113 §8.3.1", note: "" },
    Case { id: "h2-02", what: "a POST with content-length and DATA", send: H2(&[(M, b"POST"), (S, b"http"), (A, b"a.test"), (P, b"/p"), (b"content-length", b"5")], b"hello"), expect: &[post_chunked("/p", b"hello")], rfc: "RFC 9113 §8.1", note: "SPEC §11.2: the length comes from the stream, never from a client header: chunked to an HTTP/1.1 backend" },
    Case { id: "h2-03", what: "a POST with DATA and no content-length", send: H2(&[(M, b"POST"), (S, b"http"), (A, b"a.test"), (P, b"/p")], b"hello"), expect: &[post_chunked("/p", b"hello")], rfc: "RFC 9113 §8.1", note: "the length comes from the stream: chunked to an HTTP/1.1 backend" },
    Case { id: "h2-04", what: "a query string kept", send: H2(&[(M, b"GET"), (S, b"http"), (A, b"a.test"), (P, b"/q?a=1&b")], b""), expect: &[get("/q?a=1&b")], rfc: "RFC 9113 §8.3.1", note: "" },
    Case { id: "h2-05", what: "cookie split over two fields", send: H2(get_with![(b"cookie", b"a=1"), (b"cookie", b"b=2")], b""), expect: &[fwd_h("GET", "/", &[("cookie", "a=1; b=2")])], rfc: "RFC 9113 §8.2.3", note: "joined with `; ` for HTTP/1.1" },
    Case { id: "h2-06", what: "te: trailers", send: H2(get_with![(b"te", b"trailers")], b""), expect: &[get("/")], rfc: "RFC 9113 §8.2.2", note: "allowed, and not passed on (hop-by-hop)" },
    Case { id: "h2-07", what: "Host equal to :authority", send: H2(get_with![(b"host", b"a.test")], b""), expect: &[get("/")], rfc: "RFC 9113 §8.3.1", note: "" },
    Case { id: "h2-08", what: "Host and no :authority", send: H2(&[(M, b"GET"), (S, b"http"), (P, b"/"), (b"host", b"a.test")], b""), expect: &[get("/")], rfc: "RFC 9113 §8.3.1", note: "" },
    Case { id: "h2-09", what: "Host differing from :authority", send: H2(get_with![(b"host", b"evil.test")], b""), expect: &[BAD], rfc: "RFC 9113 §8.3.1", note: "" },
    Case { id: "h2-10", what: "neither :authority nor Host", send: H2(&[(M, b"GET"), (S, b"http"), (P, b"/")], b""), expect: &[BAD], rfc: "RFC 9113 §8.3.1", note: "" },
    Case { id: "h2-11", what: "an absolute URI in :path", send: H2(&[(M, b"GET"), (S, b"http"), (A, b"a.test"), (P, b"http://evil.test/x")], b""), expect: &[RESET], rfc: "RFC 9113 §8.3.1", note: "the h2 crate refuses it as malformed before Pingora's absolute-form check (which would answer 400)" },
    Case { id: "h2-12", what: "userinfo in :authority", send: H2(&[(M, b"GET"), (S, b"http"), (A, b"u@a.test"), (P, b"/")], b""), expect: &[BAD], rfc: "RFC 9113 §8.3.1", note: "" },
    Case { id: "h2-13", what: "an :authority not allowed", send: H2(&[(M, b"GET"), (S, b"http"), (A, b"evil.test"), (P, b"/")], b""), expect: &[BAD_HOST], rfc: "RFC 9113 §8.3.1", note: "" },
    Case { id: "h2-14", what: "two Host fields", send: H2(get_with![(b"host", b"a.test"), (b"host", b"a.test")], b""), expect: &[BAD], rfc: "RFC 9112 §3.2", note: "" },
    Case { id: "h2-15", what: "a method not allowed", send: H2(&[(M, b"PROPFIND"), (S, b"http"), (A, b"a.test"), (P, b"/")], b""), expect: &[METHOD], rfc: "RFC 9110 §15.5.6", note: "" },
    Case { id: "h2-16", what: "traversal in :path", send: H2(&[(M, b"GET"), (S, b"http"), (A, b"a.test"), (P, b"/a/../b")], b""), expect: &[BAD_PATH], rfc: "RFC 3986 §5.2.4", note: "" },
    Case { id: "h2-17", what: "headers over max_header_bytes", send: H2Built(header_list_6k), expect: &[TOO_LARGE], rfc: "RFC 6585 §5", note: "" },
    Case { id: "h2-18", what: "headers over twice max_header_bytes", send: H2Built(header_list_12k), expect: &[Outcome::Bare(431)], rfc: "RFC 9113 §10.5.1", note: "the h2 crate answers before any stream exists for Aegis; see docs/decisions/parser-refusals.md" },
    Case { id: "h2-19", what: "a body over max_body_bytes", send: H2(&[(M, b"POST"), (S, b"http"), (A, b"a.test"), (P, b"/p"), (b"content-length", b"2000")], &[b'x'; 2000]), expect: &[BODY_TOO_LARGE], rfc: "RFC 9110 §15.5.14", note: "" },
    Case { id: "h2-20", what: "content-length disagreeing with DATA", send: H2(&[(M, b"POST"), (S, b"http"), (A, b"a.test"), (P, b"/p"), (b"content-length", b"3")], b"hello"), expect: &[Outcome::Cut(&RESET)], rfc: "RFC 9113 §8.1.1", note: "" },
    Case { id: "h2-21", what: "two differing content-length fields", send: H2(&[(M, b"POST"), (S, b"http"), (A, b"a.test"), (P, b"/p"), (b"content-length", b"5"), (b"content-length", b"6")], b"hello"), expect: &[RESET], rfc: "RFC 9113 §8.1.1", note: "" },
    Case { id: "h2-22", what: "connection: keep-alive", send: H2(get_with![(b"connection", b"keep-alive")], b""), expect: &[RESET], rfc: "RFC 9113 §8.2.2", note: "" },
    Case { id: "h2-23", what: "transfer-encoding: chunked", send: H2(get_with![(b"transfer-encoding", b"chunked")], b""), expect: &[RESET], rfc: "RFC 9113 §8.2.2", note: "" },
    Case { id: "h2-24", what: "keep-alive", send: H2(get_with![(b"keep-alive", b"timeout=5")], b""), expect: &[RESET], rfc: "RFC 9113 §8.2.2", note: "" },
    Case { id: "h2-25", what: "upgrade", send: H2(get_with![(b"upgrade", b"websocket")], b""), expect: &[RESET], rfc: "RFC 9113 §8.2.2", note: "" },
    Case { id: "h2-26", what: "proxy-connection", send: H2(get_with![(b"proxy-connection", b"keep-alive")], b""), expect: &[RESET], rfc: "RFC 9113 §8.2.2", note: "" },
    Case { id: "h2-27", what: "te other than trailers", send: H2(get_with![(b"te", b"gzip")], b""), expect: &[RESET], rfc: "RFC 9113 §8.2.2", note: "" },
    Case { id: "h2-28", what: "an upper-case field name", send: H2(get_with![(b"X-Upper", b"v")], b""), expect: &[RESET], rfc: "RFC 9113 §8.2.1", note: "" },
    Case { id: "h2-29", what: "a space in a field name", send: H2(get_with![(b"x a", b"v")], b""), expect: &[RESET], rfc: "RFC 9113 §8.2.1", note: "" },
    Case { id: "h2-30", what: "a colon inside a field name", send: H2(get_with![(b"x:a", b"v")], b""), expect: &[RESET], rfc: "RFC 9113 §8.2.1", note: "" },
    Case { id: "h2-31", what: "CR in a field value", send: H2(get_with![(b"x-a", b"a\rb")], b""), expect: &[RESET], rfc: "RFC 9113 §8.2.1", note: "" },
    Case { id: "h2-32", what: "LF in a field value", send: H2(get_with![(b"x-a", b"a\nb")], b""), expect: &[RESET], rfc: "RFC 9113 §8.2.1", note: "" },
    Case { id: "h2-33", what: "NUL in a field value", send: H2(get_with![(b"x-a", b"a\0b")], b""), expect: &[RESET], rfc: "RFC 9113 §8.2.1", note: "" },
    Case { id: "h2-34", what: "leading whitespace in a field value", send: H2(get_with![(b"x-a", b" v")], b""), expect: &[fwd_h("GET", "/", &[("x-a", "v")])], rfc: "RFC 9113 §8.2.1", note: "looser: the RFC calls it malformed; the h2 crate accepts it and the HTTP/1.1 hop trims it" },
    Case { id: "h2-35", what: "no :method", send: H2(&[(S, b"http"), (A, b"a.test"), (P, b"/")], b""), expect: &[RESET], rfc: "RFC 9113 §8.3.1", note: "" },
    Case { id: "h2-36", what: "no :scheme", send: H2(&[(M, b"GET"), (A, b"a.test"), (P, b"/")], b""), expect: &[RESET], rfc: "RFC 9113 §8.3.1", note: "" },
    Case { id: "h2-37", what: "no :path", send: H2(&[(M, b"GET"), (S, b"http"), (A, b"a.test")], b""), expect: &[RESET], rfc: "RFC 9113 §8.3.1", note: "" },
    Case { id: "h2-38", what: "an empty :path", send: H2(&[(M, b"GET"), (S, b"http"), (A, b"a.test"), (P, b"")], b""), expect: &[RESET], rfc: "RFC 9113 §8.3.1", note: "" },
    Case { id: "h2-39", what: "two :path fields", send: H2(&[(M, b"GET"), (S, b"http"), (A, b"a.test"), (P, b"/"), (P, b"/x")], b""), expect: &[RESET], rfc: "RFC 9113 §8.3", note: "" },
    Case { id: "h2-40", what: "an unknown pseudo-header", send: H2(get_with![(b":foo", b"bar")], b""), expect: &[RESET], rfc: "RFC 9113 §8.3", note: "" },
    Case { id: "h2-41", what: "a pseudo-header after a regular field", send: H2(&[(M, b"GET"), (S, b"http"), (b"x-a", b"v"), (A, b"a.test"), (P, b"/")], b""), expect: &[RESET], rfc: "RFC 9113 §8.3", note: "" },
    Case { id: "h2-42", what: "a response pseudo-header (:status) in a request", send: H2(get_with![(b":status", b"200")], b""), expect: &[RESET], rfc: "RFC 9113 §8.3", note: "" },
    Case { id: "h2-43", what: "a space in :path", send: H2(&[(M, b"GET"), (S, b"http"), (A, b"a.test"), (P, b"/a b")], b""), expect: &[RESET], rfc: "RFC 9113 §8.3.1", note: "" },
    Case { id: "h2-44", what: "CONNECT", send: H2(&[(M, b"CONNECT"), (A, b"a.test:443")], b""), expect: &[METHOD], rfc: "RFC 9113 §8.5", note: "SPEC §3.1: no tunnels" },
    Case { id: "h2-45", what: "hop-by-hop names used as data (x-connection)", send: H2(get_with![(b"x-connection", b"close")], b""), expect: &[fwd_h("GET", "/", &[("x-connection", "close")])], rfc: "RFC 9113 §8.2.2", note: "" },
];

/// Enough fields to pass `max_header_bytes` (4096) as HTTP/1 would count them.
fn header_list_6k() -> Fields {
    big_list(6)
}

/// Over twice `max_header_bytes` as HPACK counts it (the codec's limit).
fn header_list_12k() -> Fields {
    big_list(12)
}

fn big_list(kib: usize) -> Fields {
    let mut fields: Vec<(Vec<u8>, Vec<u8>)> =
        [(M, &b"GET"[..]), (S, b"http"), (A, b"a.test"), (P, b"/")]
            .iter()
            .map(|(n, v)| (n.to_vec(), v.to_vec()))
            .collect();
    for i in 0..kib {
        fields.push((format!("x-big-{i}").into_bytes(), vec![b'v'; 1000]));
    }
    fields
}
