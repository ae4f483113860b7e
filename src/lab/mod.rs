//! `clusterctl lab`: a virtual cluster on this Linux machine (network, mount,
//! UTS, IPC and PID namespaces per host, overlay roots, real sshd).
//!
//! This file owns the dispatch of the subcommands and what they all share:
//! their preconditions (root, Linux, tools), the inherited descriptors made
//! close-on-exec, loading a running lab. The subcommands: `up` (converge or
//! rebuild; `start` starts hosts, `kinds` is what was asked for), `down`
//! (teardown), `status`, `console` (`exec`, `ssh`), `reboot`; the hidden
//! `init-host` is `host`'s, `supervise-host` is `nspawn`'s. The pieces:
//! `topology` (names, addresses, MACs: pure), `state` (what a running lab
//! recorded, the lock, processes), `net` (bridges and veths via `ip`),
//! `host` (starting a host and its PID 1), `nspawn` (systemd-kind hosts),
//! `image` (their roots and the mirror), `serve` (the mirror's HTTP server),
//! `output` (inventory, ssh files).
//!
//! Design in short: every host is an `unshare` of new net/mount/UTS/IPC/PID
//! namespaces running `clusterctl lab init-host` as PID 1. That init builds
//! an overlay root (lower: the machine's `/`, upper: a tmpfs mounted only in
//! the host), pivots into it, waits until `up` has plugged its veths into the
//! bridges (which live in the namespace `<prefix>-br`), runs the host's boot
//! script (`service ssh start`, `dhclient` on workers) and then reaps
//! orphans. The only thing in the root namespace is the controller's veth
//! `<prefix>-ctl`. `down` kills each host's recorded PIDs (verified by start
//! time), which ends the whole PID namespace, kills the bridge holder (the
//! bridges and veths go with its namespace), deletes `<prefix>-ctl` and the
//! state directory; the hosts' mounts die with their mount namespaces.

/// println! that never panics on a closed stdout (`lab up | head`).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}
/// print! that never panics on a closed stdout.
macro_rules! say_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

pub mod host;
pub mod image;
pub mod net;
pub mod nspawn;
pub mod output;
pub mod serve;
pub mod state;
pub mod suite;
pub mod topology;

mod console;
mod down;
mod kinds;
mod reboot;
mod start;
mod status;
mod up;

use std::fs;
use std::path::Path;

use crate::cli::{LabCommand, LabCommonArgs};
use crate::error::{Error, Result};
use state::{LabState, Paths};
use topology::Topology;

pub fn run(cmd: LabCommand) -> Result<i32> {
    // Hosts live on after this command: they must not keep what our caller
    // handed us beyond stdio (e.g. `flock LOCK clusterctl lab up` would hold
    // LOCK until `lab down`, a `| tee` would never see EOF).
    cloexec_inherited_fds();
    if let LabCommand::InitHost(args) = &cmd {
        return host::init_host(&args.common.prefix, &args.host);
    }
    if let LabCommand::SuperviseHost(args) = &cmd {
        return nspawn::supervise(&args.common.prefix, &args.host);
    }
    preconditions()?;
    match cmd {
        LabCommand::Up(args) => up::up(&args),
        LabCommand::Down(args) => down::down(&args),
        LabCommand::Status(args) => status::status(&args),
        LabCommand::Exec(args) => console::exec(&args),
        LabCommand::Ssh(args) => console::ssh(&args),
        LabCommand::Reboot(args) => reboot::reboot(&args),
        LabCommand::InitHost(_) | LabCommand::SuperviseHost(_) => Ok(0),
    }
}

/// Mark every descriptor above stderr close-on-exec.
fn cloexec_inherited_fds() {
    let Ok(dir) = fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: fcntl(2) F_SETFD on a descriptor number; an already closed
        // one (the read_dir's own) just fails with EBADF.
        unsafe {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
}

/// Linux and root, or one clear line saying why not.
fn preconditions() -> Result<()> {
    if !cfg!(target_os = "linux") {
        return Err(Error::Lab {
            message: "the lab needs Linux (network, mount and PID namespaces)".into(),
            help: Some("run it on a Linux machine or VM".into()),
        });
    }
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(Error::Lab {
            message: "the lab needs root (it creates namespaces, veths and mounts)".into(),
            help: Some("run it with sudo, e.g. sudo clusterctl lab up".into()),
        });
    }
    require(&["ip", "unshare", "nsenter", "ssh-keygen", "/usr/sbin/sshd"])
}

/// Every tool is on PATH (or at its absolute path), or one clear error.
fn require(tools: &[&str]) -> Result<()> {
    for tool in tools {
        let found = if tool.starts_with('/') {
            Path::new(tool).exists()
        } else {
            std::env::var_os("PATH")
                .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).exists()))
        };
        if !found {
            return Err(Error::Lab {
                message: format!("`{tool}` is missing"),
                help: Some("install the lab's packages: sudo scripts/install-deps.sh".into()),
            });
        }
    }
    Ok(())
}

fn topology_of(state: &LabState) -> Result<Topology> {
    Topology::new(&state.prefix, &state.wan, &state.lan, state.workers)
}

fn load_running(common: &LabCommonArgs) -> Result<(Paths, LabState)> {
    topology::validate_prefix(&common.prefix)?;
    let paths = Paths::new(&common.prefix);
    match paths.load()? {
        Some(st) => Ok((paths, st)),
        None => Err(Error::Lab {
            message: format!("no lab with prefix {} is up", common.prefix),
            help: Some("start one with: sudo clusterctl lab up".into()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_is_lowercase_in_files() {
        assert_eq!(
            format!("{:?}", topology::Role::Worker).to_lowercase(),
            "worker"
        );
    }
}
