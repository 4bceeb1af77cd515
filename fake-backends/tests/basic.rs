//! Integration tests for normal answers, health probes, recording and configuration.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{connect, get, open};
use fake_backends::FakeBackend;

#[test]
fn normal_answer_carries_the_name() {
    let backend = FakeBackend::start("alpha").expect("start");
    assert_eq!(backend.name(), "alpha");
    assert_eq!(backend.url(), format!("http://{}", backend.addr()));
    assert!(backend.url().starts_with("http://127.0.0.1:"));

    let response = get(&backend, "/some/path?x=1&y=2");
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "alpha");
    assert_eq!(response.header("X-Backend"), Some("alpha"));
    assert_eq!(response.header("Content-Type"), Some("text/plain"));
    assert_eq!(response.header("Content-Length"), Some("5"));

    let requests = backend.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "GET");
    assert_eq!(request.target, "/some/path?x=1&y=2");
    assert_eq!(request.version, "HTTP/1.1");
    assert_eq!(request.header("host"), Some("test.local"));
    assert_eq!(request.header_all("CONNECTION"), vec!["close"]);
    assert!(request.peer.ip().is_loopback());
    assert_eq!(backend.request_count(), 1);
}

#[test]
fn health_is_counted_but_not_recorded() {
    let backend = FakeBackend::start("h").expect("start");
    let response = get(&backend, "/health");
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "ok");
    assert_eq!(backend.health_probes(), 1);
    assert!(backend.requests().is_empty());
    assert_eq!(backend.request_count(), 0);

    backend.set_health_status(503);
    backend.set_status(500); // must not affect health
    assert_eq!(get(&backend, "/health").status, 503);
    assert_eq!(backend.health_probes(), 2);
    assert!(backend.requests().is_empty());
}

#[test]
fn set_status_applies_to_everything_but_health() {
    let backend = FakeBackend::start("s").expect("start");
    backend.set_status(503);
    let response = get(&backend, "/x");
    assert_eq!(response.status, 503);
    assert_eq!(response.text(), "s");
    assert_eq!(get(&backend, "/health").status, 200);
    backend.set_status(404);
    assert_eq!(get(&backend, "/").status, 404);
}

#[test]
fn latency_delays_the_response() {
    let backend = FakeBackend::start("slow").expect("start");
    let latency = Duration::from_millis(300);
    backend.set_latency(latency);
    let started = Instant::now();
    assert_eq!(get(&backend, "/").status, 200);
    assert!(started.elapsed() >= latency, "answered too early");

    backend.set_latency(Duration::ZERO);
    backend.set_health_latency(latency);
    let started = Instant::now();
    assert_eq!(get(&backend, "/health").text(), "ok");
    assert!(started.elapsed() >= latency, "health answered too early");
}

#[test]
fn keep_alive_serves_sequential_requests_on_one_connection() {
    let backend = FakeBackend::start("ka").expect("start");
    let mut client = open(&backend);
    assert_eq!(client.get("/one").unwrap().text(), "ka");
    assert_eq!(client.get("/health").unwrap().text(), "ok");
    let second = client.get("/two").unwrap();
    assert_eq!(second.text(), "ka");
    assert_eq!(second.header("Connection"), None);

    let requests = backend.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].target, "/one");
    assert_eq!(requests[1].target, "/two");
    assert_eq!(requests[0].peer, requests[1].peer, "same connection");

    let last = client
        .exchange(b"GET /three HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(last.header("Connection"), Some("close"));
    assert!(client.is_closed());
}

