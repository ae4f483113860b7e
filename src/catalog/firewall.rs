//! The firewall under each backend: iptables-restore rules
//! (`/etc/iptables/rules.v4`, loaded at boot by netfilter-persistent; RHEL's
//! `/etc/sysconfig/iptables`, iptables-services; Alpine's
//! `/etc/iptables/rules-save`, its OpenRC service) or a
//! native nftables ruleset (`/etc/nftables.conf`, or RHEL's
//! `/etc/sysconfig/nftables.conf`, loaded at boot by nftables.service), the
//! one chosen by the inventory's `firewall.backend` or the node's facts
//! (`facts/firewall.rs`). Both templates give the same policy, which is
//! what `engine/safety.rs` models.

use super::{packages, FileSpec, Manage, Package, Subject};
use crate::facts::PackageManager;
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
/// Debian's netfilter-persistent loads `/etc/iptables/rules.v4` at boot.
fn iptables_debian(s: &Subject) -> bool {
    iptables(s)
        && !matches!(
            s.facts.package_manager,
            PackageManager::Dnf | PackageManager::Apk
        )
}
/// RHEL's iptables-services loads `/etc/sysconfig/iptables`.
fn iptables_rhel(s: &Subject) -> bool {
    iptables(s) && s.facts.package_manager == PackageManager::Dnf
}
/// Alpine's iptables OpenRC service loads `/etc/iptables/rules-save`.
fn iptables_alpine(s: &Subject) -> bool {
    iptables(s) && s.facts.package_manager == PackageManager::Apk
}
fn nft_debian(s: &Subject) -> bool {
    backend(s) == Ok(FirewallBackend::Nftables) && s.facts.package_manager != PackageManager::Dnf
}
fn nft_rhel(s: &Subject) -> bool {
    backend(s) == Ok(FirewallBackend::Nftables) && s.facts.package_manager == PackageManager::Dnf
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
        secret: false,
    }
}

pub const HEAD_IPTABLES: &[FileSpec] = &[
    rules_file(
        "head/etc/iptables/rules.v4.j2",
        "/etc/iptables/rules.v4",
        iptables_debian,
    ),
    rules_file(
        "head/etc/sysconfig/iptables.j2",
        "/etc/sysconfig/iptables",
        iptables_rhel,
    ),
    rules_file(
        "head/etc/iptables/rules-save.j2",
        "/etc/iptables/rules-save",
        iptables_alpine,
    ),
];
pub const WORKER_IPTABLES: &[FileSpec] = &[
    rules_file(
        "worker/etc/iptables/rules.v4.j2",
        "/etc/iptables/rules.v4",
        iptables_debian,
    ),
    rules_file(
        "worker/etc/sysconfig/iptables.j2",
        "/etc/sysconfig/iptables",
        iptables_rhel,
    ),
    rules_file(
        "worker/etc/iptables/rules-save.j2",
        "/etc/iptables/rules-save",
        iptables_alpine,
    ),
];
pub const HEAD_NFT: &[FileSpec] = &[
    rules_file(
        "head/etc/nftables.conf.j2",
        "/etc/nftables.conf",
        nft_debian,
    ),
    rules_file(
        "head/etc/sysconfig/nftables.conf.j2",
        "/etc/sysconfig/nftables.conf",
        nft_rhel,
    ),
];
pub const WORKER_NFT: &[FileSpec] = &[
    rules_file(
        "worker/etc/nftables.conf.j2",
        "/etc/nftables.conf",
        nft_debian,
    ),
    rules_file(
        "worker/etc/sysconfig/nftables.conf.j2",
        "/etc/sysconfig/nftables.conf",
        nft_rhel,
    ),
];

/// The iptables firewall's tools and what loads its rules at boot.
pub const IPTABLES_PACKAGES: &[Package] = &[packages::IPTABLES, packages::IPTABLES_PERSISTENT];
/// nft and nftables.service.
pub const NFT_PACKAGES: &[Package] = &[packages::NFTABLES];
