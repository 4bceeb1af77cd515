//! Shared harness for the black-box tests: starts the real `aegis` binary on port 0 (the kernel
//! picks free ports; the harness reads them back from the log) with a generated config, and talks
//! to it over raw TCP with the workspace's shared test client.
//!
//! - `aegis`: a running Aegis process ([`Aegis`]).
//! - `bound`: reading back where a process is bound.
//! - `config`: the base test config and merging a test's raw YAML over it.
//! - `daemon`: a daemonized Aegis (`aegis -d`) and its pid and log files.
//! - `http`: the shared test client (from `fake-backends`) and Aegis's response checks.
//! - `load`: keep-alive load loops for changes made under traffic.
//! - `h2`, `tls`, `redis`: HTTP/2 frames, TLS clients and certificates, a real redis-server.
#![allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses a different part of the harness"
)]

pub mod aegis;
pub mod bound;
pub mod config;
pub mod daemon;
pub mod h2;
pub mod http;
pub mod load;
pub mod pebble;
pub mod redis;
pub mod tls;

pub use aegis::{Aegis, NO_ACCESS_LOG};
pub use config::base_config;
pub use fake_backends::wait_until;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A port nobody listens on right now (bound, then let go). Only for "nothing answers here"
/// (an unreachable backend, a port that must stay closed): a server under test binds port 0
/// instead, since a port let go can be taken by another process before it is bound again.
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

/// The TCP ports process `pid` listens on: its sockets (`/proc/PID/fd`) that `/proc/net/tcp` and
/// `tcp6` show in the LISTEN state, sorted.
pub fn listening_ports(pid: u32) -> Vec<u16> {
    let inodes: std::collections::HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
                .filter_map(|target| {
                    let target = target.to_str()?;
                    Some(
                        target
                            .strip_prefix("socket:[")?
                            .strip_suffix(']')?
                            .to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut ports: Vec<u16> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .flat_map(|table| {
            std::fs::read_to_string(table)
                .unwrap_or_default()
                .lines()
                .skip(1)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            let listening = fields.get(3) == Some(&"0A");
            let ours = inodes.contains(*fields.get(9)?);
            let port = fields.get(1)?.rsplit(':').next()?;
            (listening && ours)
                .then(|| u16::from_str_radix(port, 16).ok())
                .flatten()
        })
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
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
