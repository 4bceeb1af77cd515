//! Test configs: a base config (loopback, port 0, fast health checks) with a test's own YAML
//! merged over it. Tests write their part as raw YAML (`r#"..."#`), the way an operator would.

use serde_yaml::Value;
use std::path::{Path, PathBuf};

/// The base test config: loopback only, the kernel's pick of port for the listener and the
/// admin listener (read back from the log, see `Aegis`), fast health checks, a rate limit high
/// enough not to trigger, adaptive loop off.
pub fn base_config(port: u16, admin_port: u16, backends: &[(String, u32)], dir: &Path) -> Value {
    let backends: String = backends
        .iter()
        .map(|(url, weight)| format!("  - url: \"{url}\"\n    weight: {weight}\n"))
        .collect();
    let dir = dir.display();
    let text = format!(
        r#"
server:
  address: 127.0.0.1
  port: {port}
  threads: 2
  shutdown_timeout: 10s
  pid_file: {dir}/aegis.pid
  upgrade_sock: {dir}/upgrade.sock
backends:
{backends}
health_check:
  interval: 100ms
  timeout: 500ms
  unhealthy_threshold: 2
  healthy_threshold: 2
rate_limit:
  requests_per_second: 100000
  burst: 100000
adaptive:
  enabled: false
  max_rate: 200000
circuit_breaker:
  failure_threshold: 1000
admin:
  address: 127.0.0.1:{admin_port}
logging:
  level: info
  format: json
tui:
  enabled: false
development:
  allow_loopback_backends: true
"#
    );
    serde_yaml::from_str(&text).expect("base config is YAML")
}

/// Deep-merges `over` into `base` (mappings merge key by key; anything else replaces).
pub fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Mapping(base), Value::Mapping(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(slot) => merge(slot, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (slot, value) => *slot = value,
    }
}

/// The base config on port 0 in front of `backends`, with `extra` merged over it. `{port}` in
/// `extra` (as in `listeners: [{address: "127.0.0.1:{port}"}]`) stands for port 0 too.
pub fn with_extra(backends: &[(String, u32)], extra: &str, dir: &Path) -> Value {
    let mut config = base_config(0, 0, backends, dir);
    if !extra.trim().is_empty() {
        let extra = extra.replace("{port}", "0");
        let over = serde_yaml::from_str(&extra)
            .unwrap_or_else(|e| panic!("extra config is not YAML ({e}):\n{extra}"));
        merge(&mut config, over);
    }
    config
}

/// Writes `config` as `aegis.yml` in `dir` and returns its path.
pub fn write(config: &Value, dir: &Path) -> PathBuf {
    let path = dir.join("aegis.yml");
    let text = serde_yaml::to_string(config).expect("a config serializes");
    std::fs::write(&path, text).expect("config written");
    path
}

/// How many listeners `config` opens, and whether it opens the admin listener.
pub fn sockets(config: &Value) -> (usize, bool) {
    let listeners = config["listeners"].as_sequence().map_or(1, Vec::len);
    let admin = config["admin"]["enabled"].as_bool() != Some(false);
    (listeners, admin)
}

/// The log file `config` names, if any.
pub fn log_file(config: &Value) -> Option<PathBuf> {
    config["logging"]["file"].as_str().map(PathBuf::from)
}
