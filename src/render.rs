//! (cluster, node) -> the files that node should have. Pure: no I/O beyond the
//! templates already loaded. Also the managed-block logic for files the user
//! shares with clusterctl (/etc/hosts, /etc/fstab, /etc/exports).

use serde::Serialize;

use crate::cluster::{Cluster, HostEntry, Role};
use crate::error::{Error, Result};
use crate::hostlist;
use crate::steps::{self, Manage, Step};
use crate::templates::{Templates, HEADER};

/// First line of a managed block.
pub const BEGIN_MARKER: &str = "# BEGIN clusterctl (managed block: edits inside are overwritten)";
/// Last line of a managed block.
pub const END_MARKER: &str = "# END clusterctl";

/// One file as it should be on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RenderedFile {
    pub step: &'static str,
    pub path: &'static str,
    pub mode: u32,
    pub owner: &'static str,
    pub group: &'static str,
    #[serde(skip)]
    pub manage: Manage,
    /// The whole file, or for a block-managed file the block with its markers.
    pub content: String,
}

impl RenderedFile {
    pub fn describe(&self) -> String {
        format!(
            "{} (step {}, mode {:04o}, owner {}:{}, {})",
            self.path,
            self.step,
            self.mode,
            self.owner,
            self.group,
            match self.manage {
                Manage::Whole => "whole file",
                Manage::Block => "managed block",
            }
        )
    }
}

/// What a template sees as `node`.
#[derive(Debug, Serialize)]
struct NodeCtx<'a> {
    name: &'a str,
    fqdn: &'a str,
    role: Role,
    ip: std::net::Ipv4Addr,
    /// head only
    #[serde(skip_serializing_if = "Option::is_none")]
    lan_iface: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    wan_iface: Option<&'a str>,
    /// workers only
    #[serde(skip_serializing_if = "Option::is_none")]
    iface: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    slots: Option<u32>,
}

#[derive(Debug, Serialize)]
struct Ctx<'a> {
    cluster: &'a Cluster,
    node: NodeCtx<'a>,
    hosts: Vec<HostEntry>,
    workers_folded: String,
    header: &'static str,
}

/// Render every file of one node, in step order.
pub fn render_node(
    cluster: &Cluster,
    templates: &Templates,
    name: &str,
) -> Result<Vec<RenderedFile>> {
    let role = cluster.role_of(name).ok_or_else(|| {
        Error::usage(
            format!("no node named `{name}` in the inventory"),
            Some(&format!("nodes: {}", hostlist::fold(&cluster.node_names()))),
        )
    })?;
    let node = match role {
        Role::Head => NodeCtx {
            name: &cluster.head.name,
            fqdn: &cluster.head.fqdn,
            role,
            ip: cluster.head.lan_ip,
            lan_iface: Some(&cluster.head.lan_iface),
            wan_iface: Some(&cluster.head.wan_iface),
            iface: None,
            slots: None,
        },
        Role::Worker => {
            let w = cluster
                .worker(name)
                .ok_or_else(|| Error::usage(format!("no worker `{name}`"), None))?;
            NodeCtx {
                name: &w.name,
                fqdn: &w.fqdn,
                role,
                ip: w.ip,
                lan_iface: None,
                wan_iface: None,
                iface: Some(&w.iface),
                slots: Some(w.slots),
            }
        }
    };
    let worker_names: Vec<&str> = cluster.workers.iter().map(|w| w.name.as_str()).collect();
    let ctx = Ctx {
        cluster,
        node,
        hosts: cluster.hosts(),
        workers_folded: if worker_names.is_empty() {
            "(none)".into()
        } else {
            hostlist::fold(&worker_names)
        },
        header: HEADER,
    };
    let mut out = Vec::new();
    for step in steps::for_role(role) {
        out.extend(render_step(cluster, templates, step, &ctx)?);
    }
    Ok(out)
}

fn render_step(
    cluster: &Cluster,
    templates: &Templates,
    step: &'static Step,
    ctx: &Ctx,
) -> Result<Vec<RenderedFile>> {
    let mut out = Vec::new();
    for f in step.files.iter().filter(|f| (f.when)(cluster)) {
        let body = templates.render(f.template, ctx)?;
        let content = match f.manage {
            Manage::Whole => body,
            Manage::Block => wrap_block(&body),
        };
        out.push(RenderedFile {
            step: step.id,
            path: f.path,
            mode: f.mode,
            owner: "root",
            group: "root",
            manage: f.manage,
            content,
        });
    }
    Ok(out)
}

