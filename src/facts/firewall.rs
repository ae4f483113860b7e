//! Which firewall a node gets, from what the probe saw: the variant its
//! `iptables` is (legacy or nf_tables), the rules each iptables variant has
//! loaded, the nftables tables, and whether firewalld or nftables.service
//! run. The two iptables variants are never mixed on one host (NAT in one
//! and a DROP policy in the other make NAT silently do nothing), and
//! firewalld is never fought.

use std::collections::BTreeSet;

use crate::inventory::FirewallBackend;

/// What the probe saw of the node's firewall.
#[derive(Debug, Clone, Default)]
pub struct FirewallFacts {
    /// `-A` rules loaded by `iptables-legacy` (None: no such command).
    pub legacy_rules: Option<u32>,
    /// `-A` rules loaded by `iptables-nft` (None: no such command).
    pub nft_variant_rules: Option<u32>,
    /// nftables tables as (family, name).
    pub nft_tables: Vec<(String, String)>,
}

impl FirewallFacts {
    /// One probe line about the firewall; false when the key is not one.
    pub fn parse_line(&mut self, key: &str, rest: &str) -> bool {
        match key {
            "@@iptables-rules" => {
                let (v, n) = rest.split_once(' ').unwrap_or((rest, "0"));
                let n = n.trim().parse().unwrap_or(0);
                match v {
                    "legacy" => self.legacy_rules = Some(n),
                    "nft" => self.nft_variant_rules = Some(n),
                    _ => {}
                }
            }
            "@@nft-table" => {
                if let Some((f, n)) = rest.split_once(' ') {
                    self.nft_tables.push((f.to_string(), n.trim().to_string()));
                }
            }
            _ => return false,
        }
        true
    }
}

/// What [`choose`] needs from the facts.
pub struct FirewallInput<'a> {
    /// `nf_tables`, `legacy`, `none` or `unknown` (what `iptables` is).
    pub iptables: &'a str,
    pub nft: bool,
    pub active: &'a BTreeSet<String>,
    pub enabled: &'a BTreeSet<String>,
    /// The node's family's firewall is nftables (RHEL: see `src/family/`).
    pub nftables_by_default: bool,
    pub fw: &'a FirewallFacts,
}

/// The backend for a node: the inventory's pin, else nftables where the
/// node already runs nftables.service or is of the RHEL family, else
/// iptables. An error says why neither can be used safely.
pub fn choose(pin: FirewallBackend, f: &FirewallInput) -> Result<FirewallBackend, String> {
    if f.active.contains("firewalld") {
        return Err(
            "firewalld runs on this node and owns its firewall; clusterctl's rules would fight it \
             (help: stop it with `systemctl disable --now firewalld`, then apply again)"
                .into(),
        );
    }
    let backend = match pin {
        FirewallBackend::Auto => {
            let runs_nft = f.enabled.contains("nftables") || f.active.contains("nftables");
            // The RHEL family's firewall is nftables (iptables-services is
            // deprecated there even where iptables-nft is installed).
            if runs_nft || f.nftables_by_default {
                FirewallBackend::Nftables
            } else {
                FirewallBackend::Iptables
            }
        }
        b => b,
    };
    let legacy = f.fw.legacy_rules.unwrap_or(0);
    match backend {
        FirewallBackend::Iptables if f.iptables == "nf_tables" && legacy > 0 => Err(format!(
            "this node's iptables is the nf_tables variant, but {legacy} iptables-legacy rule(s) are loaded too; \
             the two never mix (NAT in one and DROP in the other make NAT silently do nothing) \
             (help: flush the legacy rules with `iptables-legacy -F; iptables-legacy -t nat -F; iptables-legacy -X`, \
             or pin `firewall.backend` and switch the iptables alternative)"
        )),
        FirewallBackend::Iptables
            if f.iptables == "legacy" && f.fw.nft_variant_rules.unwrap_or(0) > 0 =>
        {
            Err(format!(
                "this node's iptables is the legacy variant, but {} iptables-nft rule(s) are loaded too; \
                 the two never mix \
                 (help: flush them with `iptables-nft -F; iptables-nft -t nat -F`, or switch the iptables alternative)",
                f.fw.nft_variant_rules.unwrap_or(0)
            ))
        }
        FirewallBackend::Nftables if legacy > 0 => Err(format!(
            "{legacy} iptables-legacy rule(s) are loaded on this node; they would filter beside clusterctl's \
             nftables table and can drop what it accepts \
             (help: flush them with `iptables-legacy -F; iptables-legacy -t nat -F; iptables-legacy -X`)"
        )),
        b => Ok(b),
    }
}
