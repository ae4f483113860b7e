//! `clusterctl lab down`, and the teardown `up` also uses: stopping hosts
//! (recorded PIDs, verified by start time, then their cgroups), the bridge
//! holder, the controller's veth, the state and disk directories, the
//! inotify limit.

use std::fs;
use std::time::{Duration, Instant};

use super::state::{self, HostRecord, Lock, Paths, Proc};
use super::{net, nspawn, topology};
use crate::cli::LabCommonArgs;
use crate::error::{Error, Result};

/// Kill every recorded process of a host and wait for them to be gone; a
/// systemd host's supervisor first (so it starts nothing again), then every
/// process of its cgroup.
pub(super) fn stop_hosts(prefix: &str, records: &[HostRecord]) -> Result<()> {
    let mut procs = Vec::new();
    for r in records {
        if let Some(init) = r.init {
            init.kill();
            procs.push(init);
        }
        // --kill-child: killing unshare also kills an init we never learnt of.
        r.unshare.kill();
        procs.push(r.unshare);
    }
    let left = wait_gone_or_err(&procs)?;
    debug_assert!(left.is_empty());
    for r in records.iter().filter(|r| r.stack.is_some()) {
        nspawn::kill_cgroups(prefix, Some(&r.name))?;
    }
    Ok(())
}

fn wait_gone_or_err(procs: &[Proc]) -> Result<Vec<Proc>> {
    let left = state::wait_gone(procs, Duration::from_secs(10));
    if left.is_empty() {
        Ok(left)
    } else {
        Err(Error::lab(format!(
            "processes {:?} did not exit after SIGKILL",
            left.iter().map(|p| p.pid).collect::<Vec<_>>()
        )))
    }
}

/// Remove a whole lab (or what is left of it). Returns how many hosts it stopped.
pub(super) fn teardown(prefix: &str) -> Result<usize> {
    let paths = Paths::new(prefix);
    // A damaged state file must not be taken for "nothing recorded": the hosts
    // it listed may still run, and removing the record would orphan them.
    let st = paths.load().map_err(|e| Error::Lab {
        message: format!("cannot read the lab's state ({e}); nothing was stopped"),
        help: Some(format!(
            "repair or inspect /run/clusterctl-lab/{prefix}/state.yaml; its hosts may still run (ps -ef | grep 'lab init-host --prefix {prefix}')"
        )),
    })?;
    let mut stopped = 0;
    // The controller's veth first: deleting it deletes its peer at once.
    net::remove_ctl(prefix)?;
    if let Some(st) = &st {
        stopped = st
            .hosts
            .iter()
            .filter(|h| h.unshare.alive() || h.init.is_some_and(|i| i.alive()))
            .count();
        stop_hosts(prefix, &st.hosts)?;
        if let Some(b) = st.bridges {
            b.kill();
            wait_gone_or_err(&[b])?;
        }
    }
    // Whatever a crash left in the lab's cgroups (systemd hosts).
    nspawn::kill_cgroups(prefix, None)?;
    for dir in [&paths.dir, &paths.disk()] {
        if dir.exists() {
            fs::remove_dir_all(dir).map_err(|source| Error::Write {
                path: dir.to_path_buf(),
                source,
            })?;
        }
    }
    // The parent of every lab's disks goes when it holds none (never forced).
    let _ = fs::remove_dir(state::DISK_DIR);
    nspawn::restore_inotify()?;
    Ok(stopped)
}

pub(super) fn down(args: &LabCommonArgs) -> Result<i32> {
    topology::validate_prefix(&args.prefix)?;
    let _lock = Lock::acquire()?;
    let t0 = Instant::now();
    let paths = Paths::new(&args.prefix);
    let existed = paths.dir.exists()
        || paths.disk().exists()
        || net::link_exists(&format!("{}-ctl", args.prefix));
    let stopped = teardown(&args.prefix)?;
    if existed {
        say!(
            "lab {}: down ({stopped} hosts stopped, namespaces, veths and state removed) in {:.1}s",
            args.prefix,
            t0.elapsed().as_secs_f64()
        );
    } else {
        say!("lab {}: nothing to remove", args.prefix);
    }
    Ok(0)
}
