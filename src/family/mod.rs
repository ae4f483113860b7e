//! Distro families as data, in the spirit of Ansible's `vars/<os_family>.yml`:
//! one table per family (`debian.rs`, `rhel.rs`, `alpine.rs`) holding its
//! package manager and the shell function that installs with it
//! (`install.sh`), the name of every package a step or a tool needs (by a
//! stable key, [`Pkg`]), the names of the services the handlers restart or
//! enable ([`Service`]), the files its boot reads (firewall rules), whether
//! its iptables package enables the boot service itself, whether its
//! firewall is nftables by default, and its usual init system.
//!
//! Everything else asks the node's family (`Facts::family`); nothing
//! outside this module matches on a package manager. A node of no known
//! family is refused with what was seen ([`detect`]), never treated as
//! Debian. Adding a family: one data file here and one line in [`FAMILIES`].

mod alpine;
mod debian;
mod rhel;

use crate::transport::shell_quote;

pub use alpine::ALPINE;
pub use debian::DEBIAN;
pub use rhel::RHEL;

/// Every family clusterctl knows, in the order they are named in messages.
pub const FAMILIES: &[&Family] = &[&DEBIAN, &RHEL, &ALPINE];

/// A node's package manager, as the probe reports it (`@@pkgmgr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageManager {
    Apt,
    Dnf,
    Apk,
    #[default]
    Unknown,
}

impl PackageManager {
    /// The probe's word for it.
    pub fn word(self) -> &'static str {
        match self {
            PackageManager::Apt => "apt",
            PackageManager::Dnf => "dnf",
            PackageManager::Apk => "apk",
            PackageManager::Unknown => "unknown",
        }
    }
}

/// The package manager the probe's word names: a family's (`unknown` for
/// any other).
pub fn package_manager(word: &str) -> PackageManager {
    FAMILIES
        .iter()
        .map(|f| f.manager)
        .find(|pm| pm.word() == word)
        .unwrap_or_default()
}

/// Declares [`Pkg`] and [`Pkg::ALL`] from one list, so a key can never be
/// missing from `ALL` (which the family tests walk).
macro_rules! pkg_keys {
    ($($(#[$doc:meta])* $key:ident,)*) => {
        /// Every package a step or a tool may need, by a stable key; each family
        /// names it in its own table (or says it has none).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Pkg {
            $($(#[$doc])* $key,)*
        }

        impl Pkg {
            /// Every key (a test holds each family to naming or refusing each).
            pub const ALL: &'static [Pkg] = &[$(Pkg::$key,)*];
        }
    };
}

pkg_keys! {
    /// `base64`, `mktemp` (the write script's own tools).
    Coreutils,
    /// `sysctl`.
    Procps,
    Hostname,
    Systemd,
    Openrc,
    Ifupdown,
    NetworkManager,
    Netplan,
    Iptables,
    /// What loads the iptables rules file at boot.
    IptablesPersistent,
    /// `nft` and the service that loads the ruleset at boot.
    Nftables,
    Dnsmasq,
    /// The kernel NFS server's tools (`exportfs`).
    NfsServer,
    /// The NFS client (`mount.nfs`).
    NfsClient,
    /// The userspace NFSv4 server and its filesystem backend.
    NfsGanesha,
    NfsGaneshaVfs,
    Openmpi,
    /// chronyd and chronyc: time sync.
    Chrony,
    /// `clush` (the head's admin tools, `tools.clustershell`).
    ClusterShell,
    /// `pdsh` with its genders module (`tools.pdsh`).
    Pdsh,
    /// `useradd`, `usermod`, `groupadd` (cluster users; Alpine's busybox
    /// `adduser` has other options).
    Shadow,
    /// `sshd` (its `-t` checks a candidate sshd drop-in).
    OpensshServer,
    /// `ssh-keysign`, setuid (host-based SSH for cluster users): part of
    /// the client on Debian, its own package on RHEL and Alpine.
    SshKeysign,
    /// munged and its tools (Slurm's authentication).
    Munge,
    /// The Slurm controller (the head).
    Slurmctld,
    /// The Slurm node daemon (every node that runs jobs).
    Slurmd,
    /// `sinfo`, `srun`, `sbatch`, `scontrol`.
    SlurmClient,
}

/// Time daemons other than chrony that a fresh node may run, by their unit
/// (or OpenRC service) name in any family; none is a family's chrony unit.
/// The probe reports which are active or enabled; the time step's handler
/// stops and disables those (`catalog/time.rs`).
pub const OTHER_TIME_DAEMONS: &[&str] = &["systemd-timesyncd", "ntp", "ntpd", "ntpsec", "openntpd"];

/// A service a handler restarts or enables, by a stable key; each family
/// names its unit (systemd) or service (OpenRC, /etc/init.d).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Dnsmasq,
    NfsGanesha,
    /// What loads the iptables rules file at boot (enabled by the
    /// handler unless [`Family::iptables_boot_enabled_by_package`]).
    Iptables,
    /// What loads the nftables ruleset at boot.
    Nftables,
    /// chronyd.
    Chrony,
    /// The SSH server (host-based authentication for cluster users).
    Ssh,
    Munge,
    Slurmctld,
    Slurmd,
}

impl Service {
    /// How plans and recaps call it, whatever the family's unit name is.
    pub fn label(self) -> &'static str {
        match self {
            Service::Dnsmasq => "dnsmasq",
            Service::NfsGanesha => "nfs-ganesha",
            Service::Iptables => "iptables",
            Service::Nftables => "nftables",
            Service::Chrony => "chrony",
            Service::Ssh => "ssh",
            Service::Munge => "munge",
            Service::Slurmctld => "slurmctld",
            Service::Slurmd => "slurmd",
        }
    }
}

/// One distro family's table.
#[derive(Debug)]
pub struct Family {
    /// Its short name in messages (`debian`).
    pub name: &'static str,
    /// How messages describe it (`Debian-like (apt)`).
    pub title: &'static str,
    pub manager: PackageManager,
    /// os-release IDs of the family: how a node whose package manager the
    /// probe could not tell is still recognised.
    pub os_ids: &'static [&'static str],
    /// The function of `install.sh` that installs with its manager.
    pub install: &'static str,
    /// Its name for each package (None: the family has none, or needs none).
    pub package: fn(Pkg) -> Option<&'static str>,
    /// Its unit (or OpenRC service) for each service.
    pub unit: fn(Service) -> &'static str,
    /// The iptables-restore rules file its boot loads.
    pub iptables_rules: &'static str,
    /// The nftables ruleset its boot loads.
    pub nftables_conf: &'static str,
    /// Its iptables boot package enables the boot service itself (Debian's
    /// netfilter-persistent); else the handler enables [`Service::Iptables`].
    pub iptables_boot_enabled_by_package: bool,
    /// Its firewall is nftables unless the node already runs iptables rules
    /// (RHEL: iptables-services is deprecated there).
    pub nftables_by_default: bool,
    /// Its usual init system (the probe's word: `systemd`, `openrc`).
    pub init: &'static str,
    /// The chrony configuration its chronyd reads.
    pub chrony_conf: &'static str,
    /// The NTP pool its own chrony.conf names: the head's upstream when the
    /// inventory names none.
    pub ntp_pool: &'static str,
    /// The shell of system accounts (munge, slurm).
    pub nologin: &'static str,
}

