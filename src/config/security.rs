//! The `security` and `development` sections: which backend addresses are allowed (§2.1) and
//! the HSTS header (`hsts`).

use super::checker::Checker;
use super::hsts::HstsSettings;
use super::raw::{RawDevelopment, RawSecurity};
use ipnet::IpNet;

/// `development`: settings for running Aegis on one machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DevelopmentSettings {
    /// `development.allow_loopback_backends`, default false: lets backends resolve to loopback
    /// addresses (and nothing else private).
    pub allow_loopback_backends: bool,
}

/// `security`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecuritySettings {
    /// `security.allowed_backend_networks`, default empty: private CIDRs (such as `10.0.0.0/8`)
    /// that backends may resolve to; link-local and metadata addresses stay refused.
    pub allowed_backend_networks: Vec<IpNet>,
    /// `security.hsts`: the `Strict-Transport-Security` header on TLS responses.
    pub hsts: HstsSettings,
}

impl Checker {
    pub(super) fn development(&mut self, raw: RawDevelopment) -> DevelopmentSettings {
        self.unknown("development", &raw.unknown);
        let default = DevelopmentSettings::default();
        DevelopmentSettings {
            allow_loopback_backends: self.boolean(
                raw.allow_loopback_backends,
                "development.allow_loopback_backends",
                default.allow_loopback_backends,
            ),
        }
    }

    pub(super) fn security(&mut self, raw: RawSecurity) -> SecuritySettings {
        self.unknown("security", &raw.unknown);
        let path = "security.allowed_backend_networks";
        let list = self
            .typed(raw.allowed_backend_networks, path, "a list of CIDRs")
            .unwrap_or_default();
        let mut networks = Vec::new();
        for (i, text) in list.iter().enumerate() {
            match text.trim().parse::<IpNet>() {
                Ok(net) => networks.push(net.trunc()),
                Err(_) => self.error(
                    &format!("{path}[{i}]"),
                    format!("expected a CIDR such as 10.0.0.0/8, got {text:?}"),
                ),
            }
        }
        SecuritySettings {
            allowed_backend_networks: networks,
            hsts: self.hsts(raw.hsts),
        }
    }
}
