//! What a template sees: `cluster`, `node` (this node's values, its LAN
//! interface as `node.lan_iface` whatever its role, and `node.net` for the
//! network stacks' files), `hosts`, `workers_folded`, `groups` and
//! `groups_by_node` (`crate::node_groups`), `keys`, `private_key` and
//! `header`. The values every node shares are built once per cluster
//! ([`Shared`]); templates that do not depend on the node are rendered once.

use serde::Serialize;

use crate::catalog::Subject;
use crate::cluster::{Cluster, HostEntry, NodeRef, Role};
use crate::error::Result;
use crate::hostlist;
use crate::templates::{Templates, HEADER};

/// What a template sees as `node`.
#[derive(Debug, Serialize)]
struct TemplateNode<'a> {
    name: &'a str,
    fqdn: &'a str,
    role: Role,
    ip: std::net::Ipv4Addr,
    /// The LAN interface, every node (the inventory's `lan_iface` on the
    /// head, `iface` on a worker): the one name every template uses.
    lan_iface: &'a str,
    /// head only
    #[serde(skip_serializing_if = "Option::is_none")]
    wan_iface: Option<&'a str>,
    /// workers only
    #[serde(skip_serializing_if = "Option::is_none")]
    slots: Option<u32>,
    /// head only: where dnsmasq forwards other names (the inventory's
    /// `upstream_dns`, else the head's own resolvers).
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream_dns: Option<Vec<std::net::Ipv4Addr>>,
    /// head only: the NTP pool of its distro family, its upstream when the
    /// inventory's `time.upstream` names none.
    #[serde(skip_serializing_if = "Option::is_none")]
    ntp_pool: Option<&'static str>,
    /// The LAN interface's settings as the network stacks' templates
    /// render them.
    net: Option<NetTemplate>,
}

/// The LAN interface's settings for every stack's template.
#[derive(Debug, Serialize)]
struct NetTemplate {
    /// `10.0.0.1/24`
    address: String,
    /// A worker with `addressing: dhcp`.
    dhcp: bool,
    /// Static workers: the head (route and resolver). None on the head.
    gateway: Option<std::net::Ipv4Addr>,
    /// netplan's renderer when the node's netplan uses NetworkManager.
    netplan_renderer: Option<&'static str>,
}

fn net_template(s: &Subject) -> NetTemplate {
    let worker = s.node.role() == Role::Worker;
    let dhcp = worker && s.cluster.lan.addressing == crate::cluster::Addressing::Dhcp;
    NetTemplate {
        address: format!("{}/{}", s.node.ip(), s.cluster.lan.prefix),
        dhcp,
        gateway: (worker && !dhcp).then_some(s.cluster.head.lan_ip),
        netplan_renderer: s.facts.net.netplan_nm.then_some("NetworkManager"),
    }
}

/// slurm.conf's view of the cluster: the nodes that run jobs and whose
/// hardware is known (inventory order), those not heard from yet, the
/// partitions over the known nodes, and whether cgroups are used.
#[derive(Debug, Default, serde::Serialize)]
struct SlurmTemplate {
    nodes: Vec<SlurmNode>,
    missing: Vec<String>,
    partitions: Vec<SlurmPartition>,
    cgroup: bool,
}

#[derive(Debug, serde::Serialize)]
struct SlurmNode {
    name: String,
    addr: std::net::Ipv4Addr,
    cpus: u32,
    sockets: u32,
    cores_per_socket: u32,
    threads_per_core: u32,
    memory_mib: u64,
    /// For the head's record.
    cgroup: bool,
}

#[derive(Debug, serde::Serialize)]
struct SlurmPartition {
    name: String,
    /// Folded; empty when none of its nodes is known yet.
    nodes: String,
    default: bool,
}

