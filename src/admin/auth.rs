//! Who may use the admin listener (§12.2): the bearer token of `admin.token_file`, compared in
//! constant time, with failed attempts rate limited per client address.
//!
//! [`AdminAuth::check`] is the one gate every admin endpoint passes: reads (`/metrics`,
//! `/status`, `/healthz`, the web dashboard) are open on a loopback admin address and need the
//! token on any other; actions (`POST /backends/{id}/drain`, `/enable`, `/reload`) always need it.

use super::reply::Reply;
use crate::config::Secret;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// Failed attempts a client may make per [`FAILURE_WINDOW`]; more are answered 429 unchecked.
const MAX_FAILURES: u32 = 5;
/// The window failed attempts are counted over.
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Client addresses tracked at once; beyond it every new address shares one count.
const MAX_TRACKED: usize = 4096;

/// What a request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The web dashboard's page, script and style sheet: no data, open to anyone who reaches
    /// the listener.
    Public,
    /// Read state: `/metrics`, `/status`, `/healthz`, the dashboard page.
    Read,
    /// Change state: drain, enable, reload.
    Act,
}

/// The admin listener's gate: token, policy and the failure counts.
pub struct AdminAuth {
    token: Option<Secret>,
    /// True when the admin address is not loopback: reads need the token too.
    reads_need_token: bool,
    failures: Mutex<FailureCounts>,
}

impl AdminAuth {
    /// `token` from `admin.token_file`; `loopback` says whether `admin.address` is a loopback
    /// address.
    pub fn new(token: Option<Secret>, loopback: bool) -> Self {
        AdminAuth {
            token,
            reads_need_token: !loopback,
            failures: Mutex::new(FailureCounts::default()),
        }
    }

    /// Lets the request through or answers it: 403 without a configured token, 429 after too
    /// many failures from `client`, 401 for a missing or wrong token. `authorization` is the
    /// request's `Authorization` header value.
    pub fn check(
        &self,
        access: Access,
        authorization: Option<&[u8]>,
        client: IpAddr,
        now: Instant,
    ) -> Result<(), Reply> {
        match access {
            Access::Public => return Ok(()),
            Access::Read if !self.reads_need_token => return Ok(()),
            Access::Read | Access::Act => {}
        }
        let Some(token) = &self.token else {
            return Err(Reply::json(
                403,
                r#"{"error":"admin token not configured"}"#,
            ));
        };
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        // SECURITY: a client guessing tokens is slowed to MAX_FAILURES tries per window; while
        // it is blocked its guesses are not even compared.
        if let Some(wait) = failures.blocked(client, now) {
            return Err(Reply::json(429, r#"{"error":"too many failed attempts"}"#)
                .with_header("Retry-After", wait.as_secs().max(1).to_string()));
        }
        let offered = authorization.and_then(|value| value.strip_prefix(b"Bearer "));
        // SECURITY: a constant-time comparison, so the time taken does not tell how many
        // leading bytes of a guess were right (only a length mismatch ends it early).
        let matches = offered.is_some_and(|offered| {
            bool::from(offered.trim_ascii().ct_eq(token.expose().as_bytes()))
        });
        if matches {
            return Ok(());
        }
        failures.record(client, now);
        Err(Reply::json(401, r#"{"error":"unauthorized"}"#)
            .with_header("WWW-Authenticate", "Bearer".to_string()))
    }
}

/// Failed attempts per client address within the current window (pure: time passed in).
#[derive(Debug, Default)]
struct FailureCounts {
    /// Client → (window start, failures in it).
    clients: HashMap<IpAddr, (Instant, u32)>,
}

/// The key every client shares once [`MAX_TRACKED`] addresses are tracked.
const OVERFLOW: IpAddr = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);

impl FailureCounts {
    fn key(&self, client: IpAddr) -> IpAddr {
        if self.clients.len() < MAX_TRACKED || self.clients.contains_key(&client) {
            client
        } else {
            OVERFLOW
        }
    }

    /// How long `client` must wait before trying again, if it used up its failures.
    fn blocked(&self, client: IpAddr, now: Instant) -> Option<Duration> {
        let (start, count) = self.clients.get(&self.key(client))?;
        let end = *start + FAILURE_WINDOW;
        (*count >= MAX_FAILURES && now < end).then(|| end - now)
    }

