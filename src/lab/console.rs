//! `clusterctl lab exec` and `clusterctl lab ssh`: a shell or a command on a
//! running host, through its namespaces or over SSH, exit code passed through.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use super::state::{LabState, Proc};
use super::topology::Topology;
use super::{host, load_running, nspawn, output, topology_of};
use crate::cli::LabExecArgs;
use crate::error::{Error, Result};

fn exit_code(status: std::process::ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

fn running_host(args: &LabExecArgs) -> Result<(LabState, Topology, Proc)> {
    let (_paths, st) = load_running(&args.common)?;
    let topo = topology_of(&st)?;
    let Some(rec) = st.host(&args.host) else {
        let names: Vec<_> = st.hosts.iter().map(|h| h.name.as_str()).collect();
        return Err(Error::Lab {
            message: format!("lab {} has no host {:?}", st.prefix, args.host),
            help: Some(format!("its hosts: {}", names.join(", "))),
        });
    };
    let target = match rec.stack {
        None => rec.init.filter(Proc::alive),
        Some(_) => nspawn::leader(rec.unshare),
    };
    match target {
        Some(init) => Ok((st.clone(), topo, init)),
        None => Err(Error::Lab {
            message: format!("host {} is not running", args.host),
            help: Some("`sudo clusterctl lab up` restarts it".into()),
        }),
    }
}

/// Console access: run a command in all of the host's namespaces, its root
/// and a clean environment, passing its exit code through.
pub(super) fn exec(args: &LabExecArgs) -> Result<i32> {
    let (st, _topo, init) = running_host(args)?;
    let pid = init.pid.to_string();
    let term = std::env::var("TERM").unwrap_or_else(|_| "dumb".into());
    let systemd = st.host(&args.host).is_some_and(|h| h.stack.is_some());
    let mut cmd = Command::new("nsenter");
    cmd.args(["-t", &pid, "-m", "-u", "-i", "-n", "-p", "-r", "-w"]);
    if systemd {
        cmd.arg("-C"); // its cgroup namespace too: systemctl inside sees its own tree
    }
    cmd.arg("--")
        .args(["/usr/bin/env", "-i"])
        .arg(format!("PATH={}", host::HOST_PATH))
        .args([
            "HOME=/root",
            "USER=root",
            "LOGNAME=root",
            "SHELL=/bin/bash",
            "LANG=C.UTF-8",
        ])
        .arg(format!("TERM={term}"));
    if args.command.is_empty() {
        cmd.args(["/bin/bash", "-l"]);
    } else {
        cmd.args(&args.command);
    }
    let status = cmd
        .status()
        .map_err(|e| Error::lab(format!("cannot run nsenter: {e}")))?;
    Ok(exit_code(status))
}

/// SSH with the lab's written ssh_config (workers through the head).
pub(super) fn ssh(args: &LabExecArgs) -> Result<i32> {
    let (st, _topo, _init) = running_host(args)?;
    let cfg = st.inventory.with_file_name(output::SSH_CONFIG);
    if !cfg.exists() {
        return Err(Error::Lab {
            message: format!("{} is missing", cfg.display()),
            help: Some("`sudo clusterctl lab up` writes it again".into()),
        });
    }
    let mut cmd = Command::new("ssh");
    cmd.arg("-F").arg(&cfg);
    if args.command.is_empty() {
        cmd.arg("-t");
    }
    cmd.arg(&args.host);
    if !args.command.is_empty() {
        cmd.arg("--").args(&args.command);
    }
    let status = cmd
        .status()
        .map_err(|e| Error::lab(format!("cannot run ssh: {e}")))?;
    Ok(exit_code(status))
}
