//! A real `redis-server` for the cluster tests: on a free loopback port (redis has no `--port 0`,
//! so a port is picked by binding 127.0.0.1:0 and the start retried on a collision), without
//! persistence, stopped on drop.

use super::{scratch_dir, wait_until};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
    password: Option<String>,
    tls: Option<RedisTls>,
}

/// A TLS-only redis-server's files: its certificate and key, and the CA that signed them.
#[derive(Clone)]
pub struct RedisTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

impl Redis {
    /// Starts a redis-server, with `requirepass` when `password` is set.
    pub fn start(password: Option<&str>) -> Redis {
        Self::start_with(password, None)
    }

    /// Starts a redis-server that speaks TLS only (`--port 0 --tls-port P`), for `rediss://`.
    pub fn start_tls(tls: RedisTls) -> Redis {
        Self::start_with(None, Some(tls))
    }

    fn start_with(password: Option<&str>, tls: Option<RedisTls>) -> Redis {
        let dir = scratch_dir();
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("an ephemeral port");
            let mut redis = Redis {
                child: None,
                port,
                dir: dir.clone(),
                password: password.map(str::to_string),
                tls: tls.clone(),
            };
            if redis.spawn() {
                return redis;
            }
        }
        panic!("redis-server did not start on any of five ports");
    }

    /// Starts the server on its port; false if it did not come up (port taken).
    fn spawn(&mut self) -> bool {
        let mut command = Command::new("redis-server");
        let port = self.port.to_string();
        match &self.tls {
            None => command.args(["--port", &port]),
            Some(tls) => command
                .args([
                    "--port",
                    "0",
                    "--tls-port",
                    &port,
                    "--tls-auth-clients",
                    "no",
                ])
                .arg("--tls-cert-file")
                .arg(&tls.cert)
                .arg("--tls-key-file")
                .arg(&tls.key)
                .arg("--tls-ca-cert-file")
                .arg(&tls.ca),
        };
        command
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(password) = &self.password {
            command.args(["--requirepass", password]);
        }
        let mut child = command
            .spawn()
            .expect("redis-server runs (apt install redis-server)");
        let up = wait_until(Duration::from_secs(5), || {
            matches!(child.try_wait(), Ok(None)) && self.query(&["PING"]).is_ok()
        });
        if !up {
            let _ = child.kill();
            let _ = child.wait();
            return false;
        }
        self.child = Some(child);
        true
    }

    /// The URL Aegis is given (without the password).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}/0", self.port)
    }

    fn connection(&self) -> redis::RedisResult<redis::Connection> {
        let client = match (&self.password, &self.tls) {
            (Some(p), _) => redis::Client::open(format!("redis://:{p}@127.0.0.1:{}/0", self.port))?,
            (None, None) => redis::Client::open(self.url())?,
            (None, Some(tls)) => redis::Client::build_with_tls(
                self.url(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(std::fs::read(&tls.ca)?),
                },
            )?,
        };
        client.get_connection_with_timeout(Duration::from_secs(2))
    }

    /// One command; the reply as a redis value.
    pub fn query(&self, args: &[&str]) -> redis::RedisResult<redis::Value> {
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        cmd.query(&mut self.connection()?)
    }

    pub fn dbsize(&self) -> u64 {
        let value = self.query(&["DBSIZE"]).expect("DBSIZE");
        redis::from_redis_value(value).expect("a number")
    }

    /// A field of `INFO` (`used_memory`, `total_commands_processed`, ...).
    pub fn info(&self, field: &str) -> u64 {
        let value = self.query(&["INFO"]).expect("INFO");
        let text: String = redis::from_redis_value(value).expect("text");
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("INFO has no {field}"))
    }

    /// Kills the server (as a crash would).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        let started = wait_until(Duration::from_secs(10), || self.spawn());
        assert!(
            started,
            "redis-server did not restart on port {}",
            self.port
        );
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
