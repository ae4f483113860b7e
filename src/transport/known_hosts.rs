//! The controller's known_hosts file, looked up and added to only when
//! apply moves a worker onto a new address (`commands/apply.rs`): is a
//! name known, and, when a worker's address changed, its already trusted
//! key recorded under the new address too (the machine at the new address
//! must then show that same key, strictly checked). Hashed entries are
//! matched; an unreadable file knows nothing.

use std::path::{Path, PathBuf};

use russh::keys;

/// The file: the inventory's `ssh.known_hosts`, else `~/.ssh/known_hosts`
/// (what both transports read when the inventory names none).
pub fn file(configured: Option<&Path>) -> Option<PathBuf> {
    configured
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".ssh/known_hosts")))
}

/// The keys recorded for `host` on `port`.
fn keys_of(path: &Path, host: &str, port: u16) -> Vec<keys::PublicKey> {
    keys::known_hosts::known_host_keys_path(host, port, path)
        .map(|v| v.into_iter().map(|(_, k)| k).collect())
        .unwrap_or_default()
}

/// `host` (on `port`) has a key in `path`.
pub fn knows(path: &Path, host: &str, port: u16) -> bool {
    !keys_of(path, host, port).is_empty()
}

/// Record every key known for `from` under `to` as well (same port).
/// Returns how many were added; none when `from` has no key or `to` has
/// one already.
pub fn add_name(path: &Path, to: &str, from: &str, port: u16) -> Result<usize, String> {
    if knows(path, to, port) {
        return Ok(0);
    }
    let found = keys_of(path, from, port);
    for k in &found {
        keys::known_hosts::learn_known_hosts_path(to, port, k, path)
            .map_err(|e| format!("cannot add {to} to {}: {e}", path.display()))?;
    }
    Ok(found.len())
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
        assert!(knows(&kh, "10.0.0.12", 22));
        assert!(!knows(&kh, "10.0.0.40", 22));
        assert!(knows(&kh, "10.0.0.9", 2222));
        assert!(!knows(&kh, "10.0.0.9", 22));
        assert_eq!(add_name(&kh, "10.0.0.40", "10.0.0.12", 22), Ok(1));
        assert!(knows(&kh, "10.0.0.40", 22));
        // Already there, or nothing known to copy: nothing written.
        let before = std::fs::read_to_string(&kh).unwrap();
        assert_eq!(add_name(&kh, "10.0.0.40", "10.0.0.12", 22), Ok(0));
        assert_eq!(add_name(&kh, "10.0.0.41", "10.0.0.99", 22), Ok(0));
        assert_eq!(std::fs::read_to_string(&kh).unwrap(), before);
        assert!(
            before.starts_with(&format!("w2,10.0.0.12 {KEY}\n")),
            "{before}"
        );
        assert!(!knows(&dir.path().join("missing"), "10.0.0.12", 22));
    }
}
