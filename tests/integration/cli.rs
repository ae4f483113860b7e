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

/// `init` with a head, a WAN interface, a /24 LAN and `args` fails with
/// `says` and writes nothing.
fn init_refused(args: &[&str], says: &str) {
    let dir = tempfile::tempdir().unwrap();
    clusterctl()
        .current_dir(dir.path())
        .args(["init", "--head", "root@10.1.1.1", "--wan-iface", "eth0"])
        .args(["--lan", "10.0.0.0/24"])
        .args(args)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(says));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn init_rejects_bad_values_before_writing() {
    init_refused(
        &["--lan-iface", "eth1;reboot"],
        "--lan-iface: `eth1;reboot` contains ';'",
    );
}

/// Issue 22: more workers than the LAN holds was reported against a file
/// that was never written, with "use a larger LAN (e.g. a /24)" for a /24.
#[test]
fn init_with_more_workers_than_the_lan_holds_names_the_flag_and_a_lan_that_fits() {
    init_refused(
        &["--lan-iface", "eth1", "--workers", "n[1-300]", "--yes"],
        "--workers: `n[1-300]` names 300 workers, but --lan 10.0.0.0/24 has room for 127 nodes beside the DHCP range 10.0.0.128-10.0.0.254; pass --lan with a /22 (or larger) network",
    );
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

// ---- Hostile arguments (#12): nothing an argument holds reaches a written
// ---- file or the terminal raw, and nothing is written through a link.

/// No control character except the line breaks between messages.
fn assert_terminal_safe(stderr: &[u8]) {
    let text = String::from_utf8_lossy(stderr);
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "raw control character in: {text:?}"
    );
}

#[test]
fn init_output_path_with_a_newline_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let evil = dir.path().join("x.yaml\nworkers: [{name: evil}]");
    let out = clusterctl()
        .args(["init", "-o"])
        .arg(&evil)
        .args(INIT_FLAGS)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("control character '\\n'"))
        .get_output()
        .clone();
    assert_terminal_safe(&out.stderr);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn init_output_path_with_yaml_characters_stays_a_comment() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("my 'odd' #name: [x].yaml");
    clusterctl()
        .args(["init", "-o"])
        .arg(&inv)
        .args(INIT_FLAGS)
        .assert()
        .success();
    let text = std::fs::read_to_string(&inv).unwrap();
    let plain = tempfile::tempdir().unwrap();
    let reference = plain.path().join("c.yaml");
    clusterctl()
        .args(["init", "-o"])
        .arg(&reference)
        .args(INIT_FLAGS)
        .assert()
        .success();
    let reference = std::fs::read_to_string(&reference).unwrap();
    // Same lines: the path changed only the comments, not the YAML.
    assert_eq!(text.lines().count(), reference.lines().count());
    let differing: Vec<(&str, &str)> = text
        .lines()
        .zip(reference.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert!(
        differing.iter().all(|(a, _)| a.starts_with('#')),
        "{differing:?}"
    );
    assert!(
        text.contains("'\\''odd'\\''"),
        "shell-quoted in the comment:\n{text}"
    );
    clusterctl()
        .args(["check", "-i"])
        .arg(&inv)
        .assert()
        .success();
}

#[test]
fn init_refuses_hostile_values() {
    let with = |flag: &str, value: &str| {
        let mut args: Vec<String> = INIT_FLAGS.iter().map(|s| s.to_string()).collect();
        let i = args.iter().position(|a| a == flag);
        match i {
            Some(i) => args[i + 1] = value.to_string(),
            None => args.extend([flag.to_string(), value.to_string()]),
        }
        args
    };
    let cases = [
        (
            with("--lan-iface", "-a"),
            "must start with a letter or digit",
        ),
        (with("--wan-iface", "lo"), "is the loopback interface"),
        (
            with("--lan", "0.0.0.0/0"),
            "is the whole IPv4 address space",
        ),
        (with("--lan", "8.8.8.0/24"), "is public address space"),
        (with("--domain", "lan"), "is a single label"),
        (with("--domain", "cluster.local"), "ends in `.local`"),
        (with("--name", "a\u{1b}[31m"), "a\\u{1b}[31m"),
        (with("--lan-iface", "eth0"), "is also --wan-iface"),
    ];
    for (args, msg) in cases {
        let dir = tempfile::tempdir().unwrap();
        // `--flag=value`, so a value starting with '-' is not read as a flag.
        let mut joined = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if a.starts_with("--") {
                joined.push(format!("{a}={}", it.next().unwrap()));
            }
        }
        let out = clusterctl()
            .current_dir(dir.path())
            .arg("init")
            .args(&joined)
            .assert()
            .code(1)
            .stderr(predicate::str::contains(msg))
            .get_output()
            .clone();
        assert_terminal_safe(&out.stderr);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "{joined:?}"
        );
    }
}

