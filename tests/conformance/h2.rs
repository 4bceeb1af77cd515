//! Plays an HTTP/2 case: a fresh h2c connection, the case's header block on stream 1 (split
//! into CONTINUATION frames when it is larger than a frame), its body in one DATA frame, then
//! the answer on stream 1 decoded (HPACK by `loona-hpack`), and what the backend saw.

use crate::common::h2::{self as wire, frame, header_block, Raw};
use crate::common::http::{assert_hardened, assert_refused, Response};
use crate::common::Aegis;
use crate::table::Outcome;
use fake_backends::FakeBackend;
use std::io::Read;
use std::time::{Duration, Instant};

const ANSWER: Duration = Duration::from_secs(5);
const MAX_FRAME: usize = 16_384;

/// What came back on stream 1.
#[derive(Debug, Default)]
struct Answer {
    response: Option<Response>,
    reset: Option<u32>,
    goaway: Option<u32>,
}

pub fn play(
    fields: &[(Vec<u8>, Vec<u8>)],
    body: &[u8],
    expect: &[Outcome],
    aegis: &Aegis,
    backend: &FakeBackend,
) {
    let [outcome] = expect else {
        panic!("an HTTP/2 case has one outcome");
    };
    let outcome = match outcome {
        Outcome::Cut(then) => *then,
        other => other,
    };
    let fields: Vec<(&[u8], &[u8])> = fields.iter().map(|(n, v)| (&n[..], &v[..])).collect();
    let block = header_block(&fields);
    let mut raw = Raw::connect(aegis.addr(), &[]);
    let end_stream = if body.is_empty() { wire::END_STREAM } else { 0 };
    let mut pieces = block.chunks(MAX_FRAME).peekable();
    let first = pieces.next().unwrap_or_default();
    let mut bytes = Vec::new();
    let last = pieces.peek().is_none();
    let flags = end_stream | if last { wire::END_HEADERS } else { 0 };
    bytes.extend(frame(wire::HEADERS, flags, 1, first));
    while let Some(piece) = pieces.next() {
        let flags = if pieces.peek().is_none() {
            wire::END_HEADERS
        } else {
            0
        };
        bytes.extend(frame(wire::CONTINUATION, flags, 1, piece));
    }
    if !body.is_empty() {
        bytes.extend(frame(wire::DATA, wire::END_STREAM, 1, body));
    }
    raw.send(&bytes).expect("send the stream");
    let answer = read_answer(&mut raw);
    match outcome {
        Outcome::Fwd(_) => {
            let resp = answer.response.expect("an answer");
            assert_hardened(&resp);
            assert_eq!((resp.status, &resp.body[..]), (200, &b"b"[..]), "{resp:?}");
            crate::h1::assert_backend_saw(expect, &[resp], backend);
        }
        Outcome::Refused(status, error) => {
            let resp = answer.response.expect("an answer");
            assert_refused(&resp, *status, error);
            crate::h1::assert_backend_saw(expect, &[], backend);
        }
        Outcome::Reset => {
            assert!(
                answer.response.is_none() && (answer.reset.is_some() || answer.goaway.is_some()),
                "expected the stream reset: {answer:?}"
            );
            crate::h1::assert_backend_saw(expect, &[], backend);
        }
        Outcome::Bare(status) => {
            let resp = answer.response.expect("an answer");
            assert_eq!(resp.status, *status, "{resp:?}");
            assert!(resp.header("server").is_none(), "{resp:?}");
            crate::h1::assert_backend_saw(expect, &[], backend);
        }
        other => panic!("{} is not an HTTP/2 outcome", other.describe()),
    }
}

/// Reads frames until stream 1 ends (END_STREAM or RST_STREAM), a GOAWAY comes, the
/// connection closes, or [`ANSWER`] passes.
fn read_answer(raw: &mut Raw) -> Answer {
    let deadline = Instant::now() + ANSWER;
    let mut decoder = loona_hpack::Decoder::new();
    let mut answer = Answer::default();
    let (mut block, mut body, mut buf) = (Vec::new(), Vec::new(), Vec::new());
    let mut headers: Option<Vec<(String, String)>> = None;
    let mut chunk = [0u8; 16_384];
    loop {
        while buf.len() >= 9 {
            let len =
                (usize::from(buf[0]) << 16) | (usize::from(buf[1]) << 8) | usize::from(buf[2]);
            if buf.len() < 9 + len {
                break;
            }
            let (kind, flags) = (buf[3], buf[4]);
            let id = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff;
            let payload: Vec<u8> = buf[9..9 + len].to_vec();
            buf.drain(..9 + len);
            let ended = match (kind, id) {
                (wire::SETTINGS, 0) if flags & 0x1 == 0 => {
                    raw.send(&frame(wire::SETTINGS, 0x1, 0, &[]))
                        .expect("settings ack");
                    false
                }
                (wire::GOAWAY, 0) => {
                    answer.goaway = Some(u32::from_be_bytes([
                        payload[4], payload[5], payload[6], payload[7],
                    ]));
                    true
                }
                (wire::RST_STREAM, 1) => {
                    answer.reset = Some(u32::from_be_bytes([
                        payload[0], payload[1], payload[2], payload[3],
                    ]));
                    true
                }
                (wire::HEADERS | wire::CONTINUATION, 1) => {
                    block.extend_from_slice(&payload);
                    if flags & wire::END_HEADERS != 0 {
                        let fields = decoder.decode(&block).expect("a valid HPACK block");
                        block.clear();
                        let fields = fields.into_iter().map(|(n, v)| {
                            (
                                String::from_utf8_lossy(&n).into_owned(),
                                String::from_utf8_lossy(&v).into_owned(),
                            )
                        });
                        // Interim (1xx) heads are replaced by the final one.
                        headers = Some(fields.collect());
                    }
                    flags & wire::END_STREAM != 0
                }
                (wire::DATA, 1) => {
                    body.extend_from_slice(&payload);
                    flags & wire::END_STREAM != 0
                }
                _ => false,
            };
            if ended {
                answer.response = headers
                    .take()
                    .map(|h| response(h, std::mem::take(&mut body)));
                return answer;
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "stream 1 did not end within {ANSWER:?}");
        raw.stream.set_read_timeout(Some(left)).unwrap();
        match raw.stream.read(&mut chunk) {
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Ok(0) | Err(_) => {
                answer.response = headers.take().map(|h| response(h, body));
                return answer;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn response(fields: Vec<(String, String)>, body: Vec<u8>) -> Response {
    let status = fields
        .iter()
        .find(|(n, _)| n == ":status")
        .and_then(|(_, v)| v.parse().ok())
        .expect(":status");
    let resp = Response {
        status,
        headers: fields
            .into_iter()
            .filter(|(n, _)| !n.starts_with(':'))
            .collect(),
        body,
    };
    crate::common::http::assert_not_pingora(&resp);
    resp
}
