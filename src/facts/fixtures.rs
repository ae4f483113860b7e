//! The facts parser and the stack/firewall choices on probe outputs of each
//! family (`fixtures/*.probe`: Debian 12 with ifupdown, Ubuntu 24.04 with
//! netplan over networkd owned by cloud-init, Raspberry Pi OS Bookworm with
//! NetworkManager, RHEL 9 with NetworkManager keyfiles and firewalld, Alpine
//! 3.19 with OpenRC and ifupdown-ng), and the probe's own shell run on
//! sample configuration files of every stack.

use super::*;
use crate::inventory::{FirewallBackend as Fw, NetStack};

fn fixture(name: &str) -> Facts {
    let text = match name {
        "debian12" => include_str!("fixtures/debian12.probe"),
        "ubuntu2404" => include_str!("fixtures/ubuntu2404.probe"),
        "raspios" => include_str!("fixtures/raspios-bookworm.probe"),
        "rhel9" => include_str!("fixtures/rhel9.probe"),
        "alpine" => include_str!("fixtures/alpine319.probe"),
        _ => unreachable!(),
    };
    parse(text).unwrap()
}

#[test]
fn debian_runs_ifupdown_and_gets_iptables() {
    let f = fixture("debian12");
    assert_eq!(f.net_stack(), Some(NetStack::Ifupdown));
    let claims = f.net.claims(NetStack::Ifupdown, "eth1");
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].file, "/etc/network/interfaces");
    assert!(claims[0].dhcp);
    assert_eq!(f.firewall_backend(Fw::Auto), Ok(Fw::Iptables));
    assert_eq!(f.firewall_backend(Fw::Nftables), Ok(Fw::Nftables));
}

#[test]
fn ubuntu_runs_netplan_owned_by_cloud_init() {
    let f = fixture("ubuntu2404");
    assert_eq!(f.net_stack(), Some(NetStack::Netplan));
    assert_eq!(f.net.cloud_init_network, Some(true));
    assert!(!f.net.netplan_nm);
    assert!(f.active.contains("systemd-resolved"));
    assert_eq!(
        f.net.resolv_link.as_deref(),
        Some("../run/systemd/resolve/stub-resolv.conf")
    );
    assert_eq!(f.net.claims(NetStack::Netplan, "ens3").len(), 1);
    assert!(f.net.claims(NetStack::Netplan, "ens4").is_empty());
    assert_eq!(f.firewall_backend(Fw::Auto), Ok(Fw::Iptables));
}

#[test]
fn raspberry_pi_os_runs_networkmanager() {
    let f = fixture("raspios");
    assert_eq!(f.net_stack(), Some(NetStack::Networkmanager));
    let c = f.net.claims(NetStack::Networkmanager, "eth0");
    assert_eq!(
        c[0].file,
        "/etc/NetworkManager/system-connections/Wired connection 1.nmconnection"
    );
    assert_eq!(f.firewall_backend(Fw::Auto), Ok(Fw::Iptables));
}

#[test]
fn rhel_runs_networkmanager_and_firewalld_is_reported() {
    let f = fixture("rhel9");
    // Its package manager (dnf) and family: `family/tests.rs`.
    assert_eq!(f.net_stack(), Some(NetStack::Networkmanager));
    let e = f.firewall_backend(Fw::Auto).unwrap_err();
    assert!(e.contains("firewalld runs on this node"), "{e}");
    assert!(e.contains("systemctl disable --now firewalld"), "{e}");
    // Without firewalld, the RHEL family gets native nftables.
    let mut f = f;
    f.active.remove("firewalld");
    f.iptables = "none".into();
    assert_eq!(f.firewall_backend(Fw::Auto), Ok(Fw::Nftables));
}

#[test]
fn alpine_runs_openrc_and_ifupdown_ng() {
    let f = fixture("alpine");
    assert_eq!(f.init, InitSystem::Openrc);
    // Its package manager (apk) and family: `family/tests.rs`.
    assert_eq!(f.net.ifupdown.as_deref(), Some("ng"));
    assert_eq!(f.net_stack(), Some(NetStack::Ifupdown));
    assert_eq!(f.firewall_backend(Fw::Auto), Ok(Fw::Iptables));
}

