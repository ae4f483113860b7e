//! The lab's cgroups (`clusterctl-lab-<prefix>/<host>` under each
//! hierarchy): a supervisor joins its host's; stopping a host or a lab kills
//! every process in them and removes them.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The cgroup of a whole lab, under each hierarchy's root.
pub fn lab_cgroup(prefix: &str) -> String {
    format!("clusterctl-lab-{prefix}")
}

/// The cgroup hierarchies a supervisor joins: the unified root on a pure
/// cgroup v2 machine, else the named `systemd` v1 hierarchy and `unified`.
fn cgroup_roots() -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    if base.join("cgroup.controllers").exists() {
        return vec![base.to_path_buf()];
    }
    ["systemd", "unified"]
        .iter()
        .map(|d| base.join(d))
        .filter(|p| p.join("cgroup.procs").exists())
        .collect()
}

/// Every directory named like the lab's cgroup under any hierarchy.
fn lab_cgroup_dirs(prefix: &str) -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    let name = lab_cgroup(prefix);
    let mut dirs = Vec::new();
    if base.join(&name).is_dir() {
        dirs.push(base.join(&name));
    }
    if let Ok(entries) = fs::read_dir(base) {
        for e in entries.flatten() {
            let d = e.path().join(&name);
            if d.is_dir() {
                dirs.push(d);
            }
        }
    }
    dirs.sort();
    dirs
}

/// All directories of a cgroup tree, deepest first.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(entries) = fs::read_dir(&d) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(e.path());
                }
            }
        }
        out.push(d);
    }
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out
}

fn procs_of(dirs: &[PathBuf]) -> Vec<i32> {
    let mut pids = Vec::new();
    for d in dirs {
        if let Ok(text) = fs::read_to_string(d.join("cgroup.procs")) {
            pids.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Kill every process in the cgroup `sub` (e.g. `<lab>/<host>`, or `<lab>`)
/// of every hierarchy, then remove those cgroups. Missing is fine.
pub fn kill_cgroups(prefix: &str, host: Option<&str>) -> Result<()> {
    let mut tops: Vec<PathBuf> = lab_cgroup_dirs(prefix);
    if let Some(h) = host {
        tops = tops.into_iter().map(|d| d.join(h)).collect();
    }
    let dirs: Vec<PathBuf> = tops.iter().flat_map(|t| tree(t)).collect();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let pids = procs_of(&dirs);
        if pids.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            return Err(Error::lab(format!(
                "processes {pids:?} of lab {prefix} survive SIGKILL"
            )));
        }
        for p in pids {
            // SAFETY: kill(2); these PIDs are in the lab's own cgroup right now.
            unsafe {
                libc::kill(p, libc::SIGKILL);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for top in &tops {
        for d in tree(top) {
            let mut tries = 0;
            while d.exists() && fs::remove_dir(&d).is_err() && tries < 100 {
                // An exiting task may still be counted for a moment.
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            if d.exists() {
                return Err(Error::lab(format!("cannot remove cgroup {}", d.display())));
            }
        }
    }
    Ok(())
}

/// Move this process into `<lab>/<host>` of every hierarchy.
pub(super) fn join_cgroup(prefix: &str, host: &str) -> std::result::Result<(), String> {
    let roots = cgroup_roots();
    if roots.is_empty() {
        return Err("no cgroup hierarchy under /sys/fs/cgroup".into());
    }
    for root in roots {
        let dir = root.join(lab_cgroup(prefix)).join(host);
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        fs::write(
            dir.join("cgroup.procs"),
            format!("{}\n", std::process::id()),
        )
        .map_err(|e| format!("{}/cgroup.procs: {e}", dir.display()))?;
    }
    Ok(())
}
