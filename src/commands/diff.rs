//! `clusterctl diff` and `clusterctl apply --dry-run`: render, probe every node
//! (one round trip each, in parallel), plan, print unified diffs and the
//! handlers that would run. Touches nothing. Exit 0 in sync, 2 changes
//! pending, 1 when a node failed or was unreachable.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::cluster::{Cluster, Role};
use crate::error::{Error, Result, EXIT_CHANGES, EXIT_ERROR, EXIT_OK};
use crate::facts;
use crate::hostlist;
use crate::plan::{self, Action, NodePlan};
use crate::render;
use crate::templates::Templates;
use crate::transport::{SshOptions, SshTransport, Transport};

/// Default number of nodes probed at once (sshd's MaxStartups is 10).
pub const FORKS: usize = 8;

/// The outcome of planning one node.
enum NodeResult {
    Planned(NodePlan),
    Failed { unreachable: bool, message: String },
}

pub fn run(inventory: &std::path::Path, nodes: Option<&str>, verbose: u8) -> Result<i32> {
    let cluster = Cluster::load(inventory)?;
    let tdir = super::render::template_dir(inventory, None)?;
    let templates = Templates::load(tdir.as_deref())?;
    let selected = select(&cluster, nodes)?;
    let control = ControlDir::new()?;
    let opts = SshOptions {
        config: cluster.ssh.config.clone(),
        known_hosts: cluster.ssh.known_hosts.clone(),
        identity: cluster.ssh.identity.clone(),
        accept_new_host_keys: false,
        control_dir: control.0.clone(),
        connect_timeout: 10,
    };

    // Render everything first: a template error stops before any connection.
    let mut work = Vec::new();
    for name in &selected {
        let files = render::render_node(&cluster, &templates, name)?;
        work.push((name.clone(), files, transport_for(&cluster, name, &opts)));
    }

    let results: Vec<(String, NodeResult, usize)> = std::thread::scope(|s| {
        let mut out = Vec::new();
        for chunk in work.chunks(FORKS) {
            let handles: Vec<_> = chunk
                .iter()
                .map(|(name, files, t)| {
                    s.spawn(move || {
                        let paths: Vec<&str> = files.iter().map(|f| f.path).collect();
                        let r = match facts::gather(t.as_ref(), &paths) {
                            Err(e) => NodeResult::Failed {
                                unreachable: e.unreachable,
                                message: e.message,
                            },
                            Ok(f) => match plan::plan_node(files, &f.files) {
                                Ok(p) => NodeResult::Planned(p),
                                Err(e) => NodeResult::Failed {
                                    unreachable: false,
                                    message: format!("{}: {}", e.path, e.message),
                                },
                            },
                        };
                        (name.clone(), r, t.round_trips())
                    })
                })
                .collect();
            for h in handles {
                if let Ok(r) = h.join() {
                    out.push(r);
                }
            }
        }
        out
    });
    drop(work); // closes every ssh master connection
    drop(control);

    let mut text = String::new();
    let (mut pending, mut failed) = (0usize, 0usize);
    for (name, r, trips) in &results {
        match r {
            NodeResult::Planned(p) => {
                for c in p.changes.iter().filter(|c| c.action != Action::Unchanged) {
                    match c.action {
                        Action::Fix => text.push_str(&format!(
                            "==> {name}: {} (mode/owner to {:04o} root:root)\n",
                            c.path, c.mode
                        )),
                        _ => {
                            text.push_str(&format!(
                                "==> {name}: {} ({})\n",
                                c.path,
                                if c.action == Action::Create {
                                    "create"
                                } else {
                                    "update"
                                }
                            ));
                            text.push_str(&c.diff);
                        }
                    }
                }
                for (step, h) in &p.handlers {
                    text.push_str(&format!("==> {name}: would {h} (step {step})\n"));
                }
                pending += p.pending();
                text.push_str(&format!(
                    "{name}: {} to change, {} in sync{}\n",
                    p.pending(),
                    p.changes.len() - p.pending(),
                    if verbose > 0 {
                        format!(" ({trips} round trip(s))")
                    } else {
                        String::new()
                    }
                ));
            }
            NodeResult::Failed {
                unreachable,
                message,
            } => {
                failed += 1;
                let what = if *unreachable {
                    "unreachable"
                } else {
                    "failed"
                };
                text.push_str(&format!("{name}: {what}: {message}\n"));
            }
        }
    }
    print!("{text}");
    Ok(if failed > 0 {
        EXIT_ERROR
    } else if pending > 0 {
        EXIT_CHANGES
    } else {
        EXIT_OK
    })
}

/// Node names to work on, in inventory order.
fn select(cluster: &Cluster, nodes: Option<&str>) -> Result<Vec<String>> {
    let all: Vec<String> = cluster.node_names().iter().map(|s| s.to_string()).collect();
    let Some(list) = nodes else { return Ok(all) };
    let wanted: BTreeSet<String> = hostlist::expand(list)
        .map_err(|e| {
            Error::usage(
                format!("--nodes: {e}"),
                Some("a host list like head,node[01-04]"),
            )
        })?
        .into_iter()
        .collect();
    if let Some(unknown) = wanted.iter().find(|n| !all.contains(n)) {
        return Err(Error::usage(
            format!("--nodes: no node named `{unknown}` in the inventory"),
            Some(&format!("nodes: {}", hostlist::fold(&cluster.node_names()))),
        ));
    }
    Ok(all.into_iter().filter(|n| wanted.contains(n)).collect())
}

/// The head directly; a worker through the head unless it has its own target.
fn transport_for(cluster: &Cluster, name: &str, opts: &SshOptions) -> Box<dyn Transport> {
    let head = &cluster.head;
    match cluster.role_of(name) {
        Some(Role::Worker) => {
            let w = cluster.worker(name).expect("role_of said worker");
            let jump = w.via_head.then(|| head.ssh.clone());
            Box::new(SshTransport::new(w.ssh.clone(), jump, w.sudo, opts.clone()))
        }
        _ => Box::new(SshTransport::new(
            head.ssh.clone(),
            None,
            head.sudo,
            opts.clone(),
        )),
    }
}

/// A private (0700) directory for ssh control sockets, removed on drop.
struct ControlDir(PathBuf);

impl ControlDir {
    fn new() -> Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
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
}

impl Drop for ControlDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
