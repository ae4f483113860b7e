//! A lab's life on this machine: up and down leave nothing behind, hosts are
//! isolated, up converges to the worker count, a routed subnet or a missing
//! root is refused, and a /22 LAN holds more than 89 light workers.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::{assert_gone, describe, host_netns, serial, snapshot, text, Lab, TestLab};

#[test]
#[ignore = "needs root: run with --include-ignored (CI does)"]
fn up_then_down_leaves_the_machine_as_before() {
    let _g = serial();
    let before = snapshot();
    let lab = Lab::new(TestLab::UpDown);
    let t0 = Instant::now();
    let out = lab.up(3);
    eprintln!("3 workers up in {:?}", t0.elapsed());
    let s = text(&out.stdout);
    assert!(s.contains("w3") && s.contains("inventory:"), "{s}");
    let st = lab.run(&["lab", "status"]);
    assert!(st.status.success(), "{}", describe("status", &st));

    let inits = lab.all_procs();
    let names: Vec<_> = inits.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["wan", "head", "w1", "w2", "w3", "bridges"]);
    let netns = host_netns(&inits);
    assert_eq!(
        netns.len(),
        6,
        "every host and the bridges have their own netns"
    );
    let mine = fs::read_link("/proc/self/ns/net")
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(!netns.contains(&mine));
    // The only link in the root namespace is the controller's veth.
    let during = snapshot();
    let added: Vec<_> = during.links.difference(&before.links).collect();
    assert_eq!(added.len(), 1, "{added:?}");
    assert!(added[0].starts_with("tupdown-ctl"), "{added:?}");
    assert_eq!(
        during.mounts, before.mounts,
        "no mount in the root namespace"
    );

    let t0 = Instant::now();
    lab.down();
    eprintln!("down in {:?}", t0.elapsed());
    assert_gone(&lab, &inits, &netns, &before);
}

#[test]
#[ignore = "needs root: run with --include-ignored (CI does)"]
fn hosts_are_isolated_from_each_other_and_the_machine() {
    let _g = serial();
    let lab = Lab::new(TestLab::Isolation);
    let hosts_before = fs::read("/etc/hosts").expect("/etc/hosts");
    let fwd_before = fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let ipt = || {
        text(
            &Command::new("iptables")
                .arg("-S")
                .output()
                .expect("iptables")
                .stdout,
        )
    };
    let ipt_before = ipt();
    lab.up(1);

    // Identity: own hostname, machine-id, host key; empty resolver.
    assert_eq!(lab.sh("head", "hostname").trim(), "head");
    assert_eq!(lab.sh("w1", "cat /etc/hostname").trim(), "w1");
    let ids: BTreeSet<String> = ["wan", "head", "w1"]
        .iter()
        .map(|h| lab.sh(h, "cat /etc/machine-id").trim().to_string())
        .chain([fs::read_to_string("/etc/machine-id")
            .unwrap_or_default()
            .trim()
            .to_string()])
        .collect();
    assert_eq!(ids.len(), 4, "machine-ids must differ: {ids:?}");
    assert!(!lab
        .sh("head", "cat /etc/resolv.conf")
        .contains("nameserver"));
    assert!(!lab.sh("w1", "cat /etc/hosts").contains("127.0.1.1"));
    // No systemd: PID 1 is the lab's reaper; sshd runs under it.
    let ps = lab.sh(
        "head",
        "cat /proc/1/cmdline | tr '\\0' ' '; echo; ps -eo comm",
    );
    assert!(ps.contains("init-host"), "{ps}");
    assert!(ps.contains("sshd"), "{ps}");
    // The machine's private places are not visible.
    let tmp = lab.dir.path().display().to_string();
    lab.sh(
        "head",
        &format!("test ! -e {tmp} && test ! -e /run/clusterctl-lab"),
    );

    // Changes on the head...
    lab.sh(
        "head",
        "echo '10.99.99.99 isolation-marker' >> /etc/hosts && \
         echo 'address=/marker/10.99.99.99' > /etc/dnsmasq.d/isolation-test.conf && \
         sysctl -qw net.ipv4.ip_forward=1 && \
         iptables -A INPUT -s 10.99.99.99 -j DROP && \
         hostname head-renamed",
    );
    assert!(lab
        .sh("head", "cat /etc/hosts")
        .contains("isolation-marker"));
    assert!(lab.sh("head", "iptables -S").contains("10.99.99.99"));
    assert_eq!(
        lab.sh("head", "cat /proc/sys/net/ipv4/ip_forward").trim(),
        "1"
    );
    // ...are not seen on another host...
    assert!(!lab.sh("w1", "cat /etc/hosts").contains("isolation-marker"));
    lab.sh("w1", "test ! -e /etc/dnsmasq.d/isolation-test.conf");
    assert!(!lab.sh("w1", "iptables -S").contains("10.99.99.99"));
    assert_eq!(
        lab.sh("w1", "cat /proc/sys/net/ipv4/ip_forward").trim(),
        fwd_before.trim()
    );
    assert_eq!(lab.sh("w1", "hostname").trim(), "w1");
    // ...nor on the machine.
    assert_eq!(fs::read("/etc/hosts").unwrap(), hosts_before);
    assert!(!Path::new("/etc/dnsmasq.d/isolation-test.conf").exists());
    assert_eq!(
        fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        fwd_before
    );
    assert_eq!(ipt(), ipt_before);
    assert_ne!(
        fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap()
            .trim(),
        "head-renamed"
    );
    // Kernel-wide sysctls are read-only in a host.
    let out = lab.exec(
        "head",
        &["sh", "-c", "echo 1 > /proc/sys/vm/overcommit_memory"],
    );
    assert!(
        !out.status.success(),
        "{}",
        describe("kernel sysctl write", &out)
    );
    lab.down();
}

