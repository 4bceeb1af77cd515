//! Connection capacity (issue 23): Aegis raises its open-file limit, caps client connections
//! (`server.max_connections`, excess clients wait in the listen backlog) and never blames a
//! backend for its own shortage of descriptors. Loopback only, bounded in count and time; Aegis
//! runs under `prlimit` so the limits are the test's, not the machine's.

mod common;

use common::{wait_until, Aegis};
use fake_backends::FakeBackend;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Raises this test process's own soft open-file limit (the clients and the in-process fake
/// backend hold thousands of sockets); returns the hard limit.
fn raise_own_file_limit(needed: u64) -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    assert!(
        hard >= needed,
        "this test needs a hard open-file limit of at least {needed} (have {hard})"
    );
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    hard
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// One response read off a keep-alive connection.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// Sends `GET /` and reads one response (Content-Length framed, as Aegis and the fake backend
/// answer).
async fn request(stream: &mut TcpStream) -> std::io::Result<Answer> {
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: capacity.test\r\n\r\n")
        .await?;
    let mut buf = Vec::with_capacity(512);
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 512];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 512];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(Answer {
        status,
        head,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn breaker_closed_and_blameless(aegis: &Aegis) {
    let backend = aegis.backend_status(0);
    assert_eq!(backend["breaker"], "closed", "{backend}");
    assert_eq!(backend["failures"], 0, "{backend}");
    assert_eq!(backend["healthy"], true, "{backend}");
}

#[test]
fn three_thousand_keepalive_clients_under_a_soft_limit_of_1024_all_get_200() {
    const CLIENTS: usize = 3000;
    let hard = raise_own_file_limit(8192);
    let backend = FakeBackend::start("b").unwrap();
    let aegis = Aegis::start_with_file_limit(&[(backend.url(), 1)], "{}", 1024, hard);
    let addr = aegis.addr();
    let (ok, failed, completed) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    runtime().block_on(async {
        let until = Instant::now() + Duration::from_secs(4);
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (ok, failed, completed) = (ok.clone(), failed.clone(), completed.clone());
                tokio::spawn(async move {
                    let Ok(mut stream) = TcpStream::connect(addr).await else {
                        failed.fetch_add(1, Ordering::Relaxed);
                        return;
                    };
                    let mut done = 0;
                    // At least one request per connection; then keep going until the deadline.
                    while done == 0 || Instant::now() < until {
                        let answer =
                            tokio::time::timeout(Duration::from_secs(20), request(&mut stream));
                        match answer.await {
                            Ok(Ok(a)) if a.status == 200 => ok.fetch_add(1, Ordering::Relaxed),
                            _ => {
                                failed.fetch_add(1, Ordering::Relaxed);
                                return;
                            }
                        };
                        done += 1;
                    }
                    completed.fetch_add(1, Ordering::Relaxed);
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert_eq!(
        failed, 0,
        "{failed} failed requests or connections ({ok} ok)"
    );
    assert_eq!(completed.load(Ordering::Relaxed), CLIENTS as u64);
    assert!(ok >= CLIENTS as u64);
    breaker_closed_and_blameless(&aegis);
    let capacity = aegis.status()["capacity"].clone();
    assert_eq!(capacity["open_files_limit"], hard, "{capacity}");
    let raised = format!("open-file limit {hard} (raised from 1024");
    assert!(aegis.output().contains(&raised), "{}", aegis.output());
}

#[test]
fn beyond_max_connections_clients_wait_in_the_backlog_and_are_served_as_others_close() {
    let backend = FakeBackend::start("b").unwrap();
    let extra = r#"
server:
  max_connections: 20
"#;
    let aegis = Aegis::start_with_file_limit(&[(backend.url(), 1)], extra, 1024, 1024);
    assert!(aegis
        .output()
        .contains("only 20 client connections at once"));
    let addr = aegis.addr();
    let capacity = || aegis.status()["capacity"].clone();
    runtime().block_on(async {
        let mut held = Vec::new();
        for _ in 0..20 {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            assert_eq!(request(&mut stream).await.unwrap().status, 200);
            held.push(stream);
        }
        assert_eq!(capacity()["client_connections"], 20);
        // Ten more: the kernel completes their handshakes (the backlog), Aegis does not accept.
        let mut waiting = Vec::new();
        for _ in 0..10 {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: capacity.test\r\n\r\n")
                .await
                .unwrap();
            waiting.push(stream);
        }
        let mut byte = [0u8; 1];
        let early = tokio::time::timeout(Duration::from_millis(500), waiting[0].peek(&mut byte));
        assert!(
            early.await.is_err(),
            "a connection beyond the cap was answered"
        );
        assert_eq!(capacity()["client_connections"], 20);
        // Ten of the first clients leave: the waiting ones are accepted and served.
        held.truncate(10);
        for stream in &mut waiting {
            let answer = tokio::time::timeout(Duration::from_secs(10), async {
                let mut buf = vec![0u8; 4096];
                let n = stream.read(&mut buf).await?;
                Ok::<_, std::io::Error>(String::from_utf8_lossy(&buf[..n]).into_owned())
            });
            let text = answer.await.expect("served in time").unwrap();
            assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        }
    });
    breaker_closed_and_blameless(&aegis);
    let errors = &capacity()["local_resource_errors"];
    assert_eq!(errors["process_files"], 0, "{errors}");
}

#[test]
fn running_out_of_descriptors_answers_503_overloaded_and_blames_no_backend() {
    const CLIENTS: usize = 1100;
    raise_own_file_limit(4096);
    let backend = FakeBackend::start("b").unwrap();
    // A cap the limit cannot carry: Aegis warns, and its descriptors run out.
    let extra = r#"
server:
  max_connections: 2000
"#;
    let aegis = Aegis::start_with_file_limit(&[(backend.url(), 1)], extra, 1024, 1024);
    assert!(aegis
        .output()
        .contains("server.max_connections 2000 is more than"));
    let addr: SocketAddr = aegis.addr();
    let open_files =
        |pid: u32| std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    let pid = aegis.pid();
    let statuses = runtime().block_on(async {
        // Connect everyone first, so that client connections take every descriptor…
        let mut streams = Vec::new();
        for _ in 0..CLIENTS {
            streams.push(TcpStream::connect(addr).await.unwrap());
        }
        assert!(
            wait_until(Duration::from_secs(10), || open_files(pid) >= 1000),
            "aegis never filled its descriptors ({} open)",
            open_files(pid)
        );
        // …then every accepted client asks for a backend connection Aegis cannot open.
        let tasks: Vec<_> = streams
            .into_iter()
            .map(|mut stream| {
                tokio::spawn(async move {
                    let answer = tokio::time::timeout(Duration::from_secs(3), request(&mut stream));
                    match answer.await {
                        Ok(Ok(a)) => Some(a),
                        _ => None,
                    }
                })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap());
        }
        answers
    });
    let overloaded: Vec<&Answer> = statuses
        .iter()
        .flatten()
        .filter(|a| a.status == 503)
        .collect();
    assert!(!overloaded.is_empty(), "no 503 overloaded answer");
    for answer in statuses.iter().flatten() {
        assert!(
            answer.status == 200 || answer.status == 503,
            "{} {}",
            answer.head,
            answer.body
        );
    }
    let first = overloaded[0];
    assert_eq!(first.body, r#"{"error":"overloaded"}"#);
    assert!(first.head.contains("Retry-After: 1") || first.head.contains("retry-after: 1"));
    // The clients are gone: Aegis recovers on its own and serves again.
    assert!(
        wait_until(Duration::from_secs(15), || {
            let get = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
            common::http::raw(addr, get).is_ok_and(|r| r.status == 200)
        }),
        "aegis did not recover"
    );
    breaker_closed_and_blameless(&aegis);
    let status = aegis.status();
    let errors = &status["capacity"]["local_resource_errors"];
    assert!(errors["process_files"].as_u64() >= Some(1), "{errors}");
    assert!(status["totals"]["refusals"]["overloaded"].as_u64() >= Some(1));
    let metrics = aegis.admin_get("/metrics").text();
    assert!(
        metrics.contains("aegis_local_resource_errors_total{kind=\"process_files\"}"),
        "{metrics}"
    );
}
