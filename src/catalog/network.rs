//! The LAN interface under each network stack: which stack renders it
//! (the inventory's pin, else the facts; never a guess), the files each
//! stack gets (ifupdown, NetworkManager keyfile, systemd-networkd,
//! netplan, and cloud-init told to keep off the network), how each
//! activates them without ever taking down the interface carrying the SSH
//! session, and what happens when a file the node already has claims the
//! same interface: left to do the job when it already asks DHCP as wanted,
//! else reported (never two configurations fighting over one interface).

use super::{FileSpec, Manage, Subject, Tool, Validator};
use crate::cluster::{Addressing, NodeRef};
use crate::facts::stack_name;
use crate::family::Pkg;
use crate::inventory::NetStack;
use crate::transport::shell_quote;

/// The NetworkManager profile's name (and file name).
pub const NM_PROFILE: &str = "clusterctl-lan";

/// The stack this node's LAN interface is rendered for.
pub fn stack(s: &Subject) -> Option<NetStack> {
    let pin = match s.node {
        NodeRef::Head(h) => h.network,
        NodeRef::Worker(w) => w.network,
    };
    match pin {
        NetStack::Auto => s.facts.net_stack(),
        p => Some(p),
    }
}

/// The node's LAN interface asks DHCP (a worker with `addressing: dhcp`).
fn wants_dhcp(s: &Subject) -> bool {
    matches!(s.node, NodeRef::Worker(_)) && s.cluster.lan.addressing == Addressing::Dhcp
}

/// How the LAN interface is configured on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// clusterctl writes the stack's file.
    Write(NetStack),
    /// The node's own file already asks DHCP for it: kept, nothing written.
    Keep(NetStack, String),
}

/// Decide, or say why not (no stack recognised; another file claims the
/// interface differently).
pub fn decide(s: &Subject) -> Result<Decision, String> {
    let iface = s.node.lan_iface();
    let Some(stack) = stack(s) else {
        return Err(format!(
            "no network stack recognised on {} (no netplan file, NetworkManager or systemd-networkd \
             running, no ifup) (help: pin one with `network: ifupdown|networkmanager|networkd|netplan` \
             on the node in the inventory)",
            s.node.name()
        ));
    };
    let claims = s.facts.net.claims(stack, iface);
    if claims.is_empty() {
        return Ok(Decision::Write(stack));
    }
    if wants_dhcp(s) && claims.iter().all(|c| c.dhcp) {
        return Ok(Decision::Keep(stack, claims[0].file.clone()));
    }
    let files: Vec<String> = claims
        .iter()
        .map(|c| format!("{} ({})", c.file, if c.dhcp { "DHCP" } else { "static" }))
        .collect();
    let want = if wants_dhcp(s) {
        "DHCP".to_string()
    } else {
        format!("static {}/{}", s.node.ip(), s.cluster.lan.prefix)
    };
    Err(format!(
        "{iface} on {} is already configured by {}; clusterctl's {} configuration ({want}) would fight it \
         (help: remove {iface}'s configuration from that file (or the file), then apply again)",
        s.node.name(),
        files.join(", "),
        stack_name(stack)
    ))
}

/// The note for a kept configuration.
pub fn note(s: &Subject) -> Option<String> {
    match decide(s) {
        Ok(Decision::Keep(stack, file)) => Some(format!(
            "{} already asks DHCP in {file} ({}): kept, clusterctl writes no interface file",
            s.node.lan_iface(),
            stack_name(stack)
        )),
        _ => None,
    }
}

fn writes(s: &Subject, stack: NetStack) -> bool {
    decide(s) == Ok(Decision::Write(stack))
}
fn ifupdown(s: &Subject) -> bool {
    writes(s, NetStack::Ifupdown)
}
fn nm(s: &Subject) -> bool {
    writes(s, NetStack::Networkmanager)
}
fn networkd(s: &Subject) -> bool {
    writes(s, NetStack::Networkd)
}
fn netplan(s: &Subject) -> bool {
    writes(s, NetStack::Netplan)
}
/// cloud-init renders netplan at every boot: told to keep off once
/// clusterctl has a netplan file.
fn cloud_init_off(s: &Subject) -> bool {
    netplan(s) && s.facts.net.cloud_init_network == Some(true)
}
/// Static workers on ifupdown get /etc/resolv.conf; the other stacks
/// carry the resolver in their own file.
fn static_resolv(s: &Subject) -> bool {
    ifupdown(s) && s.cluster.lan.addressing == Addressing::Static
}

