//! The per-client table behind cluster-wide limits: what this instance admitted since the last
//! sync (`pending`), and what the other instances admitted (`others`), as of the last sync.
//!
//! The request path touches one shard's mutex and a hash map entry; the sync loop drains the
//! pending counts once per `sync_interval` ([`SharedTable::drain`]) and applies the totals Redis
//! answered ([`SharedTable::apply`]). Time is passed in as the index of a fixed window aligned on
//! the Unix clock (`unix_ms / window_ms`), the same on every instance, and the fraction of it gone.

use crate::limit::{ClientKey, SharedCounts};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Shards of the table: workers rarely wait on each other.
const SHARDS: usize = 64;
/// Clients tracked at most. Beyond it a new client is limited locally only (as with Redis down):
/// memory stays bounded (about 64 bytes a client, 4 MiB at most) whatever the number of clients.
pub const MAX_TRACKED: usize = 1 << 16;

/// One client's counts.
#[derive(Debug, Clone, Default, PartialEq)]
struct Entry {
    /// Admitted here since the last drain.
    pending: u64,
    /// The fixed window `mine` and `total` belong to.
    window: u64,
    /// Admitted here in this window and the previous one (already sent).
    mine: [u64; 2],
    /// The cluster's totals in this window and the previous one, as Redis last answered.
    total: [u64; 2],
    /// Last window in which this client had admissions to send.
    active: u64,
    /// The others' share of the sliding window, as of the last sync.
    others: f64,
    /// Whether Redis has answered for this client yet.
    synced: bool,
}

impl Entry {
    /// Moves the entry into `window`: the current counts become the previous ones.
    fn rotate(&mut self, window: u64) {
        if window == self.window {
            return;
        }
        let [mine, total] = if window == self.window + 1 {
            [self.mine[0], self.total[0]]
        } else {
            [0, 0]
        };
        self.mine = [0, mine];
        self.total = [0, total];
        self.window = window;
    }
}

/// What one client's sync sends: the key, the window and this instance's new admissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delta {
    pub client: ClientKey,
    pub window: u64,
    pub count: u64,
}

/// The table: sharded maps, and whether sharing is on (Redis reachable).
pub struct SharedTable {
    shards: Vec<Mutex<HashMap<ClientKey, Entry>>>,
    tracked: AtomicUsize,
    up: AtomicBool,
    /// Other instances seen at the last sync.
    peers: AtomicUsize,
}

impl Default for SharedTable {
    fn default() -> Self {
        SharedTable {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            tracked: AtomicUsize::new(0),
            up: AtomicBool::new(false),
            peers: AtomicUsize::new(0),
        }
    }
}

impl SharedTable {
    fn shard(&self, client: ClientKey) -> std::sync::MutexGuard<'_, HashMap<ClientKey, Entry>> {
        let id = client.id();
        let mixed = (id ^ (id >> 64)) as u64;
        let index = (mixed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize % SHARDS;
        self.shards[index].lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Clients tracked now.
    pub fn tracked(&self) -> usize {
        self.tracked.load(Ordering::Relaxed)
    }

    /// Redis went away: forget the others' counts at once, so local limits apply alone.
    pub fn set_down(&self) {
        self.up.store(false, Ordering::Relaxed);
        for shard in &self.shards {
            shard.lock().unwrap_or_else(|p| p.into_inner()).clear();
        }
        self.tracked.store(0, Ordering::Relaxed);
    }

    /// Redis answered; `peers` other instances synced lately.
    pub fn set_up(&self, peers: usize) {
        self.peers.store(peers, Ordering::Relaxed);
        self.up.store(true, Ordering::Relaxed);
    }

    /// Takes every client's pending count, for `window`; forgets clients not admitted here for a
    /// whole window (their keys expire in Redis too).
    pub fn drain(&self, window: u64) -> Vec<Delta> {
        let mut deltas = Vec::new();
        for shard in &self.shards {
            let mut map = shard.lock().unwrap_or_else(|p| p.into_inner());
            let before = map.len();
            map.retain(|client, entry| {
                entry.rotate(window);
                if entry.pending == 0 && entry.active + 1 < window {
                    return false;
                }
                if entry.pending > 0 {
                    entry.active = window;
                }
                entry.mine[0] += entry.pending;
                deltas.push(Delta {
                    client: *client,
                    window,
                    count: std::mem::take(&mut entry.pending),
                });
                true
            });
            self.tracked
                .fetch_sub(before - map.len(), Ordering::Relaxed);
        }
        deltas
    }

    /// Applies the cluster totals Redis answered for `window` (one per delta, in order), with
    /// `elapsed` (0..1) of the window gone.
    pub fn apply(&self, window: u64, elapsed: f64, totals: &[(ClientKey, u64)]) {
        for &(client, total) in totals {
            let mut map = self.shard(client);
            let Some(entry) = map.get_mut(&client) else {
                continue;
            };
            entry.rotate(window);
            entry.total[0] = total;
            let current = total.saturating_sub(entry.mine[0]) as f64;
            let previous = entry.total[1].saturating_sub(entry.mine[1]) as f64;
            entry.others = previous * (1.0 - elapsed.clamp(0.0, 1.0)) + current;
            entry.synced = true;
        }
    }
}

impl SharedCounts for SharedTable {
    /// A client this instance has not synced yet may already be spending its limit elsewhere: until
    /// Redis answers for it (one sync interval), it gets this instance's even share of the limit,
    /// so that a burst spread over N instances is not granted N times.
    fn others(&self, client: ClientKey, limit: f64) -> f64 {
        if !self.is_up() {
            return 0.0;
        }
        let unsynced = || {
            let peers = self.peers.load(Ordering::Relaxed) as f64;
            limit * peers / (peers + 1.0)
        };
        match self.shard(client).get(&client) {
            Some(entry) if entry.synced => entry.others,
            Some(_) => unsynced(),
            // Past the cap the client is not tracked: local limits only.
            None if self.tracked() >= MAX_TRACKED => 0.0,
            None => unsynced(),
        }
    }

