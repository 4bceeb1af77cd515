//! Lifecycle and reliability under load (SPEC §8): daemon mode, graceful upgrade, drain, faults,
//! and many idle connections. Loopback only; every loop is bounded in count and time. The daemon
//! and load harness is in `common::daemon` and `common::load`.

mod common;

use common::daemon::{kill, pid_alive, read_pid, Daemon};
use common::http::{self, Connection};
use common::{load, rss_kib, wait_until, Aegis, NO_ACCESS_LOG};
use fake_backends::{FakeBackend, Mode};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn daemon_writes_its_pid_file_serves_and_stops_cleanly() {
    let backend = FakeBackend::start("b").unwrap();
    let daemon = Daemon::configure(&[(backend.url(), 1)], "");
    let mut launcher = daemon.launch(false);
    let status = launcher.wait().unwrap();
    assert!(status.success(), "the launcher exits 0 once detached");
    let pid = daemon.wait_pid();
    assert_ne!(pid, launcher.id(), "the daemon is a detached child");
    let resp = http::get(daemon.addr(), "/");
    assert_eq!(resp.text(), "b");
    // The access log is written while the daemon runs, not only when it stops: its flusher runs
    // in the daemon itself (threads do not survive the fork that detaches it).
    let id = resp.header("x-request-id").unwrap().to_string();
    assert!(
        wait_until(Duration::from_secs(3), || daemon.log().contains(&id)),
        "access line not written while the daemon runs:\n{}",
        daemon.log()
    );
    kill(pid, "TERM");
    assert!(
        wait_until(Duration::from_secs(10), || !pid_alive(pid)),
        "daemon did not stop"
    );
    assert!(!daemon.pid_file.exists(), "pid file left behind");
    assert!(daemon.log().contains("Aegis shutdown complete"));
}

/// Checks that a running daemon's fds 0–2 point to /dev/null or its log file, that it serves and
/// logs there, and that it stops on SIGTERM.
fn assert_detached_and_logging(daemon: &Daemon) {
    let pid = daemon.wait_pid();
    // Bound: the `listening on` line reached the log file.
    let addr = daemon.addr();
    let log = std::fs::canonicalize(&daemon.log).expect("the log file exists");
    for fd in 0..=2 {
        let target = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap();
        assert!(
            target == Path::new("/dev/null") || target == log,
            "daemon fd {fd} -> {}",
            target.display()
        );
    }
    let resp = http::get(addr, "/");
    assert_eq!(resp.status, 200);
    let id = resp.header("x-request-id").unwrap().to_string();
    assert!(
        wait_until(Duration::from_secs(3), || daemon.log().contains(&id)),
        "access line not in the log file:\n{}",
        daemon.log()
    );
    kill(pid, "TERM");
    assert!(wait_until(Duration::from_secs(10), || !pid_alive(pid)));
    assert!(daemon.log().contains("Aegis shutdown complete"));
}

#[test]
fn a_daemon_lets_go_of_its_callers_output() {
    let backend = FakeBackend::start("b").unwrap();
    let daemon = Daemon::configure(&[(backend.url(), 1)], "");
    let launched = daemon.launch_captured(&daemon.dir);
    let output = launched
        .recv_timeout(Duration::from_secs(10))
        .expect("the launcher's captured output closes at once: the daemon let go of it");
    assert!(output.status.success(), "{output:?}");
    assert!(
        output.stdout.is_empty(),
        "nothing for the caller's stdout: {output:?}"
    );
    assert_detached_and_logging(&daemon);
}

#[test]
fn a_daemon_without_logging_file_logs_to_aegis_log_in_its_start_directory() {
    let backend = FakeBackend::start("b").unwrap();
    let daemon = Daemon::configure(&[(backend.url(), 1)], "");
    let mut config: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&daemon.config).unwrap()).unwrap();
    config["logging"]
        .as_mapping_mut()
        .unwrap()
        .remove("file")
        .expect("the test config names a log file");
    std::fs::write(&daemon.config, serde_yaml::to_string(&config).unwrap()).unwrap();
    // `daemon.log` is `aegis.log` in `daemon.dir`, the launcher's working directory here.
    let launched = daemon.launch_captured(&daemon.dir);
    let output = launched
        .recv_timeout(Duration::from_secs(10))
        .expect("the launcher's captured output closes at once");
    assert!(output.status.success(), "{output:?}");
    assert_detached_and_logging(&daemon);
}

