//! The lab's wiring, done by shelling out to `ip`: the bridge namespace (held
//! by a recorded process, not a named netns) with its `wan` and `lan` bridges, the controller's veth in the root namespace
//! (the only thing the lab puts there), one veth per host interface, and the
//! safety check that refuses subnets the machine already routes.

use std::io::Write;
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;

use super::state::Proc;
use super::topology::{HostSpec, Topology};
use crate::error::{Error, Result};

/// Run a command to completion; its stderr becomes the error message.
pub fn run(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Lab {
            message: format!("cannot run {program}: {e}"),
            help: Some("install the lab's packages: sudo scripts/install-deps.sh".into()),
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::lab(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Run `ip -batch -` with the given commands, in the network namespace of
/// process `netns_pid` (the bridge holder) or in the root namespace.
pub fn ip_batch(netns_pid: Option<i32>, commands: &[String]) -> Result<()> {
    if commands.is_empty() {
        return Ok(());
    }
    let mut cmd = match netns_pid {
        Some(pid) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net=/proc/{pid}/ns/net")).arg("ip");
            c
        }
        None => Command::new("ip"),
    };
    let mut child = cmd
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::lab(format!("cannot run ip: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let text = commands.join("\n") + "\n";
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| Error::lab(format!("cannot feed ip -batch: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::lab(format!("ip -batch: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::lab(format!(
            "ip -batch failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

pub fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// A route of the root namespace: destination and device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub dst: Ipv4Net,
    pub dev: Option<String>,
}

/// Parse `ip -4 route show table all` output (defaults are skipped: they
/// overlap everything and are not a claim on a subnet).
pub fn parse_routes(text: &str) -> Vec<Route> {
    const TYPES: &[&str] = &[
        "unicast",
        "local",
        "broadcast",
        "multicast",
        "unreachable",
        "blackhole",
        "prohibit",
        "throw",
        "nat",
        "anycast",
    ];
    let mut routes = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace().peekable();
        if words.peek().is_some_and(|w| TYPES.contains(w)) {
            words.next();
        }
        let Some(dst) = words.next() else { continue };
        let dst: Ipv4Net = if let Ok(net) = dst.parse() {
            net
        } else if let Ok(addr) = dst.parse::<Ipv4Addr>() {
            Ipv4Net::from(addr)
        } else {
            continue; // "default" and anything unknown
        };
        let rest: Vec<&str> = words.collect();
        let dev = rest
            .windows(2)
            .find(|w| w[0] == "dev")
            .map(|w| w[1].to_string());
        routes.push(Route { dst, dev });
    }
    routes
}

fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The routes (other than the lab's own) that overlap the lab's subnets.
pub fn conflicting_routes(routes: &[Route], topo: &Topology) -> Vec<(Ipv4Net, Route)> {
    let own = topo.ctl_iface();
    let mut out = Vec::new();
    for r in routes {
        if r.dev.as_deref() == Some(own.as_str()) {
            continue;
        }
        for net in [topo.wan, topo.lan] {
            if overlaps(net, r.dst) {
                out.push((net, r.clone()));
            }
        }
    }
    out
}

/// Refuse subnets the machine already routes (except through the lab's own veth).
pub fn check_routes(topo: &Topology) -> Result<()> {
    let text = run("ip", &["-4", "route", "show", "table", "all"])?;
    let conflicts = conflicting_routes(&parse_routes(&text), topo);
    if let Some((net, route)) = conflicts.first() {
        return Err(Error::Lab {
            message: format!(
                "this machine already has a route for {} (dev {}), which overlaps the lab's {net}",
                route.dst,
                route.dev.as_deref().unwrap_or("?")
            ),
            help: Some(
                "the lab uses only addresses it owns: pick free subnets with --wan and --lan (e.g. --wan 198.18.0.0/24)"
                    .into(),
            ),
        });
    }
    Ok(())
}

/// Start the process that holds the bridge namespace: `unshare --net` of
/// `sleep infinity`, a namespace without any mount (unlike `ip netns add`,
/// which leaves a shared bind mount of /run/netns behind for good). Killing
/// it removes the bridges and every bridge-side veth, and their peers.
pub fn spawn_bridge_holder() -> Result<Proc> {
    let child = Command::new("unshare")
        .args(["--net", "--", "sleep", "infinity"])
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| Error::lab(format!("cannot run unshare: {e}")))?;
    let pid = child.id() as i32;
    let mine = std::fs::read_link("/proc/self/ns/net").ok();
    let deadline = Instant::now() + Duration::from_secs(5);
    // Until unshare(2) has run, the child is still in our namespace.
    loop {
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok();
        if theirs.is_some() && theirs != mine {
            break;
        }
        if Instant::now() > deadline {
            return Err(Error::lab("the bridge namespace did not come up"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Proc::of(pid).ok_or_else(|| Error::lab("the bridge namespace holder exited at once"))
}

/// Make the two bridges in the holder's namespace and the controller's veth.
pub fn create_fabric(topo: &Topology, bridges: Proc) -> Result<()> {
    let ns = Some(bridges.pid);
    let ctl = topo.ctl_iface();
    ip_batch(
        ns,
        &[
            "link set lo up".into(),
            "link add wan type bridge stp_state 0 forward_delay 0".into(),
            "link add lan type bridge stp_state 0 forward_delay 0".into(),
            "link set wan up".into(),
            "link set lan up".into(),
        ],
    )?;
    // The controller's end: created in the root namespace, peer moved straight
    // into the bridge namespace.
    let mac = topo.mac(0x03, 0);
    let pid = bridges.pid.to_string();
    run(
        "ip",
        &[
            "link", "add", &ctl, "address", &mac, "type", "veth", "peer", "name", "ctl", "netns",
            &pid,
        ],
    )?;
    // Nothing arriving from the lab is ever forwarded by this machine, and no
    // IPv6 chatter leaves the controller's end.
    write_sysctl(&format!("/proc/sys/net/ipv4/conf/{ctl}/forwarding"), "0")?;
    write_sysctl(&format!("/proc/sys/net/ipv6/conf/{ctl}/disable_ipv6"), "1")?;
    run(
        "ip",
        &["addr", "add", &topo.ctl_addr().to_string(), "dev", &ctl],
    )?;
    run("ip", &["link", "set", &ctl, "up"])?;
    ip_batch(ns, &["link set ctl master wan up".into()])?;
    Ok(())
}

/// The kernel's neighbour (ARP) table is one for all namespaces, 1024
/// entries by default: the head of a lab of N workers holds N of them and
/// every worker one more, so past about 500 workers connections stall in
/// SYN-SENT ("neighbor table overflow" in the kernel log). Raised to fit
/// `hosts` (every lab up at once counted generously); never lowered.
pub fn make_neighbour_room(hosts: usize) -> Result<()> {
    const DIR: &str = "/proc/sys/net/ipv4/neigh/default";
    let read = |name: &str| -> usize {
        std::fs::read_to_string(format!("{DIR}/{name}"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    };
    let want = 256 + 4 * hosts;
    if read("gc_thresh3") >= want {
        return Ok(());
    }
    say!("  raising the kernel's neighbour table limit to {want} entries (net.ipv4.neigh.default.gc_thresh3) for {hosts} hosts");
    if read("gc_thresh2") < want * 3 / 4 {
        write_sysctl(&format!("{DIR}/gc_thresh2"), &(want * 3 / 4).to_string())?;
    }
    write_sysctl(&format!("{DIR}/gc_thresh3"), &want.to_string())
}

fn write_sysctl(path: &str, value: &str) -> Result<()> {
    if !Path::new(path).exists() {
        return Ok(()); // e.g. IPv6 disabled on this kernel
    }
    std::fs::write(path, value).map_err(|source| Error::Write {
        path: path.into(),
        source,
    })
}

/// Remove the controller's veth (its peer goes with it). Missing is fine.
pub fn remove_ctl(prefix: &str) -> Result<()> {
    let ctl = format!("{prefix}-ctl");
    if link_exists(&ctl) {
        if let Err(e) = run("ip", &["link", "del", &ctl]) {
            if link_exists(&ctl) {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// The `ip -batch` commands (run in the bridge namespace) that plug the hosts
/// (by the PID of their init) into the bridges.
pub fn plug_commands(hosts: &[(HostSpec, i32)]) -> Vec<String> {
    let mut cmds = Vec::new();
    for (spec, pid) in hosts {
        for iface in &spec.ifaces {
            cmds.push(format!(
                "link add {} type veth peer name {} address {} netns {pid}",
                iface.bridge_port, iface.name, iface.mac
            ));
            cmds.push(format!(
                "link set {} master {} up",
                iface.bridge_port,
                iface.bridge.name()
            ));
        }
    }
    cmds
}

/// Delete a host's bridge ports (used when a host is removed; gone already is fine).
pub fn unplug(bridges: Proc, spec: &HostSpec) {
    let cmds: Vec<String> = spec
        .ifaces
        .iter()
        .map(|i| format!("link del {}", i.bridge_port))
        .collect();
    for c in cmds {
        let _ = ip_batch(Some(bridges.pid), &[c]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
default via 192.0.2.1 dev eth0
192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.2
198.51.100.0/24 dev cl-ctl proto kernel scope link src 198.51.100.254
local 192.0.2.2 dev eth0 table local proto kernel scope host src 192.0.2.2
broadcast 192.0.2.255 dev eth0 table local proto kernel scope link src 192.0.2.2
local 127.0.0.0/8 dev lo table local proto kernel scope host src 127.0.0.1
unreachable 10.77.0.0/16 metric 5
";

    #[test]
    fn routes_parse() {
        let r = parse_routes(SAMPLE);
        assert_eq!(r.len(), 6);
        assert_eq!(r[0].dst.to_string(), "192.0.2.0/24");
        assert_eq!(r[0].dev.as_deref(), Some("eth0"));
        assert_eq!(r[2].dst.to_string(), "192.0.2.2/32");
        assert_eq!(r[5].dev, None);
    }

    #[test]
    fn own_routes_are_not_conflicts_but_others_are() {
        let routes = parse_routes(SAMPLE);
        let t = Topology::new("cl", "198.51.100.0/24", "10.78.0.0/24", 1).unwrap();
        assert!(conflicting_routes(&routes, &t).is_empty());
        let t = Topology::new("other", "198.51.100.0/24", "10.78.0.0/24", 1).unwrap();
        assert_eq!(conflicting_routes(&routes, &t).len(), 1);
        let t = Topology::new("cl", "192.0.2.0/24", "10.78.0.0/24", 1).unwrap();
        assert!(!conflicting_routes(&routes, &t).is_empty());
        let t = Topology::new("cl", "198.51.100.0/24", "10.77.0.0/24", 1).unwrap();
        assert_eq!(
            conflicting_routes(&routes, &t).len(),
            1,
            "unreachable 10.77/16 covers the LAN"
        );
    }

    #[test]
    fn plug_commands_name_ports_and_macs() {
        let t = Topology::new("cl", "198.51.100.0/24", "10.77.0.0/24", 1).unwrap();
        let head = t.host("head").unwrap();
        let cmds = plug_commands(&[(head, 42)]);
        assert_eq!(cmds.len(), 4);
        assert!(cmds[0].starts_with("link add head-0 type veth peer name eth0 address 02:"));
        assert!(cmds[0].ends_with("netns 42"));
        assert_eq!(cmds[3], "link set head-1 master lan up");
    }
}
