//! The round trip before planning (`keys.sh`): every node's host key and,
//! from the head, the cluster key (generated there first when asked); with
//! `accounts`, the node's accounts too (`facts/accounts.sh`), so clashes
//! with the inventory's users are found on every node before any changes.
//! What the answers make is `cluster_key::assemble`'s business.

use crate::cluster_key::{valid_key, Answer, KEY_PATH};
use crate::facts::ACCOUNTS_SH;
use crate::node_state::USERS_FILE;
use crate::transport::{protocol, shell_quote, Transport};

/// What to ask one node.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ask<'a> {
    /// The node is the head, by this name.
    pub head: Option<&'a str>,
    /// Make the head's missing keys (the cluster key, the munge key).
    pub generate: bool,
    /// The inventory has a cluster key.
    pub cluster_key: bool,
    /// The node's accounts (`facts/accounts.sh`).
    pub accounts: bool,
    /// Slurm is on: the head's munge key, the node's hardware.
    pub slurm: bool,
}

/// Where the head keeps the cluster's munge key (the source of every
/// node's `/etc/munge/munge.key`).
pub const MUNGE_KEY_PATH: &str = "/var/lib/clusterctl/munge.key";

/// The gather script for one node.
pub fn key_script(ask: Ask) -> String {
    let mut s = format!(
        "k={}\nck={}\nhead={}\ngenerate={}\nslurm={}\nmk={}\nhw={}\n",
        shell_quote(KEY_PATH),
        u8::from(ask.cluster_key),
        shell_quote(ask.head.unwrap_or("")),
        u8::from(ask.generate),
        u8::from(ask.slurm),
        shell_quote(MUNGE_KEY_PATH),
        shell_quote(crate::catalog::slurm::HARDWARE_RECORD),
    );
    if ask.accounts {
        s.push_str(&format!("users_file={}\n", shell_quote(USERS_FILE)));
        s.push_str(ACCOUNTS_SH);
        s.push_str("probe_accounts </dev/null\n");
    }
    s.push_str(include_str!("keys.sh"));
    s
}

/// Ask one node; `Err` when it could not be asked.
pub fn ask_keys(t: &dyn Transport, ask: Ask) -> Result<Answer, String> {
    t.run(&key_script(ask))
        .map(|o| parse_keys(&String::from_utf8_lossy(&o.stdout)))
        .map_err(|e| e.message)
}

