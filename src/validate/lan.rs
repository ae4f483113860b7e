//! The cluster LAN: its network, the DHCP pool and the upstream resolvers.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::Diags;
use crate::error::Location;
use crate::inventory::{loc, RawLan, S};

/// What later sections check addresses against. Either part may be missing
/// when the inventory got it wrong (already reported).
pub(super) struct LanCtx {
    pub net: Option<Ipv4Net>,
    /// The DHCP pool, first and last address, and where it was written.
    pub range: Option<(Ipv4Addr, Ipv4Addr, Option<Location>)>,
}

impl LanCtx {
    /// A host address of the LAN (not its network or broadcast address).
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        self.net.is_some_and(|n| is_host(n, ip))
    }

    /// Inside the dynamic pool.
    pub fn in_pool(&self, ip: Ipv4Addr) -> Option<(Ipv4Addr, Ipv4Addr)> {
        self.range
            .filter(|(a, b, _)| *a <= ip && ip <= *b)
            .map(|(a, b, _)| (a, b))
    }
}

/// The first and last host address of a network.
pub fn host_range(n: Ipv4Net) -> (Ipv4Addr, Ipv4Addr) {
    (
        Ipv4Addr::from(u32::from(n.network()) + 1),
        Ipv4Addr::from(u32::from(n.broadcast()) - 1),
    )
}

/// `help:` for an address outside the LAN.
pub(super) fn pick_between(n: Ipv4Net) -> String {
    let (first, last) = host_range(n);
    format!("pick an address between {first} and {last}")
}

fn is_host(n: Ipv4Net, ip: Ipv4Addr) -> bool {
    n.contains(&ip) && ip != n.network() && ip != n.broadcast()
}

/// The LAN section: network, DHCP pool, upstream resolvers.
pub(super) fn lan(d: &mut Diags, raw: &RawLan) -> (LanCtx, Vec<Ipv4Addr>) {
    let net = network(d, &raw.cidr);
    let range = dhcp_range(d, &raw.dhcp_range, net);
    let mut upstream = Vec::new();
    for s in &raw.upstream_dns {
        if let Some(ip) = d.ip(s, "upstream DNS server", None) {
            if !upstream.contains(&ip) {
                upstream.push(ip);
            }
        }
    }
    (LanCtx { net, range }, upstream)
}

/// Why a LAN value is not a cluster LAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LanProblem {
    NotCidr {
        ipv6: bool,
    },
    /// Host bits set: the network the user most likely meant.
    HostBits(Ipv4Net),
    TooSmall,
}

impl LanProblem {
    /// Follows the value in a message: "`10.0.0.1/24` has host bits set".
    pub fn what(self) -> &'static str {
        match self {
            LanProblem::NotCidr { .. } => "is not an IPv4 CIDR",
            LanProblem::HostBits(_) => "has host bits set",
            LanProblem::TooSmall => "is too small for a cluster",
        }
    }

    pub fn help(self) -> String {
        match self {
            LanProblem::NotCidr { ipv6: true } => {
                "IPv6 LANs are not supported yet; use an IPv4 private range like 10.0.0.0/24".into()
            }
            LanProblem::NotCidr { ipv6: false } => {
                "write it as ADDRESS/PREFIX, like 10.0.0.0/24".into()
            }
            LanProblem::HostBits(n) => format!("did you mean {n}?"),
            LanProblem::TooSmall => "use a /24 or larger (a /29 holds at most 6 hosts)".into(),
        }
    }
}

/// An IPv4 network no smaller than a /29, without host bits.
pub fn parse_lan(s: &str) -> Result<Ipv4Net, LanProblem> {
    match s.trim().parse::<Ipv4Net>() {
        Ok(n) if n.addr() != n.network() => Err(LanProblem::HostBits(n.trunc())),
        Ok(n) if n.prefix_len() > 29 => Err(LanProblem::TooSmall),
        Ok(n) => Ok(n),
        Err(_) => Err(LanProblem::NotCidr {
            ipv6: s.contains(':'),
        }),
    }
}

/// The LAN; with host bits set, go on with the network the user most
/// likely meant, to report the rest.
fn network(d: &mut Diags, cidr: &S<String>) -> Option<Ipv4Net> {
    match parse_lan(&cidr.value) {
        Ok(n) => Some(n),
        Err(p) => {
            let msg = format!("LAN `{}` {}", cidr.value, p.what());
            d.err(loc(cidr), None, msg, Some(&p.help()));
            match p {
                LanProblem::HostBits(n) => Some(n),
                _ => None,
            }
        }
    }
}

/// Why a DHCP range value is not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeProblem {
    NotStartEnd,
    NotAddresses,
    Reversed(Ipv4Addr, Ipv4Addr),
    /// Not inside the LAN: its first and last host.
    OutsideLan(Ipv4Net),
}

impl RangeProblem {
    pub fn what(self) -> String {
        match self {
            RangeProblem::NotStartEnd => "is not START-END".into(),
            RangeProblem::NotAddresses => "is not two IPv4 addresses".into(),
            RangeProblem::Reversed(..) => "is reversed".into(),
            RangeProblem::OutsideLan(n) => format!("is not inside the LAN {n}"),
        }
    }

    pub fn help(self) -> String {
        match self {
            RangeProblem::NotStartEnd | RangeProblem::NotAddresses => {
                "write it as two addresses, like 10.0.0.100-10.0.0.200".into()
            }
            RangeProblem::Reversed(a, b) => format!("did you mean {b}-{a}?"),
            RangeProblem::OutsideLan(n) => {
                let (first, last) = host_range(n);
                format!("both ends must lie between {first} and {last}")
            }
        }
    }
}

/// `A-B`, not reversed, and inside the LAN when it is known.
pub fn parse_dhcp_range(
    s: &str,
    net: Option<Ipv4Net>,
) -> Result<(Ipv4Addr, Ipv4Addr), RangeProblem> {
    let (a, b) = s.split_once('-').ok_or(RangeProblem::NotStartEnd)?;
    let (Ok(a), Ok(b)) = (a.trim().parse::<Ipv4Addr>(), b.trim().parse::<Ipv4Addr>()) else {
        return Err(RangeProblem::NotAddresses);
    };
    if a > b {
        return Err(RangeProblem::Reversed(a, b));
    }
    match net {
        Some(n) if !is_host(n, a) || !is_host(n, b) => Err(RangeProblem::OutsideLan(n)),
        _ => Ok((a, b)),
    }
}

/// The pool `init` proposes: the upper half of the LAN (the lower half is
/// for nodes).
pub fn default_pool(n: Ipv4Net) -> (Ipv4Addr, Ipv4Addr) {
    let (first, last) = host_range(n);
    let (first, last) = (u32::from(first), u32::from(last));
    (
        Ipv4Addr::from(first + (last - first).div_ceil(2)),
        Ipv4Addr::from(last),
    )
}

/// The DHCP pool. Returns (start, end, location).
fn dhcp_range(
    d: &mut Diags,
    s: &S<String>,
    net: Option<Ipv4Net>,
) -> Option<(Ipv4Addr, Ipv4Addr, Option<Location>)> {
    match parse_dhcp_range(&s.value, net) {
        Ok((a, b)) => Some((a, b, loc(s))),
        Err(p) => {
            let msg = format!("DHCP range `{}` {}", s.value, p.what());
            d.err(loc(s), None, msg, Some(&p.help()));
            None
        }
    }
}
