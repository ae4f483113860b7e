//! The firewall under each backend: iptables-restore rules
//! (`/etc/iptables/rules.v4`, loaded at boot by netfilter-persistent; RHEL's
//! `/etc/sysconfig/iptables`, iptables-services; Alpine's
//! `/etc/iptables/rules-save`, its OpenRC service) or a
//! native nftables ruleset (`/etc/nftables.conf`, or RHEL's
//! `/etc/sysconfig/nftables.conf`, loaded at boot by nftables.service), the
//! one chosen by the inventory's `firewall.backend` or the node's facts
//! (`facts/firewall.rs`); which file of each backend is the node's
//! family's (`src/family/`). Both templates give the same policy, which is
//! what `engine/safety.rs` models.

use super::{FileSpec, Manage, Subject};
use crate::family::Pkg;
use crate::inventory::FirewallBackend;

/// The backend for this node, or why none can be used safely.
pub fn backend(s: &Subject) -> Result<FirewallBackend, String> {
    s.facts
        .firewall_backend(s.cluster.firewall.backend)
        .map_err(|e| format!("{}: {e}", s.node.name()))
}

fn iptables(s: &Subject) -> bool {
    backend(s) == Ok(FirewallBackend::Iptables)
}
/// The rules file of the node's family (`src/family/`), for the backend in use.
fn iptables_at(s: &Subject, path: &str) -> bool {
    iptables(s) && s.family().is_some_and(|f| f.iptables_rules == path)
}
fn nft_at(s: &Subject, path: &str) -> bool {
    backend(s) == Ok(FirewallBackend::Nftables)
        && s.family().is_some_and(|f| f.nftables_conf == path)
}

/// Every rules file a family's boot may read: a family names one of each.
pub const IPTABLES_FILES: &[&str] = &[RULES_V4, SYSCONFIG_IPTABLES, RULES_SAVE];
pub const NFT_FILES: &[&str] = &[NFTABLES_CONF, SYSCONFIG_NFTABLES];

/// Debian's netfilter-persistent loads it at boot.
const RULES_V4: &str = "/etc/iptables/rules.v4";
/// RHEL's iptables-services loads it.
const SYSCONFIG_IPTABLES: &str = "/etc/sysconfig/iptables";
/// Alpine's iptables OpenRC service loads it.
const RULES_SAVE: &str = "/etc/iptables/rules-save";
const NFTABLES_CONF: &str = "/etc/nftables.conf";
const SYSCONFIG_NFTABLES: &str = "/etc/sysconfig/nftables.conf";

fn rules_v4(s: &Subject) -> bool {
    iptables_at(s, RULES_V4)
}
fn sysconfig_iptables(s: &Subject) -> bool {
    iptables_at(s, SYSCONFIG_IPTABLES)
}
fn rules_save(s: &Subject) -> bool {
    iptables_at(s, RULES_SAVE)
}
fn nftables_conf(s: &Subject) -> bool {
    nft_at(s, NFTABLES_CONF)
}
fn sysconfig_nftables(s: &Subject) -> bool {
    nft_at(s, SYSCONFIG_NFTABLES)
}

/// A ruleset file, mode 0640 (not `FileSpec::secret`: its diff is shown).
const fn rules_file(
    template: &'static str,
    path: &'static str,
    when: fn(&Subject) -> bool,
) -> FileSpec {
    FileSpec {
        template,
        path,
        mode: 0o640,
        manage: Manage::Whole,
        when,
        validator: None,
        owner: "root",
        group: "root",
        secret: false,
    }
}

pub const HEAD_IPTABLES: &[FileSpec] = &[
    rules_file("head/etc/iptables/rules.v4.j2", RULES_V4, rules_v4),
    rules_file(
        "head/etc/sysconfig/iptables.j2",
        SYSCONFIG_IPTABLES,
        sysconfig_iptables,
    ),
    rules_file("head/etc/iptables/rules-save.j2", RULES_SAVE, rules_save),
];
pub const WORKER_IPTABLES: &[FileSpec] = &[
    rules_file("worker/etc/iptables/rules.v4.j2", RULES_V4, rules_v4),
    rules_file(
        "worker/etc/sysconfig/iptables.j2",
        SYSCONFIG_IPTABLES,
        sysconfig_iptables,
    ),
    rules_file("worker/etc/iptables/rules-save.j2", RULES_SAVE, rules_save),
];
pub const HEAD_NFT: &[FileSpec] = &[
    rules_file("head/etc/nftables.conf.j2", NFTABLES_CONF, nftables_conf),
    rules_file(
        "head/etc/sysconfig/nftables.conf.j2",
        SYSCONFIG_NFTABLES,
        sysconfig_nftables,
    ),
];
pub const WORKER_NFT: &[FileSpec] = &[
    rules_file("worker/etc/nftables.conf.j2", NFTABLES_CONF, nftables_conf),
    rules_file(
        "worker/etc/sysconfig/nftables.conf.j2",
        SYSCONFIG_NFTABLES,
        sysconfig_nftables,
    ),
];

/// The iptables firewall's tools and what loads its rules at boot.
pub const IPTABLES_PACKAGES: &[Pkg] = &[Pkg::Iptables, Pkg::IptablesPersistent];
/// nft and nftables.service.
pub const NFT_PACKAGES: &[Pkg] = &[Pkg::Nftables];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::family::FAMILIES;

    /// A family's boot files are among the catalog's (each has templates).
    #[test]
    fn every_familys_rules_files_have_a_template() {
        for f in FAMILIES {
            assert!(IPTABLES_FILES.contains(&f.iptables_rules), "{}", f.name);
            assert!(NFT_FILES.contains(&f.nftables_conf), "{}", f.name);
        }
        for files in [HEAD_IPTABLES, WORKER_IPTABLES] {
            let paths: Vec<&str> = files.iter().map(|f| f.path).collect();
            assert_eq!(paths, IPTABLES_FILES);
        }
        for files in [HEAD_NFT, WORKER_NFT] {
            let paths: Vec<&str> = files.iter().map(|f| f.path).collect();
            assert_eq!(paths, NFT_FILES);
        }
    }
}