/// Every node's files, head first, workers in inventory order.
pub fn render_all(
    cluster: &Cluster,
    templates: &Templates,
) -> Result<Vec<(String, Vec<RenderedFile>)>> {
    cluster
        .node_names()
        .into_iter()
        .map(|n| Ok((n.to_string(), render_node(cluster, templates, n)?)))
        .collect()
}

/// The block as it stands in the file: markers around the body.
pub fn wrap_block(body: &str) -> String {
    let mut s = String::with_capacity(body.len() + 100);
    s.push_str(BEGIN_MARKER);
    s.push('\n');
    s.push_str(body);
    if !body.is_empty() && !body.ends_with('\n') {
        s.push('\n');
    }
    s.push_str(END_MARKER);
    s.push('\n');
    s
}

/// Why a file's managed block cannot be located safely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockError(pub String);

/// The byte range of the managed block (BEGIN line start .. END line end,
/// including its newline), or None when the file has none. Markers are matched
/// on whole lines; a BEGIN marker is recognised by its `# BEGIN clusterctl` prefix
/// so an older marker wording is still found.
pub fn find_block(text: &str) -> Result<Option<std::ops::Range<usize>>, BlockError> {
    let mut begin = None;
    let mut found = None;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        if bare.starts_with("# BEGIN clusterctl") {
            if begin.is_some() || found.is_some() {
                return Err(BlockError(
                    "more than one `# BEGIN clusterctl` marker".into(),
                ));
            }
            begin = Some(pos);
        } else if bare == END_MARKER {
            match begin.take() {
                Some(b) if found.is_none() => found = Some(b..pos + line.len()),
                _ => {
                    return Err(BlockError(
                        "`# END clusterctl` without a matching BEGIN marker".into(),
                    ))
                }
            }
        }
        pos += line.len();
    }
    if begin.is_some() {
        return Err(BlockError(
            "`# BEGIN clusterctl` without a matching `# END clusterctl`".into(),
        ));
    }
    Ok(found)
}

/// Put `block` (with markers) into `existing`: replace the old block in place,
/// or append it. Every byte outside the block is kept.
pub fn merge_block(existing: &str, block: &str) -> Result<String, BlockError> {
    match find_block(existing)? {
        Some(r) => {
            let mut s = String::with_capacity(existing.len() + block.len());
            s.push_str(&existing[..r.start]);
            s.push_str(block);
            s.push_str(&existing[r.end..]);
            Ok(s)
        }
        None => {
            let mut s = existing.to_string();
            if !s.is_empty() && !s.ends_with('\n') {
                s.push('\n');
            }
            s.push_str(block);
            Ok(s)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER_HOSTS: &str =
        "127.0.0.1\tlocalhost\n127.0.1.1\thead\n# my printer\n192.168.1.9 printer";

    #[test]
    fn merge_appends_and_keeps_user_lines() {
        let block = wrap_block("10.0.0.1\thead\n");
        let merged = merge_block(USER_HOSTS, &block).unwrap();
        assert!(merged.starts_with(USER_HOSTS));
        assert_eq!(&merged[USER_HOSTS.len()..], format!("\n{block}"));
    }

    #[test]
    fn merge_replaces_in_place_and_keeps_bytes_around() {
        let first = merge_block(USER_HOSTS, &wrap_block("old\n")).unwrap();
        let with_tail = format!("{first}10.1.1.1 after-block\n");
        let merged = merge_block(&with_tail, &wrap_block("new\n")).unwrap();
        assert_eq!(
            merged,
            format!(
                "{USER_HOSTS}\n{}10.1.1.1 after-block\n",
                wrap_block("new\n")
            )
        );
        // Idempotent: merging the same block again changes nothing.
        assert_eq!(merge_block(&merged, &wrap_block("new\n")).unwrap(), merged);
    }

    #[test]
    fn merge_refuses_broken_markers() {
        let only_begin = format!("{BEGIN_MARKER}\nx\n");
        assert!(merge_block(&only_begin, "b").is_err());
        let only_end = format!("x\n{END_MARKER}\n");
        assert!(merge_block(&only_end, "b").is_err());
        let two = format!("{0}{0}", wrap_block("a\n"));
        assert!(merge_block(&two, "b").is_err());
    }

    #[test]
    fn empty_file_gets_just_the_block() {
        let b = wrap_block("x\n");
        assert_eq!(merge_block("", &b).unwrap(), b);
    }
}
