//! The `cluster` section (§13): where the shared Redis is, how often instances exchange their
//! counts, and how this instance is named. Off (`redis_url` unset) by default.

use super::checker::Checker;
use super::raw::RawCluster;
use super::secret::Secret;
use std::fmt;
use std::time::Duration;

/// Longest accepted key prefix and instance name.
const MAX_NAME: usize = 128;

/// A Redis URL that may hold a password. `Debug` and `Display` mask the password, so that it can
/// be shown anywhere (logs, `/status`, `aegis -t`); only [`RedisUrl::expose`] gives it whole.
///
/// SECURITY: the Redis password is a credential; it must never reach a log line or a status page.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(url::Url);

impl RedisUrl {
    /// The URL with its password, for the Redis client only.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }

    /// Whether the connection is TLS (`rediss://`).
    pub fn is_tls(&self) -> bool {
        self.0.scheme() == "rediss"
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask_password(&self.0))
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({self})")
    }
}

/// The URL as text with any password replaced by `***`.
fn mask_password(url: &url::Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        // Cannot fail: the URL has a host, since it had a password.
        let _ = shown.set_password(Some("***"));
    }
    shown.to_string()
}

/// `cluster`: several instances sharing one set of limits through Redis (§13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// `cluster.redis_url`, unset by default (one instance): `redis://` or `rediss://`.
    pub redis_url: Option<RedisUrl>,
    /// `cluster.sync_interval`, default 100ms, 10ms–10s: how often counts are exchanged. The
    /// cluster-wide limit may be exceeded by about rate × sync_interval × instances.
    pub sync_interval: Duration,
    /// `cluster.key_prefix`, default `aegis:`: every Redis key starts with it, so that several
    /// clusters (or other applications) can share one Redis.
    pub key_prefix: String,
    /// `cluster.instance_name`, default `hostname:port`: unique per instance.
    pub instance_name: String,
    /// `cluster.redis_password_file`: the password, read at load from a file only its owner
    /// may read.
    pub password: Option<Secret>,
    /// `cluster.redis_ca_file`, unset by default: PEM certificate(s) of the authority that signed
    /// the Redis server's certificate, for `rediss://` with a private CA. Unset, `rediss://`
    /// trusts the system's roots. Read and checked at load.
    pub ca: Option<Vec<u8>>,
}

impl ClusterSettings {
    pub fn enabled(&self) -> bool {
        self.redis_url.is_some()
    }
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            redis_url: None,
            sync_interval: Duration::from_millis(100),
            key_prefix: "aegis:".into(),
            instance_name: String::new(),
            password: None,
            ca: None,
        }
    }
}

/// This machine's host name, for the default instance name.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// A name is printable ASCII without spaces, so that it is safe in Redis keys and logs.
fn is_name(text: &str) -> bool {
    !text.is_empty() && text.len() <= MAX_NAME && text.bytes().all(|b| b.is_ascii_graphic())
}

/// `hostname:port`; with port 0 (the kernel picks one at bind time, after this name is made)
/// instances on one host would share `hostname:0`, so the process id tells them apart.
fn default_instance_name(host: &str, port: u16, pid: u32) -> String {
    if port == 0 {
        format!("{host}:0-pid{pid}")
    } else {
        format!("{host}:{port}")
    }
}

