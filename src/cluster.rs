//! The resolved cluster model: what validation produces and every later stage
//! consumes. Everything here is checked, expanded (host lists), assigned (IPs)
//! and derived (netmask, FQDNs); nodes keep inventory order. Serialize-only: it
//! is the context handed to templates. Built only by `validate` (which also
//! holds `Cluster::load`); this module depends on nothing but the inventory's
//! enums.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::Serialize;

pub use crate::inventory::{
    Addressing, FirewallBackend, HostfileFlavor, LanPolicy, MpiInstall, NetStack, NfsServer,
    PackagePolicy, TransportKind,
};
pub use crate::values::SshTarget;
use crate::values::{
    AbsPath, AccountName, Hostname, Iface, Mac, NtpServer, SharedDir, SshPublicKey,
};

#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    pub name: String,
    pub domain: String,
    pub lan: Lan,
    pub head: Head,
    pub workers: Vec<Worker>,
    pub nfs: Nfs,
    pub firewall: Firewall,
    pub mpi: Mpi,
    pub time: Time,
    pub ssh: SshSettings,
    /// Whether apply installs the packages a node lacks.
    pub packages: PackagePolicy,
    /// The cluster's people, in inventory order (`validate/users.rs`).
    pub users: Vec<User>,
    /// Slurm and munge (`validate/slurm.rs`).
    pub slurm: Slurm,
    /// The admin tools installed on the head.
    pub tools: Tools,
    /// The cluster key and host keys, once gathered from the nodes
    /// (`cluster_key.rs`); never in the serialized model.
    #[serde(skip)]
    pub keys: Option<ClusterKeys>,
}

/// Admin tools on the head that read its node groups (`node_groups.rs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tools {
    /// ClusterShell (`clush -g workers`).
    pub clustershell: bool,
    /// pdsh (`pdsh -g workers`).
    pub pdsh: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Lan {
    /// `10.0.0.0/24`
    pub cidr: String,
    pub network: Ipv4Addr,
    pub prefix: u8,
    pub netmask: Ipv4Addr,
    pub broadcast: Ipv4Addr,
    pub dhcp_start: Ipv4Addr,
    pub dhcp_end: Ipv4Addr,
    pub addressing: Addressing,
    pub upstream_dns: Vec<Ipv4Addr>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Head {
    pub name: Hostname,
    pub fqdn: String,
    pub ssh: SshTarget,
    /// The SSH user is not root: wrap commands in `sudo -n`.
    pub sudo: bool,
    pub wan_iface: Iface,
    pub lan_iface: Iface,
    pub lan_ip: Ipv4Addr,
    /// The inventory's pin (`Auto`: chosen from the facts).
    pub network: NetStack,
}

#[derive(Debug, Clone, Serialize)]
pub struct Worker {
    pub name: Hostname,
    pub fqdn: String,
    pub ip: Ipv4Addr,
    /// Lowercase, colon-separated.
    pub mac: Option<Mac>,
    /// The worker's interface on the cluster LAN.
    pub iface: Iface,
    pub slots: u32,
    pub ssh: SshTarget,
    /// Reached by a jump through the head (no `ssh:` override in the inventory).
    pub via_head: bool,
    pub sudo: bool,
    /// The inventory's pin (`Auto`: chosen from the facts).
    pub network: NetStack,
}

#[derive(Debug, Clone, Serialize)]
pub struct Nfs {
    pub enabled: bool,
    pub exports: Vec<Export>,
    pub server: NfsServer,
}

#[derive(Debug, Clone, Serialize)]
pub struct Export {
    /// Directory on the head.
    pub path: SharedDir,
    /// Mount point on every worker.
    pub mount: SharedDir,
    /// Export options for /etc/exports.
    pub options: String,
    /// Mount options for the workers' fstab (`rw|ro,_netdev,nofail`, a timeout).
    pub mount_options: String,
    /// `rw` or `ro` (from the export options).
    pub access: &'static str,
    /// ganesha's `Squash`, `Anonymous_Uid`/`_Gid` and `SecType`: what the
    /// options say, for the server that does not read /etc/exports.
    pub squash: &'static str,
    pub anonuid: Option<u32>,
    pub anongid: Option<u32>,
    pub sec: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Firewall {
    /// Sorted, unique, always containing 22.
    pub wan_tcp_ports: Vec<u16>,
    pub lan: LanPolicy,
    /// The inventory's pin (`Auto`: chosen per node from its facts).
    pub backend: FirewallBackend,
}

#[derive(Debug, Clone, Serialize)]
pub struct Mpi {
    pub slots: u32,
    /// Sorted, unique.
    pub hostfiles: Vec<HostfileFlavor>,
    /// What apply installs on every node.
    pub install: Option<MpiInstall>,
    /// The head's slots in the hostfiles (0: not listed).
    pub head_slots: u32,
    /// Root on every node gets the cluster SSH key (generated on the head).
    pub cluster_key: bool,
}

/// Time sync: chrony on every node, the head serving the LAN.
#[derive(Debug, Clone, Serialize)]
pub struct Time {
    pub enabled: bool,
    /// The head's NTP servers; None: its distro family's pool.
    pub upstream: Option<Vec<NtpServer>>,
    /// The head's stratum when it has no upstream (1 to 15).
    pub local_stratum: u8,
}

/// The scheduler (`slurm:`).
#[derive(Debug, Clone, Serialize, Default)]
pub struct Slurm {
    pub enabled: bool,
    /// slurmd on the head too.
    pub head_runs_jobs: bool,
    /// At least one when enabled; exactly one is the default.
    pub partitions: Vec<Partition>,
    pub munge_uid: u32,
    pub slurm_uid: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Partition {
    pub name: String,
    /// Node names in inventory order.
    pub nodes: Vec<String>,
    /// The same nodes folded (`node[01-04]`), as slurm.conf lists them.
    pub nodes_folded: String,
    pub default: bool,
}

/// A cluster user: the same account on every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub name: AccountName,
    pub uid: u32,
    /// The primary group's ID; the group has the user's name.
    pub gid: u32,
    /// Supplementary groups, sorted, unique.
    pub groups: Vec<AccountName>,
    pub shell: AbsPath,
    /// Keys that may log in as this user (checked, one line each, unique).
    pub ssh_authorized_keys: Vec<SshPublicKey>,
}

/// SSH client settings; paths are absolute (resolved against the inventory's directory).
#[derive(Debug, Clone, Serialize)]
pub struct SshSettings {
    pub transport: TransportKind,
    pub config: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    pub identity: Option<PathBuf>,
}

/// A node's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Head,
    Worker,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Head => "head",
            Role::Worker => "worker",
        }
    }
}

