//! Shell completion of node names (bash, driven as bash's completion
//! machinery would call it) and the man pages.

use std::path::Path;
use std::process::Command;

fn bin_dir() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_clusterctl"))
        .parent()
        .unwrap()
}

/// What bash would offer for the last word of `words`.
fn complete(dir: &Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let script = format!(
        "source <(clusterctl completions bash)\n\
         COMP_WORDS=({words}); COMP_CWORD={cword}\n\
         _clusterctl_with_nodes clusterctl \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        words = quoted.join(" "),
        cword = words.len() - 1
    );
    let path = format!(
        "{}:{}",
        bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env("PATH", path)
        .env_remove("CLUSTERCTL_INVENTORY")
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_node_names_from_the_inventory() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(
        root.join("examples/cluster.yaml"),
        dir.path().join("c.yaml"),
    )
    .unwrap();
    let got = complete(
        dir.path(),
        &["clusterctl", "diff", "-i", "c.yaml", "--nodes", "node0"],
    );
    assert_eq!(got, ["node01", "node02", "node03", "node04"]);
    // A host list: the items after the last comma.
    let got = complete(
        dir.path(),
        &[
            "clusterctl",
            "render",
            "-i",
            "c.yaml",
            "--node",
            "head,node03,h",
        ],
    );
    assert_eq!(got, ["head,node03,head"]);
    // Default inventory (cluster.yaml in the working directory) and no
    // inventory at all: node names, or nothing (never an error message).
    std::fs::copy(dir.path().join("c.yaml"), dir.path().join("cluster.yaml")).unwrap();
    assert_eq!(
        complete(dir.path(), &["clusterctl", "apply", "--nodes", "he"]),
        ["head"]
    );
    let empty = tempfile::tempdir().unwrap();
    assert!(complete(empty.path(), &["clusterctl", "apply", "--nodes", ""]).is_empty());
}

#[test]
fn man_pages_for_the_tool_and_each_subcommand() {
    let out = Command::new(env!("CARGO_BIN_EXE_clusterctl"))
        .arg("man")
        .output()
        .unwrap();
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(
        page.starts_with(".ie") && page.contains(".TH clusterctl 1"),
        "{page}"
    );
    assert!(page.contains("\\-\\-color"), "{page}");
    let dir = tempfile::tempdir().unwrap();
    let mandir = dir.path().join("man1");
    let st = Command::new(env!("CARGO_BIN_EXE_clusterctl"))
        .args(["man", "--dir"])
        .arg(&mandir)
        .status()
        .unwrap();
    assert!(st.success());
    let apply = std::fs::read_to_string(mandir.join("clusterctl-apply.1")).unwrap();
    assert!(
        apply.contains(".TH clusterctl-apply 1  \"clusterctl-apply 0."),
        "{apply}"
    );
    assert!(apply.contains("\\-\\-yes"), "{apply}");
    assert!(
        !mandir.join("clusterctl-complete-nodes.1").exists(),
        "hidden helpers get no page"
    );
}
