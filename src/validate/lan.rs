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

/// An IPv4 network no smaller than a /29, without host bits. With host bits
/// set, go on with the network the user most likely meant, to report the rest.
fn network(d: &mut Diags, cidr: &S<String>) -> Option<Ipv4Net> {
    match cidr.value.trim().parse::<Ipv4Net>() {
        Ok(n) if n.addr() != n.network() => {
            d.err(
                loc(cidr),
                None,
                format!("LAN `{}` has host bits set", cidr.value),
                Some(&format!("did you mean {}?", n.trunc())),
            );
            Some(n.trunc())
        }
        Ok(n) if n.prefix_len() > 29 => {
            d.err(
                loc(cidr),
                None,
                format!("LAN `{}` is too small for a cluster", cidr.value),
                Some("use a /24 or larger (a /29 holds at most 6 hosts)"),
            );
            None
        }
        Ok(n) => Some(n),
        Err(_) => {
            let help = if cidr.value.contains(':') {
                "IPv6 LANs are not supported yet; use an IPv4 private range like 10.0.0.0/24"
            } else {
                "write it as ADDRESS/PREFIX, like 10.0.0.0/24"
            };
            d.err(
                loc(cidr),
                None,
                format!("LAN `{}` is not an IPv4 CIDR", cidr.value),
                Some(help),
            );
            None
        }
    }
}

/// `A-B` inside the LAN, not reversed. Returns (start, end, location).
fn dhcp_range(
    d: &mut Diags,
    s: &S<String>,
    net: Option<Ipv4Net>,
) -> Option<(Ipv4Addr, Ipv4Addr, Option<Location>)> {
    let at = loc(s);
    let two_addresses = "write it as two addresses, like 10.0.0.100-10.0.0.200";
    let Some((a, b)) = s.value.split_once('-') else {
        let msg = format!("DHCP range `{}` is not START-END", s.value);
        d.err(at, None, msg, Some(two_addresses));
        return None;
    };
    let (Ok(a), Ok(b)) = (a.trim().parse::<Ipv4Addr>(), b.trim().parse::<Ipv4Addr>()) else {
        let msg = format!("DHCP range `{}` is not two IPv4 addresses", s.value);
        d.err(at, None, msg, Some(two_addresses));
        return None;
    };
    if a > b {
        let msg = format!("DHCP range `{}` is reversed", s.value);
        d.err(at, None, msg, Some(&format!("did you mean {b}-{a}?")));
        return None;
    }
    if let Some(n) = net {
        if !is_host(n, a) || !is_host(n, b) {
            let (first, last) = host_range(n);
            d.err(
                at,
                None,
                format!("DHCP range `{}` is not inside the LAN {n}", s.value),
                Some(&format!("both ends must lie between {first} and {last}")),
            );
            return None;
        }
    }
    Some((a, b, at))
}
