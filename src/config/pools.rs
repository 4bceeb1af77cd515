//! The `pools` section (§17): named backend pools, each with the part-one keys (`backends`,
//! `health_check`, `circuit_breaker`). The top-level `backends` is the pool `default`.

use super::checker::{show, Checker};
use super::raw::{Field, RawPool};
use super::{BackendSpec, BreakerSettings, Config, HealthCheckSettings};
use std::collections::BTreeMap;

/// A pool's position: 0 is `default` (the top-level `backends`, or `pools.default`), the named
/// pools follow in name order.
pub type PoolId = u16;

/// The pool of the top-level `backends`, where requests go without `routes`.
pub const DEFAULT_POOL: PoolId = 0;

/// The name of pool 0.
pub const DEFAULT_POOL_NAME: &str = "default";

/// Most pools one configuration may name.
pub const MAX_POOLS: usize = 100;

/// `pools.<name>`: one named pool. Its optional sections default, field by field, to the
/// top-level ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSettings {
    /// The key under `pools`: letters, digits, `-` and `_`, at most 64 (it names the pool in
    /// logs, events and metrics labels).
    pub name: String,
    /// `pools.<name>.backends`, required, 1–256 entries with distinct URLs (the same URL may be
    /// in two pools: its state is kept per pool).
    pub backends: Vec<BackendSpec>,
    /// `pools.<name>.health_check`: the pool's probes.
    pub health_check: HealthCheckSettings,
    /// `pools.<name>.circuit_breaker`: the breakers of the pool's backends.
    pub circuit_breaker: BreakerSettings,
}

/// One pool of a [`Config`] as the balancer and the health checks read it: pool 0 is the
/// top-level sections, the others are `Config::pools`.
#[derive(Debug, Clone, Copy)]
pub struct PoolRef<'a> {
    pub id: PoolId,
    pub name: &'a str,
    pub backends: &'a [BackendSpec],
    pub health_check: &'a HealthCheckSettings,
    pub circuit_breaker: &'a BreakerSettings,
}

impl Config {
    /// Pool `id`, if the configuration has it (pool 0 always exists; it has no backend in a
    /// config whose routes send everything elsewhere).
    pub fn pool(&self, id: PoolId) -> Option<PoolRef<'_>> {
        if id == DEFAULT_POOL {
            return Some(PoolRef {
                id,
                name: DEFAULT_POOL_NAME,
                backends: &self.backends,
                health_check: &self.health_check,
                circuit_breaker: &self.circuit_breaker,
            });
        }
        let pool = self.pools.get(usize::from(id) - 1)?;
        Some(PoolRef {
            id,
            name: &pool.name,
            backends: &pool.backends,
            health_check: &pool.health_check,
            circuit_breaker: &pool.circuit_breaker,
        })
    }

    /// Every pool, by id (pool 0 first, even when it has no backend).
    pub fn all_pools(&self) -> impl Iterator<Item = PoolRef<'_>> {
        (0..=self.pools.len()).filter_map(|id| self.pool(id as PoolId))
    }
}

/// Whether `name` may name a pool or a route: it ends up in metrics labels and log lines.
pub(super) fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The pools of a file: the named ones (by name) and, when written as `pools.default`, the
/// default pool's raw entry apart.
pub(super) struct CheckedPools {
    pub named: Vec<PoolSettings>,
    pub default: Option<PoolSettings>,
}

impl Checker {
    /// `pools`, each pool's sections defaulting to the top-level `health` and `breaker`.
    pub(super) fn pools(
        &mut self,
        field: Field<BTreeMap<String, Field<RawPool>>>,
        health: &HealthCheckSettings,
        breaker: &BreakerSettings,
    ) -> CheckedPools {
        let mut checked = CheckedPools {
            named: Vec::new(),
            default: None,
        };
        let map = match field {
            Field::Missing => return checked,
            Field::Value(map) => map,
            Field::Invalid(v) => {
                self.error(
                    "pools",
                    format!("expected a mapping of pool names, got {}", show(&v)),
                );
                return checked;
            }
        };
        if map.is_empty() {
            self.error(
                "pools",
                "at least one pool is required (or leave the key out)",
            );
        }
        if map.len() > MAX_POOLS {
            self.error("pools", format!("at most {MAX_POOLS} pools are supported"));
        }
        for (name, entry) in map {
            let at = format!("pools.{name}");
            if !valid_name(&name) {
                self.error(
                    &at,
                    "a pool name is 1-64 letters, digits, '-' or '_' (it names the pool in logs and metrics)",
                );
                continue;
            }
            let raw = self.section(entry, &at);
            self.unknown(&at, &raw.unknown);
            let raw_health = self.section(raw.health_check, &format!("{at}.health_check"));
            let raw_breaker = self.section(raw.circuit_breaker, &format!("{at}.circuit_breaker"));
            let pool = PoolSettings {
                backends: self.backends(raw.backends, &format!("{at}.backends")),
                health_check: self.health_check_at(
                    raw_health,
                    &format!("{at}.health_check"),
                    health,
                ),
                circuit_breaker: self.breaker_at(
                    raw_breaker,
                    &format!("{at}.circuit_breaker"),
                    breaker,
                ),
                name,
            };
            if pool.name == DEFAULT_POOL_NAME {
                checked.default = Some(pool);
            } else {
                checked.named.push(pool);
            }
        }
        checked
    }
}
