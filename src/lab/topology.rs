//! The lab's shape, computed offline from the flags: which hosts exist, their
//! roles, interfaces, addresses and stable MACs, and every name the lab
//! creates on this machine (all derived from the prefix so two labs never
//! collide). Pure functions only: nothing here touches the system.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Most workers a lab on a /24 LAN can have: worker N gets LAN host number
/// 10 + N, which must stay below the DHCP pool that starts at host number 100.
pub const MAX_WORKERS: u32 = 89;

/// Most workers a LAN can hold: worker N gets host number 10 + N, below the
/// DHCP pool, which is .100-.200 of the LAN's last /24 (89 on a /24, 857 on a
/// /22, 1881 on a /21).
pub fn max_workers(lan: Ipv4Net) -> u32 {
    pool_start(lan) - 11
}

/// Host number of the DHCP pool's first address: .100 of the LAN's last /24.
fn pool_start(lan: Ipv4Net) -> u32 {
    let size = 1u32 << (32 - u32::from(lan.prefix_len()));
    size - 256 + 100
}

/// Longest prefix: `<prefix>-ctl` must fit Linux's 15-byte interface names.
pub const MAX_PREFIX_LEN: usize = 8;

/// What a lab host is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The stand-in for the institute network / internet.
    Wan,
    /// The cluster's head: router, DHCP/DNS, NFS.
    Head,
    /// A compute node on the LAN.
    Worker,
}

/// Which lab bridge an interface is plugged into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bridge {
    Wan,
    Lan,
}

impl Bridge {
    /// The bridge's name inside the lab's bridge namespace.
    pub fn name(self) -> &'static str {
        match self {
            Bridge::Wan => "wan",
            Bridge::Lan => "lan",
        }
    }
}

/// One interface of a host: a veth whose host end is `name` and whose other
/// end (`bridge_port`, in the bridge namespace) is a port of `bridge`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iface {
    pub name: String,
    pub bridge: Bridge,
    pub bridge_port: String,
    pub mac: String,
    /// Static address with prefix length, if the lab assigns one.
    pub address: Option<Ipv4Net>,
}

/// One lab host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    pub name: String,
    pub role: Role,
    pub ifaces: Vec<Iface>,
    /// Default route, if the lab sets one.
    pub gateway: Option<Ipv4Addr>,
    /// The worker's number (1-based), for workers.
    pub index: Option<u32>,
    /// The LAN address the head's DHCP server will hand this worker.
    pub lan_ip: Option<Ipv4Addr>,
}

impl HostSpec {
    /// The address the controller uses to reach this host (WAN hosts
    /// directly, workers at their future LAN address through the head).
    pub fn ssh_address(&self) -> Option<Ipv4Addr> {
        match self.role {
            Role::Worker => self.lan_ip,
            _ => self.ifaces.iter().find_map(|i| i.address.map(|a| a.addr())),
        }
    }
}

/// The whole lab: names, subnets and hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    pub prefix: String,
    pub wan: Ipv4Net,
    pub lan: Ipv4Net,
    pub workers: u32,
}

impl Topology {
    /// Validate the flags and build the topology.
    pub fn new(prefix: &str, wan: &str, lan: &str, workers: u32) -> Result<Topology> {
        validate_prefix(prefix)?;
        let wan = parse_subnet("--wan", wan)?;
        let lan = parse_subnet("--lan", lan)?;
        if wan.contains(&lan.network()) || lan.contains(&wan.network()) {
            return Err(Error::Lab {
                message: format!("the WAN {wan} and the LAN {lan} overlap"),
                help: Some("give --wan and --lan two disjoint subnets".into()),
            });
        }
        let max = max_workers(lan);
        if workers > max {
            return Err(Error::Lab {
                message: format!("{workers} workers is more than a LAN of {lan} holds ({max})"),
                help: Some(format!(
                    "worker N gets LAN host number 10+N, below the DHCP pool; use --workers {max} or fewer, or a larger --lan (a /22 holds 857, a /21 1881)"
                )),
            });
        }
        Ok(Topology {
            prefix: prefix.to_string(),
            wan,
            lan,
            workers,
        })
    }

    /// The controller's veth in the root namespace.
    pub fn ctl_iface(&self) -> String {
        format!("{}-ctl", self.prefix)
    }

    /// The controller's address on the WAN: the last usable one.
    pub fn ctl_addr(&self) -> Ipv4Net {
        host_net(self.wan, last_host(self.wan))
    }

    pub fn wan_host_addr(&self) -> Ipv4Net {
        host_net(self.wan, 1)
    }

    pub fn head_wan_addr(&self) -> Ipv4Net {
        host_net(self.wan, 2)
    }

    pub fn head_lan_ip(&self) -> Ipv4Addr {
        nth(self.lan, 1)
    }

    pub fn worker_ip(&self, n: u32) -> Ipv4Addr {
        nth(self.lan, 10 + n)
    }

    /// The DHCP pool written to the inventory: .100 to .200 of the LAN's last /24.
    pub fn dhcp_range(&self) -> (Ipv4Addr, Ipv4Addr) {
        let start = pool_start(self.lan);
        (nth(self.lan, start), nth(self.lan, start + 100))
    }

