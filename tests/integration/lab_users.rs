//! Cluster users (issue #24) on fresh systemd hosts: one apply gives every
//! node the same accounts (UID, GID, groups, shell, a local home), verify's
//! `users` check passes on every node (SSH and the MPI job as a user, by
//! host-based authentication), also after `lab reboot all` with no apply,
//! a second apply changes nothing, a user's own SSH key lets them (and only
//! them) in, a user taken out is locked with its files kept, and a worker
//! whose UID is already used by an account clusterctl did not create stops
//! the run before anything on any node changes, naming the node and the
//! clash. Needs root.

use std::fs;

use super::lab::{describe, serial, text, Lab, TestLab};

/// The lab's inventory with OpenMPI (and so the cluster key) and `users`.
fn with_users(lab: &Lab, users: &str) -> &'static str {
    let inv = "lab/cluster.yaml";
    let path = lab.dir.path().join(inv);
    let mut yaml = fs::read_to_string(&path).unwrap();
    let at = yaml
        .find("\nmpi:\n")
        .expect("the lab inventory has an mpi section");
    yaml.truncate(at + 1);
    yaml.push_str(
        "mpi:\n  slots: 2\n  hostfiles: [openmpi]\n  install: openmpi\n  head_slots: 1\n",
    );
    yaml.push_str("users:\n");
    yaml.push_str(users);
    fs::write(&path, yaml).unwrap();
    inv
}

/// alice (with `key`, her own SSH key) and bob.
fn two(key: &str) -> String {
    format!("  - name: alice\n    uid: 2001\n    groups: [video]\n    ssh_authorized_keys: [\"{key}\"]\n  - name: bob\n    uid: 2002\n    gid: 3002\n    shell: /bin/sh\n")
}

/// `ssh` as root on `from` with alice's own key only (no host-based login),
/// strict host keys.
const WITH_ALICES_KEY: &str = "cd / && ssh -n -o BatchMode=yes -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o HostbasedAuthentication=no -i /root/alice_key";

