//! Integration tests for broken modes, refusing connections, concurrency and lifecycle.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{connect, get, open, wait_until, TIMEOUT};
use fake_backends::{FakeBackend, Mode};

const REQUEST: &[u8] = b"GET /broken HTTP/1.1\r\nHost: t\r\n\r\n";

#[test]
fn close_immediately_gives_eof_without_bytes() {
    let backend = FakeBackend::start("closer").expect("start");
    backend.set_mode(Mode::CloseImmediately);
    let mut stream = connect(&backend);
    stream.write_all(REQUEST).expect("send");
    let mut received = Vec::new();
    stream.read_to_end(&mut received).expect("clean EOF");
    assert!(received.is_empty(), "got {received:?}");
    assert_eq!(backend.request_count(), 1);
    assert_eq!(backend.requests()[0].target, "/broken");
    assert_eq!(backend.in_flight(), 0);

    // Health is unaffected by the mode.
    assert_eq!(get(&backend, "/health").text(), "ok");
}

#[test]
fn hang_never_answers_until_the_backend_is_dropped() {
    let backend = FakeBackend::start("hanger").expect("start");
    backend.set_mode(Mode::Hang);
    let mut stream = connect(&backend);
    stream.write_all(REQUEST).expect("send");
    assert!(
        wait_until(TIMEOUT, || backend.in_flight() == 1),
        "the hung request to be in flight"
    );

    stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("set timeout");
    let mut buf = [0u8; 64];
    let err = stream.read(&mut buf).expect_err("no bytes may arrive");
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "unexpected error {err:?}"
    );
    assert_eq!(backend.request_count(), 1);

    drop(backend);
    stream.set_read_timeout(Some(TIMEOUT)).expect("set timeout");
    match stream.read(&mut buf) {
        Ok(n) => assert_eq!(n, 0, "expected EOF after drop"),
        Err(err) => assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err:?}"),
    }
}

#[test]
fn reset_mid_body_sends_a_partial_body_then_fails() {
    let backend = FakeBackend::start("resetter").expect("start");
    backend.set_mode(Mode::ResetMidBody);
    let mut stream = connect(&backend);
    stream.write_all(REQUEST).expect("send");

    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(err) => {
                assert!(
                    !matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
                    "the connection was never reset"
                );
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "got {text:?}");
    assert!(text.contains("\r\nContent-Length: 100000\r\n"));
    let body_start = text.find("\r\n\r\n").expect("complete head") + 4;
    let body_len = received.len() - body_start;
    assert!(body_len < 100_000, "body must be truncated, got {body_len}");
    assert_eq!(backend.request_count(), 1);
}

#[test]
fn refusing_connections_and_listening_again_on_the_same_port() {
    let backend = FakeBackend::start("flaky").expect("start");
    let addr = backend.addr();
    let mut idle = open(&backend);
    assert_eq!(idle.get("/").unwrap().status, 200);

    backend.set_refuse_connections(true);
    let err = TcpStream::connect(addr).expect_err("connect must fail");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    assert!(idle.is_closed(), "open connections are closed too");

    backend.set_refuse_connections(true); // idempotent
    backend.set_refuse_connections(false);
    assert_eq!(backend.addr(), addr);
    assert_eq!(get(&backend, "/").text(), "flaky");
    backend.set_refuse_connections(false); // idempotent
    assert_eq!(get(&backend, "/").status, 200);
    assert_eq!(backend.request_count(), 3);
}

#[test]
fn max_in_flight_sees_concurrent_slow_requests() {
    let backend = Arc::new(FakeBackend::start("busy").expect("start"));
    backend.set_latency(Duration::from_millis(1500));
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let backend = Arc::clone(&backend);
            std::thread::spawn(move || get(&backend, "/slow").status)
        })
        .collect();
    assert!(
        wait_until(TIMEOUT, || backend.in_flight() == 3),
        "three requests in flight"
    );
    assert_eq!(backend.max_in_flight(), 3);
    assert_eq!(backend.request_count(), 3);
    for client in clients {
        assert_eq!(client.join().expect("client thread"), 200);
    }
    assert_eq!(backend.in_flight(), 0);
    assert_eq!(backend.max_in_flight(), 3);
    assert_eq!(backend.requests().len(), 3);
}

#[test]
fn behaviour_can_change_while_a_connection_stays_open() {
    let backend = FakeBackend::start("switch").expect("start");
    let mut client = open(&backend);
    assert_eq!(client.get("/").unwrap().status, 200);
    backend.set_status(502);
    backend.set_response_headers(vec![("X-Late".to_string(), "1".to_string())]);
    let response = client.get("/").unwrap();
    assert_eq!(response.status, 502);
    assert_eq!(response.header("X-Late"), Some("1"));
}

#[test]
fn dropping_closes_the_listener_and_connections() {
    let backend = FakeBackend::start("gone").expect("start");
    let addr = backend.addr();
    let mut idle = open(&backend);
    assert_eq!(idle.get("/").unwrap().status, 200);
    drop(backend);
    assert!(idle.is_closed());
    let err = TcpStream::connect(addr).expect_err("connect after drop");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn start_on_a_given_address() {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe port");
    let addr = probe.local_addr().expect("probe address");
    drop(probe);
    let backend = FakeBackend::start_on("fixed", addr).expect("start_on");
    assert_eq!(backend.addr(), addr);
    assert_eq!(get(&backend, "/").text(), "fixed");
    let err = FakeBackend::start_on("dup", addr).expect_err("port is taken");
    assert!(format!("{err:#}").contains("dup"), "{err:#}");
}

#[test]
fn hundreds_of_backends_start_and_stop_quickly() {
    let started = Instant::now();
    for i in 0..200 {
        let backend = FakeBackend::start(&format!("b{i}")).expect("start");
        let mut client = open(&backend);
        assert_eq!(client.get("/health").unwrap().status, 200);
        drop(backend); // with an idle connection still open
        assert!(client.is_closed());
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}
