//! Starting hosts in parallel for `lab up`: spawn every host (light: its
//! files and `unshare`d init; systemd: its disk and supervisor), record them,
//! plug their veths into the bridges, let them boot and wait until they have.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::host::{self, Spawned};
use super::image::Stack;
use super::kinds::Kinds;
use super::state::{HostRecord, LabState, Paths, Proc};
use super::topology::{self, HostSpec, Topology};
use super::{net, nspawn};
use crate::error::{Error, Result};

/// What `start_hosts` needs to make each host.
pub(super) struct HowToStart<'a> {
    pub(super) kinds: &'a Kinds,
    pub(super) images: &'a BTreeMap<Stack, PathBuf>,
    pub(super) mirror: Option<&'a Path>,
    pub(super) controller_pub: &'a str,
}

/// Start hosts in parallel: spawn all, record them, plug them in, boot them.
pub(super) fn start_hosts(
    paths: &Paths,
    topo: &Topology,
    bridges: Proc,
    st: &mut LabState,
    specs: &[HostSpec],
    how: &HowToStart,
) -> Result<usize> {
    if specs.is_empty() {
        return Ok(0);
    }
    let mut spawned = Vec::new();
    for spec in specs {
        let stack = how.kinds.stack(spec);
        let s = spawn_host(paths, &topo.prefix, spec, stack, how)?;
        st.hosts.push(HostRecord {
            name: spec.name.clone(),
            unshare: s.unshare,
            init: None,
            stack: stack.map(|s| s.name().to_string()),
        });
        spawned.push(s);
    }
    paths.save(st)?;
    let mut batch = Batch {
        paths,
        how,
        specs,
        spawned,
        deadline: Instant::now() + Duration::from_secs(60 + 2 * specs.len() as u64),
    };
    batch.record_inits(st)?;
    paths.save(st)?;
    batch.plug_in(bridges)?;
    batch.boot()?;
    batch.wait_systemd_booted(&topo.prefix)?;
    Ok(batch.spawned.len())
}

/// Make one host's files (light) or disk (systemd) and start it.
fn spawn_host(
    paths: &Paths,
    prefix: &str,
    spec: &HostSpec,
    stack: Option<Stack>,
    how: &HowToStart,
) -> Result<Spawned> {
    match stack {
        None => {
            let serve = if spec.role == topology::Role::Wan {
                how.mirror
            } else {
                None
            };
            host::render_files(paths, spec, how.controller_pub, serve)?;
            host::spawn(paths, prefix, &spec.name)
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
            nspawn::make_disk(
                paths,
                spec,
                stack,
                image,
                how.controller_pub,
                how.kinds.login,
            )?;
            nspawn::spawn(paths, prefix, &spec.name)
        }
    }
}

/// The hosts just spawned (in the order of their specs), going through the
/// handshake together against one deadline.
struct Batch<'a> {
    paths: &'a Paths,
    how: &'a HowToStart<'a>,
    specs: &'a [HostSpec],
    spawned: Vec<Spawned>,
    deadline: Instant,
}

impl Batch<'_> {
    /// Learn (and record) each light host's init from its `pid` line.
    fn record_inits(&mut self, st: &mut LabState) -> Result<()> {
        for (s, spec) in self.spawned.iter_mut().zip(self.specs) {
            if self.how.kinds.stack(spec).is_some() {
                continue; // the supervisor holds the namespaces itself
            }
            let log = self.paths.console_log(&s.name);
            let pid: i32 = s
                .expect("pid", self.deadline, &log)?
                .parse()
                .map_err(|_| Error::lab(format!("host {}: bad pid line", s.name)))?;
            s.init = Proc::of(pid);
            if let Some(r) = st.hosts.iter_mut().find(|r| r.name == s.name) {
                r.init = s.init;
            }
        }
        Ok(())
    }

    /// Once every host is `ready`, plug all their veths into the bridges at once.
    fn plug_in(&mut self, bridges: Proc) -> Result<()> {
        let mut plug = Vec::new();
        for (s, spec) in self.spawned.iter_mut().zip(self.specs) {
            let log = self.paths.console_log(&s.name);
            s.expect("ready", self.deadline, &log)?;
            let netns = if self.how.kinds.stack(spec).is_some() {
                Some(s.unshare)
            } else {
                s.init
            };
            let pid = netns
                .map(|p| p.pid)
                .ok_or_else(|| Error::lab(format!("host {}: no init", s.name)))?;
            plug.push((spec.clone(), pid));
        }
        net::ip_batch(Some(bridges.pid), &net::plug_commands(&plug))
    }

    /// Tell every host to go on, then wait for each to say it `booted`.
    fn boot(&mut self) -> Result<()> {
        for s in &mut self.spawned {
            s.go()?;
        }
        for s in &mut self.spawned {
            let log = self.paths.console_log(&s.name);
            s.expect("booted", self.deadline, &log)?;
        }
        Ok(())
    }

    /// systemd hosts: wait until each has finished booting; name the degraded.
    fn wait_systemd_booted(&self, prefix: &str) -> Result<()> {
        let mut degraded = Vec::new();
        for (s, spec) in self.spawned.iter().zip(self.specs) {
            if self.how.kinds.stack(spec).is_none() {
                continue;
            }
            let log = self.paths.console_log(&s.name);
            let (state, _) = nspawn::wait_booted(&s.name, s.unshare, None, self.deadline, &log)?;
            if state != "running" {
                degraded.push(format!("{} {state}", s.name));
            }
        }
        for d in &degraded {
            eprintln!("lab {prefix}: host {d}");
        }
        Ok(())
    }
}
