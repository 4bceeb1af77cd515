//! WebSockets through Aegis (SPEC §11.4), against the real binary and a fake backend that
//! echoes frames: the handshake and its headers, frames both ways, the idle timeout, h2c
//! smuggling, the rate limit, shutdown, and answers other than 101.

mod common;

use common::http::{self, assert_hardened};
use common::{wait_until, Aegis};
use fake_backends::websocket::{self, handshake_request, Client, Handshake, BINARY, CLOSE, TEXT};
use fake_backends::{FakeBackend, Mode};
use std::time::{Duration, Instant};

/// A backend in WebSocket echo mode.
fn echo_backend(name: &str) -> FakeBackend {
    let backend = FakeBackend::start(name).unwrap();
    backend.set_mode(Mode::WebSocketEcho);
    backend
}

/// Opens a tunnel through `aegis`; panics unless the handshake is answered 101.
fn open(aegis: &Aegis, extra_headers: &str) -> (Client, fake_backends::client::Response) {
    match Client::connect(aegis.addr(), &handshake_request("/chat", extra_headers)).unwrap() {
        Handshake::Open(client, response) => (client, response),
        Handshake::Refused(response) => panic!("handshake refused: {response:?}"),
    }
}

/// Sends a frame and reads the echo.
fn echo(client: &mut Client, opcode: u8, payload: &[u8]) -> std::io::Result<websocket::Frame> {
    client.send(opcode, payload)?;
    client.recv()
}

fn tunnels(aegis: &Aegis) -> u64 {
    aegis.status()["totals"]["websocket_tunnels"]
        .as_u64()
        .unwrap()
}

#[test]
fn frames_of_every_size_go_both_ways_and_the_tunnel_is_counted() {
    let backend = echo_backend("ws");
    let aegis = Aegis::start(&[(backend.url(), 1)], "");
    // Hop-by-hop headers of the client's that must not reach the backend beside the upgrade.
    let (mut client, response) = open(
        &aegis,
        "Keep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: Basic Zm9v\r\n\
         Sec-WebSocket-Protocol: chat\r\n",
    );
    assert_eq!(response.status, 101);
    assert_eq!(response.header("upgrade"), Some("websocket"));
    assert!(response
        .header("connection")
        .is_some_and(|c| c.eq_ignore_ascii_case("upgrade")));
    assert_eq!(
        response.header("sec-websocket-accept"),
        Some(websocket::accept_key("dGhlIHNhbXBsZSBub25jZQ==").as_str())
    );
    assert_eq!(response.header("server"), Some("aegis"));

    let seen = &backend.requests()[0];
    assert_eq!(seen.header("upgrade"), Some("websocket"));
    assert_eq!(seen.header("connection"), Some("upgrade"));
    assert_eq!(seen.header("sec-websocket-protocol"), Some("chat"));
    for hop in ["keep-alive", "te", "proxy-authorization"] {
        assert_eq!(seen.header(hop), None, "{hop} reached the backend");
    }

    for size in [0, 1, 125, 126, 65_535, 65_536, 300_000, 2 * 1024 * 1024] {
        let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let frame = echo(&mut client, BINARY, &payload).unwrap();
        assert_eq!((frame.opcode, frame.payload.len()), (BINARY, size));
        assert!(
            frame.payload == payload,
            "binary frame of {size} bytes changed"
        );
        let text = "é".repeat(size / 2);
        let frame = echo(&mut client, TEXT, text.as_bytes()).unwrap();
        assert_eq!(frame.opcode, TEXT);
        assert!(
            frame.payload == text.as_bytes(),
            "text of {size} bytes changed"
        );
    }

    assert_eq!(tunnels(&aegis), 1);
    let metrics = aegis.admin_get("/metrics").text();
    assert!(
        metrics.contains("\naegis_websocket_tunnels 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\naegis_websocket_tunnels_total 1\n"),
        "{metrics}"
    );

    // A close frame is answered and ends the tunnel; the count goes back to 0.
    assert_eq!(echo(&mut client, CLOSE, b"").unwrap().opcode, CLOSE);
    assert!(wait_until(Duration::from_secs(5), || tunnels(&aegis) == 0));
    // Ordinary requests still pass.
    assert_eq!(aegis.get("/").status, 200);
}

