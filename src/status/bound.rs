//! Where the listeners really are. A configured address may say port 0, and then the kernel
//! picks a free port when the socket is bound (tests, instances side by side): each listener and
//! the admin listener report their bound address here once, it is logged (`listening on
//! http://127.0.0.1:43123`, with `listener` and `address` fields) and `/status` shows it.

use crate::status::snapshot::BoundSnapshot;
use std::net::SocketAddr;
use std::sync::OnceLock;

/// One listener as configured: its address (the port may be 0) and its description, such as
/// `https://0.0.0.0:8443 (h2)`.
#[derive(Debug)]
struct Listener {
    configured: SocketAddr,
    describe: String,
    bound: OnceLock<SocketAddr>,
}

impl Listener {
    /// The description with the bound address in place of the configured one, once bound.
    fn shown(&self) -> String {
        match self.bound.get() {
            Some(bound) => {
                let configured = self.configured.to_string();
                self.describe.replacen(&configured, &bound.to_string(), 1)
            }
            None => self.describe.clone(),
        }
    }
}

/// The bound address of every listener (in `listeners[]` order) and of the admin listener, each
/// set once, when its socket is bound.
#[derive(Debug, Default)]
pub struct BoundAddresses {
    listeners: Vec<Listener>,
    admin: OnceLock<SocketAddr>,
}

impl BoundAddresses {
    /// The listeners as configured (address, description), none bound yet.
    pub fn new(listeners: impl IntoIterator<Item = (SocketAddr, String)>) -> Self {
        BoundAddresses {
            listeners: listeners
                .into_iter()
                .map(|(configured, describe)| Listener {
                    configured,
                    describe,
                    bound: OnceLock::new(),
                })
                .collect(),
            admin: OnceLock::new(),
        }
    }

    /// Records where listener `index` is bound and logs it, once.
    pub fn listener_bound(&self, index: usize, bound: SocketAddr) {
        let Some(listener) = self.listeners.get(index) else {
            return;
        };
        if listener.bound.set(bound).is_ok() {
            let shown = listener.shown();
            log::info!(listener = index, address:% = bound; "listening on {shown}");
        }
    }

    /// Every listener, for logs and the dashboards' header (`http://0.0.0.0:8080, https://…`),
    /// with bound addresses where known.
    pub fn label(&self) -> String {
        let shown: Vec<String> = self.listeners.iter().map(Listener::shown).collect();
        shown.join(", ")
    }

    /// Records where the admin listener is bound and logs it.
    pub fn admin_bound(&self, bound: SocketAddr) {
        if self.admin.set(bound).is_ok() {
            log::info!(admin:% = bound; "admin listening on {bound}");
        }
    }

    /// The bound addresses as text, `None` where a socket is not bound yet.
    pub fn snapshot(&self) -> BoundSnapshot {
        BoundSnapshot {
            listeners: self
                .listeners
                .iter()
                .map(|listener| listener.bound.get().map(SocketAddr::to_string))
                .collect(),
            admin: self.admin.get().map(SocketAddr::to_string),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_is_kept_once_and_shown_in_the_snapshot_and_label() {
        let a = |text: &str| text.parse::<SocketAddr>().unwrap();
        let bound = BoundAddresses::new([
            (a("0.0.0.0:8080"), "http://0.0.0.0:8080".to_string()),
            (a("127.0.0.1:0"), "https://127.0.0.1:0 (h2)".to_string()),
        ]);
        assert_eq!(bound.snapshot().listeners, vec![None, None]);
        assert_eq!(
            bound.label(),
            "http://0.0.0.0:8080, https://127.0.0.1:0 (h2)"
        );
        bound.listener_bound(1, a("127.0.0.1:40001"));
        // A second report changes nothing; an index past the listeners is ignored.
        bound.listener_bound(1, a("127.0.0.1:1"));
        bound.listener_bound(7, a("127.0.0.1:2"));
        bound.admin_bound(a("127.0.0.1:40002"));
        let snapshot = bound.snapshot();
        assert_eq!(
            snapshot.listeners,
            vec![None, Some("127.0.0.1:40001".to_string())]
        );
        assert_eq!(snapshot.admin.as_deref(), Some("127.0.0.1:40002"));
        assert_eq!(
            bound.label(),
            "http://0.0.0.0:8080, https://127.0.0.1:40001 (h2)"
        );
    }
}
