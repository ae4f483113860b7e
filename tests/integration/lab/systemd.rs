//! Systemd-kind labs: hosts boot their stack, install from the wan host's
//! mirror, reboot, and apply converges on them (also from fresh hosts).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use clusterctl::lab::state::Proc;

use super::{
    assert_gone, describe, host_netns, serial, snapshot, text, wait_for_lease, Lab, TestLab,
};

/// The supervisor of every systemd host, by name, from the state file.
fn supervisors(lab: &Lab) -> Vec<(String, Proc)> {
    lab.state()
        .hosts
        .iter()
        .filter(|h| h.stack.is_some())
        .map(|h| (h.name.clone(), h.unshare))
        .collect()
}

/// Install packages on a systemd host from the wan host's mirror, by hand
/// (what the fresh-hosts issue will make apply do).
fn install_from_mirror(lab: &Lab, host: &str, packages: &str) {
    lab.sh(
        host,
        &format!(
            "export DEBIAN_FRONTEND=noninteractive; apt-get update -q >/dev/null && \
             apt-get install -y -q --no-install-recommends {packages} >/dev/null"
        ),
    );
}

#[test]
#[ignore = "needs root: run with --include-ignored (CI does)"]
fn systemd_hosts_boot_their_stack_install_from_the_mirror_reboot_and_leave_nothing() {
    let _g = serial();
    let before = snapshot();
    let lab = Lab::new(TestLab::SystemdBoot);
    let t0 = Instant::now();
    let out = lab.up_with(
        3,
        &[
            "--kind",
            "systemd",
            "--network",
            "ifupdown,networkd,networkmanager",
        ],
    );
    eprintln!(
        "systemd lab (3 workers) up in {:?} (images and mirror included when not cached)",
        t0.elapsed()
    );
    assert!(
        text(&out.stdout).contains("systemd)"),
        "{}",
        text(&out.stdout)
    );
    let sups = supervisors(&lab);
    let names: Vec<_> = sups.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["head", "w1", "w2", "w3"]);

    // Every host has finished booting, nothing failed; each runs its stack.
    let stacks = [
        ("head", "networking"),
        ("w1", "networking"),
        ("w2", "systemd-networkd"),
        ("w3", "NetworkManager"),
    ];
    let mut ids = BTreeSet::new();
    for (host, unit) in stacks {
        let state = lab.sh(host, "systemctl is-system-running --wait || true");
        let failed = lab.sh(host, "systemctl list-units --failed --plain --no-legend");
        assert_eq!(state.trim(), "running", "{host}: failed units: {failed}");
        assert_eq!(lab.sh(host, "hostname").trim(), host);
        assert_eq!(
            lab.sh(host, &format!("systemctl is-active {unit}")).trim(),
            "active",
            "{host}"
        );
        for other in ["networking", "systemd-networkd", "NetworkManager"] {
            if other != unit {
                let o = lab.exec(host, &["systemctl", "is-active", "--quiet", other]);
                assert!(!o.status.success(), "{host} runs {other} too");
            }
        }
        // Fresh: clusterctl's packages are not there.
        let o = lab.exec(
            host,
            &["sh", "-c", "dpkg-query -W dnsmasq || command -v dnsmasq"],
        );
        assert!(
            !o.status.success(),
            "{host} has dnsmasq: {}",
            text(&o.stdout)
        );
        // Own identity.
        assert!(
            ids.insert(lab.sh(host, "cat /etc/machine-id")),
            "{host}: shared machine-id"
        );
        assert!(
            ids.insert(lab.sh(host, "cat /etc/ssh/ssh_host_*_key.pub | cut -d' ' -f2")),
            "{host}: shared host key"
        );
        assert_eq!(
            lab.sh(host, "ls /etc/ssh/ | grep -c '_key$'").trim(),
            "1",
            "{host}"
        );
    }
    // SSH to the head with the lab's files (a real sshd under systemd).
    let ssh = Command::new("ssh")
        .arg("-F")
        .arg(lab.lab_dir().join("ssh_config"))
        .args(["head", "systemctl", "is-active", "ssh"])
        .output()
        .expect("ssh");
    assert!(ssh.status.success(), "{}", describe("ssh head", &ssh));

    // The head installs from the wan host's mirror, by name through the wan DNS.
    install_from_mirror(&lab, "head", "dnsmasq");
    assert_eq!(
        lab.sh("head", "systemctl is-active dnsmasq").trim(),
        "active"
    );

    // lab reboot: a new boot, the same disk, the same supervisor.
    let upper = PathBuf::from("/var/lib/clusterctl-lab/tsysd/w2/upper");
    let ino = |p: &Path| std::os::unix::fs::MetadataExt::ino(&fs::metadata(p).expect("upper dir"));
    let upper_ino = ino(&upper);
    lab.sh("w2", "echo kept > /root/marker");
    // Kernel network state of this boot, which a reboot must not keep.
    lab.sh(
        "w2",
        "ip addr add 192.0.2.7/32 dev eth0 && ip link add labtest type veth peer name labtest2",
    );
    let mac = lab.sh("w2", "cat /sys/class/net/eth0/address");
    let boot = lab.sh("w2", "cat /proc/sys/kernel/random/boot_id");
    let out = lab.run(&["lab", "reboot", "w2"]);
    assert!(out.status.success(), "{}", describe("lab reboot w2", &out));
    assert!(
        text(&out.stdout).contains("w2    rebooted: running"),
        "{}",
        text(&out.stdout)
    );
    assert_ne!(lab.sh("w2", "cat /proc/sys/kernel/random/boot_id"), boot);
    assert_eq!(lab.sh("w2", "cat /root/marker"), "kept\n");
    let links = lab.sh("w2", "ip -o addr; ip -o link");
    assert!(
        !links.contains("192.0.2.7") && !links.contains("labtest"),
        "the last boot's network state survived: {links}"
    );
    assert_eq!(
        lab.sh("w2", "cat /sys/class/net/eth0/address"),
        mac,
        "the same NIC"
    );
    assert_eq!(ino(&upper), upper_ino, "the same upper directory");
    assert_eq!(supervisors(&lab), sups, "the same supervisors");
    let out = lab.run(&["lab", "reboot", "wan"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        describe("reboot wan", &out)
    );
    assert!(
        text(&out.stderr).contains("light host"),
        "{}",
        describe("reboot wan", &out)
    );

    // down leaves nothing: processes, namespaces, links, mounts, cgroups, sysctls, files.
    let leaders: Vec<Proc> = sups
        .iter()
        .map(|(h, _)| Proc::of(leader_pid(h, &lab)).expect("leader"))
        .collect();
    let leaders: Vec<(String, Proc)> = leaders
        .into_iter()
        .map(|p| ("leader".to_string(), p))
        .collect();
    let mut netns = host_netns(&lab.all_procs());
    netns.extend(host_netns(&sups));
    netns.extend(host_netns(&leaders));
    let mut procs = lab.all_procs();
    procs.extend(sups.clone());
    procs.extend(leaders);
    let t0 = Instant::now();
    lab.down();
    eprintln!("systemd lab down in {:?}", t0.elapsed());
    assert_gone(&lab, &procs, &netns, &before);
}

