//! Shared harness for the black-box tests: starts the real `aegis` binary on ephemeral ports with
//! a generated config, and talks to it over raw TCP.
#![allow(dead_code)]

pub mod h2;
pub mod http;
pub mod redis;
pub mod tls;

use serde_yaml::Value;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("an ephemeral port")
}

/// `127.0.0.1:port`.
pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Polls `f` until it is true or `timeout` passes; returns whether it became true.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Deep-merges `over` into `base` (mappings merge key by key; anything else replaces).
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// A running Aegis process.
pub struct Aegis {
    child: Child,
    pub port: u16,
    pub admin_port: u16,
    pub dir: PathBuf,
    pub config_path: PathBuf,
    stdout: PathBuf,
}

static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A fresh scratch directory for one test's files.
pub fn scratch_dir() -> PathBuf {
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("aegis-test-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A file holding `token` with `mode` (`admin.token_file`), in a fresh directory.
pub fn token_file(token: &str, mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let file = scratch_dir().join("admin.token");
    std::fs::write(&file, format!("{token}\n")).expect("write token");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).expect("chmod");
    file
}

/// The base test config: loopback only, fast health checks, a rate limit high enough not to
/// trigger, adaptive loop off, admin on its own port.
pub fn base_config(
    port: u16,
    admin_port: u16,
    backends: &[(String, u32)],
    dir: &std::path::Path,
) -> Value {
    let backends: Vec<String> = backends
        .iter()
        .map(|(url, w)| format!("  - url: \"{url}\"\n    weight: {w}\n"))
        .collect();
    let text = format!(
        "server:\n  address: 127.0.0.1\n  port: {port}\n  threads: 2\n  shutdown_timeout: 10s\n  pid_file: {dir}/aegis.pid\n  upgrade_sock: {dir}/upgrade.sock\nbackends:\n{backends}health_check:\n  interval: 100ms\n  timeout: 500ms\n  unhealthy_threshold: 2\n  healthy_threshold: 2\nrate_limit:\n  requests_per_second: 100000\n  burst: 100000\nadaptive:\n  enabled: false\n  max_rate: 200000\ncircuit_breaker:\n  failure_threshold: 1000\nadmin:\n  address: 127.0.0.1:{admin_port}\nlogging:\n  level: info\n  format: json\ntui:\n  enabled: false\ndevelopment:\n  allow_loopback_backends: true\n",
        dir = dir.display(),
        backends = backends.concat()
    );
    serde_yaml::from_str(&text).expect("base config is YAML")
}

impl Aegis {
    /// Starts Aegis in front of `backends` (url, weight) with `extra` YAML merged over the base
    /// config, and waits until it accepts connections.
    pub fn start(backends: &[(String, u32)], extra: &str) -> Aegis {
        Self::start_with(backends, extra, &[])
    }

    pub fn start_with(backends: &[(String, u32)], extra: &str, args: &[&str]) -> Aegis {
        Self::start_env(backends, extra, args, &[])
    }

    /// Like `start_with`, with extra environment variables for the process.
    pub fn start_env(
        backends: &[(String, u32)],
        extra: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Aegis {
        let aegis = Self::spawn_env(backends, extra, args, env);
        let addr = aegis.addr();
        let up = wait_until(Duration::from_secs(20), || TcpStream::connect(addr).is_ok());
        assert!(
            up,
            "aegis did not start listening; output:\n{}",
            aegis.output()
        );
        aegis
    }

    /// Starts Aegis without waiting for it.
    pub fn spawn(backends: &[(String, u32)], extra: &str, args: &[&str]) -> Aegis {
        Self::spawn_env(backends, extra, args, &[])
    }

    fn spawn_env(
        backends: &[(String, u32)],
        extra: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Aegis {
        let dir = scratch_dir();
        let (port, admin_port) = (free_port(), free_port());
        let mut config = base_config(port, admin_port, backends, &dir);
        if !extra.trim().is_empty() {
            // `{port}` in the extra YAML is the port the harness waits on (e.g. in `listeners`).
            let extra = extra.replace("{port}", &port.to_string());
            merge(
                &mut config,
                serde_yaml::from_str(&extra).expect("extra config is YAML"),
            );
        }
        let config_path = dir.join("aegis.yml");
        std::fs::write(&config_path, serde_yaml::to_string(&config).unwrap()).unwrap();
        Self::spawn_config(config_path, port, admin_port, args, env)
    }

    pub fn spawn_config(
        config_path: PathBuf,
        port: u16,
        admin_port: u16,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Aegis {
        let aegis = Command::new(env!("CARGO_BIN_EXE_aegis"));
        Self::spawn_command(aegis, config_path, port, admin_port, args, env)
    }

    /// Starts Aegis under `prlimit --nofile=SOFT:HARD` and waits until it accepts connections.
    pub fn start_with_file_limit(
        backends: &[(String, u32)],
        extra: &str,
        soft: u64,
        hard: u64,
    ) -> Aegis {
        let dir = scratch_dir();
        let (port, admin_port) = (free_port(), free_port());
        let mut config = base_config(port, admin_port, backends, &dir);
        merge(
            &mut config,
            serde_yaml::from_str(extra).expect("extra config is YAML"),
        );
        let config_path = dir.join("aegis.yml");
        std::fs::write(&config_path, serde_yaml::to_string(&config).unwrap()).unwrap();
        let mut prlimit = Command::new("prlimit");
        prlimit
            .arg(format!("--nofile={soft}:{hard}"))
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_aegis"));
        let aegis = Self::spawn_command(prlimit, config_path, port, admin_port, &[], &[]);
        let addr = aegis.addr();
        let up = wait_until(Duration::from_secs(20), || TcpStream::connect(addr).is_ok());
        assert!(up, "aegis did not start; output:\n{}", aegis.output());
        aegis
    }

    fn spawn_command(
        mut command: Command,
        config_path: PathBuf,
        port: u16,
        admin_port: u16,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Aegis {
        let dir = config_path.parent().unwrap().to_path_buf();
        let stdout = dir.join("stdout.log");
        let out = std::fs::File::create(&stdout).unwrap();
        let err = out.try_clone().unwrap();
        let child = command
            .arg("-c")
            .arg(&config_path)
            .arg("--headless")
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("aegis starts");
        Aegis {
            child,
            port,
            admin_port,
            dir,
            config_path,
            stdout,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn admin_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.admin_port))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process printed so far.
    pub fn output(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.stdout) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// `GET path` on a fresh connection.
    pub fn get(&self, path: &str) -> http::Response {
        http::get(self.addr(), path)
    }

    /// `GET path` on the admin listener.
    pub fn admin_get(&self, path: &str) -> http::Response {
        http::get(self.admin_addr(), path)
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Aegis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("aegis output ({}):\n{}", self.dir.display(), self.output());
        }
    }
}

/// Runs the aegis binary to completion with `args`, returning (status, stdout, stderr).
pub fn run_aegis(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_aegis"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("aegis runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A TCP connection to `addr` from the loopback source address `source` (Linux lets a socket
/// bind any 127.x.y.z).
pub fn connect_from(source: std::net::Ipv4Addr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.bind(&SocketAddr::from((source, 0)).into())?;
    socket.connect_timeout(&addr.into(), Duration::from_secs(5))?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// The resident set size of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

impl Aegis {
    /// The admin `/status` snapshot as JSON.
    pub fn status(&self) -> serde_json::Value {
        self.admin_get("/status").json()
    }

    /// The status of backend `index` in `/status`.
    pub fn backend_status(&self, index: usize) -> serde_json::Value {
        self.status()["backends"][index].clone()
    }
}
