//! One certificate order against an ACME directory (RFC 8555 §7.4), with `instant-acme`: new
//! order → answer each pending authorization's challenge (tls-alpn-01 on the TLS listener,
//! http-01 on the plain listeners) → wait until the order is ready → finalize with a CSR for a
//! fresh key (rcgen) → download the chain. The challenge answers are withdrawn when the order
//! ends, however it ends.

use super::http01::HttpChallenges;
use crate::config::{AcmeChallenge, AcmeSettings};
use crate::tls::AlpnChallenges;
use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewOrder, OrderStatus, RetryPolicy,
};
use std::sync::Arc;
use std::time::Duration;

/// How long the server may take to validate and to issue (each).
const POLL_TIMEOUT: Duration = Duration::from_secs(120);

/// Where challenge answers go.
#[derive(Clone, Default)]
pub struct Responders {
    /// This listener's tls-alpn-01 certificates.
    pub alpn: Option<Arc<AlpnChallenges>>,
    /// The plain listeners' http-01 tokens.
    pub http: Option<Arc<HttpChallenges>>,
}

/// An issued certificate: the chain (PEM, leaf first) and its private key (PEM).
pub struct Issued {
    pub chain_pem: String,
    pub key_pem: String,
}

/// Orders a certificate for `settings.domains`. The error names the step that failed.
pub async fn obtain(
    account: &Account,
    settings: &AcmeSettings,
    responders: &Responders,
) -> Result<Issued, String> {
    let identifiers: Vec<Identifier> = settings
        .domains
        .iter()
        .map(|d| Identifier::Dns(d.clone()))
        .collect();
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .map_err(|e| format!("new order: {}", explain(&e)))?;
    let mut answers = Answers {
        responders: responders.clone(),
        names: Vec::new(),
        tokens: Vec::new(),
    };
    let challenge_type = match settings.challenge {
        AcmeChallenge::TlsAlpn01 => ChallengeType::TlsAlpn01,
        AcmeChallenge::Http01 => ChallengeType::Http01,
    };
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let mut authorization =
            authorization.map_err(|e| format!("authorization: {}", explain(&e)))?;
        match authorization.status {
            AuthorizationStatus::Pending => {}
            // Validated earlier (CAs reuse recent authorizations): nothing to answer.
            AuthorizationStatus::Valid => continue,
            other => return Err(format!("authorization is {other:?}")),
        }
        let mut challenge = authorization
            .challenge(challenge_type.clone())
            .ok_or_else(|| {
                format!(
                    "the directory offers no {} challenge",
                    settings.challenge.as_str()
                )
            })?;
        let name = challenge.identifier().to_string();
        let key_authorization = challenge.key_authorization();
        match settings.challenge {
            AcmeChallenge::TlsAlpn01 => {
                let alpn = answers
                    .responders
                    .alpn
                    .as_ref()
                    .ok_or("no tls-alpn-01 responder")?;
                alpn.insert(&name, key_authorization.digest().as_ref())?;
                answers.names.push(name.clone());
            }
            AcmeChallenge::Http01 => {
                let http = answers
                    .responders
                    .http
                    .as_ref()
                    .ok_or("no http-01 responder")?;
                http.insert(&challenge.token, key_authorization.as_str());
                answers.tokens.push(challenge.token.clone());
            }
        }
        challenge
            .set_ready()
            .await
            .map_err(|e| format!("challenge for {name}: {e}"))?;
    }
    let polling = RetryPolicy::new()
        .initial_delay(Duration::from_millis(250))
        .timeout(POLL_TIMEOUT);
    let status = order
        .poll_ready(&polling)
        .await
        .map_err(|e| format!("validation: {}", explain(&e)))?;
    if status != OrderStatus::Ready {
        return Err(format!(
            "validation failed: {}",
            authorization_errors(&mut order).await
        ));
    }
    drop(answers);
    let key = rcgen::KeyPair::generate().map_err(|e| format!("certificate key: {e}"))?;
    let mut params = rcgen::CertificateParams::new(settings.domains.clone())
        .map_err(|e| format!("certificate request: {e}"))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params
        .serialize_request(&key)
        .map_err(|e| format!("certificate request: {e}"))?;
    order
        .finalize_csr(csr.der())
        .await
        .map_err(|e| format!("finalize: {}", explain(&e)))?;
    let chain_pem = order
        .poll_certificate(&polling)
        .await
        .map_err(|e| format!("certificate download: {}", explain(&e)))?;
    Ok(Issued {
        chain_pem,
        key_pem: key.serialize_pem(),
    })
}

/// Why the authorizations of a failed order failed, as the server said.
async fn authorization_errors(order: &mut instant_acme::Order) -> String {
    let mut problems = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let Ok(authorization) = authorization else {
            continue;
        };
        let name = authorization.identifier().to_string();
        for challenge in &authorization.challenges {
            if let Some(error) = &challenge.error {
                problems.push(format!("{name}: {error}"));
            }
        }
    }
    if problems.is_empty() {
        "the order became invalid".into()
    } else {
        problems.join("; ")
    }
}

/// The challenge answers published for one order, withdrawn on drop.
struct Answers {
    responders: Responders,
    names: Vec<String>,
    tokens: Vec<String>,
}

impl Drop for Answers {
    fn drop(&mut self) {
        if let Some(alpn) = &self.responders.alpn {
            for name in &self.names {
                alpn.remove(name);
            }
        }
        if let Some(http) = &self.responders.http {
            for token in &self.tokens {
                http.remove(token);
            }
        }
    }
}

/// An error with its causes (`client error (Connect): tcp connect error: Connection refused`):
/// the top level of an HTTP client error alone rarely says what went wrong.
pub fn explain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let shown = cause.to_string();
        if !text.contains(&shown) {
            text.push_str(": ");
            text.push_str(&shown);
        }
        source = cause.source();
    }
    text
}