/// One entry of the "every node" list (hosts file, DNS).
#[derive(Debug, Clone, Serialize)]
pub struct HostEntry {
    pub name: String,
    pub fqdn: String,
    pub ip: Ipv4Addr,
    pub role: Role,
}

impl Cluster {
    /// With Slurm: the nodes that run jobs (the head first when it does),
    /// in inventory order.
    pub fn slurm_compute_nodes(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.slurm.head_runs_jobs {
            v.push(self.head.name.to_string());
        }
        v.extend(self.workers.iter().map(|w| w.name.to_string()));
        v
    }

    /// Of those, the ones whose hardware is known (now, or from the head's
    /// record of the last apply), in order: slurm.conf's node lines.
    pub fn slurm_hardware(&self) -> Vec<&NodeHardware> {
        let Some(k) = &self.keys else {
            return Vec::new();
        };
        self.slurm_compute_nodes()
            .iter()
            .filter_map(|n| k.hardware.iter().find(|h| h.name == *n))
            .collect()
    }

    /// Every node, head first, then workers in inventory order.
    pub fn hosts(&self) -> Vec<HostEntry> {
        let mut v = vec![HostEntry {
            name: self.head.name.to_string(),
            fqdn: self.head.fqdn.clone(),
            ip: self.head.lan_ip,
            role: Role::Head,
        }];
        v.extend(self.workers.iter().map(|w| HostEntry {
            name: w.name.to_string(),
            fqdn: w.fqdn.clone(),
            ip: w.ip,
            role: Role::Worker,
        }));
        v
    }

    /// Node names, head first.
    pub fn node_names(&self) -> Vec<&str> {
        std::iter::once(self.head.name.as_str())
            .chain(self.workers.iter().map(|w| w.name.as_str()))
            .collect()
    }

    pub fn worker(&self, name: &str) -> Option<&Worker> {
        self.workers.iter().find(|w| w.name == name)
    }

    /// The node with this name, head or worker.
    pub fn node(&self, name: &str) -> Option<NodeRef<'_>> {
        if self.head.name == name {
            Some(NodeRef::Head(&self.head))
        } else {
            self.worker(name).map(NodeRef::Worker)
        }
    }
}

/// One node of the cluster, whichever its role.
#[derive(Debug, Clone, Copy)]
pub enum NodeRef<'a> {
    Head(&'a Head),
    Worker(&'a Worker),
}

impl<'a> NodeRef<'a> {
    pub fn name(self) -> &'a str {
        match self {
            NodeRef::Head(h) => &h.name,
            NodeRef::Worker(w) => &w.name,
        }
    }

    pub fn fqdn(self) -> &'a str {
        match self {
            NodeRef::Head(h) => &h.fqdn,
            NodeRef::Worker(w) => &w.fqdn,
        }
    }

    pub fn role(self) -> Role {
        match self {
            NodeRef::Head(_) => Role::Head,
            NodeRef::Worker(_) => Role::Worker,
        }
    }

    /// The node's address on the cluster LAN.
    pub fn ip(self) -> Ipv4Addr {
        match self {
            NodeRef::Head(h) => h.lan_ip,
            NodeRef::Worker(w) => w.ip,
        }
    }

    /// The node's interface on the cluster LAN.
    pub fn lan_iface(self) -> &'a str {
        match self {
            NodeRef::Head(h) => &h.lan_iface,
            NodeRef::Worker(w) => &w.iface,
        }
    }
}