#[test]
fn graceful_upgrade_under_load_fails_no_request() {
    let backend = FakeBackend::start("b").unwrap();
    let daemon = Daemon::configure(&[(backend.url(), 1)], "");
    assert!(daemon.launch(false).wait().unwrap().success());
    let old = daemon.wait_pid();
    let addr = daemon.addr();

    let stop = Arc::new(AtomicBool::new(false));
    let handles = load::start(addr, 8, stop.clone());
    assert!(wait_until(Duration::from_secs(5), || backend
        .request_count()
        > 200));

    let mut new_launcher = daemon.launch(true);
    // The new process waits on the upgrade socket for the listeners.
    let sock = daemon.dir.join("upgrade.sock");
    assert!(wait_until(Duration::from_secs(10), || sock.exists()));
    kill(old, "QUIT");
    assert!(new_launcher.wait().unwrap().success());
    assert!(
        wait_until(Duration::from_secs(20), || !pid_alive(old)),
        "the old process did not exit"
    );
    let new = read_pid(&daemon.pid_file).unwrap();
    assert_ne!(new, old);
    let served_before = backend.request_count();
    assert!(wait_until(Duration::from_secs(5), || backend
        .request_count()
        > served_before + 200));
    stop.store(true, Ordering::Relaxed);
    let tally = load::collect(handles);
    println!(
        "upgrade under load: {} requests served, {} failed",
        tally.ok, tally.failed
    );
    assert_eq!(
        tally.failed, 0,
        "failed requests during the upgrade: {:?}",
        tally.errors
    );
    assert!(pid_alive(new));
    // The new process took the old one's socket over: the same port, though it is port 0 in
    // the config, logged by each process.
    let log = daemon.log();
    assert_eq!(
        log.matches("\"listener\":0").count(),
        2,
        "one bound line per process: {log}"
    );
    assert_eq!(daemon.addr(), addr);
    assert_eq!(http::get(addr, "/").status, 200);
    assert!(log.contains("listener sockets sent"), "{log}");
    assert!(
        log.contains("Aegis shutdown complete"),
        "the old process did not drain: {log}"
    );
}

#[test]
fn sigterm_drains_in_flight_requests_and_refuses_new_connections() {
    let backend = FakeBackend::start("b").unwrap();
    backend.set_latency(Duration::from_millis(1500));
    let mut aegis = Aegis::start(
        &[(backend.url(), 1)],
        r#"
server:
  shutdown_timeout: 8s
"#,
    );
    let addr = aegis.addr();
    let slow: Vec<_> = (0..6)
        .map(|_| std::thread::spawn(move || http::get(addr, "/")))
        .collect();
    assert!(wait_until(Duration::from_secs(5), || backend.in_flight() == 6));
    // /healthz says 503 while draining; new connections are refused.
    let signalled = aegis.terminate_and_wait_draining();
    assert!(wait_until(Duration::from_secs(2), || TcpStream::connect(
        addr
    )
    .is_err()));
    for request in slow {
        let resp = request.join().unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.text(), "b");
    }
    let status = aegis
        .wait_exit(Duration::from_secs(10))
        .expect("aegis exits");
    assert!(status.success(), "{status:?}");
    assert!(
        signalled.elapsed() < Duration::from_secs(8),
        "took {:?}",
        signalled.elapsed()
    );
    let log = aegis.output();
    assert!(log.contains("Aegis shutdown complete"));
    assert!(
        log.contains("health checks stopped") && log.contains("service 'BG sampler' exited"),
        "{log}"
    );
}

