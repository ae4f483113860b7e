//! Which network stack a node runs, from what the probe saw (the managers
//! running, netplan files, `ifup`, cloud-init) and which of its existing
//! files already configure which interface (`@@netconf`): the renderer is
//! chosen from these facts, never guessed, and a file that already claims
//! the LAN interface is either left to do the job or reported.

use crate::inventory::NetStack;

/// One existing configuration of one interface (never one of clusterctl's
/// own files: the probe leaves those out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConf {
    pub stack: NetStack,
    pub file: String,
    pub iface: String,
    /// It asks DHCP for an IPv4 address (else static or unknown).
    pub dhcp: bool,
}

/// What the probe saw of the node's network configuration.
#[derive(Debug, Clone, Default)]
pub struct NetFacts {
    /// `classic` or `ng` when `ifup` exists.
    pub ifupdown: Option<String>,
    /// cloud-init is installed and enabled: Some(true) when it also
    /// renders the network configuration (at every boot).
    pub cloud_init_network: Option<bool>,
    /// Where /etc/resolv.conf points when it is a symlink.
    pub resolv_link: Option<String>,
    pub netplan_files: Vec<String>,
    /// A netplan file names NetworkManager as its renderer.
    pub netplan_nm: bool,
    pub confs: Vec<NetConf>,
}

impl NetFacts {
    /// One probe line about the network; false when the key is not one.
    pub fn parse_line(&mut self, key: &str, rest: &str) -> bool {
        match key {
            "@@ifupdown" => self.ifupdown = Some(rest.trim().to_string()),
            "@@cloud-init" => self.cloud_init_network = Some(rest.trim() == "network"),
            "@@resolv-link" => self.resolv_link = Some(rest.trim().to_string()),
            "@@netplan-file" => self.netplan_files.push(rest.trim().to_string()),
            "@@netplan-renderer" => self.netplan_nm = rest.trim() == "NetworkManager",
            "@@netconf" => {
                let w: Vec<&str> = rest.splitn(4, ' ').collect();
                let stack = match w.first() {
                    Some(&"ifupdown") => NetStack::Ifupdown,
                    Some(&"nm") => NetStack::Networkmanager,
                    Some(&"networkd") => NetStack::Networkd,
                    Some(&"netplan") => NetStack::Netplan,
                    _ => return true,
                };
                if let [_, iface, method, file] = w[..] {
                    self.confs.push(NetConf {
                        stack,
                        file: file.to_string(),
                        iface: iface.to_string(),
                        dhcp: method == "dhcp",
                    });
                }
            }
            _ => return false,
        }
        true
    }

    /// The stack this node runs, from the facts: netplan when it has
    /// netplan files (netplan then drives networkd or NetworkManager), else
    /// the running NetworkManager or systemd-networkd, else ifupdown.
    pub fn detect(&self, active: &std::collections::BTreeSet<String>) -> Option<NetStack> {
        if !self.netplan_files.is_empty() {
            Some(NetStack::Netplan)
        } else if active.contains("NetworkManager") {
            Some(NetStack::Networkmanager)
        } else if active.contains("systemd-networkd") {
            Some(NetStack::Networkd)
        } else if self.ifupdown.is_some() {
            Some(NetStack::Ifupdown)
        } else {
            None
        }
    }

    /// The existing files of `stack` that configure `iface`.
    pub fn claims(&self, stack: NetStack, iface: &str) -> Vec<&NetConf> {
        self.confs
            .iter()
            .filter(|c| c.stack == stack && (c.iface == iface || glob_matches(&c.iface, iface)))
            .collect()
    }
}

/// networkd's `Name=en*` style match (`*` only).
fn glob_matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        Some((pre, post)) => {
            name.len() >= pre.len() + post.len() && name.starts_with(pre) && name.ends_with(post)
        }
        None => false,
    }
}

/// The stack's name as the inventory spells it.
pub fn stack_name(s: NetStack) -> &'static str {
    match s {
        NetStack::Auto => "auto",
        NetStack::Ifupdown => "ifupdown",
        NetStack::Networkmanager => "networkmanager",
        NetStack::Networkd => "networkd",
        NetStack::Netplan => "netplan",
    }
}
