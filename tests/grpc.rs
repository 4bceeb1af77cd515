//! HTTP/2 backends and gRPC through Aegis (SPEC §11.3), against the real binary: a client
//! speaking h2c to Aegis, Aegis speaking h2c or h2 (TLS with a test CA) to a fake gRPC-style
//! backend. Trailers, streaming, connection reuse, health checks and the breaker.

mod common;

use common::tls::TestCa;
use common::{scratch_dir, wait_until, Aegis};
use fake_backends::grpc::{self, GrpcBackend};
use std::sync::Arc;
use std::time::Duration;

/// Aegis with an h2c listener for the client, in front of `backend` spoken to in `protocol`,
/// with `extra` YAML.
fn aegis(backend: &GrpcBackend, protocol: &str, extra: &str) -> Aegis {
    let config = format!(
        "listeners:\n  - address: 127.0.0.1:{{port}}\n    h2c: true\n\
         backends:\n  - url: \"{}\"\n    protocol: {protocol}\n{extra}",
        backend.url()
    );
    let aegis = Aegis::start(&[], &config);
    // Requests go out once the backend passed its health checks (over the same protocol).
    assert!(
        wait_until(Duration::from_secs(10), || aegis.backend_status(0)
            ["healthy"]
            == true),
        "the {protocol} backend never became healthy: {}",
        aegis.output()
    );
    aegis
}

/// Unary and streaming calls with their trailers; what the backend received.
fn unary_and_streaming_calls_pass(backend: &Arc<GrpcBackend>, aegis: &Aegis) {
    let reply = grpc::call(
        aegis.addr(),
        "/echo.Echo/Unary",
        &[b"hello", b"world"],
        || {},
    )
    .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.headers.get("content-type").unwrap(),
        "application/grpc"
    );
    assert_eq!(reply.messages, vec![b"hello".to_vec(), b"world".to_vec()]);
    assert_eq!(reply.trailer("grpc-status"), Some("0"));
    assert_eq!(reply.trailer("grpc-message"), Some("echoed"));

    let reply = grpc::call(aegis.addr(), "/echo.Echo/Missing", &[b"x"], || {}).unwrap();
    assert_eq!(reply.status, 200);
    assert!(reply.messages.is_empty());
    assert_eq!(reply.trailer("grpc-status"), Some("5"));
    assert_eq!(reply.trailer("grpc-message"), Some("not%20here"));

    // Server streaming: the backend holds the call open after its first message until the
    // client has that message. Were the response buffered, the first message would come only
    // after the backend gave up waiting (grpc-status 4).
    let release = Arc::clone(backend);
    let reply = grpc::call(aegis.addr(), "/echo.Echo/Stream", &[b"go"], move || {
        assert_eq!(
            release.streams_open(),
            1,
            "the call is still open at the backend"
        );
        release.release();
    })
    .unwrap();
    assert_eq!(reply.trailer("grpc-status"), Some("0"), "{reply:?}");
    assert_eq!(
        reply.messages,
        vec![b"first".to_vec(), b"second".to_vec(), b"third".to_vec()]
    );

    let seen = backend.requests();
    let unary = &seen[0];
    assert_eq!(unary.path, "/echo.Echo/Unary");
    assert_eq!(unary.headers.get("te").unwrap(), "trailers");
    assert_eq!(
        unary.headers.get("content-type").unwrap(),
        "application/grpc"
    );
    assert!(unary.headers.get("x-request-id").is_some());
}

#[test]
fn grpc_over_an_h2c_backend() {
    let backend = Arc::new(GrpcBackend::start_h2c().unwrap());
    let aegis = aegis(&backend, "h2c", "");
    unary_and_streaming_calls_pass(&backend, &aegis);

    // Streams share connections: twenty more calls, each on a fresh client connection, open
    // no new connection to the backend. Health probes may open their own (one pass every
    // 100 ms, more of them when a loaded machine stretches the calls): those are not counted.
    let (before, probes_before) = (backend.connections(), backend.health_probes());
    for _ in 0..20 {
        let reply = grpc::call(aegis.addr(), "/echo.Echo/Unary", &[b"again"], || {}).unwrap();
        assert_eq!(reply.trailer("grpc-status"), Some("0"));
    }
    let probes = backend.health_probes() - probes_before;
    let opened = backend.connections() - before;
    assert!(
        opened <= probes + 1,
        "{opened} connections for 20 calls and {probes} health probes"
    );
}

/// An h2 backend behind TLS, with a certificate from a test CA that `upstream.ca_file` names.
fn tls_backend() -> (Arc<GrpcBackend>, String) {
    let dir = scratch_dir();
    let ca = TestCa::new();
    let files = ca.issue(&dir, "backend", &["127.0.0.1", "localhost"], 30);
    let ca_file = dir.join("ca.pem");
    ca.write_pem(&ca_file);
    let backend = GrpcBackend::start_h2(
        &std::fs::read(&files.cert).unwrap(),
        &std::fs::read(&files.key).unwrap(),
    )
    .unwrap();
    let extra = format!("upstream:\n  ca_file: \"{}\"\n", ca_file.display());
    (Arc::new(backend), extra)
}

#[test]
fn grpc_over_an_h2_backend_with_a_private_ca() {
    let (backend, extra) = tls_backend();
    let aegis = aegis(&backend, "h2", &extra);
    unary_and_streaming_calls_pass(&backend, &aegis);
}

#[test]
fn an_h2_backend_without_the_ca_is_never_trusted() {
    let (backend, _) = tls_backend();
    let config = format!(
        "backends:\n  - url: \"{}\"\n    protocol: h2\n",
        backend.url()
    );
    let aegis = Aegis::start(&[], &config);
    // Probes fail the TLS handshake: the backend is not trusted, nothing reaches it.
    assert!(wait_until(Duration::from_secs(10), || aegis
        .backend_status(0)["healthy"]
        == false));
    assert_eq!(aegis.get("/").status, 503);
    assert!(backend.requests().is_empty());
}

#[test]
fn a_5xx_from_an_h2_backend_opens_its_breaker() {
    let (backend, extra) = tls_backend();
    let aegis = aegis(
        &backend,
        "h2",
        &format!("{extra}circuit_breaker:\n  failure_threshold: 3\n  open_timeout: 60s\n"),
    );
    backend.set_status(503);
    for _ in 0..3 {
        let reply = grpc::call(aegis.addr(), "/echo.Echo/Unary", &[b"x"], || {}).unwrap();
        assert_eq!(reply.status, 503, "the backend's answer is passed on");
    }
    assert!(wait_until(Duration::from_secs(5), || aegis
        .backend_status(0)["breaker"]
        == "open"));
    // The breaker now answers for the backend: Aegis's own 503, and the backend sees nothing.
    let seen = backend.requests().len();
    let reply = grpc::call(aegis.addr(), "/echo.Echo/Unary", &[b"x"], || {}).unwrap();
    assert_eq!(reply.status, 503);
    assert_eq!(backend.requests().len(), seen);
}
