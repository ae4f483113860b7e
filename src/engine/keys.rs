//! The round trip before planning (`keys.sh`): every node's host key and,
//! from the head, the cluster key (generated there first when asked); with
//! `accounts`, the node's accounts too (`facts/accounts.sh`), so clashes
//! with the inventory's users are found on every node before any changes.
//! What the answers make is `cluster_key::assemble`'s business.

use crate::cluster_key::{valid_key, Answer, KEY_PATH};
use crate::facts::ACCOUNTS_SH;
use crate::node_state::USERS_FILE;
use crate::transport::{protocol, shell_quote, Transport};

/// The gather script: the node's ed25519 host key and, on the head (`head`
/// is its name), the cluster key (generated first when `generate`); its
/// accounts first when `accounts`.
pub fn key_script(head: Option<&str>, generate: bool, accounts: bool) -> String {
    let mut s = format!(
        "k={}\nhead={}\ngenerate={}\n",
        shell_quote(KEY_PATH),
        shell_quote(head.unwrap_or("")),
        u8::from(generate),
    );
    if accounts {
        s.push_str(&format!("users_file={}\n", shell_quote(USERS_FILE)));
        s.push_str(ACCOUNTS_SH);
        s.push_str("probe_accounts </dev/null\n");
    }
    s.push_str(include_str!("keys.sh"));
    s
}

/// Ask one node (`head`: it is the head, by this name); `Err` when it could
/// not be asked.
pub fn ask_keys(
    t: &dyn Transport,
    head: Option<&str>,
    generate: bool,
    accounts: bool,
) -> Result<Answer, String> {
    t.run(&key_script(head, generate, accounts))
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

    #[test]
    fn the_script_is_valid_sh() {
        for s in [
            key_script(Some("head"), true, true),
            key_script(None, false, false),
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
        let s = key_script(None, false, false).replace("/etc/ssh/", "/nonexistent/");
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
        let s = key_script(None, false, true).replace("/etc/ssh/", "/nonexistent/");
        let out = crate::transport::Local::default().run(&s).unwrap();
        let a = parse_keys(&String::from_utf8_lossy(&out.stdout));
        assert!(a.accounts.read);
        assert_eq!(a.accounts.user("root").map(|u| u.uid), Some(0));
    }
}