#[test]
#[ignore = "needs root: run with --include-ignored (CI does)"]
fn up_is_idempotent_and_converges_to_the_worker_count() {
    let _g = serial();
    let lab = Lab::new(TestLab::Converge);
    lab.up(2);
    let first = lab.inits();
    lab.up(2);
    assert_eq!(lab.inits(), first, "a re-run changes nothing");

    lab.up(3);
    let grown = lab.inits();
    assert_eq!(&grown[..4], &first[..], "existing hosts are kept");
    assert_eq!(grown[4].0, "w3");
    let inv = fs::read_to_string(lab.lab_dir().join("cluster.yaml")).unwrap();
    assert!(inv.contains("name: w3"), "{inv}");

    lab.up(1);
    let shrunk = lab.inits();
    assert_eq!(
        &shrunk[..],
        &first[..3],
        "surplus workers removed, the rest kept"
    );
    for (name, p) in &grown[3..] {
        assert!(!p.alive(), "{name} still running");
    }
    let bridges = lab.state().bridges.expect("bridge holder recorded");
    let ports = Command::new("nsenter")
        .arg(format!("--net=/proc/{}/ns/net", bridges.pid))
        .args(["ip", "-o", "link"])
        .output()
        .expect("ip");
    let ports = text(&ports.stdout);
    assert!(
        ports.contains("w1-0") && !ports.contains("w2-0") && !ports.contains("w3-0"),
        "{ports}"
    );
    let inv = fs::read_to_string(lab.lab_dir().join("cluster.yaml")).unwrap();
    assert!(
        inv.contains("name: w1") && !inv.contains("name: w2"),
        "{inv}"
    );

    // A crashed host is restarted by the next up.
    let (_, w1) = shrunk[2];
    kill9(w1.pid);
    assert!(clusterctl::lab::state::wait_gone(&[w1], Duration::from_secs(5)).is_empty());
    let st = lab.run(&["lab", "status"]);
    assert_eq!(
        st.status.code(),
        Some(1),
        "{}",
        describe("status of a degraded lab", &st)
    );
    lab.up(1);
    let healed = lab.inits();
    assert_eq!(&healed[..2], &first[..2]);
    assert_ne!(healed[2].1, w1);
    assert_eq!(lab.sh("w1", "hostname").trim(), "w1");
    lab.down();
}

/// SIGKILL a process the lab recorded, through the `kill` command.
fn kill9(pid: i32) {
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
}

