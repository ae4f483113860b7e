//! The inventory's `slurm:`: which nodes run jobs, the partitions (names
//! slurm.conf can hold, host lists of nodes that run jobs, one default) and
//! the fixed IDs of the `munge` and `slurm` accounts (system IDs that no
//! cluster user has).

use std::collections::BTreeSet;

use super::head::HeadDraft;
use super::Diags;
use crate::cluster::{Partition, Slurm, User, Worker};
use crate::hostlist;
use crate::inventory::{loc, RawSlurm, S};
use crate::values::shown;

/// munge has no ID of its own in Debian; this one sits beside slurm's.
pub const DEFAULT_MUNGE_UID: u32 = 64029;
/// Debian's slurm packages create `slurm` with 64030 when it is missing.
pub const DEFAULT_SLURM_UID: u32 = 64030;
/// The partition when the inventory names none.
pub const DEFAULT_PARTITION: &str = "batch";

const PARTITION_HELP: &str =
    "a partition name like `batch`: letters, digits, '_' and '-', at most 32 characters";

pub(super) fn slurm(
    d: &mut Diags,
    raw: Option<&RawSlurm>,
    head: &HeadDraft,
    workers: &[Worker],
    users: &[User],
) -> Slurm {
    let Some(raw) = raw else {
        return Slurm::default();
    };
    let enabled = raw.enabled.as_ref().is_none_or(|e| e.value);
    let head_runs_jobs = raw.head_runs_jobs.as_ref().is_some_and(|h| h.value);
    let munge_uid = system_id(d, raw.munge_uid.as_ref(), "munge_uid", DEFAULT_MUNGE_UID);
    let slurm_uid = system_id(d, raw.slurm_uid.as_ref(), "slurm_uid", DEFAULT_SLURM_UID);
    if munge_uid == slurm_uid {
        d.err(
            raw.slurm_uid
                .as_ref()
                .or(raw.munge_uid.as_ref())
                .and_then(loc),
            None,
            format!("slurm: munge and slurm would both have the ID {munge_uid}"),
            Some("give munge_uid and slurm_uid different IDs"),
        );
    }
    for u in users {
        for (what, id, at) in [
            ("munge_uid", munge_uid, raw.munge_uid.as_ref()),
            ("slurm_uid", slurm_uid, raw.slurm_uid.as_ref()),
        ] {
            if u.uid == id || u.gid == id {
                d.err(
                    at.and_then(loc),
                    None,
                    format!("slurm {what} {id} is also user `{}`'s ID", u.name),
                    Some("the munge and slurm accounts need IDs no cluster user has"),
                );
            }
        }
    }

    // The nodes that run jobs, in inventory order.
    let mut compute: Vec<String> = Vec::new();
    if head_runs_jobs {
        if let Some(n) = &head.name {
            compute.push(n.to_string());
        }
    }
    compute.extend(workers.iter().map(|w| w.name.to_string()));
    if enabled && compute.is_empty() {
        d.err(
            raw.enabled.as_ref().and_then(loc),
            None,
            "slurm: no node runs jobs (no workers, and head_runs_jobs is off)".into(),
            Some("add workers, or set slurm.head_runs_jobs: true"),
        );
    }

    let mut partitions = Vec::new();
    let mut names = BTreeSet::new();
    for p in &raw.partitions {
        let p = &p.value;
        let name = &p.name.value;
        if let Err(e) = check_partition_name(name) {
            d.err(
                loc(&p.name),
                None,
                format!("slurm partition `{}` {e}", shown(name)),
                Some(PARTITION_HELP),
            );
            continue;
        }
        if !names.insert(name.to_ascii_lowercase()) {
            d.err(
                loc(&p.name),
                None,
                format!("slurm partition `{name}` is listed twice"),
                Some("name each partition once"),
            );
            continue;
        }
        let nodes = match &p.nodes {
            None => compute.clone(),
            Some(list) => match hostlist::expand(&list.value) {
                Err(e) => {
                    d.err(
                        loc(list),
                        None,
                        format!(
                            "slurm partition `{name}`: nodes `{}`: {e}",
                            shown(&list.value)
                        ),
                        Some("a host list like `node[01-04]` or `node01,node03`"),
                    );
                    continue;
                }
                Ok(listed) => {
                    let mut bad = Vec::new();
                    for n in &listed {
                        if !compute.contains(n) {
                            bad.push(n.clone());
                        }
                    }
                    if !bad.is_empty() {
                        let head_named = head
                            .name
                            .as_ref()
                            .is_some_and(|h| bad.contains(&h.to_string()));
                        d.err(
                            loc(list),
                            None,
                            format!(
                                "slurm partition `{name}`: {} {} not a node that runs jobs",
                                hostlist::fold(&bad),
                                if bad.len() == 1 { "is" } else { "are" }
                            ),
                            Some(if head_named {
                                "the head runs jobs only with slurm.head_runs_jobs: true"
                            } else {
                                "list workers of this inventory"
                            }),
                        );
                        continue;
                    }
                    // Inventory order, each once.
                    compute
                        .iter()
                        .filter(|c| listed.contains(c))
                        .cloned()
                        .collect()
                }
            },
        };
        if nodes.is_empty() && enabled {
            d.err(
                loc(&p.name),
                None,
                format!("slurm partition `{name}` has no nodes"),
                Some("list at least one node that runs jobs"),
            );
            continue;
        }
        partitions.push((
            p.default.as_ref(),
            Partition {
                nodes_folded: hostlist::fold(&nodes),
                name: name.clone(),
                nodes,
                default: p.default.as_ref().is_some_and(|x| x.value),
            },
        ));
    }
    let defaults: Vec<&S<bool>> = partitions
        .iter()
        .filter_map(|(at, p)| at.filter(|_| p.default))
        .collect();
    if defaults.len() > 1 {
        d.err(
            loc(defaults[1]),
            None,
            "slurm: more than one partition is the default".into(),
            Some("mark one partition `default: true`"),
        );
    }
    let mut partitions: Vec<Partition> = partitions.into_iter().map(|(_, p)| p).collect();
    if raw.partitions.is_empty() && !compute.is_empty() {
        partitions.push(Partition {
            name: DEFAULT_PARTITION.into(),
            nodes_folded: hostlist::fold(&compute),
            nodes: compute,
            default: true,
        });
    }
    if let (false, Some(first)) = (partitions.iter().any(|p| p.default), partitions.first_mut()) {
        first.default = true;
    }
    Slurm {
        enabled,
        head_runs_jobs,
        partitions,
        munge_uid,
        slurm_uid,
    }
}

