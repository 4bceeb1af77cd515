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
}

impl Redis {
    /// Starts a redis-server, with `requirepass` when `password` is set.
    pub fn start(password: Option<&str>) -> Redis {
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
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
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
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn connection(&self) -> redis::RedisResult<redis::Connection> {
        let url = match &self.password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}/0", self.port),
            None => self.url(),
        };
        redis::Client::open(url)?.get_connection_with_timeout(Duration::from_secs(2))
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
