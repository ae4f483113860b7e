//! (cluster, node, facts) -> what the node should have: every file, rendered
//! from the templates the catalog's conditions choose, and the handler of
//! every step the node has, with the exact command it runs there. Pure: no
//! I/O beyond the templates already loaded. Offline `render` uses
//! [`Facts::assumed`].

use serde::Serialize;

use crate::block::wrap_block;
use crate::catalog::{self, Manage, Step, Subject, Tool, Validator};
use crate::cluster::{Cluster, HostEntry, NodeRef, Role};
use crate::error::{Error, Result};
use crate::facts::Facts;
use crate::hostlist;
use crate::templates::{Templates, HEADER};

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
    /// What checks a candidate of this file before it replaces the old one.
    #[serde(skip)]
    pub validator: Option<Validator>,
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

/// A step's handler as it would run on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerRun {
    pub step: &'static str,
    /// What it does, in words (`restart dnsmasq`).
    pub label: String,
    /// The exact command, or why this node cannot run it.
    pub command: std::result::Result<String, String>,
    /// Commands it needs on the node.
    pub tools: Vec<Tool>,
    /// Can cut the controller's path to the node (see `Handler::can_cut_path`).
    pub can_cut_path: bool,
}

/// Everything one node should have.
#[derive(Debug, Clone, Default)]
pub struct Desired {
    /// In step order.
    pub files: Vec<RenderedFile>,
    /// The handler of every step with a file on this node, in step order.
    pub handlers: Vec<HandlerRun>,
    /// The packages those steps need, by the node's package manager's names.
    pub packages: Vec<&'static str>,
}

/// What a template sees as `node`.
#[derive(Debug, Serialize)]
struct TemplateNode<'a> {
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

/// Everything a template sees.
#[derive(Debug, Serialize)]
struct TemplateCtx<'a> {
    cluster: &'a Cluster,
    node: TemplateNode<'a>,
    hosts: Vec<HostEntry>,
    workers_folded: String,
    header: &'static str,
}

/// The node of this name, or a clear error naming the nodes there are.
pub fn node<'a>(cluster: &'a Cluster, name: &str) -> Result<NodeRef<'a>> {
    cluster.node(name).ok_or_else(|| {
        Error::usage(
            format!("no node named `{name}` in the inventory"),
            Some(&format!("nodes: {}", hostlist::fold(&cluster.node_names()))),
        )
    })
}

/// What one node should have, given what the probe found there.
pub fn desired(
    cluster: &Cluster,
    templates: &Templates,
    name: &str,
    facts: &Facts,
) -> Result<Desired> {
    let node = node(cluster, name)?;
    let s = Subject {
        cluster,
        node,
        facts,
    };
    let ctx = template_ctx(cluster, node);
    let mut out = Desired::default();
    for step in catalog::for_role(node.role()) {
        let files = render_step(&s, templates, step, &ctx)?;
        if !files.is_empty() {
            for name in step
                .packages
                .iter()
                .filter_map(|p| p.name(facts.package_manager))
            {
                if !out.packages.contains(&name) {
                    out.packages.push(name);
                }
            }
        }
        if let (Some(h), false) = (step.handler, files.is_empty()) {
            let paths: Vec<&str> = files.iter().map(|f| f.path).collect();
            out.handlers.push(HandlerRun {
                step: step.id,
                label: h.to_string(),
                command: h.command(&s, &paths),
                tools: h.tools(&s),
                can_cut_path: h.can_cut_path(),
            });
        }
        out.files.extend(files);
    }
    Ok(out)
}

/// Every file of one node as `render` shows it offline (assumed facts).
pub fn render_node(
    cluster: &Cluster,
    templates: &Templates,
    name: &str,
) -> Result<Vec<RenderedFile>> {
    Ok(desired(cluster, templates, name, &Facts::assumed())?.files)
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

fn template_ctx<'a>(cluster: &'a Cluster, node: NodeRef<'a>) -> TemplateCtx<'a> {
    let node = match node {
        NodeRef::Head(h) => TemplateNode {
            name: &h.name,
            fqdn: &h.fqdn,
            role: Role::Head,
            ip: h.lan_ip,
            lan_iface: Some(&h.lan_iface),
            wan_iface: Some(&h.wan_iface),
            iface: None,
            slots: None,
        },
        NodeRef::Worker(w) => TemplateNode {
            name: &w.name,
            fqdn: &w.fqdn,
            role: Role::Worker,
            ip: w.ip,
            lan_iface: None,
            wan_iface: None,
            iface: Some(&w.iface),
            slots: Some(w.slots),
        },
    };
    let worker_names: Vec<&str> = cluster.workers.iter().map(|w| w.name.as_str()).collect();
    TemplateCtx {
        cluster,
        node,
        hosts: cluster.hosts(),
        workers_folded: if worker_names.is_empty() {
            "(none)".into()
        } else {
            hostlist::fold(&worker_names)
        },
        header: HEADER,
    }
}

fn render_step(
    s: &Subject,
    templates: &Templates,
    step: &'static Step,
    ctx: &TemplateCtx,
) -> Result<Vec<RenderedFile>> {
    let mut out = Vec::new();
    for f in step.files.iter().filter(|f| (f.when)(s)) {
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
            validator: step.validator,
            content,
        });
    }
    Ok(out)
}
