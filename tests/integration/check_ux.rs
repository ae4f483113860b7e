//! `check` over the templates in use and as JSON, `clusterctl example`,
//! `render --nodes` host lists and `render --out`'s removal of what it
//! wrote for nodes that are gone, colour only when asked or on a terminal.

use std::path::Path;

use assert_cmd::Command;

fn clusterctl(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("clusterctl").unwrap();
    c.current_dir(dir)
        .env_remove("CLUSTERCTL_INVENTORY")
        .env_remove("NO_COLOR");
    c
}

fn with_example() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(
        root.join("examples/cluster.yaml"),
        dir.path().join("cluster.yaml"),
    )
    .unwrap();
    dir
}

/// `check` in `dir` exits 1; its stderr.
fn check_fails(dir: &Path) -> String {
    let out = clusterctl(dir)
        .arg("check")
        .assert()
        .code(1)
        .get_output()
        .clone();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn check_renders_the_templates_in_use_and_names_the_variable_and_file() {
    let dir = with_example();
    clusterctl(dir.path()).arg("check").assert().success();
    let t = dir.path().join("templates/common/etc");
    std::fs::create_dir_all(&t).unwrap();
    std::fs::write(t.join("hostname.j2"), "{{ node.nmae }}\n").unwrap();
    let err = check_fails(dir.path());
    assert!(err.contains("`node.nmae` is undefined"), "{err}");
    assert!(
        err.contains("override templates/common/etc/hostname.j2"),
        "{err}"
    );
    assert_eq!(
        err.matches("error: ").count(),
        1,
        "one problem, once: {err}"
    );

    // A misspelled override path: check catches it (it used to pass).
    std::fs::remove_file(t.join("hostname.j2")).unwrap();
    std::fs::write(t.join("hostnme.j2"), "x\n").unwrap();
    let out = clusterctl(dir.path())
        .args(["check", "--output", "json"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    let msg = v["problems"][0]["message"].as_str().unwrap();
    assert!(msg.contains("overrides no built-in template"), "{v}");
}

#[test]
fn check_json_lists_every_value_problem_with_its_position() {
    let dir = with_example();
    let text = std::fs::read_to_string(dir.path().join("cluster.yaml")).unwrap();
    let bad = text
        .replace("lan_ip: 10.0.0.1", "lan_ip: 10.9.9.9")
        .replace("domain: cluster.lan", "domain: lan");
    std::fs::write(dir.path().join("cluster.yaml"), bad).unwrap();
    let out = clusterctl(dir.path())
        .args(["check", "--output", "json"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems = v["problems"].as_array().unwrap();
    assert!(problems.len() >= 2, "{v}");
    for p in problems {
        assert!(
            p["line"].as_u64().is_some() && p["column"].as_u64().is_some(),
            "{p}"
        );
        assert_eq!(p["file"], "cluster.yaml");
    }
    // Valid: ok and a summary.
    let dir = with_example();
    let out = clusterctl(dir.path())
        .args(["check", "--output", "json"])
        .assert()
        .success()
        .get_output()
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert!(
        v["summary"]
            .as_str()
            .unwrap()
            .contains("head head + 4 workers"),
        "{v}"
    );
}

#[test]
fn example_is_the_commented_inventory_and_passes_check() {
    let dir = tempfile::tempdir().unwrap();
    let out = clusterctl(dir.path())
        .arg("example")
        .assert()
        .success()
        .get_output()
        .clone();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert_eq!(
        out.stdout,
        std::fs::read(root.join("examples/cluster.yaml")).unwrap()
    );
    std::fs::write(dir.path().join("cluster.yaml"), &out.stdout).unwrap();
    clusterctl(dir.path()).arg("check").assert().success();
}

#[test]
fn render_out_removes_only_what_it_wrote_for_nodes_that_are_gone() {
    let dir = with_example();
    clusterctl(dir.path())
        .args(["render", "--out", "r"])
        .assert()
        .success();
    let r = dir.path().join("r");
    assert!(r.join("node04/etc/hosts").is_file());
    std::fs::write(r.join("node04/etc/mine.txt"), "the user's").unwrap();
    std::fs::write(r.join("notes.txt"), "the user's").unwrap();
    // Regression (#22): a planted manifest listing files clusterctl never
    // wrote (without a fingerprint, or with a wrong one) removes nothing.
    std::fs::write(r.join("node04/etc/theirs.txt"), "the user's").unwrap();
    let mut planted = std::fs::read_to_string(r.join(".clusterctl-render")).unwrap();
    planted.push_str("node04/etc/mine.txt\nnode04/etc/theirs.txt\t0123456789abcdef\n");
    std::fs::write(r.join(".clusterctl-render"), planted).unwrap();
    // node04 leaves the inventory; only head and node01 are rendered now.
    let text = std::fs::read_to_string(dir.path().join("cluster.yaml")).unwrap();
    let text = text
        .replace("names: node[02-04]", "names: node[02-03]")
        .replace("      - \"dc:a6:32:00:00:04\"\n", "");
    std::fs::write(dir.path().join("cluster.yaml"), text).unwrap();
    clusterctl(dir.path())
        .args(["render", "--out", "r", "--nodes", "head,node01"])
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "node04: removed (no longer rendered)",
        ));
    assert!(!r.join("node04/etc/hosts").exists());
    assert!(r.join("node04/etc/mine.txt").is_file(), "not ours: kept");
    assert!(r.join("node04/etc/theirs.txt").is_file(), "not ours: kept");
    assert!(r.join("notes.txt").is_file());
    assert!(
        r.join("node02/etc/hosts").is_file(),
        "still in the inventory: kept"
    );
    let manifest = std::fs::read_to_string(r.join(".clusterctl-render")).unwrap();
    assert!(!manifest.contains("node04/"), "{manifest}");
    assert!(manifest.contains("node02/etc/hosts\t"), "{manifest}");

    // A link planted in place of the manifest is replaced, never written
    // through (it sent the manifest's lines into the file it pointed at).
    let outside = dir.path().join("outside.txt");
    std::fs::write(&outside, "untouched\n").unwrap();
    std::fs::remove_file(r.join(".clusterctl-render")).unwrap();
    std::os::unix::fs::symlink(&outside, r.join(".clusterctl-render")).unwrap();
    clusterctl(dir.path())
        .args(["render", "--out", "r"])
        .assert()
        .success();
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "untouched\n");
    assert!(std::fs::symlink_metadata(r.join(".clusterctl-render"))
        .unwrap()
        .is_file());
}

#[test]
fn render_nodes_takes_a_host_list() {
    let dir = with_example();
    let out = clusterctl(dir.path())
        .args(["render", "--nodes", "node[02-03]"])
        .assert()
        .success()
        .get_output()
        .clone();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("==> node02: ") && text.contains("==> node03: "));
    assert!(!text.contains("==> head: ") && !text.contains("==> node04: "));
}

#[test]
fn colour_only_when_asked_or_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let plain = clusterctl(dir.path())
        .args(["check", "-i", "nope.yaml"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    assert!(!plain.stderr.contains(&0x1b), "no colour in a pipe");
    let out = clusterctl(dir.path())
        .args(["--color", "always", "check", "-i", "nope.yaml"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("\x1b[1;31merror:\x1b[0m cannot read nope.yaml"),
        "{err:?}"
    );
    assert!(err.contains("\x1b[1;36mhelp:\x1b[0m"), "{err:?}");
    let out = clusterctl(dir.path())
        .args(["--color", "never", "check", "-i", "nope.yaml"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    assert!(!out.stderr.contains(&0x1b));
}

/// Issue 22: an override is code, and it cannot exhaust the machine: a
/// runaway loop, a string bomb written out and one held in memory each
/// stop `check` with the template's name.
#[test]
fn runaway_overrides_stop_check_with_the_templates_name() {
    let dir = with_example();
    let t = dir.path().join("templates/common/etc");
    std::fs::create_dir_all(&t).unwrap();
    for (text, says) in [
        (
            "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
            "takes more than 4000000 steps",
        ),
        (
            "{% for i in range(1000) %}{{ 'x' * 10000000 }}{% endfor %}",
            "writes more than 8 MiB",
        ),
        (
            "{% set a = 'x' * 30000000 %}{% set b = a ~ a ~ a %}{{ b | length }}",
            "needs more than 32 MiB of memory",
        ),
        // Folded when the template is compiled, not rendered.
        (
            "{{ ('x' * 60000000) | length }}",
            "needs more than 32 MiB of memory",
        ),
    ] {
        std::fs::write(t.join("hostname.j2"), text).unwrap();
        let err = check_fails(dir.path());
        assert!(err.contains(says), "{text}: {err}");
        assert!(
            err.contains("common/etc/hostname.j2 (override templates/common/etc/hostname.j2)"),
            "{text}: {err}"
        );
    }
}
