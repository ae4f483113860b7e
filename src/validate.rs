//! Validation: [`RawInventory`] -> [`Cluster`], reporting **every** problem at
//! once, each with its position, the node it concerns and a `help:` line. Also
//! the value checks (hostname, MAC, interface, SSH target, paths) that `init`
//! and `add-node` reuse. Every string that reaches a template or a shell passes
//! one of these checks first.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::Path;

use ipnet::Ipv4Net;

use crate::cluster::*;
use crate::error::{Diagnostic, Location};
use crate::hostlist;
use crate::inventory::{loc, RawInventory, RawWorker, S};

pub const MAX_SLOTS: u32 = 4096;
/// The worker's LAN interface when the inventory names none.
pub const DEFAULT_WORKER_IFACE: &str = "eth0";

/// RFC 1123 host name label, lowercase: `[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?`,
/// not all digits. This is also what makes a name safe in templates and shells.
pub fn check_hostname(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    if name.len() > 63 {
        return Err(format!("is {} characters long (at most 63)", name.len()));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        let what = if c.is_ascii_uppercase() {
            "an uppercase letter".to_string()
        } else {
            format!("{c:?}")
        };
        return Err(format!(
            "contains {what}; use lowercase letters, digits and '-'"
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err("starts or ends with '-'".into());
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return Err("is all digits".into());
    }
    // dnsmasq reads these bare words in dhcp-host= as keywords or lease times.
    let lease_time = name.len() > 1
        && name[..name.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && name.ends_with(['s', 'm', 'h', 'd', 'w']);
    if lease_time || matches!(name, "ignore" | "infinite" | "deprecated") {
        return Err("is a word dnsmasq reads as a keyword or lease time".into());
    }
    Ok(())
}

/// `/home/` and `/home/./` are `/home`: compare paths by what they name.
fn normalize_path(p: &str) -> String {
    let segs: Vec<&str> = p
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    format!("/{}", segs.join("/"))
}

/// A DNS domain: dot-separated hostname labels, at most 253 characters.
pub fn check_domain(domain: &str) -> Result<(), String> {
    if domain.len() > 253 {
        return Err("is longer than 253 characters".into());
    }
    for label in domain.split('.') {
        check_hostname(label).map_err(|e| format!("label `{label}` {e}"))?;
    }
    Ok(())
}

/// A Linux interface name: 1-15 of `[A-Za-z0-9_.-]`, not `.` or `..`.
pub fn check_iface(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 15 {
        return Err("must be 1 to 15 characters".into());
    }
    if name == "." || name == ".." {
        return Err("is not a valid interface name".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "contains {c:?}; use letters, digits, '_', '.' and '-'"
        ));
    }
    Ok(())
}

/// A unicast MAC `aa:bb:cc:dd:ee:ff` (`-` also accepted); returns it lowercase
/// with colons.
pub fn normalize_mac(mac: &str) -> Result<String, String> {
    let parts: Vec<&str> = mac.split([':', '-']).collect();
    if parts.len() != 6
        || parts
            .iter()
            .any(|p| p.len() != 2 || !p.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err("is not a MAC address (six hex pairs like dc:a6:32:01:02:03)".into());
    }
    let bytes: Vec<u8> = parts
        .iter()
        .map(|p| u8::from_str_radix(p, 16).unwrap_or_default())
        .collect();
    if bytes.iter().all(|b| *b == 0) {
        return Err("is all zeros".into());
    }
    if bytes[0] & 1 == 1 {
        return Err("is a multicast/broadcast address, not a NIC's".into());
    }
    Ok(parts.join(":").to_ascii_lowercase())
}

fn check_user(user: &str) -> Result<(), String> {
    let ok_first = user
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    if !ok_first
        || user.len() > 32
        || !user
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.'))
    {
        return Err(format!("user `{user}` is not a valid login name"));
    }
    Ok(())
}

fn check_ssh_host(host: &str) -> Result<(), String> {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!("host `{host}` is not a host name or IP address"))
    }
}

