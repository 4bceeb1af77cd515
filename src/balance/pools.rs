//! Every pool of the configuration (§17), by [`PoolId`]: pool 0 is `default` (the top-level
//! `backends`; without `routes` the only one). Each [`UpstreamPool`] keeps its own selection,
//! health, breakers and warm-up; this holds them side by side, answers for all of them where an
//! operator names a backend without its pool (`/backends/{id}/drain`), and applies a reload's
//! set of pools (`docs/decisions/reload.md`).
//!
//! A route names its pool by id in the configuration a request loaded, and ids shift when a
//! reload adds or removes a pool. So pools are published as one [`PoolSet`] per configuration
//! value, tied to it by a `Weak`: a request finds the set of *its* configuration, and a reload
//! publishes the new set before it stores the new configuration, so no request can meet a
//! route whose pool does not exist. A set outlives the configuration in force for as long as a
//! request holds that configuration (a removed pool's requests finish with it); a reload drops
//! the sets whose configuration nobody holds any more, and with them the removed pools and
//! their backends' state.

use super::{AdminState, Backend, MembershipChange, UpstreamPool};
use crate::config::{Config, PoolId};
use crate::events::EventLog;
use arc_swap::ArcSwap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, Weak};

/// The pools of one configuration value, by the ids its routes use.
struct PoolSet {
    config: Weak<Config>,
    list: Vec<Arc<UpstreamPool>>,
}

impl PoolSet {
    fn serves(&self, config: &Arc<Config>) -> bool {
        std::ptr::eq(self.config.as_ptr(), Arc::as_ptr(config))
    }
}

/// The pools of the running configuration, and of older ones requests still hold.
pub struct Pools {
    /// The set of the configuration in force first, then older ones still held by requests.
    sets: ArcSwap<Vec<Arc<PoolSet>>>,
    events: Arc<EventLog>,
    /// Backend serials, shared by every pool so that a serial names one backend process-wide.
    serials: Arc<AtomicU64>,
    /// Serialises reloads of the set.
    reconfigure: Mutex<()>,
    /// Told when the set of pools changed (the health checks start and stop pools' loops).
    pub changed: tokio::sync::Notify,
}

impl Pools {
    /// Builds every pool of a resolved config, the one `handle` holds at startup.
    pub fn new(config: &Arc<Config>, events: Arc<EventLog>) -> Self {
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
        Pools {
            sets: ArcSwap::from_pointee(vec![Arc::new(PoolSet {
                config: Arc::downgrade(config),
                list,
            })]),
            events,
            serials,
            reconfigure: Mutex::new(()),
            changed: tokio::sync::Notify::new(),
        }
    }

    /// Pool 0, `default` (it exists even without backends, when routes send everything
    /// elsewhere, and it is the same pool across reloads).
    pub fn default_pool(&self) -> Arc<UpstreamPool> {
        self.sets.load()[0].list[0].clone()
    }

    /// Pool `id` of `config`, the configuration a request loaded (`None` only for an id the
    /// configuration does not have, or a configuration these pools were never built for).
    pub fn get(&self, config: &Arc<Config>, id: PoolId) -> Option<Arc<UpstreamPool>> {
        let sets = self.sets.load();
        let set = sets.iter().find(|s| s.serves(config))?;
        set.list.get(usize::from(id)).cloned()
    }

    /// Every pool of the configuration in force, by id.
    pub fn all(&self) -> Vec<Arc<UpstreamPool>> {
        self.sets.load()[0].list.clone()
    }

    /// Every pool's backends, pool by pool, each in configuration order.
    pub fn backends(&self) -> Vec<Arc<Backend>> {
        self.all().iter().flat_map(|pool| pool.backends()).collect()
    }

    /// Drains or enables every backend whose id is `id`, in whichever pools it is (the same
    /// URL in two pools is one server). `None` when none has it; otherwise how the first is
    /// named.
    pub fn set_admin_state(&self, id: &str, state: AdminState) -> Option<String> {
        self.all()
            .iter()
            .filter_map(|pool| pool.set_admin_state(id, state))
            .reduce(|first, _| first)
    }

