//! Host allowlist (§3.4): matches the Host header against exact names and `*.domain`
//! patterns, after checking that it is a well-formed host.

/// Host allowlist (§3.4): true when the request may go on.
///
/// `host` is the Host header value. It is compared case-insensitively, without its port and
/// without one trailing dot (`Example.COM.:8080` is `example.com`). `allowed` holds lower-case
/// patterns: exact names, or `*.example.com`, which matches any subdomain of example.com
/// (`a.example.com`, `a.b.example.com`) but not `example.com` itself. An empty `allowed`
/// allows every host, including a missing or empty one. An IPv6 literal `[::1]:8080` is
/// `[::1]` and matches an allowed entry written `[::1]` or `::1`. A host that is not a
/// well-formed name (characters other than letters, digits, `-`, `_` and `.`; empty labels; a
/// non-numeric port) never matches.
#[must_use]
pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    if allowed.is_empty() {
        return true;
    }
    // SECURITY: host header injection / cache poisoning: only a well-formed host is compared,
    // so `evil.com/x.example.com` or `a..example.com` cannot satisfy a wildcard.
    let Some(name) = host_name(host.trim_matches([' ', '\t'])) else {
        return false;
    };
    allowed.iter().any(|pattern| host_matches(name, pattern))
}

/// The host part of a Host value without its port and trailing dot, or None if malformed. Not
/// lower-cased: callers compare case-insensitively (the allowlist and the routes, `route`).
pub fn host_name(host: &str) -> Option<&str> {
    if host.starts_with('[') {
        let close = host.find(']')?;
        let literal = &host[1..close];
        let valid = !literal.is_empty()
            && literal
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        return (valid && is_port_suffix(&host[close + 1..])).then_some(&host[..=close]);
    }
    // One pass (it runs per request for routes and the allowlist): the name ends at the first
    // `:`; each label is non-empty and of letters, digits, `-` and `_`; one trailing dot is
    // dropped. `label` counts the bytes of the label under way.
    let bytes = host.as_bytes();
    let mut label = 0usize;
    let mut end = bytes.len();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'.' if label == 0 => return None,
            b'.' => label = 0,
            b':' => {
                end = i;
                break;
            }
            _ if NAME_BYTE[usize::from(b)] => label += 1,
            _ => return None,
        }
    }
    if !is_port_suffix(&host[end..]) {
        return None;
    }
    let name = &host[..end];
    if label == 0 {
        // Empty, or ending with the one dot allowed (the label before it is not empty).
        return name.strip_suffix('.');
    }
    Some(name)
}

/// The bytes a label of a host name may hold: ASCII letters, digits, `-` and `_`.
static NAME_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        table[b] = byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_';
        b += 1;
    }
    table
};

/// Empty, or `:` followed by ASCII digits only.
fn is_port_suffix(suffix: &str) -> bool {
    suffix.is_empty()
        || suffix
            .strip_prefix(':')
            .is_some_and(|port| port.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether the well-formed `name` (from [`host_name`]) matches `pattern`: an exact name, or
/// `*.parent`, which matches any name with one or more labels before `.parent` but not
/// `parent` itself. Case-insensitive. The one `*.` rule of the allowlist and the routes.
pub fn host_matches(name: &str, pattern: &str) -> bool {
    let pattern = pattern.strip_suffix('.').unwrap_or(pattern);
    if let Some(parent) = pattern.strip_prefix("*.") {
        // `name` is well formed, so whatever stands before `.parent` is one or more whole labels.
        let name = name.as_bytes();
        return name.len() > parent.len() + 1
            && name[name.len() - parent.len() - 1] == b'.'
            && name[name.len() - parent.len()..].eq_ignore_ascii_case(parent.as_bytes());
    }
    if name.eq_ignore_ascii_case(pattern) {
        return true;
    }
    // An IPv6 literal also matches an entry written without brackets.
    name.strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .is_some_and(|literal| literal.eq_ignore_ascii_case(pattern))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(patterns: &[&str]) -> Vec<String> {
        patterns.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn host_allowlist_decisions() {
        let allowed = list(&["example.com", "*.example.org", "[::1]", "10.0.0.1"]);
        let cases = [
            ("example.com", true),
            ("EXAMPLE.Com", true),
            ("example.com:8080", true),
            ("example.com.", true),
            ("example.com.:80", true),
            (" example.com ", true),
            ("example.com:", true),
            ("a.example.org", true),
            ("A.B.Example.Org:443", true),
            ("example.org", false),
            (".example.org", false),
            ("a..example.org", false),
            ("evil-example.org", false),
            ("evilexample.org", false),
            ("evil.com/x.example.org", false),
            ("evil.com@a.example.org", false),
            ("a.example.org.evil.com", false),
            ("www.example.com", false),
            ("example.com:http", false),
            ("example.com:80:80", false),
            ("example.com..", false),
            ("[::1]:8080", true),
            ("[::1]", true),
            ("[::1]evil", false),
            ("[::2]", false),
            ("[", false),
            ("::1", false),
            ("10.0.0.1:80", true),
            ("", false),
            (":80", false),
        ];
        for (host, expected) in cases {
            assert_eq!(host_allowed(host, &allowed), expected, "{host:?}");
        }
    }

    #[test]
    fn ipv6_entry_without_brackets_also_matches() {
        assert!(host_allowed("[::1]:8080", &list(&["::1"])));
        assert!(host_allowed("[2001:DB8::1]", &list(&["2001:db8::1"])));
    }

    /// The reduction as first written (split on labels), kept as the reference the one-pass
    /// [`host_name`] must agree with.
    fn reference(host: &str) -> Option<&str> {
        if host.starts_with('[') {
            return host_name(host);
        }
        let name_end = host.find(':').unwrap_or(host.len());
        if !is_port_suffix(&host[name_end..]) {
            return None;
        }
        let name = &host[..name_end];
        let name = name.strip_suffix('.').unwrap_or(name);
        let well_formed = !name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        well_formed.then_some(name)
    }

    #[test]
    fn the_one_pass_reduction_agrees_with_the_reference_on_every_short_host() {
        // Every string of up to 5 of these (13^5 = 371,293), then a few longer ones.
        let alphabet = [
            "a", "Z", "0", "-", "_", ".", ":", "8", " ", "/", "@", "é", "[",
        ];
        let mut hosts = vec![String::new()];
        let mut checked = 0;
        for _ in 0..5 {
            hosts = hosts
                .iter()
                .flat_map(|h| alphabet.iter().map(move |c| format!("{h}{c}")))
                .collect();
            for host in &hosts {
                assert_eq!(host_name(host), reference(host), "{host:?}");
                checked += 1;
            }
        }
        assert!(checked > 370_000);
        for host in [
            "www.shop.site17.example.org:443",
            "a.b.c.d.e.f.",
            "a.b..c",
            "x.y:",
        ] {
            assert_eq!(host_name(host), reference(host), "{host:?}");
        }
    }

    #[test]
    fn empty_allowlist_allows_every_host() {
        for host in ["", "anything", "[::1]:1", "weird host/../"] {
            assert!(host_allowed(host, &[]), "{host:?}");
        }
    }
}
