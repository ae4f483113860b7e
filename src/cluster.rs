//! The resolved cluster model: what validation produces and every later stage
//! consumes. Everything here is checked, expanded (host lists), assigned (IPs)
//! and derived (netmask, FQDNs); nodes keep inventory order. Serialize-only: it
//! is the context handed to templates.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
pub use crate::inventory::{Addressing, HostfileFlavor, LanPolicy, Transport};

#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    pub name: String,
    pub domain: String,
    pub lan: Lan,
    pub head: Head,
    pub workers: Vec<Worker>,
    pub nfs: Nfs,
    pub firewall: Firewall,
    pub mpi: Mpi,
    pub ssh: SshSettings,
}

#[derive(Debug, Clone, Serialize)]
pub struct Lan {
    /// `10.0.0.0/24`
    pub cidr: String,
    pub network: Ipv4Addr,
    pub prefix: u8,
    pub netmask: Ipv4Addr,
    pub broadcast: Ipv4Addr,
    pub dhcp_start: Ipv4Addr,
    pub dhcp_end: Ipv4Addr,
    pub addressing: Addressing,
    pub upstream_dns: Vec<Ipv4Addr>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Head {
    pub name: String,
    pub fqdn: String,
    pub ssh: SshTarget,
    /// The SSH user is not root: wrap commands in `sudo -n`.
    pub sudo: bool,
    pub wan_iface: String,
    pub lan_iface: String,
    pub lan_ip: Ipv4Addr,
}

#[derive(Debug, Clone, Serialize)]
pub struct Worker {
    pub name: String,
    pub fqdn: String,
    pub ip: Ipv4Addr,
    /// Lowercase, colon-separated.
    pub mac: Option<String>,
    /// The worker's interface on the cluster LAN.
    pub iface: String,
    pub slots: u32,
    pub ssh: SshTarget,
    /// Reached by a jump through the head (no `ssh:` override in the inventory).
    pub via_head: bool,
    pub sudo: bool,
}

/// `[USER@]HOST[:PORT]`, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SshTarget {
    pub user: Option<String>,
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for SshTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Nfs {
    pub enabled: bool,
    pub exports: Vec<Export>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Export {
    /// Directory on the head.
    pub path: String,
    /// Mount point on every worker.
    pub mount: String,
    /// Export options for /etc/exports.
    pub options: String,
    /// Mount options for the workers' fstab (`rw|ro,_netdev,nofail`).
    pub mount_options: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Firewall {
    /// Sorted, unique, always containing 22.
    pub wan_tcp_ports: Vec<u16>,
    pub lan: LanPolicy,
}

#[derive(Debug, Clone, Serialize)]
pub struct Mpi {
    pub slots: u32,
    /// Sorted, unique.
    pub hostfiles: Vec<HostfileFlavor>,
}

/// SSH client settings; paths are absolute (resolved against the inventory's directory).
#[derive(Debug, Clone, Serialize)]
pub struct SshSettings {
    pub transport: Transport,
    pub config: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    pub identity: Option<PathBuf>,
}

/// A node's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Head,
    Worker,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Head => "head",
            Role::Worker => "worker",
        }
    }
}

/// One entry of the "every node" list (hosts file, DNS).
#[derive(Debug, Clone, Serialize)]
pub struct HostEntry {
    pub name: String,
    pub fqdn: String,
    pub ip: Ipv4Addr,
    pub role: Role,
}

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
        crate::validate::validate(&raw, base).map_err(fail)
    }

    /// Every node, head first, then workers in inventory order.
    pub fn hosts(&self) -> Vec<HostEntry> {
        let mut v = vec![HostEntry {
            name: self.head.name.clone(),
            fqdn: self.head.fqdn.clone(),
            ip: self.head.lan_ip,
            role: Role::Head,
        }];
        v.extend(self.workers.iter().map(|w| HostEntry {
            name: w.name.clone(),
            fqdn: w.fqdn.clone(),
            ip: w.ip,
            role: Role::Worker,
        }));
        v
    }

    /// Node names, head first.
    pub fn node_names(&self) -> Vec<&str> {
        std::iter::once(self.head.name.as_str())
            .chain(self.workers.iter().map(|w| w.name.as_str()))
            .collect()
    }

    pub fn role_of(&self, name: &str) -> Option<Role> {
        if self.head.name == name {
            Some(Role::Head)
        } else if self.workers.iter().any(|w| w.name == name) {
            Some(Role::Worker)
        } else {
            None
        }
    }

    pub fn worker(&self, name: &str) -> Option<&Worker> {
        self.workers.iter().find(|w| w.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EXAMPLE: &str = include_str!("../examples/cluster.yaml");

    #[test]
    fn example_loads() {
        let c = Cluster::from_str(EXAMPLE, Path::new("examples/cluster.yaml")).unwrap();
        assert_eq!(
            c.node_names(),
            ["head", "node01", "node02", "node03", "node04"]
        );
        assert_eq!(c.workers[3].ip, Ipv4Addr::new(10, 0, 0, 14));
        assert_eq!(c.workers[3].mac.as_deref(), Some("dc:a6:32:00:00:04"));
        assert_eq!(c.firewall.wan_tcp_ports, [22]);
        assert!(c.head.sudo && c.workers.iter().all(|w| w.via_head && w.sudo));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Arbitrary bytes never panic the loader: they load or give diagnostics.
        #[test]
        fn loader_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = Cluster::from_str(&text, Path::new("fuzz.yaml"));
        }

        /// Near-valid input (the example with bytes replaced, inserted or cut)
        /// reaches deep into validation; it must never panic either.
        #[test]
        fn loader_never_panics_on_mutated_example(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<char>()), 1..8)
        ) {
            let mut text: Vec<char> = EXAMPLE.chars().collect();
            for (at, kind, c) in edits {
                if text.is_empty() { break; }
                let i = at.index(text.len());
                match kind {
                    0 => text[i] = c,
                    1 => text.insert(i, c),
                    _ => { text.remove(i); }
                }
            }
            let text: String = text.into_iter().collect();
            if let Err(e) = Cluster::from_str(&text, Path::new("fuzz.yaml")) {
                let reported = matches!(e, Error::Inventory { ref diagnostics, .. } if !diagnostics.is_empty());
                prop_assert!(reported, "an invalid inventory must come back with diagnostics");
            }
        }
    }
}
