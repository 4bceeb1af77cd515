//! The `websocket` section (§11.4): whether WebSocket handshakes pass, and how long an idle
//! tunnel stays open. Read per request, so a reload applies to the handshakes after it (open
//! tunnels keep the timeout they started with).

use super::checker::Checker;
use super::raw::RawWebsocket;
use std::time::Duration;

/// `websocket`: HTTP/1.1 Upgrade to a WebSocket tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebsocketSettings {
    /// `websocket.enabled`, default true: a GET with `Upgrade: websocket` and
    /// `Connection: upgrade` is forwarded with those two headers, and after the backend's 101
    /// the connection is a tunnel. Off: `Upgrade` is stripped like any hop-by-hop header (§3.7).
    pub enabled: bool,
    /// `websocket.idle_timeout`, default 300s, at most 24h: a tunnel with no byte in either
    /// direction for this long is closed (so is a handshake whose backend sends nothing).
    pub idle_timeout: Duration,
}

impl Default for WebsocketSettings {
    fn default() -> Self {
        WebsocketSettings {
            enabled: true,
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// The longest `websocket.idle_timeout`: a day (an idle tunnel holds a socket on each side).
const MAX_IDLE: Duration = Duration::from_secs(24 * 3600);

impl Checker {
    pub(super) fn websocket(&mut self, raw: RawWebsocket) -> WebsocketSettings {
        self.unknown("websocket", &raw.unknown);
        let default = WebsocketSettings::default();
        let enabled = self.boolean(raw.enabled, "websocket.enabled", default.enabled);
        let mut idle_timeout = self.duration(
            raw.idle_timeout,
            "websocket.idle_timeout",
            default.idle_timeout,
        );
        if idle_timeout > MAX_IDLE {
            self.error("websocket.idle_timeout", "must be at most 24h");
            idle_timeout = default.idle_timeout;
        }
        WebsocketSettings {
            enabled,
            idle_timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;
    use crate::config::problems as errors;

    #[test]
    fn defaults_apply_without_the_section() {
        let config = parse("backends:\n  - url: http://a.example\n").expect("valid");
        assert_eq!(config.websocket, WebsocketSettings::default());
    }

    #[test]
    fn values_are_read_and_checked_with_their_key_path() {
        let config = parse(
            "websocket:\n  enabled: false\n  idle_timeout: 2s\nbackends:\n  - url: http://a.example\n",
        )
        .expect("valid");
        assert!(!config.websocket.enabled);
        assert_eq!(config.websocket.idle_timeout, Duration::from_secs(2));
        assert_eq!(
            errors("websocket:\n  enabled: maybe\n  idle_timeout: 0s\n  idle: 3\nbackends:\n  - url: http://a.example\n"),
            vec![
                "websocket.idle: unknown key (is it misspelt?)".to_string(),
                "websocket.enabled: expected true or false, got \"maybe\"".to_string(),
                "websocket.idle_timeout: must be greater than zero".to_string(),
            ]
        );
        assert_eq!(
            errors("websocket:\n  idle_timeout: 25h\nbackends:\n  - url: http://a.example\n"),
            vec!["websocket.idle_timeout: must be at most 24h".to_string()]
        );
    }
}
