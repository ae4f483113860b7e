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
    /// On the head: the hardware the last apply listed (its record).
    pub known: Vec<NodeHardware>,
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
    // As `slurmd -C` counts: online processors; packages; cores (package,
    // core) per package; the most threads any core has.
    let cpus = a.cpus.len() as u32;
    let mut per_core: std::collections::BTreeMap<(u32, u32), u32> = Default::default();
    for c in &a.cpus {
        *per_core.entry(*c).or_default() += 1;
    }
    let packages: std::collections::BTreeSet<u32> = a.cpus.iter().map(|c| c.0).collect();
    let sockets = packages.len() as u32;
    let cores_per_socket = (per_core.len() as u32 / sockets).max(1);
    let threads_per_core = per_core.values().copied().max().unwrap_or(1);
    Some(NodeHardware {
        name: name.to_string(),
        cpus,
        sockets,
        cores_per_socket,
        threads_per_core,
        memory_mib: usable_memory(memkb),
        cgroup: a.cgroup.unwrap_or(false),
    })
}

/// RealMemory: MemTotal in MiB less 1% (at least 1 MiB), so a kernel that
/// reserves a little more after an update does not drain the node.
pub fn usable_memory(memkb: u64) -> u64 {
    let mib = memkb / 1024;
    mib.saturating_sub((mib / 100).max(1))
}

/// One line of the head's record: `NAME CPUS SOCKETS CORES THREADS MIB
/// yes|no`, every number in range; the name is checked against the
/// inventory by [`assemble`].
pub fn recorded_hardware(line: &str) -> Option<NodeHardware> {
    let w: Vec<&str> = line.split_whitespace().collect();
    let [name, cpus, sockets, cores, threads, mem, cg] = w[..] else {
        return None;
    };
    let n = |v: &str| v.parse::<u32>().ok().filter(|n| (1..=65536).contains(n));
    Some(NodeHardware {
        name: name.to_string(),
        cpus: n(cpus)?,
        sockets: n(sockets)?,
        cores_per_socket: n(cores)?,
        threads_per_core: n(threads)?,
        memory_mib: mem.parse::<u64>().ok().filter(|m| *m > 0)?,
        cgroup: match cg {
            "yes" => true,
            "no" => false,
            _ => return None,
        },
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
    let mut recorded: Vec<NodeHardware> = Vec::new();
    let (key_on, slurm_on) = (cluster.mpi.cluster_key, cluster.slurm.enabled);
    for (name, answer) in answers {
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
            recorded = a.known;
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
    // Nodes that did not answer keep the hardware the last apply listed
    // (the head's record): their line, and their jobs, stay.
    if slurm_on {
        let compute = cluster.slurm_compute_nodes();
        let mut kept = Vec::new();
        keys.hardware_missing.retain(|n| {
            match recorded
                .iter()
                .find(|h| h.name == *n && compute.contains(n))
            {
                Some(h) => {
                    keys.hardware.push(h.clone());
                    kept.push(n.clone());
                    false
                }
                None => true,
            }
        });
        if !kept.is_empty() {
            notes.push(format!(
                "slurm: {} did not answer: slurm.conf keeps the hardware the last apply listed",
                crate::hostlist::fold(&kept)
            ));
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
        assert_eq!(h.memory_mib, 3906 - 39, "MemTotal less 1%");
        // A Raspberry Pi: one package, four cores.
        let h = hardware("n", &answer(&[(0, 0), (0, 1), (0, 2), (0, 3)])).unwrap();
        assert_eq!(
            (h.sockets, h.cores_per_socket, h.threads_per_core),
            (1, 4, 1)
        );
        // A hybrid CPU as slurmd -C counts it: 8 performance cores with two
        // threads, 4 efficiency cores with one: 20 CPUs, 12 cores, 2 threads.
        let mut hybrid: Vec<(u32, u32)> = (0..8).flat_map(|c| [(0, c), (0, c)]).collect();
        hybrid.extend((8..12).map(|c| (0, c)));
        let h = hardware("n", &answer(&hybrid)).unwrap();
        assert_eq!(
            (h.cpus, h.sockets, h.cores_per_socket, h.threads_per_core),
            (20, 1, 12, 2)
        );

        assert!(hardware("n", &Answer::default()).is_none());
    }

    /// A node that does not answer keeps the hardware the head recorded;
    /// a record line for a node not in the inventory, or a bad one, is not taken.
    #[test]
    fn the_heads_record_stands_in_for_a_node_that_does_not_answer() {
        let text = format!(
            "{}slurm:\n  enabled: true\n",
            include_str!("../inventories/lab.yaml")
        );
        let c = Cluster::from_str(&text, std::path::Path::new("c.yaml")).unwrap();
        let w: Vec<String> = c.workers.iter().map(|w| w.name.to_string()).collect();
        let head = Answer {
            known: [
                format!("{} 4 1 4 1 3000 no", w[1]),
                "intruder 4 1 4 1 3000 no".to_string(),
            ]
            .iter()
            .filter_map(|l| recorded_hardware(l))
            .collect(),
            ..answer(&[(0, 0)])
        };
        let mut answers = vec![
            ("head".to_string(), Ok(head)),
            (w[0].clone(), Ok(answer(&[(0, 0), (0, 1)]))),
        ];
        answers.extend(
            w[1..]
                .iter()
                .map(|n| (n.clone(), Err("unreachable".to_string()))),
        );
        let (keys, notes) = assemble(&c, answers);
        let names: Vec<&str> = keys.hardware.iter().map(|h| h.name.as_str()).collect();
        assert!(
            names.contains(&w[1].as_str()) && !names.contains(&"intruder"),
            "{names:?}"
        );
        assert_eq!(
            keys.hardware
                .iter()
                .find(|h| h.name == w[1])
                .unwrap()
                .memory_mib,
            3000
        );
        assert!(!keys.hardware_missing.contains(&w[1]));
        assert!(
            notes.iter().any(|n| n.contains("did not answer")),
            "{notes:?}"
        );
        for bad in [
            "w1 4 1 4 1",
            "w1 0 1 4 1 3000 no",
            "w1 4 1 4 1 3000 maybe",
            "w1 x 1 4 1 3000 no",
        ] {
            assert!(recorded_hardware(bad).is_none(), "{bad}");
        }
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
