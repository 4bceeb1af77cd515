//! One listener's automatic certificate (§18): its schedule loop, its orders (through
//! `order`), what they leave in storage and the resolver, and what `/status` shows of it.

use super::order::{self, explain, Responders};
use super::schedule::{self, show_time, unix_now, Need};
use super::storage::Storage;
use crate::config::{AcmeSettings, LoadedCertificate};
use crate::events::{Event, EventLog};
use crate::status::snapshot::AcmeSnapshot;
use crate::tls::CertificateResolver;
use instant_acme::{Account, NewAccount};
use pingora::server::ShutdownWatch;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The longest single sleep: the schedule is looked at again at least this often (a suspended
/// machine or a changed clock cannot make Aegis oversleep a renewal).
const MAX_SLEEP: Duration = Duration::from_secs(600);

/// What a manager shows in `/status` and `/metrics`.
#[derive(Debug, Default)]
struct Status {
    state: &'static str,
    next_attempt: Option<i64>,
    issued: u64,
    renewed: u64,
    failures: u64,
    consecutive_failures: u32,
    last_failure_at: i64,
    last_error: Option<String>,
    accounts_created: u64,
    /// The CA no longer knows the stored account: register a new one.
    account_forgotten: bool,
}

/// One listener's automatic certificate.
pub(super) struct Manager {
    address: String,
    settings: AcmeSettings,
    storage: Storage,
    resolver: Arc<CertificateResolver>,
    responders: Responders,
    events: Arc<EventLog>,
    status: Mutex<Status>,
}

impl Manager {
    pub(super) fn new(
        (address, settings): (String, AcmeSettings),
        storage: Storage,
        (resolver, responders): (Arc<CertificateResolver>, Responders),
        events: Arc<EventLog>,
    ) -> Self {
        Manager {
            address,
            settings,
            storage,
            resolver,
            responders,
            events,
            status: Mutex::new(Status::default()),
        }
    }

    fn name(&self) -> &str {
        self.settings.domains.first().map_or("-", String::as_str)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Serves the stored certificate if it is still valid and covers every domain.
    pub(super) fn load_stored(&self, now: i64) {
        match self.storage.certificate(&self.settings.domains) {
            Ok(Some(certificate)) => {
                let covers = self.covers(&certificate);
                if covers && certificate.not_after > now {
                    log::info!(
                        "acme: serving the stored certificate for {} (valid until {}, renewal at {})",
                        self.name(),
                        show_time(certificate.not_after),
                        show_time(schedule::renew_at(
                            certificate.not_before,
                            certificate.not_after
                        ))
                    );
                    self.resolver.set_acme(Arc::new(certificate));
                } else {
                    log::info!(
                        "acme: the stored certificate for {} {}; ordering a new one",
                        self.name(),
                        if covers {
                            "has expired"
                        } else {
                            "does not cover every domain"
                        }
                    );
                }
            }
            Ok(None) => log::info!("acme: no stored certificate for {} yet", self.name()),
            Err(e) => log::warn!("acme: {e}; ordering a new one"),
        }
    }

    fn covers(&self, certificate: &LoadedCertificate) -> bool {
        self.settings
            .domains
            .iter()
            .all(|d| certificate.names.contains(d))
    }

    /// The served certificate's validity, when it is ours to renew.
    fn served(&self) -> Option<(i64, i64)> {
        self.resolver.acme().map(|c| (c.not_before, c.not_after))
    }

    pub(super) async fn run(self: Arc<Self>, mut shutdown: ShutdownWatch) {
        let mut account: Option<Account> = None;
        loop {
            let now = unix_now();
            let served = self.served();
            let mut due = match schedule::need(served, now) {
                Need::Missing => now,
                Need::RenewAt(at) => at,
            };
            let (failures, last_failure) = {
                let status = self.lock();
                (status.consecutive_failures, status.last_failure_at)
            };
            if failures > 0 {
                let valid = served.filter(|(_, not_after)| *not_after > now);
                let wait = schedule::backoff(failures, valid.map(|(b, a)| a - b));
                due = last_failure + wait.as_secs() as i64;
            }
            {
                let mut status = self.lock();
                status.next_attempt = Some(due);
                status.state = match (served.is_some(), failures > 0) {
                    (false, _) => "obtaining",
                    (true, true) => "retrying",
                    (true, false) => "valid",
                };
            }
            if due > now {
                let sleep = Duration::from_secs((due - now) as u64).min(MAX_SLEEP);
                tokio::select! {
                    _ = tokio::time::sleep(sleep) => continue,
                    _ = shutdown.changed() => return,
                }
            }
            if served.is_some() {
                self.lock().state = "renewing";
            }
            tokio::select! {
                outcome = self.order(&mut account) => self.record(outcome, served.is_some()),
                _ = shutdown.changed() => return,
            }
        }
    }

    /// One order: the account (stored, or registered once), the order, storage, the swap.
    async fn order(&self, account: &mut Option<Account>) -> Result<Arc<LoadedCertificate>, String> {
        let acme_account = match account {
            Some(account) => account.clone(),
            None => {
                let fresh = self.account().await?;
                *account = Some(fresh.clone());
                fresh
            }
        };
        let started = std::time::Instant::now();
        let issued = order::obtain(&acme_account, &self.settings, &self.responders)
            .await
            .inspect_err(|e| {
                // The CA forgot the account (a test CA restarted, an account deactivated):
                // register again next time rather than failing forever.
                if e.contains("accountDoesNotExist") {
                    *account = None;
                    self.lock().account_forgotten = true;
                }
            })?;
        let certificate = self.storage.save_certificate(
            &self.settings.domains,
            &issued.chain_pem,
            &issued.key_pem,
        )?;
        if !self.covers(&certificate) {
            return Err(format!(
                "the issued certificate names {:?}, not every configured domain",
                certificate.names
            ));
        }
        log::info!(
            "acme: order for {} completed in {:.1}s",
            self.name(),
            started.elapsed().as_secs_f64()
        );
        let certificate = Arc::new(certificate);
        self.resolver.set_acme(certificate.clone());
        Ok(certificate)
    }

    /// The stored account, or a new one registered and stored.
    async fn account(&self) -> Result<Account, String> {
        let builder = match &self.settings.directory_ca {
            Some(ca) => Account::builder_with_root(ca),
            None => Account::builder(),
        }
        .map_err(|e| format!("ACME client: {}", explain(&e)))?;
        let forgotten = std::mem::take(&mut self.lock().account_forgotten);
        if let Some(credentials) = self.storage.account()?.filter(|_| !forgotten) {
            return builder
                .from_credentials(credentials)
                .await
                .map_err(|e| format!("directory {}: {}", self.settings.directory, explain(&e)));
        }
        let contact = self.settings.email.as_ref().map(|e| format!("mailto:{e}"));
        let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
        let (account, credentials) = builder
            .create(
                &NewAccount {
                    contact: &contacts,
                    // Configuring `acme` is the operator's agreement (docs/tls.md).
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                self.settings.directory.clone(),
                None,
            )
            .await
            .map_err(|e| {
                format!(
                    "new account at {}: {}",
                    self.settings.directory,
                    explain(&e)
                )
            })?;
        self.storage.save_account(&credentials)?;
        self.lock().accounts_created += 1;
        self.events.record(Event::AcmeAccountCreated {
            directory: self.settings.directory.clone(),
        });
        Ok(account)
    }

    fn record(&self, outcome: Result<Arc<LoadedCertificate>, String>, renewal: bool) {
        let now = unix_now();
        match outcome {
            Ok(certificate) => {
                {
                    let mut status = self.lock();
                    status.issued += 1;
                    status.renewed += u64::from(renewal);
                    status.consecutive_failures = 0;
                    status.last_error = None;
                }
                self.events.record(Event::AcmeCertificateIssued {
                    name: self.name().to_string(),
                    renewal,
                    expires: show_time(certificate.not_after),
                });
            }
            Err(error) => {
                let failures = {
                    let mut status = self.lock();
                    status.failures += 1;
                    status.consecutive_failures += 1;
                    status.last_failure_at = now;
                    status.last_error = Some(error.clone());
                    status.consecutive_failures
                };
                let valid = self.served().filter(|(_, not_after)| *not_after > now);
                let retry = schedule::backoff(failures, valid.map(|(b, a)| a - b));
                self.events.record(Event::AcmeOrderFailed {
                    name: self.name().to_string(),
                    error,
                    retry_in_seconds: retry.as_secs(),
                });
            }
        }
    }

    pub(super) fn snapshot(&self) -> AcmeSnapshot {
        let served = self.resolver.acme();
        let status = self.lock();
        AcmeSnapshot {
            listener: self.address.clone(),
            domains: self.settings.domains.clone(),
            directory: self.settings.directory.clone(),
            challenge: self.settings.challenge.as_str().into(),
            state: if status.state.is_empty() {
                "starting".into()
            } else {
                status.state.into()
            },
            not_after_unix: served.as_ref().map(|c| c.not_after),
            renew_at_unix: served
                .as_ref()
                .map(|c| schedule::renew_at(c.not_before, c.not_after)),
            next_attempt_unix: status.next_attempt,
            issued: status.issued,
            renewed: status.renewed,
            failures: status.failures,
            consecutive_failures: status.consecutive_failures,
            last_error: status.last_error.clone(),
            accounts_created: status.accounts_created,
        }
    }
}
