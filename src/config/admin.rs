//! The operator's sections: `admin` (the admin listener, §7.3) and `tui` (the dashboard, §7.4).

use super::checker::Checker;
use super::raw::{RawAdmin, RawTui};
use super::Secret;
use std::net::SocketAddr;
use std::time::Duration;

/// `tui`: the terminal dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TuiSettings {
    /// `tui.enabled`, default true: show the dashboard when stdout is a terminal and neither
    /// `--headless` nor `--daemon` is given.
    pub enabled: bool,
    /// `tui.refresh_interval`, default 1s: how often the dashboard redraws.
    pub refresh_interval: Duration,
}

impl Default for TuiSettings {
    fn default() -> Self {
        TuiSettings {
            enabled: true,
            refresh_interval: Duration::from_secs(1),
        }
    }
}

/// `admin`: the admin listener (`/metrics`, `/status`, `/healthz`, `POST /reload`,
/// `POST /backends/{id}/drain|enable`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSettings {
    /// `admin.enabled`, default true: open the admin listener. Not reloadable.
    pub enabled: bool,
    /// `admin.address`, default `127.0.0.1:9100`: where it listens; must differ from every
    /// public listener. Not reloadable (a new socket).
    pub address: SocketAddr,
    /// `admin.token_file`, default none: the bearer token the mutating endpoints need (§12.2),
    /// read at load from a file only its owner may read. `None`: they answer 403. Not
    /// reloadable (the admin listener's gate is built at start).
    pub token: Option<Secret>,
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings {
            enabled: true,
            address: SocketAddr::from(([127, 0, 0, 1], 9100)),
            token: None,
        }
    }
}

impl Checker {
    pub(super) fn tui(&mut self, raw: RawTui) -> TuiSettings {
        self.unknown("tui", &raw.unknown);
        let default = TuiSettings::default();
        TuiSettings {
            enabled: self.boolean(raw.enabled, "tui.enabled", default.enabled),
            refresh_interval: self.duration(
                raw.refresh_interval,
                "tui.refresh_interval",
                default.refresh_interval,
            ),
        }
    }

    pub(super) fn admin(&mut self, raw: RawAdmin) -> AdminSettings {
        self.unknown("admin", &raw.unknown);
        let default = AdminSettings::default();
        let address = match self.typed(raw.address, "admin.address", "host:port") {
            None => default.address,
            Some(text) => text.trim().parse().unwrap_or_else(|_| {
                self.error(
                    "admin.address",
                    format!("expected IP:port such as 127.0.0.1:9100, got {text:?}"),
                );
                default.address
            }),
        };
        let token = self
            .path(raw.token_file, "admin.token_file")
            .and_then(|path| self.secret_file(&path, "admin.token_file"));
        AdminSettings {
            enabled: self.boolean(raw.enabled, "admin.enabled", default.enabled),
            address,
            token,
        }
    }
}
