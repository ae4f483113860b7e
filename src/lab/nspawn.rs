//! Lab hosts of the systemd kind: a container booting real systemd as PID 1
//! (`systemd-nspawn --boot`) on its own Debian root (an image from
//! `image.rs`, shared read-only through overlayfs, with a private upper
//! directory on disk that survives reboots).
//!
//! Each host has a supervisor, the hidden `clusterctl lab supervise-host`,
//! started by `lab up` as `unshare --net --mount` so that it holds the host's
//! network namespace (the veths are plugged into it, nspawn joins it by
//! `/proc/PID/ns/net`, so no `/run/netns` mount is left behind) and a private
//! mount namespace in which it mounts the overlay and a tmpfs over /run (where
//! nspawn keeps its own files). It moves itself into the cgroup
//! `clusterctl-lab-<prefix>/<host>` (one per host, or systemd units of
//! different containers collide), tells `lab up` it is `ready`, waits for
//! `go` (veths plugged), then runs nspawn and runs it again whenever it exits
//! with 133 (`systemctl reboot` inside). Any other exit ends the supervisor:
//! the host is down. Each boot gets a fresh network namespace (held by a
//! `sleep` child of the supervisor) into which the host's veths are moved:
//! as on a real reboot, addresses, routes, firewall rules and the
//! namespace's sysctls of the previous boot are gone; the NICs (names, MACs,
//! bridge ports) stay.
//!
//! Stopping a host kills its supervisor, then every process of its cgroup
//! (the container's PID 1 takes its whole PID namespace with it), then
//! removes the cgroups. Nothing of a host is in the root mount namespace.

