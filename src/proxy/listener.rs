//! What the listener a request came in on adds to its handling: over TLS, the HSTS header and the
//! TLS version in the access log; on a plain listener with `redirect_to_https`, the 308 answer.

use crate::acme::http01::HttpChallenges;
use crate::config::{HstsSettings, ListenerSettings};
use http::HeaderValue;
use std::sync::Arc;

/// One listener's part in the request path; each listener has its own proxy instance, so this
/// costs a plain listener nothing but a branch or two. Listeners are fixed for the life of the
/// process (a new one needs a new socket).
#[derive(Debug, Clone, Default)]
pub struct ListenerRole {
    /// The listener terminates TLS.
    pub tls: bool,
    /// `redirect_to_https`: the origin every request is sent to with a 308.
    pub redirect_to_https: Option<String>,
    /// On a plain listener when some listener uses ACME http-01 (§18): the tokens to answer.
    pub acme_http01: Option<Arc<HttpChallenges>>,
}

impl ListenerRole {
    pub fn new(listener: &ListenerSettings) -> Self {
        ListenerRole {
            tls: listener.tls.is_some(),
            redirect_to_https: listener.redirect_to_https.clone(),
            acme_http01: None,
        }
    }

    /// `Strict-Transport-Security` for every response on this listener under `hsts` (the
    /// request's configuration).
    pub fn hsts<'a>(&self, hsts: &'a HstsSettings) -> Option<&'a HeaderValue> {
        // SECURITY: HSTS only over TLS: over plain HTTP it is ignored by browsers (RFC 6797
        // §8.1) and would only show an attacker in the middle what to strip.
        hsts.header().filter(|_| self.tls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsts_only_on_tls_listeners() {
        let plain = ListenerSettings::plain("127.0.0.1:80".parse().unwrap());
        let hsts = HstsSettings::new(true, 31_536_000, true);
        assert_eq!(ListenerRole::new(&plain).hsts(&hsts), None);
        let tls = ListenerSettings {
            tls: Some(crate::config::ListenerTls {
                certificates: Vec::new(),
                min_version: crate::config::TlsVersion::Tls12,
                acme: None,
            }),
            ..plain
        };
        assert_eq!(
            ListenerRole::new(&tls).hsts(&hsts),
            Some(&HeaderValue::from_static(
                "max-age=31536000; includeSubDomains"
            ))
        );
        let off = HstsSettings::new(false, 31_536_000, false);
        assert_eq!(ListenerRole::new(&tls).hsts(&off), None);
    }
}
