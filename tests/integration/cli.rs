//! The command-line surface: init, add-node, help, completions, and the
//! commands that are not implemented yet saying so.

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;

fn clusterctl() -> Command {
    let mut c = Command::cargo_bin("clusterctl").unwrap();
    c.env_remove("CLUSTERCTL_INVENTORY");
    c
}

fn example() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cluster.yaml"))
        .unwrap()
}

const INIT_FLAGS: &[&str] = &[
    "--head",
    "pi@192.168.1.50",
    "--wan-iface",
    "eth0",
    "--lan-iface",
    "eth1",
    "--lan",
    "10.0.0.0/24",
    "--workers",
    "node[01-04]",
];

#[test]
fn init_with_flags_writes_an_inventory_check_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("cluster.yaml");
    clusterctl()
        .args(["init", "-o"])
        .arg(&inv)
        .args(INIT_FLAGS)
        .assert()
        .success()
        .stdout(predicate::str::contains("next: clusterctl check -i"));
    let text = std::fs::read_to_string(&inv).unwrap();
    assert!(text.starts_with("# clusterctl inventory"), "commented");
    assert!(
        text.contains("become: sudo"),
        "a non-root head user gets become: sudo"
    );
    clusterctl()
        .args(["check", "-i"])
        .arg(&inv)
        .assert()
        .success()
        .stdout(predicate::str::contains("head head + 4 workers"));
}

#[test]
fn init_refuses_to_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("cluster.yaml");
    std::fs::write(&inv, "precious: true\n").unwrap();
    clusterctl()
        .args(["init", "-o"])
        .arg(&inv)
        .args(INIT_FLAGS)
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("already exists").and(predicate::str::contains("--force")),
        );
    assert_eq!(std::fs::read_to_string(&inv).unwrap(), "precious: true\n");
    clusterctl()
        .args(["init", "--force", "-o"])
        .arg(&inv)
        .args(INIT_FLAGS)
        .assert()
        .success();
    assert!(std::fs::read_to_string(&inv)
        .unwrap()
        .contains("lan_iface: eth1"));
}

#[test]
fn init_without_terminal_names_the_missing_flags() {
    let dir = tempfile::tempdir().unwrap();
    clusterctl()
        .current_dir(dir.path())
        .args(["init", "--head", "root@10.1.1.1"])
        .assert()
        .code(1)
        .stderr(predicate::str::starts_with(
            "error: missing --wan-iface, --lan-iface, --lan (no terminal to ask on)\n",
        ));
    assert!(!dir.path().join("cluster.yaml").exists());
}

#[test]
fn init_rejects_bad_values_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    clusterctl()
        .current_dir(dir.path())
        .args([
            "init",
            "--head",
            "root@10.1.1.1",
            "--wan-iface",
            "eth0",
            "--lan-iface",
            "eth1;reboot",
            "--lan",
            "10.0.0.0/24",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "--lan-iface: `eth1;reboot` contains ';'",
        ));
    assert!(!dir.path().join("cluster.yaml").exists());
}

