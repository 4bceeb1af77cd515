//! Header syntax cases (RFC 9112 §5, RFC 9110 §5): names, values, whitespace, obs-fold, bare
//! CR and LF, NUL, sizes and counts; what the backend receives (SPEC §3.7).

use crate::table::Send::{H1Built, H1};
use crate::table::*;

pub const CASES: &[Case] = &[
    Case { id: "hdr-01", what: "a custom header, passed on (name in lower case)", send: H1(b"GET / HTTP/1.1\r\nHost: a.test\r\nX-Custom: v\r\n\r\n"), expect: &[fwd_h("GET", "/", &[("x-custom", "v")])], rfc: "RFC 9110 §5.1", note: "names are case-insensitive; Aegis sends them in lower case (docs/decisions/header-case.md)" },
    Case { id: "hdr-02", what: "no space after the colon", send: H1(b"GET / HTTP/1.1\r\nHost: a.test\r\nX-A:b\r\n\r\n"), expect: &[fwd_h("GET", "/", &[("x-a", "b")])], rfc: "RFC 9112 §5", note: "" },
    Case { id: "hdr-03", what: "spaces and tabs around a value are trimmed", send: H1(b"GET / HTTP/1.1\r\nHost: a.test\r\nX-A: \t b \t\r\n\r\n"), expect: &[fwd_h("GET", "/", &[("x-a", "b")])], rfc: "RFC 9112 §5.1", note: "" },
    Case { id: "hdr-04", what: "inner whitespace of a value is kept", send: H1(b"GET / HTTP/1.1\r\nHost: a.test\r\nX-A: a \t b\r\n\r\n"), expect: &[fwd_h("GET", "/", &[("x-a", "a \t b")])], rfc: "RFC 9110 §5.5", note: "" },
    Case { id: "hdr-05", what: "an empty value", send: H1(b"GET / HTTP/1.1\r\nHost: a.test\r\nX-Empty:\r\n\r\n"), expect: &[fwd_h("GET", "/", &[("x-empty", "")])], rfc: "RFC 9110 §5.5", note: "" },
    Case { id: "hdr-06", what: "a repeated header, both kept in order", send: H1(b"GET / HTTP/1.1\r\nHost: a.test\r\nX-A: 1\r\nX-A: 2\r\n\r\n"), expect: &[fwd_h("GET", "/", &[("x-a", "1"), ("x-a", "2")])], rfc: "RFC 9110 §5.3", note: "" },
    Case { id: "hdr-07", what: "a comma list kept as one value", send: H1(b"GET / HTTP/1.1\r\nHost: a.test\r\nAccept: a/b, c/d;q=0.5\r\n\r\n"), expect: &[fwd_h("GET", "/", &[("accept", "a/b, c/d;q=0.5")])], rfc: "RFC 9110 §5.6.1", note: "" },
    Case { id: "hdr-08", what: "obs-text (bytes 0x80-0xFF) in a value", send: H1(b"GET / HTTP/1.1\r\nHost: a.test\r\nX-T: caf\xc3\xa9\r\n\r\n"), expect: &[fwd_h("GET", "/", &[("x-t", "caf\u{e9}")])], rfc: "RFC 9110 §5.5", note: "" },
    Case { id: "hdr-09", what: "a space before the colon", send: H1(b"GET / HTTP/1.1\r\nHost: a.test\r\nX-A : b\r\n\r\n"), expect: &[AMBIGUOUS], rfc: "RFC 9112 §5.1", note: "" },
    Case { id: "hdr-10", what: "a tab before the colon", send: H1(b"GET / HTTP/1.1\r\nHost: a.test\r\nX-A\t: b\r\n\r\n"), expect: &[AMBIGUOUS], rfc: "RFC 9112 §5.1", note: "" },
    Case { id: "hdr-11", what: "obs-fold (continuation line with a space)", send: H1(b"GET / HTTP/1.1\r\nHost: a.test\r\nX-A: a\r\n b\r\n\r\n"), expect: &[AMBIGUOUS], rfc: "RFC 9112 §5.2", note: "" },
    Case { id: "hdr-12", what: "obs-fold with a tab", send: H1(b"GET / HTTP/1.1\r\nHost: a.test\r\nX-A: a\r\n\tb\r\n\r\n"), expect: &[AMBIGUOUS], rfc: "RFC 9112 §5.2", note: "" },
    Case { id: "hdr-13", what: "whitespace before the first header line", send: H1(b"GET / HTTP/1.1\r\n X-A: b\r\nHost: a.test\r\n\r\n"), expect: &[AMBIGUOUS], rfc: "RFC 9112 §2.2", note: "" },
    Case { id: "hdr-14", what: "a line without a colon", send: H1(b"GET / HTTP/1.1\r\nHost: a.test\r\nX-NoColon\r\n\r\n"), expect: &[AMBIGUOUS], rfc: "RFC 9112 §5", note: "" },
    Case { id: "hdr-15", what: "an empty name", send: H1(b"GET / HTTP/1.1\r\nHost: a.test\r\n: v\r\n\r\n"), expect: &[AMBIGUOUS], rfc: "RFC 9110 §5.1", note: "" },
    Case { id: "hdr-16", what: "a non-token byte in a name", send: H1(b"GET / HTTP/1.1\r\nHost: a.test\r\nX(A): b\r\n\r\n"), expect: &[BAD], rfc: "RFC 9110 §5.1", note: "" },
    Case { id: "hdr-17", what: "a non-ASCII byte in a name", send: H1(b"GET / HTTP/1.1\r\nHost: a.test\r\nX-\xc3\xa9: b\r\n\r\n"), expect: &[BAD], rfc: "RFC 9110 §5.1", note: "" },
    Case { id: "hdr-18", what: "an underscore in a name (a token byte)", send: H1(b"GET / HTTP/1.1\r\nHost: a.test\r\nX_Under: v\r\n\r\n"), expect: &[fwd_h("GET", "/", &[("x_under", "v")])], rfc: "RFC 9110 §5.1", note: "looser than nginx, which drops such headers by default" },
    Case { id: "hdr-19", what: "NUL in a value", send: H1(b"GET / HTTP/1.1\r\nHost: a.test\r\nX-A: a\0b\r\n\r\n"), expect: &[AMBIGUOUS], rfc: "RFC 9110 §5.5", note: "" },
    Case { id: "hdr-20", what: "NUL in a name", send: H1(b"GET / HTTP/1.1\r\nHost: a.test\r\nX\0A: b\r\n\r\n"), expect: &[AMBIGUOUS], rfc: "RFC 9110 §5.1", note: "" },
    Case { id: "hdr-21", what: "a bare CR in a value", send: H1(b"GET / HTTP/1.1\r\nHost: a.test\r\nX-A: a\rb\r\n\r\n"), expect: &[AMBIGUOUS], rfc: "RFC 9112 §2.2", note: "" },
    Case { id: "hdr-22", what: "bare LF line ends throughout", send: H1(b"GET / HTTP/1.1\nHost: a.test\nX-A: b\n\n"), expect: &[AMBIGUOUS], rfc: "RFC 9112 §2.2", note: "stricter: the RFC lets a recipient accept a bare LF; Aegis refuses it (a smuggling vector when parsers disagree)" },
    Case { id: "hdr-23", what: "one bare LF line end among CRLFs", send: H1(b"GET / HTTP/1.1\r\nHost: a.test\nX-A: b\r\n\r\n"), expect: &[AMBIGUOUS], rfc: "RFC 9112 §2.2", note: "stricter, as hdr-22" },
    Case { id: "hdr-24", what: "a control byte (0x01) in a value", send: H1(b"GET / HTTP/1.1\r\nHost: a.test\r\nX-A: a\x01b\r\n\r\n"), expect: &[AMBIGUOUS], rfc: "RFC 9110 §5.5", note: "" },
    Case { id: "hdr-25", what: "DEL (0x7F) in a value", send: H1(b"GET / HTTP/1.1\r\nHost: a.test\r\nX-A: a\x7fb\r\n\r\n"), expect: &[AMBIGUOUS], rfc: "RFC 9110 §5.5", note: "" },
    Case { id: "hdr-26", what: "a tab inside a value", send: H1(b"GET / HTTP/1.1\r\nHost: a.test\r\nX-A: a\tb\r\n\r\n"), expect: &[fwd_h("GET", "/", &[("x-a", "a\tb")])], rfc: "RFC 9110 §5.5", note: "" },
    Case { id: "hdr-27", what: "100 headers", send: H1Built(headers_100), expect: &[fwd("GET", "/", Headers::Built(seen_100), b"")], rfc: "RFC 9112 §5", note: "" },
    Case { id: "hdr-28", what: "300 small headers (over Pingora's 256 fields, under max_header_bytes)", send: H1Built(headers_300), expect: &[TOO_LARGE], rfc: "RFC 6585 §5", note: "" },
    Case { id: "hdr-29", what: "one 3,800-byte value (head under max_header_bytes)", send: H1Built(value_3800), expect: &[fwd("GET", "/", Headers::Built(seen_3800), b"")], rfc: "RFC 9110 §5.4", note: "" },
    Case { id: "hdr-30", what: "one 5,000-byte value (head over max_header_bytes)", send: H1Built(value_5000), expect: &[TOO_LARGE], rfc: "RFC 9110 §5.4", note: "" },
    Case { id: "hdr-31", what: "Connection: close and Keep-Alive removed", send: H1(b"GET / HTTP/1.1\r\nHost: a.test\r\nKeep-Alive: timeout=5\r\nConnection: close\r\n\r\n"), expect: &[get("/")], rfc: "RFC 9110 §7.6.1", note: "" },
    Case { id: "hdr-32", what: "a header named in Connection removed", send: H1(b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: X-Secret\r\nX-Secret: 1\r\nX-Kept: 2\r\n\r\n"), expect: &[fwd_h("GET", "/", &[("x-kept", "2")])], rfc: "RFC 9110 §7.6.1", note: "" },
    Case { id: "hdr-33", what: "TE, Trailer, Upgrade, Proxy-Authorization removed", send: H1(b"GET / HTTP/1.1\r\nHost: a.test\r\nTE: trailers\r\nTrailer: X-T\r\nUpgrade: foo\r\nProxy-Authorization: Basic eA==\r\n\r\n"), expect: &[get("/")], rfc: "RFC 9110 §7.6.1", note: "" },
    Case { id: "hdr-34", what: "client X-Forwarded-For, -Proto and X-Request-ID replaced", send: H1(b"GET / HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\nX-Request-ID: mine\r\n\r\n"), expect: &[get("/")], rfc: "RFC 7239 §5.2", note: "SPEC §3.7: replaced, never appended to" },
    Case { id: "hdr-35", what: "Forwarded and Via from the client passed on", send: H1(b"GET / HTTP/1.1\r\nHost: a.test\r\nForwarded: for=1.2.3.4\r\nVia: 1.1 p\r\n\r\n"), expect: &[fwd_h("GET", "/", &[("forwarded", "for=1.2.3.4"), ("via", "1.1 p")])], rfc: "RFC 9110 §7.6.3", note: "looser: Aegis adds no Via of its own (RFC: a proxy MUST)" },
    Case { id: "hdr-36", what: "Cookie and Authorization passed on intact", send: H1(b"GET / HTTP/1.1\r\nHost: a.test\r\nCookie: a=1; b=2\r\nAuthorization: Bearer t\r\n\r\n"), expect: &[fwd_h("GET", "/", &[("cookie", "a=1; b=2"), ("authorization", "Bearer t")])], rfc: "RFC 9110 §11.6.2", note: "" },
];

fn numbered(count: usize) -> String {
    (0..count).map(|i| format!("X-H{i}: {i}\r\n")).collect()
}

fn headers_100() -> Vec<u8> {
    format!("GET / HTTP/1.1\r\nHost: a.test\r\n{}\r\n", numbered(100)).into_bytes()
}

fn seen_100() -> Vec<(String, String)> {
    (0..100)
        .map(|i| (format!("x-h{i}"), i.to_string()))
        .collect()
}

fn headers_300() -> Vec<u8> {
    format!("GET / HTTP/1.1\r\nHost: a.test\r\n{}\r\n", numbered(300)).into_bytes()
}

fn value_3800() -> Vec<u8> {
    format!(
        "GET / HTTP/1.1\r\nHost: a.test\r\nX-Big: {}\r\n\r\n",
        "v".repeat(3800)
    )
    .into_bytes()
}

fn seen_3800() -> Vec<(String, String)> {
    vec![("x-big".into(), "v".repeat(3800))]
}

fn value_5000() -> Vec<u8> {
    format!(
        "GET / HTTP/1.1\r\nHost: a.test\r\nX-Big: {}\r\n\r\n",
        "v".repeat(5000)
    )
    .into_bytes()
}
