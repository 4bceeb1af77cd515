//! Anti-SSRF: which addresses a backend may resolve to (SPEC §2.1).
//!
//! SECURITY: a backend URL is operator input, but it may come from a template, a service registry
//! or a compromised deploy pipeline. Refusing private, link-local and metadata addresses keeps a
//! misconfigured Aegis from becoming a way into the internal network or the cloud metadata service.

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What kind of address an IP is, for the SSRF policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Public,
    Loopback,
    Private,
    /// 169.254/16 (including the metadata address 169.254.169.254) and fe80::/10.
    LinkLocal,
    /// 100.64/10, carrier-grade NAT.
    SharedCgnat,
    Unspecified,
    Multicast,
    Broadcast,
    /// 240/4 and other ranges that are not routable on the internet.
    Reserved,
}

impl AddressClass {
    fn describe(self) -> &'static str {
        match self {
            AddressClass::Public => "public",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::LinkLocal => "link-local (cloud metadata range)",
            AddressClass::SharedCgnat => "carrier-grade NAT",
            AddressClass::Unspecified => "unspecified",
            AddressClass::Multicast => "multicast",
            AddressClass::Broadcast => "broadcast",
            AddressClass::Reserved => "reserved",
        }
    }
}

/// Classifies an address; IPv6 forms that embed an IPv4 address (mapped, compatible, NAT64) are
/// judged by the embedded address.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, _, _] = ip.octets();
    if ip.is_unspecified() || a == 0 {
        AddressClass::Unspecified
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_private() {
        AddressClass::Private
    } else if ip.is_link_local() {
        AddressClass::LinkLocal
    } else if a == 100 && (64..128).contains(&b) {
        AddressClass::SharedCgnat
    } else if ip.is_broadcast() {
        AddressClass::Broadcast
    } else if ip.is_multicast() {
        AddressClass::Multicast
    } else if a >= 240 {
        AddressClass::Reserved
    } else {
        AddressClass::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let first = ip.segments()[0];
    if ip.is_unspecified() {
        AddressClass::Unspecified
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if first & 0xfe00 == 0xfc00 {
        AddressClass::Private
    } else if first & 0xffc0 == 0xfe80 {
        AddressClass::LinkLocal
    } else if ip.is_multicast() {
        AddressClass::Multicast
    } else {
        AddressClass::Public
    }
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`) or
/// NAT64 (`64:ff9b::a.b.c.d`) IPv6 address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    let compatible = s[..6].iter().all(|&x| x == 0) && !ip.is_loopback() && !ip.is_unspecified();
    let nat64 = s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|&x| x == 0);
    (compatible || nat64).then_some(tail)
}

/// The SSRF policy of §2.1 as configured.
#[derive(Debug, Clone, Default)]
pub struct BackendAddressPolicy {
    /// `development.allow_loopback_backends`: loopback passes, nothing else.
    pub allow_loopback: bool,
    /// `security.allowed_backend_networks`: private ranges that may be used.
    pub allowed_networks: Vec<IpNet>,
}

impl BackendAddressPolicy {
    /// Ok when a backend may use `ip`; otherwise why not.
    pub fn check(&self, ip: IpAddr) -> Result<(), String> {
        let class = classify(ip);
        let listed = || self.allowed_networks.iter().any(|net| net.contains(&ip));
        let allowed = match class {
            AddressClass::Public => true,
            AddressClass::Loopback => self.allow_loopback || listed(),
            AddressClass::Private | AddressClass::SharedCgnat => listed(),
            // SECURITY: link-local covers 169.254.169.254, the cloud metadata service; no
            // setting lets a backend reach it.
            AddressClass::LinkLocal
            | AddressClass::Unspecified
            | AddressClass::Multicast
            | AddressClass::Broadcast
            | AddressClass::Reserved => false,
        };
        if allowed {
            return Ok(());
        }
        let hint = match class {
            AddressClass::Loopback => {
                " (set development.allow_loopback_backends: true for local testing)"
            }
            AddressClass::Private | AddressClass::SharedCgnat => {
                " (list its network in security.allowed_backend_networks to allow it)"
            }
            _ => "",
        };
        Err(format!("{ip} is a {} address{hint}", class.describe()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table() {
        let table = [
            ("8.8.8.8", AddressClass::Public),
            ("127.0.0.1", AddressClass::Loopback),
            ("127.200.0.9", AddressClass::Loopback),
            ("10.1.2.3", AddressClass::Private),
            ("172.16.0.1", AddressClass::Private),
            ("172.32.0.1", AddressClass::Public),
            ("192.168.1.1", AddressClass::Private),
            ("169.254.169.254", AddressClass::LinkLocal),
            ("100.64.0.1", AddressClass::SharedCgnat),
            ("100.128.0.1", AddressClass::Public),
            ("0.0.0.0", AddressClass::Unspecified),
            ("0.1.2.3", AddressClass::Unspecified),
            ("224.0.0.1", AddressClass::Multicast),
            ("255.255.255.255", AddressClass::Broadcast),
            ("240.0.0.1", AddressClass::Reserved),
            ("::1", AddressClass::Loopback),
            ("::", AddressClass::Unspecified),
            ("fd00::1", AddressClass::Private),
            ("fe80::1", AddressClass::LinkLocal),
            ("ff02::1", AddressClass::Multicast),
            ("2001:4860:4860::8888", AddressClass::Public),
            ("::ffff:127.0.0.1", AddressClass::Loopback),
            ("::ffff:169.254.169.254", AddressClass::LinkLocal),
            ("::ffff:10.0.0.1", AddressClass::Private),
            ("64:ff9b::a9fe:a9fe", AddressClass::LinkLocal),
            ("::10.0.0.1", AddressClass::Private),
        ];
        for (ip, want) in table {
            assert_eq!(classify(ip.parse().unwrap()), want, "{ip}");
        }
    }

    #[test]
    fn policy_flags_open_only_what_they_name() {
        let strict = BackendAddressPolicy::default();
        assert!(strict.check("127.0.0.1".parse().unwrap()).is_err());
        assert!(strict.check("93.184.216.34".parse().unwrap()).is_ok());
        let dev = BackendAddressPolicy {
            allow_loopback: true,
            ..Default::default()
        };
        assert!(dev.check("127.0.0.1".parse().unwrap()).is_ok());
        assert!(dev.check("::1".parse().unwrap()).is_ok());
        assert!(dev.check("10.0.0.1".parse().unwrap()).is_err());
        assert!(dev.check("169.254.169.254".parse().unwrap()).is_err());
        let nets = BackendAddressPolicy {
            allow_loopback: false,
            allowed_networks: vec![
                "10.0.0.0/8".parse().unwrap(),
                "169.254.0.0/16".parse().unwrap(),
            ],
        };
        assert!(nets.check("10.9.8.7".parse().unwrap()).is_ok());
        assert!(nets.check("192.168.0.1".parse().unwrap()).is_err());
        let metadata = nets.check("169.254.169.254".parse().unwrap()).unwrap_err();
        assert!(metadata.contains("link-local"), "{metadata}");
    }
}