#[test]
fn an_idle_tunnel_is_closed_after_idle_timeout_and_a_busy_one_is_not() {
    let backend = echo_backend("ws");
    let aegis = Aegis::start(
        &[(backend.url(), 1)],
        "websocket:\n  idle_timeout: 1s\nserver:\n  read_timeout: 300ms\n",
    );
    let (mut busy, _) = open(&aegis, "");
    let (mut idle, _) = open(&aegis, "");
    echo(&mut idle, TEXT, b"hello").unwrap();
    // Idle: closed once nothing has gone either way for 1 s.
    let idle = std::thread::spawn(move || {
        let quiet_since = Instant::now();
        let ended = idle.recv();
        (ended, quiet_since.elapsed())
    });
    // Busy: a frame every 300 ms for 2.5 s, longer than the idle timeout and far longer than
    // `server.read_timeout` (which does not apply to a tunnel).
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(2500) {
        assert_eq!(echo(&mut busy, TEXT, b"tick").unwrap().payload, b"tick");
        std::thread::sleep(Duration::from_millis(300));
    }
    let (ended, quiet) = idle.join().unwrap();
    assert!(ended.is_err(), "the idle tunnel sent {ended:?}");
    assert!(
        quiet >= Duration::from_millis(900),
        "closed after only {quiet:?} of quiet"
    );
    assert!(wait_until(Duration::from_secs(5), || tunnels(&aegis) == 1));
    // The busy tunnel is still open, then idles out too.
    assert_eq!(echo(&mut busy, TEXT, b"still").unwrap().payload, b"still");
    assert!(busy.recv().is_err());
    assert!(wait_until(Duration::from_secs(5), || tunnels(&aegis) == 0));
    let log = aegis.output();
    assert!(
        !log.contains("\"level\":\"error\""),
        "an idle tunnel's end is no error: {log}"
    );
}

#[test]
fn upgrade_h2c_and_other_tokens_never_reach_the_backend() {
    let backend = FakeBackend::start("plain").unwrap();
    let aegis = Aegis::start(&[(backend.url(), 1)], "");
    // h2c smuggling: with Upgrade: h2c forwarded, a backend that speaks h2c would switch the
    // connection to HTTP/2 and take requests that Aegis never checked.
    let smuggle = b"GET / HTTP/1.1\r\nHost: t\r\nUpgrade: h2c\r\n\
        Connection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n";
    let response = http::raw(aegis.addr(), smuggle).unwrap();
    assert_eq!(response.status, 200);
    assert_hardened(&response);
    // A list with websocket in it on something other than a GET, and a websocket upgrade
    // over HTTP/1.0: no handshake either.
    let post = b"POST / HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\
        Content-Length: 0\r\n\r\n";
    assert_eq!(http::raw(aegis.addr(), post).unwrap().status, 200);
    let old = b"GET / HTTP/1.0\r\nHost: t\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n";
    assert_eq!(http::raw(aegis.addr(), old).unwrap().status, 200);
    // Other tokens beside websocket are dropped; websocket alone goes on.
    let mixed = handshake_request("/", "").replace("Upgrade: websocket", "Upgrade: h2c, websocket");
    let response = http::raw(aegis.addr(), mixed.as_bytes()).unwrap();
    assert_eq!(response.status, 200, "the plain backend answers 200");

    let seen = backend.requests();
    assert_eq!(seen.len(), 4);
    for request in &seen[..3] {
        assert_eq!(request.header("upgrade"), None, "{request:?}");
        assert_eq!(request.header("http2-settings"), None, "{request:?}");
        assert!(request.header("connection").is_none(), "{request:?}");
    }
    assert_eq!(seen[3].header_all("upgrade"), vec!["websocket"]);
    assert_eq!(tunnels(&aegis), 0);
}

#[test]
fn with_websocket_disabled_upgrade_is_stripped() {
    let backend = echo_backend("ws");
    let aegis = Aegis::start(&[(backend.url(), 1)], "websocket:\n  enabled: false\n");
    match Client::connect(aegis.addr(), &handshake_request("/", "")).unwrap() {
        Handshake::Refused(response) => assert_eq!(response.status, 200),
        Handshake::Open(..) => panic!("a tunnel opened with websocket.enabled: false"),
    }
    assert_eq!(backend.requests()[0].header("upgrade"), None);
}

#[test]
fn the_handshake_is_rate_limited_like_any_request() {
    let backend = echo_backend("ws");
    let aegis = Aegis::start(
        &[(backend.url(), 1)],
        "rate_limit:\n  requests_per_second: 1\n  burst: 2\n\
         adaptive:\n  enabled: false\n  min_rate: 1\n  max_rate: 1000\n",
    );
    let (mut first, _) = open(&aegis, "");
    let (_second, _) = open(&aegis, "");
    match Client::connect(aegis.addr(), &handshake_request("/chat", "")).unwrap() {
        Handshake::Refused(response) => {
            assert_eq!(response.status, 429);
            assert_eq!(response.json()["error"], "rate limit exceeded");
            assert_hardened(&response);
        }
        Handshake::Open(..) => panic!("the third handshake passed the limit"),
    }
    assert_eq!(
        backend.request_count(),
        2,
        "the refused handshake reached no backend"
    );
    // Frames inside an open tunnel are not requests: they are not limited.
    for _ in 0..20 {
        echo(&mut first, TEXT, b"x").unwrap();
    }
}

