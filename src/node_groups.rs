//! The cluster's node groups: `all`, `head`, `workers` and, with Slurm on,
//! one per partition (`validate/slurm.rs` keeps partitions from taking the
//! role groups' names). One list for every place that names nodes by
//! group: the ClusterShell and genders files on the head, `@GROUP` in
//! `--nodes` and `exec`, and `clusterctl inventory`.

use serde::Serialize;

use crate::cluster::Cluster;
use crate::hostlist;

/// One group: its name, its nodes in inventory order, and the same folded
/// (`node[01-04]`) as ClusterShell and Slurm write node sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeGroup {
    pub name: String,
    pub nodes: Vec<String>,
    pub folded: String,
}

impl NodeGroup {
    fn new(name: impl Into<String>, nodes: Vec<String>) -> NodeGroup {
        NodeGroup {
            name: name.into(),
            folded: hostlist::fold(&nodes),
            nodes,
        }
    }
}

/// The role groups always there: no partition may take their names.
pub const ROLE_GROUPS: [&str; 3] = ["all", "head", "workers"];

/// Every group of the cluster, in a fixed order: the role groups, then the
/// partitions in the inventory's order. An empty group (no workers) is
/// listed with no nodes.
pub fn groups(cluster: &Cluster) -> Vec<NodeGroup> {
    let head = cluster.head.name.to_string();
    let workers: Vec<String> = cluster.workers.iter().map(|w| w.name.to_string()).collect();
    let mut all = vec![head.clone()];
    all.extend(workers.iter().cloned());
    let mut out = vec![
        NodeGroup::new("all", all),
        NodeGroup::new("head", vec![head]),
        NodeGroup::new("workers", workers),
    ];
    if cluster.slurm.enabled {
        for p in &cluster.slurm.partitions {
            out.push(NodeGroup::new(p.name.clone(), p.nodes.clone()));
        }
    }
    out
}

/// Each node's groups, in inventory order: genders' `NODE attr,attr` lines.
pub fn by_node(cluster: &Cluster) -> Vec<(String, Vec<String>)> {
    let mut of: std::collections::HashMap<&str, Vec<String>> = std::collections::HashMap::new();
    let groups = groups(cluster);
    for g in &groups {
        for n in &g.nodes {
            of.entry(n.as_str()).or_default().push(g.name.clone());
        }
    }
    cluster
        .node_names()
        .into_iter()
        .map(|n| (n.to_string(), of.remove(n).unwrap_or_default()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn cluster(extra: &str) -> Cluster {
        let yaml = format!(
            "name: c\ndomain: cluster.lan\nlan:\n  cidr: 10.0.0.0/24\n  dhcp_range: 10.0.0.100-10.0.0.200\n  upstream_dns: [1.1.1.1]\nhead:\n  name: head\n  ssh: root@192.168.1.50\n  wan_iface: eth0\n  lan_iface: eth1\n  lan_ip: 10.0.0.1\nworkers:\n  - names: node[01-04]\n    macs: [\"02:00:00:00:00:01\", \"02:00:00:00:00:02\", \"02:00:00:00:00:03\", \"02:00:00:00:00:04\"]\n{extra}"
        );
        Cluster::from_str(&yaml, Path::new("c.yaml")).unwrap()
    }

    #[test]
    fn role_groups_then_partitions() {
        let c = cluster("slurm:\n  enabled: true\n  partitions:\n    - name: small\n      nodes: node[01-02]\n    - name: big\n      nodes: node[03-04]\n      default: true\n");
        let g: Vec<(String, String)> = groups(&c).into_iter().map(|g| (g.name, g.folded)).collect();
        let want = [
            ("all", "head,node[01-04]"),
            ("head", "head"),
            ("workers", "node[01-04]"),
            ("small", "node[01-02]"),
            ("big", "node[03-04]"),
        ];
        assert_eq!(
            g,
            want.map(|(a, b)| (a.to_string(), b.to_string())).to_vec()
        );
        let nodes = by_node(&c);
        assert_eq!(nodes[0], ("head".into(), vec!["all".into(), "head".into()]));
        assert_eq!(
            nodes[3],
            (
                "node03".into(),
                vec!["all".into(), "workers".into(), "big".into()]
            )
        );
    }

    #[test]
    fn without_slurm_only_the_roles() {
        assert_eq!(groups(&cluster("")).len(), 3);
    }
}
