//! Nodes that join while they run (issue #21), on a lab whose head already
//! runs: two workers the inventory does not list are powered on one after
//! the other and take addresses from the head's pool. `discover` lists them
//! in that order (and not the listed workers); `add-node --from-leases
//! --watch` names the first as it appears (Ctrl-C before: nothing
//! written); `add-node NAME --mac` adds the second; one apply moves both
//! onto their reservations; changing a worker's `ip` moves it again in one
//! apply, its host key carried over to the new address.

use std::process::Stdio;
use std::time::{Duration, Instant};

use super::{describe, serial, text, wait_for_lease, Lab, TestLab};

/// `discover --output json`'s MACs and addresses.
fn discovered(lab: &Lab, inv: &str) -> Vec<(String, String, Option<String>)> {
    let out = lab.run(&["discover", "-i", inv, "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe("discover", &out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["discovered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["mac"].as_str().unwrap().to_string(),
                d["ip"].as_str().unwrap().to_string(),
                d["hostname"].as_str().map(String::from),
            )
        })
        .collect()
}

/// Start `host`'s DHCP client and wait until `discover` lists `mac`.
fn power_on(lab: &Lab, inv: &str, host: &str, mac: &str) {
    lab.sh(
        host,
        "dhclient -4 -nw -pf /run/dhclient.eth0.pid -lf /var/lib/dhcp/dhclient.eth0.leases eth0",
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !discovered(lab, inv).iter().any(|d| d.0 == mac) {
        assert!(
            Instant::now() < deadline,
            "{host} ({mac}) never took a lease"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Take `hosts` out of the inventory (they keep running) and stop their
/// DHCP clients, as if switched off: their MACs.
fn switched_off(lab: &Lab, inv: &str, hosts: &[&str]) -> Vec<String> {
    hosts
        .iter()
        .map(|w| {
            let mac = lab.drop_worker(inv, w);
            lab.sh(w, "kill $(cat /run/dhclient.eth0.pid)");
            mac
        })
        .collect()
}

/// New machines: nothing in the lab's known_hosts names these addresses.
fn forget_host_keys(lab: &Lab, lasts: &[u8]) {
    let kh = lab.dir.path().join("lab/known_hosts");
    for last in lasts {
        let out = std::process::Command::new("ssh-keygen")
            .args(["-R", &lab.lan_ip(*last), "-f"])
            .arg(&kh)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", describe("ssh-keygen -R", &out));
    }
}

#[test]
#[ignore = "needs root: run with --include-ignored (CI does)"]
fn discover_lists_unlisted_workers_in_the_order_they_asked() {
    let _g = serial();
    let lab = Lab::new(TestLab::Discover);
    lab.up(3);
    let inv = "lab/cluster.yaml";
    let [w2, w3]: [String; 2] = switched_off(&lab, inv, &["w2", "w3"]).try_into().unwrap();
    let out = lab.run(&["apply", "-i", inv, "--wait", "60"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe("apply", &out));
    let out = lab.run(&["discover", "-i", inv]);
    assert_eq!(
        text(&out.stdout),
        "no machine outside the inventory holds a lease from the head's pool\n",
        "{}",
        describe("discover", &out)
    );

    // w3 boots first, then w2: discover follows the boot order.
    power_on(&lab, inv, "w3", &w3);
    std::thread::sleep(Duration::from_millis(1100));
    power_on(&lab, inv, "w2", &w2);
    let found = discovered(&lab, inv);
    let macs: Vec<&str> = found.iter().map(|d| d.0.as_str()).collect();
    assert_eq!(macs, [w3.as_str(), w2.as_str()], "{found:?}");
    for (d, host) in found.iter().zip(["w3", "w2"]) {
        let addr = lab.sh(host, "ip -4 -o addr show dev eth0");
        assert!(
            addr.contains(&format!(" {}/", d.1)),
            "{host}: {addr} / {d:?}"
        );
        if let Some(name) = &d.2 {
            assert_eq!(name, host, "the name it sent");
        }
    }
    let out = lab.run(&["discover", "-i", inv]);
    let table = text(&out.stdout);
    assert!(table.starts_with("MAC "), "{table}");
    assert!(
        table.contains(&w3) && table.contains("locally administered"),
        "{table}"
    );
    lab.down();
}

/// Run `add-node ARGS` in the background (for `--watch`).
fn spawn(lab: &Lab, args: &[&str]) -> std::process::Child {
    lab.cmd(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start clusterctl")
}

/// Wait (at most a minute) for a background command; its output.
fn finish(child: std::process::Child) -> std::process::Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            let _ = std::process::Command::new("kill")
                .arg(pid.to_string())
                .status();
            panic!("clusterctl (pid {pid}) did not finish within 60s");
        }
    }
}

/// The address `host` holds on eth0.
pub(crate) fn held(lab: &Lab, host: &str) -> String {
    let out = lab.sh(host, "ip -4 -o addr show dev eth0 | awk '{ print $4 }'");
    out.trim().to_string()
}

/// Replace `node`'s `ip:` line in the inventory.
pub(crate) fn set_ip(lab: &Lab, inv: &str, node: &str, ip: &str) {
    let path = lab.dir.path().join(inv);
    let yaml = std::fs::read_to_string(&path).unwrap();
    let at = yaml.find(&format!("name: \"{node}\"\n")).expect("entry");
    let ip_at = at + yaml[at..].find("    ip: ").expect("ip line");
    let end = ip_at + yaml[ip_at..].find('\n').unwrap();
    let new = format!("{}    ip: {ip}{}", &yaml[..ip_at], &yaml[end..]);
    std::fs::write(&path, new).unwrap();
}

#[test]
#[ignore = "needs root: run with --include-ignored (CI does)"]
fn running_workers_join_from_the_leases_and_move_onto_their_reservations() {
    let _g = serial();
    let lab = Lab::new(TestLab::Join);
    lab.up(3);
    let inv = "lab/cluster.yaml";
    let [w2, w3]: [String; 2] = switched_off(&lab, inv, &["w2", "w3"]).try_into().unwrap();
    forget_host_keys(&lab, &[12, 13]);
    let out = lab.run(&["apply", "-i", inv, "--wait", "60"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe("apply", &out));
    let before = std::fs::read_to_string(lab.dir.path().join(inv)).unwrap();
    let watch = [
        "add-node",
        "-i",
        inv,
        "--from-leases",
        "node1",
        "--watch",
        "--no-apply",
    ];

    // Without --watch, too few machines is an error; with it, Ctrl-C
    // leaves the inventory as it was.
    let out = lab.run(&[
        "add-node",
        "-i",
        inv,
        "--from-leases",
        "node1",
        "--no-apply",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", describe("add-node", &out));
    assert!(
        text(&out.stderr)
            .contains("--from-leases names 1 machine(s) but 0 outside the inventory hold a lease"),
        "{}",
        describe("add-node", &out)
    );
    let child = spawn(&lab, &watch);
    std::thread::sleep(Duration::from_secs(3));
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let out = finish(child);
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        describe("add-node --watch", &out)
    );
    assert!(
        text(&out.stderr)
            .contains("waiting for 1 new machine(s) to ask the head for a lease: 0 so far"),
        "{}",
        describe("add-node --watch", &out)
    );
    assert_eq!(
        std::fs::read_to_string(lab.dir.path().join(inv)).unwrap(),
        before
    );

    // --watch names w3 as soon as it asks.
    let child = spawn(&lab, &watch);
    power_on(&lab, inv, "w3", &w3);
    let out = finish(child);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        describe("add-node --watch", &out)
    );
    let yaml = std::fs::read_to_string(lab.dir.path().join(inv)).unwrap();
    assert!(
        yaml.contains(&format!("  - name: \"node1\"\n    mac: \"{w3}\"\n    ip: ")),
        "{yaml}"
    );

    // w2 is added by its MAC; both run on pool addresses until one apply
    // moves them (their host keys trusted on first contact, as asked).
    power_on(&lab, inv, "w2", &w2);
    let pool = [held(&lab, "w3"), held(&lab, "w2")];
    let out = lab.run(&[
        "add-node",
        "-i",
        inv,
        "node2",
        "--mac",
        &w2,
        "--accept-new-host-keys",
        "--wait",
        "60",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        describe("add-node node2", &out)
    );
    let stderr = text(&out.stderr);
    let (ip1, ip2) = (lab.lan_ip(12), lab.lan_ip(13));
    for (node, pool, ip) in [("node1", &pool[0], &ip1), ("node2", &pool[1], &ip2)] {
        let held = pool.trim_end_matches("/24");
        let line = format!(
            "{node}: holds {held} from the head's DHCP, not its reservation {ip}: asked dhclient on eth0 to renew"
        );
        assert!(stderr.contains(&line), "{line}\n{stderr}");
    }
    assert!(
        yaml.contains(&format!("    ip: {ip1}\n")),
        "node1 got {ip1}: {yaml}"
    );
    assert_eq!(held(&lab, "w3"), format!("{ip1}/24"), "was {pool:?}");
    assert_eq!(held(&lab, "w2"), format!("{ip2}/24"), "was {pool:?}");
    let out = lab.run(&["discover", "-i", inv]);
    assert!(
        text(&out.stdout).starts_with("no machine outside the inventory"),
        "{}",
        describe("discover", &out)
    );
    let out = lab.run(&["apply", "-i", inv]);
    assert!(
        text(&out.stdout).contains("ok=4 changed=0 failed=0 unreachable=0"),
        "{}",
        describe("second apply", &out)
    );

    // A new `ip` for node1: one apply moves it, its known key carried to
    // the new address (no --accept-new-host-keys), checked there again.
    let ip9 = lab.lan_ip(60);
    set_ip(&lab, inv, "node1", &ip9);
    let out = lab.run(&["apply", "-i", inv, "--wait", "60"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        describe("apply new ip", &out)
    );
    let stderr = text(&out.stderr);
    for line in [
        format!("node1: its host key, known for {ip1} (its address until now), recorded for {ip9}"),
        format!("node1: holds {ip1} from the head's DHCP, not its reservation {ip9}: asked dhclient on eth0 to renew"),
    ] {
        assert!(stderr.contains(&line), "{line}\n{stderr}");
    }
    assert_eq!(held(&lab, "w3"), format!("{ip9}/24"));
    let out = lab.run(&["verify", "-i", inv]);
    assert_eq!(out.status.code(), Some(0), "{}", describe("verify", &out));
    let hosts = lab.sh("w1", "getent hosts node1.lab.cluster node2.lab.cluster");
    assert!(hosts.contains(&ip9) && hosts.contains(&ip2), "{hosts}");
    lab.down();
}

/// The MACs `add-node --from-leases` named, in the inventory: name -> (MAC, ip).
fn entry(yaml: &str, name: &str) -> (String, String) {
    let at = yaml
        .find(&format!("  - name: \"{name}\"\n"))
        .expect("entry");
    let mut mac = String::new();
    let mut ip = String::new();
    for l in yaml[at..]
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("    "))
    {
        if let Some(m) = l.trim().strip_prefix("mac: ") {
            mac = m.trim_matches('"').to_string();
        }
        if let Some(i) = l.trim().strip_prefix("ip: ") {
            ip = i.to_string();
        }
    }
    (mac, ip)
}

/// The same on systemd hosts, one worker per network stack of a Debian
/// install (ifupdown, systemd-networkd, NetworkManager): they boot before
/// the inventory lists them; `add-node --from-leases` names them in
/// `discover`'s order; one apply moves each onto its reservation with its
/// own DHCP client (the ifupdown worker's interface is not yet in an
/// ifupdown file: the lab's stand-in dhclient runs it); after a reboot
/// (ifupdown now runs the ifupdown worker's interface) a new `ip` for every
/// one of them moves them all again in one apply; `diff` is clean and
/// `verify` passes.
#[test]
#[ignore = "needs root: run with --include-ignored (CI does)"]
fn running_workers_on_every_stack_join_and_move_with_their_own_dhcp_client() {
    let _g = serial();
    let lab = Lab::new(TestLab::JoinStacks);
    lab.up_with(
        4,
        &[
            "--kind",
            "systemd",
            "--network",
            "ifupdown,ifupdown,networkd,networkmanager",
        ],
    );
    let inv = "lab/cluster.yaml";
    let hosts = ["w2", "w3", "w4"];
    let macs: Vec<String> = hosts.iter().map(|w| lab.drop_worker(inv, w)).collect();
    forget_host_keys(&lab, &[12, 13, 14]);
    let out = lab.run(&["apply", "-i", inv]);
    assert_eq!(out.status.code(), Some(0), "{}", describe("apply", &out));

    // Every unlisted worker gets a pool lease from the head once it runs.
    let deadline = Instant::now() + Duration::from_secs(240);
    let found = loop {
        let found = discovered(&lab, inv);
        if found.len() == 3 || Instant::now() > deadline {
            break found;
        }
        std::thread::sleep(Duration::from_secs(2));
    };
    let mut listed: Vec<String> = found.iter().map(|d| d.0.clone()).collect();
    listed.sort();
    let mut want = macs.clone();
    want.sort();
    assert_eq!(listed, want, "{found:?}");

    let out = lab.run(&[
        "add-node",
        "-i",
        inv,
        "--from-leases",
        "node[1-3]",
        "--accept-new-host-keys",
        "--wait",
        "180",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe("add-node", &out));
    let moved_by = |stderr: &str, clients: [&str; 3]| {
        for client in clients {
            assert!(
                stderr.contains(&format!("asked {client} on eth0 to renew")),
                "{client}: {stderr}"
            );
        }
    };
    moved_by(
        &text(&out.stderr),
        ["dhclient", "networkd", "networkmanager"],
    );
    // The DHCP client the move restarted outlives the move's own unit
    // (it would stop renewing otherwise).
    let dhclient_runs = || lab.sh("w2", "pgrep -x dhclient");
    dhclient_runs();
    // The names follow discover's order; each worker holds its reservation.
    let yaml = std::fs::read_to_string(lab.dir.path().join(inv)).unwrap();
    let mut name_of = std::collections::BTreeMap::new();
    for (i, d) in found.iter().enumerate() {
        let name = format!("node{}", i + 1);
        let (mac, ip) = entry(&yaml, &name);
        assert_eq!(mac, d.0, "{name}: {yaml}");
        let host = hosts[macs.iter().position(|m| *m == mac).unwrap()];
        assert_eq!(held(&lab, host), format!("{ip}/24"), "{host} ({name})");
        name_of.insert(host, (name, ip));
    }
    let out = lab.run(&["apply", "-i", inv]);
    assert!(
        text(&out.stdout).contains("ok=5 changed=0 failed=0 unreachable=0"),
        "{}",
        describe("second apply", &out)
    );

    // After a reboot, a new address for each: one apply moves them all.
    let out = lab.run(&["lab", "reboot", "all"]);
    assert!(out.status.success(), "{}", describe("lab reboot all", &out));
    let mut moved = Vec::new();
    for (host, last) in [("w2", 70), ("w3", 71), ("w4", 72)] {
        // Running again, on its reservation, before the inventory moves it.
        let (name, old) = &name_of[host];
        wait_for_lease(&lab, host, old, 120);
        let ip = lab.lan_ip(last);
        set_ip(&lab, inv, name, &ip);
        moved.push((host, ip));
    }
    let out = lab.run(&["apply", "-i", inv, "--wait", "180"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        describe("apply new ips", &out)
    );
    moved_by(
        &text(&out.stderr),
        ["ifupdown", "networkd", "networkmanager"],
    );
    for (host, ip) in &moved {
        assert_eq!(held(&lab, host), format!("{ip}/24"), "{host}");
    }
    dhclient_runs();
    let out = lab.run(&["diff", "-i", inv]);
    assert_eq!(out.status.code(), Some(0), "{}", describe("diff", &out));
    let out = lab.run(&["verify", "-i", inv]);
    assert_eq!(out.status.code(), Some(0), "{}", describe("verify", &out));
    lab.down();
}
