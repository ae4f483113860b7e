//! The cluster SSH key and the nodes' host keys: what root on every node
//! needs so that `ssh w2` (and an MPI launch) works from the head and from
//! any worker with no password and no host-key prompt. One round trip per
//! node, before planning: the head reports its cluster key (generated there
//! once, by apply, never regenerated) and every node its host key. The
//! private key reaches the controller's memory only to be written to the
//! workers (mode 0600); it is never printed (its diff is masked, `Debug`
//! hides it). The round trip itself is `engine::ask_keys` (`keys.sh`);
//! this file is the pure part: what an answer holds and `assemble`.

use crate::cluster::{Cluster, NodeHardware, NodeRef};
pub use crate::cluster::{ClusterKeys, HostKey};

/// The cluster key's private half on every node; the public half beside it.
pub const KEY_PATH: &str = "/root/.ssh/id_clusterctl";

/// What one node answered.
#[derive(Default)]
pub struct Answer {
    pub host_key: Option<String>,
    pub public: Option<String>,
    pub private: Option<String>,
    pub error: Option<String>,
    /// The node's accounts, when they were asked for.
    pub accounts: crate::facts::Accounts,
    /// With Slurm, from the head: the munge key.
    pub munge: Option<String>,
    /// With Slurm: each online processor's package and core.
    pub cpus: Vec<(u32, u32)>,
    pub memkb: Option<u64>,
    pub cgroup: Option<bool>,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = |s: &Option<String>| s.as_ref().map(|_| "(secret)");
        f.debug_struct("Answer")
            .field("host_key", &self.host_key)
            .field("public", &self.public)
            .field("private", &secret(&self.private))
            .field("munge", &secret(&self.munge))
            .field("error", &self.error)
            .field("cpus", &self.cpus.len())
            .field("memkb", &self.memkb)
            .finish()
    }
}

/// slurm.conf's view of a node from its answer: processors by package and
/// core, MemTotal. None when the node did not say.
pub fn hardware(name: &str, a: &Answer) -> Option<NodeHardware> {
    let memkb = a.memkb?;
    if a.cpus.is_empty() {
        return None;
    }
    let cpus = a.cpus.len() as u32;
    let packages: std::collections::BTreeSet<u32> = a.cpus.iter().map(|c| c.0).collect();
    let cores: std::collections::BTreeSet<(u32, u32)> = a.cpus.iter().copied().collect();
    let sockets = packages.len() as u32;
    let cores_per_socket = (cores.len() as u32 / sockets).max(1);
    let threads_per_core = (cpus / (sockets * cores_per_socket)).max(1);
    // An uneven layout (cores missing from one package): say only CPUs.
    let (sockets, cores_per_socket, threads_per_core) =
        match sockets * cores_per_socket * threads_per_core == cpus {
            true => (sockets, cores_per_socket, threads_per_core),
            false => (1, cpus, 1),
        };
    Some(NodeHardware {
        name: name.to_string(),
        cpus,
        sockets,
        cores_per_socket,
        threads_per_core,
        memory_mib: memkb / 1024,
        cgroup: a.cgroup.unwrap_or(false),
    })
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
        let key_on = cluster.mpi.cluster_key;
        let slurm_on = cluster.slurm.enabled;
        let Ok(a) = answer else {
            if key_on {
                keys.missing.push(name.clone());
            }
            if slurm_on {
                keys.hardware_missing.push(name);
            }
            continue;
        };
        if let Some(e) = &a.error {
            notes.push(format!("{name}: {e}"));
        }
        if slurm_on {
            match hardware(&name, &a) {
                Some(h) => keys.hardware.push(h),
                None => keys.hardware_missing.push(name.clone()),
            }
        }
        if name == head {
            keys.public = a.public;
            keys.private = a.private;
            keys.munge = a.munge;
        }
        if !key_on {
            continue;
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

    fn answer(cpus: &[(u32, u32)]) -> Answer {
        Answer {
            cpus: cpus.to_vec(),
            memkb: Some(4_000_000),
            cgroup: Some(true),
            ..Default::default()
        }
    }

    #[test]
    fn hardware_counts_sockets_cores_and_threads() {
        // Two packages of two cores with two threads each.
        let h = hardware(
            "n",
            &answer(&[
                (0, 0),
                (0, 0),
                (0, 1),
                (0, 1),
                (1, 0),
                (1, 0),
                (1, 1),
                (1, 1),
            ]),
        )
        .unwrap();
        assert_eq!(
            (h.cpus, h.sockets, h.cores_per_socket, h.threads_per_core),
            (8, 2, 2, 2)
        );
        assert_eq!(h.memory_mib, 3906);
        // A Raspberry Pi: one package, four cores.
        let h = hardware("n", &answer(&[(0, 0), (0, 1), (0, 2), (0, 3)])).unwrap();
        assert_eq!(
            (h.sockets, h.cores_per_socket, h.threads_per_core),
            (1, 4, 1)
        );
        // Uneven: CPUs only.
        let h = hardware("n", &answer(&[(0, 0), (0, 1), (1, 0)])).unwrap();
        assert_eq!(
            (h.cpus, h.sockets, h.cores_per_socket, h.threads_per_core),
            (3, 1, 3, 1)
        );
        assert!(hardware("n", &Answer::default()).is_none());
    }

    #[test]
    fn debug_never_shows_the_private_keys() {
        let a = Answer {
            private: Some("-----BEGIN OPENSSH PRIVATE KEY-----".into()),
            munge: Some("MUNGEKEYMUNGEKEY".into()),
            ..Default::default()
        };
        assert!(!format!("{a:?}").contains("BEGIN") && !format!("{a:?}").contains("MUNGEKEY"));
        let k = ClusterKeys {
            munge: Some("MUNGEKEYMUNGEKEY".into()),
            ..Default::default()
        };
        assert!(!format!("{k:?}").contains("MUNGEKEY"));
    }

    #[test]
    fn debug_never_shows_the_private_key() {
        let k = ClusterKeys {
            private: Some("-----BEGIN OPENSSH PRIVATE KEY-----".into()),
            ..Default::default()
        };
        assert!(!format!("{k:?}").contains("BEGIN"));
    }
}
