//! The head's node groups for the admin tools people already use
//! (`crate::node_groups`): a managed block in ClusterShell's default group
//! source, `/etc/clustershell/groups` (`clush -g workers`), and in pdsh's
//! genders file, `/etc/genders` (`pdsh -g workers`). Both are always
//! written: harmless without the tools, and ready when someone installs
//! them. ClusterShell's YAML sources in `groups.d/` are not the default
//! source, and the default cannot be changed without editing the package's
//! `groups.conf`, so `-g workers` would need `-g clusterctl:workers`; the
//! flat file is what the shipped `local` source reads first. With
//! `tools.clustershell` / `tools.pdsh` the tools are installed too, each
//! with its one setting: clush checks host keys strictly, pdsh uses ssh
//! (bookworm's pdsh defaults to rsh).

use super::{always, block, whole, FileSpec, Step, Subject};
use crate::cluster::Role;
use crate::family::Pkg;

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
        block(
            "head/etc/clustershell/groups.j2",
            "/etc/clustershell/groups",
            always,
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