    /// A stable, locally administered unicast MAC: 02:PP:PP:RR:NN:NN with
    /// PP:PP a hash of the prefix, RR the role/interface and NN the index.
    pub fn mac(&self, role_byte: u8, index: u32) -> String {
        let h = fnv1a16(&self.prefix);
        format!(
            "02:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            h >> 8,
            h & 0xff,
            role_byte,
            (index >> 8) & 0xff,
            index & 0xff
        )
    }

    pub fn worker_name(n: u32) -> String {
        format!("w{n}")
    }

    /// Every host of the lab, in start order: wan, head, w1..wN.
    pub fn hosts(&self) -> Vec<HostSpec> {
        let names = ["wan".to_string(), "head".to_string()]
            .into_iter()
            .chain((1..=self.workers).map(Self::worker_name));
        names.filter_map(|n| self.host(&n)).collect()
    }

    /// The spec of one host by name, if this topology has it.
    pub fn host(&self, name: &str) -> Option<HostSpec> {
        match name {
            "wan" => Some(HostSpec {
                name: "wan".into(),
                role: Role::Wan,
                ifaces: vec![Iface {
                    name: "eth0".into(),
                    bridge: Bridge::Wan,
                    bridge_port: "wan-0".into(),
                    mac: self.mac(0x01, 0),
                    address: Some(self.wan_host_addr()),
                }],
                gateway: None,
                index: None,
                lan_ip: None,
            }),
            "head" => Some(HostSpec {
                name: "head".into(),
                role: Role::Head,
                ifaces: vec![
                    Iface {
                        name: "eth0".into(),
                        bridge: Bridge::Wan,
                        bridge_port: "head-0".into(),
                        mac: self.mac(0x02, 0),
                        address: Some(self.head_wan_addr()),
                    },
                    Iface {
                        name: "eth1".into(),
                        bridge: Bridge::Lan,
                        bridge_port: "head-1".into(),
                        mac: self.mac(0x02, 1),
                        address: None,
                    },
                ],
                gateway: Some(self.wan_host_addr().addr()),
                index: None,
                lan_ip: Some(self.head_lan_ip()),
            }),
            _ => {
                let n: u32 = name.strip_prefix('w')?.parse().ok()?;
                if n == 0 || n > self.workers || Self::worker_name(n) != name {
                    return None;
                }
                Some(HostSpec {
                    name: name.to_string(),
                    role: Role::Worker,
                    ifaces: vec![Iface {
                        name: "eth0".into(),
                        bridge: Bridge::Lan,
                        bridge_port: format!("{name}-0"),
                        mac: self.mac(0x10, n),
                        address: None,
                    }],
                    gateway: None,
                    index: Some(n),
                    lan_ip: Some(self.worker_ip(n)),
                })
            }
        }
    }
}

/// A prefix is 1-8 characters: a lowercase letter, then lowercase letters or digits.
pub fn validate_prefix(prefix: &str) -> Result<()> {
    let ok = !prefix.is_empty()
        && prefix.len() <= MAX_PREFIX_LEN
        && prefix.starts_with(|c: char| c.is_ascii_lowercase())
        && prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Error::Lab {
            message: format!("invalid lab prefix {prefix:?}"),
            help: Some(format!(
                "use 1-{MAX_PREFIX_LEN} characters: a lowercase letter, then lowercase letters or digits (e.g. --prefix cl)"
            )),
        })
    }
}

fn parse_subnet(flag: &str, text: &str) -> Result<Ipv4Net> {
    let net: Ipv4Net = text.parse().map_err(|_| Error::Lab {
        message: format!("{flag} {text:?} is not an IPv4 subnet"),
        help: Some(format!("write it as a CIDR, e.g. {flag} 10.77.0.0/24")),
    })?;
    if net.prefix_len() > 24 {
        return Err(Error::Lab {
            message: format!("{flag} {text} is smaller than a /24"),
            help: Some("the lab numbers hosts up to .254: give a /24 or larger".into()),
        });
    }
    if net.addr() != net.network() {
        return Err(Error::Lab {
            message: format!("{flag} {text} has host bits set"),
            help: Some(format!("did you mean {flag} {}?", net.trunc())),
        });
    }
    // The controller gets an address (and so a route) on the WAN: a public range
    // would divert the machine's real traffic into the lab.
    if net.prefix_len() < 16
        || !LAB_RANGES
            .iter()
            .any(|r| r.parse::<Ipv4Net>().is_ok_and(|r| r.contains(&net)))
    {
        return Err(Error::Lab {
            message: format!("{flag} {text} is not a private or test range of /16 or smaller"),
            help: Some(format!(
                "use a subnet inside one of {}",
                LAB_RANGES.join(", ")
            )),
        });
    }
    Ok(net)
}

/// Ranges a lab may use: RFC 1918, the benchmarking range and the TEST-NETs.
const LAB_RANGES: &[&str] = &[
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "192.0.2.0/24",
    "198.51.100.0/24",
    "203.0.113.0/24",
];

fn nth(net: Ipv4Net, n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(net.network()) + n)
}

