//! Reaching a light lab's hosts: ssh to the head and through it, DHCP from
//! the head, and the inventory `lab up` writes for apply.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use super::{describe, serial, text, Lab, TestLab};

#[test]
#[ignore = "needs root: run with --include-ignored (CI does)"]
fn ssh_to_head_directly_and_to_a_worker_through_it() {
    let _g = serial();
    let lab = Lab::new(TestLab::Ssh);
    lab.up(1);
    let out = lab.run(&["lab", "ssh", "head", "--", "hostname"]);
    assert!(out.status.success(), "{}", describe("lab ssh head", &out));
    assert_eq!(text(&out.stdout).trim(), "head");

    // Console and ssh pass the command's exit code through.
    assert_eq!(
        lab.exec("w1", &["sh", "-c", "exit 7"]).status.code(),
        Some(7)
    );
    assert_eq!(
        lab.run(&["lab", "ssh", "head", "--", "exit", "3"])
            .status
            .code(),
        Some(3)
    );

    // Workers have no address until someone gives them one (here: by hand).
    assert!(!lab.sh("w1", "ip -4 -o addr show eth0").contains("inet "));
    let head_lan = lab.lan_ip(1);
    let w1_ip = lab.lan_ip(11);
    lab.sh("head", &format!("ip addr add {head_lan}/24 dev eth1"));
    lab.sh("w1", &format!("ip addr add {w1_ip}/24 dev eth0"));
    let out = lab.run(&["lab", "ssh", "w1", "--", "hostname"]);
    assert!(out.status.success(), "{}", describe("lab ssh w1", &out));
    assert_eq!(text(&out.stdout).trim(), "w1");

    // The written ssh_config works on its own (as `clusterctl apply` uses it).
    let cfg = lab.lab_dir().join("ssh_config");
    let out = Command::new("ssh")
        .arg("-F")
        .arg(&cfg)
        .args(["w1", "cat", "/etc/hostname"])
        .output()
        .expect("ssh");
    assert!(
        out.status.success(),
        "{}",
        describe("ssh -F ssh_config w1", &out)
    );
    assert_eq!(text(&out.stdout).trim(), "w1");
    lab.down();
}

#[test]
#[ignore = "needs root: run with --include-ignored (CI does)"]
fn workers_get_their_address_from_a_dhcp_server_on_the_head() {
    let _g = serial();
    let lab = Lab::new(TestLab::Dhcp);
    lab.up(1);
    let inv = fs::read_to_string(lab.lab_dir().join("cluster.yaml")).unwrap();
    let mac = inv
        .lines()
        .find_map(|l| l.trim().strip_prefix("mac: "))
        .map(|m| m.trim_matches('"').to_string())
        .expect("a worker MAC in the inventory");
    let (head_lan, w1_ip) = (lab.lan_ip(1), lab.lan_ip(11));
    // What clusterctl apply will do, by hand: address eth1, configure dnsmasq,
    // start it the sysvinit way, inside the head's own mount namespace.
    lab.sh(
        "head",
        &format!(
            "ip addr add {head_lan}/24 dev eth1 && \
             printf 'interface=eth1\\nbind-interfaces\\ndhcp-range={lo},{hi},1h\\ndhcp-host={mac},w1,{w1_ip}\\n' \
             > /etc/dnsmasq.d/lab-test.conf && service dnsmasq restart",
            lo = lab.lan_ip(100),
            hi = lab.lan_ip(200)
        ),
    );
    // The worker's DHCP client has been retrying since boot; it must get the
    // reserved address within a few retry periods.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let a = lab.sh("w1", "ip -4 -o addr show eth0");
        if a.contains(&format!("{w1_ip}/")) {
            break;
        }
        assert!(Instant::now() < deadline, "w1 got no lease: {a}");
        std::thread::sleep(Duration::from_millis(500));
    }
    lab.down();
}

#[test]
#[ignore = "needs root: run with --include-ignored (CI does)"]
fn the_inventory_is_ready_for_apply() {
    let _g = serial();
    let lab = Lab::new(TestLab::Inventory);
    lab.up(2);
    let dir = lab.lab_dir();
    for f in ["cluster.yaml", "ssh_config", "known_hosts", "id_ed25519"] {
        assert!(dir.join(f).exists(), "{f} missing");
    }
    let mode = fs::metadata(dir.join("id_ed25519"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "the private key is private");

    #[derive(serde::Deserialize)]
    struct Inv {
        name: String,
        lan: Lan,
        head: Head,
        ssh: Ssh,
        workers: Vec<Worker>,
    }
    #[derive(serde::Deserialize)]
    struct Lan {
        cidr: String,
        dhcp_range: String,
        upstream_dns: Vec<String>,
    }
    #[derive(serde::Deserialize)]
    struct Head {
        ssh: String,
        lan_ip: String,
    }
    #[derive(serde::Deserialize)]
    struct Ssh {
        config: String,
        known_hosts: String,
        identity: String,
    }
    #[derive(serde::Deserialize)]
    struct Worker {
        name: String,
        mac: String,
        ip: String,
    }
    let text_inv = fs::read_to_string(dir.join("cluster.yaml")).unwrap();
    let inv: Inv =
        serde_saphyr::from_str(&text_inv).expect("inventory is YAML of the expected shape");
    assert_eq!(inv.name, "lab");
    assert_eq!(inv.lan.cidr, lab.lan);
    assert_eq!(
        inv.lan.dhcp_range,
        format!("{}-{}", lab.lan_ip(100), lab.lan_ip(200))
    );
    assert_eq!(inv.head.ssh, "root@198.18.20.2:22");
    assert_eq!(inv.head.lan_ip, lab.lan_ip(1));
    assert_eq!(
        (
            inv.ssh.config.as_str(),
            inv.ssh.known_hosts.as_str(),
            inv.ssh.identity.as_str()
        ),
        ("ssh_config", "known_hosts", "id_ed25519")
    );
    assert_eq!(inv.workers.len(), 2);
    assert_eq!(inv.workers[1].name, "w2");
    assert_eq!(inv.workers[1].ip, lab.lan_ip(12));
    let mac = &inv.workers[1].mac;
    assert!(
        mac.len() == 17 && mac.split(':').all(|b| u8::from_str_radix(b, 16).is_ok()),
        "{mac}"
    );
    // Each host really has that MAC.
    let hw = lab.sh("w2", "cat /sys/class/net/eth0/address");
    assert_eq!(hw.trim(), mac);
    // known_hosts has the head's real host key: strict checking passes.
    let out = Command::new("ssh")
        .arg("-F")
        .arg(dir.join("ssh_config"))
        .args(["head", "true"])
        .output()
        .expect("ssh");
    assert!(
        out.status.success(),
        "{}",
        describe("ssh head with strict checking", &out)
    );
    // The inventory's upstream DNS (the wan host) answers for internet.test
    // and forwards nothing anywhere.
    let dns = inv
        .lan
        .upstream_dns
        .first()
        .expect("an upstream DNS")
        .clone();
    assert_eq!(dns, "198.18.20.1");
    let got = lab.sh(
        "head",
        &format!("echo 'nameserver {dns}' > /etc/resolv.conf && getent hosts www.internet.test"),
    );
    assert!(got.starts_with(&dns), "{got}");
    let out = lab.exec("head", &["getent", "hosts", "example.com"]);
    assert!(
        !out.status.success(),
        "{}",
        describe("a name outside the lab", &out)
    );
    lab.down();
}
