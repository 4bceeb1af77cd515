//! Client IP masking for logs (§7.1).
//!
//! SECURITY: logs are shipped, kept and read by many; a full client address is personal data.
//! IPv4 keeps its first two octets, IPv6 its first two groups: enough to see a network, not a
//! person.

use std::fmt;
use std::net::IpAddr;

/// A client address that displays masked: `203.0.x.x`, `2001:db8:x:x:x:x:x:x`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaskedIp(pub IpAddr);

impl fmt::Display for MaskedIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => {
                let [a, b, _, _] = v4.octets();
                write!(f, "{a}.{b}.x.x")
            }
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => MaskedIp(IpAddr::V4(v4)).fmt(f),
                None => {
                    let s = v6.segments();
                    write!(f, "{:x}:{:x}:x:x:x:x:x:x", s[0], s[1])
                }
            },
        }
    }
}

impl MaskedIp {
    /// Appends the masked address to `out`: the same text as `Display`, without the formatting
    /// machinery for IPv4 (the access log writes one per request).
    pub fn push_to(&self, out: &mut String) {
        let v4 = match self.0 {
            IpAddr::V4(v4) => v4,
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4,
                None => {
                    use fmt::Write as _;
                    let _ = write!(out, "{self}");
                    return;
                }
            },
        };
        let [a, b, _, _] = v4.octets();
        push_u8(out, a);
        out.push('.');
        push_u8(out, b);
        out.push_str(".x.x");
    }
}

fn push_u8(out: &mut String, n: u8) {
    if n >= 100 {
        out.push(char::from(b'0' + n / 100));
    }
    if n >= 10 {
        out.push(char::from(b'0' + n / 10 % 10));
    }
    out.push(char::from(b'0' + n % 10));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_only_the_network_part() {
        let table = [
            ("203.0.113.7", "203.0.x.x"),
            ("127.0.0.1", "127.0.x.x"),
            ("2001:db8::1", "2001:db8:x:x:x:x:x:x"),
            ("::1", "0:0:x:x:x:x:x:x"),
            ("::ffff:198.51.100.2", "198.51.x.x"),
        ];
        for (ip, want) in table {
            assert_eq!(MaskedIp(ip.parse().unwrap()).to_string(), want);
            let mut pushed = String::new();
            MaskedIp(ip.parse().unwrap()).push_to(&mut pushed);
            assert_eq!(pushed, want);
        }
        let mut pushed = String::new();
        MaskedIp("10.9.8.7".parse().unwrap()).push_to(&mut pushed);
        assert_eq!(pushed, "10.9.x.x");
    }
}
