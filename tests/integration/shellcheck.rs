//! Every shell script in the repository passes `shellcheck` (as `.ci/run`
//! checks too), so `scripts/test.sh` catches a finding before CI does.
//! Without shellcheck the test is skipped with a note, except under CI
//! (`CI=true`), where a missing linter is a failure: scripts/install-deps.sh
//! installs it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Every `.sh` under `dir`, recursively (`target/` and hidden dirs aside).
fn scripts(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            if !name.starts_with('.') && name != "target" {
                scripts(&p, out);
            }
        } else if name.ends_with(".sh") {
            out.push(p);
        }
    }
}

#[test]
fn every_shell_script_passes_shellcheck() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for d in ["src", "scripts", "bench"] {
        scripts(&root.join(d), &mut files);
    }
    files.sort();
    assert!(
        files.iter().any(|f| f.ends_with("src/facts/probe.sh")),
        "{files:?}"
    );
    let out = match Command::new("shellcheck").args(&files).output() {
        Ok(out) => out,
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("shellcheck cannot run ({e}); scripts/install-deps.sh installs it")
        }
        Err(e) => {
            eprintln!("skipped: shellcheck cannot run ({e}); apt-get install shellcheck");
            return;
        }
    };
    assert!(
        out.status.success(),
        "shellcheck found problems:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
