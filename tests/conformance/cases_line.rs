//! Request line cases (RFC 9112 §3, RFC 9110 §9): methods, the four target forms, versions and
//! the whitespace between them; paths (SPEC §3.3).

use crate::table::Send::{H1Built, H1};
use crate::table::*;

pub const CASES: &[Case] = &[
    Case { id: "line-01", what: "GET, origin-form", send: H1(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[get("/")], rfc: "RFC 9112 §3.2.1", note: "" },
    Case { id: "line-02", what: "HEAD", send: H1(b"HEAD /h HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[fwd_h("HEAD", "/h", &[])], rfc: "RFC 9110 §9.3.2", note: "" },
    Case { id: "line-03", what: "POST with a body", send: H1(b"POST /p HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhello"), expect: &[fwd("POST", "/p", CL5, b"hello")], rfc: "RFC 9110 §9.3.3", note: "" },
    Case { id: "line-04", what: "PUT", send: H1(b"PUT /x HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhello"), expect: &[fwd("PUT", "/x", CL5, b"hello")], rfc: "RFC 9110 §9.3.4", note: "" },
    Case { id: "line-05", what: "DELETE", send: H1(b"DELETE /x HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[fwd_h("DELETE", "/x", &[])], rfc: "RFC 9110 §9.3.5", note: "" },
    Case { id: "line-06", what: "OPTIONS on a path", send: H1(b"OPTIONS /x HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[fwd_h("OPTIONS", "/x", &[])], rfc: "RFC 9110 §9.3.7", note: "" },
    Case { id: "line-07", what: "PATCH (an extension method) listed", send: H1(b"PATCH /x HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhello"), expect: &[fwd("PATCH", "/x", CL5, b"hello")], rfc: "RFC 9110 §9.1", note: "" },
    Case { id: "line-08", what: "TRACE", send: H1(b"TRACE / HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[METHOD], rfc: "RFC 9110 §9.3.8", note: "SPEC §3.1: TRACE is refused even if listed (cross-site tracing)" },
    Case { id: "line-09", what: "CONNECT, authority-form", send: H1(b"CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n"), expect: &[METHOD], rfc: "RFC 9112 §3.2.3", note: "SPEC §3.1: CONNECT is refused even if listed (no tunnels)" },
    Case { id: "line-10", what: "a registered method not listed (PROPFIND)", send: H1(b"PROPFIND / HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[METHOD], rfc: "RFC 9110 §15.5.6", note: "" },
    Case { id: "line-11", what: "an unknown method token", send: H1(b"BREW / HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[METHOD], rfc: "RFC 9110 §9.1", note: "405 rather than 501: the allowlist answers before the method is looked at" },
    Case { id: "line-12", what: "lower-case method (methods are case-sensitive)", send: H1(b"get / HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[METHOD], rfc: "RFC 9110 §9.1", note: "" },
    Case { id: "line-13", what: "a method with a non-token byte", send: H1(b"G(T / HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[BAD], rfc: "RFC 9112 §3", note: "" },
    Case { id: "line-14", what: "absolute-form, same authority as Host", send: H1(b"GET http://a.test/abs?q=1 HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[get("/abs?q=1")], rfc: "RFC 9112 §3.2.2", note: "forwarded in origin form" },
    Case { id: "line-15", what: "absolute-form, https scheme", send: H1(b"GET https://a.test/s HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[get("/s")], rfc: "RFC 9112 §3.2.2", note: "" },
    Case { id: "line-16", what: "absolute-form authority differs from Host", send: H1(b"GET http://evil.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[BAD], rfc: "RFC 9112 §3.2.2", note: "the RFC says to ignore Host and use the target's authority; Pingora refuses the disagreement instead (stricter)" },
    Case { id: "line-17", what: "absolute-form with no Host header", send: H1(b"GET http://a.test/n HTTP/1.1\r\n\r\n"), expect: &[BAD_HOST], rfc: "RFC 9112 §3.2", note: "" },
    Case { id: "line-18", what: "absolute-form with userinfo", send: H1(b"GET http://u@a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[BAD], rfc: "RFC 9110 §4.2.4", note: "" },
    Case { id: "line-19", what: "absolute-form, a scheme other than http(s)", send: H1(b"GET ftp://a.test/f HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[BAD_PATH], rfc: "RFC 9112 §3.2.2", note: "" },
    Case { id: "line-20", what: "asterisk-form OPTIONS", send: H1(b"OPTIONS * HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[BAD_PATH], rfc: "RFC 9112 §3.2.4", note: "stricter: server-wide OPTIONS is not forwarded (no backend needs it)" },
    Case { id: "line-21", what: "asterisk-form with GET", send: H1(b"GET * HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[BAD_PATH], rfc: "RFC 9112 §3.2.4", note: "" },
    Case { id: "line-22", what: "authority-form with GET", send: H1(b"GET a.test:80 HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[BAD_PATH], rfc: "RFC 9112 §3.2.3", note: "" },
    Case { id: "line-23", what: "HTTP/1.0 with Host", send: H1(b"GET /old HTTP/1.0\r\nHost: a.test\r\n\r\n"), expect: &[get("/old")], rfc: "RFC 9112 §2.3", note: "forwarded as HTTP/1.1" },
    Case { id: "line-24", what: "HTTP/1.0 without Host", send: H1(b"GET / HTTP/1.0\r\n\r\n"), expect: &[BAD_HOST], rfc: "RFC 9112 §3.2", note: "with `allowed_hosts` set, a request naming no host cannot match it" },
    Case { id: "line-25", what: "HTTP/0.9 (no version)", send: H1(b"GET /\r\n\r\n"), expect: &[BAD], rfc: "RFC 9112 §2.3", note: "" },
    Case { id: "line-26", what: "HTTP/1.2 (a higher minor version)", send: H1(b"GET / HTTP/1.2\r\nHost: a.test\r\n\r\n"), expect: &[BAD], rfc: "RFC 9110 §2.5", note: "stricter: the RFC lets a server treat 1.x as 1.1; httparse accepts only 1.0 and 1.1" },
    Case { id: "line-27", what: "HTTP/2.0 in an HTTP/1 request line", send: H1(b"GET / HTTP/2.0\r\nHost: a.test\r\n\r\n"), expect: &[BAD], rfc: "RFC 9112 §2.3", note: "" },
    Case { id: "line-28", what: "lower-case protocol name", send: H1(b"GET / http/1.1\r\nHost: a.test\r\n\r\n"), expect: &[BAD], rfc: "RFC 9112 §2.3", note: "" },
    Case { id: "line-29", what: "version without a dot", send: H1(b"GET / HTTP/11\r\nHost: a.test\r\n\r\n"), expect: &[BAD], rfc: "RFC 9112 §2.3", note: "" },
    Case { id: "line-30", what: "two spaces after the method", send: H1(b"GET  / HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[BAD], rfc: "RFC 9112 §3", note: "" },
    Case { id: "line-31", what: "HTAB between method and target", send: H1(b"GET\t/ HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[BAD], rfc: "RFC 9112 §3", note: "" },
    Case { id: "line-32", what: "a space after the version", send: H1(b"GET / HTTP/1.1 \r\nHost: a.test\r\n\r\n"), expect: &[BAD], rfc: "RFC 9112 §3", note: "" },
    Case { id: "line-33", what: "an empty line before the request line", send: H1(b"\r\nGET /e HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[get("/e")], rfc: "RFC 9112 §2.2", note: "" },
    Case { id: "line-34", what: "a space inside the target", send: H1(b"GET /a b HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[BAD], rfc: "RFC 9112 §3.2", note: "bare Pingora percent-escapes such a target and forwards `/a%20b`; Aegis's patch refuses it, as the RFC asks (no autocorrection)" },
    Case { id: "line-35", what: "no target", send: H1(b"GET HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[BAD], rfc: "RFC 9112 §3", note: "" },
    Case { id: "line-36", what: "a query string, forwarded byte for byte", send: H1(b"GET /q?a=1&b=%20&c HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[get("/q?a=1&b=%20&c")], rfc: "RFC 9112 §3.2.1", note: "" },
    Case { id: "line-37", what: "percent-encoded bytes kept as sent", send: H1(b"GET /a%20b/%C3%A9 HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[get("/a%20b/%C3%A9")], rfc: "RFC 9110 §4.2.3", note: "" },
    Case { id: "line-38", what: "a fragment in the target", send: H1(b"GET /f#frag HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[get("/f")], rfc: "RFC 9112 §3.2", note: "looser: a fragment is not part of a request-target; it is dropped (the `http` crate's URI), not refused" },
    Case { id: "line-39", what: "a control byte in the target", send: H1(b"GET /a\x01b HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[AMBIGUOUS], rfc: "RFC 9112 §3.2", note: "not escaped and forwarded as bare Pingora would (see line-34)" },
    Case { id: "line-40", what: "DEL in the target", send: H1(b"GET /a\x7fb HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[AMBIGUOUS], rfc: "RFC 9112 §3.2", note: "" },
    Case { id: "line-41", what: "raw UTF-8 in the target", send: H1(b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[get("/caf\u{e9}")], rfc: "RFC 9112 §3.2", note: "looser: not a URI character, but passed on byte for byte as most servers accept it" },
    Case { id: "line-42", what: "dot-dot segment", send: H1(b"GET /a/../etc/passwd HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[BAD_PATH], rfc: "RFC 3986 §5.2.4", note: "SPEC §3.3: refused rather than normalised" },
    Case { id: "line-43", what: "encoded dot-dot", send: H1(b"GET /a/%2e%2E/b HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[BAD_PATH], rfc: "RFC 3986 §2.3", note: "" },
    Case { id: "line-44", what: "double-encoded dot-dot", send: H1(b"GET /%252e%252e/x HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[BAD_PATH], rfc: "RFC 3986 §2.4", note: "SPEC §3.3: decoded up to twice" },
    Case { id: "line-45", what: "backslash dot-dot, encoded", send: H1(b"GET /..%5cwin HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[BAD_PATH], rfc: "RFC 3986 §3.3", note: "" },
    Case { id: "line-46", what: "encoded NUL", send: H1(b"GET /a%00b HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[BAD_PATH], rfc: "RFC 3986 §2.1", note: "" },
    Case { id: "line-47", what: "malformed escape", send: H1(b"GET /%zz HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[BAD_PATH], rfc: "RFC 3986 §2.1", note: "" },
    Case { id: "line-48", what: "dots that are not a segment", send: H1(b"GET /a..b/.../%2e/x HTTP/1.1\r\nHost: a.test\r\n\r\n"), expect: &[get("/a..b/.../%2e/x")], rfc: "RFC 3986 §3.3", note: "" },
    Case { id: "line-49", what: "a 1,001-byte target (head under max_header_bytes)", send: H1Built(long_target), expect: &[Outcome::Fwd(Fwd { method: "GET", target: LONG_TARGET, headers: Headers::Are(&[]), body: b"" })], rfc: "RFC 9112 §3", note: "" },
    Case { id: "line-50", what: "a 5,000-byte target (head over max_header_bytes)", send: H1Built(too_long_target), expect: &[TOO_LARGE], rfc: "RFC 9112 §3", note: "431 (RFC 6585) rather than 414: SPEC §3.5 counts the whole head" },
];

const LONG_TARGET: &str = concat!("/", "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789", "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789", "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789", "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789", "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789", "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789", "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789", "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789", "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789", "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789");

fn long_target() -> Vec<u8> {
    format!("GET {LONG_TARGET} HTTP/1.1\r\nHost: a.test\r\n\r\n").into_bytes()
}

fn too_long_target() -> Vec<u8> {
    format!("GET /{} HTTP/1.1\r\nHost: a.test\r\n\r\n", "x".repeat(5000)).into_bytes()
}