/// A system account's ID: above the system's dynamic range would clash
/// with people, so anything from 100 up to 64999 but never a person's
/// range (1000..60000) nor `nobody`.
fn system_id(d: &mut Diags, raw: Option<&S<u32>>, what: &str, default: u32) -> u32 {
    let Some(v) = raw else {
        return default;
    };
    let id = v.value;
    let ok = (100..1000).contains(&id) || (60000..65000).contains(&id);
    if !ok {
        d.err(
            loc(v),
            None,
            format!("slurm {what} {id} is not a system account's ID"),
            Some("pick an ID from 100 to 999 or from 60000 to 64999 that is free on every node (1000 to 59999 are people's)"),
        );
    }
    id
}

/// What slurm.conf takes as a PartitionName: `[A-Za-z0-9_-]`, at most 32.
fn check_partition_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    if name.len() > 32 {
        return Err("is longer than 32 characters".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(format!(
            "contains {}; use letters, digits, '_' and '-'",
            crate::values::shown_char(c)
        ));
    }
    if name.starts_with('-') {
        return Err("starts with '-'".into());
    }
    if crate::node_groups::ROLE_GROUPS.contains(&name) {
        return Err(format!(
            "is the name of clusterctl's node group `{name}` (clush, pdsh, exec @{name}); call the partition something else, like `compute`"
        ));
    }
    if name.eq_ignore_ascii_case("default") {
        return Err(
            "is `DEFAULT`, which slurm.conf reads as the defaults of every partition".into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cluster::Cluster;
    use std::path::Path;

    fn with(slurm: &str) -> Result<Cluster, String> {
        let text = format!(
            "{}slurm:\n{slurm}",
            include_str!("../../inventories/lab.yaml")
        );
        Cluster::from_str(&text, Path::new("c.yaml")).map_err(|e| format!("{e:?}"))
    }

    #[test]
    fn defaults_one_batch_partition_of_every_worker() {
        let c = with("  enabled: true\n").unwrap();
        let s = &c.slurm;
        assert!(s.enabled && !s.head_runs_jobs);
        assert_eq!((s.munge_uid, s.slurm_uid), (64029, 64030));
        assert_eq!(s.partitions.len(), 1);
        let p = &s.partitions[0];
        let workers: Vec<String> = c.workers.iter().map(|w| w.name.to_string()).collect();
        assert_eq!((p.name.as_str(), p.default), ("batch", true));
        assert_eq!(p.nodes, workers);
        assert_eq!(p.nodes_folded, crate::hostlist::fold(&workers));
        let off = Cluster::from_str(
            include_str!("../../inventories/lab.yaml"),
            Path::new("c.yaml"),
        )
        .unwrap();
        assert!(!off.slurm.enabled, "off unless the section is there");
    }

    #[test]
    fn partitions_name_nodes_that_run_jobs() {
        let c = with("  head_runs_jobs: true\n  partitions:\n    - name: small\n      nodes: w1\n    - name: every\n      default: true\n").unwrap();
        let p = &c.slurm.partitions;
        assert_eq!(p[0].nodes, ["w1"]);
        assert!(!p[0].default && p[1].default);
        assert_eq!(p[1].nodes[0], "head", "the head runs jobs: first");

        let e = with("  partitions:\n    - name: p\n      nodes: head\n").unwrap_err();
        assert!(e.contains("head is not a node that runs jobs"), "{e}");
        assert!(e.contains("slurm.head_runs_jobs: true"), "{e}");
        let e = with("  partitions:\n    - name: p\n      nodes: w[1-9]\n").unwrap_err();
        assert!(e.contains("not a node that runs jobs"), "{e}");
        let e = with("  partitions:\n    - name: \"a b\"\n").unwrap_err();
        assert!(e.contains("partition `a b` contains ' '"), "{e}");
        let e = with("  partitions:\n    - name: default\n").unwrap_err();
        assert!(e.contains("`DEFAULT`"), "{e}");
        let e = with("  partitions:\n    - name: workers\n").unwrap_err();
        assert!(e.contains("node group `workers`"), "{e}");
        let e = with("  partitions:\n    - name: a\n      default: true\n    - name: b\n      default: true\n").unwrap_err();
        assert!(e.contains("more than one partition is the default"), "{e}");
        let e = with("  partitions:\n    - name: a\n    - name: A\n").unwrap_err();
        assert!(e.contains("listed twice"), "{e}");
    }

    #[test]
    fn system_ids_are_checked_against_people_and_each_other() {
        let e = with("  munge_uid: 2001\n").unwrap_err();
        assert!(
            e.contains("munge_uid 2001 is not a system account's ID"),
            "{e}"
        );
        let e = with("  munge_uid: 64030\n").unwrap_err();
        assert!(e.contains("both have the ID 64030"), "{e}");
        let text = format!(
            "{}users:\n  - name: alice\n    uid: 2001\nslurm:\n  munge_uid: 990\n",
            include_str!("../../inventories/lab.yaml")
        );
        assert!(Cluster::from_str(&text, Path::new("c.yaml")).is_ok());
    }
}
