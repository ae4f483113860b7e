//! `diff` over ssh shows what apply would change and touches nothing.

use std::fs;
use std::process::Command;

use super::{describe, serial, text, Lab, TestLab};

/// Managed files on a lab host: path -> "mtime size md5" (or "missing").
pub(super) fn managed_state(lab: &Lab, host: &str, paths: &[&str]) -> Vec<String> {
    paths
        .iter()
        .map(|p| {
            lab.sh(
                host,
                &format!(
                    "if [ -e {p} ]; then stat -c '%Y %s' {p}; md5sum < {p}; else echo missing; fi"
                ),
            )
        })
        .collect()
}

pub(super) const HEAD_FILES: &[&str] = &[
    "/etc/network/interfaces.d/clusterctl",
    "/etc/sysctl.d/90-clusterctl.conf",
    "/etc/iptables/rules.v4",
    "/etc/hosts",
    "/etc/dnsmasq.d/clusterctl.conf",
    "/etc/clusterctl/hostfile.openmpi",
    "/etc/clusterctl/hostfile.mpich",
    "/etc/clustershell/groups",
    "/etc/genders",
];

#[test]
#[ignore = "needs root: run with --include-ignored (CI does)"]
fn diff_over_ssh_shows_changes_and_touches_nothing() {
    let _g = serial();
    let lab = Lab::new(TestLab::Diff);
    lab.up(1);
    let inv = "lab/cluster.yaml";
    let before = managed_state(&lab, "head", HEAD_FILES);
    let w1_before = managed_state(&lab, "w1", &["/etc/hosts", "/etc/iptables/rules.v4"]);

    // A fresh lab: the head has everything to create; w1 has no address yet.
    let out = lab.run(&["-v", "diff", "-i", inv]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{}", describe("diff", &out));
    assert!(
        stdout.contains("==> head: /etc/dnsmasq.d/clusterctl.conf (create)\n--- /dev/null\n"),
        "{stdout}"
    );
    assert!(stdout.contains("==> head: /etc/hosts (update)"), "{stdout}");
    assert!(
        stdout.contains("==> head: would restart dnsmasq (step head-dnsmasq)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("head: 9 to change, 1 in sync (1 round trip(s))"),
        "{stdout}"
    );
    assert!(stdout.contains("w1: unreachable: "), "{stdout}");

    // Only the head: changes pending, exit 2.
    let out = lab.run(&["diff", "-i", inv, "--nodes", "head"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        describe("diff --nodes head", &out)
    );
    let out = lab.run(&["apply", "--dry-run", "-i", inv, "--nodes", "head"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        describe("apply --dry-run", &out)
    );

    // Nothing on any host changed (content, size, mtime).
    assert_eq!(managed_state(&lab, "head", HEAD_FILES), before);
    assert_eq!(
        managed_state(&lab, "w1", &["/etc/hosts", "/etc/iptables/rules.v4"]),
        w1_before
    );

    // Put the rendered files in place by hand: diff then finds the head in sync.
    let out = lab.run(&["render", "-i", inv, "--node", "head", "--out", "rendered"]);
    assert!(out.status.success(), "{}", describe("render", &out));
    let tree = lab.dir.path().join("rendered/head");
    for p in HEAD_FILES {
        let content = fs::read_to_string(tree.join(p.trim_start_matches('/'))).unwrap();
        let op = if *p == "/etc/hosts" { ">>" } else { ">" };
        let mut cmd = lab.cmd(&[
            "lab",
            "exec",
            "head",
            "--",
            "sh",
            "-c",
            &format!(
                "mkdir -p \"$(dirname {p})\" && cat {op} {p} && chmod {} {p}",
                if p.contains("iptables") { "640" } else { "644" }
            ),
        ]);
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(content.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "writing {p}");
    }
    let out = lab.run(&["diff", "-i", inv, "--nodes", "head"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        describe("diff in sync", &out)
    );
    assert_eq!(text(&out.stdout), "head: 0 to change, 10 in sync\n");

    // With addresses (by hand), the worker is reached through the head.
    lab.sh(
        "head",
        &format!(
            "ip addr add {}/24 dev eth1 2>/dev/null || true",
            lab.lan_ip(1)
        ),
    );
    lab.sh("w1", &format!("ip addr add {}/24 dev eth0", lab.lan_ip(11)));
    let out = lab.run(&["diff", "-i", inv, "--nodes", "w1"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe("diff w1", &out));
    assert!(text(&out.stdout).contains("==> w1: /etc/iptables/rules.v4 (create)"));
    assert_eq!(
        managed_state(&lab, "w1", &["/etc/hosts", "/etc/iptables/rules.v4"]),
        w1_before
    );

    // No ssh master outlives the run.
    let masters = Command::new("pgrep")
        .args(["-f", "ControlPath=.*clusterctl-"])
        .output()
        .unwrap();
    assert!(
        text(&masters.stdout).trim().is_empty(),
        "ssh masters left: {}",
        text(&masters.stdout)
    );
    lab.down();
}

/// Every `==> NODE: PATH (ACTION)` header of a diff, sorted.
pub(super) fn diff_headers(stdout: &str) -> Vec<String> {
    let mut v: Vec<String> = stdout
        .lines()
        .filter(|l| l.starts_with("==> ") && l.ends_with(')') && !l.contains(" would "))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}
