//! `clusterctl inventory --format ansible|clustershell|json`: the resolved
//! nodes (how to reach each, its LAN address, role and groups) and the
//! groups (`crate::node_groups`) for other tools, on stdout. Offline: the
//! inventory alone. The Ansible inventory reaches nodes as clusterctl's
//! own ssh transport does (the same client options; workers through the
//! head by the same ProxyCommand; `become: sudo` as Ansible's become).

use std::path::{Path, PathBuf};

use crate::cli::{ExportFormat, InventoryExportArgs};
use crate::cluster::Cluster;
use crate::error::Result;
use crate::node_groups::{self, NodeGroup};
use crate::transport::{proxy_command, shell_quote, SshOptions};
use crate::yaml_edit::scalar;

pub fn run(args: &InventoryExportArgs) -> Result<i32> {
    let cluster = Cluster::load(&args.inventory.path)?;
    let groups = node_groups::groups(&cluster);
    let text = match args.format {
        ExportFormat::Ansible => ansible(&cluster, &ansible_groups(&cluster, &groups)?),
        ExportFormat::Clustershell => clustershell(&groups),
        ExportFormat::Json => format!("{:#}\n", json(&cluster, &groups)),
    };
    print!("{text}");
    Ok(0)
}

/// A ClusterShell YAML groups file: one source, `clusterctl`, its groups
/// as folded node sets. Dropped into `/etc/clustershell/groups.d/` on
/// another machine: `clush -s clusterctl -g workers` (the head itself has
/// the same groups in its default source).
pub fn clustershell(groups: &[NodeGroup]) -> String {
    let mut s = String::from("clusterctl:\n");
    for g in groups {
        s.push_str(&format!("  {}: {}\n", scalar(&g.name), scalar(&g.folded)));
    }
    s
}

/// Every node: name, role, LAN address, SSH target, through the head or
/// not, sudo or not, its groups; and the groups.
fn json(cluster: &Cluster, groups: &[NodeGroup]) -> serde_json::Value {
    let of = node_groups::by_node(cluster);
    let nodes: Vec<serde_json::Value> = of
        .iter()
        .filter_map(|(name, groups)| {
            let n = cluster.node(name)?;
            let (ssh, via_head, sudo, ip) = match cluster.worker(name) {
                Some(w) => (&w.ssh, w.via_head, w.sudo, w.ip),
                None => (
                    &cluster.head.ssh,
                    false,
                    cluster.head.sudo,
                    cluster.head.lan_ip,
                ),
            };
            Some(serde_json::json!({
                "name": name,
                "fqdn": n.fqdn(),
                "role": n.role().as_str(),
                "lan_ip": ip.to_string(),
                "ssh": { "user": ssh.user, "host": ssh.host, "port": ssh.port },
                "via_head": via_head,
                "sudo": sudo,
                "groups": groups,
            }))
        })
        .collect();
    serde_json::json!({
        "cluster": cluster.name.as_str(),
        "domain": cluster.domain,
        "nodes": nodes,
        "groups": groups,
    })
}

/// An absolute path for a file another tool reads from anywhere.
fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    })
}

/// The groups as Ansible takes them: `-` becomes `_` (Ansible's group
/// names are identifiers); `all` is Ansible's own; a group that is just the
/// host of its name (`head`) is left out, since `ansible head` already
/// names that host (Ansible warns about a group and a host of one name).
/// Two groups that become one name, or one Ansible reserves, are an error.
fn ansible_groups(cluster: &Cluster, groups: &[NodeGroup]) -> Result<Vec<NodeGroup>> {
    let hosts = cluster.node_names();
    let mut out: Vec<NodeGroup> = Vec::new();
    for g in groups.iter().filter(|g| g.name != "all") {
        let name = g.name.replace('-', "_");
        if hosts.contains(&name.as_str()) && g.nodes == [name.clone()] {
            continue;
        }
        let taken = out.iter().any(|o| o.name == name) || name == "ungrouped";
        if taken || hosts.contains(&name.as_str()) {
            return Err(crate::error::Error::usage(
                format!(
                    "group `{}` is `{name}` to Ansible, which {}",
                    g.name,
                    match taken {
                        true => "another group (or Ansible itself) already has",
                        false => "is also a host's name",
                    }
                ),
                Some("rename the Slurm partition in the inventory"),
            ));
        }
        out.push(NodeGroup { name, ..g.clone() });
    }
    Ok(out)
}

