//! The cluster SSH key and the nodes' host keys: what root on every node
//! needs so that `ssh w2` (and an MPI launch) works from the head and from
//! any worker with no password and no host-key prompt. One round trip per
//! node, before planning: the head reports its cluster key (generated there
//! once, by apply, never regenerated) and every node its host key. The
//! private key reaches the controller's memory only to be written to the
//! workers (mode 0600); it is never printed (its diff is masked, `Debug`
//! hides it).

use crate::cluster::{Cluster, NodeRef};
pub use crate::cluster::{ClusterKeys, HostKey};
use crate::transport::shell_quote;

/// The cluster key's private half on every node; the public half beside it.
pub const KEY_PATH: &str = "/root/.ssh/id_clusterctl";

/// The gather script: the node's ed25519 host key and, on the head, the
/// cluster key (generated first when `generate`).
pub fn script(head: Option<&str>, generate: bool) -> String {
    let mut s = format!(
        "set -u\nk={}\nhost_key=/etc/ssh/ssh_host_ed25519_key.pub\n",
        shell_quote(KEY_PATH)
    );
    s.push_str(
        "if [ -f \"$host_key\" ]; then echo \"@@hostkey $(cut -d' ' -f1,2 \"$host_key\")\"; fi\n",
    );
    if let Some(name) = head {
        s.push_str(&format!(
            "comment={}\n",
            shell_quote(&format!("clusterctl@{name}"))
        ));
        if generate {
            s.push_str(
                "if [ ! -f \"$k\" ]; then\n  \
                 mkdir -p /root/.ssh && chmod 0700 /root/.ssh &&\n  \
                 ssh-keygen -q -t ed25519 -N '' -C \"$comment\" -f \"$k\" </dev/null >/dev/null ||\n  \
                 echo '@@error cannot generate the cluster key (is ssh-keygen installed?)'\n\
                 fi\n",
            );
        }
        s.push_str(
            "if [ -f \"$k\" ] && [ -f \"$k.pub\" ]; then\n  \
             echo \"@@public $(cut -d' ' -f1-3 \"$k.pub\")\"\n  \
             echo @@private; base64 <\"$k\"; echo @@end\n\
             fi\n",
        );
    }
    s.push_str("echo @@done\n");
    s
}

/// What one node answered.
#[derive(Debug, Default)]
pub struct Answer {
    pub host_key: Option<String>,
    pub public: Option<String>,
    pub private: Option<String>,
    pub error: Option<String>,
}

pub fn parse(stdout: &str) -> Answer {
    use base64::Engine;
    let mut a = Answer::default();
    let mut b64: Option<String> = None;
    for line in stdout.lines() {
        if let Some(buf) = b64.as_mut() {
            if line == "@@end" {
                let bytes = base64::engine::general_purpose::STANDARD.decode(buf.as_bytes());
                a.private = bytes.ok().and_then(|b| String::from_utf8(b).ok());
                b64 = None;
            } else {
                buf.push_str(line.trim());
            }
        } else if let Some(k) = line.strip_prefix("@@hostkey ") {
            a.host_key = valid_key(k);
        } else if let Some(k) = line.strip_prefix("@@public ") {
            a.public = valid_key(k);
        } else if line == "@@private" {
            b64 = Some(String::new());
        } else if let Some(e) = line.strip_prefix("@@error ") {
            a.error = Some(e.to_string());
        }
    }
    a
}

/// `TYPE BASE64 [COMMENT]` with nothing that could break a key line.
fn valid_key(k: &str) -> Option<String> {
    let parts: Vec<&str> = k.split_whitespace().collect();
    let ok = (2..=3).contains(&parts.len())
        && parts[0].starts_with("ssh-")
        && parts[1]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
        && parts
            .get(2)
            .is_none_or(|c| c.bytes().all(|b| b.is_ascii_graphic()));
    ok.then(|| parts.join(" "))
}

/// The keys from every node's answer (`Err`: it could not be asked).
/// Errors are notes, never fatal: a node without a host key here is
/// listed in `missing`.
pub fn assemble(
    cluster: &Cluster,
    answers: Vec<(String, Result<Answer, String>)>,
) -> (ClusterKeys, Vec<String>) {
    let head = cluster.head.name.as_str();
    let mut keys = ClusterKeys::default();
    let mut notes = Vec::new();
    for (name, answer) in answers {
        let Ok(a) = answer else {
            keys.missing.push(name);
            continue;
        };
        if let Some(e) = a.error {
            notes.push(format!("{name}: {e}"));
        }
        if name == head {
            keys.public = a.public;
            keys.private = a.private;
        }
        match (a.host_key, cluster.node(&name)) {
            (Some(key), Some(node)) => keys.host_keys.push(HostKey {
                names: names(node),
                key,
            }),
            _ => keys.missing.push(name),
        }
    }
    (keys, notes)
}

fn names(node: NodeRef) -> String {
    format!("{},{},{}", node.name(), node.fqdn(), node.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_and_bad_keys_are_dropped() {
        let a = parse(
            "@@hostkey ssh-ed25519 AAAAC3Nz\n@@public ssh-ed25519 AAAAB clusterctl@head\n@@private\nLS0tLS1CRUdJTgo=\n@@end\n@@done\n",
        );
        assert_eq!(a.host_key.as_deref(), Some("ssh-ed25519 AAAAC3Nz"));
        assert_eq!(
            a.public.as_deref(),
            Some("ssh-ed25519 AAAAB clusterctl@head")
        );
        assert_eq!(a.private.as_deref(), Some("-----BEGIN\n"));
        assert!(parse("@@hostkey ssh-ed25519 AA;rm\n").host_key.is_none());
        assert!(parse("@@hostkey rsa AAAA\n").host_key.is_none());
    }

    #[test]
    fn debug_never_shows_the_private_key() {
        let k = ClusterKeys {
            private: Some("-----BEGIN OPENSSH PRIVATE KEY-----".into()),
            ..Default::default()
        };
        assert!(!format!("{k:?}").contains("BEGIN"));
    }

    #[test]
    fn the_script_is_valid_sh() {
        for s in [script(Some("head"), true), script(None, false)] {
            let out = std::process::Command::new("sh")
                .args(["-n", "-c", &s])
                .output()
                .unwrap();
            assert!(out.status.success());
        }
    }
}
