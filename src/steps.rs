//! THE ordered catalog of what clusterctl configures: each step names its
//! role, the files it renders (template path -> target path, mode, owner, whole
//! file or managed block), the validator a candidate file must pass and the
//! handler that activates a change. Render, plan and apply all walk this list;
//! nothing else decides what a node gets.

use crate::cluster::{Addressing, Cluster, HostfileFlavor, Role};

/// How clusterctl owns a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manage {
    /// clusterctl owns the whole file (it carries a "managed by" header).
    Whole,
    /// The user owns the file; clusterctl owns the lines between the markers.
    Block,
}

/// A command that checks a candidate file before it replaces the real one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validator {
    /// `dnsmasq --test --conf-file=FILE`
    Dnsmasq,
    /// `iptables-restore --test FILE`
    IptablesRestore,
}

/// What activates a changed file, run once per step and host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    /// Bring the interface up with its new configuration.
    IfUp,
    /// `sysctl -p FILE`
    SysctlLoad,
    /// `iptables-restore FILE`
    IptablesRestore,
    /// Restart the named service with the host's init system.
    Restart(&'static str),
    /// `exportfs -ra`
    ExportfsReload,
    /// Create the mount points and `mount -a -t nfs,nfs4`.
    MountNfs,
}

impl std::fmt::Display for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Handler::IfUp => f.write_str("bring the interface up"),
            Handler::SysctlLoad => f.write_str("load sysctl settings"),
            Handler::IptablesRestore => f.write_str("load firewall rules"),
            Handler::Restart(s) => write!(f, "restart {s}"),
            Handler::ExportfsReload => f.write_str("re-export NFS shares"),
            Handler::MountNfs => f.write_str("mount NFS shares"),
        }
    }
}

