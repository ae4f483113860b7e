//! The bad-inventory corpus: every file under tests/corpus/bad/ must fail
//! `clusterctl check` with exactly the messages pinned in its `.stderr` file.
//! Set CLUSTERCTL_BLESS=1 to (re)write the pinned files, then review the diff.

use std::path::Path;

use assert_cmd::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn check(rel: &str) -> std::process::Output {
    Command::cargo_bin("clusterctl")
        .unwrap()
        .current_dir(root())
        .env_remove("CLUSTERCTL_INVENTORY")
        .args(["check", "-i", rel])
        .output()
        .unwrap()
}

#[test]
fn bad_inventories_give_the_pinned_messages() {
    let dir = root().join("tests/corpus/bad");
    let mut yamls: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    yamls.sort();
    assert!(
        yamls.len() >= 250,
        "the corpus must keep at least 250 bad inventories"
    );
    let bless = std::env::var_os("CLUSTERCTL_BLESS").is_some();
    let mut failures = Vec::new();
    for yaml in &yamls {
        let name = yaml.file_stem().unwrap().to_string_lossy().into_owned();
        let rel = format!("tests/corpus/bad/{name}.yaml");
        let out = check(&rel);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{rel}: exit code; stderr:\n{stderr}"
        );
        assert!(out.stdout.is_empty(), "{rel}: printed to stdout");
        assert!(!stderr.contains("panicked"), "{rel} panicked:\n{stderr}");
        assert!(
            !stderr.chars().any(|c| c.is_control() && c != '\n'),
            "{rel}: a raw control character reached the terminal:\n{stderr:?}"
        );
        let pinned = dir.join(format!("{name}.stderr"));
        if bless {
            std::fs::write(&pinned, &stderr).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&pinned).unwrap_or_else(|_| {
            panic!(
                "{} is missing; run with CLUSTERCTL_BLESS=1",
                pinned.display()
            )
        });
        if want != stderr {
            failures.push(format!("--- {rel}\nwant:\n{want}got:\n{stderr}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_pinned_message_has_its_inventory() {
    let dir = root().join("tests/corpus/bad");
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|e| e == "stderr") {
            assert!(
                p.with_extension("yaml").exists(),
                "{} has no .yaml",
                p.display()
            );
        }
    }
}

#[test]
fn many_problems_are_reported_at_once() {
    let out = check("tests/corpus/bad/many-problems.yaml");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.matches("error: ").count(), 3, "{stderr}");
    assert!(stderr.ends_with("has 3 problems\n"), "{stderr}");
}

/// Issue 22: unknown keys and wrong types came one per run.
#[test]
fn structural_problems_are_reported_at_once() {
    let out = check("tests/corpus/bad/many-structural-problems.yaml");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.matches("error: ").count(), 5, "{stderr}");
    for at in [
        ":3:1: unknown field `domian`",
        ":14:3: unknown field `colour`",
        ":20:8: unknown value `trusted`",
        ":22:10: not a whole number",
        ":24:5: expected a list",
    ] {
        assert!(stderr.contains(at), "{at}: {stderr}");
    }
}

#[test]
fn good_inventories_pass() {
    let mut files = vec!["examples/cluster.yaml".to_string()];
    for dir in ["inventories", "tests/corpus/good"] {
        for e in std::fs::read_dir(root().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|e| e == "yaml") {
                files.push(format!(
                    "{dir}/{}",
                    p.file_name().unwrap().to_string_lossy()
                ));
            }
        }
    }
    assert!(files.len() >= 5);
    for f in files {
        let out = check(&f);
        assert!(
            out.status.success(),
            "{f}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(": ok: cluster"));
    }
}