/// NAT in one iptables variant and a DROP policy in the other: refused.
#[test]
fn the_two_iptables_variants_are_never_mixed() {
    let mut f = fixture("debian12");
    f.iptables = "nf_tables".into();
    f.fw.legacy_rules = Some(3);
    let e = f.firewall_backend(Fw::Auto).unwrap_err();
    assert!(
        e.contains("3 iptables-legacy rule(s) are loaded too"),
        "{e}"
    );
    assert!(f.firewall_backend(Fw::Nftables).is_err());
    f.fw.legacy_rules = Some(0);
    f.iptables = "legacy".into();
    f.fw.nft_variant_rules = Some(2);
    let e = f.firewall_backend(Fw::Iptables).unwrap_err();
    assert!(e.contains("2 iptables-nft rule(s)"), "{e}");
    // nftables.service enabled: native nftables.
    let mut f = fixture("debian12");
    f.enabled.insert("nftables".into());
    assert_eq!(f.firewall_backend(Fw::Auto), Ok(Fw::Nftables));
}

#[test]
fn no_stack_recognised_is_none() {
    let f = parse("@@os debian 12\n@@done\n").unwrap();
    assert_eq!(f.net_stack(), None);
}

/// The probe's own shell (awk over each stack's files) on sample files:
/// the probe's paths are moved into a temporary root.
#[test]
fn the_probe_reads_which_file_configures_which_interface() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let put = |p: &str, text: &str| {
        let path = root.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    put(
        "etc/network/interfaces",
        "auto lo\niface lo inet loopback\nallow-hotplug eth0\niface eth0 inet dhcp\n",
    );
    put(
        "etc/network/interfaces.d/clusterctl",
        "auto eth1\niface eth1 inet static\n",
    );
    put(
        "etc/NetworkManager/system-connections/Wired connection 1.nmconnection",
        "[connection]\nid=Wired connection 1\ninterface-name=eth1\n\n[ipv4]\nmethod=manual\naddress1=10.0.0.1/24\n",
    );
    put(
        "etc/systemd/network/10-eth0.network",
        "[Match]\nName=eth0 en*\n\n[Network]\nDHCP=ipv4\n",
    );
    put(
        "etc/netplan/50-cloud-init.yaml",
        "network:\n  version: 2\n  renderer: NetworkManager\n  ethernets:\n    ens3:\n      dhcp4: true\n    ens4:\n      addresses: [10.0.0.1/24]\n",
    );
    let r = root.to_str().unwrap();
    let script = probe_script(&[], &[], &[])
        .replace("/etc/network/", &format!("{r}/etc/network/"))
        .replace("/etc/NetworkManager/", &format!("{r}/etc/NetworkManager/"))
        .replace(
            "/etc/systemd/network/",
            &format!("{r}/etc/systemd/network/"),
        )
        .replace("/etc/netplan/", &format!("{r}/etc/netplan/"));
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    let f = parse(&String::from_utf8_lossy(&out.stdout)).unwrap();
    let mut got: Vec<String> = f
        .net
        .confs
        .iter()
        .filter(|c| c.file.starts_with(r))
        .map(|c| {
            format!(
                "{} {} {} {}",
                stack_name(c.stack),
                c.iface,
                c.dhcp,
                &c.file[r.len()..]
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            "ifupdown eth0 true /etc/network/interfaces",
            "netplan ens3 true /etc/netplan/50-cloud-init.yaml",
            "netplan ens4 false /etc/netplan/50-cloud-init.yaml",
            "networkd en* true /etc/systemd/network/10-eth0.network",
            "networkd eth0 true /etc/systemd/network/10-eth0.network",
            "networkmanager eth1 false /etc/NetworkManager/system-connections/Wired connection 1.nmconnection",
        ]
    );
    assert!(f.net.netplan_nm);
    assert_eq!(f.net_stack(), Some(NetStack::Netplan));
    assert_eq!(
        f.net.claims(NetStack::Networkd, "enp3s0")[0].iface,
        "en*",
        "networkd's glob match"
    );
}
