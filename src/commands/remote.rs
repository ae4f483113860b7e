//! What `diff`, `apply` and `verify` share before reaching nodes: loading
//! the inventory and templates, choosing nodes (`--nodes`), a render of
//! every node with assumed facts so a template error stops the run before
//! any connection, and the run's [`Connector`]. The cluster key's round
//! trip is `keys.rs`; the pool `crate::pool`.

use super::select::select;
use crate::cli::{RemoteArgs, TransportArg};
use crate::cluster::{Cluster, TransportKind};
use crate::desired;
use crate::engine::{Job, Machines};
use crate::error::Result;
use crate::templates::{self, Templates};
use crate::transport::{Connector, Transport};

/// Everything a remote command needs before its first connection: the
/// cluster, the templates, the selected nodes (in inventory order) and the
/// connector.
pub struct Prepared {
    pub cluster: Cluster,
    pub templates: Templates,
    pub shared: desired::Shared,
    /// The machines this run's nodes turned out to be.
    pub machines: Machines,
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
            machines: &self.machines,
            node,
        }
    }

    /// After a node's work: its connection goes, unless it is the head's
    /// (workers reach theirs through it).
    pub fn done_with(&self, name: &str, t: &dyn Transport) {
        if name != self.cluster.head.name.as_str() {
            t.close();
        }
    }

    /// Nodes whose host key or (with Slurm) hardware the last
    /// [`Prepared::gather_keys`] could not read.
    pub fn keys_missing(&self) -> usize {
        self.cluster
            .keys
            .as_ref()
            .map_or(0, |k| k.missing.len() + k.hardware_missing.len())
    }
}

pub fn prepare(args: &RemoteArgs) -> Result<Prepared> {
    let inventory = &args.inventory.path;
    let cluster = Cluster::load(inventory)?;
    let tdir = templates::override_dir(inventory, args.templates.dir.as_deref())?;
    let templates = Templates::load(tdir.as_deref())?;
    let nodes = select(&cluster, args.nodes.as_deref())?;
    // The real render happens per node once its facts are in; this one, with
    // assumed facts, stops a broken template before any connection.
    desired::render_each(&cluster, &templates, |_, _| Ok(()))?;
    let connector = Connector::new(
        &cluster,
        transport_kind(&cluster, args.transport),
        args.accept_new_host_keys,
        args.timeout,
    )?;
    Ok(Prepared {
        shared: desired::Shared::new(&cluster),
        cluster,
        templates,
        machines: Machines::default(),
        nodes,
        connector,
    })
}

/// `--transport` wins over the inventory's `ssh.transport`.
pub(super) fn transport_kind(cluster: &Cluster, arg: Option<TransportArg>) -> TransportKind {
    match arg {
        Some(TransportArg::Openssh) => TransportKind::Openssh,
        Some(TransportArg::Russh) => TransportKind::Russh,
        None => cluster.ssh.transport,
    }
}