#[test]
fn a_backend_refusing_the_upgrade_has_its_answer_passed_on() {
    let backend = echo_backend("ws");
    backend.set_status(403);
    let aegis = Aegis::start(&[(backend.url(), 1)], "");
    let mut connection = fake_backends::client::Connection::open(aegis.addr()).unwrap();
    let response = connection
        .exchange(handshake_request("/chat", "").as_bytes())
        .unwrap();
    assert_eq!(response.status, 403);
    assert_eq!(response.text(), "ws");
    assert_eq!(response.header("upgrade"), None);
    assert_hardened(&response);
    // The connection goes on as HTTP.
    backend.set_status(200);
    assert_eq!(connection.get("/next").unwrap().status, 200);
    assert_eq!(tunnels(&aegis), 0);
}

#[test]
fn an_open_tunnel_lasts_through_sigterm_until_shutdown_timeout() {
    let backend = echo_backend("ws");
    let mut aegis = Aegis::start(&[(backend.url(), 1)], "server:\n  shutdown_timeout: 3s\n");
    let (mut client, _) = open(&aegis, "");
    let signalled = aegis.terminate_and_wait_draining();
    // Frames keep flowing until the process ends at shutdown_timeout.
    let mut last_echo = signalled;
    while echo(&mut client, TEXT, b"still here").is_ok() {
        last_echo = Instant::now();
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = aegis
        .wait_exit(Duration::from_secs(10))
        .expect("aegis exits");
    assert!(status.success(), "{status:?}");
    let lasted = last_echo.duration_since(signalled);
    assert!(
        lasted >= Duration::from_millis(2500),
        "the tunnel ended {lasted:?} after SIGTERM, before shutdown_timeout"
    );
}

/// Resident memory per idle tunnel: RSS with many open tunnels against none (printed for the
/// docs; the assertion is only that they all open, and are counted).
#[test]
fn a_thousand_idle_tunnels_are_held_and_counted() {
    const TUNNELS: usize = 1000;
    let backend = echo_backend("ws");
    let aegis = Aegis::start_env(&[(backend.url(), 1)], "", &[], common::NO_ACCESS_LOG);
    // Warm up the worker threads and buffers before the baseline.
    for _ in 0..2 {
        let (mut c, _) = open(&aegis, "");
        echo(&mut c, TEXT, b"warm").unwrap();
    }
    assert!(wait_until(Duration::from_secs(5), || tunnels(&aegis) == 0));
    let before = common::rss_kib(aegis.pid());
    let mut open_tunnels = Vec::with_capacity(TUNNELS);
    for i in 0..TUNNELS {
        let (mut c, _) = open(&aegis, "");
        if let Err(e) = echo(&mut c, TEXT, b"hi") {
            panic!("tunnel {i}: {e}");
        }
        open_tunnels.push(c);
    }
    assert!(wait_until(Duration::from_secs(10), || tunnels(&aegis)
        == TUNNELS as u64));
    let after = common::rss_kib(aegis.pid());
    let per_tunnel = after.saturating_sub(before) as f64 / TUNNELS as f64;
    println!(
        "websocket memory: RSS {before} KiB with 0 tunnels, {after} KiB with {TUNNELS}: \
         {per_tunnel:.1} KiB per idle tunnel"
    );
    for c in &mut open_tunnels {
        assert_eq!(echo(c, TEXT, b"again").unwrap().payload, b"again");
    }
    drop(open_tunnels);
    assert!(wait_until(Duration::from_secs(10), || tunnels(&aegis) == 0));
}

#[test]
fn an_open_tunnel_survives_its_backend_turning_unhealthy() {
    let backend = echo_backend("ws");
    let aegis = Aegis::start(&[(backend.url(), 1)], "");
    let (mut client, _) = open(&aegis, "");
    backend.set_health_status(503);
    assert!(wait_until(Duration::from_secs(10), || aegis
        .backend_status(0)["healthy"]
        == false));
    // No new handshake goes to it; the open tunnel goes on.
    match Client::connect(aegis.addr(), &handshake_request("/chat", "")).unwrap() {
        Handshake::Refused(response) => assert_eq!(response.status, 503),
        Handshake::Open(..) => panic!("a handshake reached an unhealthy backend"),
    }
    assert_eq!(echo(&mut client, TEXT, b"still").unwrap().payload, b"still");
    assert_eq!(tunnels(&aegis), 1);
}