/// Parse `[USER@]HOST[:PORT]` (IPv6 as `[addr]:port`); port defaults to 22.
pub fn parse_ssh_target(s: &str) -> Result<SshTarget, String> {
    let (user, rest) = match s.rsplit_once('@') {
        Some((u, r)) => {
            check_user(u)?;
            (Some(u.to_string()), r)
        }
        None => (None, s),
    };
    let (host, port) = if let Some(stripped) = rest.strip_prefix('[') {
        let (h, after) = stripped
            .split_once(']')
            .ok_or_else(|| format!("`{s}`: unclosed '[' around an IPv6 address"))?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("`{h}` is not an IPv6 address"));
        }
        match after {
            "" => (h, None),
            p if p.starts_with(':') => (h, Some(&p[1..])),
            _ => return Err(format!("`{s}` is not [USER@]HOST[:PORT]")),
        }
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    check_ssh_host(host)?;
    let port = match port {
        None => 22,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("port `{p}` is not a number from 1 to 65535")),
        },
    };
    Ok(SshTarget {
        user,
        host: host.to_string(),
        port,
    })
}

/// An absolute path of `[A-Za-z0-9_./+-]` without `..` or `//`: safe in
/// /etc/exports, fstab and a shell.
pub fn check_abs_path(p: &str) -> Result<(), String> {
    if !p.starts_with('/') {
        return Err("must be an absolute path".into());
    }
    if let Some(c) = p
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '+' | '-')))
    {
        return Err(format!("contains {c:?}; use letters, digits and _ . / + -"));
    }
    if p.split('/').any(|seg| seg == "..") || p.contains("//") {
        return Err("must not contain '..' or '//'".into());
    }
    Ok(())
}

fn check_export_options(o: &str) -> Result<(), String> {
    if o.is_empty() {
        return Err("are empty".into());
    }
    if let Some(c) = o.chars().find(|c| {
        !(c.is_ascii_alphanumeric() || matches!(c, '_' | '=' | ',' | '.' | ':' | '-' | '/'))
    }) {
        return Err(format!("contain {c:?}"));
    }
    Ok(())
}

/// Collects diagnostics as validation goes.
#[derive(Default)]
struct Diags(Vec<Diagnostic>);

impl Diags {
    fn err(&mut self, at: Option<Location>, node: Option<&str>, msg: String, help: Option<&str>) {
        let mut d = Diagnostic::new(msg).at(at);
        if let Some(n) = node {
            d = d.node(n);
        }
        if let Some(h) = help {
            d = d.help(h);
        }
        self.0.push(d);
    }
}

fn parse_ip(d: &mut Diags, s: &S<String>, what: &str, node: Option<&str>) -> Option<Ipv4Addr> {
    match s.value.trim().parse::<Ipv4Addr>() {
        Ok(ip) => Some(ip),
        Err(_) => {
            d.err(
                loc(s),
                node,
                format!("{what} `{}` is not an IPv4 address", s.value),
                Some("write it as four numbers, like 10.0.0.11"),
            );
            None
        }
    }
}

/// A value and where it was written.
type Positioned<T> = (T, Option<Location>);

/// One worker before checks across nodes.
struct Pending {
    name: String,
    at: Option<Location>,
    ip: Option<(Ipv4Addr, Option<Location>)>,
    mac: Option<(String, Option<Location>)>,
    slots: Option<u32>,
    ssh: Option<SshTarget>,
    iface: String,
}

