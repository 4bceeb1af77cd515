//! Plays an HTTP/1 case: the bytes in one write (then, for `H1Eof`, the end of input), one
//! answer read per expected outcome, then what the backend saw.

use crate::common::http::{assert_hardened, assert_refused, Connection, Response};
use crate::common::{wait_until, Aegis};
use crate::table::Outcome;
use fake_backends::FakeBackend;
use std::net::Shutdown;
use std::time::Duration;

/// How long an answer (or the close) may take.
const ANSWER: Duration = Duration::from_secs(5);
/// How long the head of a request whose body was cut, or that was abandoned, may take to reach
/// the backend (it may not: the body can fail, or the client be given up, before it is sent).
const CUT_HEAD: Duration = Duration::from_secs(1);

pub fn play(bytes: &[u8], eof: bool, expect: &[Outcome], aegis: &Aegis, backend: &FakeBackend) {
    let mut conn = Connection::open(aegis.addr()).expect("connect");
    conn.stream().set_read_timeout(Some(ANSWER)).unwrap();
    conn.send_raw(bytes).expect("send");
    if eof {
        conn.stream().shutdown(Shutdown::Write).unwrap();
    }
    answers(conn, expect, backend);
}

/// `Expect: 100-continue` as a careful client does it: the body only after `100 Continue`.
pub fn play_continue(
    head: &[u8],
    body: &[u8],
    expect: &[Outcome],
    aegis: &Aegis,
    backend: &FakeBackend,
) {
    let mut conn = Connection::open(aegis.addr()).expect("connect");
    conn.stream().set_read_timeout(Some(ANSWER)).unwrap();
    conn.send_raw(head).expect("send the head");
    let interim = conn.read_response(false).expect("an interim answer");
    assert_eq!(interim.status, 100, "{interim:?}");
    assert_hardened(&interim);
    conn.send_raw(body).expect("send the body");
    answers(conn, expect, backend);
}

/// Reads one answer per expected outcome, then checks what the backend saw.
fn answers(mut conn: Connection, expect: &[Outcome], backend: &FakeBackend) {
    let mut answered = Vec::new();
    for outcome in expect {
        let outcome = match outcome {
            Outcome::Cut(then) => *then,
            other => other,
        };
        if let Outcome::Closed | Outcome::Abandoned = outcome {
            assert_closed(&mut conn);
            continue;
        }
        let head = matches!(outcome, Outcome::Fwd(f) if f.method == "HEAD");
        let resp = read_final(&mut conn, head);
        // Every answer is Aegis's: never `Server: Pingora`, always the security headers.
        assert_hardened(&resp);
        match outcome {
            Outcome::Fwd(_) => {
                assert_eq!(resp.status, 200, "{resp:?}");
                if !head {
                    assert_eq!(resp.body, b"b", "the backend's answer");
                }
                answered.push(resp);
            }
            Outcome::Refused(status, error) => assert_refused(&resp, *status, error),
            other => panic!("{} is not an HTTP/1 outcome", other.describe()),
        }
    }
    assert_backend_saw(expect, &answered, backend);
}

/// Reads the next final answer; interim (1xx) answers are skipped.
fn read_final(conn: &mut Connection, head: bool) -> Response {
    loop {
        let resp = conn
            .read_response(head)
            .unwrap_or_else(|e| panic!("no answer: {e}"));
        if resp.status >= 200 {
            return resp;
        }
        assert_hardened(&resp);
    }
}

/// The server closes the connection without another answer.
fn assert_closed(conn: &mut Connection) {
    match conn.read_response(false) {
        Ok(resp) => panic!("expected the connection closed, got {resp:?}"),
        Err(e) => assert!(
            !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "the connection was not closed within {ANSWER:?}"
        ),
    }
}

/// The backend saw exactly the forwarded requests of `expect`, in order, each with the request
/// id its answer carried; a `Cut` request's head may have reached it, never a whole request.
pub fn assert_backend_saw(expect: &[Outcome], answered: &[Response], backend: &FakeBackend) {
    let wanted: Vec<_> = expect
        .iter()
        .filter_map(|o| match o {
            Outcome::Fwd(f) => Some(f),
            _ => None,
        })
        .collect();
    let cut = expect
        .iter()
        .filter(|o| matches!(o, Outcome::Cut(..)))
        .count();
    let abandoned = expect
        .iter()
        .filter(|o| matches!(o, Outcome::Abandoned))
        .count();
    // A request is recorded once its body is read, just before its answer is written; the head
    // of a cut one may still be on its way.
    wait_until(ANSWER, || backend.requests().len() >= wanted.len());
    if cut + abandoned > 0 {
        wait_until(CUT_HEAD, || {
            backend.request_count() >= wanted.len() + cut + abandoned && backend.in_flight() == 0
        });
    }
    let seen = backend.requests();
    assert!(
        seen.len() >= wanted.len() && seen.len() <= wanted.len() + abandoned,
        "requests that reached the backend: {seen:?}"
    );
    let heads = backend.request_count();
    assert!(
        heads >= wanted.len() && heads <= wanted.len() + cut + abandoned,
        "{heads} request heads reached the backend, {} forwarded",
        wanted.len()
    );
    let address = backend.addr().to_string();
    for ((seen, want), resp) in seen.iter().zip(wanted).zip(answered) {
        crate::assert_seen(seen, want, resp.header("x-request-id"), &address);
    }
}
