//! `clusterctl lab up`: make the lab the command line asks for, converging a
//! healthy running lab (drop what is not wanted, start what is missing) or
//! rebuilding it; then write the inventory and say how to reach the hosts.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::down::{stop_hosts, teardown};
use super::image::{self, Stack};
use super::kinds::{check_memory, Kinds, Login};
use super::start::{start_hosts, HowToStart};
use super::state::{HostRecord, LabState, Lock, Paths, Proc};
use super::topology::{Role, Topology};
use super::{host, net, nspawn, output, require};
use crate::cli::{LabKind, LabUpArgs};
use crate::error::{Error, Result};

pub(super) fn up(args: &LabUpArgs) -> Result<i32> {
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
    let (images, mirror) = ensure_images(&topo, &kinds)?;
    let mut st = reuse_or_rebuild(args, &topo, &kinds, &paths)?;
    net::check_routes(&topo)?;
    host::ensure_key(&paths.key(), &format!("clusterctl-lab-{}", topo.prefix))?;
    let controller_pub = host::public_key(&paths.key())?;

    let built = Built {
        images: &images,
        mirror: mirror.as_deref(),
        login: kinds.login,
    };
    let (bridges, removed) = drop_unwanted(&mut st, &topo, &kinds, &built, &paths)?;
    let have: BTreeSet<String> = st.hosts.iter().map(|h| h.name.clone()).collect();
    let to_start: Vec<_> = topo
        .hosts()
        .into_iter()
        .filter(|h| !have.contains(&h.name))
        .collect();
    check_memory(&topo.prefix, &kinds, &to_start)?;
    net::make_neighbour_room(topo.hosts().len())?;
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

    let inv = output::write_all(
        &topo,
        &paths,
        &args.inventory_out,
        kinds.kind == LabKind::Systemd,
        kinds.login,
    )?;
    st.inventory = inv.clone();
    paths.save(&st)?;
    topo.workers = st.workers;
    say!(
        "lab {}: up: wan, head and {} worker{} ({} started, {} removed; {}) in {:.1}s",
        topo.prefix,
        topo.workers,
        if topo.workers == 1 { "" } else { "s" },
        started,
        removed,
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

/// The images the systemd hosts boot (one per stack) and the wan host's
/// apt mirror; none for a light lab.
fn ensure_images(
    topo: &Topology,
    kinds: &Kinds,
) -> Result<(BTreeMap<Stack, PathBuf>, Option<PathBuf>)> {
    let mut images = BTreeMap::new();
    if kinds.kind != LabKind::Systemd {
        return Ok((images, None));
    }
    let _cache = image::CacheLock::acquire()?;
    for spec in topo.hosts() {
        if let Some(stack) = kinds.stack(&spec) {
            if let std::collections::btree_map::Entry::Vacant(e) = images.entry(stack) {
                e.insert(image::ensure_image(stack, kinds.suite)?);
            }
        }
    }
    let mirror = image::ensure_mirror(kinds.suite)?;
    Ok((images, Some(mirror)))
}

/// The running lab's state if it can be converged (same subnets and kind,
/// healthy); else a new lab with nothing but its bridges (saying why).
fn reuse_or_rebuild(
    args: &LabUpArgs,
    topo: &Topology,
    kinds: &Kinds,
    paths: &Paths,
) -> Result<LabState> {
    let previous = match paths.load() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("lab {}: {e}; rebuilding", topo.prefix);
            teardown(&topo.prefix)?;
            None
        }
    };
    match previous {
        Some(st)
            if st.wan == topo.wan.to_string()
                && st.lan == topo.lan.to_string()
                && st.kind == kinds.name()
                && healthy(&st, topo) =>
        {
            Ok(st)
        }
        other => {
            if let Some(st) = &other {
                say_why_rebuild(st, topo, kinds);
            }
            rebuild(args, topo, kinds, paths)
        }
    }
}

