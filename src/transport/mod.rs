//! How clusterctl talks to a node: one small trait (run a shell script with
//! stdin, get its output) and its implementations (`ssh`: the system ssh,
//! `russh`: built in, `local`, `fake` for unit tests); `connect.rs` builds
//! each node's transport for a run (the `Connector`: head direct, workers
//! via the head) and `control_dir.rs` holds the run's ssh control sockets;
//! `protocol.rs` is the one reader of the `@@` lines node scripts answer
//! in. Transports only run what they are given; deciding what to run is
//! facts/plan/apply's job. Every call is one round trip, counted.

mod connect;
mod control_dir;
mod fake;
pub mod known_hosts;
mod local;
pub mod protocol;
mod russh;
mod ssh;

pub use connect::Connector;
pub use control_dir::ControlDir;
pub use fake::FakeHost;
pub use local::Local;
pub use russh::{RusshConn, RusshContext, RusshOptions, RusshTransport};
pub use ssh::{proxy_command, SshOptions, SshTransport};

/// What a remote script returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// A node could not be reached or the transport itself failed (not: the
/// script exited non-zero, which is an [`Output`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportError {
    pub message: String,
    /// The node did not answer at all (connection refused, timeout, auth).
    pub unreachable: bool,
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

pub trait Transport: Send + Sync {
    /// Run `script` with `sh` (as root: via `sudo -n` when the node needs it),
    /// feeding it `stdin`. One round trip.
    fn run(&self, script: &str) -> Result<Output, TransportError>;
    /// Run `script` over a brand-new connection, not the one kept for the
    /// run (for a worker: a new one through the head too, where it can):
    /// proves that the node accepts new connections now. One round trip.
    fn run_fresh(&self, script: &str) -> Result<Output, TransportError> {
        self.run(script)
    }
    /// Round trips made so far.
    fn round_trips(&self) -> usize;
    /// This node's work is done: let its connection go now, not at the end
    /// of the run (a run over 1000 nodes would otherwise hold 1000
    /// connections and their buffers). A later round trip opens a new one.
    /// Never called for the head while workers ride its connection.
    fn close(&self) {}
    /// Where this transport goes, for messages.
    fn describe(&self) -> String;
}

/// The remote command every SSH transport runs: the script comes on stdin.
/// sudo resets the environment, so SSH_CLIENT is handed on for the probe to
/// tell which interface carries the session.
pub(crate) fn remote_command(sudo: bool) -> &'static str {
    if sudo {
        "sudo -n env CLUSTERCTL_SSH_CLIENT=\"$SSH_CLIENT\" sh -s"
    } else {
        "sh -s"
    }
}

/// sudo asking for a password is a clear error, not a failed script.
pub(crate) fn check_sudo(
    out: Output,
    sudo: bool,
    describe: impl FnOnce() -> String,
) -> Result<Output, TransportError> {
    if sudo && String::from_utf8_lossy(&out.stderr).contains("sudo: a password is required") {
        return Err(TransportError {
            message: format!(
                "{}: sudo wants a password; allow passwordless sudo for this user (NOPASSWD) or connect as root",
                describe()
            ),
            unreachable: false,
        });
    }
    Ok(out)
}

/// Quote a string for POSIX sh: `'...'` with embedded quotes escaped.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("/etc/hosts"), "/etc/hosts");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("$(reboot)"), "'$(reboot)'");
    }

    /// The quoting survives a real shell.
    #[test]
    fn quoting_round_trips_through_sh() {
        for s in ["plain", "a b", "it's", "$(x) `y` \"z\" \\ ;|&", "new\nline"] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", shell_quote(s)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), s);
        }
    }
}
