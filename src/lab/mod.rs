//! `clusterctl lab`: a virtual cluster on this Linux machine (network, mount,
//! UTS, IPC and PID namespaces per host, overlay roots, real sshd).
//!
//! This file owns the subcommands (`up`, `down`, `status`, `exec`, `ssh`,
//! and the hidden `init-host`) and their preconditions. The pieces:
//! `topology` (names, addresses, MACs: pure), `state` (what a running lab
//! recorded, the lock, processes), `net` (bridges and veths via `ip`),
//! `host` (starting a host and its PID 1), `output` (inventory, ssh files).
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
pub mod topology;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::cli::{LabCommand, LabCommonArgs, LabExecArgs, LabKind, LabRebootArgs, LabUpArgs};
use crate::error::{Error, Result};
use image::Stack;
use state::{HostRecord, LabState, Lock, Paths, Proc};
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
        LabCommand::Up(args) => up(&args),
        LabCommand::Down(args) => down(&args),
        LabCommand::Status(args) => status(&args),
        LabCommand::Exec(args) => exec(&args),
        LabCommand::Ssh(args) => ssh(&args),
        LabCommand::Reboot(args) => reboot(&args),
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

/// Kill every recorded process of a host and wait for them to be gone; a
/// systemd host's supervisor first (so it starts nothing again), then every
/// process of its cgroup.
fn stop_hosts(prefix: &str, records: &[HostRecord]) -> Result<()> {
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
fn teardown(prefix: &str) -> Result<usize> {
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

fn down(args: &LabCommonArgs) -> Result<i32> {
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

/// Is the running lab whole enough to converge, rather than rebuild?
fn healthy(st: &LabState, topo: &Topology) -> bool {
    st.bridges.is_some_and(|b| b.alive())
        && net::link_exists(&topo.ctl_iface())
        && ["wan", "head"]
            .iter()
            .all(|n| st.host(n).is_some_and(HostRecord::alive))
}

/// The kinds the user asked for: each host's network stack (None: light).
struct Kinds {
    kind: LabKind,
    head: Stack,
    workers: Vec<Stack>,
}

impl Kinds {
    fn of(args: &LabUpArgs) -> Result<Kinds> {
        if args.kind == LabKind::Light {
            if let Some(flag) = [
                ("--network", &args.network),
                ("--head-network", &args.head_network),
            ]
            .iter()
            .find_map(|(f, v)| v.as_ref().map(|_| *f))
            {
                return Err(Error::Lab {
                    message: format!("{flag} chooses the network stack of systemd-kind hosts; light hosts have the machine's"),
                    help: Some(format!("add --kind systemd, or drop {flag}")),
                });
            }
        }
        Ok(Kinds {
            kind: args.kind,
            head: Stack::parse(
                "--head-network",
                args.head_network.as_deref().unwrap_or("ifupdown").trim(),
            )?,
            workers: image::parse_stacks(
                "--network",
                args.network.as_deref().unwrap_or("ifupdown"),
            )?,
        })
    }

    fn name(&self) -> &'static str {
        match self.kind {
            LabKind::Light => "light",
            LabKind::Systemd => "systemd",
        }
    }

    /// The stack of a host; None for light hosts (and always for the wan host).
    fn stack(&self, spec: &topology::HostSpec) -> Option<Stack> {
        if self.kind == LabKind::Light {
            return None;
        }
        match spec.role {
            topology::Role::Wan => None,
            topology::Role::Head => Some(self.head),
            topology::Role::Worker => {
                let i = spec.index.unwrap_or(1).saturating_sub(1) as usize;
                self.workers.get(i % self.workers.len().max(1)).copied()
            }
        }
    }
}

/// Memory a light host takes when idle (PSS of its init, sshd, dhclient).
const LIGHT_MIB_PER_HOST: u64 = 8;

/// Refuse to start hosts whose expected memory exceeds what is available;
/// print the estimate when starting many.
fn check_memory(prefix: &str, kinds: &Kinds, specs: &[topology::HostSpec]) -> Result<()> {
    let need: u64 = specs
        .iter()
        .map(|s| {
            kinds
                .stack(s)
                .map(Stack::mib_per_host)
                .unwrap_or(LIGHT_MIB_PER_HOST)
        })
        .sum();
    let avail = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map(|kib| kib / 1024);
    if specs.len() >= 10 {
        say!(
            "lab {prefix}: starting {} hosts; expecting about {need} MiB of memory{}",
            specs.len(),
            avail
                .map(|a| format!(" ({a} MiB available)"))
                .unwrap_or_default()
        );
    }
    if let Some(a) = avail {
        if need > a {
            return Err(Error::Lab {
                message: format!(
                    "{} hosts need about {need} MiB of memory; only {a} MiB are available",
                    specs.len()
                ),
                help: Some("use fewer --workers, or --kind light (about 8 MiB a host)".into()),
            });
        }
    }
    Ok(())
}

fn up(args: &LabUpArgs) -> Result<i32> {
    let t0 = Instant::now();
    let mut topo = Topology::new(&args.common.prefix, &args.wan, &args.lan, args.workers)?;
    let kinds = Kinds::of(args)?;
    if kinds.kind == LabKind::Systemd {
        require(&[
            "systemd-nspawn",
            "mmdebstrap",
            "apt-get",
            "dpkg-scanpackages",
        ])?;
    }
    let _lock = Lock::acquire()?;
    let paths = Paths::new(&topo.prefix);

    // Images and the mirror first: nothing is torn down or started until they exist.
    let mut images = std::collections::BTreeMap::new();
    let mut mirror = None;
    if kinds.kind == LabKind::Systemd {
        let _cache = image::CacheLock::acquire()?;
        for spec in topo.hosts() {
            if let Some(stack) = kinds.stack(&spec) {
                if let std::collections::btree_map::Entry::Vacant(e) = images.entry(stack) {
                    e.insert(image::ensure_image(stack)?);
                }
            }
        }
        mirror = Some(image::ensure_mirror()?);
    }

    let previous = match paths.load() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("lab {}: {e}; rebuilding", topo.prefix);
            teardown(&topo.prefix)?;
            None
        }
    };
    let mut st = match previous {
        Some(st)
            if st.wan == topo.wan.to_string()
                && st.lan == topo.lan.to_string()
                && st.kind == kinds.name()
                && healthy(&st, &topo) =>
        {
            st
        }
        other => {
            if let Some(st) = &other {
                if st.wan != topo.wan.to_string() || st.lan != topo.lan.to_string() {
                    eprintln!(
                        "lab {}: subnets changed ({} {} -> {} {}): rebuilding",
                        topo.prefix, st.wan, st.lan, topo.wan, topo.lan
                    );
                } else if st.kind != kinds.name() {
                    eprintln!(
                        "lab {}: kind changed ({} -> {}): rebuilding",
                        topo.prefix,
                        st.kind,
                        kinds.name()
                    );
                } else {
                    eprintln!(
                        "lab {}: found a half-built or crashed lab: rebuilding",
                        topo.prefix
                    );
                }
            }
            // Refuse before touching anything (the lab's own routes are not
            // conflicts), then clear leftovers of a crash (names are ours by prefix).
            net::check_routes(&topo)?;
            teardown(&topo.prefix)?;
            let mut st = LabState {
                prefix: topo.prefix.clone(),
                wan: topo.wan.to_string(),
                lan: topo.lan.to_string(),
                workers: topo.workers,
                kind: kinds.name().into(),
                inventory: args.inventory_out.clone(),
                bridges: None,
                hosts: Vec::new(),
            };
            let bridges = net::spawn_bridge_holder()?;
            st.bridges = Some(bridges);
            paths.save(&st)?;
            net::create_fabric(&topo, bridges)?;
            st
        }
    };
    net::check_routes(&topo)?;
    host::ensure_key(&paths.key(), &format!("clusterctl-lab-{}", topo.prefix))?;
    let controller_pub = host::public_key(&paths.key())?;

    // Converge: drop dead hosts, hosts of another stack and surplus workers,
    // start what is missing.
    let wanted: std::collections::BTreeMap<String, Option<String>> = topo
        .hosts()
        .into_iter()
        .map(|h| {
            let stack = kinds.stack(&h).map(|s| s.name().to_string());
            (h.name, stack)
        })
        .collect();
    let (keep, drop): (Vec<HostRecord>, Vec<HostRecord>) = st
        .hosts
        .drain(..)
        .partition(|h| wanted.get(&h.name) == Some(&h.stack) && h.alive());
    stop_hosts(&topo.prefix, &drop)?;
    let bridges = st
        .bridges
        .ok_or_else(|| Error::lab("the lab state has no bridge namespace"))?;
    let bigger = Topology {
        workers: topo.workers.max(st.workers).max(drop_max_worker(&drop)),
        ..topo.clone()
    };
    for r in &drop {
        if let Some(spec) = bigger.host(&r.name) {
            net::unplug(bridges, &spec);
        }
        if !wanted.contains_key(&r.name) {
            let _ = fs::remove_dir_all(paths.host_dir(&r.name));
        }
    }
    st.hosts = keep;
    st.workers = topo.workers;
    let have: BTreeSet<String> = st.hosts.iter().map(|h| h.name.clone()).collect();
    let to_start: Vec<_> = topo
        .hosts()
        .into_iter()
        .filter(|h| !have.contains(&h.name))
        .collect();
    check_memory(&topo.prefix, &kinds, &to_start)?;
    if kinds.kind == LabKind::Systemd && !to_start.is_empty() {
        nspawn::raise_inotify()?;
    }
    let how = HowToStart {
        kinds: &kinds,
        images: &images,
        mirror: mirror.as_deref(),
        controller_pub: &controller_pub,
    };
    let started = start_hosts(&paths, &topo, bridges, &mut st, &to_start, &how)?;
    st.hosts.sort_by_key(|h| host_order(&h.name));

    let inv = output::write_all(&topo, &paths, &args.inventory_out)?;
    st.inventory = inv.clone();
    paths.save(&st)?;
    topo.workers = st.workers;
    say!(
        "lab {}: up: wan, head and {} worker{} ({} started, {} removed; {}) in {:.1}s",
        topo.prefix,
        topo.workers,
        if topo.workers == 1 { "" } else { "s" },
        started,
        drop.iter()
            .filter(|r| !wanted.contains_key(&r.name))
            .count(),
        kinds.name(),
        t0.elapsed().as_secs_f64()
    );
    say_raw!("{}", output::reach_table(&topo, &inv));
    say!(
        "  inventory: {}  (next: clusterctl apply -i {})",
        inv.display(),
        inv.display()
    );
    Ok(0)
}

