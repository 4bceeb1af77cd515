//! HTTP/2 flood defences (SPEC §11.2), black-box: a flood client writes raw frames on one
//! connection while a well-behaved client (the `h2` crate) keeps asking on another. Each flood
//! must end the attacker's connection with GOAWAY (or a close) and cost the other client
//! nothing. Loopback only, bounded in frames and time.

mod common;

use common::h2::{self as raw, frame, request_block, Client, Raw};
use common::Aegis;
use fake_backends::FakeBackend;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The test config with `limit` control frames per second.
fn config(limit: u32) -> String {
    format!(
        r#"
server:
  allowed_hosts: [localhost]
  write_timeout: 1s
listeners:
  - address: 127.0.0.1:{{port}}
    h2c: true
http2:
  max_control_frames_per_second: {limit}
"#
    )
}

/// A well-behaved client asking in a loop on its own connection until stopped.
struct Bystander {
    stop: Arc<AtomicBool>,
    served: Arc<AtomicUsize>,
    thread: std::thread::JoinHandle<Vec<String>>,
}

impl Bystander {
    fn start(aegis: &Aegis) -> Bystander {
        let mut client = Client::connect(aegis.addr()).expect("the bystander connects");
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let (stop2, served2) = (stop.clone(), served.clone());
        let thread = std::thread::spawn(move || {
            let mut failures = Vec::new();
            while !stop2.load(Ordering::Relaxed) {
                match client.get("/bystander") {
                    Ok(resp) if resp.status == 200 => {
                        served2.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(resp) => failures.push(format!("status {}", resp.status)),
                    Err(e) => failures.push(e.to_string()),
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            failures
        });
        // Served once before the attack starts.
        assert!(common::wait_until(Duration::from_secs(5), || served
            .load(Ordering::Relaxed)
            > 0));
        Bystander {
            stop,
            served,
            thread,
        }
    }

    /// Stops the client; it must have been served throughout.
    fn finish(self) {
        let before = self.served.load(Ordering::Relaxed);
        assert!(common::wait_until(Duration::from_secs(5), || self
            .served
            .load(Ordering::Relaxed)
            > before + 3));
        self.stop.store(true, Ordering::Relaxed);
        let failures = self.thread.join().expect("the bystander thread");
        assert!(failures.is_empty(), "the bystander was hurt: {failures:?}");
    }
}

/// What a flood came to.
struct Outcome {
    /// What the attacker's connection received.
    seen: raw::Seen,
    /// Aegis's log.
    log: String,
    /// Complete requests for `/flood` the backend received.
    forwarded: usize,
}

/// Runs `attack` (frames, written on their own thread until the server stops taking them)
/// against a fresh Aegis while a bystander is served.
fn flood(settings: &[(u16, u32)], attack: Vec<Vec<u8>>) -> Outcome {
    flood_paced(&config(100), settings, attack, 64, Duration::ZERO)
}

/// [`flood`], writing `per_write` frames at a time with `pause` between writes.
fn flood_paced(
    config: &str,
    settings: &[(u16, u32)],
    attack: Vec<Vec<u8>>,
    per_write: usize,
    pause: Duration,
) -> Outcome {
    let backend = FakeBackend::start("b").unwrap();
    let aegis = Aegis::start(&[(backend.url(), 1)], config);
    let bystander = Bystander::start(&aegis);
    let mut conn = Raw::connect(aegis.addr(), settings);
    let mut writer = conn.stream.try_clone().unwrap();
    let writing = std::thread::spawn(move || {
        for chunk in attack.chunks(per_write) {
            if std::io::Write::write_all(&mut writer, &chunk.concat()).is_err() {
                return;
            }
            std::thread::sleep(pause);
        }
    });
    let seen = conn.read_until(Duration::from_secs(10), |_| false);
    drop(conn);
    let _ = writing.join();
    bystander.finish();
    let forwarded = backend
        .requests()
        .iter()
        .filter(|r| r.target == "/flood")
        .count();
    Outcome {
        seen,
        log: aegis.output(),
        forwarded,
    }
}

impl Outcome {
    /// The connection got GOAWAY ENHANCE_YOUR_CALM, and Aegis's log says why.
    fn assert_ended(&self, reason: &str) {
        assert_eq!(
            self.seen.goaway,
            Some(raw::ENHANCE_YOUR_CALM),
            "{:?}\n{}",
            self.seen,
            self.log
        );
        let line = format!("HTTP/2 client 127.0.x.x: {reason}");
        assert!(self.log.contains(&line), "no {line:?} in\n{}", self.log);
    }
}

fn get(stream: u32) -> Vec<u8> {
    frame(
        raw::HEADERS,
        raw::END_HEADERS | raw::END_STREAM,
        stream,
        &request_block("GET", "/flood", &[]),
    )
}

/// CVE-2023-44487: open a stream and cancel it at once, thousands of times (HEADERS and
/// RST_STREAM as separate frames).
fn rapid_resets() -> Vec<Vec<u8>> {
    (0..5000u32)
        .flat_map(|i| {
            let id = 2 * i + 1;
            [get(id), frame(raw::RST_STREAM, 0, id, &8u32.to_be_bytes())]
        })
        .collect()
}

#[test]
fn rapid_reset_in_bursts_ends_the_connection() {
    // Streams reset before Aegis accepted them: the `h2` crate's pending-reset limit.
    let outcome = flood(&[], rapid_resets());
    outcome.assert_ended("over an h2 codec limit");
    assert!(outcome.forwarded < 100, "{}", outcome.forwarded);
}

#[test]
fn paced_rapid_reset_ends_the_connection() {
    // Streams reset after Aegis accepted them (5 ms later), about 100 a second against a limit
    // of 20 control frames a second: Aegis's frame counter.
    let outcome = flood_paced(
        &config(20),
        &[],
        rapid_resets(),
        1,
        Duration::from_millis(5),
    );
    outcome.assert_ended("RST_STREAM (rapid reset) flood");
    // The backend saw a bounded trickle, not the flood.
    assert!(outcome.forwarded < 200, "{}", outcome.forwarded);
}

#[test]
fn continuation_flood_ends_the_connection() {
    // CVE-2024-27316 style: a header block that never ends.
    let mut attack = vec![frame(
        raw::HEADERS,
        raw::END_STREAM,
        1,
        &request_block("GET", "/flood", &[]),
    )];
    let field = raw::header_block(&[(b"x-padding", &[b'a'; 100])]);
    attack.extend((0..50_000).map(|_| frame(raw::CONTINUATION, 0, 1, &field)));
    let outcome = flood(&[], attack);
    // The `h2` crate's defence: a header block may use only so many CONTINUATION frames.
    outcome.assert_ended("over an h2 codec limit");
    assert_eq!(outcome.forwarded, 0);
}

#[test]
fn ping_flood_ends_the_connection() {
    let attack = (0..50_000u64)
        .map(|i| frame(raw::PING, 0, 0, &i.to_be_bytes()))
        .collect();
    flood(&[], attack).assert_ended("PING flood");
}

#[test]
fn settings_flood_ends_the_connection() {
    // Each SETTINGS must be acknowledged; a flood of them is work on demand.
    let attack = (0..50_000u32)
        .map(|i| {
            frame(
                raw::SETTINGS,
                0,
                0,
                &[&[0, 3][..], &(100 + i % 2).to_be_bytes()].concat(),
            )
        })
        .collect();
    flood(&[], attack).assert_ended("SETTINGS flood");
}

#[test]
fn a_zero_window_stall_ends_the_connection() {
    // SETTINGS_INITIAL_WINDOW_SIZE 0 and never a WINDOW_UPDATE: responses can never be sent.
    // The stream times out after write_timeout (1s) and the connection goes with it.
    let attack = vec![get(1), get(3)];
    let started = std::time::Instant::now();
    flood(&[(0x4, 0)], attack).assert_ended("response stalled");
    assert!(started.elapsed() < Duration::from_secs(8));
}
