//! Plays the HTTP/1 cases of the conformance table against another reverse proxy — nginx in
//! docs/security.md — and prints where it differs from what the table expects of Aegis. A hand
//! check, not a test: the other proxy is set up by hand (see docs/security.md), pointed at the
//! fake backend this starts.
//!
//! ```sh
//! cargo run --profile ci --example conformance-compare -- 127.0.0.1:18080 18081
//! ```
//! (the proxy's address; the port the fake backend listens on, which the proxy forwards to)
// The tables' helpers for the HTTP/2 runner and the docs are not used here.
#![allow(dead_code)]

mod cases_chunked;
mod cases_framing;
mod cases_headers;
mod cases_host;
mod cases_line;
mod table;

use fake_backends::FakeBackend;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use table::{Outcome, Send};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [proxy, port] = &args[..] else {
        eprintln!("usage: conformance-compare PROXY_ADDR BACKEND_PORT");
        std::process::exit(2);
    };
    let proxy: SocketAddr = proxy.parse().expect("PROXY_ADDR is host:port");
    let port: u16 = port.parse().expect("BACKEND_PORT is a port");
    let backend = FakeBackend::start_on("b", SocketAddr::from(([127, 0, 0, 1], port)))
        .expect("the fake backend starts");
    let tables = [
        cases_line::CASES,
        cases_headers::CASES,
        cases_framing::CASES,
        cases_chunked::CASES,
        cases_host::CASES,
    ];
    println!("| case | what | Aegis | other proxy | Aegis is |\n|---|---|---|---|---|");
    let (mut played, mut differ) = (0, 0);
    for case in tables.into_iter().flatten() {
        let (bytes, eof) = match &case.send {
            Send::H1(b) => (b.to_vec(), false),
            Send::H1Eof(b) => (b.to_vec(), true),
            Send::H1Continue(head, body) => ([*head, *body].concat(), false),
            Send::H1Built(build) => (build(), false),
            _ => continue,
        };
        backend.reset_stats();
        let statuses = exchange(proxy, &bytes, eof);
        // Forwarded requests reach the backend before their answer; an abandoned one may come
        // later: wait until nothing more arrives for a moment.
        let mut last = (backend.request_count(), Instant::now());
        while last.1.elapsed() < Duration::from_millis(300) {
            std::thread::sleep(Duration::from_millis(20));
            if backend.request_count() != last.0 {
                last = (backend.request_count(), Instant::now());
            }
        }
        let forwarded = backend.requests().len();
        let count = |f: fn(&Outcome) -> bool| case.expect.iter().filter(|o| f(o)).count();
        let aegis_forwarded = count(|o| matches!(o, Outcome::Fwd(_)));
        // An abandoned request may or may not have reached the backend.
        let aegis_abandoned = count(|o| matches!(o, Outcome::Abandoned));
        played += 1;
        let verdict = if forwarded < aegis_forwarded {
            "looser"
        } else if forwarded > aegis_forwarded + aegis_abandoned {
            "stricter"
        } else {
            continue;
        };
        differ += 1;
        let aegis: Vec<String> = case.expect.iter().map(|o| o.describe()).collect();
        println!(
            "| {} | {} | {} | {forwarded} forwarded; answers {statuses:?} | {verdict} |",
            case.id,
            case.what,
            aegis.join(", then ")
        );
    }
    println!("\n{played} HTTP/1 cases played, {differ} differ in what reaches the backend.");
}

/// Sends `bytes` and returns the status of every answer until the connection closes or stays
/// quiet for a second.
fn exchange(proxy: SocketAddr, bytes: &[u8], eof: bool) -> Vec<u16> {
    let mut stream = TcpStream::connect(proxy).expect("connect to the proxy");
    stream.write_all(bytes).expect("send");
    if eof {
        let _ = stream.shutdown(Shutdown::Write);
    }
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let (mut all, mut chunk) = (Vec::new(), [0u8; 65_536]);
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(1) {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                all.extend_from_slice(&chunk[..n]);
                quiet_since = Instant::now();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    // Status lines (a body can end without a line end, so not only at the start of a line; the
    // bodies here never hold one).
    let text = String::from_utf8_lossy(&all);
    text.split("HTTP/1.")
        .skip(1)
        .filter_map(|rest| rest.get(2..5)?.parse().ok())
        .collect()
}
