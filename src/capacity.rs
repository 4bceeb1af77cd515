//! Connection capacity: the open-file limit (raised to the hard limit at startup), the cap on
//! client connections (`server.max_connections`), and local resource errors — Aegis's own
//! shortage of descriptors, buffers or ports, which is never blamed on a backend.
//!
//! The cap is a semaphore that Pingora's accept loops take a permit from *before* `accept()`
//! (Aegis's patch of pingora-core, `docs/decisions/accept-gate.md`): with every permit taken,
//! further connections wait in the kernel's listen backlog instead of being accepted and failed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Descriptors kept aside from client and upstream connections: listeners, the admin listener
/// and its connections, log files, stdio, the runtimes' epoll and wake-up descriptors.
const RESERVED_FILES: u64 = 64;

/// Below this many client connections, the startup warning calls the cap low.
const LOW_CAP: usize = 1024;

/// The open-file limit in force, and the soft limit found at startup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLimit {
    pub soft: u64,
    pub hard: u64,
    pub found: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, as Go's runtime, HAProxy and nginx's
/// `worker_rlimit_nofile` do: the usual soft limit of 1,024 (a login shell, systemd's
/// `LimitNOFILE=1024:524288`) is far below what a proxy needs, and the hard limit is the
/// operator's real ceiling.
pub fn raise_file_limit() -> nix::Result<FileLimit> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};
    let (found, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    // An unlimited hard limit (not on Linux) is taken as the kernel's usual per-process ceiling.
    let target = if hard == RLIM_INFINITY { 1 << 20 } else { hard };
    if found < target {
        setrlimit(Resource::RLIMIT_NOFILE, target, hard)?;
    }
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    Ok(FileLimit { soft, hard, found })
}

/// The default `server.max_connections` for `limit` open files: every client connection may
/// hold an upstream connection while its request is in flight (two descriptors), the upstream
/// pool keeps up to `pool` idle connections, health checks open one per backend, and
/// [`RESERVED_FILES`] go to everything else. HAProxy derives its `maxconn` the same way.
pub fn derived_max_connections(limit: u64, pool: usize, backends: usize) -> usize {
    let reserve = RESERVED_FILES + pool as u64 + backends as u64;
    let cap = (limit.saturating_sub(reserve) / 2).max(1);
    usize::try_from(cap)
        .unwrap_or(usize::MAX)
        .min(Semaphore::MAX_PERMITS)
}

/// A shortage on Aegis's side when opening an upstream socket: not the backend's fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalResource {
    /// The process's open-file limit (EMFILE).
    ProcessFiles,
    /// The system-wide open-file limit (ENFILE).
    SystemFiles,
    /// Kernel socket buffers or memory (ENOBUFS, ENOMEM).
    Buffers,
    /// No local address or ephemeral port left (EADDRNOTAVAIL).
    Ports,
}

impl LocalResource {
    pub const ALL: [LocalResource; 4] = [
        LocalResource::ProcessFiles,
        LocalResource::SystemFiles,
        LocalResource::Buffers,
        LocalResource::Ports,
    ];

    /// The `kind` label of `aegis_local_resource_errors_total`.
    pub fn kind(self) -> &'static str {
        match self {
            LocalResource::ProcessFiles => "process_files",
            LocalResource::SystemFiles => "system_files",
            LocalResource::Buffers => "buffers",
            LocalResource::Ports => "ephemeral_ports",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    pub fn of_errno(errno: i32) -> Option<Self> {
        match errno {
            libc::EMFILE => Some(LocalResource::ProcessFiles),
            libc::ENFILE => Some(LocalResource::SystemFiles),
            libc::ENOBUFS | libc::ENOMEM => Some(LocalResource::Buffers),
            libc::EADDRNOTAVAIL => Some(LocalResource::Ports),
            _ => None,
        }
    }

    /// The local shortage behind a Pingora error, if that is what its root cause is.
    pub fn of_error(e: &pingora::Error) -> Option<Self> {
        e.root_cause()
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::raw_os_error)
            .and_then(Self::of_errno)
    }
}

/// The cap on client connections and the counts operators see.
#[derive(Debug)]
pub struct Capacity {
    pub limit: FileLimit,
    pub max_connections: usize,
    /// Idle upstream connections Pingora keeps at most (its `upstream_keepalive_pool_size`).
    pub upstream_pool: usize,
    gate: Arc<Semaphore>,
    local_errors: [AtomicU64; LocalResource::ALL.len()],
}

impl Capacity {
    pub fn new(limit: FileLimit, max_connections: usize, upstream_pool: usize) -> Self {
        Capacity {
            limit,
            max_connections,
            upstream_pool,
            gate: Arc::new(Semaphore::new(max_connections)),
            local_errors: Default::default(),
        }
    }

    /// The semaphore Pingora's accept loops take a permit from per client connection.
    pub fn gate(&self) -> Arc<Semaphore> {
        self.gate.clone()
    }