/// The cluster SSH key and every node's host key, as `cluster_key`'s gather
/// round trips found them (not part of the inventory: filled in per run).
#[derive(Clone, Default, Serialize)]
pub struct ClusterKeys {
    /// `ssh-ed25519 AAAA… clusterctl@head`; None: the head has none yet.
    pub public: Option<String>,
    /// The OpenSSH private key file, exactly as on the head.
    #[serde(skip)]
    pub private: Option<String>,
    /// Every node whose host key is known, in inventory order.
    pub host_keys: Vec<HostKey>,
    /// Nodes whose host key could not be read (unreachable), in order.
    pub missing: Vec<String>,
    /// With Slurm: the cluster's munge key (text), kept on the head.
    #[serde(skip)]
    pub munge: Option<String>,
    /// With Slurm: each node's hardware as slurm.conf's node line needs it,
    /// for every node that answered, in inventory order.
    pub hardware: Vec<NodeHardware>,
    /// With Slurm: nodes whose hardware is not known (unreachable).
    pub hardware_missing: Vec<String>,
}

impl std::fmt::Debug for ClusterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterKeys")
            .field("public", &self.public)
            .field("private", &self.private.as_ref().map(|_| "(secret)"))
            .field("host_keys", &self.host_keys)
            .field("missing", &self.missing)
            .field("munge", &self.munge.as_ref().map(|_| "(secret)"))
            .field("hardware", &self.hardware)
            .field("hardware_missing", &self.hardware_missing)
            .finish()
    }
}

/// One node's processors and memory as the gather read them (`keys.sh`),
/// and what its cgroups allow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeHardware {
    pub name: String,
    pub cpus: u32,
    pub sockets: u32,
    pub cores_per_socket: u32,
    pub threads_per_core: u32,
    /// MemTotal in MiB (slurm.conf's RealMemory).
    pub memory_mib: u64,
    /// A pure cgroup v2 hierarchy with systemd as init, not in a container:
    /// Slurm's cgroup plugins can work there.
    pub cgroup: bool,
}

/// One node's host key, under every name it is reached by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostKey {
    /// `name,fqdn,ip`
    pub names: String,
    /// `ssh-ed25519 AAAA…`
    pub key: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use proptest::prelude::*;
    use std::path::Path;

    const EXAMPLE: &str = include_str!("../examples/cluster.yaml");

    #[test]
    fn example_loads() {
        let c = Cluster::from_str(EXAMPLE, Path::new("examples/cluster.yaml")).unwrap();
        assert_eq!(
            c.node_names(),
            ["head", "node01", "node02", "node03", "node04"]
        );
        assert_eq!(c.workers[3].ip, Ipv4Addr::new(10, 0, 0, 14));
        assert_eq!(c.workers[3].mac.as_deref(), Some("dc:a6:32:00:00:04"));
        assert_eq!(c.firewall.wan_tcp_ports, [22]);
        assert!(c.head.sudo && c.workers.iter().all(|w| w.via_head && w.sudo));
    }

    /// `packages: skip` makes apply install nothing (air-gapped clusters);
    /// the example says `install`, the default.
    #[test]
    fn the_package_policy_comes_from_the_inventory() {
        let c = Cluster::from_str(EXAMPLE, Path::new("examples/cluster.yaml")).unwrap();
        assert_eq!(c.packages, PackagePolicy::Install);
        let skip = EXAMPLE.replace("packages: install", "packages: skip");
        let c = Cluster::from_str(&skip, Path::new("examples/cluster.yaml")).unwrap();
        assert_eq!(c.packages, PackagePolicy::Skip);
        let bad = EXAMPLE.replace("packages: install", "packages: maybe");
        assert!(Cluster::from_str(&bad, Path::new("x.yaml")).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Arbitrary bytes never panic the loader: they load or give diagnostics.
        #[test]
        fn loader_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = Cluster::from_str(&text, Path::new("fuzz.yaml"));
        }

        /// Near-valid input (the example with bytes replaced, inserted or cut)
        /// reaches deep into validation; it must never panic either.
        #[test]
        fn loader_never_panics_on_mutated_example(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<char>()), 1..8)
        ) {
            let mut text: Vec<char> = EXAMPLE.chars().collect();
            for (at, kind, c) in edits {
                if text.is_empty() { break; }
                let i = at.index(text.len());
                match kind {
                    0 => text[i] = c,
                    1 => text.insert(i, c),
                    _ => { text.remove(i); }
                }
            }
            let text: String = text.into_iter().collect();
            if let Err(e) = Cluster::from_str(&text, Path::new("fuzz.yaml")) {
                let reported = matches!(e, Error::Inventory { ref diagnostics, .. } if !diagnostics.is_empty());
                prop_assert!(reported, "an invalid inventory must come back with diagnostics");
            }
        }
    }
}
