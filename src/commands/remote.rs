//! What `diff` and `apply` share before and while reaching nodes: loading
//! the inventory and templates, choosing nodes (`--nodes`), a render of
//! every node with assumed facts so a template error stops the run before
//! any connection, building each node's transport (the head directly,
//! workers through the head), the private directory for ssh control
//! sockets, and a bounded worker pool (`--forks`).

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::cli::{RemoteArgs, TransportArg};
use crate::cluster::Cluster;
use crate::cluster::TransportKind;
use crate::cluster_key;
use crate::desired;
use crate::engine::Job;
use crate::error::{Error, Result};
use crate::hostlist;
use crate::templates::Templates;
use crate::transport::{
    RusshConn, RusshContext, RusshOptions, RusshTransport, SshOptions, SshTransport, Transport,
};

/// Everything a remote command needs before its first connection: the
/// cluster, the templates, the selected nodes (in inventory order) and the
/// connector.
pub struct Prepared {
    pub cluster: Cluster,
    pub templates: Templates,
    pub shared: desired::Shared,
    pub nodes: Vec<String>,
    pub connector: Connector,
}

impl Prepared {
    /// One node's job for the engine.
    pub fn job<'a>(&'a self, node: &'a str) -> Job<'a> {
        Job {
            cluster: &self.cluster,
            templates: &self.templates,
            shared: &self.shared,
            node,
        }
    }
}

impl Prepared {
    /// With a cluster key in the inventory: its public and private halves
    /// from the head (`generate`: made there first when it has none) and
    /// every node's host key, one round trip per node in parallel (every
    /// node, selected or not: known_hosts lists them all). The templates
    /// see them from now on. Returns what the user should know.
    pub fn gather_keys(&mut self, generate: bool, forks: usize) -> Vec<String> {
        if !self.cluster.mpi.cluster_key {
            return Vec::new();
        }
        let head = self.cluster.head.name.to_string();
        let nodes: Vec<(String, Box<dyn Transport>)> = self
            .cluster
            .node_names()
            .into_iter()
            .map(|n| {
                (
                    n.to_string(),
                    self.connector.transport_for(&self.cluster, n),
                )
            })
            .collect();
        let answers = head_first(
            &nodes,
            forks,
            |(name, _)| *name == head,
            |(name, t)| {
                let answer =
                    crate::engine::ask_keys(t.as_ref(), (*name == head).then_some(&head), generate);
                if *name != head {
                    t.close();
                }
                answer
            },
        );
        let names = nodes.into_iter().map(|(n, _)| n);
        let (keys, mut notes) = cluster_key::assemble(&self.cluster, names.zip(answers).collect());
        if keys.public.is_none() {
            notes.push(format!(
                "cluster key: none on {head} yet (apply generates it); its files are not planned"
            ));
        }
        if !keys.missing.is_empty() {
            let missing: Vec<&str> = keys.missing.iter().map(String::as_str).collect();
            notes.push(format!(
                "cluster key: host key of {} unknown (unreachable now): known_hosts lists it once it answers",
                hostlist::fold(&missing)
            ));
        }
        self.cluster.keys = Some(keys);
        self.shared = desired::Shared::new(&self.cluster);
        notes
    }

    /// After a node's work: its connection goes, unless it is the head's
    /// (workers reach theirs through it).
    pub fn done_with(&self, name: &str, t: &dyn Transport) {
        if name != self.cluster.head.name.as_str() {
            t.close();
        }
    }

    /// Nodes whose host key the last [`Prepared::gather_keys`] could not read.
    pub fn keys_missing(&self) -> usize {
        self.cluster.keys.as_ref().map_or(0, |k| k.missing.len())
    }
}

pub fn prepare(args: &RemoteArgs) -> Result<Prepared> {
    let inventory = &args.inventory.path;
    let cluster = Cluster::load(inventory)?;
    let tdir = super::render::template_dir(inventory, args.templates.dir.as_deref())?;
    let templates = Templates::load(tdir.as_deref())?;
    let nodes = select(&cluster, args.nodes.as_deref())?;
    // The real render happens per node once its facts are in; this one, with
    // assumed facts, stops a broken template before any connection.
    desired::render_each(&cluster, &templates, |_, _| Ok(()))?;
    let connector = Connector::new(&cluster, args)?;
    Ok(Prepared {
        shared: desired::Shared::new(&cluster),
        cluster,
        templates,
        nodes,
        connector,
    })
}

