//! The `server` section (§2): where the single default listener is, the worker threads, the
//! request rules (methods, hosts, sizes) and the client-side timeouts.

use super::checker::Checker;
use super::raw::{Field, RawServer};
use http::Method;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// `server`: the public side of Aegis.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// `server.address`, default `0.0.0.0` (IPv6 allowed): the address of the one plain listener
    /// used when `listeners` is absent. Not reloadable (a new socket).
    pub address: IpAddr,
    /// `server.port`, default 8080, 0–65535 (0: the kernel picks a free port, logged as
    /// `listening on`): that listener's port. Not reloadable.
    pub port: u16,
    /// `server.threads`, default the number of CPU cores, 1–1024: Pingora worker threads. Not
    /// reloadable (a new process).
    pub threads: usize,
    /// `server.allowed_hosts`, default empty (any host): lower-case Host patterns a request
    /// must match (`*.example.com` covers one label), else 400 `invalid host` (§3.4).
    pub allowed_hosts: Vec<String>,
    /// `server.allowed_methods`, default GET HEAD POST PUT PATCH DELETE OPTIONS: the methods
    /// forwarded; any other gets 405 with `Allow` (§3.1). CONNECT and TRACE are never allowed.
    pub allowed_methods: Vec<Method>,
    /// `server.read_timeout`, default 5s: the whole request header (and a TLS handshake) must
    /// arrive within it; also the stall limit between reads of a request body (§3.6).
    pub read_timeout: Duration,
    /// `server.write_timeout`, default 10s: stall limit when writing to the client (and the
    /// request to a backend).
    pub write_timeout: Duration,
    /// `server.idle_timeout`, default 120s: a keep-alive connection with no request for this
    /// long is closed.
    pub idle_timeout: Duration,
    /// `server.max_header_bytes`, default 8192, 256–1 MiB: larger request headers get 431.
    pub max_header_bytes: usize,
    /// `server.max_body_bytes`, default 10 MiB: larger request bodies get 413 (declared ones
    /// before any byte is forwarded, chunked ones as soon as they pass it).
    pub max_body_bytes: u64,
    /// `server.shutdown_timeout`, default 30s: grace period for in-flight requests at shutdown.
    pub shutdown_timeout: Duration,
    /// `server.max_connections`, default `None` (derived from the open-file limit at startup,
    /// see `capacity`), 1–16 Mi: client connections held at once; beyond it new ones wait in
    /// the listen backlog. Not reloadable.
    pub max_connections: Option<usize>,
    /// `server.pid_file`, default `/tmp/aegis.pid`: written by a daemon (`-d`); `aegis reload`
    /// signals the pid in it. Not reloadable.
    pub pid_file: PathBuf,
    /// `server.upgrade_sock`, default `/tmp/aegis_upgrade.sock`: where a graceful upgrade hands
    /// the listening sockets over (§8). Not reloadable.
    pub upgrade_sock: PathBuf,
}

/// Methods that pass by default (§2).
const DEFAULT_METHODS: [Method; 7] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
];

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 8080,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            allowed_hosts: Vec::new(),
            allowed_methods: DEFAULT_METHODS.to_vec(),
            read_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            max_header_bytes: 8192,
            max_body_bytes: 10 << 20,
            shutdown_timeout: Duration::from_secs(30),
            max_connections: None,
            pid_file: "/tmp/aegis.pid".into(),
            upgrade_sock: "/tmp/aegis_upgrade.sock".into(),
        }
    }
}

impl ServerSettings {
    /// The public listen address as a socket address.
    pub fn listen_addr(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.port)
    }

    /// The `Allow` header of a 405 answer: the allowed methods, comma-separated.
    pub fn allow_header(&self) -> String {
        let names: Vec<&str> = self.allowed_methods.iter().map(Method::as_str).collect();
        names.join(", ")
    }
}