impl Family {
    /// This family's name for a package.
    pub fn package(&self, p: Pkg) -> Option<&'static str> {
        (self.package)(p)
    }

    /// This family's unit for a service.
    pub fn unit(&self, s: Service) -> &'static str {
        (self.unit)(s)
    }

    /// How a missing tool's package is named in a message: `package NAME`,
    /// or that the family has none.
    pub fn package_note(&self, p: Pkg) -> String {
        match self.package(p) {
            Some(name) => format!("package {name}"),
            None => format!("no {} package has it", self.name),
        }
    }

    /// Ok when `pm`, the node's package manager, is this family's: apply
    /// can install with it. A node placed in a family by its os-release ID
    /// alone (the probe found no package manager) cannot.
    pub fn installs_with(&self, pm: PackageManager) -> Result<(), String> {
        if pm == self.manager {
            return Ok(());
        }
        Err(format!(
            "no package manager recognised ({} nodes install with {}, which this node lacks)",
            self.title,
            self.manager.word()
        ))
    }

    /// A shell function `pkg_install` that installs `names` with this
    /// family's manager (`install.sh`): on failure it prints
    /// `@@install-failed NAMES` and the manager's last lines as `@@|`
    /// details and sets `fail=1`. Names come from the family's table only.
    pub fn install_script(&self, names: &[&str]) -> String {
        let list: Vec<String> = names.iter().map(|n| shell_quote(n)).collect();
        format!(
            "{INSTALL_SH}pkg_install() {{\n  install_with {} {}\n}}\n",
            self.install,
            list.join(" ")
        )
    }
}

/// The install functions, one per package manager.
const INSTALL_SH: &str = include_str!("install.sh");

/// The node's family: by the package manager the probe found, else by the
/// os-release ID. None known: refused, naming what was seen.
pub fn detect(
    pm: PackageManager,
    os_id: &str,
    os_version: &str,
) -> Result<&'static Family, String> {
    FAMILIES
        .iter()
        .copied()
        .find(|f| f.manager == pm)
        .or_else(|| {
            (pm == PackageManager::Unknown)
                .then(|| FAMILIES.iter().copied().find(|f| f.os_ids.contains(&os_id)))
                .flatten()
        })
        .ok_or_else(|| {
            let known: Vec<&str> = FAMILIES.iter().map(|f| f.title).collect();
            format!(
                "no supported distro family recognised (found: os {} {}, package manager {}); \
                 nothing was changed (help: clusterctl manages {} nodes)",
                if os_id.is_empty() { "unknown" } else { os_id },
                if os_version.is_empty() {
                    "?"
                } else {
                    os_version
                },
                pm.word(),
                known.join(", ")
            )
        })
}

#[cfg(test)]
mod tests;