/// Seconds to wait for a node's SSH server to answer.
const CONNECT_TIMEOUT: u32 = 10;

/// Builds each node's transport for one run: the system ssh (one master per
/// node, in the run's private control directory) or russh (one runtime, the
/// head's connection shared by the workers behind it).
pub enum Connector {
    Openssh {
        opts: SshOptions,
        _control: ControlDir,
    },
    Russh {
        ctx: std::sync::Arc<RusshContext>,
        head: std::sync::Arc<RusshConn>,
    },
}

impl Connector {
    /// `--transport` wins over the inventory's `ssh.transport`.
    pub fn new(cluster: &Cluster, args: &RemoteArgs) -> Result<Self> {
        let kind = match args.transport {
            Some(TransportArg::Openssh) => TransportKind::Openssh,
            Some(TransportArg::Russh) => TransportKind::Russh,
            None => cluster.ssh.transport,
        };
        Ok(match kind {
            TransportKind::Openssh => {
                let control = ControlDir::new()?;
                Connector::Openssh {
                    opts: SshOptions {
                        config: cluster.ssh.config.clone(),
                        known_hosts: cluster.ssh.known_hosts.clone(),
                        identity: cluster.ssh.identity.clone(),
                        accept_new_host_keys: args.accept_new_host_keys,
                        control_dir: control.0.clone(),
                        connect_timeout: CONNECT_TIMEOUT,
                        timeout: args.timeout,
                    },
                    _control: control,
                }
            }
            TransportKind::Russh => {
                let ctx = RusshContext::new(RusshOptions {
                    known_hosts: cluster.ssh.known_hosts.clone(),
                    identity: cluster.ssh.identity.clone(),
                    accept_new_host_keys: args.accept_new_host_keys,
                    connect_timeout: CONNECT_TIMEOUT,
                    timeout: args.timeout,
                })
                .map_err(|e| Error::usage(e, None))?;
                let head = std::sync::Arc::new(RusshConn::new(
                    ctx.clone(),
                    cluster.head.ssh.clone(),
                    None,
                ));
                Connector::Russh { ctx, head }
            }
        })
    }

    /// The head directly; a worker through the head unless it has its own target.
    pub fn transport_for(&self, cluster: &Cluster, name: &str) -> Box<dyn Transport> {
        let head = &cluster.head;
        let worker = cluster.worker(name);
        match (self, worker) {
            (Connector::Openssh { opts, .. }, Some(w)) => {
                let jump = w.via_head.then(|| head.ssh.clone());
                Box::new(SshTransport::new(w.ssh.clone(), jump, w.sudo, opts.clone()))
            }
            (Connector::Openssh { opts, .. }, None) => Box::new(SshTransport::new(
                head.ssh.clone(),
                None,
                head.sudo,
                opts.clone(),
            )),
            (Connector::Russh { ctx, head: conn }, Some(w)) => {
                let jump = w.via_head.then(|| conn.clone());
                let c = RusshConn::new(ctx.clone(), w.ssh.clone(), jump);
                Box::new(RusshTransport::new(std::sync::Arc::new(c), w.sudo))
            }
            (Connector::Russh { head: conn, .. }, None) => {
                Box::new(RusshTransport::new(conn.clone(), head.sudo))
            }
        }
    }
}

/// Run `f` on every item with at most `forks` at once; results in item order.
pub fn parallel<T: Sync, R: Send>(items: &[T], forks: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..forks.max(1).min(items.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                if let Ok(mut o) = out.lock() {
                    o[i] = Some(r);
                }
            });
        }
    });
    out.into_inner()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect()
}

/// [`parallel`], but the item `is_head` picks runs first and alone: the
/// workers behind the head then find its connection open and ride it (the
/// openssh transport's jump is a mux client of the head's master) instead of
/// racing to open one each, which would cost every worker a second key
/// exchange. Results in item order.
pub fn head_first<T: Sync, R: Send>(
    items: &[T],
    forks: usize,
    is_head: impl Fn(&T) -> bool,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let Some(h) = items.iter().position(&is_head) else {
        return parallel(items, forks, f);
    };
    let head = f(&items[h]);
    let rest: Vec<&T> = items
        .iter()
        .enumerate()
        .filter_map(|(i, t)| (i != h).then_some(t))
        .collect();
    let mut out = parallel(&rest, forks, |t| f(t));
    out.insert(h, head);
    out
}

