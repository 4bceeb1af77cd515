//! `security.hsts` (§11.1): the `Strict-Transport-Security` header on responses over TLS.

use super::checker::Checker;
use super::raw::{Field, RawHsts};
use http::HeaderValue;

/// `security.hsts`: sent on every response over TLS, never over plain HTTP (a plain-HTTP HSTS
/// header is ignored by browsers and would only tell an attacker in the middle what to strip).
/// Built with [`HstsSettings::new`], which also prepares the header value once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HstsSettings {
    /// `security.hsts.enabled`, default true.
    pub enabled: bool,
    /// `security.hsts.max_age`, default 31536000 (one year), 0–63072000: seconds browsers
    /// remember to use HTTPS only.
    pub max_age: u64,
    /// `security.hsts.include_subdomains`, default false: a site cannot know that every
    /// subdomain speaks TLS.
    pub include_subdomains: bool,
    /// The header value, built once; `None` when off.
    header: Option<HeaderValue>,
}

impl Default for HstsSettings {
    fn default() -> Self {
        HstsSettings::new(true, 31_536_000, false)
    }
}

impl HstsSettings {
    pub fn new(enabled: bool, max_age: u64, include_subdomains: bool) -> Self {
        let header = enabled.then(|| {
            let mut value = format!("max-age={max_age}");
            if include_subdomains {
                value.push_str("; includeSubDomains");
            }
            HeaderValue::from_str(&value).expect("digits and ASCII words are a valid header value")
        });
        HstsSettings {
            enabled,
            max_age,
            include_subdomains,
            header,
        }
    }

    /// The `Strict-Transport-Security` value, or `None` when HSTS is off.
    pub fn header(&self) -> Option<&HeaderValue> {
        self.header.as_ref()
    }
}

impl Checker {
    pub(super) fn hsts(&mut self, field: Field<RawHsts>) -> HstsSettings {
        let raw = self.section(field, "security.hsts");
        self.unknown("security.hsts", &raw.unknown);
        let default = HstsSettings::default();
        HstsSettings::new(
            self.boolean(raw.enabled, "security.hsts.enabled", default.enabled),
            // Up to two years, the most browsers' preload lists ask for.
            self.int(
                raw.max_age,
                "security.hsts.max_age",
                default.max_age as i64,
                0,
                63_072_000,
            ) as u64,
            self.boolean(
                raw.include_subdomains,
                "security.hsts.include_subdomains",
                default.include_subdomains,
            ),
        )
    }
}
