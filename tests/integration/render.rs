//! Rendered files: a snapshot of `clusterctl render` for every fixture
//! inventory, the content rules (headers, no timestamps, determinism), and the
//! real validators (dnsmasq --test, iptables-restore --test) on the output.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn clusterctl() -> Command {
    let mut c = Command::cargo_bin("clusterctl").unwrap();
    c.current_dir(root()).env_remove("CLUSTERCTL_INVENTORY");
    c
}

/// Every inventory that must render: the example, the ready layouts, the good corpus.
fn fixtures() -> Vec<(String, String)> {
    let mut v = vec![("example".to_string(), "examples/cluster.yaml".to_string())];
    for dir in ["inventories", "tests/corpus/good"] {
        let mut names: Vec<_> = std::fs::read_dir(root().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        names.sort();
        for p in names {
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            v.push((stem.clone(), format!("{dir}/{stem}.yaml")));
        }
    }
    v
}

fn render(inventory: &str) -> String {
    let out = clusterctl()
        .args(["render", "-i", inventory])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{inventory}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn snapshots_of_every_fixture() {
    for (name, path) in fixtures() {
        let text = render(&path);
        insta::with_settings!({ snapshot_suffix => name.clone(), description => path.clone(), omit_expression => true }, {
            insta::assert_snapshot!("render", text);
        });
    }
}

#[test]
fn rendering_is_deterministic() {
    for (_, path) in fixtures() {
        assert_eq!(render(&path), render(&path), "{path}");
    }
}

#[test]
fn example_has_what_the_issue_requires() {
    let text = render("examples/cluster.yaml");
    for mac_ip in [
        "dhcp-host=dc:a6:32:00:00:01,node01,10.0.0.11",
        "dhcp-host=dc:a6:32:00:00:04,node04,10.0.0.14",
        "-A POSTROUTING -s 10.0.0.0/24 -o eth0 -j MASQUERADE",
        "10.0.0.1\thead.cluster.lan\thead",
        "/home\t10.0.0.0/24(rw,sync,no_subtree_check,no_root_squash)",
        "10.0.0.1:/home\t/home\tnfs\trw,_netdev,nofail,x-systemd.mount-timeout=30\t0\t0",
        "node03 slots=4",
        "node03:4",
        "net.ipv4.ip_forward = 1",
        "interface=eth1",
    ] {
        assert!(text.contains(mac_ip), "missing {mac_ip:?}");
    }
}

/// Files written with --out: one tree per node, paths mirroring the target.
fn render_out(inventory: &str) -> PathBuf {
    let dir = tempfile::tempdir().unwrap().keep();
    clusterctl()
        .args(["render", "-i", inventory, "--out"])
        .arg(&dir)
        .assert()
        .success();
    dir
}

#[test]
fn out_writes_one_tree_per_node() {
    let dir = render_out("examples/cluster.yaml");
    for f in [
        "head/etc/dnsmasq.d/clusterctl.conf",
        "head/etc/iptables/rules.v4",
        "head/etc/exports",
        "node01/etc/fstab",
        "node04/etc/clusterctl/hostfile.mpich",
    ] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    assert!(
        !dir.join("node01/etc/dnsmasq.d").exists(),
        "workers get no dnsmasq"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn whole_files_carry_the_header_and_no_timestamps() {
    let text = render("examples/cluster.yaml");
    for section in text.split("==> ").skip(1) {
        let (head, body) = section.split_once('\n').unwrap();
        if head.starts_with("head: /etc/hostname") || head.contains(": /etc/hostname ") {
            // The one file without a header: Debian's sysvinit reads the
            // whole file as the name. It holds the name and nothing else.
            let name = head.split(':').next().unwrap();
            assert_eq!(body.trim_end(), name, "{head}");
        } else if head.contains("whole file") {
            // A script keeps its `#!` line first.
            let body = body.strip_prefix("#!/bin/sh\n").unwrap_or(body);
            assert!(body.starts_with("# Managed by clusterctl"), "{head}");
        } else {
            assert!(body.starts_with("# BEGIN clusterctl"), "{head}");
        }
    }
    let year = regex_like_year(&text);
    assert!(!year, "a rendered file contains a date");
}

fn regex_like_year(s: &str) -> bool {
    s.as_bytes().windows(5).any(|w| {
        w[0] == b'2'
            && w[1] == b'0'
            && w[2].is_ascii_digit()
            && w[3].is_ascii_digit()
            && w[4] == b'-'
    })
}

#[test]
fn node_filter_and_unknown_node() {
    let out = clusterctl()
        .args(["render", "-i", "examples/cluster.yaml", "--node", "node02"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("==> node02: "));
    assert!(!text.contains("==> head:"));
    clusterctl()
        .args(["render", "-i", "examples/cluster.yaml", "--node", "nope"])
        .assert()
        .code(1)
        .stderr("error: --node: no node named `nope` in the inventory\n  help: nodes: head,node[01-04]\n");
}

#[test]
fn template_override_beside_the_inventory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("examples/cluster.yaml"),
        dir.path().join("cluster.yaml"),
    )
    .unwrap();
    let t = dir.path().join("templates/common/etc/clusterctl");
    std::fs::create_dir_all(&t).unwrap();
    std::fs::write(t.join("hostfile.openmpi.j2"), "{{ header }}\n{% for w in cluster.workers %}{{ w.name }} slots={{ w.slots * 2 }}\n{% endfor %}").unwrap();
    let out = clusterctl()
        .current_dir(dir.path())
        .args(["render", "--node", "node01"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("node01 slots=8\n"), "{text}");

    // A typo in an override's path is an error, not silently ignored.
    std::fs::write(t.join("hostfile.openmpj.j2"), "x").unwrap();
    let out = clusterctl()
        .current_dir(dir.path())
        .args(["render"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("overrides no built-in template"));
}

#[test]
fn undefined_variable_in_an_override_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("common/etc");
    std::fs::create_dir_all(&t).unwrap();
    std::fs::write(t.join("hosts.j2"), "{{ nodes_typo }}\n").unwrap();
    let out = clusterctl()
        .args(["render", "-i", "examples/cluster.yaml", "--templates"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("common/etc/hosts.j2") && err.contains("undefined"),
        "{err}"
    );
}

fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is not installed: run scripts/install-deps.sh (as root)");
}

/// Run `tool args FILE` on `file` (a target path) of every node of every fixture.
fn every_rendered(file: &str, tool_name: &str, args: &[&str]) {
    let mut checked = 0;
    for (name, path) in fixtures() {
        let dir = render_out(&path);
        for node in std::fs::read_dir(&dir).unwrap() {
            let f = node.unwrap().path().join(file.trim_start_matches('/'));
            if !f.exists() {
                continue;
            }
            let out = std::process::Command::new(tool(tool_name))
                .args(args)
                .arg(&f)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{name}: {tool_name} rejects {}: {}",
                f.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
        let _ = std::fs::remove_dir_all(dir);
    }
    assert!(checked >= fixtures().len(), "only {checked} files checked");
}

#[test]
fn dnsmasq_accepts_every_rendered_config() {
    every_rendered(
        "/etc/dnsmasq.d/clusterctl.conf",
        "dnsmasq",
        &["--test", "-C"],
    );
}

#[test]
#[ignore = "needs root (iptables-restore --test): run with --include-ignored (CI does)"]
fn iptables_accepts_every_rendered_ruleset() {
    assert!(is_root(), "this test needs root");
    every_rendered("/etc/iptables/rules.v4", "iptables-restore", &["--test"]);
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}
