//! The system `ssh` client: honours ~/.ssh/config (or the inventory's config),
//! the agent, known_hosts and ProxyJump. One master connection per node
//! (ControlMaster in a private directory) is kept for the whole run and closed
//! when the transport is dropped, so no ssh process outlives clusterctl.
//! A worker behind the head reaches it through the head's own master (the
//! jump is a mux client asking it for a channel): one key exchange per
//! worker, not two, and the head's sshd sees no connection per worker. A
//! `fresh` round trip (commit-confirm) opens new connections all the way.
//! Host keys are checked strictly unless accept-new was asked for.
//!
//! We drive the `ssh` binary directly rather than through the `openssh` crate:
//! the behaviour is the same (it is the same binary and the same mux protocol),
//! and it keeps clusterctl free of an async runtime.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::local::run_sh;
use super::{check_sudo, remote_command, shell_quote, Output, Transport, TransportError};
use crate::values::SshTarget;

/// Client settings shared by every node of a run.
#[derive(Debug, Clone, Default)]
pub struct SshOptions {
    pub config: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    pub identity: Option<PathBuf>,
    pub accept_new_host_keys: bool,
    /// Directory for control sockets (private, 0700).
    pub control_dir: PathBuf,
    pub connect_timeout: u32,
    /// How long one round trip may take (seconds).
    pub timeout: u32,
}

impl SshOptions {
    /// The client options every connection of a run takes (config, known
    /// hosts, identity, strict host keys, batch mode, timeouts): a node's,
    /// its jump's, and `clusterctl inventory --format ansible`'s.
    pub fn args(&self) -> Vec<String> {
        let o = self;
        let mut a = Vec::new();
        if let Some(c) = &o.config {
            a.extend(["-F".into(), path(c)]);
        }
        if let Some(k) = &o.known_hosts {
            a.extend(["-o".into(), format!("UserKnownHostsFile={}", path(k))]);
        }
        if let Some(i) = &o.identity {
            a.extend([
                "-i".into(),
                path(i),
                "-o".into(),
                "IdentitiesOnly=yes".into(),
            ]);
        }
        let strict = if o.accept_new_host_keys {
            "accept-new"
        } else {
            "yes"
        };
        a.extend([
            "-o".into(),
            format!("StrictHostKeyChecking={strict}"),
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            format!("ConnectTimeout={}", o.connect_timeout.max(1)),
            "-o".into(),
            "ServerAliveInterval=15".into(),
        ]);
        a
    }
}

pub struct SshTransport {
    target: SshTarget,
    jump: Option<SshTarget>,
    sudo: bool,
    opts: SshOptions,
    trips: AtomicUsize,
    /// Round trips over the master since it was last closed.
    open: AtomicUsize,
    /// Keep a master connection in `opts.control_dir` (false: the user's
    /// ssh config decides, as for `init`'s look at the head).
    master: bool,
    /// The name the node's host key is recorded under, when `target` is
    /// another address of it (`HostKeyAlias`).
    key_alias: Option<String>,
}

impl SshTransport {
    pub fn new(target: SshTarget, jump: Option<SshTarget>, sudo: bool, opts: SshOptions) -> Self {
        SshTransport {
            target,
            jump,
            sudo,
            opts,
            trips: AtomicUsize::new(0),
            open: AtomicUsize::new(0),
            master: true,
            key_alias: None,
        }
    }

    /// Check the host key as `known`'s (its line in known_hosts: the host,
    /// or `[host]:port` off port 22), whatever address `target` names.
    pub fn known_as(mut self, known: &SshTarget) -> Self {
        self.key_alias = Some(if known.port == 22 {
            known.host.clone()
        } else {
            format!("[{}]:{}", known.host, known.port)
        });
        self
    }

    /// A transport with no master of ours (the user's ssh config decides
    /// about masters) and no round-trip timeout: `init`'s one look at the
    /// head, before any inventory exists.
    pub fn plain(target: SshTarget, config: Option<PathBuf>, connect_timeout: u32) -> Self {
        let opts = SshOptions {
            config,
            connect_timeout,
            ..SshOptions::default()
        };
        let mut t = SshTransport::new(target, None, false, opts);
        t.master = false;
        t
    }

    /// `-o` options common to the node and its jump host.
    fn common_args(&self) -> Vec<String> {
        self.opts.args()
    }

