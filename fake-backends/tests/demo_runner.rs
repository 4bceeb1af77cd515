//! The `aegis-dev demo` runner (`cargo demo`): a SIGTERM sent to the runner alone, as a process
//! manager or `kill` does, reaches Aegis too; nothing is left running and every port is free.
//!
//! Runs the real aegis binary built beside the runner (`cargo test --workspace` builds both), on
//! port 0, in front of backends on ephemeral ports given through the runner's `AEGIS_DEV_*`
//! overrides.

use fake_backends::{client, wait_until};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A port nobody listens on now. Only for the backends, which the runner itself starts on
/// the addresses it is given (`AEGIS_DEV_BACKENDS`), so they must be chosen before it starts;
/// Aegis and its admin listener bind port 0 and say which port they got.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("an ephemeral port")
}

/// The port of Aegis's listener 0 and of its admin listener, once both are logged bound (the
/// `listening on` lines, JSON).
fn bound_ports(log: &str) -> Option<(u16, u16)> {
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let port = |line: &serde_json::Value, key: &str| {
        line[key]
            .as_str()?
            .parse::<SocketAddr>()
            .ok()
            .map(|a| a.port())
    };
    let listener = lines
        .iter()
        .find(|l| l["listener"] == 0)
        .and_then(|l| port(l, "address"))?;
    let admin = lines.iter().find_map(|l| port(l, "admin"))?;
    Some((listener, admin))
}

/// The status of `GET /` on a fresh connection, if any answer came.
fn get_status(port: u16) -> Option<u16> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let request = b"GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n";
    client::raw(addr, request).ok().map(|r| r.status)
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
        "{} missing: build it first (cargo build --profile ci --bin aegis; \
         cargo test --workspace builds it)",
        aegis_bin.display()
    );
    let dir = std::env::temp_dir().join(format!("aegis-dev-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let backends = [free_port(), free_port(), free_port()];
    let urls: String = backends
        .iter()
        .map(|p| format!("  - url: http://127.0.0.1:{p}\n"))
        .collect();
    let config = dir.join("demo.yml");
    std::fs::write(
        &config,
        format!(
            r#"
server:
  address: 127.0.0.1
  port: 0
  shutdown_timeout: 5s
  pid_file: {d}/aegis.pid
  upgrade_sock: {d}/upgrade.sock
backends:
{urls}admin:
  address: 127.0.0.1:0
logging:
  format: json
tui:
  enabled: false
development:
  allow_loopback_backends: true
"#,
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
    let output = runner.dir.join("out.log");
    let mut ports = None;
    assert!(
        wait_until(Duration::from_secs(20), || {
            ports = bound_ports(&std::fs::read_to_string(&output).unwrap_or_default());
            ports.is_some()
        }),
        "aegis never logged its bound ports"
    );
    let (port, admin) = ports.expect("set by the wait above");
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