#[test]
fn http_1_0_closes_unless_keep_alive_is_asked_for() {
    let backend = FakeBackend::start("old").expect("start");
    let mut client = open(&backend);
    let response = client
        .exchange(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    assert_eq!(response.header("Connection"), Some("keep-alive"));
    client.exchange(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    assert!(client.is_closed());
    assert_eq!(backend.requests()[1].version, "HTTP/1.0");
}

#[test]
fn request_bodies_are_recorded() {
    let backend = FakeBackend::start("body").expect("start");
    let mut client = open(&backend);
    let chunked = b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
                   5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";
    assert_eq!(client.exchange(chunked).unwrap().status, 200);
    let sized = b"PUT /put HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nabcd";
    assert_eq!(client.exchange(sized).unwrap().status, 200);

    let requests = backend.requests();
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].body, b"hello world");
    assert_eq!(requests[0].header("transfer-encoding"), Some("chunked"));
    assert_eq!(requests[1].method, "PUT");
    assert_eq!(requests[1].body, b"abcd");
}

#[test]
fn headers_are_recorded_in_order_with_original_case() {
    let backend = FakeBackend::start("hdr").expect("start");
    let mut client = open(&backend);
    client.exchange(b"GET / HTTP/1.1\r\nHost: t\r\nX-Forwarded-For:  10.0.0.1 \r\nx-forwarded-for: 10.0.0.2\r\n\r\n").unwrap();
    let request = &backend.requests()[0];
    let names: Vec<&str> = request.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Host", "X-Forwarded-For", "x-forwarded-for"]);
    assert_eq!(
        request.header_all("X-FORWARDED-FOR"),
        ["10.0.0.1", "10.0.0.2"]
    );
}

#[test]
fn extra_response_headers_are_sent_verbatim() {
    let backend = FakeBackend::start("extra").expect("start");
    let extra = [
        ("X-Powered-By", "PHP/5.4"),
        ("Server", "Apache/2.2"),
        ("Connection", "x-foo"),
        ("X-Foo", "secret"),
    ];
    backend.set_response_headers(
        extra
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    );
    let mut stream = connect(&backend);
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read response");
    for (name, value) in extra {
        assert!(
            raw.contains(&format!("\r\n{name}: {value}\r\n")),
            "{name} missing in {raw:?}"
        );
    }
    assert!(raw.contains("\r\nX-Backend: extra\r\n"));
    assert!(raw.ends_with("\r\n\r\nextra"));

    // Health responses do not get the extra headers.
    let health = get(&backend, "/health");
    assert_eq!(health.header("X-Powered-By"), None);
}

#[test]
fn body_size_sends_filler_and_head_has_no_body() {
    let backend = FakeBackend::start("big").expect("start");
    backend.set_body_size(Some(100_000));
    let mut client = open(&backend);
    let response = client.get("/big").unwrap();
    assert_eq!(response.body.len(), 100_000);
    assert!(response.body.iter().all(|&b| b == b'a'));

    let head = client
        .exchange(b"HEAD /big HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(head.header("Content-Length"), Some("100000"));
    // The connection is still in sync: the next answer is a fresh response.
    backend.set_body_size(None);
    assert_eq!(client.get("/small").unwrap().text(), "big");
}

#[test]
fn garbage_gets_400_and_close() {
    let backend = FakeBackend::start("strict").expect("start");
    let mut client = open(&backend);
    let response = client.exchange(b"NOT HTTP AT ALL\r\n\r\n").unwrap();
    assert_eq!(response.status, 400);
    assert_eq!(response.header("Connection"), Some("close"));
    assert!(client.is_closed());
    assert!(backend.requests().is_empty());
}

#[test]
fn reset_stats_clears_everything() {
    let backend = FakeBackend::start("r").expect("start");
    get(&backend, "/a");
    get(&backend, "/health");
    assert_eq!(backend.max_in_flight(), 1);
    backend.reset_stats();
    assert!(backend.requests().is_empty());
    assert_eq!(backend.request_count(), 0);
    assert_eq!(backend.health_probes(), 0);
    assert_eq!(backend.in_flight(), 0);
    assert_eq!(backend.max_in_flight(), 0);
    get(&backend, "/b");
    assert_eq!(backend.requests()[0].target, "/b");
}