/// Validate and resolve. `base` is the inventory's directory, for relative paths.
pub fn validate(raw: &RawInventory, base: &Path) -> Result<Cluster, Vec<Diagnostic>> {
    let mut d = Diags::default();

    // --- cluster name and domain
    if let Err(e) = check_hostname(&raw.name.value) {
        d.err(
            loc(&raw.name),
            None,
            format!("cluster name `{}` {e}", raw.name.value.escape_debug()),
            Some("a cluster name is a host-name label like `bramble`"),
        );
    }
    if let Err(e) = check_domain(&raw.domain.value) {
        d.err(
            loc(&raw.domain),
            None,
            format!("domain `{}`: {e}", raw.domain.value),
            Some("use a private domain such as `cluster.lan`"),
        );
    }

    // --- LAN
    let net = match raw.lan.cidr.value.trim().parse::<Ipv4Net>() {
        Ok(n) if n.addr() != n.network() => {
            d.err(
                loc(&raw.lan.cidr),
                None,
                format!("LAN `{}` has host bits set", raw.lan.cidr.value),
                Some(&format!("did you mean {}?", n.trunc())),
            );
            // Go on with the network the user most likely meant, to report the rest.
            Some(n.trunc())
        }
        Ok(n) if n.prefix_len() > 29 => {
            d.err(
                loc(&raw.lan.cidr),
                None,
                format!("LAN `{}` is too small for a cluster", raw.lan.cidr.value),
                Some("use a /24 or larger (a /29 holds at most 6 hosts)"),
            );
            None
        }
        Ok(n) => Some(n),
        Err(_) => {
            let help = if raw.lan.cidr.value.contains(':') {
                "IPv6 LANs are not supported yet; use an IPv4 private range like 10.0.0.0/24"
            } else {
                "write it as ADDRESS/PREFIX, like 10.0.0.0/24"
            };
            d.err(
                loc(&raw.lan.cidr),
                None,
                format!("LAN `{}` is not an IPv4 CIDR", raw.lan.cidr.value),
                Some(help),
            );
            None
        }
    };
    let in_lan = |ip: Ipv4Addr| {
        net.is_some_and(|n| n.contains(&ip) && ip != n.network() && ip != n.broadcast())
    };

    let range = parse_range(&mut d, &raw.lan.dhcp_range, net);

    let mut upstream = Vec::new();
    for s in &raw.lan.upstream_dns {
        if let Some(ip) = parse_ip(&mut d, s, "upstream DNS server", None) {
            if !upstream.contains(&ip) {
                upstream.push(ip);
            }
        }
    }

    // --- head
    let h = &raw.head;
    let head_name = h.name.value.clone();
    if let Err(e) = check_hostname(&head_name) {
        d.err(
            loc(&h.name),
            None,
            format!("invalid head name `{}`: it {e}", head_name.escape_debug()),
            Some("host names are RFC 1123 labels like `head` or `node01`"),
        );
    }
    let head_ssh = match parse_ssh_target(h.ssh.value.trim()) {
        Ok(t) => Some(t),
        Err(e) => {
            d.err(
                loc(&h.ssh),
                Some(&head_name),
                format!("ssh target `{}`: {e}", h.ssh.value),
                Some("write it as [USER@]HOST[:PORT], like pi@192.168.1.50:22"),
            );
            None
        }
    };
    for (s, what) in [(&h.wan_iface, "wan_iface"), (&h.lan_iface, "lan_iface")] {
        if let Err(e) = check_iface(&s.value) {
            d.err(
                loc(s),
                Some(&head_name),
                format!("{what} `{}` {e}", s.value),
                Some("use the name `ip link` shows, like eth1 or enp2s0"),
            );
        }
    }
    if h.wan_iface.value == h.lan_iface.value {
        d.err(
            loc(&h.lan_iface),
            Some(&head_name),
            format!("lan_iface and wan_iface are both `{}`", h.lan_iface.value),
            Some("the head needs two interfaces: one to the outside, one to the cluster switch"),
        );
    }
    let head_ip = parse_ip(&mut d, &h.lan_ip, "lan_ip", Some(&head_name));
    if let (Some(ip), Some(n)) = (head_ip, net) {
        if !in_lan(ip) {
            d.err(
                loc(&h.lan_ip),
                Some(&head_name),
                format!("lan_ip {ip} is not a host address in the LAN {n}"),
                Some(&format!(
                    "pick an address between {} and {}",
                    first_host(n),
                    last_host(n)
                )),
            );
        }
        if let Some((a, b, _)) = range {
            if a <= ip && ip <= b {
                d.err(
                    loc(&h.lan_ip),
                    Some(&head_name),
                    format!("lan_ip {ip} is inside the DHCP range {a}-{b}"),
                    Some("move the DHCP range or the head's address so they do not overlap"),
                );
            }
        }
    }

    // --- ssh settings
    let ssh_raw = raw.ssh.as_ref();
    let default_user = match ssh_raw.and_then(|s| s.user.as_ref()) {
        Some(u) => {
            if let Err(e) = check_user(&u.value) {
                d.err(loc(u), None, e, None);
            }
            Some(u.value.clone())
        }
        None => head_ssh.as_ref().and_then(|t| t.user.clone()),
    };
    let resolve = |p: &Option<S<String>>| p.as_ref().map(|s| absolutize(base, &s.value));
    let ssh = SshSettings {
        transport: ssh_raw
            .and_then(|s| s.transport.as_ref())
            .map(|t| t.value)
            .unwrap_or_default(),
        config: ssh_raw.and_then(|s| resolve(&s.config)),
        known_hosts: ssh_raw.and_then(|s| resolve(&s.known_hosts)),
        identity: ssh_raw.and_then(|s| resolve(&s.identity)),
    };

    // --- MPI defaults (needed by workers)
    let mpi_slots = match raw.mpi.as_ref().and_then(|m| m.slots.as_ref()) {
        Some(s) => {
            check_slots(&mut d, s, None);
            s.value
        }
        None => 1,
    };

    // --- workers: expand entries
    let mut pending: Vec<Pending> = Vec::new();
    for entry in &raw.workers {
        expand_worker(&mut d, entry, net, &mut pending);
    }

    // --- IP assignment: explicit first, then automatic in order.
    let mut taken: BTreeMap<Ipv4Addr, String> = BTreeMap::new();
    if let Some(ip) = head_ip {
        taken.insert(ip, head_name.clone());
    }
    let mut names: BTreeMap<String, Option<Location>> = BTreeMap::new();
    names.insert(head_name.clone(), loc(&h.name));
    for p in &pending {
        if let Some(prev) = names.get(&p.name) {
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
            names.insert(p.name.clone(), p.at);
        }
        if let Some((ip, at)) = p.ip {
            if let Some(n) = net {
                if !in_lan(ip) {
                    d.err(
                        at,
                        Some(&p.name),
                        format!("IP {ip} is not a host address in the LAN {n}"),
                        Some(&format!(
                            "pick an address between {} and {}",
                            first_host(n),
                            last_host(n)
                        )),
                    );
                    continue;
                }
            }
            if let Some((a, b, _)) = range {
                if a <= ip && ip <= b {
                    d.err(at, Some(&p.name), format!("IP {ip} is inside the DHCP range {a}-{b}"), Some("reserved addresses must lie outside the dynamic pool; move the node or the range"));
                }
            }
            if let Some(other) = taken.get(&ip) {
                d.err(
                    at,
                    Some(&p.name),
                    format!("duplicate IP address {ip} (also used by {other})"),
                    Some("give each node its own address, or omit `ip` to have one assigned"),
                );
            } else {
                taken.insert(ip, p.name.clone());
            }
        }
    }
    let mut workers = Vec::new();
    // Automatic addresses continue after the previous node's (head first), so a
    // node added at the end gets the next address up; wrap around once.
    let mut cursor: Option<u32> = head_ip.and_then(|ip| u32::from(ip).checked_add(1));
    let domain = raw.domain.value.clone();
    let mut full_reported = false;
    let worker_count = pending.len();
    for p in &pending {
        let ip = match (p.ip, net) {
            (Some((ip, _)), _) => Some(ip),
            (None, Some(n)) => {
                let lo = u32::from(n.network()) + 1;
                let hi = u32::from(n.broadcast()) - 1;
                let start = cursor.filter(|c| (lo..=hi).contains(c)).unwrap_or(lo);
                let free = |c: u32| {
                    let cand = Ipv4Addr::from(c);
                    let in_range = range.is_some_and(|(a, b, _)| a <= cand && cand <= b);
                    !in_range && !taken.contains_key(&cand)
                };
                match (start..=hi).chain(lo..start).find(|c| free(*c)) {
                    Some(c) => {
                        let ip = Ipv4Addr::from(c);
                        taken.insert(ip, p.name.clone());
                        Some(ip)
                    }
                    None => {
                        if !full_reported {
                            full_reported = true;
                            d.err(p.at, Some(&p.name), format!("more nodes than the LAN can hold: no free address left in {n} for {} nodes outside the DHCP range", worker_count + 1), Some("use a larger LAN (e.g. a /24) or a smaller DHCP range"));
                        }
                        None
                    }
                }
            }
            (None, None) => None,
        };
        if let Some(ip) = ip {
            cursor = u32::from(ip).checked_add(1);
        }
        let slots = p.slots.unwrap_or(mpi_slots);
        let (ssh_target, via_head) = match &p.ssh {
            Some(t) => (t.clone(), false),
            None => (
                SshTarget {
                    user: default_user.clone(),
                    host: ip.map(|i| i.to_string()).unwrap_or_default(),
                    port: 22,
                },
                true,
            ),
        };
        workers.push(Worker {
            fqdn: format!("{}.{domain}", p.name),
            name: p.name.clone(),
            ip: ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
            mac: p.mac.as_ref().map(|(m, _)| m.clone()),
            iface: p.iface.clone(),
            slots,
            ssh: ssh_target,
            via_head,
            sudo: h.become_.is_some(),
        });
    }

    // --- MACs unique
    let mut macs: BTreeMap<&str, &str> = BTreeMap::new();
    for p in &pending {
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

    // --- NFS
    let mut exports = Vec::new();
    let nfs_enabled = raw.nfs.as_ref().is_some_and(|n| n.enabled);
    if let Some(nfs) = &raw.nfs {
        let mut seen_paths = BTreeSet::new();
        let mut seen_mounts = BTreeSet::new();
        for e in &nfs.exports {
            let e = &e.value;
            let mut ok = true;
            if let Err(msg) = check_abs_path(&e.path.value) {
                d.err(
                    loc(&e.path),
                    None,
                    format!("NFS export path `{}` {msg}", e.path.value),
                    None,
                );
                ok = false;
            } else if e.path.value == "/" {
                d.err(
                    loc(&e.path),
                    None,
                    "NFS export of `/` (the head's whole filesystem)".into(),
                    Some("export a directory such as /home or /opt/shared"),
                );
                ok = false;
            }
            let mount = normalize_path(
                &e.mount
                    .as_ref()
                    .map(|m| m.value.clone())
                    .unwrap_or_else(|| e.path.value.clone()),
            );
            if let Some(m) = &e.mount {
                if let Err(msg) = check_abs_path(&m.value) {
                    d.err(
                        loc(m),
                        None,
                        format!("NFS mount point `{}` {msg}", m.value),
                        None,
                    );
                    ok = false;
                } else if m.value == "/" {
                    d.err(
                        loc(m),
                        None,
                        "NFS mount point `/` would hide the worker's root filesystem".into(),
                        Some("mount it on a directory such as /home"),
                    );
                    ok = false;
                }
            }
            let options = e
                .options
                .as_ref()
                .map(|o| o.value.clone())
                .unwrap_or_else(|| "rw,sync,no_subtree_check".into());
            if let Some(o) = &e.options {
                if let Err(msg) = check_export_options(&o.value) {
                    d.err(
                        loc(o),
                        None,
                        format!("NFS export options `{}` {msg}", o.value),
                        Some("options are comma-separated words like rw,sync,no_subtree_check"),
                    );
                    ok = false;
                }
            }
            if !seen_paths.insert(normalize_path(&e.path.value)) {
                d.err(
                    loc(&e.path),
                    None,
                    format!("NFS export `{}` is listed twice", e.path.value),
                    None,
                );
                ok = false;
            }
            if !seen_mounts.insert(mount.clone()) {
                d.err(
                    e.mount.as_ref().map_or(loc(&e.path), loc),
                    None,
                    format!("NFS mount point `{mount}` is used twice"),
                    None,
                );
                ok = false;
            }
            if ok {
                let access = if options.split(',').any(|o| o == "ro") {
                    "ro"
                } else {
                    "rw"
                };
                exports.push(Export {
                    path: normalize_path(&e.path.value),
                    mount,
                    mount_options: format!("{access},_netdev,nofail"),
                    options,
                });
            }
        }
    }

    // --- firewall
    // 22 and the port the controller reaches the head on are always open:
    // a firewall that drops our own SSH session would lock the user out.
    let mut ports: BTreeSet<u16> = BTreeSet::from([22]);
    if let Some(t) = &head_ssh {
        ports.insert(t.port);
    }
    let mut lan_policy = LanPolicy::default();
    if let Some(fw) = &raw.firewall {
        for p in &fw.wan_tcp_ports {
            if p.value == 0 {
                d.err(
                    loc(p),
                    None,
                    "WAN port 0 is not a port".into(),
                    Some("ports run from 1 to 65535"),
                );
            } else {
                ports.insert(p.value);
            }
        }
        if let Some(l) = &fw.lan {
            lan_policy = l.value;
        }
    }

    // --- MPI
    let mut flavors: Vec<HostfileFlavor> = raw
        .mpi
        .as_ref()
        .and_then(|m| m.hostfiles.as_ref())
        .map(|v| v.iter().map(|f| f.value).collect())
        .unwrap_or_else(|| vec![HostfileFlavor::Openmpi]);
    flavors.sort();
    flavors.dedup();

    let mut diags = d.0;
    if !diags.is_empty() {
        diags.sort_by_key(|x| (x.location.is_none(), x.location));
        return Err(diags);
    }
    let (Some(net), Some((dhcp_start, dhcp_end, _)), Some(head_ip), Some(head_ssh)) =
        (net, range, head_ip, head_ssh)
    else {
        // Each None above pushed a diagnostic; reaching here would be a bug in this function.
        return Err(vec![Diagnostic::new(
            "internal error: validation lost a diagnostic",
        )]);
    };
    Ok(Cluster {
        name: raw.name.value.clone(),
        domain: domain.clone(),
        lan: Lan {
            cidr: net.to_string(),
            network: net.network(),
            prefix: net.prefix_len(),
            netmask: net.netmask(),
            broadcast: net.broadcast(),
            dhcp_start,
            dhcp_end,
            addressing: raw
                .lan
                .addressing
                .as_ref()
                .map(|a| a.value)
                .unwrap_or(Addressing::Dhcp),
            upstream_dns: upstream,
        },
        head: Head {
            fqdn: format!("{head_name}.{domain}"),
            name: head_name,
            ssh: head_ssh,
            sudo: h.become_.is_some(),
            wan_iface: h.wan_iface.value.clone(),
            lan_iface: h.lan_iface.value.clone(),
            lan_ip: head_ip,
        },
        workers,
        nfs: Nfs {
            enabled: nfs_enabled && !exports.is_empty(),
            exports,
        },
        firewall: Firewall {
            wan_tcp_ports: ports.into_iter().collect(),
            lan: lan_policy,
        },
        mpi: Mpi {
            slots: mpi_slots,
            hostfiles: flavors,
        },
        ssh,
    })
}

fn absolutize(base: &Path, p: &str) -> std::path::PathBuf {
    let p = Path::new(p);
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    };
    if joined.is_absolute() {
        joined
    } else {
        std::env::current_dir()
            .map(|c| c.join(&joined))
            .unwrap_or(joined)
    }
}

