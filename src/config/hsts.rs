//! `security.hsts` (§11.1): the `Strict-Transport-Security` header on responses over TLS.

use super::checker::Checker;
use super::raw::{Field, RawHsts};

/// `security.hsts`: sent on every response over TLS, never over plain HTTP (a plain-HTTP HSTS
/// header is ignored by browsers and would only tell an attacker in the middle what to strip).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HstsSettings {
    /// `enabled`, default true.
    pub enabled: bool,
    /// `max_age` in seconds, default 31536000 (one year).
    pub max_age: u64,
    /// `include_subdomains`, default false: a site cannot know that every subdomain speaks TLS.
    pub include_subdomains: bool,
}

impl Default for HstsSettings {
    fn default() -> Self {
        HstsSettings {
            enabled: true,
            max_age: 31_536_000,
            include_subdomains: false,
        }
    }
}

impl HstsSettings {
    /// The header value, or `None` when HSTS is off.
    pub fn header_value(&self) -> Option<String> {
        if !self.enabled {
            return None;
        }
        let mut value = format!("max-age={}", self.max_age);
        if self.include_subdomains {
            value.push_str("; includeSubDomains");
        }
        Some(value)
    }
}

impl Checker {
    pub(super) fn hsts(&mut self, field: Field<RawHsts>) -> HstsSettings {
        let raw = self.section(field, "security.hsts");
        self.unknown("security.hsts", &raw.unknown);
        let default = HstsSettings::default();
        HstsSettings {
            enabled: self.boolean(raw.enabled, "security.hsts.enabled", default.enabled),
            // Up to two years, the most browsers' preload lists ask for.
            max_age: self.int(
                raw.max_age,
                "security.hsts.max_age",
                default.max_age as i64,
                0,
                63_072_000,
            ) as u64,
            include_subdomains: self.boolean(
                raw.include_subdomains,
                "security.hsts.include_subdomains",
                default.include_subdomains,
            ),
        }
    }
}
