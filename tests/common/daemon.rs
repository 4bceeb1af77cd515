//! A daemonized Aegis (`aegis -d`, SPEC §8) for the lifecycle tests: its config, pid file and log
//! file in a scratch directory, its sockets read back from the log file once bound; killed on
//! drop if still running (the log printed if the test failed).

use super::bound::{bound_in, connectable};
use super::{config, scratch_dir, wait_until};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

/// How long a daemon may take to write its pid file or bind its sockets.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Whether process `pid` exists and is not a zombie.
pub fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

/// Sends `signal` (`TERM`, `QUIT`, …) to `pid`, ignoring a process already gone.
pub fn kill(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status();
}

/// The pid in a pid file, if it holds one.
pub fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// A daemon's files; the daemon itself runs once launched.
pub struct Daemon {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub pid_file: PathBuf,
    pub log: PathBuf,
}

impl Daemon {
    /// Writes the base test config (port 0, `logging.file` in the scratch directory) in front of
    /// `backends`, with `extra` YAML merged over it.
    pub fn configure(backends: &[(String, u32)], extra: &str) -> Daemon {
        super::http::install_checks();
        let dir = scratch_dir();
        let log = dir.join("aegis.log");
        let mut settings = config::with_extra(backends, extra, &dir);
        settings["logging"]["file"] = log.display().to_string().into();
        let config = config::write(&settings, &dir);
        Daemon {
            pid_file: dir.join("aegis.pid"),
            config,
            log,
            dir,
        }
    }

    /// Runs `aegis -d [-u] -c CONFIG`; returns the launcher (which exits once daemonized).
    pub fn launch(&self, upgrade: bool) -> Child {
        let mut command = Command::new(env!("CARGO_BIN_EXE_aegis"));
        command.arg("-d").arg("-c").arg(&self.config);
        if upgrade {
            command.arg("-u");
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("aegis starts")
    }

    /// Runs `aegis -d -c CONFIG` from `cwd` with its output captured, as `aegis -d | cat`, `ssh`
    /// or a CI step do; the output arrives once the captured pipes close (that is, once no
    /// process holds them).
    pub fn launch_captured(&self, cwd: &Path) -> Receiver<Output> {
        let child = Command::new(env!("CARGO_BIN_EXE_aegis"))
            .arg("-d")
            .arg("-c")
            .arg(&self.config)
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("aegis starts");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            if let Ok(output) = child.wait_with_output() {
                let _ = tx.send(output);
            }
        });
        rx
    }

    /// The daemon's pid, once its pid file holds one.
    pub fn wait_pid(&self) -> u32 {
        let mut pid = None;
        let written = wait_until(START_TIMEOUT, || {
            pid = read_pid(&self.pid_file);
            pid.is_some()
        });
        assert!(written, "no pid file; log:\n{}", self.log());
        pid.expect("set by the wait above")
    }

    /// The first listener's address, once the daemon logged it bound (the latest process's,
    /// after a graceful upgrade: it keeps the same socket).
    pub fn addr(&self) -> SocketAddr {
        let mut addr = None;
        let bound = wait_until(START_TIMEOUT, || {
            addr = bound_in(&self.log()).listeners.get(&0).copied();
            addr.is_some()
        });
        assert!(
            bound,
            "the daemon logged no bound listener:\n{}",
            self.log()
        );
        connectable(addr.expect("set by the wait above"))
    }

    /// Everything in the log file so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(pid) = read_pid(&self.pid_file) {
            kill(pid, "KILL");
        }
        if std::thread::panicking() {
            eprintln!("daemon log:\n{}", self.log());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