fn first_host(n: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(n.network()) + 1)
}

fn last_host(n: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(n.broadcast()) - 1)
}

fn check_slots(d: &mut Diags, s: &S<u32>, node: Option<&str>) {
    if s.value == 0 || s.value > MAX_SLOTS {
        d.err(
            loc(s),
            node,
            format!("slots {} is out of range", s.value),
            Some(&format!("slots run from 1 to {MAX_SLOTS}")),
        );
    }
}

/// `A-B` inside the LAN, not reversed. Returns (start, end, location).
fn parse_range(
    d: &mut Diags,
    s: &S<String>,
    net: Option<Ipv4Net>,
) -> Option<(Ipv4Addr, Ipv4Addr, Option<Location>)> {
    let at = loc(s);
    let Some((a, b)) = s.value.split_once('-') else {
        d.err(
            at,
            None,
            format!("DHCP range `{}` is not START-END", s.value),
            Some("write it as two addresses, like 10.0.0.100-10.0.0.200"),
        );
        return None;
    };
    let (Ok(a), Ok(b)) = (a.trim().parse::<Ipv4Addr>(), b.trim().parse::<Ipv4Addr>()) else {
        d.err(
            at,
            None,
            format!("DHCP range `{}` is not two IPv4 addresses", s.value),
            Some("write it as two addresses, like 10.0.0.100-10.0.0.200"),
        );
        return None;
    };
    if a > b {
        d.err(
            at,
            None,
            format!("DHCP range `{}` is reversed", s.value),
            Some(&format!("did you mean {b}-{a}?")),
        );
        return None;
    }
    if let Some(n) = net {
        let host = |ip: Ipv4Addr| n.contains(&ip) && ip != n.network() && ip != n.broadcast();
        if !host(a) || !host(b) {
            d.err(
                at,
                None,
                format!("DHCP range `{}` is not inside the LAN {n}", s.value),
                Some(&format!(
                    "both ends must lie between {} and {}",
                    first_host(n),
                    last_host(n)
                )),
            );
            return None;
        }
    }
    Some((a, b, at))
}

