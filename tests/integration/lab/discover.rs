//! `clusterctl discover` (issue #21, in part) on a lab whose head already
//! runs: two workers the inventory does not list are powered on one after
//! the other, take addresses from the head's pool, and are listed in that
//! order, with their addresses and the names they sent; the listed workers
//! are not.

use std::time::{Duration, Instant};

use super::{describe, serial, text, Lab, TestLab};

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

#[test]
#[ignore = "needs root: run with --include-ignored (CI does)"]
fn discover_lists_unlisted_workers_in_the_order_they_asked() {
    let _g = serial();
    let lab = Lab::new(TestLab::Discover);
    lab.up(3);
    let inv = "lab/cluster.yaml";
    let w2 = lab.drop_worker(inv, "w2");
    let w3 = lab.drop_worker(inv, "w3");
    for w in ["w2", "w3"] {
        lab.sh(w, "kill $(cat /run/dhclient.eth0.pid)");
    }
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
