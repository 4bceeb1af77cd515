//! Routing (§17): which route a request takes, by its host and path. Pure, no I/O, and no
//! allocation per request: the routes are compiled once per configuration into a
//! [`RouteTable`], and a lookup lower-cases the host into a stack buffer and makes one hash
//! lookup for the exact host plus one per label boundary for wildcards.
//!
//! - Host: reduced exactly as the allowlist reduces it (`security::request::host_name`: port
//!   and one trailing dot dropped, malformed → no host), compared case-insensitively, with the
//!   allowlist's `*.` rule (`*.example.com` matches `a.example.com` and `a.b.example.com`, not
//!   `example.com`), so an operator learns one rule.
//! - Path: `path` (segment-aware prefixes, percent-decoding, `strip_prefix`).
//! - First match wins, in configuration order.

pub mod path;

use crate::security::request::{host_matches, host_name};
use std::collections::HashMap;

/// The table's maps: foldhash, seeded per process. SECURITY: the keys are the config's; a
/// request only looks up, so it cannot grow a chain (no hash flooding), and a lookup costs a
/// few nanoseconds instead of SipHash's tens.
type Map = HashMap<Box<[u8]>, Vec<Candidate>, foldhash::fast::RandomState>;

/// A route's position in the configuration's `routes` list.
pub type RouteId = u16;

/// Longest host name looked up (DNS names are at most 253 bytes); a longer Host meets only the
/// routes without `host`.
const MAX_HOST: usize = 255;

/// A route's `host`: a name, or `*.` and a parent name; lower-case, without port or trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    Exact(String),
    /// `*.parent`, holding `parent`.
    Wildcard(String),
}

impl HostPattern {
    /// Reads `host` as written in a route: `api.example.com`, `*.example.com`, an IP address.
    /// `None` for a port, a path, a `*` anywhere but the first label, or a malformed name.
    pub fn parse(host: &str) -> Option<HostPattern> {
        let (wildcard, name) = match host.strip_prefix("*.") {
            Some(parent) => (true, parent),
            None => (false, host),
        };
        // A route's host has no port (ports are ignored when matching), and `*` only as the
        // whole first label.
        let literal = name.starts_with('[');
        let port = if literal {
            !name.ends_with(']')
        } else {
            name.contains(':')
        };
        if port || name.contains('*') || (wildcard && literal) {
            return None;
        }
        let reduced = host_name(name)?.to_ascii_lowercase();
        Some(if wildcard {
            HostPattern::Wildcard(reduced)
        } else {
            HostPattern::Exact(reduced)
        })
    }

    /// Whether every host this pattern matches, `other` matches too.
    fn within(&self, other: &HostPattern) -> bool {
        match (self, other) {
            (HostPattern::Exact(name), HostPattern::Exact(theirs)) => name == theirs,
            (HostPattern::Exact(name), HostPattern::Wildcard(parent)) => {
                host_matches(name, &format!("*.{parent}"))
            }
            (HostPattern::Wildcard(parent), HostPattern::Wildcard(theirs)) => {
                parent == theirs || host_matches(parent, &format!("*.{theirs}"))
            }
            (HostPattern::Wildcard(_), HostPattern::Exact(_)) => false,
        }
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostPattern::Exact(name) => f.write_str(name),
            HostPattern::Wildcard(parent) => write!(f, "*.{parent}"),
        }
    }
}

/// What a route matches: its host (any when `None`) and path prefix (stored without a trailing
/// slash, `""` for every path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    pub host: Option<HostPattern>,
    pub prefix: String,
}

impl RouteMatch {
    /// Whether every request `self` matches, `earlier` matches too (so `self`, listed after it,
    /// is never reached).
    pub fn shadowed_by(&self, earlier: &RouteMatch) -> bool {
        let host = match (&self.host, &earlier.host) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(mine), Some(theirs)) => mine.within(theirs),
        };
        host && path::under(self.prefix.as_bytes(), earlier.prefix.as_bytes())
    }
}

/// One candidate of a host's list: a route and its prefix.
#[derive(Debug)]
struct Candidate {
    route: RouteId,
    prefix: Box<[u8]>,
}

/// A set of name lengths (0–255): a name whose length no key has is not hashed.
#[derive(Debug, Default, Clone, Copy)]
struct Lengths([u64; 4]);

impl Lengths {
    fn insert(&mut self, len: usize) {
        if len < 256 {
            self.0[len / 64] |= 1 << (len % 64);
        }
    }

