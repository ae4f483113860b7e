//! The controller's known_hosts files, looked up and added to only when
//! apply moves a worker onto a new address (`commands/apply.rs`): the files
//! the run's client reads (OpenSSH: as `ssh -G` resolves them, the
//! system-wide ones included; russh: its one file), is a name known, and,
//! when a worker's address changed, its already trusted key recorded under
//! the new address too (the machine at the new address must then show that
//! same key, strictly checked). Hashed entries are matched; wildcard
//! patterns are not (russh's matcher). A file that exists but cannot be
//! read is an error: the move is refused, never taken as "unknown".

use std::path::{Path, PathBuf};

use russh::keys;

/// Where a connection's host keys are looked up: the files its client
/// reads (the first is where a key is recorded) and the system-wide ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownHosts {
    pub user: Vec<PathBuf>,
    pub global: Vec<PathBuf>,
}

impl KnownHosts {
    /// One file, as russh reads it: the inventory's `ssh.known_hosts`,
    /// else `~/.ssh/known_hosts`.
    pub fn single(configured: Option<&Path>) -> KnownHosts {
        let user = configured.map(Path::to_path_buf).or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".ssh/known_hosts"))
        });
        KnownHosts {
            user: user.into_iter().collect(),
            global: Vec::new(),
        }
    }

    /// What OpenSSH reads for `host` with the client options `args` (the
    /// run's `-F` config and `UserKnownHostsFile`), as `ssh -G` says.
    pub fn openssh(args: &[String], host: &str) -> Result<KnownHosts, String> {
        let out = std::process::Command::new("ssh")
            .arg("-G")
            .args(args)
            .arg(host)
            .output()
            .map_err(|e| format!("cannot run ssh -G: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "ssh -G {host} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(parse_ssh_g(&String::from_utf8_lossy(&out.stdout)))
    }

    /// `host` (on `port`) has a key in any of the files. A file that
    /// exists but cannot be read or parsed is an error, never "unknown".
    pub fn knows(&self, host: &str, port: u16) -> Result<bool, String> {
        for f in self.user.iter().chain(&self.global) {
            if !keys_of(f, host, port)?.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Record every key known for `from` under `to` as well (same port), in
    /// the first user file. How many were added: none when `to` is known.
    pub fn add_name(&self, to: &str, from: &str, port: u16) -> Result<usize, String> {
        let Some(file) = self.user.first() else {
            return Err("no known_hosts file to record the key in".into());
        };
        if self.knows(to, port)? {
            return Ok(0);
        }
        let mut found = Vec::new();
        for f in self.user.iter().chain(&self.global) {
            found.extend(keys_of(f, from, port)?);
        }
        for k in &found {
            keys::known_hosts::learn_known_hosts_path(to, port, k, file)
                .map_err(|e| format!("cannot add {to} to {}: {e}", file.display()))?;
        }
        Ok(found.len())
    }

    /// Where a key is recorded, for messages.
    pub fn recorded_in(&self) -> String {
        self.user
            .first()
            .map(|f| f.display().to_string())
            .unwrap_or_default()
    }
}

/// `userknownhostsfile` and `globalknownhostsfile` from `ssh -G` output,
/// `~` expanded.
fn parse_ssh_g(text: &str) -> KnownHosts {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let paths = |rest: &str| -> Vec<PathBuf> {
        rest.split_whitespace()
            .filter(|p| *p != "none")
            .map(|p| match (p.strip_prefix("~/"), &home) {
                (Some(r), Some(h)) => h.join(r),
                _ => PathBuf::from(p),
            })
            .collect()
    };
    let mut k = KnownHosts::default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("userknownhostsfile ") {
            k.user = paths(rest);
        } else if let Some(rest) = line.strip_prefix("globalknownhostsfile ") {
            k.global = paths(rest);
        }
    }
    k
}

/// The keys recorded for `host` on `port` in `path` (none when the file
/// does not exist).
fn keys_of(path: &Path, host: &str, port: u16) -> Result<Vec<keys::PublicKey>, String> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    keys::known_hosts::known_host_keys_path(host, port, path)
        .map(|v| v.into_iter().map(|(_, k)| k).collect())
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJi4zqOmxvqjwjfnHMcqGpJEIrPVgvnGiy1IYFG5nRId";

    #[test]
    fn a_known_key_gets_the_new_address_and_nothing_else_changes() {
        let dir = tempfile::tempdir().unwrap();
        let kh = dir.path().join("known_hosts");
        std::fs::write(&kh, format!("w2,10.0.0.12 {KEY}\n[10.0.0.9]:2222 {KEY}\n")).unwrap();
        let k = KnownHosts::single(Some(&kh));
        assert_eq!(k.knows("10.0.0.12", 22), Ok(true));
        assert_eq!(k.knows("10.0.0.40", 22), Ok(false));
        assert_eq!(k.knows("10.0.0.9", 2222), Ok(true));
        assert_eq!(k.knows("10.0.0.9", 22), Ok(false));
        assert_eq!(k.add_name("10.0.0.40", "10.0.0.12", 22), Ok(1));
        assert_eq!(k.knows("10.0.0.40", 22), Ok(true));
        // Already there, or nothing known to copy: nothing written.
        let before = std::fs::read_to_string(&kh).unwrap();
        assert_eq!(k.add_name("10.0.0.40", "10.0.0.12", 22), Ok(0));
        assert_eq!(k.add_name("10.0.0.41", "10.0.0.99", 22), Ok(0));
        assert_eq!(std::fs::read_to_string(&kh).unwrap(), before);
        assert!(
            before.starts_with(&format!("w2,10.0.0.12 {KEY}\n")),
            "{before}"
        );
        let missing = KnownHosts::single(Some(&dir.path().join("missing")));
        assert_eq!(missing.knows("10.0.0.12", 22), Ok(false));
    }

    /// A key pinned only in the system-wide file counts: no second key is
    /// added beside it. A file that cannot be parsed is an error.
    #[test]
    fn the_global_file_counts_and_a_broken_file_fails_closed() {
        let dir = tempfile::tempdir().unwrap();
        let user = dir.path().join("known_hosts");
        let global = dir.path().join("ssh_known_hosts");
        std::fs::write(&user, format!("10.0.0.12 {KEY}\n")).unwrap();
        std::fs::write(&global, format!("10.0.0.40 {KEY}\n")).unwrap();
        let k = KnownHosts {
            user: vec![user.clone()],
            global: vec![global],
        };
        assert_eq!(k.knows("10.0.0.40", 22), Ok(true));
        assert_eq!(k.add_name("10.0.0.40", "10.0.0.12", 22), Ok(0));
        assert_eq!(
            std::fs::read_to_string(&user).unwrap(),
            format!("10.0.0.12 {KEY}\n")
        );
        std::fs::write(&user, "10.0.0.12 ssh-ed25519 notbase64!\n").unwrap();
        assert!(k.knows("10.0.0.12", 22).is_err());
    }

    #[test]
    fn ssh_g_names_the_files() {
        let k = parse_ssh_g(
            "user root\nuserknownhostsfile /tmp/lab/known_hosts /tmp/lab/known_hosts2\nglobalknownhostsfile /etc/ssh/ssh_known_hosts none\n",
        );
        assert_eq!(
            k.user,
            [
                PathBuf::from("/tmp/lab/known_hosts"),
                PathBuf::from("/tmp/lab/known_hosts2")
            ]
        );
        assert_eq!(k.global, [PathBuf::from("/etc/ssh/ssh_known_hosts")]);
    }
}
