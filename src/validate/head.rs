//! The head: its name, SSH target, interfaces and LAN address.

use std::net::Ipv4Addr;

use super::lan::{pick_between, LanCtx};
use super::Diags;
use crate::cluster::SshTarget;
use crate::inventory::{loc, RawHead};
use crate::values::{parse_ssh_target, shown, Hostname, Iface};

/// The head's checked values; `None` where the inventory got one wrong
/// (already reported).
pub(super) struct HeadDraft {
    /// As written, for messages even when invalid.
    pub written_name: String,
    pub name: Option<Hostname>,
    pub ssh: Option<SshTarget>,
    pub wan_iface: Option<Iface>,
    pub lan_iface: Option<Iface>,
    pub lan_ip: Option<Ipv4Addr>,
}

pub(super) fn head(d: &mut Diags, h: &RawHead, lan: &LanCtx) -> HeadDraft {
    let written_name = h.name.value.clone();
    let node = Some(written_name.as_str());
    let name = match Hostname::parse(&written_name) {
        Ok(n) => Some(n),
        Err(e) => {
            d.err(
                loc(&h.name),
                None,
                format!("invalid head name `{}`: it {e}", shown(&written_name)),
                Some("host names are RFC 1123 labels like `head` or `node01`"),
            );
            None
        }
    };
    let ssh = match parse_ssh_target(h.ssh.value.trim()) {
        Ok(t) => Some(t),
        Err(e) => {
            d.err(
                loc(&h.ssh),
                node,
                format!("ssh target `{}`: {e}", shown(&h.ssh.value)),
                Some("write it as [USER@]HOST[:PORT], like pi@192.168.1.50:22"),
            );
            None
        }
    };
    let mut iface = |s: &crate::inventory::S<String>, what: &str| match Iface::parse(&s.value) {
        Ok(i) => Some(i),
        Err(e) => {
            d.err(
                loc(s),
                node,
                format!("{what} `{}` {e}", shown(&s.value)),
                Some("use the name `ip link` shows, like eth1 or enp2s0"),
            );
            None
        }
    };
    let wan_iface = iface(&h.wan_iface, "wan_iface");
    let lan_iface = iface(&h.lan_iface, "lan_iface");
    if h.wan_iface.value == h.lan_iface.value {
        d.err(
            loc(&h.lan_iface),
            node,
            format!(
                "lan_iface and wan_iface are both `{}`",
                shown(&h.lan_iface.value)
            ),
            Some("the head needs two interfaces: one to the outside, one to the cluster switch"),
        );
    }
    let lan_ip = d.ip(&h.lan_ip, "lan_ip", node);
    if let (Some(ip), Some(n)) = (lan_ip, lan.net) {
        if !lan.contains(ip) {
            d.err(
                loc(&h.lan_ip),
                node,
                format!("lan_ip {ip} is not a host address in the LAN {n}"),
                Some(&pick_between(n)),
            );
        }
        if let Some((a, b)) = lan.in_pool(ip) {
            d.err(
                loc(&h.lan_ip),
                node,
                format!("lan_ip {ip} is inside the DHCP range {a}-{b}"),
                Some("move the DHCP range or the head's address so they do not overlap"),
            );
        }
    }
    HeadDraft {
        written_name,
        name,
        ssh,
        wan_iface,
        lan_iface,
        lan_ip,
    }
}
