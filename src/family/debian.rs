//! The Debian family (Debian, Ubuntu, Raspberry Pi OS): apt.

use super::{Family, PackageManager, Pkg, Service};

pub const DEBIAN: Family = Family {
    name: "debian",
    title: "Debian-like (apt)",
    manager: PackageManager::Apt,
    os_ids: &["debian", "ubuntu", "raspbian"],
    install: "apt_install",
    package,
    unit,
    iptables_rules: "/etc/iptables/rules.v4",
    nftables_conf: "/etc/nftables.conf",
    iptables_boot_enabled_by_package: true,
    nftables_by_default: false,
    init: "systemd",
    chrony_conf: "/etc/chrony/chrony.conf",
    ntp_pool: "2.debian.pool.ntp.org",
    nologin: "/usr/sbin/nologin",
};

fn package(p: Pkg) -> Option<&'static str> {
    Some(match p {
        Pkg::Coreutils => "coreutils",
        Pkg::Procps => "procps",
        Pkg::Hostname => "hostname",
        Pkg::Systemd => "systemd",
        Pkg::Openrc => "openrc",
        Pkg::Ifupdown => "ifupdown",
        Pkg::NetworkManager => "network-manager",
        Pkg::Netplan => "netplan.io",
        Pkg::Iptables => "iptables",
        // netfilter-persistent (its dependency) loads rules.v4 at boot.
        Pkg::IptablesPersistent => "iptables-persistent",
        Pkg::Nftables => "nftables",
        Pkg::Dnsmasq => "dnsmasq",
        Pkg::NfsServer => "nfs-kernel-server",
        Pkg::NfsClient => "nfs-common",
        Pkg::NfsGanesha => "nfs-ganesha",
        Pkg::NfsGaneshaVfs => "nfs-ganesha-vfs",
        Pkg::Openmpi => "openmpi-bin",
        Pkg::Chrony => "chrony",
        Pkg::ClusterShell => "clustershell",
        Pkg::Pdsh => "pdsh",
        Pkg::Shadow => "passwd",
        Pkg::OpensshServer => "openssh-server",
        Pkg::SshKeysign => "openssh-client",
        Pkg::Munge => "munge",
        Pkg::Slurmctld => "slurmctld",
        Pkg::Slurmd => "slurmd",
        Pkg::SlurmClient => "slurm-client",
    })
}

fn unit(s: Service) -> &'static str {
    match s {
        Service::Dnsmasq => "dnsmasq",
        Service::NfsGanesha => "nfs-ganesha",
        Service::Iptables => "netfilter-persistent",
        Service::Nftables => "nftables",
        Service::Chrony => "chrony",
        Service::Ssh => "ssh",
        Service::Munge => "munge",
        Service::Slurmctld => "slurmctld",
        Service::Slurmd => "slurmd",
    }
}
