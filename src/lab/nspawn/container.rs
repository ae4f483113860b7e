//! A running systemd-kind container seen from outside: its PID 1 under the
//! supervisor, commands run inside it (`nsenter`), its boot id, waiting for
//! it to finish booting, asking it to reboot.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::lab::host::HOST_PATH;
use crate::lab::state::Proc;

/// The PIDs of a process's children.
fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    if let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(text) = fs::read_to_string(t.path().join("children")) {
                out.extend(
                    text.split_whitespace()
                        .filter_map(|w| w.parse::<i32>().ok()),
                );
            }
        }
    }
    out
}

/// Is this process PID 1 of a PID namespace below ours?
fn is_namespace_init(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .is_some_and(|ids| {
                let ids: Vec<&str> = ids.split_whitespace().collect();
                ids.len() >= 2 && ids.last() == Some(&"1")
            })
    })
}

/// The container's PID 1 (systemd) under a supervisor, if it runs now.
pub fn leader(supervisor: Proc) -> Option<Proc> {
    if !supervisor.alive() {
        return None;
    }
    // Children: the network namespace holder (sleep) and nspawn.
    for nspawn in children(supervisor.pid) {
        for c in children(nspawn) {
            if is_namespace_init(c) {
                return Proc::of(c);
            }
        }
    }
    None
}

/// `nsenter` into every namespace of the container with PID 1 `pid`.
pub fn enter(pid: i32) -> Command {
    let mut cmd = Command::new("nsenter");
    cmd.arg("-t")
        .arg(pid.to_string())
        .args(["-m", "-u", "-i", "-n", "-p", "-C", "-r", "-w", "--"])
        .args(["/usr/bin/env", "-i"])
        .arg(format!("PATH={HOST_PATH}"))
        .args(["HOME=/root", "LANG=C.UTF-8"]);
    cmd
}

/// Run a command in a container; its stdout, trimmed, or None if it failed to run.
fn in_container(pid: i32, args: &[&str]) -> Option<(bool, String)> {
    let out = enter(pid)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    Some((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    ))
}

/// The boot id of a running container.
pub fn boot_id(pid: i32) -> Option<String> {
    in_container(pid, &["cat", "/proc/sys/kernel/random/boot_id"])
        .filter(|(ok, _)| *ok)
        .map(|(_, id)| id)
}

/// Wait until the host's systemd has finished booting; returns its state
/// (`running`, or `degraded` with the failed units) and its PID 1.
pub fn wait_booted(
    name: &str,
    supervisor: Proc,
    not_leader: Option<Proc>,
    deadline: Instant,
    log: &Path,
) -> Result<(String, Proc)> {
    let fail = |msg: String| Error::Lab {
        message: format!("host {name}: {msg}"),
        help: Some(format!(
            "its console log is {}; `clusterctl lab down` cleans up",
            log.display()
        )),
    };
    loop {
        if !supervisor.alive() {
            return Err(fail("its container stopped".into()));
        }
        if Instant::now() > deadline {
            return Err(fail("did not finish booting in time".into()));
        }
        let Some(l) = leader(supervisor).filter(|l| Some(*l) != not_leader) else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        // `--wait` blocks until startup is done; early on, before dbus,
        // systemctl cannot connect yet and says nothing.
        match in_container(l.pid, &["systemctl", "is-system-running", "--wait"]) {
            Some((_, state)) if state == "running" => return Ok((state, l)),
            Some((_, state)) if state == "degraded" => {
                let failed = in_container(
                    l.pid,
                    &[
                        "systemctl",
                        "list-units",
                        "--failed",
                        "--plain",
                        "--no-legend",
                    ],
                )
                .map(|(_, t)| {
                    t.lines()
                        .filter_map(|l| l.split_whitespace().next())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
                return Ok((format!("degraded ({failed})"), l));
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Ask a running container to reboot (`systemctl reboot` inside).
pub fn request_reboot(name: &str, leader: Proc) -> Result<()> {
    match in_container(leader.pid, &["systemctl", "reboot"]) {
        Some((true, _)) => Ok(()),
        _ => Err(Error::lab(format!(
            "host {name}: `systemctl reboot` failed"
        ))),
    }
}
