//! A running `aegis` process for a test: its config in a scratch directory, its output in a file,
//! and its sockets read back from the log once bound (see `bound`).

use super::bound::{bound_in, connectable, Bound};
use super::{config, http, scratch_dir, wait_until};
use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// The environment for a test under heavy load: no access line per request (the startup lines
/// the harness reads stay). `logging.level: warn` would hide those too.
pub const NO_ACCESS_LOG: &[(&str, &str)] = &[("RUST_LOG", "info,aegis::access=off")];

/// How long a starting Aegis may take to bind every socket (generous: release builds of the
/// whole suite run side by side on two cores).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running Aegis process, killed on drop (its output printed if the test failed).
pub struct Aegis {
    child: Child,
    /// The port of the first listener (`listeners[0]`, or `server.port`), as bound.
    pub port: u16,
    /// The port of the admin listener, as bound (0 while unknown or disabled).
    pub admin_port: u16,
    /// Every listener's address as bound, in `listeners[]` order (an unspecified IP such as
    /// `0.0.0.0` shown as loopback, ready to connect to).
    pub listeners: Vec<SocketAddr>,
    admin: Option<SocketAddr>,
    pub dir: PathBuf,
    pub config_path: PathBuf,
    stdout: PathBuf,
    log_file: Option<PathBuf>,
    /// Sockets the config opens: listeners, and whether the admin listener is one of them.
    expected: (usize, bool),
}

impl Aegis {
    /// Starts Aegis in front of `backends` (url, weight) with `extra` YAML merged over the base
    /// config, and waits until every listener and the admin listener are bound.
    pub fn start(backends: &[(String, u32)], extra: &str) -> Aegis {
        Self::start_env(backends, extra, &[], &[])
    }

    /// Like `start`, with extra command-line arguments.
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
        let mut aegis = Self::spawn_env(backends, extra, args, env);
        aegis.wait_bound();
        aegis
    }

    /// Starts Aegis without waiting for it: the ports are known after [`Aegis::wait_bound`].
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
        let config = config::with_extra(backends, extra, &dir);
        let config_path = config::write(&config, &dir);
        let command = Command::new(env!("CARGO_BIN_EXE_aegis"));
        Self::spawn_command(command, &config, config_path, args, env)
    }

    /// Starts Aegis with a config file of the test's own (in a directory of its own: the output
    /// file goes beside it), without waiting.
    pub fn spawn_config(config_path: PathBuf, args: &[&str], env: &[(&str, &str)]) -> Aegis {
        let text = std::fs::read_to_string(&config_path).expect("config readable");
        let config = serde_yaml::from_str(&text).expect("config is YAML");
        let command = Command::new(env!("CARGO_BIN_EXE_aegis"));
        Self::spawn_command(command, &config, config_path, args, env)
    }

    /// Starts Aegis under `prlimit --nofile=SOFT:HARD` and waits until it is bound.
    pub fn start_with_file_limit(
        backends: &[(String, u32)],
        extra: &str,
        soft: u64,
        hard: u64,
    ) -> Aegis {
        let dir = scratch_dir();
        let config = config::with_extra(backends, extra, &dir);
        let mut prlimit = Command::new("prlimit");
        prlimit
            .arg(format!("--nofile={soft}:{hard}"))
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_aegis"));
        let config_path = config::write(&config, &dir);
        let mut aegis = Self::spawn_command(prlimit, &config, config_path, &[], &[]);
        aegis.wait_bound();
        aegis
    }

    fn spawn_command(
        mut command: Command,
        config: &serde_yaml::Value,
        config_path: PathBuf,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Aegis {
        http::install_checks();
        let dir = config_path
            .parent()
            .expect("a config directory")
            .to_path_buf();
        let stdout = dir.join("stdout.log");
        let out = std::fs::File::create(&stdout).expect("output file");
        let err = out.try_clone().expect("output file");
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
            port: 0,
            admin_port: 0,
            listeners: Vec::new(),
            admin: None,
            dir,
            config_path,
            stdout,
            log_file: config::log_file(config),
            expected: config::sockets(config),
        }
    }

    /// Waits until the log reports every socket of the config bound, and records their
    /// addresses; panics with the output if the process exits or times out first.
    pub fn wait_bound(&mut self) {
        let (listeners, admin) = self.expected;
        let mut bound = Bound::default();
        let mut exited = None;
        let done = wait_until(START_TIMEOUT, || {
            bound = bound_in(&self.output());
            exited = self.child.try_wait().ok().flatten();
            bound.complete(listeners, admin) || exited.is_some()
        });
        assert!(
            done && exited.is_none(),
            "aegis did not bind its sockets ({}); output:\n{}",
            exited.map_or("timed out".to_string(), |s| format!("exited: {s}")),
            self.output()
        );
        self.listeners = (0..listeners)
            .map(|i| connectable(bound.listeners[&i]))
            .collect();
        self.port = self.listeners[0].port();
        self.admin = bound.admin.map(connectable);
        self.admin_port = self.admin.map_or(0, |a| a.port());
    }

    /// The first listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.listener(0)
    }

    /// Listener `index`'s bound address (in `listeners[]` order).
    pub fn listener(&self, index: usize) -> SocketAddr {
        *self
            .listeners
            .get(index)
            .unwrap_or_else(|| panic!("listener {index} not bound (started with wait_bound?)"))
    }

    /// The admin listener's bound address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.expect("the admin listener is bound")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process printed so far, then what it wrote to `logging.file`, if set.
    pub fn output(&self) -> String {
        let mut text = String::new();
        for path in std::iter::once(&self.stdout).chain(&self.log_file) {
            if let Ok(mut file) = std::fs::File::open(path) {
                let _ = file.read_to_string(&mut text);
            }
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

    /// The admin `/status` snapshot as JSON.
    pub fn status(&self) -> serde_json::Value {
        self.admin_get("/status").json()
    }

    /// The status of backend `index` in `/status`.
    pub fn backend_status(&self, index: usize) -> serde_json::Value {
        self.status()["backends"][index].clone()
    }

    /// Sends `signal` (`TERM`, `HUP`, …) to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Sends `SIGHUP` (reload, §12.1), then waits for `/status` to report the reload; returns
    /// its `last_reload`.
    pub fn sighup(&self) -> serde_json::Value {
        let before = self.status()["config"]["reloads"].as_u64().unwrap();
        self.signal("HUP");
        let mut last = serde_json::Value::Null;
        let reported = wait_until(Duration::from_secs(20), || {
            let status = self.status();
            last = status["config"]["last_reload"].clone();
            status["config"]["reloads"].as_u64().unwrap() > before
        });
        assert!(
            reported,
            "no reload reported; output:
{}",
            self.output()
        );
        last
    }

    /// Sends SIGTERM and waits until `/healthz` says 503 (draining); returns when the signal was
    /// sent.
    pub fn terminate_and_wait_draining(&self) -> std::time::Instant {
        let signalled = std::time::Instant::now();
        self.signal("TERM");
        assert!(
            wait_until(Duration::from_secs(2), || self.admin_get("/healthz").status
                == 503),
            "/healthz does not say draining after SIGTERM"
        );
        signalled
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut status = None;
        wait_until(timeout, || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        });
        status
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
