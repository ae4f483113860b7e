//! The cluster key's round trip before planning: every node's answer to
//! the key gather (the head's key pair, each node's host key), assembled
//! into the cluster the templates see.

use super::remote::Prepared;
use crate::cluster_key;
use crate::desired;
use crate::hostlist;
use crate::pool::head_first;
use crate::transport::Transport;

impl Prepared {
    /// With a cluster key in the inventory: its public and private halves
    /// from the head (`generate`: made there first when it has none) and
    /// every node's host key, one round trip per node in parallel (every
    /// node, selected or not: known_hosts lists them all). The templates
    /// see them from now on. Returns what the user should know.
    pub fn gather_keys(&mut self, generate: bool, forks: usize) -> Vec<String> {
        if !self.cluster.mpi.cluster_key {
            return Vec::new();
        }
        let head = self.cluster.head.name.to_string();
        let nodes: Vec<(String, Box<dyn Transport>)> = self
            .cluster
            .node_names()
            .into_iter()
            .map(|n| {
                (
                    n.to_string(),
                    self.connector.transport_for(&self.cluster, n),
                )
            })
            .collect();
        let answers = head_first(
            &nodes,
            forks,
            |(name, _)| *name == head,
            |(name, t)| {
                let answer =
                    crate::engine::ask_keys(t.as_ref(), (*name == head).then_some(&head), generate);
                if *name != head {
                    t.close();
                }
                answer
            },
        );
        let names = nodes.into_iter().map(|(n, _)| n);
        let (keys, mut notes) = cluster_key::assemble(&self.cluster, names.zip(answers).collect());
        if keys.public.is_none() {
            notes.push(format!(
                "cluster key: none on {head} yet (apply generates it); its files are not planned"
            ));
        }
        if !keys.missing.is_empty() {
            let missing: Vec<&str> = keys.missing.iter().map(String::as_str).collect();
            notes.push(format!(
                "cluster key: host key of {} unknown (unreachable now): known_hosts lists it once it answers",
                hostlist::fold(&missing)
            ));
        }
        self.cluster.keys = Some(keys);
        self.shared = desired::Shared::new(&self.cluster);
        notes
    }
}