#[test]
fn shutdown_timeout_bounds_the_drain() {
    let backend = FakeBackend::start("b").unwrap();
    backend.set_mode(Mode::Hang);
    let mut aegis = Aegis::start(
        &[(backend.url(), 1)],
        r#"
server:
  shutdown_timeout: 1s
upstream:
  response_header_timeout: 60s
"#,
    );
    let addr = aegis.addr();
    let _stuck = std::thread::spawn(move || http::raw(addr, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"));
    assert!(wait_until(Duration::from_secs(5), || backend
        .request_count()
        == 1));
    let signalled = Instant::now();
    aegis.signal("INT");
    let status = aegis
        .wait_exit(Duration::from_secs(10))
        .expect("aegis exits");
    assert!(status.success());
    let took = signalled.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "took {took:?}"
    );
    assert!(aegis.output().contains("still in flight"));
}

#[test]
fn killing_a_backend_under_load_costs_at_most_the_requests_in_flight() {
    let backends: Vec<FakeBackend> = ["a", "b", "c"]
        .iter()
        .map(|n| FakeBackend::start(n).unwrap())
        .collect();
    let urls: Vec<(String, u32)> = backends.iter().map(|b| (b.url(), 1)).collect();
    let aegis = Aegis::start(
        &urls,
        r#"
health_check:
  interval: 200ms
  unhealthy_threshold: 2
circuit_breaker:
  failure_threshold: 3
  open_timeout: 30s
"#,
    );
    let clients = 6;
    let stop = Arc::new(AtomicBool::new(false));
    let handles = load::start(aegis.addr(), clients, stop.clone());
    assert!(wait_until(Duration::from_secs(5), || backends[2]
        .request_count()
        > 100));
    backends[2].set_refuse_connections(true);
    let served = AtomicU64::new(backends[0].request_count() as u64);
    assert!(wait_until(
        Duration::from_secs(5),
        || backends[0].request_count() as u64 > served.load(Ordering::Relaxed) + 300
    ));
    stop.store(true, Ordering::Relaxed);
    let tally = load::collect(handles);
    println!("backend kill under load: {tally:?}");
    // Bound: only requests already sent to the killed backend can fail (at most one per client);
    // retries absorb refused connects and the breaker/health checks take it out.
    assert!(tally.failed <= clients as u64, "{tally:?}");
}

#[test]
fn a_hung_backend_costs_a_504_within_the_header_timeout() {
    let backend = FakeBackend::start("hung").unwrap();
    backend.set_mode(Mode::Hang);
    let aegis = Aegis::start(
        &[(backend.url(), 1)],
        r#"
upstream:
  response_header_timeout: 1s
"#,
    );
    let started = Instant::now();
    let resp = aegis.get("/");
    let took = started.elapsed();
    assert_eq!(resp.status, 504);
    assert_eq!(resp.json(), serde_json::json!({"error": "gateway timeout"}));
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "took {took:?}"
    );
    assert!(
        aegis.output().contains("failed"),
        "backend failure not logged"
    );
}

#[test]
fn a_backend_reset_mid_body_gives_a_broken_response_not_a_hang() {
    let backend = FakeBackend::start("reset").unwrap();
    backend.set_mode(Mode::ResetMidBody);
    let aegis = Aegis::start(&[(backend.url(), 1)], "");
    let started = Instant::now();
    let mut stream = TcpStream::connect(aegis.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut received = Vec::new();
    let _ = stream.read_to_end(&mut received);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "client hung for {took:?}");
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 200"), "{text:.200}");
    let body_len = received.len() - text.find("\r\n\r\n").unwrap() - 4;
    assert!(
        body_len < 100_000,
        "a reset response must not look complete"
    );
    // Aegis still serves afterwards.
    backend.set_mode(Mode::Normal);
    assert_eq!(aegis.get("/").status, 200);
}

#[test]
fn ten_thousand_idle_keepalive_connections_are_held_cheaply() {
    let backend = FakeBackend::start("b").unwrap();
    // The default connection cap counts two descriptors per client (one upstream), which a
    // hard open-file limit of 20,000 puts just under 10,000; idle clients need only one.
    let extra = r#"
server:
  max_connections: 10100
"#;
    let aegis = Aegis::start_env(&[(backend.url(), 1)], extra, &[], NO_ACCESS_LOG);
    let before = rss_kib(aegis.pid());
    let started = Instant::now();
    let mut idle = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        let mut conn = Connection::open(aegis.addr()).expect("connect");
        assert_eq!(conn.get("/").unwrap().status, 200);
        idle.push(conn);
    }
    let opened = started.elapsed();
    let held = rss_kib(aegis.pid());
    let fresh = Instant::now();
    let resp = aegis.get("/");
    let answer = fresh.elapsed();
    let per_connection = held.saturating_sub(before) as f64 / 10_000.0;
    println!(
        "10,000 idle keep-alive connections: RSS {before} KiB -> {held} KiB ({per_connection:.1} KiB per connection), opened in {opened:?}, fresh request answered in {answer:?}"
    );
    assert_eq!(resp.status, 200);
    assert!(
        answer < Duration::from_secs(1),
        "fresh client waited {answer:?}"
    );
    // Pingora's per-connection state plus Aegis's 4 KiB read buffer: about 17 KiB measured
    // (docs/performance.md); the bound leaves room for allocator noise.
    assert!(
        per_connection < 32.0,
        "{per_connection:.1} KiB per idle connection"
    );
    // The held connections are still usable.
    assert_eq!(idle[0].get("/").unwrap().status, 200);
    assert_eq!(idle[9_999].get("/").unwrap().status, 200);
}
