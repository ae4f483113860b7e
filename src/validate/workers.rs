//! Workers: entries expanded into nodes (`name` or a `names` range), names
//! and addresses unique, automatic addresses assigned, MACs unique.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::lan::{host_range, pick_between, LanCtx};
use super::services::check_slots;
use super::Diags;
use crate::cluster::{SshTarget, Worker};
use crate::error::Location;
use crate::hostlist;
use crate::inventory::{loc, NetStack, RawWorker, S};
use crate::values::{parse_ssh_target, shown, Hostname, Iface, Mac};

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
    network: NetStack,
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
/// Also returns every address taken, by node name.
pub(super) fn resolve(
    d: &mut Diags,
    drafts: &[WorkerDraft],
    mut taken: BTreeMap<Ipv4Addr, String>,
    lan: &LanCtx,
    defaults: &Defaults,
) -> (Vec<Worker>, BTreeMap<Ipv4Addr, String>) {
    let mut workers = Vec::new();
    let mut cursor: Option<u32> = defaults.head_ip.and_then(|ip| u32::from(ip).checked_add(1));
    let mut full = false;
    for p in drafts {
        let ip = match (p.ip, lan.net) {
            (Some((ip, _)), _) => Some(ip),
            // Once the LAN is full it stays full: no second search.
            (None, Some(_)) if full => None,
            (None, Some(n)) => match next_free(n, cursor, lan, &taken) {
                Some(ip) => {
                    taken.insert(ip, p.name.to_string());
                    Some(ip)
                }
                None => {
                    full = true;
                    let nodes = drafts.len() + 1;
                    let pool = lan.range.map(|(a, b, _)| u32::from(b) - u32::from(a) + 1);
                    let help = match super::lan::prefix_for(nodes, pool) {
                        Some(p) if p < n.prefix_len() => format!("use a /{p} LAN (or larger) for {nodes} nodes beside this DHCP range, or a smaller DHCP range"),
                        _ => "make the DHCP range smaller, or list fewer nodes".to_string(),
                    };
                    d.err(p.at, Some(&p.name), format!("more nodes than the LAN can hold: no free address left in {n} for {nodes} nodes outside the DHCP range"), Some(help.as_str()));
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
            network: p.network,
        });
    }
    (workers, taken)
}

/// The first free host address from `cursor` on (wrapping once), outside
/// the pool and not taken. Never walks address by address through the
/// pool or a run of taken addresses: it jumps over the pool and steps
/// through the taken set, so a call costs O(taken addresses it passes),
/// and with the cursor moving up, all calls together stay linear (a /8
/// with a pool of 16 million addresses costs one jump).
fn next_free(
    n: Ipv4Net,
    cursor: Option<u32>,
    lan: &LanCtx,
    taken: &BTreeMap<Ipv4Addr, String>,
) -> Option<Ipv4Addr> {
    let (lo, hi) = host_range(n);
    let (lo, hi) = (u32::from(lo), u32::from(hi));
    let start = cursor.filter(|c| (lo..=hi).contains(c)).unwrap_or(lo);
    first_free(start, hi, lan, taken)
        .or_else(|| first_free(lo, start.saturating_sub(1).max(lo), lan, taken))
        .map(Ipv4Addr::from)
}

/// The first address in `from..=to` outside the pool and not taken.
fn first_free(from: u32, to: u32, lan: &LanCtx, taken: &BTreeMap<Ipv4Addr, String>) -> Option<u32> {
    let pool = lan.range.map(|(a, b, _)| (u32::from(a), u32::from(b)));
    let mut c = from;
    let mut taken_iter = taken
        .range(Ipv4Addr::from(from)..)
        .map(|(ip, _)| u32::from(*ip))
        .peekable();
    while c <= to {
        if let Some((_, b)) = pool.filter(|(a, b)| (*a..=*b).contains(&c)) {
            c = b.checked_add(1)?;
            continue;
        }
        while taken_iter.peek().is_some_and(|t| *t < c) {
            taken_iter.next();
        }
        if taken_iter.peek() == Some(&c) {
            c = c.checked_add(1)?;
            continue;
        }
        return Some(c);
    }
    None
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

/// What a worker entry gives every node it names.
struct Shared {
    network: NetStack,
    slots: Option<u32>,
    iface: Option<Iface>,
    ssh: Option<SshTarget>,
}

/// One inventory entry: a single node (`name`) or a range (`names`).
pub(super) fn expand_worker(
    d: &mut Diags,
    entry: &S<RawWorker>,
    net: Option<Ipv4Net>,
    out: &mut Vec<WorkerDraft>,
) {
    let w = &entry.value;
    let shared = Shared {
        network: w.network.as_ref().map(|n| n.value).unwrap_or_default(),
        slots: w.slots.as_ref().map(|s| s.value),
        iface: iface(d, w.iface.as_ref()),
        ssh: w.ssh.as_ref().and_then(|s| {
            let node = w.name.as_ref().map(|n| n.value.as_str());
            ssh_target(d, s, node)
        }),
    };
    match (&w.name, &w.names) {
        (Some(_), Some(n)) => d.err(
            loc(n),
            None,
            "a worker entry has both `name` and `names`".into(),
            Some("use `name` for one node or `names: node[01-04]` for a range"),
        ),
        (None, None) => d.err(
            loc(entry),
            None,
            "a worker entry has neither `name` nor `names`".into(),
            Some("add `name: node01` (one node) or `names: node[01-04]` (a range)"),
        ),
        (Some(n), None) => out.extend(single_entry(d, w, n, shared)),
        (None, Some(list)) => out.extend(range_entry(d, w, list, net, shared)),
    }
}

fn host_name(d: &mut Diags, name: &str, at: Option<Location>) -> Option<Hostname> {
    Hostname::parse(name)
        .map_err(|e| {
            d.err(
                at,
                None,
                format!("invalid host name `{}`: it {e}", shown(name)),
                Some("host names are RFC 1123 labels like `node01`"),
            )
        })
        .ok()
}

fn iface(d: &mut Diags, s: Option<&S<String>>) -> Option<Iface> {
    let Some(s) = s else {
        return Iface::parse(DEFAULT_WORKER_IFACE).ok();
    };
    Iface::parse(&s.value)
        .map_err(|e| {
            d.err(
                loc(s),
                None,
                format!("iface `{}` {e}", shown(&s.value)),
                Some("use the name `ip link` shows on the worker, like eth0"),
            )
        })
        .ok()
}

fn ssh_target(d: &mut Diags, s: &S<String>, node: Option<&str>) -> Option<SshTarget> {
    parse_ssh_target(s.value.trim())
        .map_err(|e| {
            d.err(
                loc(s),
                node,
                format!("ssh target `{}`: {e}", shown(&s.value)),
                Some("write it as [USER@]HOST[:PORT]"),
            )
        })
        .ok()
}

fn mac(d: &mut Diags, m: &S<String>, node: Option<&str>) -> Option<Positioned<Mac>> {
    Mac::parse(&m.value)
        .map_err(|e| {
            d.err(
                loc(m),
                node,
                format!("MAC `{}` {e}", shown(&m.value)),
                Some("copy it from `ip link` on the node"),
            )
        })
        .ok()
        .map(|mac| (mac, loc(m)))
}

/// Fields written in an entry of the other kind: (field, where, help).
fn misplaced(
    d: &mut Diags,
    node: Option<&str>,
    kind: &str,
    fields: &[(&str, Option<Option<Location>>, &str)],
) {
    for (field, at, help) in fields {
        if let Some(at) = at {
            d.err(
                *at,
                node,
                format!("`{field}` belongs to a {kind}"),
                Some(help),
            );
        }
    }
}

fn single_entry(
    d: &mut Diags,
    w: &RawWorker,
    n: &S<String>,
    shared: Shared,
) -> Option<WorkerDraft> {
    let node = Some(n.value.as_str());
    misplaced(
        d,
        node,
        "range entry (`names:`)",
        &[
            (
                "ip_start",
                w.ip_start.as_ref().map(loc),
                "use `ip:` for a single node",
            ),
            (
                "macs",
                w.macs.as_ref().map(loc),
                "use `mac:` for a single node",
            ),
        ],
    );
    let name = host_name(d, &n.value, loc(n))?;
    if let Some(s) = &w.slots {
        check_slots(d, s, node);
    }
    let ip =
        w.ip.as_ref()
            .and_then(|s| d.ip(s, "IP", node).map(|ip| (ip, loc(s))));
    let mac = w.mac.as_ref().and_then(|m| mac(d, m, node));
    Some(WorkerDraft {
        name,
        at: loc(n),
        ip,
        mac,
        slots: shared.slots,
        ssh: shared.ssh,
        iface: shared.iface,
        network: shared.network,
    })
}

fn range_entry(
    d: &mut Diags,
    w: &RawWorker,
    list: &S<String>,
    net: Option<Ipv4Net>,
    shared: Shared,
) -> Vec<WorkerDraft> {
    misplaced(
        d,
        None,
        "single-node entry (`name:`)",
        &[
            ("ip", w.ip.as_ref().map(loc), "use `ip_start:` for a range"),
            (
                "mac",
                w.mac.as_ref().map(loc),
                "use `macs:` (a list) for a range",
            ),
            (
                "ssh",
                w.ssh.as_ref().map(loc),
                "give nodes with their own SSH target an entry each",
            ),
        ],
    );
    let Some(names) = expand_list(d, list) else {
        return Vec::new();
    };
    if let Some(s) = &w.slots {
        check_slots(d, s, None);
    }
    let start = w
        .ip_start
        .as_ref()
        .and_then(|s| d.ip(s, "ip_start", None).map(|ip| (ip, loc(s))));
    let macs: Option<Vec<Option<Positioned<Mac>>>> = w.macs.as_ref().map(|ms| {
        if ms.value.len() != names.len() {
            d.err(
                loc(ms),
                None,
                format!(
                    "`{}` names {} nodes but `macs` lists {}",
                    shown(&list.value),
                    names.len(),
                    ms.value.len()
                ),
                Some("give one MAC per node, in the order of the names"),
            );
        }
        ms.value.iter().map(|m| mac(d, m, None)).collect()
    });
    if let Some((start, at)) = start {
        if !range_fits(d, start, at, names.len(), net) {
            return Vec::new();
        }
    }
    let mut out = Vec::new();
    for (i, name) in names.into_iter().enumerate() {
        let Some(name) = host_name(d, &name, loc(list)) else {
            continue;
        };
        // In range: checked by range_fits.
        let ip = start.map(|(s, at)| (Ipv4Addr::from(u32::from(s).saturating_add(i as u32)), at));
        out.push(WorkerDraft {
            name,
            at: loc(list),
            ip,
            mac: macs.as_ref().and_then(|v| v.get(i).cloned().flatten()),
            slots: shared.slots,
            ssh: None,
            iface: shared.iface.clone(),
            network: shared.network,
        });
    }
    out
}

/// The names a `names:` host list expands to; None (reported) when none.
fn expand_list(d: &mut Diags, list: &S<String>) -> Option<Vec<String>> {
    let help = Some("write ranges like node[01-16] or node[1-3,7]");
    if list.value.trim().is_empty() {
        d.err(
            loc(list),
            None,
            "host list `` expands to no node".into(),
            help,
        );
        return None;
    }
    match hostlist::expand(&list.value) {
        Ok(v) if v.is_empty() => {
            let msg = format!("host list `{}` expands to no node", shown(&list.value));
            d.err(loc(list), None, msg, None);
            None
        }
        Ok(v) => Some(v),
        Err(e) => {
            d.err(loc(list), None, format!("host list: {e}"), help);
            None
        }
    }
}

/// `count` addresses from `start` stay inside the LAN (or, without a valid
/// LAN, inside the address space).
fn range_fits(
    d: &mut Diags,
    start: Ipv4Addr,
    at: Option<Location>,
    count: usize,
    net: Option<Ipv4Net>,
) -> bool {
    let last = u64::from(u32::from(start)) + count as u64 - 1;
    let end = net.map_or(u64::from(u32::MAX), |n| {
        u64::from(u32::from(host_range(n).1))
    });
    if last <= end {
        return true;
    }
    let lan = net.map_or("the IPv4 address space".to_string(), |n| n.to_string());
    d.err(
        at,
        None,
        format!("more nodes than the LAN can hold: {count} nodes from {start} run past the end of {lan}"),
        Some("start lower, use fewer nodes, or use a larger LAN"),
    );
    false
}
