//! Shortcuts over the workspace's shared test client ([`fake_backends::client`]) for the fake
//! backends' own tests.

#![allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses a different subset"
)]

use std::net::TcpStream;
use std::time::Duration;

pub use fake_backends::client::{Connection, Response};
pub use fake_backends::wait_until;
use fake_backends::{client, FakeBackend};

/// Generous bound for anything that should happen promptly.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A raw TCP connection to `backend` (read and write timeouts set).
pub fn connect(backend: &FakeBackend) -> TcpStream {
    client::connect(backend.addr()).expect("connect to backend")
}

/// A keep-alive client connection to `backend`.
pub fn open(backend: &FakeBackend) -> Connection {
    Connection::open(backend.addr()).expect("connect to backend")
}

/// One `GET path` on a fresh connection (closed afterwards).
pub fn get(backend: &FakeBackend, path: &str) -> Response {
    client::get(backend.addr(), path)
}