/// `after` is `before` with one contiguous run of lines inserted.
fn only_lines_added(before: &str, after: &str) -> String {
    let b: Vec<&str> = before.split_inclusive('\n').collect();
    let a: Vec<&str> = after.split_inclusive('\n').collect();
    let prefix = b.iter().zip(&a).take_while(|(x, y)| x == y).count();
    let suffix = b[prefix..]
        .iter()
        .rev()
        .zip(a[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    assert_eq!(prefix + suffix, b.len(), "lines of the original changed");
    a[prefix..a.len() - suffix].concat()
}

#[test]
fn add_node_keeps_every_byte_and_comment() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("cluster.yaml");
    std::fs::write(&inv, example()).unwrap();
    clusterctl()
        .args(["add-node", "-i"])
        .arg(&inv)
        .args([
            "node05",
            "--mac",
            "DC:A6:32:00:00:05",
            "--slots",
            "8",
            "--no-apply",
        ])
        .assert()
        .success()
        .stdout(
            "added node05 (10.0.0.15, dc:a6:32:00:00:05) to ".to_string()
                + &inv.display().to_string()
                + "\nnext: clusterctl apply -i "
                + &inv.display().to_string()
                + "\n",
        );
    let after = std::fs::read_to_string(&inv).unwrap();
    let added = only_lines_added(&example(), &after);
    assert_eq!(
        added,
        "  - name: \"node05\"\n    mac: \"dc:a6:32:00:00:05\"\n    ip: 10.0.0.15\n    slots: 8\n"
    );
    clusterctl()
        .args(["check", "-i"])
        .arg(&inv)
        .assert()
        .success()
        .stdout(predicate::str::contains("5 workers"));
    // And it renders into the files that list nodes.
    let out = clusterctl()
        .args(["render", "-i"])
        .arg(&inv)
        .args(["--node", "head"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("dhcp-host=dc:a6:32:00:00:05,node05,10.0.0.15"));
    assert!(text.contains("node05 slots=8"));
}

#[test]
fn add_node_rejects_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("cluster.yaml");
    std::fs::write(&inv, example()).unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["node01", "--no-apply"],
            "error: node `node01` is already in",
        ),
        (
            &["node05", "--mac", "dc:a6:32:00:00:01", "--no-apply"],
            "duplicate MAC address dc:a6:32:00:00:01 (also used by node01)",
        ),
        (
            &["node05", "--ip", "10.0.0.150", "--no-apply"],
            "IP 10.0.0.150 is inside the DHCP range",
        ),
        (
            &["node05", "--ip", "10.0.0.12", "--no-apply"],
            "duplicate IP address 10.0.0.12 (also used by node02)",
        ),
        (&["bad;name", "--no-apply"], "invalid node name `bad;name`"),
    ];
    for (args, msg) in cases {
        clusterctl()
            .args(["add-node", "-i"])
            .arg(&inv)
            .args(*args)
            .assert()
            .code(1)
            .stderr(predicate::str::contains(*msg));
        assert_eq!(
            std::fs::read_to_string(&inv).unwrap(),
            example(),
            "{args:?} changed the file"
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "temp files left: {leftovers:?}");
    // The success path leaves no temp file either.
    clusterctl()
        .args(["add-node", "-i"])
        .arg(&inv)
        .args(["node05", "--no-apply"])
        .assert()
        .success();
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "temp files left: {leftovers:?}");
}

#[test]
fn add_node_ssh_value_that_looks_like_yaml_null_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("cluster.yaml");
    std::fs::write(&inv, example()).unwrap();
    // `null` is a valid host name for ssh; written unquoted it would vanish.
    clusterctl()
        .args(["add-node", "-i"])
        .arg(&inv)
        .args(["node05", "--ssh", "null", "--no-apply"])
        .assert()
        .success();
    assert!(std::fs::read_to_string(&inv)
        .unwrap()
        .contains("    ssh: \"null\"\n"));
}

#[test]
fn init_with_an_ipv6_head() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("cluster.yaml");
    clusterctl()
        .args([
            "init",
            "--head",
            "[2001:db8::5]:22",
            "--wan-iface",
            "eth0",
            "--lan-iface",
            "eth1",
            "--lan",
            "10.0.0.0/24",
            "-o",
        ])
        .arg(&inv)
        .assert()
        .success();
    clusterctl()
        .args(["check", "-i"])
        .arg(&inv)
        .assert()
        .success();
}

#[test]
fn inventory_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("mine.yaml");
    std::fs::write(&inv, example()).unwrap();
    clusterctl()
        .env("CLUSTERCTL_INVENTORY", &inv)
        .arg("check")
        .assert()
        .success();
}

#[test]
fn missing_inventory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    clusterctl()
        .current_dir(dir.path())
        .arg("check")
        .assert()
        .code(1)
        .stderr(
            predicate::str::starts_with(
                "error: cannot read cluster.yaml: No such file or directory",
            )
            .and(predicate::str::contains("help: ")),
        );
}

#[test]
fn every_command_has_help_with_an_example() {
    for cmd in [
        "init",
        "check",
        "render",
        "apply",
        "diff",
        "add-node",
        "completions",
        "lab",
    ] {
        let out = clusterctl().args([cmd, "--help"]).output().unwrap();
        assert!(out.status.success(), "{cmd}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("Example") || cmd == "lab",
            "{cmd} --help has no example:\n{text}"
        );
    }
}

#[test]
fn completions_for_bash() {
    clusterctl()
        .args(["completions", "bash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("add-node"));
}