/// Is the running lab whole enough to converge, rather than rebuild?
fn healthy(st: &LabState, topo: &Topology) -> bool {
    st.bridges.is_some_and(|b| b.alive())
        && net::link_exists(&topo.ctl_iface())
        && ["wan", "head"]
            .iter()
            .all(|n| st.host(n).is_some_and(HostRecord::alive))
}

/// One line on stderr: why the recorded lab is not converged but rebuilt.
fn say_why_rebuild(st: &LabState, topo: &Topology, kinds: &Kinds) {
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

/// Remove whatever is left of the lab, then record a new one holding only
/// its bridges and the controller's veth.
fn rebuild(args: &LabUpArgs, topo: &Topology, kinds: &Kinds, paths: &Paths) -> Result<LabState> {
    // Refuse before touching anything (the lab's own routes are not
    // conflicts), then clear leftovers of a crash (names are ours by prefix).
    net::check_routes(topo)?;
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
    net::create_fabric(topo, bridges)?;
    Ok(st)
}

/// Converge: drop dead hosts, hosts of another stack and surplus workers
/// (unplugged; the files of hosts no longer wanted removed). Returns the
/// bridge holder and how many hosts were removed for good.
/// What this `lab up` built the systemd hosts from: a running host built
/// from something else (another suite, an older recipe) is started again.
struct Built<'a> {
    images: &'a BTreeMap<Stack, PathBuf>,
    mirror: Option<&'a Path>,
    login: Login,
}

impl Built<'_> {
    /// The image a host of `stack` should run (for the wan host: the mirror
    /// it serves); none for a light host.
    fn wanted(&self, role_wan: bool, stack: Option<Stack>) -> Option<PathBuf> {
        match (role_wan, stack) {
            (true, _) => self.mirror.map(Path::to_path_buf),
            (false, Some(s)) => self.images.get(&s).cloned(),
            (false, None) => None,
        }
    }
}

/// What a running host was built from, as its start recorded it.
fn built_from(paths: &Paths, name: &str) -> Option<PathBuf> {
    let dir = paths.host_dir(name);
    ["image", "files/etc/clusterctl-lab/serve"]
        .iter()
        .find_map(|f| fs::read_to_string(dir.join(f)).ok())
        .map(|t| PathBuf::from(t.trim()))
}

/// How a running systemd host takes logins (`root` when not recorded).
fn login_of(paths: &Paths, name: &str) -> String {
    fs::read_to_string(paths.host_dir(name).join("login"))
        .map(|t| t.trim().to_string())
        .unwrap_or_else(|_| "root".into())
}

fn drop_unwanted(
    st: &mut LabState,
    topo: &Topology,
    kinds: &Kinds,
    built: &Built,
    paths: &Paths,
) -> Result<(Proc, usize)> {
    let wanted: BTreeMap<String, (Option<String>, Option<PathBuf>)> = topo
        .hosts()
        .into_iter()
        .map(|h| {
            let stack = kinds.stack(&h);
            let from = built.wanted(h.role == Role::Wan, stack);
            (h.name, (stack.map(|s| s.name().to_string()), from))
        })
        .collect();
    let (keep, drop): (Vec<HostRecord>, Vec<HostRecord>) =
        st.hosts.drain(..).partition(|h| match wanted.get(&h.name) {
            Some((stack, from)) => {
                *stack == h.stack
                    && *from == built_from(paths, &h.name)
                    && (h.stack.is_none() || login_of(paths, &h.name) == built.login.name())
                    && h.alive()
            }
            None => false,
        });
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
    let removed = drop
        .iter()
        .filter(|r| !wanted.contains_key(&r.name))
        .count();
    Ok((bridges, removed))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_sort_wan_head_then_workers_numerically() {
        let mut v = vec!["w10", "head", "w2", "wan", "w1"];
        v.sort_by_key(|n| host_order(n));
        assert_eq!(v, ["wan", "head", "w1", "w2", "w10"]);
    }
}
