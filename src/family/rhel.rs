//! The RHEL family (RHEL, Rocky, AlmaLinux, CentOS Stream, Fedora): dnf.

use super::{Family, PackageManager, Pkg, Service};

pub const RHEL: Family = Family {
    name: "rhel",
    title: "RHEL-like (dnf)",
    manager: PackageManager::Dnf,
    os_ids: &["rhel", "rocky", "almalinux", "centos", "fedora"],
    install: "dnf_install",
    package,
    unit,
    iptables_rules: "/etc/sysconfig/iptables",
    nftables_conf: "/etc/sysconfig/nftables.conf",
    iptables_boot_enabled_by_package: false,
    nftables_by_default: true,
    init: "systemd",
    chrony_conf: "/etc/chrony.conf",
    ntp_pool: "2.rhel.pool.ntp.org",
    nologin: "/sbin/nologin",
};

fn package(p: Pkg) -> Option<&'static str> {
    Some(match p {
        Pkg::Coreutils => "coreutils",
        Pkg::Procps => "procps-ng",
        Pkg::Hostname => "hostname",
        Pkg::Systemd => "systemd",
        Pkg::Openrc => return None,
        Pkg::Ifupdown => "NetworkManager-initscripts-updown",
        Pkg::NetworkManager => "NetworkManager",
        Pkg::Netplan => "netplan",
        Pkg::Iptables => "iptables",
        // iptables-services: the iptables unit loads /etc/sysconfig/iptables.
        Pkg::IptablesPersistent => "iptables-services",
        Pkg::Nftables => "nftables",
        Pkg::Dnsmasq => "dnsmasq",
        Pkg::NfsServer => "nfs-utils",
        Pkg::NfsClient => "nfs-utils",
        Pkg::NfsGanesha => "nfs-ganesha",
        Pkg::NfsGaneshaVfs => "nfs-ganesha-vfs",
        Pkg::Openmpi => "openmpi",
        Pkg::Chrony => "chrony",
        Pkg::ClusterShell => "clustershell",
        Pkg::Pdsh => "pdsh",
        Pkg::Shadow => "shadow-utils",
        Pkg::OpensshServer => "openssh-server",
        Pkg::SshKeysign => "openssh-keysign",
        // Slurm and munge from EPEL (or OpenHPC).
        Pkg::Munge => "munge",
        Pkg::Slurmctld => "slurm-slurmctld",
        Pkg::Slurmd => "slurm-slurmd",
        Pkg::SlurmClient => "slurm",
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