    /// `-p PORT [-l USER] HOST`.
    fn dest_args(t: &SshTarget) -> Vec<String> {
        let mut a = vec!["-p".to_string(), t.port.to_string()];
        if let Some(u) = &t.user {
            a.extend(["-l".into(), u.clone()]);
        }
        a.push(t.host.clone());
        a
    }

    fn control_path(&self) -> String {
        // %C: a hash of (local host, remote host, port, user, jump) - short and unique.
        path(&self.opts.control_dir.join("%C"))
    }

    /// `-o` options choosing the connection: the master in the run's control
    /// directory (made by the first round trip), or (`fresh`) none.
    fn control_args(&self, fresh: bool) -> Vec<String> {
        if !self.master {
            return Vec::new();
        }
        let a: [String; 6] = if fresh {
            [
                "-o",
                "ControlMaster=no",
                "-o",
                "ControlPath=none",
                "-o",
                "ControlPersist=no",
            ]
            .map(String::from)
        } else {
            [
                "-o".into(),
                "ControlMaster=auto".into(),
                "-o".into(),
                format!("ControlPath={}", self.control_path()),
                "-o".into(),
                "ControlPersist=300".into(),
            ]
        };
        a.to_vec()
    }

    /// The ssh command: through the node's master connection, or (`fresh`)
    /// over a connection of its own.
    fn command(&self, remote: &str, fresh: bool) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.args(self.common_args());
        cmd.args(self.control_args(fresh));
        if let Some(j) = &self.jump {
            // The jump runs with exactly our options (so it shares the head's
            // master, the head's own transport having the same %C).
            let mut opts = self.common_args();
            opts.extend(self.control_args(fresh));
            cmd.args(["-o", &proxy_command(&opts, j)]);
        }
        if let Some(alias) = &self.key_alias {
            cmd.args(["-o", &format!("HostKeyAlias={alias}")]);
        }
        cmd.args(Self::dest_args(&self.target));
        cmd.arg(remote);
        cmd
    }
}

/// `ProxyCommand=ssh OPTS -W %h:%p JUMP`: a node reached through `jump`
/// with the client options `opts`, every word quoted for sh. ssh expands
/// %-tokens in a ProxyCommand, so a `%` in a word is doubled (`%%C`
/// reaches the jump as the `%C` its own ControlPath expands).
pub fn proxy_command(opts: &[String], jump: &SshTarget) -> String {
    let mut inner: Vec<String> = vec!["ssh".into()];
    inner.extend(opts.iter().cloned());
    inner.extend(["-W".into(), "%h:%p".into()]);
    inner.extend(SshTransport::dest_args(jump));
    let line = inner
        .iter()
        .map(|w| match w.as_str() {
            "%h:%p" => w.clone(),
            _ => shell_quote(&w.replace('%', "%%")),
        })
        .collect::<Vec<_>>()
        .join(" ");
    format!("ProxyCommand={line}")
}

fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

impl SshTransport {
    fn round_trip(&self, script: &str, fresh: bool) -> Result<Output, TransportError> {
        let timeout = Some(Duration::from_secs(self.opts.timeout.max(1) as u64));
        let out = self.exec(script, fresh, timeout)?;
        // ssh itself exits 255 when it could not connect or authenticate.
        if out.status == 255 {
            let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Err(TransportError {
                message: format!("ssh to {} failed: {}", self.describe(), last_line(&err)),
                unreachable: true,
            });
        }
        check_sudo(out, self.sudo, || self.describe())
    }
}

impl SshTransport {
    /// One round trip, its output as it came (ssh's own failures too, exit
    /// 255); `Err` only when ssh could not be run or timed out.
    fn exec(
        &self,
        script: &str,
        fresh: bool,
        timeout: Option<Duration>,
    ) -> Result<Output, TransportError> {
        self.trips.fetch_add(1, Ordering::Relaxed);
        if !fresh && self.master {
            self.open.fetch_add(1, Ordering::Relaxed);
        }
        let mut cmd = self.command(remote_command(self.sudo), fresh);
        run_sh(&mut cmd, script, timeout).map_err(|e| TransportError {
            message: format!("{}: {}", self.describe(), e.message),
            ..e
        })
    }

    /// One round trip with no timeout, its output as it came (`init`'s look
    /// at the head tells ssh's failures apart by itself).
    pub fn run_raw(&self, script: &str) -> Result<Output, TransportError> {
        self.exec(script, false, None)
    }
}