/// A YAML Ansible inventory: `all.hosts` with each node's connection
/// variables, and a child group per group ([`ansible_groups`]).
fn ansible(cluster: &Cluster, groups: &[NodeGroup]) -> String {
    let opts = SshOptions {
        config: cluster.ssh.config.as_deref().map(absolute),
        known_hosts: cluster.ssh.known_hosts.as_deref().map(absolute),
        identity: cluster.ssh.identity.as_deref().map(absolute),
        connect_timeout: 10,
        ..SshOptions::default()
    };
    let common = opts.args();
    let quoted = |words: &[String]| {
        words
            .iter()
            .map(|w| shell_quote(w))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut s = format!(
        "# Ansible inventory of cluster {} (clusterctl inventory --format ansible)\nall:\n  vars:\n    ansible_ssh_common_args: {}\n  hosts:\n",
        cluster.name,
        scalar(&quoted(&common))
    );
    for name in cluster.node_names() {
        let (target, jump, sudo) = match cluster.worker(name) {
            Some(w) => (&w.ssh, w.via_head.then_some(&cluster.head.ssh), w.sudo),
            None => (&cluster.head.ssh, None, cluster.head.sudo),
        };
        s.push_str(&format!("    {}:\n", scalar(name)));
        s.push_str(&format!("      ansible_host: {}\n", scalar(&target.host)));
        s.push_str(&format!("      ansible_port: {}\n", target.port));
        if let Some(u) = &target.user {
            s.push_str(&format!("      ansible_user: {}\n", scalar(u)));
        }
        if sudo {
            s.push_str("      ansible_become: true\n      ansible_become_method: sudo\n");
        }
        if let Some(j) = jump {
            // The jump with the same options, as the transport makes it.
            let mut args = common.clone();
            args.extend(["-o".into(), proxy_command(&common, j)]);
            s.push_str(&format!(
                "      ansible_ssh_common_args: {}\n",
                scalar(&quoted(&args))
            ));
        }
    }
    s.push_str("  children:\n");
    for g in groups {
        s.push_str(&format!("    {}:\n", scalar(&g.name)));
        match g.nodes.is_empty() {
            true => s.push_str("      hosts: {}\n"),
            false => {
                s.push_str("      hosts:\n");
                for n in &g.nodes {
                    s.push_str(&format!("        {}:\n", scalar(n)));
                }
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Cluster {
        Cluster::from_str(crate::commands::EXAMPLE, Path::new("examples/cluster.yaml")).unwrap()
    }

    #[test]
    fn clustershell_groups_are_folded_node_sets() {
        let c = example();
        assert_eq!(
            clustershell(&node_groups::groups(&c)),
            "clusterctl:\n  all: \"head,node[01-04]\"\n  head: head\n  workers: \"node[01-04]\"\n  batch: \"node[01-04]\"\n"
        );
    }

    #[test]
    fn ansible_reaches_workers_through_the_head_as_clusterctl_does() {
        let c = example();
        let groups = ansible_groups(&c, &node_groups::groups(&c)).unwrap();
        let text = ansible(&c, &groups);
        assert!(text.contains("    head:\n      ansible_host: \"192.168.1.50\"\n      ansible_port: 22\n      ansible_user: pi\n      ansible_become: true\n"), "{text}");
        assert!(text.contains("-W %h:%p -p 22 -l pi 192.168.1.50"), "{text}");
        assert!(text.contains("StrictHostKeyChecking=yes"), "{text}");
        // `head` is the host: no group of that name beside it.
        assert!(
            text.contains("  children:\n    workers:\n      hosts:\n        node01:\n"),
            "{text}"
        );
        // Every line is YAML that a reader takes as written: quoted where needed.
        let parsed: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(parsed["all"]["hosts"]["node02"]["ansible_port"], 22);
        let json = json(&c, &node_groups::groups(&c));
        assert_eq!(
            json["nodes"][1]["groups"],
            serde_json::json!(["all", "workers", "batch"])
        );
        assert_eq!(json["nodes"][1]["via_head"], true);
    }
}
