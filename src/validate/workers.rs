//! Workers: entries expanded into nodes (`name` or a `names` range), names
//! and addresses unique, automatic addresses assigned, MACs unique.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::lan::{pick_between, LanCtx};
use super::services::check_slots;
use super::Diags;
use crate::cluster::{SshTarget, Worker};
use crate::error::Location;
use crate::hostlist;
use crate::inventory::{loc, RawWorker, S};
use crate::values::{parse_ssh_target, Hostname, Iface, Mac};

/// The worker's LAN interface when the inventory names none.
pub const DEFAULT_WORKER_IFACE: &str = "eth0";

/// A value and where it was written.
type Positioned<T> = (T, Option<Location>);

/// One worker before the checks across nodes.
pub(super) struct WorkerDraft {
    name: Hostname,
    at: Option<Location>,
    ip: Option<Positioned<Ipv4Addr>>,
    mac: Option<Positioned<Mac>>,
    slots: Option<u32>,
    ssh: Option<SshTarget>,
    /// None: the inventory's value was wrong (reported).
    iface: Option<Iface>,
}

/// Names unique (the head's included) and explicit addresses in the LAN,
/// outside the pool, unique. Returns the addresses taken, by node.
pub(super) fn check_explicit(
    d: &mut Diags,
    drafts: &[WorkerDraft],
    head: (&str, Option<Location>, Option<Ipv4Addr>),
    lan: &LanCtx,
) -> BTreeMap<Ipv4Addr, String> {
    let (head_name, head_at, head_ip) = head;
    let mut taken: BTreeMap<Ipv4Addr, String> = BTreeMap::new();
    if let Some(ip) = head_ip {
        taken.insert(ip, head_name.to_string());
    }
    let mut names: BTreeMap<&str, Option<Location>> = BTreeMap::new();
    names.insert(head_name, head_at);
    for p in drafts {
        if let Some(prev) = names.get(p.name.as_str()) {
            let first = prev
                .map(|l| format!(" (first at line {})", l.line))
                .unwrap_or_default();
            d.err(
                p.at,
                Some(&p.name),
                format!("duplicate node name `{}`{first}", p.name),
                Some("every node needs its own name"),
            );
        } else {
            names.insert(&p.name, p.at);
        }
        let Some((ip, at)) = p.ip else { continue };
        if let Some(n) = lan.net {
            if !lan.contains(ip) {
                d.err(
                    at,
                    Some(&p.name),
                    format!("IP {ip} is not a host address in the LAN {n}"),
                    Some(&pick_between(n)),
                );
                continue;
            }
        }
        if let Some((a, b)) = lan.in_pool(ip) {
            d.err(at, Some(&p.name), format!("IP {ip} is inside the DHCP range {a}-{b}"), Some("reserved addresses must lie outside the dynamic pool; move the node or the range"));
        }
        if let Some(other) = taken.get(&ip) {
            d.err(
                at,
                Some(&p.name),
                format!("duplicate IP address {ip} (also used by {other})"),
                Some("give each node its own address, or omit `ip` to have one assigned"),
            );
        } else {
            taken.insert(ip, p.name.to_string());
        }
    }
    taken
}

/// What every worker inherits from the rest of the inventory.
pub(super) struct Defaults<'a> {
    pub domain: &'a str,
    pub slots: u32,
    pub user: Option<String>,
    pub sudo: bool,
    pub head_ip: Option<Ipv4Addr>,
}

/// The workers, with automatic addresses: they continue after the previous
/// node's (head first), so a node added at the end gets the next address up;
/// wrap around once. Drafts with a wrong value are left out (reported).
pub(super) fn resolve(
    d: &mut Diags,
    drafts: &[WorkerDraft],
    mut taken: BTreeMap<Ipv4Addr, String>,
    lan: &LanCtx,
    defaults: &Defaults,
) -> Vec<Worker> {
    let mut workers = Vec::new();
    let mut cursor: Option<u32> = defaults.head_ip.and_then(|ip| u32::from(ip).checked_add(1));
    let mut full_reported = false;
    for p in drafts {
        let ip = match (p.ip, lan.net) {
            (Some((ip, _)), _) => Some(ip),
            (None, Some(n)) => match next_free(n, cursor, lan, &taken) {
                Some(ip) => {
                    taken.insert(ip, p.name.to_string());
                    Some(ip)
                }
                None => {
                    if !full_reported {
                        full_reported = true;
                        d.err(p.at, Some(&p.name), format!("more nodes than the LAN can hold: no free address left in {n} for {} nodes outside the DHCP range", drafts.len() + 1), Some("use a larger LAN (e.g. a /24) or a smaller DHCP range"));
                    }
                    None
                }
            },
            (None, None) => None,
        };
        if let Some(ip) = ip {
            cursor = u32::from(ip).checked_add(1);
        }
        let (ssh, via_head) = match &p.ssh {
            Some(t) => (t.clone(), false),
            None => (
                SshTarget {
                    user: defaults.user.clone(),
                    host: ip.map(|i| i.to_string()).unwrap_or_default(),
                    port: 22,
                },
                true,
            ),
        };
        let Some(iface) = p.iface.clone() else {
            continue;
        };
        workers.push(Worker {
            fqdn: format!("{}.{}", p.name, defaults.domain),
            name: p.name.clone(),
            ip: ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
            mac: p.mac.as_ref().map(|(m, _)| m.clone()),
            iface,
            slots: p.slots.unwrap_or(defaults.slots),
            ssh,
            via_head,
            sudo: defaults.sudo,
        });
    }
    workers
}

