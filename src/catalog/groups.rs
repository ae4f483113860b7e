//! The head's node groups for the admin tools people already use
//! (`crate::node_groups`): a managed block in ClusterShell's default group
//! source, `/etc/clustershell/groups` (`clush -g workers`), and in pdsh's
//! genders file, `/etc/genders` (`pdsh -g workers`). Both are always
//! written: harmless without the tools, and ready when someone installs
//! them. ClusterShell's YAML sources in `groups.d/` are not the default
//! source, and the default cannot be changed without editing the package's
//! `groups.conf`, so `-g workers` would need `-g clusterctl:workers`. The
//! shipped `local` source reads the flat file when it exists, else
//! `groups.d/local.cfg`: the block goes into `local.cfg` when that is the
//! file in use (the flat file absent, `local.cfg` there), so an admin's own
//! groups there are never hidden; otherwise into the flat file. With
//! `tools.clustershell` / `tools.pdsh` the tools are installed too, each
//! with its one setting: clush checks host keys strictly, pdsh uses ssh
//! (bookworm's pdsh defaults to rsh).

use super::{always, block, whole, FileSpec, Step, Subject};
use crate::cluster::Role;
use crate::family::Pkg;

/// ClusterShell's default source reads this flat file when it exists...
const FLAT: &str = "/etc/clustershell/groups";
/// ...else this one (a conffile of the package, its examples or the
/// admin's groups).
const LOCAL_CFG: &str = "/etc/clustershell/groups.d/local.cfg";

fn exists(s: &Subject, path: &str) -> bool {
    s.facts.files.get(path).is_some_and(|o| o.content.is_some())
}
fn local_cfg_in_use(s: &Subject) -> bool {
    !exists(s, FLAT) && exists(s, LOCAL_CFG)
}
fn flat_in_use(s: &Subject) -> bool {
    !local_cfg_in_use(s)
}
fn clustershell(s: &Subject) -> bool {
    s.cluster.tools.clustershell
}
fn pdsh(s: &Subject) -> bool {
    s.cluster.tools.pdsh
}

pub(super) const HEAD_GROUPS: Step = Step {
    id: "head-groups",
    title: "node groups for clush and pdsh",
    role: Role::Head,
    files: &[
        block("head/etc/clustershell/groups.j2", FLAT, flat_in_use),
        block(
            "head/etc/clustershell/groups.d/local.cfg.j2",
            LOCAL_CFG,
            local_cfg_in_use,
        ),
        block("head/etc/genders.j2", "/etc/genders", always),
    ],
    validator: None,
    handler: None,
    packages: &[],
};

pub(super) const HEAD_CLUSTERSHELL: Step = Step {
    id: "head-clustershell",
    title: "ClusterShell",
    role: Role::Head,
    files: &[whole(
        "head/etc/clustershell/clush.conf.d/clusterctl.conf.j2",
        "/etc/clustershell/clush.conf.d/clusterctl.conf",
        clustershell,
    )],
    validator: None,
    handler: None,
    packages: &[Pkg::ClusterShell],
};

/// `/etc/pdsh/rcmd_default` is read whole by Debian's pdsh wrapper: no
/// header line.
const PDSH_FILES: &[FileSpec] = &[whole(
    "head/etc/pdsh/rcmd_default.j2",
    "/etc/pdsh/rcmd_default",
    pdsh,
)];

pub(super) const HEAD_PDSH: Step = Step {
    id: "head-pdsh",
    title: "pdsh",
    role: Role::Head,
    files: PDSH_FILES,
    validator: None,
    handler: None,
    packages: &[Pkg::Pdsh],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{Facts, Observed};

    /// The block goes where ClusterShell's default source reads: the flat
    /// file, unless only the package's `local.cfg` is there (an admin's
    /// groups in it would be hidden by a new flat file).
    #[test]
    fn the_groups_go_into_the_file_clustershell_reads() {
        let c = crate::cluster::Cluster::from_str(
            crate::commands::EXAMPLE,
            std::path::Path::new("x.yaml"),
        )
        .unwrap();
        let t = crate::templates::Templates::load(None).unwrap();
        let paths = |facts: &Facts| -> Vec<&'static str> {
            crate::desired::desired(&c, &t, "head", facts)
                .unwrap()
                .files
                .iter()
                .map(|f| f.path)
                .filter(|p| p.starts_with("/etc/clustershell/"))
                .collect()
        };
        let there = |content: &str| Observed {
            content: Some(content.into()),
            mode: Some(0o644),
            owner: Some("root".into()),
            group: Some("root".into()),
            problem: None,
        };
        let mut facts = Facts::assumed();
        assert_eq!(paths(&facts), [FLAT]);
        facts
            .files
            .insert(LOCAL_CFG.into(), there("compute: mine[1-4]\n"));
        assert_eq!(paths(&facts), [LOCAL_CFG]);
        facts.files.insert(FLAT.into(), there("x: y\n"));
        assert_eq!(paths(&facts), [FLAT]);
    }
}