impl Transport for SshTransport {
    fn run(&self, script: &str) -> Result<Output, TransportError> {
        self.round_trip(script, false)
    }

    fn run_fresh(&self, script: &str) -> Result<Output, TransportError> {
        self.round_trip(script, true)
    }

    fn round_trips(&self) -> usize {
        self.trips.load(Ordering::Relaxed)
    }

    fn close(&self) {
        self.exit_master();
    }

    fn describe(&self) -> String {
        match &self.jump {
            Some(j) => format!("{} via {}", self.target, j),
            None => self.target.to_string(),
        }
    }
}

impl Drop for SshTransport {
    /// Close the master connection so no ssh process outlives the run.
    fn drop(&mut self) {
        self.exit_master();
    }
}

impl SshTransport {
    /// `ssh -O exit` to the node's master, once per master this transport
    /// made (none when no round trip has run since the last exit).
    fn exit_master(&self) {
        if self.open.swap(0, Ordering::Relaxed) == 0 {
            return;
        }
        let mut cmd = Command::new("ssh");
        cmd.args(self.common_args());
        cmd.args([
            "-o",
            &format!("ControlPath={}", self.control_path()),
            "-O",
            "exit",
        ]);
        cmd.args(Self::dest_args(&self.target));
        let _ = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// `ssh -O exit` to every master still listening in a control directory
/// (what a run left: a head master a worker's jump made, or the masters of
/// a run that died).
pub fn close_masters(dir: &Path) {
    for sock in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        // A socket nobody listens on any more needs no ssh started.
        if std::os::unix::net::UnixStream::connect(sock.path()).is_err() {
            continue;
        }
        let _ = Command::new("ssh")
            .arg("-o")
            .arg(format!("ControlPath={}", sock.path().display()))
            .args(["-O", "exit", "clusterctl-run"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

fn last_line(s: &str) -> &str {
    s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(host: &str) -> SshTarget {
        SshTarget {
            user: Some("root".into()),
            host: host.into(),
            port: 22,
        }
    }

    fn worker(fresh: bool) -> Vec<String> {
        let opts = SshOptions {
            control_dir: PathBuf::from("/run/ctl%dir"),
            ..SshOptions::default()
        };
        let t = SshTransport::new(target("10.0.0.11"), Some(target("head")), false, opts);
        t.command("sh -s", fresh)
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    fn proxy(args: &[String]) -> &str {
        args.iter()
            .find_map(|a| a.strip_prefix("ProxyCommand="))
            .expect("a ProxyCommand")
    }

    /// The jump is a mux client of the head's master: the same ControlPath
    /// as the head's own transport, its `%` doubled because ssh expands
    /// %-tokens in ProxyCommand (an unknown `%C` there is fatal).
    #[test]
    fn a_workers_jump_rides_the_heads_master() {
        let args = worker(false);
        assert!(args.contains(&"ControlPath=/run/ctl%dir/%C".to_string()));
        let p = proxy(&args);
        assert!(p.contains("ControlMaster=auto"), "{p}");
        assert!(p.contains("ControlPath=/run/ctl%%dir/%%C"), "{p}");
        assert!(p.contains(" -W %h:%p "), "{p}");
        assert!(p.ends_with(" head"), "{p}");
    }

    /// `init`'s look at the head: batch mode, strict host keys, the
    /// user's config, and no control options of ours.
    #[test]
    fn a_plain_look_leaves_masters_to_the_users_config() {
        let t = SshTransport::plain(target("head"), Some(PathBuf::from("/cfg")), 8);
        let args: Vec<String> = t
            .command("sh -s", false)
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        for want in [
            "BatchMode=yes",
            "StrictHostKeyChecking=yes",
            "ConnectTimeout=8",
            "/cfg",
        ] {
            assert!(args.contains(&want.to_string()), "{args:?}");
        }
        assert!(!args.iter().any(|a| a.starts_with("Control")), "{args:?}");
        assert!(args.ends_with(&["head".to_string(), "sh -s".to_string()]));
    }

    /// commit-confirm's fresh round trip: no master on either hop.
    #[test]
    fn a_fresh_round_trip_opens_new_connections_on_both_hops() {
        let args = worker(true);
        assert!(args.contains(&"ControlPath=none".to_string()));
        assert!(!args.iter().any(|a| a.contains("ctl%dir")));
        let p = proxy(&args);
        assert!(p.contains("ControlPath=none"), "{p}");
        assert!(!p.contains("ctl"), "{p}");
    }
}
