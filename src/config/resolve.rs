//! Startup resolution of backend hosts, with the anti-SSRF check and address pinning (§2.1).

use super::{BackendSpec, Config, ConfigError, ConfigErrors};
use crate::security::ssrf::BackendAddressPolicy;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// Resolves every backend host once and pins the address Aegis will connect to.
///
/// SECURITY: every address a name resolves to must pass the policy, not only the first: a name
/// that resolves to one public and one internal address is refused. The pinned address is the one
/// that was checked, and it is never resolved again (no DNS rebinding).
pub fn resolve_backends(config: &mut Config) -> Result<(), ConfigErrors> {
    let policy = BackendAddressPolicy {
        allow_loopback: config.development.allow_loopback_backends,
        allowed_networks: config.security.allowed_backend_networks.clone(),
    };
    let mut errors = Vec::new();
    resolve_list(
        &mut config.backends,
        config.backends_key,
        &policy,
        &mut errors,
    );
    // §17: every pool's backends pass the same check; an address may serve two pools.
    for pool in &mut config.pools {
        let at = format!("pools.{}.backends", pool.name);
        resolve_list(&mut pool.backends, &at, &policy, &mut errors);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Resolves and pins one list of backends, written at `at` (`backends`, `pools.api.backends`).
fn resolve_list(
    backends: &mut [BackendSpec],
    at: &str,
    policy: &BackendAddressPolicy,
    errors: &mut Vec<ConfigError>,
) {
    for (i, backend) in backends.iter_mut().enumerate() {
        let path = format!("{at}[{i}].url");
        let addresses = match lookup(&backend.host, backend.port) {
            Ok(addresses) => addresses,
            Err(message) => {
                errors.push(ConfigError { path, message });
                continue;
            }
        };
        let refused: Vec<String> = addresses
            .iter()
            .filter_map(|addr| policy.check(addr.ip()).err())
            .collect();
        if !refused.is_empty() {
            errors.push(ConfigError {
                path,
                message: format!(
                    "{} resolves to a refused address: {}",
                    backend.host,
                    refused.join("; ")
                ),
            });
            continue;
        }
        // IPv4 first: "localhost" commonly resolves to ::1 and 127.0.0.1, and services bound to
        // 127.0.0.1 are the usual case.
        backend.addr = addresses
            .iter()
            .find(|a| a.is_ipv4())
            .or_else(|| addresses.first())
            .copied();
    }
    for i in 0..backends.len() {
        for j in 0..i {
            if backends[i].addr.is_some() && backends[i].addr == backends[j].addr {
                errors.push(ConfigError {
                    path: format!("{at}[{i}].url"),
                    message: format!(
                        "resolves to the same address as {at}[{j}] ({})",
                        backends[j].addr.map(|a| a.to_string()).unwrap_or_default()
                    ),
                });
            }
        }
    }
}

fn lookup(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addresses: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve host {host:?}: {e}"))?
        .collect();
    if addresses.is_empty() {
        return Err(format!("host {host:?} resolves to no address"));
    }
    Ok(addresses)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    #[test]
    fn loopback_needs_the_development_flag() {
        let mut config = parse("backends:\n  - url: http://127.0.0.1:8081\n").unwrap();
        let err = resolve_backends(&mut config).unwrap_err().to_string();
        assert!(
            err.starts_with("backends[0].url: 127.0.0.1 resolves to a refused address"),
            "{err}"
        );
        let mut config = parse(
            "backends:\n  - url: http://127.0.0.1:8081\ndevelopment:\n  allow_loopback_backends: true\n",
        )
        .unwrap();
        resolve_backends(&mut config).unwrap();
        assert_eq!(
            config.backends[0].addr,
            Some("127.0.0.1:8081".parse().unwrap())
        );
    }

    #[test]
    fn metadata_address_is_refused_even_when_listed() {
        let mut config = parse(
            "backends:\n  - url: http://169.254.169.254\nsecurity:\n  allowed_backend_networks: [169.254.0.0/16]\ndevelopment:\n  allow_loopback_backends: true\n",
        )
        .unwrap();
        let err = resolve_backends(&mut config).unwrap_err().to_string();
        assert!(err.contains("link-local"), "{err}");
    }

    #[test]
    fn localhost_pins_ipv4_and_same_address_twice_is_refused() {
        let mut config = parse(
            "backends:\n  - url: http://localhost:9\n  - url: http://127.0.0.1:9\ndevelopment:\n  allow_loopback_backends: true\n",
        )
        .unwrap();
        let err = resolve_backends(&mut config).unwrap_err().to_string();
        assert!(
            err.contains("backends[1].url: resolves to the same address as backends[0]"),
            "{err}"
        );
        assert_eq!(
            config.backends[0].addr,
            Some("127.0.0.1:9".parse().unwrap())
        );
    }
}
