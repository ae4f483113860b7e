//! The cluster LAN: its network, the DHCP pool and the upstream resolvers.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::Diags;
use crate::error::Location;
use crate::inventory::{loc, RawLan, S};
use crate::values::shown;

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

/// The longest prefix (the smallest LAN) whose host addresses hold `nodes`
/// and a DHCP pool of `pool` addresses (`None`: the default pool, half the
/// LAN). None when not even a /8 does.
pub fn prefix_for(nodes: usize, pool: Option<u32>) -> Option<u8> {
    (8..=30u8).rev().find(|p| {
        let hosts = (1u64 << (32 - p)) - 2;
        let pool = pool.map_or(hosts.div_ceil(2), u64::from);
        hosts.saturating_sub(pool) >= nodes as u64
    })
}

/// `help:` for an address outside the LAN.
pub(super) fn pick_between(n: Ipv4Net) -> String {
    let (first, last) = host_range(n);
    format!("pick an address between {first} and {last}")
}

fn is_host(n: Ipv4Net, ip: Ipv4Addr) -> bool {
    n.contains(&ip) && ip != n.network() && ip != n.broadcast()
}

/// The LAN section: network and DHCP pool (resolvers: [`upstream`], once
/// the nodes' addresses are known).
pub(super) fn lan(d: &mut Diags, raw: &RawLan) -> LanCtx {
    let net = network(d, &raw.cidr);
    let range = dhcp_range(d, &raw.dhcp_range, net);
    LanCtx { net, range }
}

/// The upstream resolvers dnsmasq forwards to: real resolvers outside the
/// cluster. Refused: not an address (0.0.0.0/8), loopback (dnsmasq itself
/// or a stub on the head), broadcast, multicast, reserved, and anything
/// inside the cluster LAN: the head itself (dnsmasq would forward to
/// itself), a worker (which resolves through the head: a loop), or any
/// other LAN address. `nodes` maps the nodes' addresses to their names.
pub(super) fn upstream(
    d: &mut Diags,
    raw: &RawLan,
    lan: &LanCtx,
    nodes: &std::collections::BTreeMap<Ipv4Addr, String>,
    head_ip: Option<Ipv4Addr>,
    head_wan: Option<Ipv4Addr>,
) -> Vec<Ipv4Addr> {
    let mut upstream = Vec::new();
    // Seen addresses in a set: 199,000 entries were checked pairwise.
    let mut seen = std::collections::HashSet::new();
    for s in &raw.upstream_dns {
        let Some(ip) = d.ip(s, "upstream DNS server", None) else {
            continue;
        };
        let why = if Some(ip) == head_ip {
            Some("is the head's own LAN address: dnsmasq would forward to itself".to_string())
        } else if Some(ip) == head_wan {
            Some(
                "is the head itself (its address in head.ssh): dnsmasq would forward to itself"
                    .to_string(),
            )
        } else if let (Some(name), true) =
            (nodes.get(&ip), lan.net.is_some_and(|n| n.contains(&ip)))
        {
            Some(format!(
                "is worker {name}, which resolves through the head: a loop"
            ))
        } else {
            resolver_problem(ip, lan.net).map(str::to_string)
        };
        if let Some(why) = why {
            d.err(
                loc(s),
                None,
                format!("upstream DNS server {ip} {why}"),
                Some("name the resolvers the head's WAN side uses (`resolvectl status` or /etc/resolv.conf there), like 1.1.1.1"),
            );
        } else if seen.insert(ip) {
            upstream.push(ip);
        }
    }
    upstream
}

/// Why an address cannot be an upstream resolver, ignoring the nodes.
fn resolver_problem(ip: Ipv4Addr, lan: Option<Ipv4Net>) -> Option<&'static str> {
    if ip.octets()[0] == 0 {
        Some("is not an address (0.0.0.0/8)")
    } else if ip.is_loopback() {
        Some("is a loopback address: on the head that is dnsmasq itself or a local stub, not an upstream")
    } else if ip.is_broadcast() {
        Some("is the broadcast address")
    } else if ip.is_multicast() {
        Some("is a multicast address")
    } else if ip.octets()[0] >= 240 {
        Some("is in the reserved range 240.0.0.0/4")
    } else if lan.is_some_and(|n| ip == n.broadcast()) {
        Some("is the LAN's broadcast address")
    } else if lan.is_some_and(|n| n.contains(&ip)) {
        Some("is inside the cluster LAN, whose hosts resolve through the head")
    } else {
        None
    }
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
    /// Not inside one private (RFC 1918) range: what it is instead.
    NotPrivate(&'static str),
}

