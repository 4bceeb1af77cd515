//! Reading back where an Aegis process is bound. The tests start Aegis on port 0 (the kernel
//! picks a free port while binding, so no other process can take it in between) and read the
//! port from the log: each listener logs `listening on …` with `listener` (its index in
//! `listeners[]`) and `address` fields, the admin listener `admin listening on …` with `admin`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The sockets a log reports as bound.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Bound {
    /// Bound address by listener index.
    pub listeners: BTreeMap<usize, SocketAddr>,
    pub admin: Option<SocketAddr>,
}

impl Bound {
    /// Whether `listeners` listeners (and the admin listener, if `admin`) are all reported.
    pub fn complete(&self, listeners: usize, admin: bool) -> bool {
        (0..listeners).all(|i| self.listeners.contains_key(&i)) && (!admin || self.admin.is_some())
    }
}

/// The bound sockets in `log` (JSON lines, or text lines with `key=value` fields).
pub fn bound_in(log: &str) -> Bound {
    let mut bound = Bound::default();
    for line in log.lines().filter(|l| l.contains("listening on")) {
        let (listener, address, admin) = if line.starts_with('{') {
            let Ok(json) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let text = |key: &str| json[key].as_str().map(str::to_string);
            let index = json["listener"].as_u64().map(|i| i.to_string());
            (index, text("address"), text("admin"))
        } else {
            let field = |key: &str| {
                line.split_whitespace()
                    .find_map(|word| word.strip_prefix(&format!("{key}=")))
                    .map(str::to_string)
            };
            (field("listener"), field("address"), field("admin"))
        };
        if let (Some(index), Some(address)) = (listener, address) {
            if let (Ok(index), Ok(address)) = (index.parse(), address.parse()) {
                bound.listeners.insert(index, address);
            }
        }
        if let Some(admin) = admin.and_then(|a| a.parse().ok()) {
            bound.admin = Some(admin);
        }
    }
    bound
}

/// An address a client can connect to: an unspecified IP (`0.0.0.0`, `::`) becomes loopback.
pub fn connectable(address: SocketAddr) -> SocketAddr {
    match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv4Addr::LOCALHOST, address.port()))
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv6Addr::LOCALHOST, address.port()))
        }
        _ => address,
    }
}