#[test]
#[ignore = "needs root: run with --include-ignored (CI does)"]
fn users_are_the_same_on_every_node_and_a_clash_is_refused() {
    let _g = serial();
    let lab = Lab::new(TestLab::Users);
    lab.up_with(2, &["--kind", "systemd", "--network", "ifupdown"]);
    // A worker with an account of its own that the inventory's next user clashes with.
    lab.sh("w2", "useradd -u 2003 -m mallory");
    let w2_before = lab.sh("w2", "sha256sum /etc/passwd /etc/group /etc/shadow");
    // alice's own key pair, as on her laptop (here w1's root holds it).
    let key = lab.sh(
        "w1",
        "ssh-keygen -q -t ed25519 -N '' -C alice@laptop -f /root/alice_key && cat /root/alice_key.pub",
    );
    let two = two(key.trim());

    let inv = with_users(&lab, &two);
    // The workers get their addresses from the head's DHCP: before the
    // first apply only the head is reachable.
    let out = lab.run(&["diff", "-i", inv]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("==> head: user: create alice (2001:2001, groups video, shell /bin/bash, home /home/alice local)"),
        "{}",
        describe("diff", &out)
    );
    assert!(
        stdout.contains(
            "==> head: user: create bob (2002:3002, shell /bin/sh, home /home/bob local)"
        ),
        "{stdout}"
    );

    let out = lab.run(&["apply", "-i", inv]);
    assert_eq!(out.status.code(), Some(0), "{}", describe("apply", &out));
    for n in ["head", "w1", "w2"] {
        assert_eq!(
            lab.sh(n, "getent passwd alice bob | cut -d: -f1,3,4,6,7"),
            "alice:2001:2001:/home/alice:/bin/bash\nbob:2002:3002:/home/bob:/bin/sh\n",
            "{n}"
        );
        assert_eq!(lab.sh(n, "id -nG alice"), "alice video\n", "{n}");
        assert_eq!(lab.sh(n, "stat -c %u:%g /home/alice"), "2001:2001\n", "{n}");
        assert_eq!(
            lab.sh(n, "cat /var/lib/clusterctl/users"),
            "alice\nbob\n",
            "{n}"
        );
    }
    // mallory is not clusterctl's: untouched.
    assert_eq!(
        lab.sh("w2", "getent passwd mallory | cut -d: -f3"),
        "2003\n"
    );

    // Host-based SSH: alice reaches another node with no key of her own,
    // strict host keys, no prompt; root is not let in that way.
    assert_eq!(
        lab.sh("w1", "cd / && runuser -u alice -- ssh -n -o BatchMode=yes -o StrictHostKeyChecking=yes w2 hostname"),
        "w2\n"
    );
    assert!(
        lab.sh("head", "ls -a /home/alice")
            .lines()
            .all(|l| l != ".ssh"),
        "no per-user secret"
    );

    // alice's own key lets her in, as alice only; sshd reads the keys
    // through the managed AuthorizedKeysCommand, nothing in her home.
    assert_eq!(
        lab.sh("w1", &format!("{WITH_ALICES_KEY} alice@head id -un")),
        "alice\n"
    );
    let as_bob = lab.sh(
        "w1",
        &format!("{WITH_ALICES_KEY} bob@head true 2>&1; echo exit=$?"),
    );
    assert!(
        as_bob.contains("Permission denied") && as_bob.ends_with("exit=255\n"),
        "{as_bob}"
    );
    assert_eq!(
        lab.sh("head", "stat -c '%U %a' /etc/ssh/clusterctl_authorized_keys /etc/ssh/clusterctl-authorized-keys"),
        "root 644\nroot 755\n"
    );

    let out = lab.run(&["verify", "-i", inv, "-v"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe("verify", &out));
    let stdout = text(&out.stdout);
    for n in ["head", "w1", "w2"] {
        assert!(
            stdout.contains(&format!(
                "{n} users: 2 user(s) with the inventory's IDs; alice reaches every node by ssh"
            )),
            "{}",
            describe("verify", &out)
        );
    }
    assert!(
        stdout.contains("head mpi: 3 ranks as alice: head w1 w2"),
        "{stdout}"
    );

    // A second apply changes nothing.
    let out = lab.run(&["apply", "-i", inv]);
    assert!(
        text(&out.stdout).contains("ok=3 changed=0 failed=0 unreachable=0"),
        "{}",
        describe("second apply", &out)
    );

    // After a reboot with no apply: the same accounts, SSH and MPI as alice.
    let out = lab.run(&["lab", "reboot", "all"]);
    assert!(out.status.success(), "{}", describe("reboot", &out));
    let out = lab.run(&["verify", "-i", inv, "-v"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        describe("verify after reboot", &out)
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(
            "w2 users: 2 user(s) with the inventory's IDs; alice reaches every node by ssh"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("head mpi: 3 ranks as alice: head w1 w2"),
        "{stdout}"
    );

    // A third user whose UID w2's mallory has: the run is refused before
    // anything on any node changes, naming the node and the clash.
    let before: Vec<String> = ["head", "w1", "w2"]
        .iter()
        .map(|n| lab.sh(n, "sha256sum /etc/passwd /etc/group /etc/shadow"))
        .collect();
    assert_ne!(w2_before, before[2], "alice and bob were added");
    let inv = with_users(&lab, &format!("{two}  - name: carol\n    uid: 2003\n"));
    let out = lab.run(&["apply", "-i", inv]);
    assert_eq!(out.status.code(), Some(1), "{}", describe("clash", &out));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("accounts on 1 node(s) clash with the inventory's; nothing was changed on any node:\n  w2: user carol: uid 2003 is already mallory's on this node"),
        "{}",
        describe("clash", &out)
    );
    for (n, was) in ["head", "w1", "w2"].iter().zip(&before) {
        assert_eq!(
            &lab.sh(n, "sha256sum /etc/passwd /etc/group /etc/shadow"),
            was,
            "{n}"
        );
        assert_eq!(
            lab.sh(n, "cat /var/lib/clusterctl/users"),
            "alice\nbob\n",
            "{n}"
        );
    }

    // carol and bob out: locked (expired), files kept; w2 converges again.
    let inv = with_users(
        &lab,
        "  - name: alice\n    uid: 2001\n    groups: [video]\n",
    );
    let out = lab.run(&["diff", "-i", inv]);
    assert!(
        text(&out.stdout)
            .contains("==> w1: user: lock bob (not in the inventory; its files are kept)"),
        "{}",
        describe("diff lock", &out)
    );
    let out = lab.run(&["apply", "-i", inv]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        describe("apply lock", &out)
    );
    for n in ["head", "w1", "w2"] {
        assert_eq!(lab.sh(n, "getent shadow bob | cut -d: -f8"), "1\n", "{n}");
        assert_eq!(lab.sh(n, "test -d /home/bob && echo kept"), "kept\n", "{n}");
    }
    let out = lab.run(&["apply", "-i", inv]);
    assert!(
        text(&out.stdout).contains("ok=3 changed=0 failed=0 unreachable=0"),
        "{}",
        describe("apply after lock", &out)
    );
    lab.down();
}
