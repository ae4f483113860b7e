//! The round trip before planning: every node's answer to the key gather
//! (the head's key pair, each node's host key), assembled into the cluster
//! the templates see; for `apply` with users, every selected node's
//! accounts checked against them first, so a clash on one node stops the
//! run before anything on any node changes.

use super::remote::Prepared;
use crate::catalog::slurm;
use crate::cluster_key::{self, Answer};
use crate::desired;
use crate::engine::Ask;
use crate::hostlist;
use crate::plan::{plan_accounts, HomeShare};
use crate::pool::head_first;
use crate::transport::Transport;

/// What the round trip found that the caller acts on.
#[derive(Debug, Default)]
pub struct Gathered {
    /// What the user should know.
    pub notes: Vec<String>,
    /// `node: clash` for each selected node whose accounts clash with the
    /// inventory's users (only when asked to check them). When there is
    /// any, nothing was generated and the keys were not assembled.
    pub clashes: Vec<String>,
}

impl Prepared {
    /// The head lacks a key the inventory needs (the cluster key, the
    /// munge key): apply makes it once the user has said yes.
    pub fn lacks_keys(&self) -> bool {
        let k = self.cluster.keys.as_ref();
        (self.cluster.mpi.cluster_key && k.is_none_or(|k| k.public.is_none()))
            || (self.cluster.slurm.enabled && k.is_none_or(|k| k.munge.is_none()))
    }

    /// With a cluster key in the inventory: its public and private halves
    /// from the head (`generate`: made there first when it has none) and
    /// every node's host key, one round trip per node in parallel (every
    /// node, selected or not: known_hosts lists them all). The templates
    /// see them from now on. Returns what the user should know.
    pub fn gather_keys(&mut self, generate: bool, forks: usize) -> Vec<String> {
        self.gather(generate, false, forks).notes
    }

    /// [`Prepared::gather_keys`] and, with `check_accounts` and users (or
    /// Slurm's accounts) in the inventory, every selected node's accounts
    /// in the same round trip, planned against them. Apply asks first
    /// without generating (`generate` false): a clash stops it before
    /// anything changes. A node that cannot be reached now is checked by
    /// its own plan when it is.
    pub fn gather(&mut self, generate: bool, check_accounts: bool, forks: usize) -> Gathered {
        let keys_on = self.cluster.mpi.cluster_key;
        let slurm = self.cluster.slurm.enabled;
        let accounts = check_accounts && (!self.cluster.users.is_empty() || slurm);
        if !keys_on && !accounts && !slurm {
            return Gathered::default();
        }
        let head = self.cluster.head.name.to_string();
        // known_hosts and slurm.conf list every node, selected or not.
        let names: Vec<String> = match keys_on || slurm {
            true => self
                .cluster
                .node_names()
                .into_iter()
                .map(String::from)
                .collect(),
            false => self.nodes.clone(),
        };
        let nodes: Vec<(String, Box<dyn Transport>)> = names
            .into_iter()
            .map(|n| {
                let t = self.connector.transport_for(&self.cluster, &n);
                (n, t)
            })
            .collect();
        let answers = head_first(
            &nodes,
            forks,
            |(name, _)| *name == head,
            |(name, t)| {
                let selected = self.nodes.contains(name);
                let ask = Ask {
                    head: (*name == head).then_some(head.as_str()),
                    generate,
                    cluster_key: keys_on,
                    accounts: accounts && selected,
                    slurm,
                };
                let answer = crate::engine::ask_keys(t.as_ref(), ask);
                if *name != head {
                    t.close();
                }
                answer
            },
        );
        let mut out = Gathered::default();
        if accounts {
            for ((name, _), answer) in nodes.iter().zip(&answers) {
                let (Ok(a), Some(node)) = (answer, self.cluster.node(name)) else {
                    continue;
                };
                if !self.nodes.contains(name) {
                    continue;
                }
                let share = HomeShare::of(&self.cluster, node.role());
                // Only a clash matters here: any family's shell will do.
                let system = slurm::system_accounts(&self.cluster, &crate::family::DEBIAN);
                if let Err(e) = plan_accounts(&self.cluster.users, &system, share, &a.accounts) {
                    out.clashes.push(format!("{name}: {e}"));
                }
            }
            if !out.clashes.is_empty() {
                return out;
            }
        }
        let names = nodes.into_iter().map(|(n, _)| n);
        let answers: Vec<(String, Result<Answer, String>)> = names.zip(answers).collect();
        let (keys, mut notes) = cluster_key::assemble(&self.cluster, answers);
        if slurm && keys.munge.is_none() {
            notes.push(format!(
                "slurm: no munge key on {head} yet (apply generates it); munge.key is not planned"
            ));
        }
        if !keys.hardware_missing.is_empty() {
            notes.push(format!(
                "slurm: hardware of {} not known yet (no answer): slurm.conf lists it once it answers",
                hostlist::fold(&keys.hardware_missing)
            ));
        }
        if keys_on && keys.public.is_none() {
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
        out.notes = notes;
        out
    }
}
