//! The built-in SSH client (russh with the `ring` crypto backend): works with
//! no ssh binary on the machine. One connection per node, opened on first
//! use and kept for the whole run; workers behind the head are reached through
//! a direct-tcpip channel over the head's one connection (no second TCP
//! connection to the head). Host keys are checked against the inventory's
//! known_hosts (default ~/.ssh/known_hosts): strict unless accept-new was
//! asked for. Authentication: the inventory's identity, else ~/.ssh/id_ed25519,
//! id_ecdsa, id_rsa (unencrypted; the agent is the openssh transport's job).
//!
//! The rest of clusterctl is synchronous: every call blocks on one tokio
//! runtime shared by the run's transports.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use russh::client;
use russh::keys::{self, PrivateKey, PrivateKeyWithHashAlg};
use russh::ChannelMsg;

use super::{check_sudo, remote_command, Output, Transport, TransportError};
use crate::values::SshTarget;

/// Client settings shared by every node of a run.
#[derive(Debug, Clone, Default)]
pub struct RusshOptions {
    pub known_hosts: Option<PathBuf>,
    pub identity: Option<PathBuf>,
    pub accept_new_host_keys: bool,
    pub connect_timeout: u32,
    /// How long one round trip may take (seconds).
    pub timeout: u32,
}

/// What every russh transport of one run shares: the runtime and the key.
pub struct RusshContext {
    rt: tokio::runtime::Runtime,
    pub(super) opts: RusshOptions,
    key: OnceLock<Result<Arc<PrivateKey>, String>>,
}

impl RusshContext {
    pub fn new(opts: RusshOptions) -> Result<Arc<Self>, String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the russh runtime: {e}"))?;
        Ok(Arc::new(RusshContext {
            rt,
            opts,
            key: OnceLock::new(),
        }))
    }

    fn known_hosts(&self) -> Result<PathBuf, String> {
        match &self.opts.known_hosts {
            Some(p) => Ok(p.clone()),
            None => home()
                .map(|h| h.join(".ssh/known_hosts"))
                .ok_or_else(|| "no known_hosts: set ssh.known_hosts in the inventory".into()),
        }
    }

    fn key(&self) -> Result<Arc<PrivateKey>, String> {
        self.key
            .get_or_init(|| {
                let candidates: Vec<PathBuf> = match &self.opts.identity {
                    Some(p) => vec![p.clone()],
                    None => ["id_ed25519", "id_ecdsa", "id_rsa"]
                        .iter()
                        .filter_map(|n| home().map(|h| h.join(".ssh").join(n)))
                        .filter(|p| p.exists())
                        .collect(),
                };
                let Some(path) = candidates.first() else {
                    return Err("no SSH key: set ssh.identity in the inventory (the russh transport does not use the agent)".into());
                };
                keys::load_secret_key(path, None)
                    .map(Arc::new)
                    .map_err(|e| {
                        format!(
                            "cannot load the SSH key {}: {e} (the russh transport needs an \
                             unencrypted key; use --transport openssh for the agent)",
                            path.display()
                        )
                    })
            })
            .clone()
    }
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

/// Checks the server's key against known_hosts; remembers why it refused.
struct Checker {
    host: String,
    port: u16,
    known_hosts: PathBuf,
    accept_new: bool,
    refused: Arc<Mutex<Option<String>>>,
}

impl Checker {
    fn refuse(&self, why: String) -> Result<bool, russh::Error> {
        if let Ok(mut r) = self.refused.lock() {
            *r = Some(why);
        }
        Ok(false)
    }
}

impl client::Handler for Checker {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &keys::ssh_key::PublicKey,
    ) -> Result<bool, Self::Error> {
        let kh = &self.known_hosts;
        match keys::check_known_hosts_path(&self.host, self.port, key, kh) {
            Ok(true) => Ok(true),
            Ok(false) if self.accept_new => {
                match keys::known_hosts::learn_known_hosts_path(&self.host, self.port, key, kh) {
                    Ok(()) => Ok(true),
                    Err(e) => self.refuse(format!(
                        "cannot record the host key of {} in {}: {e}",
                        self.host,
                        kh.display()
                    )),
                }
            }
            Ok(false) => self.refuse(format!(
                "host key of {} is not in {} (strict checking; pass --accept-new-host-keys to trust it on first contact)",
                self.host,
                kh.display()
            )),
            Err(keys::Error::KeyChanged { line }) => self.refuse(format!(
                "HOST KEY OF {} CHANGED (known_hosts {} line {line}): refusing to connect; if the machine was reinstalled, remove that line",
                self.host,
                kh.display()
            )),
            Err(e) => self.refuse(format!("cannot read {}: {e}", kh.display())),
        }
    }
}

