//! [`ConfigHandle`]: the running server's configuration as one immutable value that can be
//! swapped whole.
//!
//! Everything on the request path reads the configuration through the handle — one lock-free
//! `load` per request, kept in the request's context so that a request sees one configuration
//! from its first phase to its last — instead of settings copied into components at startup.
//! A reload stores a new value; requests already running finish with the one they loaded.

use super::Config;
use arc_swap::ArcSwap;
use std::sync::Arc;

/// The current configuration, shared by every component.
#[derive(Debug)]
pub struct ConfigHandle {
    current: ArcSwap<Config>,
}

impl ConfigHandle {
    pub fn new(config: Config) -> Arc<Self> {
        Arc::new(ConfigHandle {
            current: ArcSwap::from_pointee(config),
        })
    }

    /// The current configuration, to keep for a while (a request holds it to its end). One
    /// atomic load and a reference count; no lock.
    pub fn current(&self) -> Arc<Config> {
        self.current.load_full()
    }

    /// Replaces the configuration: requests that start from now on see `config`.
    pub fn store(&self, config: Arc<Config>) {
        self.current.store(config);
    }
}