    fn admitted(&self, client: ClientKey) {
        if !self.is_up() {
            return;
        }
        let mut map = self.shard(client);
        if let Some(entry) = map.get_mut(&client) {
            entry.pending += 1;
            return;
        }
        // SECURITY: a flood of distinct addresses must not grow memory without bound; past the
        // cap new clients are limited locally only.
        if self.tracked.load(Ordering::Relaxed) >= MAX_TRACKED {
            return;
        }
        self.tracked.fetch_add(1, Ordering::Relaxed);
        map.insert(
            client,
            Entry {
                pending: 1,
                ..Entry::default()
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> ClientKey {
        ClientKey::of(std::net::Ipv4Addr::from(n).into())
    }

    #[test]
    fn others_are_the_cluster_total_minus_our_own() {
        let table = SharedTable::default();
        table.set_up(0);
        let a = key(1);
        for _ in 0..5 {
            table.admitted(a);
        }
        let deltas = table.drain(100);
        assert_eq!(
            deltas,
            vec![Delta {
                client: a,
                window: 100,
                count: 5
            }]
        );
        // Two other instances admitted 12 between them.
        table.apply(100, 0.5, &[(a, 17)]);
        assert_eq!(table.others(a, 20.0), 12.0);
        // Next window: the previous window's others weigh by what is left of the new one.
        table.admitted(a);
        table.drain(101);
        table.apply(101, 0.25, &[(a, 1 + 4)]);
        assert_eq!(table.others(a, 20.0), 12.0 * 0.75 + 4.0);
    }

    #[test]
    fn a_client_not_synced_yet_gets_an_even_share() {
        let table = SharedTable::default();
        table.set_up(3);
        assert_eq!(table.others(key(7), 20.0), 15.0, "one of four instances");
        table.admitted(key(7));
        assert_eq!(table.others(key(7), 20.0), 15.0);
        table.drain(5);
        table.apply(5, 0.0, &[(key(7), 1)]);
        assert_eq!(
            table.others(key(7), 20.0),
            0.0,
            "Redis says nobody else saw it"
        );
    }

    #[test]
    fn idle_clients_are_forgotten_and_the_table_is_capped() {
        let table = SharedTable::default();
        table.set_up(0);
        table.admitted(key(1));
        table.drain(10);
        assert_eq!(table.tracked(), 1);
        table.drain(11);
        assert_eq!(table.tracked(), 1, "kept while its window may still count");
        table.drain(12);
        assert_eq!(table.tracked(), 0);
        for n in 0..(MAX_TRACKED as u32 + 10) {
            table.admitted(key(n));
        }
        assert_eq!(table.tracked(), MAX_TRACKED);
    }

    #[test]
    fn down_means_local_only() {
        let table = SharedTable::default();
        table.set_up(0);
        table.admitted(key(1));
        table.drain(1);
        table.apply(1, 0.0, &[(key(1), 50)]);
        assert_eq!(table.others(key(1), 20.0), 49.0);
        table.set_down();
        assert_eq!(table.others(key(1), 20.0), 0.0);
        table.admitted(key(1));
        assert_eq!(table.tracked(), 0);
    }
}
