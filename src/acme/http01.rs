//! http-01 (RFC 8555 §8.3, ACME §18): while an order is being validated, the plain listeners
//! answer `GET /.well-known/acme-challenge/<token>` with the token's key authorization. Only
//! tokens of Aegis's own pending orders are answered; every other request under that path goes
//! on through the request path like any other.

use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The path prefix of http-01 validation requests.
pub const PREFIX: &str = "/.well-known/acme-challenge/";

/// The pending http-01 tokens of every ACME listener: token → key authorization.
#[derive(Debug, Default)]
pub struct HttpChallenges {
    /// Read by requests without a lock; written (rarely) under `writer`.
    tokens: ArcSwap<HashMap<String, Arc<str>>>,
    writer: Mutex<()>,
}

impl HttpChallenges {
    pub fn insert(&self, token: &str, key_authorization: &str) {
        let answer: Arc<str> = Arc::from(key_authorization);
        self.update(|map| {
            map.insert(token.to_string(), answer);
        });
    }

    pub fn remove(&self, token: &str) {
        self.update(|map| {
            map.remove(token);
        });
    }

    /// The body to answer a request for `path` with, when it asks for a pending token.
    pub fn answer(&self, path: &str) -> Option<Arc<str>> {
        let token = path.strip_prefix(PREFIX)?;
        // SECURITY: an exact match against tokens Aegis itself received from its CA: a client
        // cannot make Aegis answer anything else, nor probe files, on this path.
        let tokens = self.tokens.load();
        if tokens.is_empty() {
            return None;
        }
        tokens.get(token).cloned()
    }

    fn update(&self, change: impl FnOnce(&mut HashMap<String, Arc<str>>)) {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut map = HashMap::clone(&self.tokens.load());
        change(&mut map);
        self.tokens.store(Arc::new(map));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pending_tokens_are_answered() {
        let challenges = HttpChallenges::default();
        assert!(challenges
            .answer("/.well-known/acme-challenge/abc")
            .is_none());
        challenges.insert("abc", "abc.thumb");
        assert_eq!(
            challenges
                .answer("/.well-known/acme-challenge/abc")
                .as_deref(),
            Some("abc.thumb")
        );
        for other in [
            "/.well-known/acme-challenge/abcd",
            "/.well-known/acme-challenge/",
            "/.well-known/acme-challenge/abc/",
            "/abc",
            "/x/.well-known/acme-challenge/abc",
        ] {
            assert!(challenges.answer(other).is_none(), "{other}");
        }
        challenges.remove("abc");
        assert!(challenges
            .answer("/.well-known/acme-challenge/abc")
            .is_none());
    }
}
