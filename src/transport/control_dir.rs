//! The run's private (0700) directory for ssh control sockets: created per
//! run, its masters closed and the directory removed on drop, and what runs
//! that died (SIGKILL) left behind cleaned up at the next start.

use std::path::{Path, PathBuf};

use super::ssh::close_masters;
use crate::error::{Error, Result};

/// A private (0700) directory for ssh control sockets, removed on drop.
pub struct ControlDir(PathBuf);

impl ControlDir {
    pub fn new() -> Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        clean_dead_runs(&base);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = base.join(format!("clusterctl-{}-{nanos:x}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|source| Error::Write {
                path: dir.clone(),
                source,
            })?;
        Ok(ControlDir(dir))
    }

    /// Where the control sockets go.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

/// Close the ssh masters and remove the control directory of every earlier
/// run on this machine that died without cleaning up (SIGKILL): otherwise
/// their masters would hold connections to the nodes for minutes.
fn clean_dead_runs(base: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    // SAFETY: getuid(2) cannot fail.
    let me = unsafe { libc::getuid() };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("clusterctl-")
            .and_then(|r| r.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<i32>().ok())
        else {
            continue;
        };
        let ours = e.metadata().is_ok_and(|m| m.is_dir() && m.uid() == me);
        // SAFETY: kill(2) with signal 0 only checks whether the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if !ours || alive {
            continue;
        }
        close_masters(&e.path());
        let _ = std::fs::remove_dir_all(e.path());
    }
}

impl Drop for ControlDir {
    /// Each transport closes its own master; this closes what is left (a
    /// head master a worker's jump made when the head itself was not
    /// selected), so no ssh process outlives the run.
    fn drop(&mut self) {
        close_masters(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dead run's control directory goes; a live run's stays.
    #[test]
    fn control_dirs_of_dead_runs_are_cleaned_up() {
        let base = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let gone = base.path().join(format!("clusterctl-{dead}-1a2b"));
        let live = base
            .path()
            .join(format!("clusterctl-{}-3c4d", std::process::id()));
        let other = base.path().join("clusterctl-notapid-5e6f");
        for d in [&gone, &live, &other] {
            std::fs::create_dir(d).unwrap();
            std::fs::write(d.join("not-a-socket"), "").unwrap();
        }
        clean_dead_runs(base.path());
        assert!(!gone.exists());
        assert!(live.exists() && other.exists());
    }
}
