//! THE ordered catalog of what clusterctl configures. Each step carries
//! everything about itself: its role, the files it renders (template -> target
//! path, mode, whole file or managed block, and a condition over the cluster,
//! the node and the node's facts), the validator a candidate file must pass
//! and the handler that activates a change (`handler.rs`, `validator.rs`: the
//! exact commands and the tools they need). Desired state, plan and apply all
//! walk this list. Packages and services are named here by key ([`Pkg`],
//! [`Service`]); each family's table (`src/family/*.rs`) names them. What
//! adding a managed file, a stack, a family or a verify check touches, file
//! by file: ARCHITECTURE.md, "How to add".

pub mod firewall;
mod groups;
mod handler;
mod mpi_ssh;
pub mod network;
mod nfs;
pub mod slurm;
pub mod time;
mod users;
mod validator;

pub use handler::Handler;
pub use validator::Validator;

use crate::cluster::{Cluster, HostfileFlavor, NodeRef, Role};
use crate::facts::Facts;
use crate::family::{Family, Pkg, Service, FAMILIES};

/// What a condition, a handler's command or its tools look at: the cluster,
/// the node, and what the probe found on the node.
#[derive(Clone, Copy)]
pub struct Subject<'a> {
    pub cluster: &'a Cluster,
    pub node: NodeRef<'a>,
    pub facts: &'a Facts,
}

impl Subject<'_> {
    /// The node's distro family (None: unknown, which `desired` refuses
    /// before any condition is asked).
    pub fn family(&self) -> Option<&'static Family> {
        self.facts.family().ok()
    }
}

/// A command a validator or handler runs, and the package that has it
/// (each family names it: `src/family/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tool {
    pub command: &'static str,
    pub package: Pkg,
}

impl Tool {
    pub const fn new(command: &'static str, package: Pkg) -> Self {
        Tool { command, package }
    }
}

/// Commands the probe looks for: everything a validator or handler may need
/// (a unit test holds them to that), plus what apply's own scripts use.
pub const PROBED_TOOLS: &[&str] = &[
    "base64",
    "mktemp",
    "cmp",
    "ip",
    "ifup",
    "ifdown",
    "sysctl",
    "iptables-restore",
    "nft",
    "nmcli",
    "networkctl",
    "netplan",
    "sshd",
    "dnsmasq",
    "service",
    "systemctl",
    "rc-service",
    "exportfs",
    "mount.nfs",
    "hostname",
];

/// Every package any step may need, under every family's name: what the
/// probe asks the node's package manager about.
pub fn candidate_packages() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = Vec::new();
    for p in STEPS.iter().flat_map(|s| s.packages) {
        for name in FAMILIES.iter().filter_map(|f| f.package(*p)) {
            if !v.contains(&name) {
                v.push(name);
            }
        }
    }
    v
}

/// Every package any step may need under one family's names (what apply
/// may install there; the lab's mirror carries Debian's).
pub fn packages_of(family: &Family) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = Vec::new();
    for name in STEPS
        .iter()
        .flat_map(|s| s.packages)
        .filter_map(|p| family.package(*p))
    {
        if !v.contains(&name) {
            v.push(name);
        }
    }
    v
}

/// How clusterctl owns a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manage {
    /// clusterctl owns the whole file (it carries a "managed by" header).
    Whole,
    /// The user owns the file; clusterctl owns the lines between the markers.
    Block,
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
    /// Whether the node gets this file (e.g. fstab only with NFS).
    pub when: fn(&Subject) -> bool,
    /// Its content is never shown (a private key): diffs are masked.
    pub secret: bool,
    /// What checks a candidate of this file (else the step's validator).
    pub validator: Option<Validator>,
    /// Its owner and group on the node (`root` unless a service reads it
    /// as itself: munge's key).
    pub owner: &'static str,
    pub group: &'static str,
}

