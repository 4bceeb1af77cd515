//! Automatic certificates (§18, `docs/tls.md` "ACME"): each TLS listener with `tls.acme` has a
//! [`Manager`] that keeps a valid certificate for its domains in its resolver.
//!
//! - At startup (before any port opens) the stored certificate, if it is still valid and covers
//!   the domains, goes into the resolver; otherwise handshakes for those names fail until one
//!   is obtained (no placeholder certificate: a client must never be shown a certificate that
//!   is not the site's).
//! - The `acme` background service then orders one at once when none is served, and renews the
//!   served one when a third of its lifetime is left (`schedule`). A new certificate is written
//!   to storage, read back as a `tls.certificates` file would be, and swapped into the resolver:
//!   new handshakes get it, open connections go on with the old one.
//! - A failed order is logged, counted and shown as an event; the served certificate serves on,
//!   and the order is retried with a doubling backoff.
//!
//! `storage` (account and certificates, 0700/0600) is reused across restarts: a restart with a
//! valid stored certificate orders nothing and creates no account.

pub mod http01;
mod manager;
pub mod order;
pub mod schedule;
pub mod storage;

use crate::config::{AcmeChallenge, Config, ListenerSettings};
use crate::events::EventLog;
use crate::status::snapshot::{AcmeSnapshot, AcmeSource};
use crate::tls::{AlpnChallenges, CertificateResolver};
use http01::HttpChallenges;
use manager::Manager;
use order::Responders;
use pingora::server::ShutdownWatch;
use std::sync::{Arc, Mutex};
use storage::Storage;

/// Every ACME listener of the process, and the challenge answers they share with the listeners.
#[derive(Default)]
pub struct Acme {
    /// Whether any listener has `tls.acme`.
    used: bool,
    /// Set when some listener uses http-01: the plain listeners answer its tokens.
    http: Option<Arc<HttpChallenges>>,
    /// Per TLS listener with tls-alpn-01 (by index in `listeners`): its validation handshakes.
    alpn: Vec<(usize, Arc<AlpnChallenges>)>,
    managers: Mutex<Vec<Arc<Manager>>>,
}

impl Acme {
    /// The challenge responders the listeners need; managers are attached once the listeners'
    /// resolvers exist ([`Acme::attach`]).
    pub fn new(config: &Config) -> Self {
        let mut acme = Acme::default();
        for (index, listener) in config.listeners.iter().enumerate() {
            let Some(settings) = listener.tls.as_ref().and_then(|t| t.acme.as_ref()) else {
                continue;
            };
            acme.used = true;
            match settings.challenge {
                AcmeChallenge::TlsAlpn01 => acme.alpn.push((index, Arc::default())),
                AcmeChallenge::Http01 => {
                    acme.http.get_or_insert_with(Arc::default);
                }
            }
        }
        acme
    }

    /// The http-01 tokens `listener` answers: on plain listeners, when some listener uses
    /// http-01.
    pub fn http_for(&self, listener: &ListenerSettings) -> Option<Arc<HttpChallenges>> {
        self.http.clone().filter(|_| listener.tls.is_none())
    }

    /// What `/status` and `/metrics` read, when a listener has `tls.acme`.
    pub fn status_source(self: &Arc<Self>) -> Option<Arc<dyn AcmeSource>> {
        self.used.then(|| self.clone() as Arc<dyn AcmeSource>)
    }

    /// The `acme` background service, when a listener has `tls.acme`.
    pub fn service(self: &Arc<Self>) -> Option<AcmeService> {
        self.used.then(|| AcmeService(self.clone()))
    }

    /// Listener `index`'s tls-alpn-01 validations, when it uses tls-alpn-01.
    pub fn alpn(&self, index: usize) -> Option<Arc<AlpnChallenges>> {
        self.alpn
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, c)| c.clone())
    }

    /// With `tls.acme` on listener `index`, sets up its manager: opens its storage and puts a
    /// valid stored certificate into `resolver`. Called before any port opens; an error stops
    /// startup.
    pub fn attach(
        &self,
        (index, listener): (usize, &ListenerSettings),
        resolver: &Arc<CertificateResolver>,
        events: &Arc<EventLog>,
    ) -> anyhow::Result<()> {
        let Some(settings) = listener.tls.as_ref().and_then(|t| t.acme.as_ref()) else {
            return Ok(());
        };
        let storage = Storage::open(&settings.storage, &settings.directory)
            .map_err(|e| anyhow::anyhow!("listeners[{index}].tls.acme.storage: {e}"))?;
        let responders = Responders {
            alpn: self.alpn(index),
            http: self.http.clone(),
        };
        let manager = Manager::new(
            (listener.address.to_string(), settings.clone()),
            storage,
            (resolver.clone(), responders),
            events.clone(),
        );
        manager.load_stored(schedule::unix_now());
        self.managers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::new(manager));
        Ok(())
    }

    fn managers(&self) -> Vec<Arc<Manager>> {
        self.managers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl AcmeSource for Acme {
    fn acme_snapshot(&self) -> Vec<AcmeSnapshot> {
        self.managers().iter().map(|m| m.snapshot()).collect()
    }
}

/// The `acme` background service: every manager's loop, until shutdown.
pub struct AcmeService(pub Arc<Acme>);

#[async_trait::async_trait]
impl pingora::services::background::BackgroundService for AcmeService {
    async fn start(&self, shutdown: ShutdownWatch) {
        let loops: Vec<_> = self
            .0
            .managers()
            .into_iter()
            .map(|manager| tokio::spawn(manager.run(shutdown.clone())))
            .collect();
        for task in loops {
            let _ = task.await;
        }
    }
}
