//! The cluster SSH key and the nodes' host keys: what root on every node
//! needs so that `ssh w2` (and an MPI launch) works from the head and from
//! any worker with no password and no host-key prompt. One round trip per
//! node, before planning: the head reports its cluster key (generated there
//! once, by apply, never regenerated) and every node its host key. The
//! private key reaches the controller's memory only to be written to the
//! workers (mode 0600); it is never printed (its diff is masked, `Debug`
//! hides it). The round trip itself is `engine::ask_keys` (`keys.sh`);
//! this file is the pure part: what an answer holds and `assemble`.

use crate::cluster::{Cluster, NodeRef};
pub use crate::cluster::{ClusterKeys, HostKey};

/// The cluster key's private half on every node; the public half beside it.
pub const KEY_PATH: &str = "/root/.ssh/id_clusterctl";

/// What one node answered.
#[derive(Debug, Default)]
pub struct Answer {
    pub host_key: Option<String>,
    pub public: Option<String>,
    pub private: Option<String>,
    pub error: Option<String>,
    /// The node's accounts, when they were asked for.
    pub accounts: crate::facts::Accounts,
}

/// `TYPE BASE64 [COMMENT]` with nothing that could break a key line.
pub(crate) fn valid_key(k: &str) -> Option<String> {
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
    fn debug_never_shows_the_private_key() {
        let k = ClusterKeys {
            private: Some("-----BEGIN OPENSSH PRIVATE KEY-----".into()),
            ..Default::default()
        };
        assert!(!format!("{k:?}").contains("BEGIN"));
    }
}
