//! Terminal tests: what a person at a terminal sees and types, driven in a
//! pseudo-terminal (`pty.rs`). The `init` wizard through a wrong answer and
//! its fix, a late error fixed without losing the other answers, Ctrl-D and
//! Ctrl-C writing nothing; `apply`'s plan and confirmation (no, then yes)
//! against a light lab.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::pty::Pty;

const T: Duration = Duration::from_secs(20);

fn clusterctl(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clusterctl"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("CLUSTERCTL_INVENTORY");
    cmd
}

fn check(dir: &Path, file: &str) {
    let out = clusterctl(dir, &["check", "-i", file]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn wizard_asks_again_after_a_wrong_answer_and_writes_the_fixed_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Pty::spawn(clusterctl(dir.path(), &["init", "-i", "c.yaml"]));
    t.expect("over SSH? [USER@]HOST[:PORT]: ", T);
    // Nothing listens there: the look at the head fails at once, and the
    // wizard goes on by hand.
    t.send("root@127.0.0.1:1\r");
    t.expect("could not look at the head", T);
    t.expect("(WAN) [eth0]: ", T);
    t.send("\r");
    t.expect("(LAN) [eth1]: ", T);
    // The same interface as the WAN: refused at once, asked again.
    t.send("eth0\r");
    t.expect(
        "error: `eth0` is already the head's interface to the WAN",
        T,
    );
    t.expect("(LAN) [eth1]: ", T);
    t.send("eth1\r");
    t.expect("Cluster LAN (CIDR) [10.0.0.0/24]: ", T);
    t.send("10.0.0.1/24\r");
    t.expect("has host bits set", T);
    t.expect("Cluster LAN (CIDR) [10.0.0.0/24]: ", T);
    t.send("10.9.0.0/24\r");
    t.expect("(empty for none): ", T);
    t.send("node[01-02]\r");
    t.expect("wrote c.yaml", T);
    let (st, _) = t.wait(T);
    assert!(st.success());
    let text = std::fs::read_to_string(dir.path().join("c.yaml")).unwrap();
    assert!(text.contains("lan_iface: eth1\n"), "{text}");
    assert!(text.contains("cidr: 10.9.0.0/24\n"), "{text}");
    assert!(text.contains("names: \"node[01-02]\""), "{text}");
    check(dir.path(), "c.yaml");
}

#[test]
fn wizard_fixes_a_late_error_keeping_every_other_answer() {
    let dir = tempfile::tempdir().unwrap();
    // --head-ip lies outside the LAN: caught once every answer is in; only
    // that one is asked again.
    let args = [
        "init",
        "-i",
        "c.yaml",
        "--wan-iface",
        "eno1",
        "--lan-iface",
        "eno2",
        "--lan",
        "10.1.0.0/24",
        "--head-ip",
        "10.2.0.1",
        "--workers",
        "n[1-3]",
    ];
    let mut t = Pty::spawn(clusterctl(dir.path(), &args));
    t.expect("over SSH? [USER@]HOST[:PORT]: ", T);
    t.send("pi@192.0.2.7\r");
    t.expect(
        "error: --head-ip: 10.2.0.1 is not a host address of the LAN 10.1.0.0/24",
        T,
    );
    t.expect("The head's LAN address [10.1.0.1]: ", T);
    t.send("10.1.0.5\r");
    t.expect("wrote c.yaml", T);
    let (st, screen) = t.wait(T);
    assert!(st.success(), "{screen}");
    let text = std::fs::read_to_string(dir.path().join("c.yaml")).unwrap();
    for line in [
        "ssh: \"pi@192.0.2.7\"\n",
        "wan_iface: eno1\n",
        "lan_ip: 10.1.0.5\n",
        "names: \"n[1-3]\"",
    ] {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }
    check(dir.path(), "c.yaml");
}

#[test]
fn wizard_ctrl_d_and_ctrl_c_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Pty::spawn(clusterctl(dir.path(), &["init", "-i", "c.yaml"]));
    t.expect("over SSH? [USER@]HOST[:PORT]: ", T);
    t.send("root@127.0.0.1:1\r");
    t.expect("(WAN) [eth0]: ", T);
    t.send("\x04");
    t.expect("init stopped: nothing was written", T);
    let (st, _) = t.wait(T);
    assert_eq!(st.code(), Some(1));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    let mut t = Pty::spawn(clusterctl(dir.path(), &["init", "-i", "c.yaml"]));
    t.expect("over SSH? [USER@]HOST[:PORT]: ", T);
    t.send("\x03");
    let (st, _) = t.wait(T);
    assert!(!st.success());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// Light lab u15 (#70): `apply` on a terminal shows the plan per node and
/// asks; "n" changes nothing (the head's diff still exits 2), "y" applies
/// (exit 0, then diff of every node exits 0). The same apply without a terminal never asks (every
/// other lab test runs it that way).
#[test]
#[ignore = "needs root: brings up a light lab (run with --include-ignored as root)"]
fn apply_asks_on_a_terminal_no_then_yes() {
    use crate::lab::{describe, serial, Lab, TestLab};
    let _g = serial();
    let lab = Lab::new(TestLab::TerminalApply);
    lab.up(1);
    let inv = "lab/cluster.yaml";
    // The worker has no lease before the head serves DHCP: only the head
    // can be diffed now.
    let diff = || {
        lab.run(&["diff", "-i", inv, "--nodes", "head"])
            .status
            .code()
    };
    assert_eq!(diff(), Some(2));

    let mut t = Pty::spawn(lab.cmd(&["apply", "-i", inv]));
    let plan = t.expect("Apply these changes to 2 nodes?", Duration::from_secs(120));
    assert!(
        plan.contains("Plan (clusterctl diff shows every change"),
        "{plan}"
    );
    assert!(plan.contains("  head  "), "{plan}");
    assert!(
        plan.contains("  w1    unreachable now; apply will wait for it"),
        "{plan}"
    );
    assert!(plan.contains("create"), "{plan}");
    assert!(plan.contains("then "), "handlers named: {plan}");
    t.send("n\r");
    t.expect("apply cancelled: nothing was changed", T);
    let (st, _) = t.wait(T);
    assert_eq!(st.code(), Some(1));
    assert_eq!(diff(), Some(2), "declining changed nothing");

    let mut t = Pty::spawn(lab.cmd(&["apply", "-i", inv]));
    t.expect("Apply these changes to 2 nodes?", Duration::from_secs(120));
    t.send("y\r");
    t.expect("recap (run ", Duration::from_secs(300));
    let (st, screen) = t.wait(Duration::from_secs(60));
    assert_eq!(st.code(), Some(0), "{screen}");
    assert!(screen.contains("changed=2"), "{screen}");
    let out = lab.run(&["diff", "-i", inv]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        describe("diff after apply", &out)
    );
}

/// Light lab u15 (#71): the wizard looks at the head over SSH before asking
/// about its interfaces: lists them with their addresses, proposes the
/// default route's as WAN and the unaddressed one as LAN, and refuses an
/// interface the head does not have.
#[test]
#[ignore = "needs root: brings up a light lab (run with --include-ignored as root)"]
fn wizard_looks_at_the_head_and_proposes_its_interfaces() {
    use crate::lab::{serial, Lab, TestLab};
    let _g = serial();
    let lab = Lab::new(TestLab::TerminalWizard);
    lab.up(1);
    let mut cmd = lab.cmd(&["init", "-i", "w.yaml", "--ssh-config", "lab/ssh_config"]);
    cmd.env_remove("CLUSTERCTL_INVENTORY");
    let mut t = Pty::spawn(cmd);
    t.expect("over SSH? [USER@]HOST[:PORT]: ", T);
    t.send("root@198.18.71.2\r");
    let shown = t.expect("(WAN) [", T);
    assert!(shown.contains("The head's interfaces:"), "{shown}");
    assert!(shown.contains("198.18.71.2/24"), "{shown}");
    assert!(
        shown.contains("eth1 ") && shown.contains("no IPv4 address  (proposed LAN)"),
        "{shown}"
    );
    t.expect("eth0]: ", T);
    t.send("\r");
    t.expect("(LAN) [eth1]: ", T);
    t.send("eth7\r");
    t.expect("the head has no interface `eth7` (it has ", T);
    t.expect("(LAN) [eth1]: ", T);
    t.send("\r");
    t.expect("Cluster LAN (CIDR) [10.0.0.0/24]: ", T);
    t.send("10.78.71.0/24\r");
    t.expect("(empty for none): ", T);
    t.send("\r");
    t.expect("wrote w.yaml", T);
    let (st, screen) = t.wait(T);
    assert!(st.success(), "{screen}");
}
