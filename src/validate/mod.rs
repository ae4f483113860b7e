//! Validation: [`RawInventory`] -> [`Cluster`], reporting **every** problem at
//! once, each with its position, the node it concerns and a `help:` line. One
//! small function per concern: `lan` (network, DHCP pool, resolvers), `head`,
//! `workers` (expansion, unique names/addresses/MACs, automatic addresses),
//! `services` (SSH settings, NFS, firewall, MPI). The value checks themselves
//! live in `values`. Also [`Cluster::load`], the one way to get a `Cluster`.

mod head;
mod lan;
mod services;
mod workers;

use std::net::Ipv4Addr;
use std::path::Path;

pub use lan::{default_pool, host_range, parse_dhcp_range, parse_lan};
pub use services::MAX_SLOTS;
pub use workers::DEFAULT_WORKER_IFACE;

use crate::cluster::{Addressing, Cluster, Firewall, Head, Lan, Mpi, Nfs, SshSettings, Worker};
use crate::error::{Diagnostic, Error, Location, Result};
use crate::inventory::{loc, RawInventory, S};
use crate::values::{check_domain, check_hostname};

impl Cluster {
    /// Read, parse and validate an inventory file. Every problem comes back at once
    /// as [`Error::Inventory`].
    pub fn load(path: &Path) -> Result<Cluster> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_str(&text, path)
    }

    /// Parse and validate inventory text that was read from `path` (used for
    /// resolving relative paths and in messages).
    pub fn from_str(text: &str, path: &Path) -> Result<Cluster> {
        let fail = |diagnostics| Error::Inventory {
            file: path.to_path_buf(),
            diagnostics,
        };
        let raw = crate::inventory::parse(text).map_err(|d| fail(vec![d]))?;
        let base = path.parent().unwrap_or(Path::new("."));
        validate(&raw, base).map_err(fail)
    }
}

/// Collects diagnostics as validation goes.
#[derive(Default)]
struct Diags(Vec<Diagnostic>);

impl Diags {
    fn err(&mut self, at: Option<Location>, node: Option<&str>, msg: String, help: Option<&str>) {
        let mut d = Diagnostic::new(msg).at(at);
        if let Some(n) = node {
            d = d.node(n);
        }
        if let Some(h) = help {
            d = d.help(h);
        }
        self.0.push(d);
    }

    /// An IPv4 address, or a diagnostic.
    fn ip(&mut self, s: &S<String>, what: &str, node: Option<&str>) -> Option<Ipv4Addr> {
        match s.value.trim().parse::<Ipv4Addr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.err(
                    loc(s),
                    node,
                    format!("{what} `{}` is not an IPv4 address", s.value),
                    Some("write it as four numbers, like 10.0.0.11"),
                );
                None
            }
        }
    }
}

/// Validate and resolve. `base` is the inventory's directory, for relative paths.
pub fn validate(raw: &RawInventory, base: &Path) -> std::result::Result<Cluster, Vec<Diagnostic>> {
    let mut d = Diags::default();
    identity(&mut d, raw);
    let (lan, upstream) = lan::lan(&mut d, &raw.lan);
    let h = head::head(&mut d, &raw.head, &lan);
    let (ssh, default_user) = services::ssh(&mut d, raw, h.ssh.as_ref(), base);
    let mpi = services::mpi(&mut d, raw.mpi.as_ref());

    let mut drafts = Vec::new();
    for entry in &raw.workers {
        workers::expand_worker(&mut d, entry, lan.net, &mut drafts);
    }
    let head_key = (h.written_name.as_str(), loc(&raw.head.name), h.lan_ip);
    let taken = workers::check_explicit(&mut d, &drafts, head_key, &lan);
    let sudo = raw.head.become_.is_some();
    let defaults = workers::Defaults {
        domain: &raw.domain.value,
        slots: mpi.slots,
        user: default_user,
        sudo,
        head_ip: h.lan_ip,
    };
    let workers = workers::resolve(&mut d, &drafts, taken, &lan, &defaults);
    workers::check_macs(&mut d, &drafts);
    let nfs = services::nfs(&mut d, raw.nfs.as_ref());
    let firewall = services::firewall(&mut d, raw.firewall.as_ref(), h.ssh.as_ref());

    let mut diags = d.0;
    if !diags.is_empty() {
        diags.sort_by_key(|x| (x.location.is_none(), x.location));
        return Err(diags);
    }
    let parts = Parts {
        lan,
        upstream,
        head: h,
        sudo,
        workers,
        nfs,
        firewall,
        mpi,
        ssh,
    };
    build(raw, parts)
}

/// What the sections produced.
struct Parts {
    lan: lan::LanCtx,
    upstream: Vec<Ipv4Addr>,
    head: head::HeadDraft,
    sudo: bool,
    workers: Vec<Worker>,
    nfs: Nfs,
    firewall: Firewall,
    mpi: Mpi,
    ssh: SshSettings,
}

/// The cluster from checked parts; every part is there when no diagnostic
/// was reported.
fn build(raw: &RawInventory, p: Parts) -> std::result::Result<Cluster, Vec<Diagnostic>> {
    let (lan, h) = (p.lan, p.head);
    let (
        Some(net),
        Some((dhcp_start, dhcp_end, _)),
        Some(name),
        Some(head_ssh),
        Some(wan_iface),
        Some(lan_iface),
        Some(lan_ip),
    ) = (
        lan.net,
        lan.range,
        h.name,
        h.ssh,
        h.wan_iface,
        h.lan_iface,
        h.lan_ip,
    )
    else {
        // Each None pushed a diagnostic; reaching here would be a bug in this module.
        return Err(vec![Diagnostic::new(
            "internal error: validation lost a diagnostic",
        )]);
    };
    let domain = raw.domain.value.clone();
    Ok(Cluster {
        name: raw.name.value.clone(),
        lan: Lan {
            cidr: net.to_string(),
            network: net.network(),
            prefix: net.prefix_len(),
            netmask: net.netmask(),
            broadcast: net.broadcast(),
            dhcp_start,
            dhcp_end,
            addressing: raw
                .lan
                .addressing
                .as_ref()
                .map(|a| a.value)
                .unwrap_or(Addressing::Dhcp),
            upstream_dns: p.upstream,
        },
        head: Head {
            fqdn: format!("{name}.{domain}"),
            name,
            ssh: head_ssh,
            sudo: p.sudo,
            wan_iface,
            lan_iface,
            lan_ip,
        },
        domain,
        workers: p.workers,
        nfs: p.nfs,
        firewall: p.firewall,
        mpi: p.mpi,
        ssh: p.ssh,
    })
}

/// The cluster's name and DNS domain.
fn identity(d: &mut Diags, raw: &RawInventory) {
    if let Err(e) = check_hostname(&raw.name.value) {
        d.err(
            loc(&raw.name),
            None,
            format!("cluster name `{}` {e}", raw.name.value.escape_debug()),
            Some("a cluster name is a host-name label like `bramble`"),
        );
    }
    if let Err(e) = check_domain(&raw.domain.value) {
        d.err(
            loc(&raw.domain),
            None,
            format!("domain `{}`: {e}", raw.domain.value),
            Some("use a private domain such as `cluster.lan`"),
        );
    }
}