fn expand_worker(
    d: &mut Diags,
    entry: &S<RawWorker>,
    net: Option<Ipv4Net>,
    out: &mut Vec<Pending>,
) {
    let w = &entry.value;
    let entry_at = loc(entry);
    let single = |name: &str, at: Option<Location>, d: &mut Diags| {
        if let Err(e) = check_hostname(name) {
            d.err(
                at,
                None,
                format!("invalid host name `{}`: it {e}", name.escape_debug()),
                Some("host names are RFC 1123 labels like `node01`"),
            );
            return false;
        }
        true
    };
    let slots = w.slots.as_ref().map(|s| s.value);
    let iface = match &w.iface {
        Some(s) => {
            if let Err(e) = check_iface(&s.value) {
                d.err(
                    loc(s),
                    None,
                    format!("iface `{}` {e}", s.value),
                    Some("use the name `ip link` shows on the worker, like eth0"),
                );
            }
            s.value.clone()
        }
        None => DEFAULT_WORKER_IFACE.to_string(),
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
            if !single(&n.value, loc(n), d) {
                return;
            }
            if let Some(s) = &w.slots {
                check_slots(d, s, Some(&n.value));
            }
            let ip =
                w.ip.as_ref()
                    .and_then(|s| parse_ip(d, s, "IP", Some(&n.value)).map(|ip| (ip, loc(s))));
            let mac = w.mac.as_ref().and_then(|m| match normalize_mac(&m.value) {
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
            out.push(Pending {
                name: n.value.clone(),
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
                .and_then(|s| parse_ip(d, s, "ip_start", None).map(|ip| (ip, loc(s))));
            let macs: Option<Vec<Option<Positioned<String>>>> = w.macs.as_ref().map(|ms| {
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
                    .map(|m| match normalize_mac(&m.value) {
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
                if !single(&name, loc(list), d) {
                    continue;
                }
                // In range: checked above (last <= end).
                let ip = start
                    .map(|(s, at)| (Ipv4Addr::from(u32::from(s).saturating_add(i as u32)), at));
                let mac = macs.as_ref().and_then(|v| v.get(i).cloned().flatten());
                out.push(Pending {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        assert!(check_hostname("node01").is_ok());
        assert!(check_hostname("gpu01-a").is_ok());
        for bad in [
            "",
            "-a",
            "a-",
            "Node",
            "a b",
            "a;b",
            "a$b",
            "123",
            "a\nb",
            "a'b",
            &"x".repeat(64),
        ] {
            assert!(check_hostname(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn macs() {
        assert_eq!(
            normalize_mac("DC-A6-32-00-00-01").unwrap(),
            "dc:a6:32:00:00:01"
        );
        for bad in [
            "dc:a6:32:00:00",
            "zz:a6:32:00:00:01",
            "01:00:5e:00:00:01",
            "00:00:00:00:00:00",
            "dc:a6:32:00:00:001",
        ] {
            assert!(normalize_mac(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ssh_targets() {
        let t = parse_ssh_target("pi@192.168.1.50:2222").unwrap();
        assert_eq!(
            (t.user.as_deref(), t.host.as_str(), t.port),
            (Some("pi"), "192.168.1.50", 2222)
        );
        let t = parse_ssh_target("[fe80::1]:22").unwrap();
        assert_eq!(t.host, "fe80::1");
        assert_eq!(parse_ssh_target("head").unwrap().port, 22);
        for bad in ["a b@h", "root@h;rm", "h:0", "h:x", "@h", "root@", "[::1"] {
            assert!(parse_ssh_target(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths() {
        assert!(check_abs_path("/opt/shared").is_ok());
        for bad in ["home", "/a b", "/a/../b", "/a;b", "/a//b", "/a\nb"] {
            assert!(check_abs_path(bad).is_err(), "{bad:?}");
        }
    }
}
