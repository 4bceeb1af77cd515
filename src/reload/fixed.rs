//! The settings a reload cannot change (§12.1): those that need new sockets or a new process.
//! Pure: compares the configuration in force with the new one and names every such key that
//! differs.

use crate::config::{Config, ConfigError, ListenerSettings};

/// What each refusal says after the key: where to go instead.
const UPGRADE: &str = "cannot change on reload (it needs new sockets or a new process); \
                       apply it with a graceful upgrade (`aegis -u`, see docs/operations.md)";

/// Every key of `new` that differs from `old` and cannot change while Aegis runs.
pub fn refused(old: &Config, new: &Config) -> Vec<ConfigError> {
    let mut keys: Vec<String> = Vec::new();
    let mut differs = |key: &str, changed: bool| {
        if changed {
            keys.push(key.to_string());
        }
    };
    let (o, n) = (&old.server, &new.server);
    differs("server.address", o.address != n.address);
    differs("server.port", o.port != n.port);
    differs("server.threads", o.threads != n.threads);
    differs(
        "server.max_connections",
        o.max_connections != n.max_connections,
    );
    differs(
        "server.shutdown_timeout",
        o.shutdown_timeout != n.shutdown_timeout,
    );
    differs("server.pid_file", o.pid_file != n.pid_file);
    differs("server.upgrade_sock", o.upgrade_sock != n.upgrade_sock);
    differs("admin.enabled", old.admin.enabled != new.admin.enabled);
    differs("admin.address", old.admin.address != new.admin.address);
    differs("admin.token_file", old.admin.token != new.admin.token);
    differs("logging.file", old.logging.file != new.logging.file);
    differs("tui.enabled", old.tui.enabled != new.tui.enabled);
    differs(
        "tui.refresh_interval",
        old.tui.refresh_interval != new.tui.refresh_interval,
    );
    // The cluster's connection and lease are set up once.
    if old.cluster.enabled() || new.cluster.enabled() {
        differs("cluster", old.cluster != new.cluster);
    }
    if old.cluster.enabled() {
        differs(
            "adaptive.enabled",
            old.adaptive.enabled != new.adaptive.enabled,
        );
        differs(
            "adaptive.evaluation_interval",
            old.adaptive.evaluation_interval != new.adaptive.evaluation_interval,
        );
    }
    if implicit_listener(old) && implicit_listener(new) {
        // No `listeners` section: its one listener is `server.address:port`, named above.
    } else if old.listeners.len() != new.listeners.len() {
        differs("listeners", true);
    } else {
        for (i, (o, n)) in old.listeners.iter().zip(&new.listeners).enumerate() {
            for key in listener_changes(o, n) {
                differs(&format!("listeners[{i}].{key}"), true);
            }
        }
    }
    keys.into_iter()
        .map(|path| ConfigError {
            path,
            message: UPGRADE.into(),
        })
        .collect()
}

/// Whether the listeners are the one plain listener a config without `listeners` gets.
fn implicit_listener(config: &Config) -> bool {
    let plain = ListenerSettings::plain(config.server.listen_addr());
    config.listeners.len() == 1 && listener_changes(&config.listeners[0], &plain).is_empty()
}

/// The keys of one listener that changed, but for its certificates (a reload rotates those).
fn listener_changes(old: &ListenerSettings, new: &ListenerSettings) -> Vec<&'static str> {
    let mut keys = Vec::new();
    if old.address != new.address {
        keys.push("address");
    }
    if old.tls.is_some() != new.tls.is_some() {
        keys.push("tls");
    }
    if let (Some(o), Some(n)) = (&old.tls, &new.tls) {
        if o.min_version != n.min_version {
            keys.push("tls.min_version");
        }
        // The ACME manager, its storage and challenges are set up once (§18).
        if o.acme != n.acme {
            keys.push("tls.acme");
        }
    }
    if old.http2 != new.http2 {
        keys.push("http2");
    }
    if old.h2c != new.h2c {
        keys.push("h2c");
    }
    if old.redirect_to_https != new.redirect_to_https {
        keys.push("redirect_to_https");
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    fn config(extra: &str) -> Config {
        parse(&format!("backends:\n  - url: http://a.example\n{extra}")).expect("valid")
    }

    fn refused_keys(old: &str, new: &str) -> Vec<String> {
        refused(&config(old), &config(new))
            .into_iter()
            .map(|e| e.path)
            .collect()
    }

    #[test]
    fn settings_that_apply_live_are_not_refused() {
        let old = "server:\n  read_timeout: 5s\nrate_limit:\n  burst: 10\n";
        let new = "server:\n  read_timeout: 2s\n  allowed_hosts: [a.example]\nrate_limit:\n  burst: 20\nhealth_check:\n  interval: 1s\nlogging:\n  level: debug\nsecurity:\n  hsts:\n    max_age: 60\n";
        assert_eq!(refused_keys(old, new), Vec::<String>::new());
    }

    #[test]
    fn socket_and_process_keys_are_named() {
        let keys = refused_keys(
            "server:\n  port: 8080\n",
            "server:\n  port: 8081\n  threads: 3\n  pid_file: /tmp/x.pid\nadmin:\n  address: 127.0.0.1:9200\n",
        );
        assert_eq!(
            keys,
            vec![
                "server.port",
                "server.threads",
                "server.pid_file",
                "admin.address"
            ]
        );
        let error = &refused(
            &config("server:\n  port: 8080\n"),
            &config("server:\n  port: 1\n"),
        )[0];
        assert!(error
            .to_string()
            .starts_with("server.port: cannot change on reload"));
        assert!(error.message.contains("graceful upgrade"), "{error}");
    }

    #[test]
    fn listener_changes_are_named_by_index() {
        let one = "listeners:\n  - address: 127.0.0.1:8080\n";
        let moved = "listeners:\n  - address: 127.0.0.1:8081\n    h2c: true\n";
        assert_eq!(
            refused_keys(one, moved),
            vec!["listeners[0].address", "listeners[0].h2c"]
        );
        let two = "listeners:\n  - address: 127.0.0.1:8080\n  - address: 127.0.0.1:8082\n";
        assert_eq!(refused_keys(one, two), vec!["listeners"]);
    }
}