/// What `start_hosts` needs to make each host.
struct HowToStart<'a> {
    kinds: &'a Kinds,
    images: &'a std::collections::BTreeMap<Stack, std::path::PathBuf>,
    mirror: Option<&'a Path>,
    controller_pub: &'a str,
}

fn drop_max_worker(drop: &[HostRecord]) -> u32 {
    drop.iter()
        .filter_map(|r| r.name.strip_prefix('w')?.parse().ok())
        .max()
        .unwrap_or(0)
}

fn host_order(name: &str) -> (u32, u32) {
    match name {
        "wan" => (0, 0),
        "head" => (1, 0),
        _ => (
            2,
            name.strip_prefix('w')
                .and_then(|n| n.parse().ok())
                .unwrap_or(u32::MAX),
        ),
    }
}

/// Start hosts in parallel: spawn all, record them, plug them in, boot them.
fn start_hosts(
    paths: &Paths,
    topo: &Topology,
    bridges: Proc,
    st: &mut LabState,
    specs: &[topology::HostSpec],
    how: &HowToStart,
) -> Result<usize> {
    if specs.is_empty() {
        return Ok(0);
    }
    let mut spawned = Vec::new();
    for spec in specs {
        let stack = how.kinds.stack(spec);
        let s = match stack {
            None => {
                let serve = if spec.role == topology::Role::Wan {
                    how.mirror
                } else {
                    None
                };
                host::render_files(paths, spec, how.controller_pub, serve)?;
                host::spawn(paths, &topo.prefix, &spec.name)?
            }
            Some(stack) => {
                let image = how
                    .images
                    .get(&stack)
                    .ok_or_else(|| Error::lab(format!("no {stack} image was built")))?;
                fs::create_dir_all(paths.host_dir(&spec.name)).map_err(|source| Error::Write {
                    path: paths.host_dir(&spec.name),
                    source,
                })?;
                nspawn::make_disk(paths, spec, stack, image, how.controller_pub)?;
                nspawn::spawn(paths, &topo.prefix, &spec.name)?
            }
        };
        st.hosts.push(HostRecord {
            name: spec.name.clone(),
            unshare: s.unshare,
            init: None,
            stack: stack.map(|s| s.name().to_string()),
        });
        spawned.push(s);
    }
    paths.save(st)?;
    let deadline = Instant::now() + Duration::from_secs(60 + 2 * specs.len() as u64);
    for (s, spec) in spawned.iter_mut().zip(specs) {
        if how.kinds.stack(spec).is_some() {
            continue; // the supervisor holds the namespaces itself
        }
        let log = paths.console_log(&s.name);
        let pid: i32 = s
            .expect("pid", deadline, &log)?
            .parse()
            .map_err(|_| Error::lab(format!("host {}: bad pid line", s.name)))?;
        s.init = Proc::of(pid);
        if let Some(r) = st.hosts.iter_mut().find(|r| r.name == s.name) {
            r.init = s.init;
        }
    }
    paths.save(st)?;
    let mut plug = Vec::new();
    for (s, spec) in spawned.iter_mut().zip(specs) {
        let log = paths.console_log(&s.name);
        s.expect("ready", deadline, &log)?;
        let netns = if how.kinds.stack(spec).is_some() {
            Some(s.unshare)
        } else {
            s.init
        };
        let pid = netns
            .map(|p| p.pid)
            .ok_or_else(|| Error::lab(format!("host {}: no init", s.name)))?;
        plug.push((spec.clone(), pid));
    }
    net::ip_batch(Some(bridges.pid), &net::plug_commands(&plug))?;
    for s in &mut spawned {
        s.go()?;
    }
    for s in &mut spawned {
        let log = paths.console_log(&s.name);
        s.expect("booted", deadline, &log)?;
    }
    // systemd hosts: wait until each has finished booting.
    let mut degraded = Vec::new();
    for (s, spec) in spawned.iter().zip(specs) {
        if how.kinds.stack(spec).is_none() {
            continue;
        }
        let log = paths.console_log(&s.name);
        let (state, _) = nspawn::wait_booted(&s.name, s.unshare, None, deadline, &log)?;
        if state != "running" {
            degraded.push(format!("{} {state}", s.name));
        }
    }
    for d in &degraded {
        eprintln!("lab {}: host {d}", topo.prefix);
    }
    Ok(spawned.len())
}

