//! The connection factory of one run: the system ssh (one master per node,
//! in the run's private control directory) or russh (one runtime, the
//! head's connection shared by the workers behind it); each node's transport
//! goes to the head directly, to a worker through the head.

use std::sync::Arc;

use super::control_dir::ControlDir;
use super::{
    RusshConn, RusshContext, RusshOptions, RusshTransport, SshOptions, SshTransport, Transport,
};
use crate::cluster::{Cluster, TransportKind};
use crate::error::{Error, Result};

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
        ctx: Arc<RusshContext>,
        head: Arc<RusshConn>,
    },
}

impl Connector {
    /// The inventory's SSH settings with the run's choices: the client
    /// (`kind`), whether unknown host keys are accepted, and how long one
    /// round trip may take (seconds).
    pub fn new(
        cluster: &Cluster,
        kind: TransportKind,
        accept_new_host_keys: bool,
        timeout: u32,
    ) -> Result<Self> {
        Ok(match kind {
            TransportKind::Openssh => {
                let control = ControlDir::new()?;
                Connector::Openssh {
                    opts: SshOptions {
                        config: cluster.ssh.config.clone(),
                        known_hosts: cluster.ssh.known_hosts.clone(),
                        identity: cluster.ssh.identity.clone(),
                        accept_new_host_keys,
                        control_dir: control.path().to_path_buf(),
                        connect_timeout: CONNECT_TIMEOUT,
                        timeout,
                    },
                    _control: control,
                }
            }
            TransportKind::Russh => {
                let ctx = RusshContext::new(RusshOptions {
                    known_hosts: cluster.ssh.known_hosts.clone(),
                    identity: cluster.ssh.identity.clone(),
                    accept_new_host_keys,
                    connect_timeout: CONNECT_TIMEOUT,
                    timeout,
                })
                .map_err(|e| Error::usage(e, None))?;
                let head = Arc::new(RusshConn::new(ctx.clone(), cluster.head.ssh.clone(), None));
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
                Box::new(RusshTransport::new(Arc::new(c), w.sudo))
            }
            (Connector::Russh { head: conn, .. }, None) => {
                Box::new(RusshTransport::new(conn.clone(), head.sudo))
            }
        }
    }

    /// Whether an unknown host key is trusted on first contact and recorded
    /// (`--accept-new-host-keys`).
    pub fn accepts_new_keys(&self) -> bool {
        match self {
            Connector::Openssh { opts, .. } => opts.accept_new_host_keys,
            Connector::Russh { ctx, .. } => ctx.opts.accept_new_host_keys,
        }
    }

    /// The known_hosts files this run's client reads for `host`.
    pub fn known_hosts(
        &self,
        cluster: &Cluster,
        host: &str,
    ) -> Result<super::known_hosts::KnownHosts, String> {
        use super::known_hosts::KnownHosts;
        match self {
            Connector::Openssh { opts, .. } => KnownHosts::openssh(&opts.args(), host),
            Connector::Russh { .. } => Ok(KnownHosts::single(cluster.ssh.known_hosts.as_deref())),
        }
    }

    /// A worker reached through the head at `ip`, an address it holds that
    /// is not its target's. Its host key is checked strictly, under the name
    /// it is known by (`as_target`: its target's host and port; else the
    /// address `ip` itself, for a worker whose address changed). `None` for
    /// the head and for a worker with its own `ssh:` target.
    pub fn transport_at(
        &self,
        cluster: &Cluster,
        name: &str,
        ip: std::net::Ipv4Addr,
        as_target: bool,
    ) -> Option<Box<dyn Transport>> {
        let w = cluster.worker(name).filter(|w| w.via_head)?;
        let mut target = w.ssh.clone();
        target.host = ip.to_string();
        Some(match self {
            Connector::Openssh { opts, .. } => Box::new({
                let t =
                    SshTransport::new(target, Some(cluster.head.ssh.clone()), w.sudo, opts.clone());
                if as_target {
                    t.known_as(&w.ssh)
                } else {
                    t
                }
            }),
            Connector::Russh { ctx, head } => {
                let c = RusshConn::new(ctx.clone(), target, Some(head.clone()));
                let c = if as_target {
                    c.known_as(&w.ssh.host)
                } else {
                    c
                };
                Box::new(RusshTransport::new(Arc::new(c), w.sudo))
            }
        })
    }
}
