//! Never cut the controller's path to a node, part one: refuse, before any
//! change, what the facts already show would do it. (Part two, for what no
//! check can foresee such as a template override, is commit-confirm in
//! `confirm.rs`.) These checks model the built-in firewall policy: the head
//! accepts SSH on the WAN (the inventory's ports) and, on the LAN, from the
//! LAN (`trust`) or on port 22 (`ssh-only`); a worker accepts only the LAN.
//! That policy is the same under both firewall backends (iptables-restore
//! rules and the native nftables table: `tests/integration/stacks.rs`
//! compares the ports each opens), so these checks hold for either.

use std::net::IpAddr;

use ipnet::Ipv4Net;

use crate::cluster::{Cluster, LanPolicy, NodeRef};
use crate::facts::Facts;
use crate::plan::NodePlan;

/// Ok, or why applying this plan would cut the controller off (nothing has
/// been changed yet).
pub fn refuse_lockout(
    cluster: &Cluster,
    node: NodeRef,
    facts: &Facts,
    plan: &NodePlan,
) -> Result<(), String> {
    if !plan.handlers.iter().any(|h| h.run.can_cut_path) {
        return Ok(());
    }
    let lan: Ipv4Net = match cluster.lan.cidr.parse() {
        Ok(n) => n,
        Err(_) => return Ok(()),
    };
    match node {
        NodeRef::Head(h) => {
            wan_outside_lan(facts, &h.wan_iface, lan)?;
            head_session_survives(cluster, facts, &h.wan_iface, &h.lan_iface, lan)
        }
        NodeRef::Worker(w) => worker_session_survives(cluster, facts, w.ssh.port, lan),
    }
}

/// The head's WAN side must not be on (or overlap) the cluster LAN.
fn wan_outside_lan(facts: &Facts, wan: &str, lan: Ipv4Net) -> Result<(), String> {
    for (iface, net) in facts.addrs.iter().filter(|(i, _)| i == wan) {
        if lan.contains(&net.addr()) {
            return Err(format!(
                "the head's WAN address {} (on {iface}, the inventory's wan_iface) is inside the LAN {lan}; \
                 refusing before any change: check wan_iface and lan_iface (are they swapped?) and lan.cidr",
                net.addr()
            ));
        }
        if net.trunc().contains(&lan) || lan.contains(&net.trunc()) {
            return Err(format!(
                "the LAN {lan} overlaps {}, the network the head is on through its WAN ({iface}); \
                 refusing before any change: pick a LAN the head's WAN side does not use",
                net.trunc()
            ));
        }
    }
    Ok(())
}

fn head_session_survives(
    cluster: &Cluster,
    facts: &Facts,
    wan: &str,
    lan_iface: &str,
    lan: Ipv4Net,
) -> Result<(), String> {
    let (Some(iface), Some(client)) = (facts.session_iface.as_deref(), facts.session_client) else {
        return Ok(()); // not over SSH, or cannot tell: commit-confirm still guards it
    };
    let port = cluster.head.ssh.port;
    if iface == "lo" || iface == "?" || iface == wan {
        return Ok(()); // loopback is accepted; the WAN side always opens our port
    }
    let from_lan = matches!(client, IpAddr::V4(a) if lan.contains(&a));
    if iface == lan_iface {
        let allowed = match cluster.firewall.lan {
            LanPolicy::Trust => from_lan,
            LanPolicy::SshOnly => port == 22,
        };
        if allowed {
            return Ok(());
        }
        return Err(format!(
            "this SSH session comes in on {iface} from {client}, and the inventory calls {iface} the LAN \
             (lan_iface); the new firewall would drop SSH from {client} there and lock you out; \
             refusing before any change: check wan_iface and lan_iface (are they swapped?)"
        ));
    }
    Err(format!(
        "this SSH session comes in on {iface}, which the inventory names neither wan_iface ({wan}) \
         nor lan_iface ({lan_iface}); the new firewall drops everything there and would lock you out; \
         refusing before any change: reach the head through its WAN or LAN interface, or fix the inventory"
    ))
}

fn worker_session_survives(
    cluster: &Cluster,
    facts: &Facts,
    port: u16,
    lan: Ipv4Net,
) -> Result<(), String> {
    let Some(client) = facts.session_client else {
        return Ok(());
    };
    let from_lan = matches!(client, IpAddr::V4(a) if lan.contains(&a));
    if !from_lan {
        return Err(format!(
            "this SSH session comes from {client}, outside the LAN {lan}, and a worker's new firewall \
             accepts only the LAN; refusing before any change: reach workers through the head \
             (drop the worker's `ssh:` setting) or from inside the LAN"
        ));
    }
    if cluster.firewall.lan == LanPolicy::SshOnly && port != 22 {
        return Err(format!(
            "the worker's SSH port is {port}, but with `firewall.lan: ssh-only` its new firewall \
             accepts SSH on port 22 only; refusing before any change"
        ));
    }
    Ok(())
}