    /// Client connections open now.
    pub fn client_connections(&self) -> usize {
        self.max_connections
            .saturating_sub(self.gate.available_permits())
    }

    /// Counts one local resource error; returns how many of its kind there were so far.
    pub fn record_local_error(&self, kind: LocalResource) -> u64 {
        self.local_errors[kind.index()].fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Local resource errors so far, by kind label.
    pub fn local_errors(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        LocalResource::ALL.iter().map(|k| {
            (
                k.kind(),
                self.local_errors[k.index()].load(Ordering::Relaxed),
            )
        })
    }
}

/// Raises the open-file limit, settles `server.max_connections` and logs both; warns when the
/// cap is low or above what the limit can carry.
pub fn plan(configured: Option<usize>, upstream_pool: usize, backends: usize) -> Capacity {
    let limit = match raise_file_limit() {
        Ok(limit) => limit,
        Err(e) => {
            log::warn!("cannot read or raise the open-file limit: {e}; assuming 1024");
            FileLimit {
                soft: 1024,
                hard: 1024,
                found: 1024,
            }
        }
    };
    if limit.soft > limit.found {
        log::info!(
            "open-file limit {} (raised from {} to the hard limit)",
            limit.soft,
            limit.found
        );
    } else {
        log::info!("open-file limit {} (hard limit {})", limit.soft, limit.hard);
    }
    let fits = derived_max_connections(limit.soft, upstream_pool, backends);
    let max_connections = configured.unwrap_or(fits).min(Semaphore::MAX_PERMITS);
    log::info!("accepting up to {max_connections} client connections (server.max_connections)");
    if max_connections > fits {
        log::warn!(
            "server.max_connections {max_connections} is more than the open-file limit {} \
             carries (about {fits} proxied connections): under load Aegis may run out of \
             descriptors; raise the limit (LimitNOFILE, ulimit -n) or lower the cap",
            limit.soft
        );
    } else if max_connections < LOW_CAP {
        log::warn!(
            "only {max_connections} client connections at once (server.max_connections, \
             open-file limit {}): further clients wait; raise the limit (LimitNOFILE, ulimit -n)",
            limit.soft
        );
    }
    Capacity::new(limit, max_connections, upstream_pool)
}

/// Descriptors the process has open now (from `/proc/self/fd`); `None` where that is unknown.
pub fn open_files() -> Option<u64> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    // The directory handle itself is one of the entries.
    Some((entries.count() as u64).saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cap_leaves_room_for_upstream_connections() {
        // 1024 files, a pool of 128, 1 backend: (1024 - 64 - 128 - 1) / 2.
        assert_eq!(derived_max_connections(1024, 128, 1), 415);
        assert_eq!(derived_max_connections(524_288, 128, 3), 262_046);
        // Never zero, however small the limit.
        assert_eq!(derived_max_connections(16, 128, 1), 1);
    }

    #[test]
    fn local_shortages_are_told_from_backend_failures() {
        assert_eq!(
            LocalResource::of_errno(libc::EMFILE),
            Some(LocalResource::ProcessFiles)
        );
        assert_eq!(
            LocalResource::of_errno(libc::EADDRNOTAVAIL),
            Some(LocalResource::Ports)
        );
        assert_eq!(LocalResource::of_errno(libc::ECONNREFUSED), None);
        let io = std::io::Error::from_raw_os_error(libc::EMFILE);
        let socket = pingora::Error::because(
            pingora::ErrorType::SocketError,
            "failed to create socket",
            io,
        );
        let connect = pingora::Error::because(pingora::ErrorType::ConnectError, "connect", socket);
        assert_eq!(
            LocalResource::of_error(&connect),
            Some(LocalResource::ProcessFiles)
        );
        let refused = pingora::Error::because(
            pingora::ErrorType::ConnectRefused,
            "connect",
            std::io::Error::from_raw_os_error(libc::ECONNREFUSED),
        );
        assert_eq!(LocalResource::of_error(&refused), None);
    }

    #[test]
    fn the_gate_counts_open_connections_and_local_errors() {
        let limit = FileLimit {
            soft: 1024,
            hard: 1024,
            found: 1024,
        };
        let capacity = Capacity::new(limit, 3, 128);
        let gate = capacity.gate();
        let a = gate.clone().try_acquire_owned().unwrap();
        let _b = gate.clone().try_acquire_owned().unwrap();
        assert_eq!(capacity.client_connections(), 2);
        drop(a);
        assert_eq!(capacity.client_connections(), 1);
        capacity.record_local_error(LocalResource::Ports);
        let errors: Vec<_> = capacity.local_errors().collect();
        assert!(errors.contains(&("ephemeral_ports", 1)), "{errors:?}");
        assert!(errors.contains(&("process_files", 0)), "{errors:?}");
    }
}
