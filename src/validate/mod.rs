//! Validation: [`RawInventory`] -> [`Cluster`], reporting **every** problem at
//! once, each with its position, the node it concerns and a `help:` line. One
//! small function per concern: `lan` (network, DHCP pool, resolvers), `head`,
//! `workers` (expansion, unique names/addresses/MACs, automatic addresses),
//! `services` (SSH settings, NFS, firewall, MPI). The value checks themselves
//! live in `values`. Also [`Cluster::load`], the one way to get a `Cluster`.

mod head;
mod lan;
mod services;
mod slurm;
mod targets;
mod users;
mod workers;

use std::net::Ipv4Addr;
use std::path::Path;

pub use lan::{default_pool, host_range, parse_dhcp_range, parse_lan, prefix_for};
pub use services::MAX_SLOTS;
pub use users::DEFAULT_SHELL;
pub use workers::DEFAULT_WORKER_IFACE;

use crate::cluster::{
    Addressing, Cluster, Firewall, Head, Lan, Mpi, Nfs, SshSettings, Time, Worker,
};
use crate::error::{Diagnostic, Error, Location, Result};
use crate::inventory::{loc, RawInventory, S};
use crate::values::{check_domain, check_hostname, shown};

impl Cluster {
    /// Read, parse and validate an inventory file. Every problem comes back at once
    /// as [`Error::Inventory`].
    pub fn load(path: &Path) -> Result<Cluster> {
        let text = read_bounded(path)?;
        Self::from_str(&text, path)
    }

    /// Parse and validate inventory text that was read from `path` (used for
    /// resolving relative paths and in messages).
    pub fn from_str(text: &str, path: &Path) -> Result<Cluster> {
        let fail = |diagnostics| Error::Inventory {
            file: path.to_path_buf(),
            diagnostics,
        };
        let raw = crate::inventory::parse(text).map_err(fail)?;
        let base = path.parent().unwrap_or(Path::new("."));
        validate(&raw, base).map_err(fail)
    }
}

/// The most workers an inventory may list (every node's hosts file and
/// hostfiles list them all; see the render benchmark in README).
pub const MAX_WORKERS: usize = 10_000;

/// Open a file for reading without hanging on a named pipe nobody writes
/// (open(2) would wait for a writer): opened non-blocking, then made
/// blocking again, so such a pipe reads as empty and a pipe with a writer
/// (`-i <(…)`) reads as usual.
pub(crate) fn open_no_hang(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let fd = f.as_raw_fd();
    // SAFETY: fcntl on a descriptor this function owns.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(f)
}

/// The largest inventory file read (`check -i /dev/zero` stops here).
pub const MAX_INVENTORY_BYTES: u64 = 4 * 1024 * 1024;

/// Read an inventory (or any text clusterctl reads from a user's file):
/// at most [`MAX_INVENTORY_BYTES`] + 1 bytes, so a huge or endless file
/// (`/dev/zero`) fails at once with a clear error.
pub fn read_bounded(path: &Path) -> Result<String> {
    read_text(
        path,
        MAX_INVENTORY_BYTES,
        "an inventory is a few kilobytes",
        "check the path: is it really the inventory?",
    )
}

/// A user's text file, at most `max` bytes (`why` and `help` say what
/// the file should be when it is larger); not UTF-8 is an error with the
/// line and column of the first bad byte.
pub fn read_text(path: &Path, max: u64, why: &str, help: &str) -> Result<String> {
    use std::io::Read;
    let err = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = open_no_hang(path).map_err(err)?;
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes).map_err(err)?;
    if bytes.len() as u64 > max {
        return Err(Error::Inventory {
            file: path.to_path_buf(),
            diagnostics: vec![Diagnostic::new(format!(
                "the file is larger than {} MiB; {why}",
                max / 1024 / 1024
            ))
            .help(help)],
        });
    }
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = good.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = good.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&good[line_start..]).chars().count() + 1;
        Error::Inventory {
            file: path.to_path_buf(),
            diagnostics: vec![
                Diagnostic::new("the file is not UTF-8 text (a byte here is not)")
                    .at(Some(Location { line, column }))
                    .help("save it as UTF-8"),
            ],
        }
    })
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
                    format!("{what} `{}` is not an IPv4 address", shown(&s.value)),
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
    let lan = lan::lan(&mut d, &raw.lan);
    let h = head::head(&mut d, &raw.head, &lan);
    let (ssh, default_user) = services::ssh(&mut d, raw, h.ssh.as_ref(), base);
    let mpi = services::mpi(&mut d, raw.mpi.as_ref());

    let mut drafts = Vec::new();
    for entry in &raw.workers {
        workers::expand_worker(&mut d, entry, lan.net, &mut drafts);
        if drafts.len() > MAX_WORKERS {
            // Stop expanding: each further entry could add 65,536 names.
            d.err(
                loc(entry),
                None,
                format!("the workers listed up to here are more than {MAX_WORKERS}"),
                Some("clusterctl manages clusters of up to 10,000 workers; split larger ones"),
            );
            drafts.truncate(MAX_WORKERS);
            break;
        }
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
    let (workers, taken) = workers::resolve(&mut d, &drafts, taken, &lan, &defaults);
    targets::same_machine(&mut d, raw, &h, &workers);
    let head_wan = h.ssh.as_ref().and_then(|t| t.host.parse().ok());
    let upstream = lan::upstream(&mut d, &raw.lan, &lan, &taken, h.lan_ip, head_wan);
    workers::check_macs(&mut d, &drafts);
    let nfs = services::nfs(&mut d, raw.nfs.as_ref());
    let firewall = services::firewall(&mut d, raw.firewall.as_ref(), h.ssh.as_ref());
    let time = services::time(&mut d, raw.time.as_ref());
    let users = users::users(&mut d, &raw.users);
    let slurm = slurm::slurm(&mut d, raw.slurm.as_ref(), &h, &workers, &users);

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
        time,
        ssh,
        users,
        slurm,
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
    time: Time,
    ssh: SshSettings,
    users: Vec<crate::cluster::User>,
    slurm: crate::cluster::Slurm,
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
            network: raw
                .head
                .network
                .as_ref()
                .map(|n| n.value)
                .unwrap_or_default(),
        },
        domain,
        workers: p.workers,
        nfs: p.nfs,
        firewall: p.firewall,
        mpi: p.mpi,
        time: p.time,
        ssh: p.ssh,
        packages: raw.packages.as_ref().map(|x| x.value).unwrap_or_default(),
        users: p.users,
        slurm: p.slurm,
        tools: crate::cluster::Tools {
            clustershell: raw
                .tools
                .as_ref()
                .and_then(|t| t.clustershell.as_ref())
                .is_some_and(|b| b.value),
            pdsh: raw
                .tools
                .as_ref()
                .and_then(|t| t.pdsh.as_ref())
                .is_some_and(|b| b.value),
        },
        keys: None,
    })
}

/// The cluster's name and DNS domain.
fn identity(d: &mut Diags, raw: &RawInventory) {
    if let Err(e) = check_hostname(&raw.name.value) {
        d.err(
            loc(&raw.name),
            None,
            format!("cluster name `{}` {e}", shown(&raw.name.value)),
            Some("a cluster name is a host-name label like `bramble`"),
        );
    }
    if let Err(e) = check_domain(&raw.domain.value) {
        d.err(
            loc(&raw.domain),
            None,
            format!("domain `{}` {e}", shown(&raw.domain.value)),
            Some("use a private domain such as `cluster.lan`"),
        );
    }
}
