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
}

/// Everything one node should have.
#[derive(Debug, Clone, Default)]
pub struct Desired {
    /// In step order.
    pub files: Vec<RenderedFile>,
    /// The handler of every step with a file on this node, in step order.
    pub handlers: Vec<HandlerRun>,
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

/// What every node's templates share, converted to template values once
/// per cluster: `cluster`, `hosts` and `workers_folded` are O(workers) to
/// build, so building them per node (or per template) made rendering every
/// node quadratic before any output was written. A `Value` clone is a
/// reference count.
pub struct Shared {
    cluster: minijinja::Value,
    hosts: minijinja::Value,
    workers_folded: minijinja::Value,
    /// Output of the templates that do not depend on the node (`/etc/hosts`,
    /// the MPI hostfiles: O(workers) each), rendered once per cluster.
    same_for_all: std::sync::Mutex<std::collections::HashMap<&'static str, String>>,
}

impl Shared {
    pub fn new(cluster: &Cluster) -> Shared {
        let worker_names: Vec<&str> = cluster.workers.iter().map(|w| w.name.as_str()).collect();
        let hosts: Vec<HostEntry> = cluster.hosts();
        Shared {
            cluster: minijinja::Value::from(minijinja::value::Serde(cluster)),
            hosts: minijinja::Value::from(minijinja::value::Serde(&hosts)),
            workers_folded: minijinja::Value::from(if worker_names.is_empty() {
                "(none)".to_string()
            } else {
                hostlist::fold(&worker_names)
            }),
            same_for_all: Default::default(),
        }
    }

    /// Render `name`, or reuse its output when it is the same for every node.
    fn render(
        &self,
        templates: &Templates,
        name: &'static str,
        ctx: &minijinja::Value,
    ) -> Result<String> {
        if !templates.is_node_independent(name) {
            return templates.render_value(name, ctx.clone());
        }
        let mut cache = self.same_for_all.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(body) = cache.get(name) {
            return Ok(body.clone());
        }
        let body = templates.render_value(name, ctx.clone())?;
        cache.insert(name, body.clone());
        Ok(body)
    }

    /// Everything a template sees, for one node.
    fn context(&self, node: NodeRef) -> minijinja::Value {
        minijinja::context! {
            cluster => self.cluster.clone(),
            node => minijinja::Value::from(minijinja::value::Serde(template_node(node))),
            hosts => self.hosts.clone(),
            workers_folded => self.workers_folded.clone(),
            header => HEADER,
        }
    }
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
    desired_for(
        cluster,
        templates,
        &Shared::new(cluster),
        node(cluster, name)?,
        facts,
    )
}

/// [`desired`] with the shared template values built once by the caller
/// (rendering many nodes of one cluster).
pub fn desired_for(
    cluster: &Cluster,
    templates: &Templates,
    shared: &Shared,
    node: NodeRef,
    facts: &Facts,
) -> Result<Desired> {
    let s = Subject {
        cluster,
        node,
        facts,
    };
    let ctx = shared.context(node);
    let mut out = Desired::default();
    for step in catalog::for_role(node.role()) {
        let files = render_step(&s, templates, shared, step, &ctx)?;
        if let (Some(h), false) = (step.handler, files.is_empty()) {
            let paths: Vec<&str> = files.iter().map(|f| f.path).collect();
            out.handlers.push(HandlerRun {
                step: step.id,
                label: h.to_string(),
                command: h.command(&s, &paths),
                tools: h.tools(&s),
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

/// Every node's files as `render` shows them offline, head first, workers
/// in inventory order, handed to `each` one node at a time: memory holds
/// one node's files, never the whole cluster's output (which grows with
/// workers^2, since every node lists every node).
pub fn render_each(
    cluster: &Cluster,
    templates: &Templates,
    mut each: impl FnMut(&str, Vec<RenderedFile>) -> Result<()>,
) -> Result<()> {
    let shared = Shared::new(cluster);
    let facts = Facts::assumed();
    let nodes = std::iter::once(NodeRef::Head(&cluster.head))
        .chain(cluster.workers.iter().map(NodeRef::Worker));
    for n in nodes {
        let files = desired_for(cluster, templates, &shared, n, &facts)?.files;
        each(n.name(), files)?;
    }
    Ok(())
}

/// Every node's files, head first, workers in inventory order (all held
/// in memory: for tests and small clusters; `render` uses [`render_each`]).
pub fn render_all(
    cluster: &Cluster,
    templates: &Templates,
) -> Result<Vec<(String, Vec<RenderedFile>)>> {
    let mut out = Vec::new();
    render_each(cluster, templates, |n, files| {
        out.push((n.to_string(), files));
        Ok(())
    })?;
    Ok(out)
}

fn template_node(node: NodeRef) -> TemplateNode {
    match node {
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
    }
}

fn render_step(
    s: &Subject,
    templates: &Templates,
    shared: &Shared,
    step: &'static Step,
    ctx: &minijinja::Value,
) -> Result<Vec<RenderedFile>> {
    let mut out = Vec::new();
    for f in step.files.iter().filter(|f| (f.when)(s)) {
        let body = shared.render(templates, f.template, ctx)?;
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