fn slurm_template(c: &Cluster) -> SlurmTemplate {
    if !c.slurm.enabled {
        return SlurmTemplate::default();
    }
    let hw = c.slurm_hardware();
    let mut t = SlurmTemplate {
        cgroup: crate::catalog::slurm::uses_cgroup(c),
        ..SlurmTemplate::default()
    };
    for name in c.slurm_compute_nodes() {
        match (hw.iter().find(|h| h.name == name), c.node(&name)) {
            (Some(h), Some(node)) => t.nodes.push(SlurmNode {
                addr: node.ip(),
                cpus: h.cpus,
                sockets: h.sockets,
                cores_per_socket: h.cores_per_socket,
                threads_per_core: h.threads_per_core,
                memory_mib: h.memory_mib,
                cgroup: h.cgroup,
                name,
            }),
            _ => t.missing.push(name),
        }
    }
    for p in &c.slurm.partitions {
        let known: Vec<&str> = p
            .nodes
            .iter()
            .filter(|n| t.nodes.iter().any(|k| k.name == **n))
            .map(String::as_str)
            .collect();
        t.partitions.push(SlurmPartition {
            name: p.name.clone(),
            nodes: match known.is_empty() {
                true => String::new(),
                false => hostlist::fold(&known),
            },
            default: p.default,
        });
    }
    t
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
    /// The cluster key's public half and the host keys (empty until gathered).
    keys: minijinja::Value,
    /// The cluster key's private half (empty until gathered): one template uses it.
    private_key: minijinja::Value,
    /// The munge key (empty until gathered): one template uses it.
    munge_key: minijinja::Value,
    /// slurm.conf's node lines, partitions and plugins ([`SlurmTemplate`]).
    slurm: minijinja::Value,
    /// The node groups (`crate::node_groups`), and each node's groups.
    groups: minijinja::Value,
    groups_by_node: minijinja::Value,
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
            keys: minijinja::Value::from(minijinja::value::Serde(
                cluster.keys.clone().unwrap_or_default(),
            )),
            private_key: minijinja::Value::from(
                cluster
                    .keys
                    .as_ref()
                    .and_then(|k| k.private.clone())
                    .unwrap_or_default(),
            ),
            munge_key: minijinja::Value::from(
                cluster
                    .keys
                    .as_ref()
                    .and_then(|k| k.munge.clone())
                    .unwrap_or_default(),
            ),
            slurm: minijinja::Value::from(minijinja::value::Serde(slurm_template(cluster))),
            groups: minijinja::Value::from(minijinja::value::Serde(crate::node_groups::groups(
                cluster,
            ))),
            groups_by_node: minijinja::Value::from(minijinja::value::Serde(
                crate::node_groups::by_node(cluster),
            )),
            same_for_all: Default::default(),
        }
    }

    /// Render `name`, or reuse its output when it is the same for every node.
    pub(crate) fn render(
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
    pub(crate) fn context(
        &self,
        s: &Subject,
        upstream: Option<Vec<std::net::Ipv4Addr>>,
    ) -> minijinja::Value {
        let mut n = template_node(s.node);
        n.upstream_dns = upstream;
        if s.node.role() == Role::Head {
            n.ntp_pool = s.family().map(|f| f.ntp_pool);
        }
        n.net = Some(net_template(s));
        minijinja::context! {
            cluster => self.cluster.clone(),
            node => minijinja::Value::from(minijinja::value::Serde(n)),
            groups => self.groups.clone(),
            groups_by_node => self.groups_by_node.clone(),
            hosts => self.hosts.clone(),
            workers_folded => self.workers_folded.clone(),
            keys => self.keys.clone(),
            private_key => self.private_key.clone(),
            munge_key => self.munge_key.clone(),
            slurm => self.slurm.clone(),
            header => HEADER,
        }
    }
}

fn template_node(node: NodeRef) -> TemplateNode {
    match node {
        NodeRef::Head(h) => TemplateNode {
            name: &h.name,
            fqdn: &h.fqdn,
            role: Role::Head,
            ip: h.lan_ip,
            lan_iface: &h.lan_iface,
            wan_iface: Some(&h.wan_iface),
            slots: None,
            upstream_dns: None,
            ntp_pool: None,
            net: None,
        },
        NodeRef::Worker(w) => TemplateNode {
            name: &w.name,
            fqdn: &w.fqdn,
            role: Role::Worker,
            ip: w.ip,
            lan_iface: &w.iface,
            wan_iface: None,
            slots: Some(w.slots),
            upstream_dns: None,
            ntp_pool: None,
            net: None,
        },
    }
}
