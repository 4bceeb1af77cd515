//! The conformance table's vocabulary (SPEC §15.2): a case is what a client sends and what must
//! come of it, with the RFC section it follows. The runner (`main.rs`, `h1.rs`, `h2.rs`) plays
//! each case against one Aegis process; `docs.rs` renders the table into `docs/security.md`.

/// The host every case's backend is reached through (`server.allowed_hosts`), and a wildcard.
pub const SUITE_CONFIG: &str = "server:\n  allowed_methods: [GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH]\n  allowed_hosts: [a.test, \"*.w.test\"]\n  max_header_bytes: 4096\n  max_body_bytes: 1000\n  read_timeout: 1s\n  idle_timeout: 5s\nlisteners:\n  - address: 127.0.0.1:{port}\n    h2c: true\n";

/// One HTTP/2 header field, bytes as sent (no validation, no Huffman).
pub type Field = (&'static [u8], &'static [u8]);
/// HTTP/2 header fields built at run time.
pub type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// What the client sends.
pub enum Send {
    /// HTTP/1 bytes in one write; the connection stays open for the answers.
    H1(&'static [u8]),
    /// HTTP/1 bytes in one write, then the client closes its sending side (end of input).
    H1Eof(&'static [u8]),
    /// HTTP/1 `Expect: 100-continue`: the head, then (only after a `100 Continue` came back)
    /// the body.
    H1Continue(&'static [u8], &'static [u8]),
    /// HTTP/1 bytes built at run time (very many or very large headers).
    H1Built(fn() -> Vec<u8>),
    /// One HTTP/2 stream (h2c, prior knowledge): a header block of these fields, then the body
    /// in one DATA frame when it is not empty. END_STREAM on the last frame.
    H2(&'static [Field], &'static [u8]),
    /// [`Send::H2`] with fields built at run time.
    H2Built(fn() -> Fields),
}

/// The headers a backend saw besides the four Aegis sets on every request (`host`,
/// `x-forwarded-for`, `x-forwarded-proto`, `x-request-id`, and `traceparent`), which the
/// runner checks on their own: exactly these, in this order, names as received.
#[derive(Clone, Copy)]
pub enum Headers {
    Are(&'static [(&'static str, &'static str)]),
    Built(fn() -> Vec<(String, String)>),
}

/// A request exactly as the backend received it (always as HTTP/1.1).
#[derive(Clone, Copy)]
pub struct Fwd {
    pub method: &'static str,
    pub target: &'static str,
    pub headers: Headers,
    pub body: &'static [u8],
}

/// What comes of one request of a case, in order.
#[derive(Clone, Copy)]
pub enum Outcome {
    /// Forwarded: the backend saw exactly this request and its answer (200) reached the client.
    Fwd(Fwd),
    /// Refused by Aegis: this status and JSON `error`, the security headers, never forwarded.
    Refused(u16, &'static str),
    /// The head had gone to the backend when the body turned out bad or too large: the backend
    /// never got a whole request, and the client got this (a refusal, a close or a reset).
    Cut(&'static Outcome),
    /// Nothing (more) is answered: the connection is closed, nothing (more) forwarded.
    Closed,
    /// The client's end of input is taken as the client gone: no answer, the connection closed;
    /// the request may have reached the backend already (it is not retried).
    Abandoned,
    /// HTTP/2: the stream is reset (RST_STREAM) or the connection ended (GOAWAY); never
    /// forwarded.
    Reset,
    /// HTTP/2: the `h2` crate's own bare answer with this status (no body, no Aegis headers);
    /// never forwarded.
    Bare(u16),
}

/// One row of the table.
pub struct Case {
    /// Stable id, `group-nn`.
    pub id: &'static str,
    /// What the case is, in a few words.
    pub what: &'static str,
    pub send: Send,
    pub expect: &'static [Outcome],
    /// The RFC section the expected outcome follows (or, with a `note`, departs from).
    pub rfc: &'static str,
    /// Where Aegis (or Pingora under it) is stricter or looser than the RFC, and why.
    pub note: &'static str,
}

const NONE: Headers = Headers::Are(&[]);

/// `GET target`, nothing but the standard headers.
pub const fn get(target: &'static str) -> Outcome {
    fwd("GET", target, NONE, b"")
}

/// A forwarded request.
pub const fn fwd(
    method: &'static str,
    target: &'static str,
    headers: Headers,
    body: &'static [u8],
) -> Outcome {
    Outcome::Fwd(Fwd {
        method,
        target,
        headers,
        body,
    })
}

/// A forwarded request with extra headers and no body.
pub const fn fwd_h(
    method: &'static str,
    target: &'static str,
    headers: &'static [(&'static str, &'static str)],
) -> Outcome {
    fwd(method, target, Headers::Are(headers), b"")
}

/// `Content-Length: 5` as the backend gets it.
pub const CL5: Headers = Headers::Are(&[("Content-Length", "5")]);

/// A forwarded POST with a chunked body (the backend gets `Transfer-Encoding: chunked`).
pub const fn post_chunked(target: &'static str, body: &'static [u8]) -> Outcome {
    fwd(
        "POST",
        target,
        Headers::Are(&[("Transfer-Encoding", "chunked")]),
        body,
    )
}

pub const AMBIGUOUS: Outcome = Outcome::Refused(400, "ambiguous request");
pub const BAD: Outcome = Outcome::Refused(400, "bad request");
pub const BAD_PATH: Outcome = Outcome::Refused(400, "invalid path");
pub const BAD_HOST: Outcome = Outcome::Refused(400, "invalid host");
pub const METHOD: Outcome = Outcome::Refused(405, "method not allowed");
pub const TOO_LARGE: Outcome = Outcome::Refused(431, "request header too large");
pub const BODY_TOO_LARGE: Outcome = Outcome::Refused(413, "request body too large");

impl Outcome {
    /// The outcome in a table cell.
    pub fn describe(&self) -> String {
        match self {
            Outcome::Fwd(f) => format!("forwarded `{} {}`", f.method, f.target),
            Outcome::Refused(status, error) => format!("{status} `{error}`"),
            Outcome::Cut(then) => format!("body cut at backend; {}", then.describe()),
            Outcome::Closed => "closed, no answer".into(),
            Outcome::Abandoned => "abandoned at end of input, no answer".into(),
            Outcome::Reset => "stream reset".into(),
            Outcome::Bare(status) => format!("bare {status} (h2 crate)"),
        }
    }
}