impl LanProblem {
    /// Follows the value in a message: "`10.0.0.1/24` has host bits set".
    pub fn what(self) -> &'static str {
        match self {
            LanProblem::NotCidr { .. } => "is not an IPv4 CIDR",
            LanProblem::HostBits(_) => "has host bits set",
            LanProblem::TooSmall => "is too small for a cluster",
            LanProblem::NotPrivate(what) => what,
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
            LanProblem::NotPrivate(_) => "a cluster LAN lies inside one private range (RFC 1918): 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16, like 10.0.0.0/24".into(),
        }
    }
}

/// The private ranges a cluster LAN may lie in (RFC 1918).
const PRIVATE: [&str; 3] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];

/// Special-purpose IPv4 ranges (RFC 6890 and friends), with what a LAN
/// there would be. Checked before "public", for a precise message.
const SPECIAL: &[(&str, &str)] = &[
    ("0.0.0.0/8", "is \"this network\" (0.0.0.0/8), not a LAN"),
    (
        "127.0.0.0/8",
        "is the loopback range (127.0.0.0/8), not a LAN",
    ),
    (
        "169.254.0.0/16",
        "is the link-local range (169.254.0.0/16), which hosts configure themselves without DHCP",
    ),
    (
        "224.0.0.0/4",
        "is the multicast range (224.0.0.0/4), not a LAN",
    ),
    (
        "240.0.0.0/4",
        "is the reserved range (240.0.0.0/4, and the broadcast address), not a LAN",
    ),
    (
        "100.64.0.0/10",
        "is carrier-grade NAT space (100.64.0.0/10), which the head's provider may use",
    ),
    (
        "192.0.0.0/24",
        "is the IETF protocol range (192.0.0.0/24), not a LAN",
    ),
    (
        "192.0.2.0/24",
        "is documentation space (TEST-NET-1), not a private LAN",
    ),
    (
        "198.51.100.0/24",
        "is documentation space (TEST-NET-2), not a private LAN",
    ),
    (
        "203.0.113.0/24",
        "is documentation space (TEST-NET-3), not a private LAN",
    ),
    (
        "198.18.0.0/15",
        "is benchmarking space (198.18.0.0/15), not a private LAN",
    ),
];

fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Why a network is not a private cluster LAN, if it is not one.
fn not_private(n: Ipv4Net) -> Option<&'static str> {
    if n.prefix_len() == 0 {
        return Some("is the whole IPv4 address space");
    }
    if n.prefix_len() < 8 {
        return Some("is larger than any private range (the largest is 10.0.0.0/8)");
    }
    for (range, what) in SPECIAL {
        let r: Ipv4Net = range.parse().expect("a valid built-in range");
        if overlaps(n, r) {
            return Some(what);
        }
    }
    let mut private = PRIVATE
        .iter()
        .map(|r| r.parse::<Ipv4Net>().expect("built-in"));
    if private.clone().any(|r| r.contains(&n)) {
        return None;
    }
    if private.any(|r| overlaps(n, r)) {
        return Some("is larger than the private range it starts in");
    }
    Some("is public address space, not a private range")
}

/// An IPv4 network no smaller than a /29, without host bits, inside one
/// private (RFC 1918) range.
pub fn parse_lan(s: &str) -> Result<Ipv4Net, LanProblem> {
    let n = match s.trim().parse::<Ipv4Net>() {
        Ok(n) if n.addr() != n.network() => return Err(LanProblem::HostBits(n.trunc())),
        Ok(n) => n,
        Err(_) => {
            return Err(LanProblem::NotCidr {
                ipv6: s.contains(':'),
            })
        }
    };
    if let Some(what) = not_private(n) {
        return Err(LanProblem::NotPrivate(what));
    }
    if n.prefix_len() > 29 {
        return Err(LanProblem::TooSmall);
    }
    Ok(n)
}

/// The LAN; with host bits set, go on with the network the user most
/// likely meant, to report the rest.
fn network(d: &mut Diags, cidr: &S<String>) -> Option<Ipv4Net> {
    parse_lan(&cidr.value)
        .inspect_err(|p| {
            let msg = format!("LAN `{}` {}", shown(&cidr.value), p.what());
            d.err(loc(cidr), None, msg, Some(&p.help()));
        })
        .or_else(|p| match p {
            LanProblem::HostBits(n) if not_private(n).is_none() && n.prefix_len() <= 29 => Ok(n),
            _ => Err(()),
        })
        .ok()
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
            let msg = format!("DHCP range `{}` {}", shown(&s.value), p.what());
            d.err(loc(s), None, msg, Some(&p.help()));
            None
        }
    }
}
