//! `--nodes` (and `render --node`): a host list checked against the
//! inventory, the chosen node names in inventory order.

use std::collections::BTreeSet;

use crate::cluster::Cluster;
use crate::error::{Error, Result};
use crate::hostlist;

/// Node names to work on, in inventory order.
pub fn select(cluster: &Cluster, nodes: Option<&str>) -> Result<Vec<String>> {
    select_by(cluster, nodes, "--nodes")
}

/// [`select`] with the flag name used in messages.
pub fn select_by(cluster: &Cluster, nodes: Option<&str>, flag: &str) -> Result<Vec<String>> {
    let all: Vec<String> = cluster.node_names().iter().map(|s| s.to_string()).collect();
    let Some(list) = nodes else { return Ok(all) };
    let wanted: BTreeSet<String> = hostlist::expand(list)
        .map_err(|e| {
            Error::usage(
                format!("{flag}: {e}"),
                Some("a host list like head,node[01-04]"),
            )
        })?
        .into_iter()
        .collect();
    if let Some(unknown) = wanted.iter().find(|n| !all.contains(n)) {
        return Err(Error::usage(
            format!(
                "{flag}: no node named `{}` in the inventory",
                crate::values::shown(unknown)
            ),
            Some(&format!("nodes: {}", hostlist::fold(&cluster.node_names()))),
        ));
    }
    Ok(all.into_iter().filter(|n| wanted.contains(n)).collect())
}
