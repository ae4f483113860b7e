//! The raw inventory: serde types mirroring cluster.yaml one to one, with the
//! source position of every value that validation may complain about. Nothing
//! here is checked beyond YAML syntax, types, unknown fields and duplicate
//! keys; `validate` turns a [`RawInventory`] into the resolved `Cluster`.

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::error::Location;

mod load;
pub use load::{parse, MAX_ALIASES, MAX_ANCHORS, MAX_DEPTH, MAX_REPLAYED_EVENTS};

/// A value and where it was written.
pub type S<T> = Spanned<T>;

/// The location of a spanned value, if the parser knew it.
pub fn loc<T>(s: &Spanned<T>) -> Option<Location> {
    let l = s.referenced;
    (l.line() > 0).then(|| Location {
        line: l.line() as usize,
        column: l.column() as usize,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInventory {
    pub name: S<String>,
    pub domain: S<String>,
    pub lan: RawLan,
    pub head: RawHead,
    #[serde(default)]
    pub ssh: Option<RawSsh>,
    #[serde(default)]
    pub workers: Vec<S<RawWorker>>,
    #[serde(default)]
    pub nfs: Option<RawNfs>,
    #[serde(default)]
    pub firewall: Option<RawFirewall>,
    #[serde(default)]
    pub mpi: Option<RawMpi>,
    /// One clock: the head serves time to the LAN, workers take it from the head.
    #[serde(default)]
    pub time: Option<RawTime>,
    /// `install` (default): apply installs the packages a node lacks;
    /// `skip`: it only names them (air-gapped clusters).
    #[serde(default)]
    pub packages: Option<S<PackagePolicy>>,
    /// The cluster's people (the same accounts on every node).
    #[serde(default)]
    pub users: Vec<S<RawUser>>,
    /// A scheduler: Slurm and munge (off unless the section is there).
    #[serde(default)]
    pub slurm: Option<RawSlurm>,
    /// The admin tools installed on the head (the group files are always there).
    #[serde(default)]
    pub tools: Option<RawTools>,
}

/// ClusterShell and pdsh on the head (docs: `tools`); off unless `true`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTools {
    #[serde(default)]
    pub clustershell: Option<S<bool>>,
    #[serde(default)]
    pub pdsh: Option<S<bool>>,
}

/// Slurm and munge (docs/inventory.md, `slurm`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSlurm {
    /// Default: on (the section is there).
    #[serde(default)]
    pub enabled: Option<S<bool>>,
    /// The head runs jobs too (slurmd there) [default: no].
    #[serde(default)]
    pub head_runs_jobs: Option<S<bool>>,
    /// Default: one partition `batch` of every node that runs jobs.
    #[serde(default)]
    pub partitions: Vec<S<RawPartition>>,
    /// The `munge` account's UID and GID on every node [default: 64029].
    #[serde(default)]
    pub munge_uid: Option<S<u32>>,
    /// The `slurm` account's UID and GID on every node [default: 64030, Debian's].
    #[serde(default)]
    pub slurm_uid: Option<S<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPartition {
    pub name: S<String>,
    /// A host list (`node[01-04]`) [default: every node that runs jobs].
    #[serde(default)]
    pub nodes: Option<S<String>>,
    /// Jobs go here when they name no partition [default: the first].
    #[serde(default)]
    pub default: Option<S<bool>>,
}

/// One cluster user.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUser {
    pub name: S<String>,
    pub uid: S<u32>,
    #[serde(default)]
    pub gid: Option<S<u32>>,
    #[serde(default)]
    pub groups: Vec<S<String>>,
    /// Default `/bin/bash`; gid defaults to the uid (docs/inventory.md).
    #[serde(default)]
    pub shell: Option<S<String>>,
    /// Public keys that may log in as this user from outside the cluster.
    #[serde(default)]
    pub ssh_authorized_keys: Vec<S<String>>,
}

/// Whether apply installs what a node lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PackagePolicy {
    #[default]
    Install,
    Skip,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLan {
    pub cidr: S<String>,
    pub dhcp_range: S<String>,
    #[serde(default)]
    pub addressing: Option<S<Addressing>>,
    #[serde(default)]
    pub upstream_dns: Vec<S<String>>,
}

/// How workers get their LAN address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Addressing {
    /// The head's dnsmasq hands out a reserved lease per worker.
    Dhcp,
    /// Each worker's interface is configured with a fixed address.
    Static,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHead {
    pub name: S<String>,
    pub ssh: S<String>,
    #[serde(default, rename = "become")]
    pub become_: Option<S<Become>>,
    pub wan_iface: S<String>,
    pub lan_iface: S<String>,
    pub lan_ip: S<String>,
    /// The head's network stack when the facts are not enough (default auto).
    #[serde(default)]
    pub network: Option<S<NetStack>>,
}

/// A network stack clusterctl can render for (`auto`: the one the node runs,
/// from its facts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NetStack {
    #[default]
    Auto,
    /// `/etc/network/interfaces.d/` and `ifup` (Debian, Alpine's ifupdown-ng).
    Ifupdown,
    /// NetworkManager keyfiles and `nmcli` (Raspberry Pi OS, RHEL 9).
    Networkmanager,
    /// `/etc/systemd/network/*.network` and `networkctl`.
    Networkd,
    /// `/etc/netplan/*.yaml` and `netplan apply` (Ubuntu).
    Netplan,
}

