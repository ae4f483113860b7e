//! The commands that check a candidate file before it replaces the real one,
//! and what they need installed.

use super::Tool;
use crate::family::Pkg;

/// A command that checks a candidate file before it replaces the real one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validator {
    /// `dnsmasq --test --conf-file=FILE`
    Dnsmasq,
    /// `iptables-restore --test FILE`
    IptablesRestore,
    /// `nft -c -f FILE`
    Nft,
    /// `netplan generate` on the candidate alone, in a scratch root
    /// (`netplan_check` in write.sh).
    Netplan,
    /// `sshd -t` on a config that includes the candidate drop-in first,
    /// then the node's own `/etc/ssh/sshd_config` (`sshd_check` in write.sh).
    Sshd,
}

impl Validator {
    /// The check of the candidate held in the shell variable `var` (its
    /// value is a path from `mktemp`).
    pub fn command(self, var: &str) -> String {
        match self {
            Validator::Dnsmasq => format!("dnsmasq --test \"--conf-file=${var}\""),
            Validator::IptablesRestore => format!("iptables-restore --test \"${var}\""),
            Validator::Nft => format!("nft -c -f \"${var}\""),
            Validator::Netplan => format!("netplan_check \"${var}\" 90-clusterctl.yaml"),
            Validator::Sshd => format!("sshd_check \"${var}\""),
        }
    }

    pub fn tools(self) -> Vec<Tool> {
        match self {
            Validator::Dnsmasq => vec![Tool::new("dnsmasq", Pkg::Dnsmasq)],
            Validator::IptablesRestore => vec![Tool::new("iptables-restore", Pkg::Iptables)],
            Validator::Nft => vec![Tool::new("nft", Pkg::Nftables)],
            Validator::Netplan => vec![Tool::new("netplan", Pkg::Netplan)],
            Validator::Sshd => vec![Tool::new("sshd", Pkg::OpensshServer)],
        }
    }
}
