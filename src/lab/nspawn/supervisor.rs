//! The supervisor of a systemd-kind host (`clusterctl lab supervise-host`):
//! started by `lab up` in the host's own network and mount namespaces, it
//! joins the host's cgroup, mounts its overlay root and a private /run, does
//! the `ready`/`go`/`booted` handshake, then runs `systemd-nspawn --boot`,
//! again after every reboot, each time in a fresh network namespace.

use std::fs;
use std::io::BufRead;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::cgroup::join_cgroup;
use crate::error::Result;
use crate::lab::host::{self, say};
use crate::lab::net;
use crate::lab::state::{Paths, Proc};

/// nspawn's exit code when the container asked for a reboot.
const REBOOT_EXIT: i32 = 133;

/// Start a host's supervisor (`unshare --net --mount` of `lab supervise-host`).
pub fn spawn(paths: &Paths, prefix: &str, host: &str) -> Result<host::Spawned> {
    host::spawn_with(
        paths,
        host,
        &["--net", "--mount", "--propagation", "private", "--"],
        &["lab", "supervise-host", "--prefix", prefix, host],
    )
}

fn mount(args: &[&str]) -> std::result::Result<(), String> {
    let out = Command::new("mount")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("mount: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "mount {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// What each boot of a host runs: its merged root, machine name and NICs.
struct Boot {
    root: PathBuf,
    machine: String,
    ifaces: Vec<String>,
}

/// `clusterctl lab supervise-host`: runs in the host's own network and mount
/// namespaces (made by `unshare`), never returns while the host runs.
pub fn supervise(prefix: &str, host: &str) -> Result<i32> {
    let paths = Paths::new(prefix);
    let boot = match prepare(&paths, prefix, host) {
        Ok(x) => x,
        Err(e) => {
            say(&format!("error {e}"));
            return Ok(1);
        }
    };
    say("ready");
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    if line.trim() != "go" {
        say("error no `go` from lab up");
        return Ok(1);
    }
    say("booted");
    host::release_handshake();
    Ok(boot_until_stopped(host, &boot))
}

/// Read what `lab up` left for the host (its image, its NICs), refuse the
/// machine's own namespaces, join the host's cgroup and mount its root.
fn prepare(paths: &Paths, prefix: &str, host: &str) -> std::result::Result<Boot, String> {
    let image = fs::read_to_string(paths.host_dir(host).join("image"))
        .map_err(|e| format!("image path: {e}"))?;
    let ifaces: Vec<String> = fs::read_to_string(paths.host_dir(host).join("ifaces"))
        .map_err(|e| format!("interface list: {e}"))?
        .lines()
        .map(str::to_string)
        .collect();
    let image = PathBuf::from(image.trim());
    if !image.join("etc/os-release").exists() {
        return Err(format!("image {} is missing", image.display()));
    }
    // Refuse to run in the machine's own namespaces (called by hand).
    let mine = fs::read_link("/proc/self/ns/net").ok();
    let init = fs::read_link("/proc/1/ns/net").ok();
    if mine.is_none() || mine == init {
        return Err("not in a namespace of its own".into());
    }
    join_cgroup(prefix, host)?;
    let disk = paths.host_disk(host);
    let root = disk.join("root");
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        image.display(),
        disk.join("upper").display(),
        disk.join("work").display()
    );
    mount(&["--make-rprivate", "/"])?;
    mount(&[
        "-t",
        "overlay",
        "-o",
        &opts,
        &format!("lab-{host}"),
        &root.to_string_lossy(),
    ])?;
    // nspawn keeps files under /run/systemd/nspawn: on a tmpfs of our own,
    // they go with this namespace.
    mount(&["-t", "tmpfs", "-o", "mode=0755,size=16m", "lab-run", "/run"])?;
    Ok(Boot {
        root,
        machine: format!("{prefix}-{host}"),
        ifaces,
    })
}

/// Boot the host, again whenever it reboots; the supervisor's exit code
/// once it stops (or cannot be started).
fn boot_until_stopped(host: &str, boot: &Boot) -> i32 {
    // The namespace the NICs are in now: ours (lab up plugged them here).
    let mut holder: Option<Proc> = None;
    loop {
        let fresh = match fresh_netns(holder, &boot.ifaces) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("clusterctl lab: {host}: no fresh network namespace: {e}");
                return 1;
            }
        };
        holder = Some(fresh);
        match nspawn(host, boot, fresh).status() {
            Ok(s) if s.code() == Some(REBOOT_EXIT) => {
                eprintln!("clusterctl lab: {host} rebooted; starting it again");
            }
            Ok(s) => {
                eprintln!("clusterctl lab: {host} stopped ({s})");
                return s.code().unwrap_or(128 + s.signal().unwrap_or(0));
            }
            Err(e) => {
                eprintln!("clusterctl lab: cannot run systemd-nspawn: {e}");
                return 1;
            }
        }
    }
}

/// One boot: `systemd-nspawn --boot` of the root, in the network namespace
/// held by `netns`.
fn nspawn(host: &str, boot: &Boot, netns: Proc) -> Command {
    let netns = format!("/proc/{}/ns/net", netns.pid);
    let mut cmd = Command::new("systemd-nspawn");
    cmd.args([
        "--quiet",
        "--boot",
        "--register=no",
        "--keep-unit",
        "--console=read-only",
        "--resolv-conf=off",
        "--timezone=off",
        "--link-journal=no",
        "--capability=CAP_NET_ADMIN",
    ])
    .arg(format!("--network-namespace-path={netns}"))
    .args(head_only(host))
    .arg(format!("--machine={}", boot.machine))
    .arg(format!("--hostname={host}"))
    .arg("-D")
    .arg(&boot.root)
    .env("SYSTEMD_NSPAWN_API_VFS_WRITABLE", "network")
    .stdin(Stdio::null());
    cmd
}

/// The head alone may call open_by_handle_at (nspawn's seccomp filter
/// refuses it with EPERM, even with CAP_DAC_READ_SEARCH kept): nfs-ganesha's
/// VFS backend opens every exported file by its handle, and without it
/// answers NFS4ERR_PERM. The workers keep nspawn's defaults.
fn head_only(host: &str) -> &'static [&'static str] {
    if host == "head" {
        &[
            "--capability=CAP_DAC_READ_SEARCH",
            "--system-call-filter=open_by_handle_at",
        ]
    } else {
        &[]
    }
}

/// A new network namespace for the next boot (held by a `sleep` child),
/// with the host's NICs moved into it from where they are (`old` holder, or
/// this process's namespace). The old holder is stopped: whatever the last
/// boot left in its namespace goes with it.
fn fresh_netns(old: Option<Proc>, ifaces: &[String]) -> Result<Proc> {
    let new = net::spawn_bridge_holder()?;
    let cmds: Vec<String> = ifaces
        .iter()
        .map(|i| format!("link set dev {i} netns {}", new.pid))
        .collect();
    net::ip_batch(old.map(|p| p.pid), &cmds)?;
    if let Some(o) = old {
        o.kill();
        let mut status = 0;
        // SAFETY: waitpid(2) on our own child, with a valid status pointer.
        unsafe {
            libc::waitpid(o.pid, &mut status, 0);
        }
    }
    Ok(new)
}