/// The first free host address from `cursor` on (wrapping once), outside
/// the pool and not taken.
fn next_free(
    n: Ipv4Net,
    cursor: Option<u32>,
    lan: &LanCtx,
    taken: &BTreeMap<Ipv4Addr, String>,
) -> Option<Ipv4Addr> {
    let lo = u32::from(n.network()) + 1;
    let hi = u32::from(n.broadcast()) - 1;
    let start = cursor.filter(|c| (lo..=hi).contains(c)).unwrap_or(lo);
    let free = |c: u32| {
        let cand = Ipv4Addr::from(c);
        lan.in_pool(cand).is_none() && !taken.contains_key(&cand)
    };
    (start..=hi)
        .chain(lo..start)
        .find(|c| free(*c))
        .map(Ipv4Addr::from)
}

/// No MAC on two workers.
pub(super) fn check_macs(d: &mut Diags, drafts: &[WorkerDraft]) {
    let mut macs: BTreeMap<&str, &str> = BTreeMap::new();
    for p in drafts {
        if let Some((mac, at)) = &p.mac {
            if let Some(other) = macs.get(mac.as_str()) {
                d.err(
                    *at,
                    Some(&p.name),
                    format!("duplicate MAC address {mac} (also used by {other})"),
                    Some("each worker's MAC must be its own NIC's; check `ip link` on the node"),
                );
            } else {
                macs.insert(mac, &p.name);
            }
        }
    }
}

