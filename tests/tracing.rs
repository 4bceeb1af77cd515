//! W3C Trace Context through Aegis (SPEC §14.3): a valid `traceparent` reaches the backend with
//! the same trace id and a new parent id; an invalid or missing one is replaced by a fresh one;
//! the trace id is in the access log.

mod common;

use common::{wait_until, Aegis};
use fake_backends::FakeBackend;
use std::time::Duration;

const INCOMING: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// `GET path` with extra header lines; the `traceparent` and `tracestate` the backend received.
fn send(
    aegis: &Aegis,
    backend: &FakeBackend,
    path: &str,
    headers: &str,
) -> (String, Option<String>) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n");
    let resp = common::http::raw(aegis.addr(), request.as_bytes()).unwrap();
    assert_eq!(resp.status, 200);
    let received = backend
        .requests()
        .into_iter()
        .find(|r| r.target == path)
        .expect("the backend got the request");
    assert_eq!(received.header_all("traceparent").len(), 1, "{received:?}");
    (
        received.header("traceparent").unwrap().to_string(),
        received.header("tracestate").map(str::to_string),
    )
}

/// The `version-traceid-parentid-flags` fields, checked for the W3C form Aegis sends.
fn fields(traceparent: &str) -> [&str; 4] {
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    let lower_hex = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    assert!(parts.iter().all(|p| lower_hex(p)), "{traceparent}");
    assert_eq!(
        parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
        [2, 32, 16, 2]
    );
    assert_eq!(parts[0], "00");
    assert_ne!(parts[1], "0".repeat(32));
    assert_ne!(parts[2], "0".repeat(16));
    [parts[0], parts[1], parts[2], parts[3]]
}

/// The access line of `path` once it is written.
fn access_line(aegis: &Aegis, path: &str) -> serde_json::Value {
    let needle = format!("\"path\":\"{path}\"");
    let mut line = None;
    let found = wait_until(Duration::from_secs(5), || {
        line = aegis
            .output()
            .lines()
            .find(|l| l.contains(&needle))
            .map(str::to_string);
        line.is_some()
    });
    assert!(found, "no access line for {path}:\n{}", aegis.output());
    serde_json::from_str(&line.unwrap()).unwrap()
}

#[test]
fn a_valid_traceparent_continues_with_a_new_parent_id() {
    let backend = FakeBackend::start("a").unwrap();
    let aegis = Aegis::start(&[(backend.url(), 1)], "");
    let (sent, state) = send(
        &aegis,
        &backend,
        "/valid",
        &format!("traceparent: {INCOMING}\r\ntracestate: vendor=abc\r\n"),
    );
    let [_, trace_id, parent_id, flags] = fields(&sent);
    assert_eq!(trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_ne!(
        parent_id, "00f067aa0ba902b7",
        "Aegis's hop has its own parent id"
    );
    assert_eq!(flags, "01", "the sampled flag is passed on");
    assert_eq!(state.as_deref(), Some("vendor=abc"));
    assert_eq!(access_line(&aegis, "/valid")["trace_id"], trace_id);

    // Not sampled upstream stays not sampled.
    let unsampled = INCOMING.replace("-01", "-00");
    let (sent, _) = send(
        &aegis,
        &backend,
        "/unsampled",
        &format!("traceparent: {unsampled}\r\n"),
    );
    assert_eq!(fields(&sent)[3], "00");
}

#[test]
fn an_invalid_traceparent_is_replaced_by_a_fresh_one() {
    let backend = FakeBackend::start("a").unwrap();
    let aegis = Aegis::start(&[(backend.url(), 1)], "");
    let invalid = [
        INCOMING.to_uppercase(),
        INCOMING.replace("4bf92f3577b34da6a3ce929d0e0e4736", &"0".repeat(32)),
        format!("ff{}", &INCOMING[2..]),
        format!("{INCOMING}-extra"),
        "not a traceparent".to_string(),
    ];
    for (i, value) in invalid.iter().enumerate() {
        let path = format!("/invalid{i}");
        let (sent, state) = send(
            &aegis,
            &backend,
            &path,
            &format!("traceparent: {value}\r\ntracestate: vendor=abc\r\n"),
        );
        let [_, trace_id, _, flags] = fields(&sent);
        assert_ne!(trace_id, "4bf92f3577b34da6a3ce929d0e0e4736", "{value}");
        assert_eq!(flags, "01");
        assert_eq!(state, None, "a restarted trace carries no state: {value}");
        assert_eq!(access_line(&aegis, &path)["trace_id"], trace_id);
    }
    // Two traceparent fields cannot be told apart: neither is trusted.
    let (sent, _) = send(
        &aegis,
        &backend,
        "/twice",
        &format!("traceparent: {INCOMING}\r\ntraceparent: {INCOMING}\r\n"),
    );
    assert_ne!(fields(&sent)[1], "4bf92f3577b34da6a3ce929d0e0e4736");
}

#[test]
fn a_missing_traceparent_is_generated_per_request() {
    let backend = FakeBackend::start("a").unwrap();
    let aegis = Aegis::start(&[(backend.url(), 1)], "");
    let (first, _) = send(&aegis, &backend, "/first", "");
    let (second, _) = send(&aegis, &backend, "/second", "");
    let (a, b) = (fields(&first), fields(&second));
    assert_ne!(a[1], b[1], "each request starts its own trace");
    assert_eq!(access_line(&aegis, "/first")["trace_id"], a[1]);
    assert_eq!(access_line(&aegis, "/second")["trace_id"], b[1]);
    // A request Aegis answers itself logs the trace it came with.
    let refused = common::http::raw(
        aegis.addr(),
        format!("TRACE /refused HTTP/1.1\r\nHost: x\r\ntraceparent: {INCOMING}\r\n\r\n").as_bytes(),
    )
    .unwrap();
    assert_eq!(refused.status, 405);
    assert_eq!(
        access_line(&aegis, "/refused")["trace_id"],
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
}