type Handle = Arc<client::Handle<Checker>>;

/// One node's connection, opened on first use (and again after a failure).
pub struct RusshConn {
    ctx: Arc<RusshContext>,
    target: SshTarget,
    jump: Option<Arc<RusshConn>>,
    handle: tokio::sync::Mutex<Option<Handle>>,
    /// The host the node's key is recorded under, when `target` is another
    /// address of it.
    key_host: Option<String>,
}

impl RusshConn {
    pub fn new(ctx: Arc<RusshContext>, target: SshTarget, jump: Option<Arc<RusshConn>>) -> Self {
        RusshConn {
            ctx,
            target,
            jump,
            handle: tokio::sync::Mutex::new(None),
            key_host: None,
        }
    }

    /// Check the host key as `host`'s (on the target's port), whatever
    /// address the target names.
    pub fn known_as(mut self, host: &str) -> Self {
        self.key_host = Some(host.to_string());
        self
    }

    fn describe(&self) -> String {
        match &self.jump {
            Some(j) => format!("{} via {}", self.target, j.target),
            None => self.target.to_string(),
        }
    }

    fn unreachable(&self, why: impl std::fmt::Display) -> TransportError {
        TransportError {
            message: format!("ssh to {} failed: {why}", self.describe()),
            unreachable: true,
        }
    }

    /// The connection, opening it when there is none.
    async fn handle(&self) -> Result<Handle, TransportError> {
        let mut slot = self.handle.lock().await;
        if let Some(h) = slot.as_ref() {
            if !h.is_closed() {
                return Ok(h.clone());
            }
        }
        let h = Arc::new(self.connect().await?);
        *slot = Some(h.clone());
        Ok(h)
    }

    async fn connect(&self) -> Result<client::Handle<Checker>, TransportError> {
        let key = self.ctx.key().map_err(|e| TransportError {
            message: e,
            unreachable: false,
        })?;
        let known_hosts = self.ctx.known_hosts().map_err(|e| TransportError {
            message: e,
            unreachable: false,
        })?;
        let refused = Arc::new(Mutex::new(None));
        let checker = Checker {
            host: self.key_host.clone().unwrap_or(self.target.host.clone()),
            port: self.target.port,
            known_hosts,
            accept_new: self.ctx.opts.accept_new_host_keys,
            refused: refused.clone(),
        };
        let config = Arc::new(client::Config {
            keepalive_interval: Some(Duration::from_secs(15)),
            nodelay: true,
            ..Default::default()
        });
        let timeout = Duration::from_secs(self.ctx.opts.connect_timeout.max(1) as u64);
        let host = self.target.host.clone();
        let port = self.target.port;
        let attempt = async {
            match &self.jump {
                None => client::connect(config, (host.as_str(), port), checker).await,
                Some(j) => {
                    let head = Box::pin(j.handle()).await.map_err(|e| {
                        russh::Error::IO(std::io::Error::other(format!("jump host: {e}")))
                    })?;
                    let ch = head
                        .channel_open_direct_tcpip(host.clone(), port as u32, "127.0.0.1", 0)
                        .await?;
                    client::connect_stream(config, ch.into_stream(), checker).await
                }
            }
        };
        let mut h = match tokio::time::timeout(timeout, attempt).await {
            Err(_) => {
                return Err(self.unreachable(format!("no answer within {}s", timeout.as_secs())))
            }
            Ok(Err(e)) => {
                let why = refused.lock().ok().and_then(|r| r.clone());
                return Err(match why {
                    Some(w) => TransportError {
                        message: format!("ssh to {}: {w}", self.describe()),
                        unreachable: true,
                    },
                    None => self.unreachable(e),
                });
            }
            Ok(Ok(h)) => h,
        };
        let user = self.target.user.clone().unwrap_or_else(|| "root".into());
        let hash = h.best_supported_rsa_hash().await.ok().flatten().flatten();
        let auth = h
            .authenticate_publickey(user.clone(), PrivateKeyWithHashAlg::new(key, hash))
            .await
            .map_err(|e| self.unreachable(e))?;
        if !auth.success() {
            return Err(self.unreachable(format!(
                "the server refused the key for user {user} (Permission denied (publickey))"
            )));
        }
        Ok(h)
    }