pub(super) fn expand_worker(
    d: &mut Diags,
    entry: &S<RawWorker>,
    net: Option<Ipv4Net>,
    out: &mut Vec<WorkerDraft>,
) {
    let w = &entry.value;
    let entry_at = loc(entry);
    let single = |name: &str, at: Option<Location>, d: &mut Diags| match Hostname::parse(name) {
        Ok(n) => Some(n),
        Err(e) => {
            d.err(
                at,
                None,
                format!("invalid host name `{}`: it {e}", name.escape_debug()),
                Some("host names are RFC 1123 labels like `node01`"),
            );
            None
        }
    };
    let slots = w.slots.as_ref().map(|s| s.value);
    let iface = match &w.iface {
        Some(s) => match Iface::parse(&s.value) {
            Ok(i) => Some(i),
            Err(e) => {
                d.err(
                    loc(s),
                    None,
                    format!("iface `{}` {e}", s.value),
                    Some("use the name `ip link` shows on the worker, like eth0"),
                );
                None
            }
        },
        None => Iface::parse(DEFAULT_WORKER_IFACE).ok(),
    };
    let ssh = w
        .ssh
        .as_ref()
        .and_then(|s| match parse_ssh_target(s.value.trim()) {
            Ok(t) => Some(t),
            Err(e) => {
                let node = w.name.as_ref().map(|n| n.value.as_str());
                d.err(
                    loc(s),
                    node,
                    format!("ssh target `{}`: {e}", s.value),
                    Some("write it as [USER@]HOST[:PORT]"),
                );
                None
            }
        });
    match (&w.name, &w.names) {
        (Some(_), Some(n)) => {
            d.err(
                loc(n),
                None,
                "a worker entry has both `name` and `names`".into(),
                Some("use `name` for one node or `names: node[01-04]` for a range"),
            );
        }
        (None, None) => {
            d.err(
                entry_at,
                None,
                "a worker entry has neither `name` nor `names`".into(),
                Some("add `name: node01` (one node) or `names: node[01-04]` (a range)"),
            );
        }
        (Some(n), None) => {
            for (field, at) in [
                ("ip_start", w.ip_start.as_ref().map(loc)),
                ("macs", w.macs.as_ref().map(loc)),
            ] {
                if let Some(at) = at {
                    d.err(
                        at,
                        Some(&n.value),
                        format!("`{field}` belongs to a range entry (`names:`)"),
                        Some(if field == "macs" {
                            "use `mac:` for a single node"
                        } else {
                            "use `ip:` for a single node"
                        }),
                    );
                }
            }
            let Some(name) = single(&n.value, loc(n), d) else {
                return;
            };
            if let Some(s) = &w.slots {
                check_slots(d, s, Some(&n.value));
            }
            let ip =
                w.ip.as_ref()
                    .and_then(|s| d.ip(s, "IP", Some(&n.value)).map(|ip| (ip, loc(s))));
            let mac = w.mac.as_ref().and_then(|m| match Mac::parse(&m.value) {
                Ok(mac) => Some((mac, loc(m))),
                Err(e) => {
                    d.err(
                        loc(m),
                        Some(&n.value),
                        format!("MAC `{}` {e}", m.value),
                        Some("copy it from `ip link` on the node"),
                    );
                    None
                }
            });
            out.push(WorkerDraft {
                name,
                at: loc(n),
                ip,
                mac,
                slots,
                ssh,
                iface,
            });
        }
        (None, Some(list)) => {
            for (field, at) in [
                ("ip", w.ip.as_ref().map(loc)),
                ("mac", w.mac.as_ref().map(loc)),
                ("ssh", w.ssh.as_ref().map(loc)),
            ] {
                if let Some(at) = at {
                    d.err(
                        at,
                        None,
                        format!("`{field}` belongs to a single-node entry (`name:`)"),
                        Some(match field {
                            "ip" => "use `ip_start:` for a range",
                            "mac" => "use `macs:` (a list) for a range",
                            _ => "give nodes with their own SSH target an entry each",
                        }),
                    );
                }
            }
            if list.value.trim().is_empty() {
                d.err(
                    loc(list),
                    None,
                    "host list `` expands to no node".into(),
                    Some("write ranges like node[01-16] or node[1-3,7]"),
                );
                return;
            }
            let expanded = match hostlist::expand(&list.value) {
                Ok(v) if v.is_empty() => {
                    d.err(
                        loc(list),
                        None,
                        format!("host list `{}` expands to no node", list.value),
                        None,
                    );
                    return;
                }
                Ok(v) => v,
                Err(e) => {
                    d.err(
                        loc(list),
                        None,
                        format!("host list: {e}"),
                        Some("write ranges like node[01-16] or node[1-3,7]"),
                    );
                    return;
                }
            };
            if let Some(s) = &w.slots {
                check_slots(d, s, None);
            }
            let start = w
                .ip_start
                .as_ref()
                .and_then(|s| d.ip(s, "ip_start", None).map(|ip| (ip, loc(s))));
            let macs: Option<Vec<Option<Positioned<Mac>>>> = w.macs.as_ref().map(|ms| {
                if ms.value.len() != expanded.len() {
                    d.err(
                        loc(ms),
                        None,
                        format!(
                            "`{}` names {} nodes but `macs` lists {}",
                            list.value,
                            expanded.len(),
                            ms.value.len()
                        ),
                        Some("give one MAC per node, in the order of the names"),
                    );
                }
                ms.value
                    .iter()
                    .map(|m| match Mac::parse(&m.value) {
                        Ok(mac) => Some((mac, loc(m))),
                        Err(e) => {
                            d.err(
                                loc(m),
                                None,
                                format!("MAC `{}` {e}", m.value),
                                Some("copy it from `ip link` on the node"),
                            );
                            None
                        }
                    })
                    .collect()
            });
            if let Some((start, at)) = start {
                let last = u64::from(u32::from(start)) + expanded.len() as u64 - 1;
                // Without a valid LAN, still refuse to run past the address space.
                let end = net.map_or(u64::from(u32::MAX), |n| {
                    u64::from(u32::from(n.broadcast())) - 1
                });
                if last > end {
                    let lan = net.map_or("the IPv4 address space".to_string(), |n| n.to_string());
                    d.err(at, None, format!("more nodes than the LAN can hold: {} nodes from {start} run past the end of {lan}", expanded.len()), Some("start lower, use fewer nodes, or use a larger LAN"));
                    return;
                }
            }
            for (i, name) in expanded.into_iter().enumerate() {
                let Some(name) = single(&name, loc(list), d) else {
                    continue;
                };
                // In range: checked above (last <= end).
                let ip = start
                    .map(|(s, at)| (Ipv4Addr::from(u32::from(s).saturating_add(i as u32)), at));
                let mac = macs.as_ref().and_then(|v| v.get(i).cloned().flatten());
                out.push(WorkerDraft {
                    name,
                    at: loc(list),
                    ip,
                    mac,
                    slots,
                    ssh: None,
                    iface: iface.clone(),
                });
            }
        }
    }
}
