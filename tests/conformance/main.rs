//! The conformance suite (SPEC §15.2): a table of requests from RFC 9110, 9112 and 9113, each
//! with its expected outcome, played against ONE Aegis process (plain listener with h2c) in
//! front of one fake backend that records what reaches it. A case passes when every answer is
//! Aegis's (never `Server: Pingora`), every refusal is the JSON it should be, and the backend saw
//! exactly the normalised requests the case lists — nothing for a refused one.
//!
//! The table lives in `cases_*.rs` (one file per area), the vocabulary in `table.rs`, the
//! players in `h1.rs` and `h2.rs`. `docs/security.md` holds the table rendered by `docs.rs`;
//! `docs_table_is_current` fails when it is stale (`AEGIS_BLESS=1` rewrites it).

#[path = "../common/mod.rs"]
mod common;

mod cases_chunked;
mod cases_framing;
mod cases_h2;
mod cases_headers;
mod cases_host;
mod cases_line;
mod docs;
mod h1;
mod h2;
mod table;

use common::Aegis;
use fake_backends::{FakeBackend, RecordedRequest};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;
use table::{Case, Fwd, Headers, Send, SUITE_CONFIG};

/// Every case, in table order.
pub fn all_cases() -> Vec<&'static Case> {
    [
        cases_line::CASES,
        cases_headers::CASES,
        cases_framing::CASES,
        cases_chunked::CASES,
        cases_host::CASES,
        cases_h2::CASES,
    ]
    .into_iter()
    .flatten()
    .collect()
}

#[test]
fn every_case_against_one_aegis() {
    let backend = FakeBackend::start("b").unwrap();
    let aegis = Aegis::start(&[(backend.url(), 1)], SUITE_CONFIG);
    let cases = all_cases();
    let mut failures = Vec::new();
    for case in &cases {
        // Nothing of the last case is still arriving at the backend.
        common::wait_until(Duration::from_secs(5), || backend.in_flight() == 0);
        backend.reset_stats();
        let played = catch_unwind(AssertUnwindSafe(|| play(case, &aegis, &backend)));
        if let Err(panic) = played {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{} ({}): {message}", case.id, case.what));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    // Whatever the cases did, Aegis is still up and serving.
    let after = common::http::raw(aegis.addr(), b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
    assert_eq!(after.expect("an answer").status, 200);
}

#[test]
fn the_table_has_150_cases_with_unique_ids_and_a_section_each() {
    let cases = all_cases();
    assert!(cases.len() >= 150, "only {} cases", cases.len());
    let mut ids: Vec<&str> = cases.iter().map(|c| c.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), cases.len(), "duplicate case ids");
    for case in cases {
        assert!(case.rfc.starts_with("RFC "), "{}: no RFC section", case.id);
        assert!(!case.expect.is_empty(), "{}: no outcome", case.id);
    }
}

#[test]
fn docs_table_is_current() {
    docs::check_or_bless();
}

fn play(case: &Case, aegis: &Aegis, backend: &FakeBackend) {
    match &case.send {
        Send::H1(bytes) => h1::play(bytes, false, case.expect, aegis, backend),
        Send::H1Eof(bytes) => h1::play(bytes, true, case.expect, aegis, backend),
        Send::H1Continue(head, body) => h1::play_continue(head, body, case.expect, aegis, backend),
        Send::H1Built(build) => h1::play(&build(), false, case.expect, aegis, backend),
        Send::H2(fields, body) => {
            let fields = fields.iter().map(|(n, v)| (n.to_vec(), v.to_vec()));
            h2::play(
                &fields.collect::<Vec<_>>(),
                body,
                case.expect,
                aegis,
                backend,
            )
        }
        Send::H2Built(build) => h2::play(&build(), b"", case.expect, aegis, backend),
    }
}

/// The headers Aegis sets on every forwarded request (SPEC §3.7, §14.3), checked on their own.
const SET_BY_AEGIS: [&str; 5] = [
    "host",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-request-id",
    "traceparent",
];

/// Checks that the backend saw exactly `want`, with the request id the client was answered with.
pub fn assert_seen(seen: &RecordedRequest, want: &Fwd, request_id: Option<&str>, backend: &str) {
    assert_eq!(
        (
            seen.method.as_str(),
            seen.target.as_str(),
            seen.version.as_str()
        ),
        (want.method, want.target, "HTTP/1.1"),
        "request line the backend saw"
    );
    assert_eq!(
        seen.header_all("host"),
        vec![backend],
        "Host the backend saw"
    );
    assert_eq!(seen.header_all("x-forwarded-for"), vec!["127.0.0.1"]);
    assert_eq!(seen.header_all("x-forwarded-proto"), vec!["http"]);
    assert_eq!(seen.header_all("x-request-id").first().copied(), request_id);
    let trace = seen.header_all("traceparent");
    assert!(
        trace.len() == 1 && trace[0].len() == 55,
        "traceparent {trace:?}"
    );
    let rest: Vec<(String, String)> = seen
        .headers
        .iter()
        .filter(|(name, _)| !SET_BY_AEGIS.iter().any(|s| name.eq_ignore_ascii_case(s)))
        .cloned()
        .collect();
    let expected: Vec<(String, String)> = match want.headers {
        Headers::Are(list) => list
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        Headers::Built(build) => build(),
    };
    assert_eq!(rest, expected, "other headers the backend saw");
    assert!(
        seen.body == want.body,
        "body the backend saw: {:?}",
        String::from_utf8_lossy(&seen.body)
    );
}