    fn contains(&self, len: usize) -> bool {
        len < 256 && self.0[len / 64] & (1 << (len % 64)) != 0
    }
}

/// The routes of one configuration, compiled for lookup.
#[derive(Debug, Default)]
pub struct RouteTable {
    exact: Map,
    /// The lengths of `exact`'s names.
    exact_lengths: Lengths,
    /// By parent name: `*.example.com` is under `example.com`.
    wildcard: Map,
    /// The lengths of `wildcard`'s parents: a suffix of a host of another length is not
    /// looked up.
    parent_lengths: Lengths,
    /// The shortest parent name in `wildcard`: shorter suffixes end the search.
    shortest_parent: usize,
    any_host: Vec<Candidate>,
}

impl RouteTable {
    /// Compiles `routes` (in configuration order; at most `RouteId::MAX` of them).
    pub fn new(routes: &[RouteMatch]) -> Self {
        let mut table = RouteTable::default();
        for (index, route) in routes.iter().enumerate() {
            let candidate = Candidate {
                route: RouteId::try_from(index).unwrap_or(RouteId::MAX),
                prefix: route.prefix.as_bytes().into(),
            };
            let list = match &route.host {
                None => &mut table.any_host,
                Some(HostPattern::Exact(name)) => {
                    table.exact_lengths.insert(name.len());
                    table.exact.entry(name.as_bytes().into()).or_default()
                }
                Some(HostPattern::Wildcard(parent)) => {
                    table.shortest_parent = if table.wildcard.is_empty() {
                        parent.len()
                    } else {
                        table.shortest_parent.min(parent.len())
                    };
                    table.parent_lengths.insert(parent.len());
                    table.wildcard.entry(parent.as_bytes().into()).or_default()
                }
            };
            list.push(candidate);
        }
        table
    }

    /// The first route (in configuration order) that matches a request with this Host value
    /// (`None` without one) and path (without the query).
    pub fn find(&self, host: Option<&str>, path: &str) -> Option<RouteId> {
        if path.as_bytes().contains(&b'%') {
            let mut buffer = [0u8; path::DECODE_BUFFER];
            if let Some(decoded) = path::decoded(path.as_bytes(), &mut buffer) {
                return self.find_decoded(host, decoded);
            }
        }
        self.find_decoded(host, path.as_bytes())
    }

    /// [`Self::find`] once the path is in the form it is matched in.
    fn find_decoded(&self, host: Option<&str>, path: &[u8]) -> Option<RouteId> {
        let mut best = None;
        let mut lower = [0u8; MAX_HOST];
        let name = match host {
            Some(host) if !(self.exact.is_empty() && self.wildcard.is_empty()) => {
                lowered(host, &mut lower)
            }
            _ => None,
        };
        if let Some(name) = name {
            if self.exact_lengths.contains(name.len()) {
                if let Some(list) = self.exact.get(name) {
                    best = first(list, path, best);
                }
            }
            if !self.wildcard.is_empty() {
                // Each parent of the name, longest first: `a.b.example.com` → `b.example.com`,
                // `example.com`, `com` (the `*.` rule of `host_matches`); only those of a
                // parent's length are hashed.
                for (i, _) in name.iter().enumerate().filter(|(_, b)| **b == b'.') {
                    let parent = &name[i + 1..];
                    if parent.len() < self.shortest_parent {
                        break;
                    }
                    if self.parent_lengths.contains(parent.len()) {
                        if let Some(list) = self.wildcard.get(parent) {
                            best = first(list, path, best);
                        }
                    }
                }
            }
        }
        first(&self.any_host, path, best)
    }
}

/// The host name of a Host value, lower-cased into `buffer`.
fn lowered<'b>(host: &str, buffer: &'b mut [u8; MAX_HOST]) -> Option<&'b [u8]> {
    let name = host_name(host.trim_matches([' ', '\t']))?;
    let out = buffer.get_mut(..name.len())?;
    out.copy_from_slice(name.as_bytes());
    out.make_ascii_lowercase();
    Some(out)
}

/// The first route of `list` whose prefix `path` is under, if it comes before `best` (lists
/// are in configuration order, so the search stops there).
fn first(list: &[Candidate], path: &[u8], best: Option<RouteId>) -> Option<RouteId> {
    let before = best.unwrap_or(RouteId::MAX);
    list.iter()
        .take_while(|c| c.route < before)
        .find(|c| path::under(path, &c.prefix))
        .map_or(best, |c| Some(c.route))
}

#[cfg(test)]
mod tests;