/// One file a step renders.
#[derive(Debug, Clone, Copy)]
pub struct FileSpec {
    /// Template path relative to `templates/`: `<role>/<target path>.j2`.
    pub template: &'static str,
    /// Absolute path on the node.
    pub path: &'static str,
    pub mode: u32,
    pub manage: Manage,
    /// Whether the file exists for this cluster (e.g. fstab only with NFS).
    pub when: fn(&Cluster) -> bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Step {
    pub id: &'static str,
    pub title: &'static str,
    pub role: Role,
    pub files: &'static [FileSpec],
    pub validator: Option<Validator>,
    pub handler: Option<Handler>,
}

fn always(_: &Cluster) -> bool {
    true
}
fn nfs(c: &Cluster) -> bool {
    c.nfs.enabled
}
fn static_addressing(c: &Cluster) -> bool {
    c.lan.addressing == Addressing::Static
}
fn openmpi(c: &Cluster) -> bool {
    c.mpi.hostfiles.contains(&HostfileFlavor::Openmpi)
}
fn mpich(c: &Cluster) -> bool {
    c.mpi.hostfiles.contains(&HostfileFlavor::Mpich)
}

const fn whole(template: &'static str, path: &'static str, when: fn(&Cluster) -> bool) -> FileSpec {
    FileSpec {
        template,
        path,
        mode: 0o644,
        manage: Manage::Whole,
        when,
    }
}
const fn block(template: &'static str, path: &'static str, when: fn(&Cluster) -> bool) -> FileSpec {
    FileSpec {
        template,
        path,
        mode: 0o644,
        manage: Manage::Block,
        when,
    }
}

const HOSTFILES: &[FileSpec] = &[
    whole(
        "common/etc/clusterctl/hostfile.openmpi.j2",
        "/etc/clusterctl/hostfile.openmpi",
        openmpi,
    ),
    whole(
        "common/etc/clusterctl/hostfile.mpich.j2",
        "/etc/clusterctl/hostfile.mpich",
        mpich,
    ),
];

/// Every step, in the order apply runs them: the head first, then workers.
pub const STEPS: &[Step] = &[
    // ---- head
    Step {
        id: "head-lan-interface",
        title: "LAN interface (static address)",
        role: Role::Head,
        files: &[whole(
            "head/etc/network/interfaces.d/clusterctl.j2",
            "/etc/network/interfaces.d/clusterctl",
            always,
        )],
        validator: None,
        handler: Some(Handler::IfUp),
    },
    Step {
        id: "head-ip-forward",
        title: "IP forwarding",
        role: Role::Head,
        files: &[whole(
            "head/etc/sysctl.d/90-clusterctl.conf.j2",
            "/etc/sysctl.d/90-clusterctl.conf",
            always,
        )],
        validator: None,
        handler: Some(Handler::SysctlLoad),
    },
    Step {
        id: "head-firewall",
        title: "firewall and NAT",
        role: Role::Head,
        files: &[FileSpec {
            mode: 0o640,
            ..whole(
                "head/etc/iptables/rules.v4.j2",
                "/etc/iptables/rules.v4",
                always,
            )
        }],
        validator: Some(Validator::IptablesRestore),
        handler: Some(Handler::IptablesRestore),
    },
    Step {
        id: "head-hosts",
        title: "/etc/hosts block",
        role: Role::Head,
        files: &[block("common/etc/hosts.j2", "/etc/hosts", always)],
        validator: None,
        handler: None,
    },
    Step {
        id: "head-dnsmasq",
        title: "DHCP and DNS (dnsmasq)",
        role: Role::Head,
        files: &[whole(
            "head/etc/dnsmasq.d/clusterctl.conf.j2",
            "/etc/dnsmasq.d/clusterctl.conf",
            always,
        )],
        validator: Some(Validator::Dnsmasq),
        handler: Some(Handler::Restart("dnsmasq")),
    },
    Step {
        id: "head-nfs-exports",
        title: "NFS exports",
        role: Role::Head,
        files: &[block("head/etc/exports.j2", "/etc/exports", nfs)],
        validator: None,
        handler: Some(Handler::ExportfsReload),
    },
    Step {
        id: "head-mpi-hostfile",
        title: "MPI hostfiles",
        role: Role::Head,
        files: HOSTFILES,
        validator: None,
        handler: None,
    },
    // ---- workers
    Step {
        id: "worker-interface",
        title: "LAN interface",
        role: Role::Worker,
        files: &[
            whole(
                "worker/etc/network/interfaces.d/clusterctl.j2",
                "/etc/network/interfaces.d/clusterctl",
                always,
            ),
            whole(
                "worker/etc/resolv.conf.j2",
                "/etc/resolv.conf",
                static_addressing,
            ),
        ],
        validator: None,
        handler: Some(Handler::IfUp),
    },
    Step {
        id: "worker-hosts",
        title: "/etc/hosts block",
        role: Role::Worker,
        files: &[block("common/etc/hosts.j2", "/etc/hosts", always)],
        validator: None,
        handler: None,
    },
    Step {
        id: "worker-nfs-mounts",
        title: "NFS mounts",
        role: Role::Worker,
        files: &[block("worker/etc/fstab.j2", "/etc/fstab", nfs)],
        validator: None,
        handler: Some(Handler::MountNfs),
    },
    Step {
        id: "worker-firewall",
        title: "firewall",
        role: Role::Worker,
        files: &[FileSpec {
            mode: 0o640,
            ..whole(
                "worker/etc/iptables/rules.v4.j2",
                "/etc/iptables/rules.v4",
                always,
            )
        }],
        validator: Some(Validator::IptablesRestore),
        handler: Some(Handler::IptablesRestore),
    },
    Step {
        id: "worker-mpi-hostfile",
        title: "MPI hostfiles",
        role: Role::Worker,
        files: HOSTFILES,
        validator: None,
        handler: None,
    },
];

/// The steps for one role, in order.
pub fn for_role(role: Role) -> impl Iterator<Item = &'static Step> {
    STEPS.iter().filter(move |s| s.role == role)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_paths_mirror_targets() {
        for step in STEPS {
            for f in step.files {
                let (_, rest) = f.template.split_once('/').unwrap();
                assert_eq!(
                    format!("/{}", rest.trim_end_matches(".j2")),
                    f.path,
                    "{}",
                    f.template
                );
            }
        }
    }

    #[test]
    fn step_ids_are_unique_and_head_comes_first() {
        let mut ids: Vec<_> = STEPS.iter().map(|s| s.id).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
        let first_worker = STEPS.iter().position(|s| s.role == Role::Worker).unwrap();
        assert!(STEPS[first_worker..].iter().all(|s| s.role == Role::Worker));
    }
}