/// `lab reboot HOST|all`: `systemctl reboot` in each container, then wait
/// for each to come back (a new boot id, the same upper directory).
fn reboot(args: &LabRebootArgs) -> Result<i32> {
    let (paths, st) = load_running(&args.common)?;
    let t0 = Instant::now();
    let names: Vec<&HostRecord> = if args.host == "all" {
        st.hosts.iter().filter(|h| h.stack.is_some()).collect()
    } else {
        match st.host(&args.host) {
            Some(h) => vec![h],
            None => {
                let names: Vec<_> = st.hosts.iter().map(|h| h.name.as_str()).collect();
                return Err(Error::Lab {
                    message: format!("lab {} has no host {:?}", st.prefix, args.host),
                    help: Some(format!("its hosts: {}, or all", names.join(", "))),
                });
            }
        }
    };
    if names.is_empty() {
        return Err(Error::Lab {
            message: format!("lab {} has no host of the systemd kind", st.prefix),
            help: Some("bring one up with: sudo clusterctl lab up --kind systemd".into()),
        });
    }
    let mut before = Vec::new();
    for h in &names {
        if h.stack.is_none() {
            return Err(Error::Lab {
                message: format!(
                    "host {} is a light host: it has no systemd to reboot",
                    h.name
                ),
                help: Some(
                    "reboot needs the systemd kind: sudo clusterctl lab up --kind systemd".into(),
                ),
            });
        }
        let leader = nspawn::leader(h.unshare).ok_or_else(|| Error::Lab {
            message: format!("host {} is not running", h.name),
            help: Some("`sudo clusterctl lab up` restarts it".into()),
        })?;
        before.push((*h, leader));
    }
    for (h, leader) in &before {
        nspawn::request_reboot(&h.name, *leader)?;
    }
    let deadline = Instant::now() + Duration::from_secs(60 + 2 * before.len() as u64);
    for (h, leader) in &before {
        let log = paths.console_log(&h.name);
        let (state, _) = nspawn::wait_booted(&h.name, h.unshare, Some(*leader), deadline, &log)?;
        say!("  {:<5} rebooted: {state}", h.name);
    }
    say!(
        "lab {}: rebooted {} host{} in {:.1}s",
        st.prefix,
        before.len(),
        if before.len() == 1 { "" } else { "s" },
        t0.elapsed().as_secs_f64()
    );
    Ok(0)
}