impl Checker {
    /// `port` is the public port, for the default instance name.
    pub(super) fn cluster(&mut self, raw: RawCluster, port: u16) -> ClusterSettings {
        self.unknown("cluster", &raw.unknown);
        let default = ClusterSettings::default();
        let sync_interval = self.duration(
            raw.sync_interval,
            "cluster.sync_interval",
            default.sync_interval,
        );
        if !(Duration::from_millis(10)..=Duration::from_secs(10)).contains(&sync_interval) {
            self.error("cluster.sync_interval", "must be between 10ms and 10s");
        }
        let key_prefix = self
            .typed(raw.key_prefix, "cluster.key_prefix", "a string")
            .unwrap_or(default.key_prefix);
        if !is_name(&key_prefix) {
            self.error(
                "cluster.key_prefix",
                format!("must be 1 to {MAX_NAME} printable characters without spaces"),
            );
        }
        let instance_name = self
            .typed(raw.instance_name, "cluster.instance_name", "a string")
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| default_instance_name(&hostname(), port, std::process::id()));
        if !is_name(&instance_name) {
            self.error(
                "cluster.instance_name",
                format!("must be 1 to {MAX_NAME} printable characters without spaces"),
            );
        }
        let redis_url = self
            .typed(
                raw.redis_url,
                "cluster.redis_url",
                "a redis:// or rediss:// URL",
            )
            .filter(|u| !u.trim().is_empty())
            .and_then(|u| self.redis_url(u.trim()));
        let password = self
            .path(raw.redis_password_file, "cluster.redis_password_file")
            .and_then(|path| self.secret_file(&path, "cluster.redis_password_file"));
        if password.is_some() && redis_url.as_ref().is_some_and(|u| u.0.password().is_some()) {
            self.error(
                "cluster.redis_password_file",
                "the password is also in cluster.redis_url; keep it in one place",
            );
        }
        if password.is_some() && redis_url.is_none() {
            self.error("cluster.redis_password_file", "needs cluster.redis_url");
        }
        let ca_path = self.path(raw.redis_ca_file, "cluster.redis_ca_file");
        if ca_path.is_some() && !redis_url.as_ref().is_some_and(RedisUrl::is_tls) {
            self.error(
                "cluster.redis_ca_file",
                "needs a rediss:// cluster.redis_url (the CA verifies a TLS connection)",
            );
        }
        let ca = ca_path.and_then(|path| self.ca_file(&path, "cluster.redis_ca_file"));
        ClusterSettings {
            redis_url,
            sync_interval,
            key_prefix,
            instance_name,
            password,
            ca,
        }
    }

    fn redis_url(&mut self, text: &str) -> Option<RedisUrl> {
        let path = "cluster.redis_url";
        let url = match url::Url::parse(text) {
            Ok(url) => url,
            Err(e) => {
                // SECURITY: the text may hold a password; the error names the problem only.
                self.error(path, format!("not a valid URL ({e})"));
                return None;
            }
        };
        if !matches!(url.scheme(), "redis" | "rediss") {
            self.error(
                path,
                format!(
                    "must start with redis:// or rediss://, not {}://",
                    url.scheme()
                ),
            );
            return None;
        }
        if url.host_str().is_none_or(str::is_empty) {
            self.error(path, "must name a host");
            return None;
        }
        Some(RedisUrl(url))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use std::os::unix::fs::PermissionsExt;

    const BACKENDS: &str = "backends:\n  - url: http://a.example\n";

    #[test]
    fn the_default_instance_name_is_host_and_port_or_the_pid_for_port_zero() {
        assert_eq!(super::default_instance_name("h", 8080, 7), "h:8080");
        assert_eq!(super::default_instance_name("h", 0, 7), "h:0-pid7");
    }

    fn errors(text: &str) -> Vec<String> {
        crate::config::problems(&format!("{BACKENDS}{text}"))
    }

    #[test]
    fn off_by_default_with_spec_defaults() {
        let config = parse(BACKENDS).expect("valid");
        assert!(!config.cluster.enabled());
        assert_eq!(config.cluster.sync_interval.as_millis(), 100);
        assert_eq!(config.cluster.key_prefix, "aegis:");
        assert!(config.cluster.instance_name.ends_with(":8080"));
    }

    #[test]
    fn the_password_is_never_shown() {
        let text = format!("{BACKENDS}cluster:\n  redis_url: redis://:hunter2@10.0.0.5:6379/0\n");
        let config = parse(&text).expect("valid");
        let url = config.cluster.redis_url.clone().expect("set");
        assert!(url.expose().contains("hunter2"));
        assert_eq!(url.to_string(), "redis://:***@10.0.0.5:6379/0");
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn bad_values_name_their_key() {
        let errs = errors("cluster:\n  redis_url: http://x\n  sync_interval: 1ms\n  key_prefix: \"a b\"\n  instance_name: \"\"\n  bogus: 1\n");
        let joined = errs.join("\n");
        for want in [
            "cluster.redis_url: must start with redis:// or rediss://",
            "cluster.sync_interval: must be between 10ms and 10s",
            "cluster.key_prefix: must be 1 to 128",
            "cluster.bogus",
        ] {
            assert!(joined.contains(want), "{want} in {joined}");
        }
    }

    #[test]
    fn the_ca_file_must_hold_a_certificate_and_serve_rediss() {
        let dir = std::env::temp_dir().join(format!("aegis-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let not_pem = dir.join("not.pem");
        std::fs::write(&not_pem, "hello\n").expect("write");
        let missing = dir.join("missing.pem");
        for (url, file, want) in [
            ("rediss://r.example", &not_pem, "holds no PEM certificate"),
            ("rediss://r.example", &missing, "cannot read"),
            (
                "redis://r.example",
                &missing,
                "needs a rediss:// cluster.redis_url",
            ),
        ] {
            let errs = errors(&format!(
                "cluster:\n  redis_url: {url}\n  redis_ca_file: {}\n",
                file.display()
            ));
            assert!(
                errs.iter()
                    .any(|e| e.starts_with("cluster.redis_ca_file: ") && e.contains(want)),
                "{want}: {errs:?}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn password_file_must_be_private() {
        let dir = std::env::temp_dir().join(format!("aegis-pw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("pw");
        std::fs::write(&file, "s3cret\n").expect("write");
        let cfg = format!(
            "cluster:\n  redis_url: rediss://redis.example:6380\n  redis_password_file: {}\n",
            file.display()
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let errs = errors(&cfg);
        assert!(
            errs[0].contains("may be read by group or others (mode 644)"),
            "{errs:?}"
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let config = parse(&format!("{BACKENDS}{cfg}")).expect("valid");
        assert_eq!(config.cluster.password.expect("read").expose(), "s3cret");
        assert!(config.cluster.redis_url.expect("set").is_tls());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
