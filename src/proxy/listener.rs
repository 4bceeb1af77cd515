//! What the listener a request came in on adds to its handling: over TLS, the HSTS header and the
//! TLS version in the access log; on a plain listener with `redirect_to_https`, the 308 answer.

use crate::config::{HstsSettings, ListenerSettings};
use http::HeaderValue;

/// One listener's part in the request path; each listener has its own proxy instance, so this
/// costs a plain listener nothing but a branch or two.
#[derive(Debug, Clone, Default)]
pub struct ListenerRole {
    /// The listener terminates TLS.
    pub tls: bool,
    /// `Strict-Transport-Security` for every response, on TLS listeners with `security.hsts`.
    pub hsts: Option<HeaderValue>,
    /// `redirect_to_https`: the origin every request is sent to with a 308.
    pub redirect_to_https: Option<String>,
}

impl ListenerRole {
    pub fn new(listener: &ListenerSettings, hsts: &HstsSettings) -> Self {
        let tls = listener.tls.is_some();
        ListenerRole {
            tls,
            // SECURITY: HSTS only over TLS: over plain HTTP it is ignored by browsers (RFC 6797
            // §8.1) and would only show an attacker in the middle what to strip.
            hsts: hsts
                .header_value()
                .filter(|_| tls)
                .and_then(|value| HeaderValue::from_str(&value).ok()),
            redirect_to_https: listener.redirect_to_https.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsts_only_on_tls_listeners() {
        let plain = ListenerSettings::plain("127.0.0.1:80".parse().unwrap());
        let hsts = HstsSettings {
            include_subdomains: true,
            ..HstsSettings::default()
        };
        assert_eq!(ListenerRole::new(&plain, &hsts).hsts, None);
        let tls = ListenerSettings {
            tls: Some(crate::config::ListenerTls {
                certificates: Vec::new(),
                min_version: crate::config::TlsVersion::Tls12,
            }),
            ..plain
        };
        assert_eq!(
            ListenerRole::new(&tls, &hsts).hsts,
            Some(HeaderValue::from_static(
                "max-age=31536000; includeSubDomains"
            ))
        );
        let off = HstsSettings {
            enabled: false,
            ..HstsSettings::default()
        };
        assert_eq!(ListenerRole::new(&tls, &off).hsts, None);
    }
}