fn last_host(net: Ipv4Net) -> u32 {
    u32::from(net.broadcast()) - u32::from(net.network()) - 1
}

fn host_net(net: Ipv4Net, n: u32) -> Ipv4Net {
    // The prefix length comes from a parsed Ipv4Net, so it is always valid.
    Ipv4Net::new(nth(net, n), net.prefix_len()).unwrap_or(net)
}

fn fnv1a16(s: &str) -> u16 {
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    ((h >> 16) ^ (h & 0xffff)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo(workers: u32) -> Topology {
        Topology::new("cl", "198.51.100.0/24", "10.77.0.0/24", workers).unwrap()
    }

    #[test]
    fn addresses_follow_the_convention() {
        let t = topo(3);
        assert_eq!(t.worker_ip(1).to_string(), "10.77.0.11");
        assert_eq!(t.head_lan_ip().to_string(), "10.77.0.1");
        assert_eq!(t.head_wan_addr().to_string(), "198.51.100.2/24");
        assert_eq!(t.wan_host_addr().to_string(), "198.51.100.1/24");
        assert_eq!(t.ctl_addr().to_string(), "198.51.100.254/24");
        let (a, b) = t.dhcp_range();
        assert_eq!(
            (a.to_string(), b.to_string()),
            ("10.77.0.100".into(), "10.77.0.200".into())
        );
        let names: Vec<_> = t.hosts().into_iter().map(|h| h.name).collect();
        assert_eq!(names, ["wan", "head", "w1", "w2", "w3"]);
    }

    #[test]
    fn macs_are_stable_unique_local_unicast_hex() {
        let t = topo(89);
        let mut seen = std::collections::BTreeSet::new();
        for h in t.hosts() {
            for i in &h.ifaces {
                let bytes: Vec<u8> = i
                    .mac
                    .split(':')
                    .map(|b| u8::from_str_radix(b, 16).unwrap())
                    .collect();
                assert_eq!(bytes.len(), 6);
                assert_eq!(bytes[0] & 0b11, 0b10, "local, unicast: {}", i.mac);
                assert!(seen.insert(i.mac.clone()), "duplicate {}", i.mac);
            }
        }
        assert_eq!(topo(3).mac(0x10, 2), t.mac(0x10, 2));
        let other = Topology::new("lab2", "198.51.100.0/24", "10.77.0.0/24", 3).unwrap();
        assert_ne!(other.mac(0x10, 2), t.mac(0x10, 2));
    }

    #[test]
    fn host_lookup() {
        let t = topo(3);
        assert!(t.host("w3").is_some());
        assert!(t.host("w4").is_none());
        assert!(t.host("w0").is_none());
        assert!(t.host("w01").is_none());
        assert!(t.host("nope").is_none());
        assert_eq!(
            t.host("w2").unwrap().ssh_address().unwrap().to_string(),
            "10.77.0.12"
        );
        assert_eq!(
            t.host("head").unwrap().ssh_address().unwrap().to_string(),
            "198.51.100.2"
        );
    }

    #[test]
    fn bad_flags_are_refused() {
        assert!(Topology::new("CL", "198.51.100.0/24", "10.77.0.0/24", 3).is_err());
        assert!(Topology::new("toolongpfx", "198.51.100.0/24", "10.77.0.0/24", 3).is_err());
        assert!(Topology::new("cl", "10.0.0.0/8", "10.77.0.0/24", 3).is_err());
        assert!(Topology::new("cl", "198.51.100.0/25", "10.77.0.0/24", 3).is_err());
        assert!(Topology::new("cl", "198.51.100.1/24", "10.77.0.0/24", 3).is_err());
        assert!(Topology::new("cl", "198.51.100.0/24", "10.77.0.0/24", 90).is_err());
        assert!(Topology::new("cl", "nope", "10.77.0.0/24", 3).is_err());
    }

    #[test]
    fn a_larger_lan_holds_more_workers_below_its_pool() {
        assert_eq!(max_workers("10.77.0.0/24".parse().unwrap()), MAX_WORKERS);
        let t = Topology::new("cl", "198.51.100.0/24", "10.76.0.0/22", 857).unwrap();
        let (lo, hi) = t.dhcp_range();
        assert_eq!(
            (lo.to_string(), hi.to_string()),
            ("10.76.3.100".into(), "10.76.3.200".into())
        );
        assert_eq!(t.worker_ip(250).to_string(), "10.76.1.4");
        assert_eq!(t.worker_ip(857).to_string(), "10.76.3.99");
        assert!(Topology::new("cl", "198.51.100.0/24", "10.76.0.0/22", 858).is_err());
        let t = Topology::new("cl", "198.51.100.0/24", "10.72.0.0/21", 1881).unwrap();
        assert_eq!(t.dhcp_range().0.to_string(), "10.72.7.100");
        let mut macs = std::collections::BTreeSet::new();
        for h in t.hosts() {
            for i in &h.ifaces {
                assert!(macs.insert(i.mac.clone()), "duplicate {}", i.mac);
                assert!(i.bridge_port.len() <= 15, "{}", i.bridge_port);
            }
        }
    }
}
