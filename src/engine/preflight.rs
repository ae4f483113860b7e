//! Before anything is written: does the node have every command the plan
//! needs (the engine's own, the changed files' validators, the handlers'),
//! and can it run every planned handler at all? Packages are named as the
//! node's family names them (`src/family/`).

use std::collections::BTreeSet;

use crate::catalog::Tool;
use crate::facts::{Facts, InitSystem};
use crate::family::Pkg;
use crate::plan::NodePlan;

/// What the write script itself uses (its packages by key: each family
/// names them).
const ENGINE_TOOLS: &[Tool] = &[
    Tool::new("base64", Pkg::Coreutils),
    Tool::new("mktemp", Pkg::Coreutils),
];

/// Ok, or why apply must stop before writing anything on `node`. With
/// `skip_packages` (air-gapped clusters), a package the node lacks is an
/// error instead of an install.
pub fn preflight(
    plan: &NodePlan,
    facts: &Facts,
    node: &str,
    skip_packages: bool,
) -> Result<(), String> {
    let family = facts.family()?;
    if skip_packages && !plan.install.is_empty() {
        return Err(format!(
            "missing package(s) {} on {node} (--skip-packages: clusterctl installs nothing); \
             install them and run apply again; nothing was changed",
            plan.install.join(", ")
        ));
    }
    if !plan.install.is_empty() {
        family.installs_with(facts.package_manager).map_err(|e| {
            format!(
                "cannot install {} on {node}: {e}; install them and run apply again; \
                 nothing was changed",
                plan.install.join(", ")
            )
        })?;
    }
    if let Some(Err(e)) = plan
        .handlers
        .iter()
        .map(|h| &h.run.command)
        .find(|c| c.is_err())
    {
        return Err(e.clone());
    }
    let mut need: Vec<Tool> = ENGINE_TOOLS.to_vec();
    for c in plan.changes.iter().filter(|c| c.action.writes_content()) {
        need.extend(c.validator.map(|v| v.tools()).unwrap_or_default());
    }
    for h in &plan.handlers {
        need.extend(h.run.tools.iter().copied());
    }
    let mut missing: Vec<String> = Vec::new();
    let mut seen = BTreeSet::new();
    for t in need {
        // A tool whose package this apply installs first is not missing.
        let coming = family
            .package(t.package)
            .is_some_and(|p| plan.install.contains(&p));
        if seen.insert(t.command) && !coming && !facts.tools.contains(t.command) {
            missing.push(format!(
                "`{}` ({})",
                t.command,
                family.package_note(t.package)
            ));
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "missing {} on {node} ({} {}, {} init); install it and run apply again; nothing was changed",
        missing.join(", "),
        facts.os_id,
        facts.os_version,
        match facts.init {
            InitSystem::Systemd => "systemd",
            InitSystem::Sysvinit => "sysvinit",
            InitSystem::Openrc => "OpenRC",
            InitSystem::Unknown => "unknown",
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Cluster;
    use crate::templates::Templates;

    /// A node of `fixture`'s family that has every tool but the NFS ones,
    /// planned with NFS on: the plan installs the family's NFS package, so
    /// preflight must not call its tools missing (issue #20: it looked for
    /// Debian's package names on every family).
    fn first_apply_with_nfs(probe: &str, node: &str) -> Result<(), String> {
        first_apply_without(probe, node, &["exportfs", "mount.nfs"])
    }

    /// As above, the node lacking the tools `lacks`.
    fn first_apply_without(probe: &str, node: &str, lacks: &[&str]) -> Result<(), String> {
        let mut c = Cluster::from_str(
            include_str!("../../examples/cluster.yaml"),
            std::path::Path::new("cluster.yaml"),
        )
        .unwrap();
        // Packages and tools only: the fixtures carry no accounts.
        c.users.clear();
        c.slurm = Default::default();
        let t = Templates::load(None).unwrap();
        let mut facts = crate::facts::parse(probe).unwrap();
        // firewalld would be refused before any of this (see facts/firewall.rs).
        facts.active.remove("firewalld");
        facts.tools = crate::catalog::PROBED_TOOLS
            .iter()
            .filter(|t| !lacks.contains(t))
            .map(|t| t.to_string())
            .collect();
        let d = crate::desired::desired(&c, &t, node, &facts).map_err(|e| e.to_string())?;
        let plan = crate::plan::compare(&d, &facts).unwrap();
        assert!(plan.install.contains(&"nfs-utils"), "{:?}", plan.install);
        preflight(&plan, &facts, node, false)
    }

    #[test]
    fn nfs_tools_coming_with_the_familys_package_are_not_missing() {
        for probe in [
            include_str!("../facts/fixtures/rhel9.probe"),
            include_str!("../facts/fixtures/alpine319.probe"),
        ] {
            for node in ["head", "node01"] {
                assert_eq!(first_apply_with_nfs(probe, node), Ok(()), "{node}");
            }
        }
    }

    /// A node placed in a family by its os-release ID alone (no package
    /// manager found) is refused before anything is written when the plan
    /// would install: it used to get the family's installer, which failed
    /// on the node after the write script had started.
    #[test]
    fn a_node_without_its_familys_package_manager_is_refused_before_installing() {
        let rhel = include_str!("../facts/fixtures/rhel9.probe");
        let no_dnf: String = rhel
            .lines()
            .filter(|l| !l.starts_with("@@pkgmgr"))
            .map(|l| format!("{l}\n"))
            .collect();
        let e = first_apply_with_nfs(&no_dnf, "node01").unwrap_err();
        assert!(
            e.starts_with("cannot install chrony, nfs-utils")
                && e.contains(
                    " on node01: no package manager recognised \
                     (RHEL-like (dnf) nodes install with dnf, which this node lacks); "
                ),
            "{e}"
        );
        assert!(e.ends_with("nothing was changed"), "{e}");
    }

    /// A missing tool is named with its package as the node's family calls it.
    #[test]
    fn a_missing_tool_names_the_familys_package() {
        let rhel = include_str!("../facts/fixtures/rhel9.probe");
        let e = first_apply_without(rhel, "head", &["exportfs", "sysctl"]).unwrap_err();
        assert!(
            e.starts_with("missing `sysctl` (package procps-ng) on head (rhel 9.4, systemd init)"),
            "{e}"
        );
        let alpine = include_str!("../facts/fixtures/alpine319.probe");
        let e = first_apply_without(alpine, "node01", &["mount.nfs", "hostname"]).unwrap_err();
        assert!(
            e.starts_with(
                "missing `hostname` (package busybox) on node01 (alpine 3.19.1, OpenRC init)"
            ),
            "{e}"
        );
        let e = first_apply_without(alpine, "head", &["exportfs", "rc-service"]).unwrap_err();
        assert!(
            e.starts_with("missing `rc-service` (package openrc)"),
            "{e}"
        );
    }
}