    fn record(&mut self, client: IpAddr, now: Instant) {
        if self.clients.len() >= MAX_TRACKED {
            self.clients
                .retain(|_, (start, _)| now.saturating_duration_since(*start) < FAILURE_WINDOW);
        }
        let key = self.key(client);
        let entry = self.clients.entry(key).or_insert((now, 0));
        if now.saturating_duration_since(entry.0) >= FAILURE_WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    fn token(text: &str) -> Secret {
        let dir = std::env::temp_dir().join(format!("aegis-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join(text);
        std::fs::write(&file, text).expect("write");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let yaml = format!(
            "backends:\n  - url: http://a.example\nadmin:\n  token_file: {}\n",
            file.display()
        );
        parse(&yaml).expect("valid").admin.token.expect("token")
    }

    fn status(result: Result<(), Reply>) -> u16 {
        result.map_or_else(|reply| reply.status, |()| 200)
    }

    const CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn answers_by_table() {
        let now = Instant::now();
        let none_loopback = AdminAuth::new(None, true);
        let none_remote = AdminAuth::new(None, false);
        let with_loopback = AdminAuth::new(Some(token("s3cret-a")), true);
        let with_remote = AdminAuth::new(Some(token("s3cret-b")), false);
        let cases: [(&AdminAuth, Access, Option<&[u8]>, u16); 14] = [
            (&none_remote, Access::Public, None, 200),
            (&with_remote, Access::Public, None, 200),
            (&none_loopback, Access::Read, None, 200),
            (&none_loopback, Access::Act, Some(b"Bearer x"), 403),
            (&none_remote, Access::Read, None, 403),
            (&with_loopback, Access::Read, None, 200),
            (&with_loopback, Access::Act, None, 401),
            (&with_loopback, Access::Act, Some(b"Bearer s3cret-"), 401),
            (&with_loopback, Access::Act, Some(b"Basic s3cret-a"), 401),
            (&with_loopback, Access::Act, Some(b"Bearer s3cret-a"), 200),
            (&with_remote, Access::Read, None, 401),
            (&with_remote, Access::Read, Some(b"Bearer s3cret-a"), 401),
            (&with_remote, Access::Read, Some(b"Bearer s3cret-b"), 200),
            (&with_remote, Access::Act, Some(b"Bearer s3cret-b "), 200),
        ];
        for (i, (auth, access, header, expected)) in cases.into_iter().enumerate() {
            assert_eq!(
                status(auth.check(access, header, CLIENT, now)),
                expected,
                "case {i}"
            );
        }
    }

    #[test]
    fn failures_are_limited_per_client_for_a_window() {
        let auth = AdminAuth::new(Some(token("s3cret-c")), true);
        let other: IpAddr = "10.0.0.9".parse().expect("ip");
        let now = Instant::now();
        let wrong = Some(&b"Bearer nope"[..]);
        let right = Some(&b"Bearer s3cret-c"[..]);
        for _ in 0..MAX_FAILURES {
            assert_eq!(status(auth.check(Access::Act, wrong, CLIENT, now)), 401);
        }
        // Blocked now, even with the right token; another client is not.
        let later = now + Duration::from_secs(10);
        let blocked = auth.check(Access::Act, right, CLIENT, later);
        let reply = blocked.expect_err("blocked");
        assert_eq!(reply.status, 429);
        assert_eq!(reply.headers, [("Retry-After", "50".to_string())]);
        assert_eq!(status(auth.check(Access::Act, right, other, later)), 200);
        // After the window the client may try again.
        let after = now + FAILURE_WINDOW;
        assert_eq!(status(auth.check(Access::Act, right, CLIENT, after)), 200);
    }

    #[test]
    fn tracked_clients_are_bounded() {
        let mut counts = FailureCounts::default();
        let now = Instant::now();
        for i in 1..=(MAX_TRACKED as u32 + 100) {
            counts.record(IpAddr::V4(i.into()), now);
        }
        assert_eq!(counts.clients.len(), MAX_TRACKED + 1);
        // The overflow key gathers the rest, so a flood of addresses is still limited.
        assert_eq!(counts.clients[&OVERFLOW].1, 100);
        let later = now + FAILURE_WINDOW;
        counts.record("192.0.2.1".parse().expect("ip"), later);
        assert_eq!(counts.clients.len(), 1);
    }
}