fn status(args: &LabCommonArgs) -> Result<i32> {
    let (_paths, st) = load_running(args)?;
    let topo = topology_of(&st)?;
    let mut all_up = true;
    say!(
        "lab {}: WAN {} (this machine: {} on {}), LAN {}, {} workers",
        st.prefix,
        st.wan,
        topo.ctl_addr(),
        topo.ctl_iface(),
        st.lan,
        st.workers
    );
    for h in &st.hosts {
        let alive = h.alive();
        all_up &= alive;
        let what = match &h.stack {
            None => format!(
                "light, init pid {}",
                h.init
                    .map(|i| i.pid.to_string())
                    .unwrap_or_else(|| "?".into())
            ),
            Some(stack) => format!(
                "systemd ({stack}), supervisor pid {}, PID 1 pid {}",
                h.unshare.pid,
                nspawn::leader(h.unshare)
                    .map(|l| l.pid.to_string())
                    .unwrap_or_else(|| "?".into())
            ),
        };
        say!(
            "  {:<5} {:<6} {what}",
            h.name,
            if alive { "up" } else { "DOWN" },
        );
    }
    for name in topo.hosts().into_iter().map(|h| h.name) {
        if st.host(&name).is_none() {
            all_up = false;
            say!("  {name:<5} MISSING");
        }
    }
    let nets_ok = st.bridges.is_some_and(|b| b.alive()) && net::link_exists(&topo.ctl_iface());
    if !nets_ok {
        say!(
            "  bridges: MISSING (bridge namespace holder or {})",
            topo.ctl_iface()
        );
    }
    say_raw!("{}", output::reach_table(&topo, &st.inventory));
    say!("  inventory: {}", st.inventory.display());
    if all_up && nets_ok {
        Ok(0)
    } else {
        say!(
            "lab {}: degraded; `sudo clusterctl lab up` repairs it",
            st.prefix
        );
        Ok(1)
    }
}

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
fn exec(args: &LabExecArgs) -> Result<i32> {
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
fn ssh(args: &LabExecArgs) -> Result<i32> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_sort_wan_head_then_workers_numerically() {
        let mut v = vec!["w10", "head", "w2", "wan", "w1"];
        v.sort_by_key(|n| host_order(n));
        assert_eq!(v, ["wan", "head", "w1", "w2", "w10"]);
    }

    #[test]
    fn a_role_is_lowercase_in_files() {
        assert_eq!(
            format!("{:?}", topology::Role::Worker).to_lowercase(),
            "worker"
        );
    }
}
