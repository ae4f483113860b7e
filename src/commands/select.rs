//! `--nodes` (and `render --node`, `exec NODES`): host lists and `@GROUP`s
//! (`crate::node_groups`) checked against the inventory, the chosen node
//! names in inventory order.

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
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    let mut plain: Vec<&str> = Vec::new();
    for item in top_level_items(list) {
        let Some(name) = item.strip_prefix('@') else {
            plain.push(item);
            continue;
        };
        let groups = crate::node_groups::groups(cluster);
        let Some(g) = groups.iter().find(|g| g.name == name) else {
            let names: Vec<String> = groups.iter().map(|g| format!("@{}", g.name)).collect();
            return Err(Error::usage(
                format!(
                    "{flag}: no group `{}` in the inventory",
                    crate::values::shown(item)
                ),
                Some(&format!("groups: {}", names.join(", "))),
            ));
        };
        wanted.extend(g.nodes.iter().cloned());
    }
    if !plain.is_empty() {
        let names = hostlist::expand(&plain.join(",")).map_err(|e| {
            Error::usage(
                format!("{flag}: {e}"),
                Some("a host list like head,node[01-04], or a group like @workers"),
            )
        })?;
        wanted.extend(names);
    }
    if wanted.is_empty() {
        return Err(Error::usage(
            format!("{flag}: `{}` selects no node", crate::values::shown(list)),
            Some(&format!("nodes: {}", hostlist::fold(&cluster.node_names()))),
        ));
    }
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

/// `list` split at the commas outside brackets (`a,b[1-2,5],@g`).
fn top_level_items(list: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in list.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&list[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn host_lists_and_groups_select_in_inventory_order() {
        let c = Cluster::from_str(
            &crate::commands::EXAMPLE.replace("bramble", "c"),
            Path::new("x.yaml"),
        )
        .unwrap();
        let s = |l: &str| select(&c, Some(l)).unwrap().join(",");
        assert_eq!(s("@workers"), "node01,node02,node03,node04");
        assert_eq!(s("node[03-04],@head"), "head,node03,node04");
        assert_eq!(s("@all"), "head,node01,node02,node03,node04");
        let e = select(&c, Some("@gpu")).unwrap_err().to_string();
        assert!(e.contains("no group `@gpu`"), "{e}");
        assert_eq!(top_level_items("a,b[1-2,5],@g"), ["a", "b[1-2,5]", "@g"]);
    }
}
