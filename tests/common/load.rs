//! Keep-alive load loops for the tests that change a running Aegis under traffic (a graceful
//! upgrade, a backend killed, a reload): each loop counts its answers until told to stop. Loopback only,
//! bounded in time.

use super::http::read_response;
use super::http::{Connection, Response};
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest a load loop runs, stopped or not.
const MAX_RUN: Duration = Duration::from_secs(60);

/// A keep-alive client that, like every HTTP client, retries an idempotent request once on a
/// fresh connection when a *reused* connection turns out to be closed before any response byte
/// (RFC 9112 §9.3.1): that is how keep-alive connections end, not a failed request.
pub struct LoadClient {
    addr: SocketAddr,
    conn: Option<BufReader<TcpStream>>,
}

impl LoadClient {
    pub fn new(addr: SocketAddr) -> LoadClient {
        LoadClient { addr, conn: None }
    }

    /// `GET /`: the status, or what went wrong.
    pub fn request(&mut self) -> Result<u16, String> {
        for attempt in 0..2 {
            let reused = self.conn.is_some();
            if self.conn.is_none() {
                let stream = TcpStream::connect(self.addr).map_err(|e| format!("connect: {e}"))?;
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .map_err(|e| e.to_string())?;
                self.conn = Some(BufReader::new(stream));
            }
            let conn = self.conn.as_mut().expect("opened above");
            let sent = conn
                .get_mut()
                .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
            let response = sent
                .map_err(|e| e.to_string())
                .and_then(|_| read_response(conn, false).map_err(|e| e.to_string()));
            match response {
                Ok(response) => {
                    if response
                        .header("connection")
                        .is_some_and(|c| c.eq_ignore_ascii_case("close"))
                    {
                        self.conn = None;
                    }
                    return Ok(response.status);
                }
                Err(e) => {
                    self.conn = None;
                    if !reused || attempt == 1 {
                        return Err(e);
                    }
                }
            }
        }
        unreachable!("the second attempt returns")
    }
}

/// What a load loop saw: answers 200, other answers and errors, and what went wrong.
#[derive(Debug, Default)]
pub struct Tally {
    pub ok: u64,
    pub failed: u64,
    pub errors: Vec<String>,
}

/// Starts `clients` load loops against `addr`, each until `stop` (or [`MAX_RUN`]).
pub fn start(addr: SocketAddr, clients: usize, stop: Arc<AtomicBool>) -> Vec<JoinHandle<Tally>> {
    (0..clients)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut client = LoadClient::new(addr);
                let mut tally = Tally::default();
                let deadline = Instant::now() + MAX_RUN;
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    match client.request() {
                        Ok(200) => tally.ok += 1,
                        Ok(status) => {
                            tally.failed += 1;
                            tally.errors.push(format!("status {status}"));
                        }
                        Err(e) => {
                            tally.failed += 1;
                            tally.errors.push(e);
                        }
                    }
                }
                tally
            })
        })
        .collect()
}

/// Joins the loops and adds up what they saw.
pub fn collect(handles: Vec<JoinHandle<Tally>>) -> Tally {
    handles
        .into_iter()
        .map(|h| h.join().expect("a load loop panicked"))
        .fold(Tally::default(), |mut all, one| {
            all.ok += one.ok;
            all.failed += one.failed;
            all.errors.extend(one.errors);
            all
        })
}

/// Keep-alive clients sending `GET /` to each host until stopped, counting what did not come
/// back 200 from that host's backend (a reload under traffic: nothing may fail).
pub struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    /// One client per `(host, the backend name that must answer, or "*" for any)`.
    pub fn start(addr: SocketAddr, targets: &[(&str, &str)]) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let threads = targets
            .iter()
            .map(|(host, expected)| {
                let (stop, sent, failures) = (stop.clone(), sent.clone(), failures.clone());
                let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
                let expected = expected.to_string();
                std::thread::spawn(move || {
                    let mut conn = Connection::open(addr).expect("connects");
                    let deadline = Instant::now() + MAX_RUN;
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        let failure = match conn.exchange(request.as_bytes()) {
                            Ok(resp)
                                if resp.status == 200
                                    && (expected == "*" || backend(&resp) == expected) =>
                            {
                                None
                            }
                            Ok(resp) => Some(format!("{} {}", backend(&resp), resp.text())),
                            Err(e) => {
                                conn = Connection::open(addr).expect("reconnects");
                                Some(format!("connection: {e}"))
                            }
                        };
                        sent.fetch_add(1, Ordering::Relaxed);
                        if let Some(failure) = failure {
                            failures.lock().unwrap().push(failure);
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            sent,
            failures,
            threads,
        }
    }

    /// Waits until `n` more requests have been answered.
    pub fn wait_for(&self, n: u64) {
        let target = self.sent.load(Ordering::Relaxed) + n;
        assert!(
            super::wait_until(Duration::from_secs(30), || self
                .sent
                .load(Ordering::Relaxed)
                >= target),
            "the load stalled"
        );
    }

    /// Stops the clients; returns (requests sent, failures).
    pub fn stop(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            thread.join().expect("a load thread");
        }
        let failures = self.failures.lock().unwrap().clone();
        (self.sent.load(Ordering::Relaxed), failures)
    }
}

/// Which backend answered (`X-Backend`), or the status when Aegis answered itself.
fn backend(resp: &Response) -> String {
    resp.header("x-backend")
        .map_or_else(|| resp.status.to_string(), str::to_string)
}