const fn spec(
    template: &'static str,
    path: &'static str,
    mode: u32,
    when: fn(&Subject) -> bool,
) -> FileSpec {
    FileSpec {
        template,
        path,
        mode,
        manage: Manage::Whole,
        when,
        validator: None,
        owner: "root",
        group: "root",
        secret: false,
    }
}

const NM_FILE: FileSpec = spec(
    "common/etc/NetworkManager/system-connections/clusterctl-lan.nmconnection.j2",
    "/etc/NetworkManager/system-connections/clusterctl-lan.nmconnection",
    0o600,
    nm,
);
const NETWORKD_FILE: FileSpec = spec(
    "common/etc/systemd/network/10-clusterctl-lan.network.j2",
    "/etc/systemd/network/10-clusterctl-lan.network",
    0o644,
    networkd,
);
const NETPLAN_FILE: FileSpec = FileSpec {
    validator: Some(Validator::Netplan),
    ..spec(
        "common/etc/netplan/90-clusterctl.yaml.j2",
        "/etc/netplan/90-clusterctl.yaml",
        0o600,
        netplan,
    )
};
const CLOUD_INIT_FILE: FileSpec = spec(
    "common/etc/cloud/cloud.cfg.d/99-clusterctl-network.cfg.j2",
    "/etc/cloud/cloud.cfg.d/99-clusterctl-network.cfg",
    0o644,
    cloud_init_off,
);

/// The head's LAN interface, static, under each stack.
pub const HEAD_FILES: &[FileSpec] = &[
    spec(
        "head/etc/network/interfaces.d/clusterctl.j2",
        "/etc/network/interfaces.d/clusterctl",
        0o644,
        ifupdown,
    ),
    NM_FILE,
    NETWORKD_FILE,
    NETPLAN_FILE,
    CLOUD_INIT_FILE,
];

/// A worker's LAN interface (DHCP or static) under each stack.
pub const WORKER_FILES: &[FileSpec] = &[
    spec(
        "worker/etc/network/interfaces.d/clusterctl.j2",
        "/etc/network/interfaces.d/clusterctl",
        0o644,
        ifupdown,
    ),
    spec(
        "worker/etc/resolv.conf.j2",
        "/etc/resolv.conf",
        0o644,
        static_resolv,
    ),
    NM_FILE,
    NETWORKD_FILE,
    NETPLAN_FILE,
    CLOUD_INIT_FILE,
];

/// The command that activates the LAN interface's new file (a function of
/// `handlers.sh` that skips the SSH session's interface).
pub fn activate(s: &Subject) -> Result<String, String> {
    let iface = shell_quote(s.node.lan_iface());
    Ok(match decide(s)? {
        Decision::Write(NetStack::Networkmanager) => format!(
            "nm_up_safe {iface} {} {}",
            shell_quote(NM_FILE.path),
            shell_quote(NM_PROFILE)
        ),
        Decision::Write(NetStack::Networkd) => format!("networkd_up_safe {iface}"),
        Decision::Write(NetStack::Netplan) => format!("netplan_apply_safe {iface}"),
        _ => format!("ifup_safe {iface}"),
    })
}

/// The commands [`activate`] needs.
pub fn tools(s: &Subject) -> Vec<Tool> {
    if s.facts.session_iface.as_deref() == Some(s.node.lan_iface()) {
        return vec![];
    }
    match decide(s) {
        Ok(Decision::Write(NetStack::Networkmanager)) => {
            vec![Tool::new("nmcli", Pkg::NetworkManager)]
        }
        Ok(Decision::Write(NetStack::Networkd)) => vec![Tool::new("networkctl", Pkg::Systemd)],
        Ok(Decision::Write(NetStack::Netplan)) => vec![Tool::new("netplan", Pkg::Netplan)],
        _ => vec![
            Tool::new("ifup", Pkg::Ifupdown),
            Tool::new("ifdown", Pkg::Ifupdown),
        ],
    }
}