    async fn exec(&self, command: &str, stdin: &[u8]) -> Result<Output, TransportError> {
        let h = self.handle().await?;
        let mut ch = match h.channel_open_session().await {
            Ok(c) => c,
            Err(e) => {
                // The connection died: forget it so the next call reconnects.
                *self.handle.lock().await = None;
                return Err(self.unreachable(e));
            }
        };
        let lost = |e: russh::Error| TransportError {
            message: format!("{}: connection lost: {e}", self.describe()),
            unreachable: false,
        };
        ch.exec(true, command).await.map_err(lost)?;
        ch.data(stdin).await.map_err(lost)?;
        ch.eof().await.map_err(lost)?;
        let (mut stdout, mut stderr, mut status) = (Vec::new(), Vec::new(), None);
        while let Some(msg) = ch.wait().await {
            match msg {
                ChannelMsg::Data { data } => stdout.extend_from_slice(&data),
                ChannelMsg::ExtendedData { data, ext: 1 } => stderr.extend_from_slice(&data),
                ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status as i32),
                ChannelMsg::ExitSignal { .. } => status = Some(-1),
                _ => {}
            }
        }
        match status {
            Some(status) => Ok(Output {
                status,
                stdout,
                stderr,
            }),
            None => Err(TransportError {
                message: format!(
                    "{}: the connection closed before the command ended",
                    self.describe()
                ),
                unreachable: false,
            }),
        }
    }

    fn close(&self) {
        let slot = self.handle.try_lock().ok().and_then(|mut s| s.take());
        if let Some(h) = slot {
            let _ = self.ctx.rt.block_on(async {
                tokio::time::timeout(
                    Duration::from_secs(2),
                    h.disconnect(russh::Disconnect::ByApplication, "", "en"),
                )
                .await
            });
        }
    }
}

/// A node over russh.
pub struct RusshTransport {
    conn: Arc<RusshConn>,
    sudo: bool,
    trips: AtomicUsize,
}

impl RusshTransport {
    pub fn new(conn: Arc<RusshConn>, sudo: bool) -> Self {
        RusshTransport {
            conn,
            sudo,
            trips: AtomicUsize::new(0),
        }
    }
}

impl RusshTransport {
    /// One round trip on `conn`, stopped after the run's timeout.
    fn round_trip(&self, conn: &RusshConn, script: &str) -> Result<Output, TransportError> {
        self.trips.fetch_add(1, Ordering::Relaxed);
        let secs = conn.ctx.opts.timeout.max(1) as u64;
        let exec = conn.exec(remote_command(self.sudo), script.as_bytes());
        let out = conn
            .ctx
            .rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(secs), exec).await })
            .map_err(|_| TransportError {
                message: format!(
                    "{}: no answer within {secs}s; the round trip was stopped (--timeout)",
                    conn.describe()
                ),
                unreachable: false,
            })??;
        check_sudo(out, self.sudo, || self.describe())
    }
}

impl Transport for RusshTransport {
    fn run(&self, script: &str) -> Result<Output, TransportError> {
        self.round_trip(&self.conn, script)
    }

    /// A new connection to the node (a worker's goes over the head's
    /// connection, which apply already proved for the head).
    fn run_fresh(&self, script: &str) -> Result<Output, TransportError> {
        let c = &self.conn;
        let fresh = RusshConn::new(c.ctx.clone(), c.target.clone(), c.jump.clone());
        let out = self.round_trip(&fresh, script);
        fresh.close();
        out
    }

    fn round_trips(&self) -> usize {
        self.trips.load(Ordering::Relaxed)
    }

    fn close(&self) {
        if Arc::strong_count(&self.conn) == 1 {
            self.conn.close();
        }
    }

    fn describe(&self) -> String {
        self.conn.describe()
    }
}

impl Drop for RusshTransport {
    /// Say goodbye to the server (the head's connection goes when the last
    /// worker behind it is dropped).
    fn drop(&mut self) {
        if Arc::strong_count(&self.conn) == 1 {
            self.conn.close();
        }
    }
}
