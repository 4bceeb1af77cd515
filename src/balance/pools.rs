//! Every pool of the configuration (§17), by [`PoolId`]: pool 0 is `default` (the top-level
//! `backends`; without `routes` the only one). Each [`UpstreamPool`] keeps its own selection,
//! health, breakers and warm-up; this only holds them side by side and answers for all of them
//! where an operator names a backend without its pool (`/backends/{id}/drain`).

use super::{AdminState, Backend, MembershipChange, UpstreamPool};
use crate::config::{Config, PoolId};
use crate::events::EventLog;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// The pools of the running configuration, by id. The set is fixed for the life of the
/// process: a reload changes pools' members, not which pools there are (`reload::fixed`).
pub struct Pools {
    list: Vec<Arc<UpstreamPool>>,
}

impl Pools {
    /// Builds every pool of a resolved config.
    pub fn new(config: &Config, events: Arc<EventLog>) -> Self {
        let serials = Arc::new(AtomicU64::new(0));
        let list = config
            .all_pools()
            .map(|pool| {
                Arc::new(UpstreamPool::build(
                    config,
                    pool.id,
                    events.clone(),
                    serials.clone(),
                ))
            })
            .collect();
        Pools { list }
    }

    /// Pool 0, `default` (it exists even without backends, when routes send everything
    /// elsewhere).
    pub fn default_pool(&self) -> &Arc<UpstreamPool> {
        &self.list[0]
    }

    /// Pool `id`.
    pub fn get(&self, id: PoolId) -> Option<&Arc<UpstreamPool>> {
        self.list.get(usize::from(id))
    }

    /// Every pool, by id.
    pub fn all(&self) -> &[Arc<UpstreamPool>] {
        &self.list
    }

    /// Every pool's backends, pool by pool, each in configuration order.
    pub fn backends(&self) -> Vec<Arc<Backend>> {
        self.list.iter().flat_map(|pool| pool.backends()).collect()
    }

    /// Drains or enables every backend whose id is `id`, in whichever pools it is (the same
    /// URL in two pools is one server). `None` when none has it; otherwise how the first is
    /// named.
    pub fn set_admin_state(&self, id: &str, state: AdminState) -> Option<String> {
        self.list
            .iter()
            .filter_map(|pool| pool.set_admin_state(id, state))
            .reduce(|first, _| first)
    }

    /// Applies a reloaded configuration to every pool (each keeps its backends' state by URL);
    /// the changes of the named pools are told as `pool/URL`.
    pub fn reconfigure(&self, config: &Config) -> MembershipChange {
        let mut all = MembershipChange::default();
        for pool in &self.list {
            let change = pool.reconfigure(config);
            let name = |url: String| {
                if pool.id == crate::config::DEFAULT_POOL {
                    url
                } else {
                    format!("{}/{url}", pool.name)
                }
            };
            all.added.extend(change.added.into_iter().map(name));
            all.removed.extend(change.removed.into_iter().map(name));
            all.reweighted.extend(
                change
                    .reweighted
                    .into_iter()
                    .map(|(url, from, to)| (name(url), from, to)),
            );
        }
        all
    }
}
