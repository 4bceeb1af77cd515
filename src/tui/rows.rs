//! The lines of the backends table (§17): with named pools, a heading line per pool (its summary)
//! followed by its backends unless the pool is collapsed; with only the default pool, the backends
//! alone, as before pools existed. Pure: the selection and the drawing both read this list.

use crate::status::snapshot::Snapshot;
use std::collections::BTreeSet;

/// One line of the backends table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    /// The heading (summary) line of `snapshot.pools[i]`.
    Pool(usize),
    /// `snapshot.backends[i]`.
    Backend(usize),
}

/// True when the table groups backends under pool headings: the instance has a pool besides
/// `default`. (An instance from before pools has no `pools` at all: not grouped.)
pub fn grouped(snapshot: &Snapshot) -> bool {
    snapshot.pools.iter().any(|p| p.name != "default")
}

/// The table's lines, top to bottom. Pools without backends (the `default` pool of a config
/// that has only named pools) get no heading: there is nothing to show under it. Pool names in
/// `collapsed` show their heading only.
pub fn items(snapshot: &Snapshot, collapsed: &BTreeSet<String>) -> Vec<Item> {
    let backends = &snapshot.backends;
    if !grouped(snapshot) {
        return (0..backends.len()).map(Item::Backend).collect();
    }
    let mut items = Vec::with_capacity(snapshot.pools.len() + backends.len());
    for (p, pool) in snapshot.pools.iter().enumerate() {
        let mine = || {
            (0..backends.len())
                .filter(|&b| backends[b].pool == pool.name)
                .map(Item::Backend)
        };
        if mine().next().is_none() {
            continue;
        }
        items.push(Item::Pool(p));
        if !collapsed.contains(&pool.name) {
            items.extend(mine());
        }
    }
    // A backend whose pool is not listed (not sent by Aegis, but the data is remote) is still
    // shown, after the pools.
    let listed = |name: &str| snapshot.pools.iter().any(|p| p.name == name);
    items.extend(
        (0..backends.len())
            .filter(|&b| !listed(&backends[b].pool))
            .map(Item::Backend),
    );
    items
}

/// The name of the pool `item` belongs to.
pub fn pool_of(snapshot: &Snapshot, item: Item) -> Option<&str> {
    match item {
        Item::Pool(p) => snapshot.pools.get(p).map(|p| p.name.as_str()),
        Item::Backend(b) => snapshot.backends.get(b).map(|b| b.pool.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::snapshot::{BackendSnapshot, PoolSnapshot};

    fn snapshot(pools: &[&str], backends: &[&str]) -> Snapshot {
        Snapshot {
            pools: pools
                .iter()
                .map(|name| PoolSnapshot {
                    name: name.to_string(),
                    ..PoolSnapshot::default()
                })
                .collect(),
            backends: backends
                .iter()
                .map(|pool| BackendSnapshot {
                    pool: pool.to_string(),
                    ..BackendSnapshot::default()
                })
                .collect(),
            ..Snapshot::default()
        }
    }

    #[test]
    fn only_the_default_pool_is_the_plain_list() {
        use Item::Backend;
        let none = BTreeSet::new();
        let plain = [Backend(0), Backend(1)];
        assert_eq!(items(&snapshot(&[], &["", ""]), &none), plain);
        let default = snapshot(&["default"], &["default", "default"]);
        assert!(!grouped(&default));
        assert_eq!(items(&default, &none), plain);
    }

    #[test]
    fn named_pools_get_headings_and_collapse_to_them() {
        use Item::{Backend, Pool};
        // The default pool is empty (no top-level backends): no heading for it.
        let s = snapshot(&["default", "api", "www"], &["api", "api", "www", "stray"]);
        assert!(grouped(&s));
        let mut collapsed = BTreeSet::new();
        assert_eq!(
            items(&s, &collapsed),
            [
                Pool(1),
                Backend(0),
                Backend(1),
                Pool(2),
                Backend(2),
                Backend(3)
            ]
        );
        collapsed.insert("api".to_string());
        assert_eq!(
            items(&s, &collapsed),
            [Pool(1), Pool(2), Backend(2), Backend(3)]
        );
        assert_eq!(pool_of(&s, Pool(2)), Some("www"));
        assert_eq!(pool_of(&s, Backend(3)), Some("stray"));
        assert_eq!(pool_of(&s, Backend(9)), None);
    }
}