pub fn parse_keys(stdout: &str) -> Answer {
    use base64::Engine;
    let mut a = Answer::default();
    let mut lines = protocol::Lines::new(stdout);
    while let Some((key, rest)) = lines.next() {
        match key {
            "@@hostkey" => a.host_key = valid_key(rest),
            "@@public" => a.public = valid_key(rest),
            "@@private" => {
                let bytes = lines
                    .block()
                    .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
                a.private = bytes.and_then(|b| String::from_utf8(b).ok());
            }
            "@@munge" => {
                let bytes = lines
                    .block()
                    .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
                // Only the key clusterctl makes: base64 text, nothing else.
                a.munge = bytes.and_then(|b| String::from_utf8(b).ok()).filter(|k| {
                    k.len() >= 32
                        && k.bytes()
                            .all(|c| c.is_ascii_alphanumeric() || b"+/=".contains(&c))
                });
            }
            "@@cpu" => {
                // A package ID of -1 (some ARM kernels): one package.
                let id = |v: &str| {
                    v.trim()
                        .parse::<i64>()
                        .ok()
                        .map(|n| n.clamp(0, u32::MAX.into()) as u32)
                };
                if let Some((p, c)) = rest.split_once(' ') {
                    if let (Some(p), Some(c)) = (id(p), id(c)) {
                        a.cpus.push((p, c));
                    }
                }
            }
            "@@known" => {
                if let Some(h) = crate::cluster_key::recorded_hardware(rest) {
                    a.known.push(h);
                }
            }
            "@@memkb" => a.memkb = rest.trim().parse().ok(),
            "@@cgroup" => a.cgroup = Some(rest.trim() == "yes"),
            "@@error" => a.error = Some(rest.to_string()),
            _ => {
                a.accounts.parse_line(key, rest);
            }
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_and_bad_keys_are_dropped() {
        let a = parse_keys(
            "@@hostkey ssh-ed25519 AAAAC3Nz\n@@public ssh-ed25519 AAAAB clusterctl@head\n@@private\nLS0tLS1CRUdJTgo=\n@@end\n@@done\n",
        );
        assert_eq!(a.host_key.as_deref(), Some("ssh-ed25519 AAAAC3Nz"));
        assert_eq!(
            a.public.as_deref(),
            Some("ssh-ed25519 AAAAB clusterctl@head")
        );
        assert_eq!(a.private.as_deref(), Some("-----BEGIN\n"));
        assert!(parse_keys("@@hostkey ssh-ed25519 AA;rm\n")
            .host_key
            .is_none());
        assert!(parse_keys("@@hostkey rsa AAAA\n").host_key.is_none());
    }

    /// With Slurm, this machine's processors and memory come back, and on
    /// the head a munge key made once (kept where `mk` says).
    #[test]
    fn slurm_asks_for_hardware_and_the_munge_key_once() {
        let d = tempfile::tempdir().unwrap();
        let mk = d.path().join("munge.key");
        let s = key_script(Ask {
            head: Some("head"),
            generate: true,
            slurm: true,
            ..Ask::default()
        })
        .replace(MUNGE_KEY_PATH, &mk.display().to_string());
        let run = || {
            let out = crate::transport::Local::default().run(&s).unwrap();
            parse_keys(&String::from_utf8_lossy(&out.stdout))
        };
        let a = run();
        assert!(a.error.is_none(), "{:?}", a.error);
        let key = a.munge.clone().expect("a munge key");
        assert_eq!(key.len(), 1024);
        assert_eq!(std::fs::read_to_string(&mk).unwrap(), key);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&mk).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(run().munge, Some(key), "made once, never again");
        assert!(!a.cpus.is_empty() && a.memkb.is_some_and(|m| m > 0));
        assert!(a.cgroup.is_some());
        assert!(
            a.public.is_none(),
            "no cluster key unless the inventory has one"
        );
    }

    #[test]
    fn a_package_id_of_minus_one_is_read_as_zero() {
        let a = parse_keys("@@cpu -1 0\n@@cpu -1 1\n@@memkb 1000\n");
        assert_eq!(a.cpus, [(0, 0), (0, 1)]);
    }

    #[test]
    fn the_script_is_valid_sh() {
        for s in [
            key_script(Ask {
                head: Some("head"),
                generate: true,
                cluster_key: true,
                accounts: true,
                slurm: true,
            }),
            key_script(Ask::default()),
        ] {
            let out = std::process::Command::new("sh")
                .args(["-n", "-c", &s])
                .output()
                .unwrap();
            assert!(out.status.success());
        }
    }

    /// The script for real on a node without keys: no host key, no
    /// cluster key (not generated when not asked), and it finishes.
    #[test]
    fn a_node_without_keys_answers_nothing_but_done() {
        let s = key_script(Ask::default()).replace("/etc/ssh/", "/nonexistent/");
        let out = crate::transport::Local::default().run(&s).unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(protocol::find(&text, "@@done"), Some(""), "{text}");
        let a = parse_keys(&text);
        assert!(a.host_key.is_none() && a.public.is_none() && a.error.is_none());
        assert!(!a.accounts.read, "accounts only when asked");
    }

    /// With `accounts`, this machine's own accounts come back with the keys.
    #[test]
    fn accounts_come_back_when_asked() {
        let s = key_script(Ask {
            accounts: true,
            ..Ask::default()
        })
        .replace("/etc/ssh/", "/nonexistent/");
        let out = crate::transport::Local::default().run(&s).unwrap();
        let a = parse_keys(&String::from_utf8_lossy(&out.stdout));
        assert!(a.accounts.read);
        assert_eq!(a.accounts.user("root").map(|u| u.uid), Some(0));
    }
}
