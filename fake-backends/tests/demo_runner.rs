//! The `aegis-dev demo` runner (`cargo demo`): a SIGTERM sent to the runner alone, as a process
//! manager or `kill` does, reaches Aegis too; nothing is left running and every port is free.
//!
//! Runs the real aegis binary built beside the runner (`cargo test --workspace` builds both), on
//! ephemeral ports given through the runner's `AEGIS_DEV_*` overrides.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("an ephemeral port")
}

fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// The status of `GET /` on a fresh connection, if any answer came.
fn get_status(port: u16) -> Option<u16> {
    let mut stream = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.split_whitespace().nth(1)?.parse().ok()
}

/// The children of `pid` named `name`.
fn children_named(pid: u32, name: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            // pid (comm) state ppid ...
            let Some((comm, rest)) = stat.split_once(") ") else {
                return false;
            };
            comm.ends_with(&format!("({name}"))
                && rest.split_whitespace().nth(1) == Some(&pid.to_string())
        })
        .collect()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

/// The runner under test, killed (with its aegis) on drop if the test failed half way.
struct Runner {
    child: Child,
    aegis: Option<u32>,
    dir: PathBuf,
}

impl Drop for Runner {
    fn drop(&mut self) {
        if let Some(pid) = self.aegis {
            if alive(pid) {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let out = std::fs::read_to_string(self.dir.join("out.log")).unwrap_or_default();
            eprintln!("runner output:\n{out}");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn sigterm_to_the_runner_stops_aegis_and_frees_every_port() {
    let runner_bin = Path::new(env!("CARGO_BIN_EXE_aegis-dev"));
    let aegis_bin = runner_bin.with_file_name("aegis");
    assert!(
        aegis_bin.exists(),
        "{} missing: build it first (cargo build --release --bin aegis; \
         cargo test --workspace builds it)",
        aegis_bin.display()
    );
    let dir = std::env::temp_dir().join(format!("aegis-dev-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let (port, admin) = (free_port(), free_port());
    let backends = [free_port(), free_port(), free_port()];
    let urls: String = backends
        .iter()
        .map(|p| format!("  - url: http://127.0.0.1:{p}\n"))
        .collect();
    let config = dir.join("demo.yml");
    std::fs::write(
        &config,
        format!(
            "server:\n  address: 127.0.0.1\n  port: {port}\n  shutdown_timeout: 5s\n  \
             pid_file: {d}/aegis.pid\n  upgrade_sock: {d}/upgrade.sock\nbackends:\n{urls}\
             admin:\n  address: 127.0.0.1:{admin}\ntui:\n  enabled: false\n\
             development:\n  allow_loopback_backends: true\n",
            d = dir.display()
        ),
    )
    .expect("config written");
    let out = std::fs::File::create(dir.join("out.log")).expect("output file");
    let backend_list: Vec<String> = backends.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let child = Command::new(runner_bin)
        .args(["demo", "--", "--headless", "-c"])
        .arg(&config)
        .env("AEGIS_DEV_AEGIS", &aegis_bin)
        .env("AEGIS_DEV_BACKENDS", backend_list.join(","))
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("output file"))
        .stderr(out)
        .spawn()
        .expect("the runner starts");
    let mut runner = Runner {
        child,
        aegis: None,
        dir,
    };
    let runner_pid = runner.child.id();
    assert!(
        wait_until(Duration::from_secs(20), || get_status(port) == Some(200)),
        "the demo never served through aegis"
    );
    let aegis = children_named(runner_pid, "aegis");
    assert_eq!(aegis.len(), 1, "one aegis child of the runner: {aegis:?}");
    runner.aegis = Some(aegis[0]);

    // To the runner alone, not its process group: what `kill` or a process manager does.
    kill(Pid::from_raw(runner_pid as i32), Signal::SIGTERM).expect("runner signalled");
    let mut status = None;
    assert!(
        wait_until(Duration::from_secs(15), || {
            status = runner.child.try_wait().expect("runner waitable");
            status.is_some()
        }),
        "the runner did not exit after SIGTERM"
    );
    let status = status.expect("set by the wait above");
    assert_eq!(
        status.code(),
        Some(0),
        "the runner exits with aegis's status (0 after a drain): {status:?}"
    );
    assert!(!alive(aegis[0]), "aegis (pid {}) was orphaned", aegis[0]);
    for p in [port, admin].iter().chain(&backends) {
        assert!(
            TcpListener::bind(("127.0.0.1", *p)).is_ok(),
            "port {p} still held after the runner exited"
        );
    }
}