/// The host's PID 1 as seen from here (from `lab status`).
fn leader_pid(host: &str, lab: &Lab) -> i32 {
    let out = lab.run(&["lab", "status"]);
    let s = text(&out.stdout);
    s.lines()
        .find(|l| l.trim_start().starts_with(&format!("{host} ")) && l.contains("PID 1 pid"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no PID 1 of {host} in\n{s}"))
}

#[test]
#[ignore = "needs root: run with --include-ignored (CI does)"]
fn apply_converges_on_systemd_hosts_with_packages_from_the_mirror() {
    let _g = serial();
    let lab = Lab::new(TestLab::SystemdApply);
    lab.up_with(3, &["--kind", "systemd", "--network", "ifupdown"]);
    let inv = "lab/cluster.yaml";
    // The head first: its packages, then apply, so that it serves DHCP, DNS and NAT.
    install_from_mirror(&lab, "head", "dnsmasq iptables");
    let out = lab.run(&["-v", "apply", "-i", inv, "--nodes", "head"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        describe("apply head", &out)
    );
    // Workers now get their reserved address; they install through the head's NAT and DNS.
    for i in 1..=3u8 {
        let w = format!("w{i}");
        let ip = lab.lan_ip(10 + i);
        wait_for_lease(&lab, &w, &ip, 60);
        install_from_mirror(&lab, &w, "iptables");
    }
    let out = lab.run(&["-v", "apply", "-i", inv]);
    assert_eq!(out.status.code(), Some(0), "{}", describe("apply", &out));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("failed=0 unreachable=0"), "{stdout}");
    let out = lab.run(&["apply", "-i", inv]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        describe("second apply", &out)
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("ok=4 changed=0 failed=0 unreachable=0"),
        "{stdout}"
    );
    // A worker reaches the wan host through the head's NAT.
    lab.sh("w1", "ping -c 1 -W 2 198.18.31.1 >/dev/null");
    lab.down();
}

/// Issue #10: fresh systemd hosts with nothing installed. One apply installs
/// what each node lacks from the wan host's mirror (the head first; the
/// workers through the head's NAT and DNS) and converges; a second apply runs
/// no package command and changes nothing. With --skip-packages, apply names
/// the missing packages and changes nothing.
#[test]
#[ignore = "needs root: run with --include-ignored (CI does)"]
fn one_apply_installs_what_fresh_systemd_hosts_lack_and_converges() {
    let _g = serial();
    let lab = Lab::new(TestLab::FreshSystemd);
    let up = lab.up_with(2, &["--kind", "systemd", "--network", "ifupdown"]);
    assert!(up.status.success(), "{}", describe("lab up", &up));
    // The inventory as a new user makes it: `init` with flags (no upstream
    // resolvers: the head's own are used, and the workers' packages come
    // through them), then `add-node` per worker.
    let inv = "lab/fresh.yaml";
    let init = lab.run(&[
        "init",
        "-o",
        inv,
        "--yes",
        "--name",
        "lab",
        "--domain",
        "lab.cluster",
        "--head",
        "root@198.18.35.2",
        "--wan-iface",
        "eth0",
        "--lan-iface",
        "eth1",
        "--lan",
        "10.78.35.0/24",
        "--dhcp-range",
        "10.78.35.100-10.78.35.200",
    ]);
    assert!(init.status.success(), "{}", describe("init", &init));
    // What the user adds by hand: how to reach the nodes (the lab's keys),
    // and no NFS (this kernel has none).
    let path = lab.dir.path().join(inv);
    let yaml = fs::read_to_string(&path)
        .unwrap()
        .replace("  enabled: true", "  enabled: false");
    fs::write(
        &path,
        yaml + "\nssh:\n  config: ssh_config\n  known_hosts: known_hosts\n  identity: id_ed25519\n",
    )
    .unwrap();
    let lab_inv = fs::read_to_string(lab.dir.path().join("lab/cluster.yaml")).unwrap();
    for (w, host) in [("w1", 11u8), ("w2", 12)] {
        let mac = lab_inv
            .lines()
            .skip_while(|l| !l.contains(&format!("name: {w}")))
            .find_map(|l| l.trim().strip_prefix("mac: "))
            .unwrap()
            .trim_matches('"')
            .to_string();
        let ip = lab.lan_ip(host);
        let out = lab.run(&[
            "add-node",
            "-i",
            inv,
            w,
            "--mac",
            &mac,
            "--ip",
            &ip,
            "--no-apply",
        ]);
        assert!(out.status.success(), "{}", describe("add-node", &out));
    }

    let out = lab.run(&["apply", "-i", inv, "--nodes", "head", "--skip-packages"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe("apply", &out));
    assert!(
        text(&out.stdout).contains(
            "missing package(s) iptables, iptables-persistent, dnsmasq, chrony on head (--skip-packages"
        ),
        "{}",
        describe("apply --skip-packages", &out)
    );
    let out = lab.run(&["diff", "-i", inv, "--nodes", "head"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe("diff", &out));
    assert!(
        text(&out.stdout)
            .contains("==> head: install: iptables iptables-persistent dnsmasq chrony\n"),
        "{}",
        describe("diff", &out)
    );
    assert!(
        text(&out.stdout).contains(
            "==> head: note: no upstream_dns in the inventory: dnsmasq forwards to the head's own resolvers (198.18.35.1)"
        ),
        "{}",
        describe("diff", &out)
    );

    let out = lab.run(&["-v", "apply", "-i", inv]);
    assert_eq!(out.status.code(), Some(0), "{}", describe("apply", &out));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("failed=0 unreachable=0"), "{stdout}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("head: installed iptables iptables-persistent dnsmasq chrony"),
        "{stderr}"
    );
    for w in ["w1", "w2"] {
        assert!(
            stderr.contains(&format!(
                "{w}: installed chrony iptables iptables-persistent"
            )),
            "{stderr}"
        );
        lab.sh(w, "dpkg-query -W iptables-persistent >/dev/null");
    }
    // dnsmasq runs with clusterctl's configuration, not the package's default.
    let running = lab.sh(
        "head",
        "systemctl is-active dnsmasq; systemctl is-enabled dnsmasq",
    );
    assert_eq!(running, "active\nenabled\n");
    // One clock: chrony from the mirror, the head the workers' only source.
    one_clock(&lab, inv, "after apply");

    let out = lab.run(&["apply", "-i", inv]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        describe("second apply", &out)
    );
    assert!(
        text(&out.stdout).contains("ok=3 changed=0 failed=0 unreachable=0"),
        "{}",
        describe("second apply", &out)
    );
    assert!(!text(&out.stderr).contains("installed"));
    // A worker reaches the wan host through the head's NAT.
    lab.sh("w1", "ping -c 1 -W 2 198.18.35.1 >/dev/null");

    // Reboot everything: without another apply, the cluster is back as
    // apply left it (firewall and NAT loaded at boot, forwarding on,
    // dnsmasq enabled and serving leases and names).
    let out = lab.run(&["lab", "reboot", "all"]);
    assert!(out.status.success(), "{}", describe("lab reboot all", &out));
    let fw = lab.sh("head", "iptables -S INPUT; iptables -t nat -S POSTROUTING");
    assert!(fw.contains("-P INPUT DROP"), "{fw}");
    assert!(fw.contains("-j MASQUERADE"), "{fw}");
    assert_eq!(lab.sh("head", "cat /proc/sys/net/ipv4/ip_forward"), "1\n");
    assert_eq!(lab.sh("head", "systemctl is-active dnsmasq"), "active\n");
    for (w, host) in [("w1", 11u8), ("w2", 12)] {
        let ip = lab.lan_ip(host);
        wait_for_lease(&lab, w, &ip, 60);
        let fw = lab.sh(w, "iptables -S INPUT");
        assert!(fw.contains("-P INPUT DROP"), "{w}: {fw}");
    }
    let names = lab.sh("w1", "getent hosts w2.lab.cluster");
    assert!(names.contains(&lab.lan_ip(12)), "{names}");
    // A name only the wan host serves, through the head's own resolver.
    let outside = lab.sh("w1", "getent hosts deb.internet.test");
    assert!(outside.contains("198.18.35.1"), "{outside}");
    assert_eq!(lab.sh("w1", "hostname"), "w1\n");
    lab.sh("w1", "ping -c 1 -W 2 198.18.35.1 >/dev/null");
    // chrony is enabled at boot: the same clock with no apply.
    one_clock(&lab, inv, "after reboot");
    let out = lab.run(&["diff", "-i", inv]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        describe("diff after reboot", &out)
    );
    // A worker whose chronyd is stopped fails verify's time check.
    lab.sh("w2", "systemctl stop chrony");
    let out = lab.run(&["-v", "verify", "-i", inv]);
    assert_eq!(out.status.code(), Some(1), "{}", describe("verify", &out));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("w2 time: chronyd not answering"),
        "{stdout}"
    );
    lab.down();
}

/// chrony runs on every node (the lab's drop-in: `-x`, the clock untouched),
/// enabled at boot, no other time daemon active, each worker's selected
/// source the head, and verify's `time` ok on every node.
fn one_clock(lab: &Lab, inv: &str, when: &str) {
    let head_ip = lab.lan_ip(1);
    for n in ["head", "w1", "w2"] {
        let state = lab.sh(
            n,
            "systemctl is-active chrony; systemctl is-enabled chrony; \
             systemctl is-active systemd-timesyncd || true",
        );
        assert!(
            state.starts_with("active\nenabled\n") && !state.ends_with("\nactive\n"),
            "{when}: {n}: {state}"
        );
    }
    for w in ["w1", "w2"] {
        let mut sel = String::new();
        for _ in 0..30 {
            sel = lab.sh(
                w,
                "chronyc -n sources | awk '$1 == \"^*\" {print $2}'; chronyc -n sources | grep -c '^\\^' || true",
            );
            if sel.starts_with(&format!("{head_ip}\n")) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
        assert_eq!(
            sel,
            format!("{head_ip}\n1\n"),
            "{when}: {w}: selected source, sources"
        );
    }
    let out = lab.run(&["-v", "verify", "-i", inv]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{when}: {}",
        describe("verify", &out)
    );
    let stdout = text(&out.stdout);
    assert!(stdout.contains("head time: "), "{when}: {stdout}");
    for w in ["w1", "w2"] {
        assert!(
            stdout.contains(&format!("{w} time: source {head_ip} (the head)")),
            "{when}: {stdout}"
        );
    }
}