    /// Applies a reloaded configuration, before it is stored in the `ConfigHandle`: pools are
    /// matched by name. A kept pool keeps its backends' state by URL; an added pool starts
    /// with every backend joining (as a reload's added backends do); a removed pool gets no new
    /// request once `config` is stored, and is dropped with the last configuration that names
    /// it. The changes of the named pools are told as `pool/URL`.
    pub fn reconfigure(&self, config: &Arc<Config>) -> MembershipChange {
        let _guard = self.reconfigure.lock().unwrap_or_else(|p| p.into_inner());
        let sets = self.sets.load_full();
        let current = &sets[0].list;
        let mut all = MembershipChange::default();
        let mut list = Vec::new();
        for settings in config.all_pools() {
            let kept = current.iter().find(|p| p.name == settings.name);
            let pool = match kept {
                Some(pool) => pool.clone(),
                None => {
                    all.pools_added.push(settings.name.to_string());
                    Arc::new(UpstreamPool::empty(
                        settings.name,
                        settings.health_check.interval,
                        self.events.clone(),
                        self.serials.clone(),
                    ))
                }
            };
            let change = pool.reconfigure(config);
            let name = |url: String| {
                if pool.is_default() {
                    url
                } else {
                    format!("{}/{url}", pool.name)
                }
            };
            // An added pool's backends are told as the pool, not one by one.
            if kept.is_some() {
                all.added.extend(change.added.into_iter().map(name));
                all.removed.extend(change.removed.into_iter().map(name));
            }
            all.reweighted.extend(
                change
                    .reweighted
                    .into_iter()
                    .map(|(url, from, to)| (name(url), from, to)),
            );
            list.push(pool);
        }
        all.pools_removed = current
            .iter()
            .filter(|p| !list.iter().any(|kept| Arc::ptr_eq(kept, p)))
            .map(|p| p.name.clone())
            .collect();
        // The new set first; older ones only while a request still holds their configuration.
        let mut next = vec![Arc::new(PoolSet {
            config: Arc::downgrade(config),
            list,
        })];
        next.extend(
            sets.iter()
                .filter(|s| s.config.strong_count() > 0 && !s.serves(config))
                .cloned(),
        );
        self.sets.store(Arc::new(next));
        if !all.pools_added.is_empty() || !all.pools_removed.is_empty() {
            self.changed.notify_one();
        }
        all
    }

    /// How many configurations' pool sets are kept (the one in force and those requests hold).
    pub fn sets_kept(&self) -> usize {
        self.sets.load().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    fn config(pools: &[&str]) -> Arc<Config> {
        let mut yaml = String::from("backends:\n  - url: http://d.example\n");
        if !pools.is_empty() {
            yaml.push_str("pools:\n");
            for name in pools {
                yaml.push_str(&format!(
                    "  {name}:\n    backends:\n      - url: http://{name}.example\n"
                ));
            }
            yaml.push_str("routes:\n");
            for name in pools {
                yaml.push_str(&format!("  - host: {name}.example\n    pool: {name}\n"));
            }
        }
        Arc::new(parse(&yaml).expect("valid"))
    }

    fn names(pools: &Pools) -> Vec<String> {
        pools.all().iter().map(|p| p.name.clone()).collect()
    }

    #[test]
    fn a_reload_adds_and_removes_pools_by_name_and_keeps_the_others() {
        let first = config(&["b", "c"]);
        let pools = Pools::new(&first, Arc::new(EventLog::new()));
        let (default, c) = (pools.default_pool(), pools.get(&first, 2).unwrap());
        assert_eq!(c.name, "c");
        // Pools are in name order: `c` moves from id 2 to id 3, `b` (id 1) is gone.
        let second = config(&["a", "aa", "c"]);
        let change = pools.reconfigure(&second);
        assert_eq!(change.pools_added, ["a", "aa"]);
        assert_eq!(change.pools_removed, ["b"]);
        assert!(
            change.added.is_empty() && change.removed.is_empty(),
            "{change:?}"
        );
        assert_eq!(names(&pools), ["default", "a", "aa", "c"]);
        assert!(Arc::ptr_eq(&pools.default_pool(), &default));
        assert!(Arc::ptr_eq(&pools.get(&second, 3).unwrap(), &c));
        // A new pool's backends join at once (nothing else there can serve), warming up.
        let a = pools.get(&second, 1).unwrap();
        let backend = &a.backends()[0];
        assert!(backend.is_healthy());
        assert_eq!(backend.warmup_percent(), 25);
        // A request that loaded the first configuration still finds its pools by its ids.
        assert_eq!(pools.get(&first, 1).unwrap().name, "b");
        assert_eq!(pools.sets_kept(), 2);
    }

    #[test]
    fn a_removed_pool_is_dropped_with_the_last_configuration_that_names_it() {
        let first = config(&["b"]);
        let pools = Pools::new(&first, Arc::new(EventLog::new()));
        let b = Arc::downgrade(&pools.get(&first, 1).unwrap());
        let second = config(&[]);
        pools.reconfigure(&second);
        assert!(b.upgrade().is_some(), "held while the first config is");
        drop(first);
        let third = config(&[]);
        pools.reconfigure(&third);
        assert_eq!(
            pools.sets_kept(),
            2,
            "the set of `second` (still held) and `third`"
        );
        drop(second);
        pools.reconfigure(&config(&[]));
        assert!(b.upgrade().is_none(), "the removed pool is gone");
        assert_eq!(names(&pools), ["default"]);
    }
}