use std::fs;
use std::io::{BufRead, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::host::{self, mkdir, write_file, HOST_PATH};
use super::image::Stack;
use super::state::{Paths, Proc};
use super::topology::{HostSpec, Role};
use crate::error::{Error, Result};

/// nspawn's exit code when the container asked for a reboot.
const REBOOT_EXIT: i32 = 133;

/// The inotify instances a lab of systemd hosts needs (each host's systemd,
/// journald, logind, udev-less units take several; the default 128 runs out
/// around 19 hosts).
pub const INOTIFY_INSTANCES: u64 = 8192;
const INOTIFY_PATH: &str = "/proc/sys/fs/inotify/max_user_instances";

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
fn join_cgroup(prefix: &str, host: &str) -> std::result::Result<(), String> {
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

/// Raise the inotify instance limit for a systemd lab; the old value is
/// kept (machine-wide, once) for [`restore_inotify`].
pub fn raise_inotify() -> Result<()> {
    let saved = Path::new(super::state::BASE_DIR).join("inotify.max_user_instances");
    let now: u64 = fs::read_to_string(INOTIFY_PATH)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    if !saved.exists() {
        write_file(&saved, &format!("{now}\n"), 0o644)?;
    }
    if now < INOTIFY_INSTANCES {
        fs::write(INOTIFY_PATH, format!("{INOTIFY_INSTANCES}\n")).map_err(|source| {
            Error::Write {
                path: INOTIFY_PATH.into(),
                source,
            }
        })?;
    }
    Ok(())
}

/// Put the inotify limit back as it was, once no lab of systemd hosts is up.
pub fn restore_inotify() -> Result<()> {
    let base = Path::new(super::state::BASE_DIR);
    let saved = base.join("inotify.max_user_instances");
    let Ok(text) = fs::read_to_string(&saved) else {
        return Ok(());
    };
    let others = fs::read_dir(base)
        .map(|entries| {
            entries.flatten().any(|e| {
                fs::read_to_string(e.path().join("state.yaml"))
                    .is_ok_and(|t| t.contains("\nkind: systemd"))
            })
        })
        .unwrap_or(false);
    if others {
        return Ok(());
    }
    fs::write(INOTIFY_PATH, text.trim()).map_err(|source| Error::Write {
        path: INOTIFY_PATH.into(),
        source,
    })?;
    let _ = fs::remove_file(saved);
    Ok(())
}

/// The lab's stand-in for a DHCP client that keeps asking, on an ifupdown
/// worker whose interface no ifupdown file names yet (a fresh Debian would
/// give up after a minute; the lab's head has no DHCP server until apply).
const LAB_DHCP_UNIT: &str = "\
# clusterctl lab: DHCP on eth0 until an ifupdown file configures eth0.
[Unit]
Description=Lab DHCP client on eth0 (until ifupdown configures it)
After=networking.service
Before=ssh.service

[Service]
Type=forking
ExecCondition=/bin/sh -c '! grep -qsE \"^[[:space:]]*iface[[:space:]]+eth0[[:space:]]\" /etc/network/interfaces /etc/network/interfaces.d/*'
ExecStart=/sbin/dhclient -4 -nw -cf /etc/clusterctl-lab/dhclient.conf -pf /run/dhclient.eth0.pid -lf /var/lib/dhcp/dhclient.eth0.leases eth0
PIDFile=/run/dhclient.eth0.pid

[Install]
WantedBy=multi-user.target
";

/// The sshd drop-in of every systemd host: only the lab's host key (the
/// image has none), many concurrent starts (workers are reached through the
/// head, 50 at once).
fn sshd_dropin(host: &str) -> String {
    format!(
        "# sshd of lab host {host} (written by clusterctl lab)\n\
         HostKey /etc/ssh/ssh_host_ed25519_key\n\
         UseDNS no\n\
         MaxStartups 200:30:400\n\
         MaxSessions 100\n"
    )
}

/// What a host's network stack reads at boot, as `(path, mode, text)`.
pub fn network_files(spec: &HostSpec, stack: Stack) -> Vec<(&'static str, u32, String)> {
    let head = spec.role == Role::Head;
    let (addr, gw) = match (head, spec.ifaces.first().and_then(|i| i.address)) {
        (true, Some(a)) => (Some(a), spec.gateway),
        _ => (None, None),
    };
    let mut files = Vec::new();
    match stack {
        Stack::Ifupdown => {
            let mut s = String::from(
                "# The network of this host (written by clusterctl lab, as an installer would)\n\
                 auto lo\niface lo inet loopback\n\nsource /etc/network/interfaces.d/*\n",
            );
            if let (Some(a), Some(g)) = (addr, gw) {
                s.push_str(&format!(
                    "\nauto eth0\niface eth0 inet static\n    address {a}\n    gateway {g}\n"
                ));
                files.push((
                    "etc/resolv.conf",
                    0o644,
                    format!("# written by clusterctl lab\nnameserver {g}\n"),
                ));
            } else {
                files.push((
                    "etc/clusterctl-lab/dhclient.conf",
                    0o644,
                    host::DHCLIENT_CONF.into(),
                ));
                files.push((
                    "etc/systemd/system/clusterctl-lab-dhcp.service",
                    0o644,
                    LAB_DHCP_UNIT.into(),
                ));
                files.push((
                    "etc/systemd/system/multi-user.target.wants/clusterctl-lab-dhcp.service",
                    0o777,
                    "/etc/systemd/system/clusterctl-lab-dhcp.service".into(),
                ));
            }
            files.push(("etc/network/interfaces", 0o644, s));
        }
        Stack::Networkd => {
            let body = match (addr, gw) {
                (Some(a), Some(g)) => format!("Address={a}\nGateway={g}\nDNS={g}\n"),
                _ => "DHCP=ipv4\n".to_string(),
            };
            files.push((
                "etc/systemd/network/10-eth0.network",
                0o644,
                format!(
                    "# written by clusterctl lab, as an installer would\n[Match]\nName=eth0\n\n[Network]\n{body}"
                ),
            ));
        }
        Stack::Nm => {
            let ipv4 = match (addr, gw) {
                (Some(a), Some(g)) => format!("method=manual\naddress1={a},{g}\ndns={g};\n"),
                _ => "method=auto\ndhcp-timeout=2147483647\n".to_string(),
            };
            files.push((
                "etc/NetworkManager/system-connections/eth0.nmconnection",
                0o600,
                format!(
                    "# written by clusterctl lab, as an installer would\n[connection]\nid=eth0\ntype=ethernet\ninterface-name=eth0\nautoconnect-retries=0\n\n[ipv4]\n{ipv4}\n[ipv6]\nmethod=ignore\n"
                ),
            ));
        }
    }
    files
}

/// Directories created in an upper layer, with the modes they have in the
/// image (the upper directory's mode wins in the merged view).
const DIR_MODES: &[(&str, u32)] = &[
    ("etc", 0o755),
    ("etc/ssh", 0o755),
    ("etc/ssh/sshd_config.d", 0o755),
    ("etc/network", 0o755),
    ("etc/systemd", 0o755),
    ("etc/systemd/system", 0o755),
    ("etc/systemd/system/multi-user.target.wants", 0o755),
    ("etc/systemd/network", 0o755),
    ("etc/NetworkManager", 0o755),
    ("etc/NetworkManager/system-connections", 0o700),
    ("etc/clusterctl-lab", 0o755),
    ("root", 0o700),
    ("root/.ssh", 0o700),
    ("var", 0o755),
    ("var/lib", 0o755),
    ("var/lib/dhcp", 0o755),
];

/// Make a host's disk: a fresh upper directory holding its identity (name,
/// machine-id, SSH host key), the controller's key and its network config.
pub fn make_disk(
    paths: &Paths,
    spec: &HostSpec,
    stack: Stack,
    image: &Path,
    controller_pub: &str,
) -> Result<()> {
    let h = spec.name.as_str();
    let disk = paths.host_disk(h);
    if disk.exists() {
        fs::remove_dir_all(&disk).map_err(|source| Error::Write {
            path: disk.clone(),
            source,
        })?;
    }
    let upper = disk.join("upper");
    for d in ["upper", "work", "root"] {
        mkdir(&disk.join(d), 0o755)?;
    }
    for (d, mode) in DIR_MODES {
        mkdir(&upper.join(d), *mode)?;
    }
    host::ensure_key(&paths.host_key(h), &format!("root@{h}"))?;
    let key = fs::read_to_string(paths.host_key(h)).map_err(|source| Error::Read {
        path: paths.host_key(h),
        source,
    })?;
    let u = |p: &str| upper.join(p);
    write_file(&u("etc/hostname"), &format!("{h}\n"), 0o644)?;
    write_file(
        &u("etc/hosts"),
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
        0o644,
    )?;
    write_file(
        &u("etc/machine-id"),
        &format!("{}\n", host::machine_id(paths, h)?),
        0o444,
    )?;
    write_file(&u("etc/ssh/ssh_host_ed25519_key"), &key, 0o600)?;
    write_file(
        &u("etc/ssh/ssh_host_ed25519_key.pub"),
        &format!("{}\n", host::public_key(&paths.host_key(h))?),
        0o644,
    )?;
    write_file(&u("etc/ssh/sshd_config.d/lab.conf"), &sshd_dropin(h), 0o644)?;
    write_file(
        &u("root/.ssh/authorized_keys"),
        &format!("{controller_pub}\n"),
        0o600,
    )?;
    for (path, mode, text) in network_files(spec, stack) {
        if mode == 0o777 {
            let link = u(path);
            let _ = fs::remove_file(&link);
            std::os::unix::fs::symlink(&text, &link).map_err(|source| Error::Write {
                path: link.clone(),
                source,
            })?;
        } else {
            write_file(&u(path), &text, mode)?;
        }
    }
    write_file(
        &paths.host_dir(h).join("image"),
        &format!("{}\n", image.display()),
        0o644,
    )?;
    let ifaces: String = spec
        .ifaces
        .iter()
        .map(|i| format!("{}\n", i.name))
        .collect();
    write_file(&paths.host_dir(h).join("ifaces"), &ifaces, 0o644)?;
    Ok(())
}

/// Start a host's supervisor (`unshare --net --mount` of `lab supervise-host`).
pub fn spawn(paths: &Paths, prefix: &str, host: &str) -> Result<host::Spawned> {
    host::spawn_with(
        paths,
        host,
        &["--net", "--mount", "--propagation", "private", "--"],
        &["lab", "supervise-host", "--prefix", prefix, host],
    )
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
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

/// `clusterctl lab supervise-host`: runs in the host's own network and mount
/// namespaces (made by `unshare`), never returns while the host runs.
pub fn supervise(prefix: &str, host: &str) -> Result<i32> {
    let paths = Paths::new(prefix);
    let setup = || -> std::result::Result<(PathBuf, String, Vec<String>), String> {
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
        Ok((root, format!("{prefix}-{host}"), ifaces))
    };
    let (root, machine, ifaces) = match setup() {
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
    // Let go of the handshake pipes: `lab up` is done with us.
    if let Ok(null) = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        use std::os::fd::AsRawFd;
        // SAFETY: dup2 onto our own stdin/stdout descriptors.
        unsafe {
            libc::dup2(null.as_raw_fd(), 0);
            libc::dup2(null.as_raw_fd(), 1);
        }
    }
    // The namespace the NICs are in now: ours (lab up plugged them here).
    let mut holder: Option<Proc> = None;
    loop {
        let fresh = match fresh_netns(holder, &ifaces) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("clusterctl lab: {host}: no fresh network namespace: {e}");
                return Ok(1);
            }
        };
        holder = Some(fresh);
        let netns = format!("/proc/{}/ns/net", fresh.pid);
        let status = Command::new("systemd-nspawn")
            .args([
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
            .arg(format!("--machine={machine}"))
            .arg(format!("--hostname={host}"))
            .arg("-D")
            .arg(&root)
            .env("SYSTEMD_NSPAWN_API_VFS_WRITABLE", "network")
            .stdin(Stdio::null())
            .status();
        match status {
            Ok(s) if s.code() == Some(REBOOT_EXIT) => {
                eprintln!("clusterctl lab: {host} rebooted; starting it again");
            }
            Ok(s) => {
                eprintln!("clusterctl lab: {host} stopped ({s})");
                return Ok(s.code().unwrap_or(128 + s.signal().unwrap_or(0)));
            }
            Err(e) => {
                eprintln!("clusterctl lab: cannot run systemd-nspawn: {e}");
                return Ok(1);
            }
        }
    }
}

/// A new network namespace for the next boot (held by a `sleep` child),
/// with the host's NICs moved into it from where they are (`old` holder, or
/// this process's namespace). The old holder is stopped: whatever the last
/// boot left in its namespace goes with it.
fn fresh_netns(old: Option<Proc>, ifaces: &[String]) -> Result<Proc> {
    let new = super::net::spawn_bridge_holder()?;
    let cmds: Vec<String> = ifaces
        .iter()
        .map(|i| format!("link set dev {i} netns {}", new.pid))
        .collect();
    super::net::ip_batch(old.map(|p| p.pid), &cmds)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::topology::Topology;

    #[test]
    fn heads_are_static_and_workers_ask_dhcp_in_every_stack() {
        let t = Topology::new("cl", "198.51.100.0/24", "10.77.0.0/24", 1).unwrap();
        let head = t.host("head").unwrap();
        let w1 = t.host("w1").unwrap();
        let all = |spec: &HostSpec, s: Stack| -> String {
            network_files(spec, s)
                .into_iter()
                .map(|(p, _, t)| format!("{p}\n{t}"))
                .collect()
        };
        let h = all(&head, Stack::Ifupdown);
        assert!(
            h.contains(
                "iface eth0 inet static\n    address 198.51.100.2/24\n    gateway 198.51.100.1\n"
            ),
            "{h}"
        );
        assert!(h.contains("nameserver 198.51.100.1"));
        assert!(
            !h.contains("eth1"),
            "the LAN side is clusterctl's to configure"
        );
        let w = all(&w1, Stack::Ifupdown);
        assert!(!w.contains("iface eth0"), "{w}");
        assert!(w.contains("clusterctl-lab-dhcp.service"));
        assert!(all(&head, Stack::Networkd)
            .contains("Address=198.51.100.2/24\nGateway=198.51.100.1\nDNS=198.51.100.1\n"));
        assert!(all(&w1, Stack::Networkd).contains("DHCP=ipv4"));
        assert!(all(&head, Stack::Nm).contains("address1=198.51.100.2/24,198.51.100.1"));
        assert!(all(&w1, Stack::Nm).contains("method=auto"));
    }

    #[test]
    fn the_lab_dhcp_unit_steps_aside_once_ifupdown_names_eth0() {
        let cond = LAB_DHCP_UNIT
            .lines()
            .find_map(|l| l.strip_prefix("ExecCondition=/bin/sh -c '"))
            .and_then(|l| l.strip_suffix('\''))
            .unwrap()
            .replace("\\\"", "\"");
        let dir = tempfile::tempdir().unwrap();
        let script = cond.replace("/etc/network", &dir.path().to_string_lossy());
        fs::create_dir(dir.path().join("interfaces.d")).unwrap();
        fs::write(
            dir.path().join("interfaces"),
            "auto lo\niface lo inet loopback\n",
        )
        .unwrap();
        let run = || {
            Command::new("sh")
                .args(["-c", &script])
                .status()
                .unwrap()
                .success()
        };
        assert!(run(), "no eth0 stanza: the lab's client runs");
        fs::write(
            dir.path().join("interfaces.d/clusterctl"),
            "auto eth0\niface eth0 inet dhcp\n",
        )
        .unwrap();
        assert!(!run(), "an eth0 stanza: ifupdown owns eth0");
    }
}