#[test]
fn check_reads_a_bounded_amount() {
    clusterctl()
        .args(["check", "-i", "/dev/zero"])
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "/dev/zero: the file is larger than 4 MiB",
        ));
    // Not a speed target: an unbounded read would hit the timeout instead.
}

#[test]
fn a_path_with_control_characters_is_escaped_in_messages() {
    let out = clusterctl()
        .args(["check", "-i", "no\nsuch\u{1b}[31m.yaml"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "cannot read no\\nsuch\\u{1b}[31m.yaml",
        ))
        .get_output()
        .clone();
    assert_terminal_safe(&out.stderr);
}

#[test]
fn check_never_echoes_a_huge_value() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("c.yaml");
    let huge = "x".repeat(3 * 1024 * 1024);
    std::fs::write(
        &inv,
        example().replace("name: bramble", &format!("name: {huge}")),
    )
    .unwrap();
    let out = clusterctl()
        .args(["check", "-i"])
        .arg(&inv)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("xxx…` is 3145728 characters long"))
        .get_output()
        .clone();
    assert!(
        out.stderr.len() < 2_000,
        "{} bytes of stderr",
        out.stderr.len()
    );
}

#[test]
fn render_out_refuses_planted_symlinks() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cluster.yaml");
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("hosts"), "precious\n").unwrap();
    let plant = |out: &Path, link: &str, to: &Path| {
        let at = out.join(link);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(to, at).unwrap();
    };
    // A link as the file, as a directory on the way, and as --out itself.
    let file_link = dir.path().join("out1");
    plant(&file_link, "head/etc/hosts", &victim.join("hosts"));
    let dir_link = dir.path().join("out2");
    plant(&dir_link, "node01/etc", &victim);
    let out_link = dir.path().join("out3");
    std::os::unix::fs::symlink(&victim, &out_link).unwrap();
    for (out, what) in [
        (&file_link, "out1/head/etc/hosts: it is a symbolic link"),
        (&dir_link, "out2/node01/etc: it is a symbolic link"),
        (&out_link, "out3: it is a symbolic link"),
    ] {
        clusterctl()
            .args(["render", "-i"])
            .arg(&example)
            .arg("--out")
            .arg(out)
            .assert()
            .code(1)
            .stderr(predicate::str::contains(what));
    }
    assert_eq!(
        std::fs::read_to_string(victim.join("hosts")).unwrap(),
        "precious\n"
    );
    assert_eq!(
        std::fs::read_dir(&victim).unwrap().count(),
        1,
        "nothing added"
    );
}

#[test]
fn render_out_replaces_a_hard_link_instead_of_writing_through_it() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cluster.yaml");
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(out.join("head/etc")).unwrap();
    std::fs::hard_link(&victim, out.join("head/etc/hosts")).unwrap();
    clusterctl()
        .args(["render", "-i"])
        .arg(&example)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    let hosts = std::fs::read_to_string(out.join("head/etc/hosts")).unwrap();
    assert!(hosts.contains("node04.cluster.lan"), "{hosts}");
}

#[test]
fn add_node_refuses_hostile_values() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("cluster.yaml");
    std::fs::write(&inv, example()).unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--no-apply", "--", "-x"], "invalid node name `-x`"),
        (&["a\nb: c", "--no-apply"], "invalid node name `a\\nb: c`"),
        (
            &["node05", "--mac=dc:a6:32:00:00:09\nip: 1", "--no-apply"],
            "--mac `dc:a6:32:00:00:09\\nip: 1`",
        ),
        (
            &["node05", "--ssh=-oProxyCommand=x", "--no-apply"],
            "is not a host name",
        ),
        (
            &["node05", "--ssh=root@h\nx", "--no-apply"],
            "--ssh `root@h\\nx`",
        ),
        (
            &["node05", "--ip=-10.0.0.9", "--no-apply"],
            "--ip `-10.0.0.9` is not an IPv4 address",
        ),
        (
            &["node05", "--ip=127.0.0.1", "--no-apply"],
            "is not a host address in the LAN",
        ),
    ];
    for (args, msg) in cases {
        let out = clusterctl()
            .args(["add-node", "-i"])
            .arg(&inv)
            .args(*args)
            .assert()
            .code(1)
            .stderr(predicate::str::contains(*msg))
            .get_output()
            .clone();
        assert_terminal_safe(&out.stderr);
        assert_eq!(
            std::fs::read_to_string(&inv).unwrap(),
            example(),
            "{args:?}"
        );
    }
}