#[test]
#[ignore = "needs root: run with --include-ignored (CI does)"]
fn two_consecutive_up_down_cycles() {
    let _g = serial();
    let before = snapshot();
    let lab = Lab::new(TestLab::Cycles);
    for round in 0..2 {
        lab.up(1);
        let inits = lab.all_procs();
        let netns = host_netns(&inits);
        let out = lab.run(&["lab", "ssh", "head", "--", "hostname"]);
        assert!(
            out.status.success(),
            "round {round}: {}",
            describe("ssh head", &out)
        );
        lab.down();
        assert_gone(&lab, &inits, &netns, &before);
    }
}

#[test]
#[ignore = "needs root: run with --include-ignored (CI does)"]
fn refuses_subnets_the_machine_already_routes() {
    let _g = serial();
    let a = Lab::new(TestLab::RoutedA);
    a.up(0);
    // Lab B on the same WAN: A's route is not B's own, so B must refuse.
    let b = Lab::new(TestLab::RoutedB);
    let out = b.run(&[
        "lab",
        "up",
        "--workers",
        "0",
        "--wan",
        &a.wan,
        "--lan",
        &b.lan,
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        describe("second lab on a routed subnet", &out)
    );
    let err = text(&out.stderr);
    assert!(err.contains("already has a route"), "{err}");
    assert!(err.contains("help:"), "{err}");
    assert!(!Path::new("/run/clusterctl-lab/troutb").exists());
    assert!(!Path::new("/sys/class/net/troutb-ctl").exists());
    a.down();
}

#[test]
#[ignore = "needs root: run with --include-ignored (CI does)"]
fn without_root_lab_says_so_in_one_line() {
    let _g = serial();
    let lab = Lab::new(TestLab::NoRoot);
    // Let an unprivileged user run the private copy of the binary.
    fs::set_permissions(lab.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&lab.bin)
        .args(["lab", "up"])
        .current_dir("/")
        .output()
        .expect("setpriv");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        describe("lab up as nobody", &out)
    );
    let err = text(&out.stderr);
    assert!(err.starts_with("error: lab: the lab needs root"), "{err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );
}

#[test]
#[ignore = "needs root: run with --include-ignored (CI does)"]
fn a_22_lan_holds_more_than_89_light_workers_and_up_says_the_memory_first() {
    let _g = serial();
    let before = snapshot();
    let lab = Lab::new(TestLab::BigLan);
    let t0 = Instant::now();
    // Under flock(1), as scripts do: the hosts must not inherit its lock.
    let lock = lab.dir.path().join("caller.lock");
    let mut cmd = Command::new("flock");
    cmd.arg(&lock)
        .arg(&lab.bin)
        .args([
            "lab",
            "up",
            "--workers",
            "120",
            "--wan",
            &lab.wan,
            "--lan",
            &lab.lan,
        ])
        .env("CLUSTERCTL_LAB_PREFIX", &lab.prefix)
        .current_dir(lab.dir.path());
    let out = cmd.output().expect("flock lab up");
    assert!(out.status.success(), "{}", describe("flock lab up", &out));
    eprintln!("120 light workers up in {:?}", t0.elapsed());
    let free = Command::new("flock")
        .args(["-n"])
        .arg(&lock)
        .arg("true")
        .status()
        .expect("flock -n");
    assert!(free.success(), "a lab host kept the caller's lock");
    let s = text(&out.stdout);
    let first = s.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("lab tbig: starting 122 hosts; expecting about ")
            && first.contains(" MiB of memory"),
        "{s}"
    );
    assert!(
        s.contains("w120  via head; MAC 02:") && s.contains("gets 10.79.32.130 from"),
        "{s}"
    );
    let inv = fs::read_to_string(lab.lab_dir().join("cluster.yaml")).expect("inventory");
    assert!(
        inv.contains("dhcp_range: 10.79.35.100-10.79.35.200"),
        "{inv}"
    );
    let out = lab.run(&["check", "-i", "lab/cluster.yaml"]);
    assert!(out.status.success(), "{}", describe("check", &out));
    assert_eq!(lab.sh("w120", "hostname"), "w120\n");
    // The light kind has the machine's network stack: no --network.
    let out = lab.run(&["lab", "up", "--network", "networkmanager"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        describe("up --network", &out)
    );
    assert!(
        text(&out.stderr).contains("help: add --kind systemd"),
        "{}",
        describe("up --network", &out)
    );
    let inits = lab.all_procs();
    let netns = host_netns(&inits);
    lab.down();
    assert_gone(&lab, &inits, &netns, &before);
}