#[derive(Debug, Clone, Copy)]
pub struct Step {
    pub id: &'static str,
    pub title: &'static str,
    pub role: Role,
    pub files: &'static [FileSpec],
    pub validator: Option<Validator>,
    pub handler: Option<Handler>,
    /// What the node must have installed for this step (when the step has a
    /// file on the node), by key: the node's family names each.
    pub packages: &'static [Pkg],
}

fn always(_: &Subject) -> bool {
    true
}
fn nfs(s: &Subject) -> bool {
    s.cluster.nfs.enabled
}
fn openmpi(s: &Subject) -> bool {
    s.cluster.mpi.hostfiles.contains(&HostfileFlavor::Openmpi)
}
fn mpich(s: &Subject) -> bool {
    s.cluster.mpi.hostfiles.contains(&HostfileFlavor::Mpich)
}

const fn whole(template: &'static str, path: &'static str, when: fn(&Subject) -> bool) -> FileSpec {
    FileSpec {
        template,
        path,
        mode: 0o644,
        manage: Manage::Whole,
        when,
        secret: false,
        validator: None,
        owner: "root",
        group: "root",
    }
}
const fn block(template: &'static str, path: &'static str, when: fn(&Subject) -> bool) -> FileSpec {
    FileSpec {
        template,
        path,
        mode: 0o644,
        manage: Manage::Block,
        when,
        secret: false,
        validator: None,
        owner: "root",
        group: "root",
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

/// The node's name: `/etc/hostname` (no header: some readers take the
/// first line as the name).
const HOSTNAME: &[FileSpec] = &[whole("common/etc/hostname.j2", "/etc/hostname", always)];

/// Every step, in the order apply runs them: the head first, then workers.
pub const STEPS: &[Step] = &[
    // ---- head
    Step {
        id: "head-hostname",
        title: "host name",
        role: Role::Head,
        files: HOSTNAME,
        validator: None,
        handler: Some(Handler::Hostname),
        packages: &[],
    },
    Step {
        id: "head-lan-interface",
        title: "LAN interface (static address)",
        role: Role::Head,
        files: network::HEAD_FILES,
        validator: None,
        handler: Some(Handler::ActivateIface),
        packages: &[],
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
        packages: &[],
    },
    Step {
        id: "head-firewall",
        title: "firewall and NAT",
        role: Role::Head,
        files: firewall::HEAD_IPTABLES,
        validator: Some(Validator::IptablesRestore),
        handler: Some(Handler::IptablesRestore),
        packages: firewall::IPTABLES_PACKAGES,
    },
    Step {
        id: "head-nftables",
        title: "firewall and NAT (nftables)",
        role: Role::Head,
        files: firewall::HEAD_NFT,
        validator: Some(Validator::Nft),
        handler: Some(Handler::NftLoad),
        packages: firewall::NFT_PACKAGES,
    },
    Step {
        id: "head-hosts",
        title: "/etc/hosts block",
        role: Role::Head,
        files: &[block("common/etc/hosts.j2", "/etc/hosts", always)],
        validator: None,
        handler: None,
        packages: &[],
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
        handler: Some(Handler::Restart(Service::Dnsmasq)),
        packages: &[Pkg::Dnsmasq],
    },
    time::HEAD_TIME,
    Step {
        id: "head-nfs-exports",
        title: "NFS exports",
        role: Role::Head,
        files: &[block(
            "head/etc/exports.j2",
            "/etc/exports",
            nfs::kernel_server,
        )],
        validator: None,
        handler: Some(Handler::ExportfsReload),
        packages: &[Pkg::NfsServer],
    },
    Step {
        id: "head-mpi-hostfile",
        title: "MPI hostfiles",
        role: Role::Head,
        files: HOSTFILES,
        validator: None,
        handler: None,
        packages: &[],
    },
    nfs::HEAD_NFS_GANESHA,
    mpi_ssh::HEAD_OPENMPI,
    mpi_ssh::HEAD_CLUSTER_KEY,
    users::HEAD_USERS_KEYS,
    users::HEAD_USERS_SSH,
    slurm::HEAD_MUNGE,
    slurm::HEAD_SLURM_RECORD,
    slurm::HEAD_SLURM,
    groups::HEAD_GROUPS,
    groups::HEAD_CLUSTERSHELL,
    groups::HEAD_PDSH,
    // ---- workers
    Step {
        id: "worker-hostname",
        title: "host name",
        role: Role::Worker,
        files: HOSTNAME,
        validator: None,
        handler: Some(Handler::Hostname),
        packages: &[],
    },
    Step {
        id: "worker-interface",
        title: "LAN interface",
        role: Role::Worker,
        files: network::WORKER_FILES,
        validator: None,
        handler: Some(Handler::ActivateIface),
        packages: &[],
    },
    Step {
        id: "worker-hosts",
        title: "/etc/hosts block",
        role: Role::Worker,
        files: &[block("common/etc/hosts.j2", "/etc/hosts", always)],
        validator: None,
        handler: None,
        packages: &[],
    },
    time::WORKER_TIME,
    Step {
        id: "worker-nfs-mounts",
        title: "NFS mounts",
        role: Role::Worker,
        files: &[block("worker/etc/fstab.j2", "/etc/fstab", nfs)],
        validator: None,
        handler: Some(Handler::MountNfs),
        packages: &[Pkg::NfsClient],
    },
    Step {
        id: "worker-firewall",
        title: "firewall",
        role: Role::Worker,
        files: firewall::WORKER_IPTABLES,
        validator: Some(Validator::IptablesRestore),
        handler: Some(Handler::IptablesRestore),
        packages: firewall::IPTABLES_PACKAGES,
    },
    Step {
        id: "worker-nftables",
        title: "firewall (nftables)",
        role: Role::Worker,
        files: firewall::WORKER_NFT,
        validator: Some(Validator::Nft),
        handler: Some(Handler::NftLoad),
        packages: firewall::NFT_PACKAGES,
    },
    Step {
        id: "worker-mpi-hostfile",
        title: "MPI hostfiles",
        role: Role::Worker,
        files: HOSTFILES,
        validator: None,
        handler: None,
        packages: &[],
    },
    mpi_ssh::WORKER_OPENMPI,
    mpi_ssh::WORKER_CLUSTER_KEY,
    users::WORKER_USERS_KEYS,
    users::WORKER_USERS_SSH,
    slurm::WORKER_MUNGE,
    slurm::WORKER_SLURM,
];

/// The steps for one role, in order.
pub fn for_role(role: Role) -> impl Iterator<Item = &'static Step> {
    STEPS.iter().filter(move |s| s.role == role)
}

/// Every path a node of this role may get under any facts: what the probe
/// reads, so that facts can choose among them without a second round trip.
pub fn candidate_paths(role: Role) -> Vec<&'static str> {
    let mut paths: Vec<&'static str> = Vec::new();
    for f in for_role(role).flat_map(|s| s.files) {
        if !paths.contains(&f.path) {
            paths.push(f.path);
        }
    }
    paths
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

    /// Every tool a handler or validator may need is one the probe looks for.
    #[test]
    fn the_probe_looks_for_every_tool_a_step_needs() {
        let c = crate::cluster::Cluster::from_str(
            include_str!("../../inventories/lab.yaml"),
            std::path::Path::new("lab.yaml"),
        )
        .unwrap();
        for init in ["systemd", "sysvinit", "openrc"] {
            let facts = crate::facts::parse(&format!("@@init {init}\n@@done\n")).unwrap();
            for name in c.node_names() {
                let s = Subject {
                    cluster: &c,
                    node: c.node(name).unwrap(),
                    facts: &facts,
                };
                for step in STEPS {
                    let mut tools = step.validator.map(|v| v.tools()).unwrap_or_default();
                    tools.extend(step.handler.map(|h| h.tools(&s)).unwrap_or_default());
                    for t in tools {
                        assert!(PROBED_TOOLS.contains(&t.command), "{}", t.command);
                    }
                }
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
