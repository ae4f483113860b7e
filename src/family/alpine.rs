//! The Alpine family: apk, OpenRC.

use super::{Family, PackageManager, Pkg, Service};

pub const ALPINE: Family = Family {
    name: "alpine",
    title: "Alpine (apk)",
    manager: PackageManager::Apk,
    os_ids: &["alpine"],
    install: "apk_install",
    package,
    unit,
    iptables_rules: "/etc/iptables/rules-save",
    nftables_conf: "/etc/nftables.conf",
    iptables_boot_enabled_by_package: false,
    nftables_by_default: false,
    init: "openrc",
    chrony_conf: "/etc/chrony/chrony.conf",
    ntp_pool: "pool.ntp.org",
    nologin: "/sbin/nologin",
};

fn package(p: Pkg) -> Option<&'static str> {
    Some(match p {
        Pkg::Coreutils => "coreutils",
        Pkg::Procps => "procps-ng",
        Pkg::Hostname => "busybox",
        Pkg::Systemd => return None,
        Pkg::Openrc => "openrc",
        Pkg::Ifupdown => "ifupdown-ng",
        Pkg::NetworkManager => "networkmanager",
        Pkg::Netplan => return None,
        Pkg::Iptables => "iptables",
        // Alpine's iptables package has the OpenRC service.
        Pkg::IptablesPersistent => return None,
        Pkg::Nftables => "nftables",
        Pkg::Dnsmasq => "dnsmasq",
        Pkg::NfsServer => "nfs-utils",
        Pkg::NfsClient => "nfs-utils",
        Pkg::NfsGanesha => "nfs-ganesha",
        Pkg::NfsGaneshaVfs => return None,
        Pkg::Openmpi => "openmpi",
        Pkg::Chrony => "chrony",
        Pkg::ClusterShell => return None,
        Pkg::Pdsh => return None,
        Pkg::Shadow => "shadow",
        Pkg::OpensshServer => "openssh-server",
        Pkg::SshKeysign => "openssh-keysign",
        // Slurm is not in Alpine's main or community repositories.
        Pkg::Munge => "munge",
        Pkg::Slurmctld => return None,
        Pkg::Slurmd => return None,
        Pkg::SlurmClient => return None,
    })
}

fn unit(s: Service) -> &'static str {
    match s {
        Service::Dnsmasq => "dnsmasq",
        Service::NfsGanesha => "nfs-ganesha",
        Service::Iptables => "iptables",
        Service::Nftables => "nftables",
        Service::Chrony => "chronyd",
        Service::Ssh => "sshd",
        Service::Munge => "munge",
        Service::Slurmctld => "slurmctld",
        Service::Slurmd => "slurmd",
    }
}