/// Which firewall the nodes get (`auto`: from each node's facts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FirewallBackend {
    #[default]
    Auto,
    /// iptables-restore rules (`/etc/iptables/rules.v4`), with the variant
    /// (legacy or nft) the node's `iptables` is.
    Iptables,
    /// A native nftables ruleset (`/etc/nftables.conf`, loaded at boot by
    /// nftables.service).
    Nftables,
}

/// How to gain root when the SSH user is not root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Become {
    Sudo,
}

/// SSH client settings shared by every node. Paths are relative to the
/// inventory file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSsh {
    #[serde(default)]
    pub transport: Option<S<TransportKind>>,
    #[serde(default)]
    pub config: Option<S<String>>,
    #[serde(default)]
    pub known_hosts: Option<S<String>>,
    #[serde(default)]
    pub identity: Option<S<String>>,
    /// Default user for workers reached through the head.
    #[serde(default)]
    pub user: Option<S<String>>,
}

/// Which SSH implementation talks to the hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// The system `ssh` (honours ~/.ssh/config, the agent, ProxyJump).
    #[default]
    Openssh,
    /// The built-in pure-Rust client.
    Russh,
}

/// One worker (`name`) or a range of workers (`names`). A single struct, not an
/// untagged enum, so every field keeps its position and unknown fields are
/// still rejected; `validate` checks which combination was used.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWorker {
    #[serde(default)]
    pub name: Option<S<String>>,
    #[serde(default)]
    pub names: Option<S<String>>,
    #[serde(default)]
    pub mac: Option<S<String>>,
    #[serde(default)]
    pub macs: Option<S<Vec<S<String>>>>,
    #[serde(default)]
    pub ip: Option<S<String>>,
    #[serde(default)]
    pub ip_start: Option<S<String>>,
    #[serde(default)]
    pub slots: Option<S<u32>>,
    #[serde(default)]
    pub ssh: Option<S<String>>,
    /// The worker's LAN interface (default eth0).
    #[serde(default)]
    pub iface: Option<S<String>>,
    /// The worker's network stack when the facts are not enough (default auto).
    #[serde(default)]
    pub network: Option<S<NetStack>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNfs {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub exports: Vec<S<RawExport>>,
    /// The head's NFS server: `kernel` (default) or `ganesha`.
    #[serde(default)]
    pub server: Option<S<NfsServer>>,
}

/// Which NFS server the head runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NfsServer {
    /// The kernel's nfsd (`nfs-kernel-server`, `/etc/exports`, `exportfs -ra`).
    #[default]
    Kernel,
    /// nfs-ganesha, a userspace NFSv4 server (`/etc/ganesha/ganesha.conf`).
    Ganesha,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExport {
    pub path: S<String>,
    #[serde(default)]
    pub mount: Option<S<String>>,
    #[serde(default)]
    pub options: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFirewall {
    #[serde(default)]
    pub wan_tcp_ports: Vec<S<u16>>,
    #[serde(default)]
    pub lan: Option<S<LanPolicy>>,
    /// `auto` (default), `iptables` or `nftables`.
    #[serde(default)]
    pub backend: Option<S<FirewallBackend>>,
}

/// What the firewall accepts from the LAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LanPolicy {
    /// Everything from the LAN is accepted (the usual cluster setup).
    #[default]
    Trust,
    /// Only SSH, DHCP, DNS, NFS and ICMP from the LAN.
    SshOnly,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMpi {
    #[serde(default)]
    pub slots: Option<S<u32>>,
    #[serde(default)]
    pub hostfiles: Option<Vec<S<HostfileFlavor>>>,
    /// Which MPI apply installs on every node (none: leave MPI to the user).
    #[serde(default)]
    pub install: Option<S<MpiInstall>>,
    /// Slots of the head in the hostfiles (0, the default: the head runs no ranks).
    #[serde(default)]
    pub head_slots: Option<S<u32>>,
    /// A cluster SSH key for root on every node [default: on with `install`].
    #[serde(default)]
    pub cluster_key: Option<S<bool>>,
}

/// Time sync (chrony): on unless `enabled: false`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTime {
    #[serde(default)]
    pub enabled: Option<S<bool>>,
    /// NTP servers the head syncs from [default: its distro's pool]; an
    /// empty list: none (the head serves its own clock).
    #[serde(default)]
    pub upstream: Option<Vec<S<String>>>,
    /// The stratum the head serves at when it has no upstream [default: 10].
    #[serde(default)]
    pub local_stratum: Option<S<u32>>,
}

/// The MPI implementation apply installs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MpiInstall {
    Openmpi,
}

/// Which MPI hostfile format(s) to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HostfileFlavor {
    /// `host slots=N`
    Openmpi,
    /// `host:N`
    Mpich,
}