impl Checker {
    pub(super) fn server(&mut self, raw: RawServer) -> ServerSettings {
        self.unknown("server", &raw.unknown);
        let default = ServerSettings::default();
        let address = match self.typed(raw.address, "server.address", "an IP address") {
            None => default.address,
            Some(text) => {
                let text = text.trim().trim_start_matches('[').trim_end_matches(']');
                text.parse().unwrap_or_else(|_| {
                    self.error(
                        "server.address",
                        format!("expected an IP address such as 0.0.0.0 or ::, got {text:?}"),
                    );
                    default.address
                })
            }
        };
        let allowed_hosts = self
            .typed(
                raw.allowed_hosts,
                "server.allowed_hosts",
                "a list of host names",
            )
            .unwrap_or_default();
        let allowed_hosts = allowed_hosts
            .iter()
            .enumerate()
            .filter_map(|(i, host)| self.allowed_host(host, &format!("server.allowed_hosts[{i}]")))
            .collect();
        let allowed_methods = match self.typed(
            raw.allowed_methods,
            "server.allowed_methods",
            "a list of HTTP methods",
        ) {
            None => default.allowed_methods,
            Some(methods) => self.methods(methods),
        };
        ServerSettings {
            address,
            // 0: the kernel picks a free port, logged as `listening on` (tests, side by side).
            port: self.int(raw.port, "server.port", default.port.into(), 0, 65535) as u16,
            threads: self.int(
                raw.threads,
                "server.threads",
                default.threads as i64,
                1,
                1024,
            ) as usize,
            allowed_hosts,
            allowed_methods,
            read_timeout: self.duration(
                raw.read_timeout,
                "server.read_timeout",
                default.read_timeout,
            ),
            write_timeout: self.duration(
                raw.write_timeout,
                "server.write_timeout",
                default.write_timeout,
            ),
            idle_timeout: self.duration(
                raw.idle_timeout,
                "server.idle_timeout",
                default.idle_timeout,
            ),
            max_header_bytes: self.int(
                raw.max_header_bytes,
                "server.max_header_bytes",
                default.max_header_bytes as i64,
                256,
                1 << 20,
            ) as usize,
            max_body_bytes: self.int(
                raw.max_body_bytes,
                "server.max_body_bytes",
                default.max_body_bytes as i64,
                1,
                i64::MAX,
            ) as u64,
            shutdown_timeout: self.duration(
                raw.shutdown_timeout,
                "server.shutdown_timeout",
                default.shutdown_timeout,
            ),
            max_connections: match raw.max_connections {
                Field::Missing => None,
                field => Some(self.int(field, "server.max_connections", 1, 1, 1 << 24) as usize),
            },
            pid_file: self
                .path(raw.pid_file, "server.pid_file")
                .unwrap_or(default.pid_file),
            upgrade_sock: self
                .path(raw.upgrade_sock, "server.upgrade_sock")
                .unwrap_or(default.upgrade_sock),
        }
    }

    fn allowed_host(&mut self, host: &str, path: &str) -> Option<String> {
        let host = host.trim().to_ascii_lowercase();
        let bare = host.strip_prefix("*.").unwrap_or(&host);
        let valid = !bare.is_empty()
            && bare
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':' | '[' | ']'))
            && !bare.contains('*');
        if valid {
            Some(host)
        } else {
            self.error(
                path,
                format!("expected a host name or *.domain pattern, got {host:?}"),
            );
            None
        }
    }

    fn methods(&mut self, methods: Vec<String>) -> Vec<Method> {
        let mut out: Vec<Method> = Vec::new();
        for (i, method) in methods.iter().enumerate() {
            let path = format!("server.allowed_methods[{i}]");
            let upper = method.trim().to_ascii_uppercase();
            if upper.is_empty() || !upper.bytes().all(|b| b.is_ascii_alphabetic()) {
                self.error(
                    &path,
                    format!("expected an HTTP method name, got {method:?}"),
                );
            } else if upper == "CONNECT" || upper == "TRACE" {
                // SECURITY: CONNECT opens tunnels and TRACE reflects headers (cross-site tracing);
                // both stay refused even when listed.
                self.error(&path, format!("{upper} is never allowed through Aegis"));
            } else if let Ok(method) = Method::from_bytes(upper.as_bytes()) {
                if !out.contains(&method) {
                    out.push(method);
                }
            }
        }
        if methods.is_empty() {
            self.error("server.allowed_methods", "must list at least one method");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse;

    use crate::config::problems as errors;

    #[test]
    fn methods_and_hosts() {
        let errs = errors(
            "server:\n  allowed_methods: [get, TRACE]\n  allowed_hosts: ['*.example.com', 'bad host']\nbackends:\n  - url: http://a.example\n",
        );
        assert_eq!(
            errs,
            vec![
                "server.allowed_hosts[1]: expected a host name or *.domain pattern, got \"bad host\"",
                "server.allowed_methods[1]: TRACE is never allowed through Aegis",
            ]
        );
        let config = parse(
            "server:\n  allowed_methods: [get, head, GET]\nbackends:\n  - url: http://a.example\n",
        )
        .expect("valid");
        assert_eq!(config.server.allow_header(), "GET, HEAD");
    }

    #[test]
    fn max_connections_is_derived_unless_set() {
        let config = parse("backends:\n  - url: http://a.example\n").expect("valid");
        assert_eq!(config.server.max_connections, None, "derived at startup");
        let set = parse("server:\n  max_connections: 500\nbackends:\n  - url: http://a.example\n");
        assert_eq!(set.expect("valid").server.max_connections, Some(500));
        let errs = errors("server:\n  max_connections: 0\nbackends:\n  - url: http://a.example\n");
        assert!(
            errs.iter()
                .any(|e| e.starts_with("server.max_connections: must be between 1 and")),
            "{errs:?}"
        );
    }
}