/// Node names to work on, in inventory order.
pub fn select(cluster: &Cluster, nodes: Option<&str>) -> Result<Vec<String>> {
    select_by(cluster, nodes, "--nodes")
}

/// [`select`] with the flag name used in messages.
pub fn select_by(cluster: &Cluster, nodes: Option<&str>, flag: &str) -> Result<Vec<String>> {
    let all: Vec<String> = cluster.node_names().iter().map(|s| s.to_string()).collect();
    let Some(list) = nodes else { return Ok(all) };
    let wanted: BTreeSet<String> = hostlist::expand(list)
        .map_err(|e| {
            Error::usage(
                format!("{flag}: {e}"),
                Some("a host list like head,node[01-04]"),
            )
        })?
        .into_iter()
        .collect();
    if let Some(unknown) = wanted.iter().find(|n| !all.contains(n)) {
        return Err(Error::usage(
            format!(
                "{flag}: no node named `{}` in the inventory",
                crate::values::shown(unknown)
            ),
            Some(&format!("nodes: {}", hostlist::fold(&cluster.node_names()))),
        ));
    }
    Ok(all.into_iter().filter(|n| wanted.contains(n)).collect())
}

/// A private (0700) directory for ssh control sockets, removed on drop.
pub struct ControlDir(pub PathBuf);

impl ControlDir {
    pub fn new() -> Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        clean_dead_runs(&base);
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

/// Close the ssh masters and remove the control directory of every earlier
/// run on this machine that died without cleaning up (SIGKILL): otherwise
/// their masters would hold connections to the nodes for minutes.
fn clean_dead_runs(base: &std::path::Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    // SAFETY: getuid(2) cannot fail.
    let me = unsafe { libc::getuid() };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("clusterctl-")
            .and_then(|r| r.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<i32>().ok())
        else {
            continue;
        };
        let ours = e.metadata().is_ok_and(|m| m.is_dir() && m.uid() == me);
        // SAFETY: kill(2) with signal 0 only checks whether the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if !ours || alive {
            continue;
        }
        crate::transport::close_masters(&e.path());
        let _ = std::fs::remove_dir_all(e.path());
    }
}

impl Drop for ControlDir {
    /// Each transport closes its own master; this closes what is left (a
    /// head master a worker's jump made when the head itself was not
    /// selected), so no ssh process outlives the run.
    fn drop(&mut self) {
        crate::transport::close_masters(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The head's work ends before any worker's starts; results stay in
    /// item order.
    #[test]
    fn head_first_runs_the_head_alone_then_the_rest() {
        let items = ["w1", "head", "w2", "w3"];
        let log = std::sync::Mutex::new(Vec::new());
        let out = head_first(
            &items,
            4,
            |n| *n == "head",
            |n| {
                log.lock().unwrap().push(format!("start {n}"));
                std::thread::sleep(std::time::Duration::from_millis(20));
                log.lock().unwrap().push(format!("end {n}"));
                n.to_uppercase()
            },
        );
        assert_eq!(out, ["W1", "HEAD", "W2", "W3"]);
        let log = log.into_inner().unwrap();
        assert_eq!(log[..2], ["start head", "end head"], "{log:?}");
        assert_eq!(log.len(), 8);
        let none = head_first(&items, 2, |_| false, |n| n.len());
        assert_eq!(none, [2, 4, 2, 2]);
    }

    /// A dead run's control directory goes; a live run's stays.
    #[test]
    fn control_dirs_of_dead_runs_are_cleaned_up() {
        let base = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let gone = base.path().join(format!("clusterctl-{dead}-1a2b"));
        let live = base
            .path()
            .join(format!("clusterctl-{}-3c4d", std::process::id()));
        let other = base.path().join("clusterctl-notapid-5e6f");
        for d in [&gone, &live, &other] {
            std::fs::create_dir(d).unwrap();
            std::fs::write(d.join("not-a-socket"), "").unwrap();
        }
        clean_dead_runs(base.path());
        assert!(!gone.exists());
        assert!(live.exists() && other.exists());
    }
}
