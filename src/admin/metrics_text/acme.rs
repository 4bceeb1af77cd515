//! The ACME series (§18): per managed certificate (`name`: its first domain), orders by result,
//! renewals, failures in a row, the served certificate's end and the next order's time.

use super::{counter, gauge};
use crate::status::Snapshot;
use prometheus::Registry;

pub(super) fn acme(r: &Registry, s: &Snapshot) -> prometheus::Result<()> {
    if s.acme.is_empty() {
        return Ok(());
    }
    let orders = counter(
        r,
        "aegis_acme_orders_total",
        "ACME certificate orders since startup, by result (issued or failed).",
        &["name", "result"],
    )?;
    let renewals = counter(
        r,
        "aegis_acme_renewals_total",
        "ACME certificates renewed (issued while a valid one was served).",
        &["name"],
    )?;
    let accounts = counter(
        r,
        "aegis_acme_accounts_created_total",
        "ACME accounts registered since startup (0 when the stored account is reused).",
        &["name"],
    )?;
    let in_a_row = gauge(
        r,
        "aegis_acme_consecutive_failures",
        "ACME orders failed since the last success; retried with backoff.",
        &["name"],
    )?;
    let expiry = gauge(
        r,
        "aegis_acme_certificate_expiry_timestamp_seconds",
        "End of validity of the served ACME certificate (Unix time); absent while none is served.",
        &["name"],
    )?;
    let next = gauge(
        r,
        "aegis_acme_next_order_timestamp_seconds",
        "When the next ACME order is due (renewal or retry, Unix time).",
        &["name"],
    )?;
    for certificate in &s.acme {
        let name = certificate.domains.first().map_or("-", String::as_str);
        let issued = certificate.issued;
        orders.with_label_values(&[name, "issued"]).inc_by(issued);
        orders
            .with_label_values(&[name, "failed"])
            .inc_by(certificate.failures);
        renewals
            .with_label_values(&[name])
            .inc_by(certificate.renewed);
        accounts
            .with_label_values(&[name])
            .inc_by(certificate.accounts_created);
        in_a_row
            .with_label_values(&[name])
            .set(f64::from(certificate.consecutive_failures));
        if let Some(not_after) = certificate.not_after_unix {
            expiry.with_label_values(&[name]).set(not_after as f64);
        }
        if let Some(at) = certificate.next_attempt_unix {
            next.with_label_values(&[name]).set(at as f64);
        }
    }
    Ok(())
}
