//! What `lab up` hands the user: a ready inventory (the core's cluster.yaml
//! schema), an OpenSSH client config, a known_hosts built from the host keys
//! the lab generated (no network scan), and the controller's key, all in the
//! inventory's directory. Plus the summary printed after `up`.

use std::fs;
use std::path::{Path, PathBuf};

use super::kinds::Login;
use super::state::Paths;
use super::topology::{HostSpec, Role, Topology};
use crate::error::{Error, Result};

pub const SSH_CONFIG: &str = "ssh_config";
pub const KNOWN_HOSTS: &str = "known_hosts";
pub const IDENTITY: &str = "id_ed25519";

/// The inventory text (cluster.yaml). `systemd`: the hosts are systemd
/// containers (`--kind systemd`), which run chrony (`-x`, never setting the
/// clock); light hosts share this machine's clock and init, so time sync is
/// off there.
pub fn inventory(topo: &Topology, systemd: bool, login: Login) -> String {
    let (lo, hi) = topo.dhcp_range();
    let mut s = format!(
        "# clusterctl lab inventory (written by `clusterctl lab up`; prefix {prefix})\n\
         # The head is reached over the lab's WAN; workers through the head.\n\
         # Re-running `lab up` rewrites this file.\n\
         name: lab\n\
         domain: lab.cluster\n\
         \n\
         lan:\n  cidr: {lan}\n  dhcp_range: {lo}-{hi}\n  addressing: dhcp\n  upstream_dns: [{dns}]\n\
         \n\
         head:\n  name: head\n  ssh: {user}@{head}:22\n{become}  wan_iface: eth0\n  lan_iface: eth1\n  lan_ip: {head_lan}\n\
         \n\
         ssh:                      # paths are relative to this file\n  config: {SSH_CONFIG}\n  known_hosts: {KNOWN_HOSTS}\n  identity: {IDENTITY}\n\
         \n\
         workers:\n",
        prefix = topo.prefix,
        lan = topo.lan,
        dns = topo.wan_host_addr().addr(),
        head = topo.head_wan_addr().addr(),
        user = login.user(false),
        become = match login {
            Login::Sudo => "  become: sudo                # the controller logs in as admin: sudo -n\n",
            Login::Root => "",
        },
        head_lan = topo.head_lan_ip(),
    );
    let workers: Vec<HostSpec> = topo
        .hosts()
        .into_iter()
        .filter(|h| h.role == Role::Worker)
        .collect();
    if workers.is_empty() {
        s.push_str("  []\n");
    }
    for w in &workers {
        let mac = w.ifaces.first().map(|i| i.mac.as_str()).unwrap_or_default();
        let ip = w.lan_ip.map(|i| i.to_string()).unwrap_or_default();
        s.push_str(&format!(
            "  - name: {}\n    mac: \"{mac}\"\n    ip: {ip}\n",
            w.name
        ));
    }
    s.push_str(
        "\nnfs:\n  enabled: false          # the lab kernel has no nfsd: `server: ganesha` serves NFS (workers cannot mount it)\n\
         \n\
         firewall:\n  wan_tcp_ports: [22]\n  lan: trust\n",
    );
    s.push_str(if systemd {
        "\ntime:\n  enabled: true           # chrony: the head serves the LAN (lab hosts run chronyd -x: they never set the clock)\n"
    } else {
        "\ntime:\n  enabled: false          # light hosts share this machine's clock: time sync needs `lab up --kind systemd`\n"
    });
    // `mpi:` last: tests (and users) append its settings to the file.
    s.push_str("\nmpi:\n  slots: 2\n  hostfiles: [openmpi, mpich]\n");
    s
}

/// The OpenSSH client config: head (and wan) directly, workers through the head.
pub fn ssh_config(topo: &Topology, dir: &Path, login: Login) -> String {
    let mut s = format!(
        "# clusterctl lab ssh config (prefix {}): ssh -F {} HOST\n",
        topo.prefix,
        dir.join(SSH_CONFIG).display()
    );
    for h in topo.hosts() {
        let Some(addr) = h.ssh_address() else {
            continue;
        };
        s.push_str(&format!(
            "\nHost {}\n  HostName {addr}\n  User {}\n  Port 22\n",
            h.name,
            login.user(h.role == Role::Wan)
        ));
        if h.role == Role::Worker {
            s.push_str("  ProxyJump head\n");
        }
    }
    s.push_str(&format!(
        "\nHost *\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  StrictHostKeyChecking yes\n  BatchMode yes\n  ConnectTimeout 10\n  ServerAliveInterval 15\n",
        dir.join(IDENTITY).display(),
        dir.join(KNOWN_HOSTS).display()
    ));
    s
}

/// known_hosts lines for every host, by name and by the address the
/// controller uses for it.
pub fn known_hosts(topo: &Topology, paths: &Paths) -> Result<String> {
    let mut s = String::new();
    for h in topo.hosts() {
        let Some(addr) = h.ssh_address() else {
            continue;
        };
        let key = super::host::public_key(&paths.host_key(&h.name))?;
        // "ssh-ed25519 AAAA... comment": keep type and key.
        let mut parts = key.split_whitespace();
        let (Some(kind), Some(blob)) = (parts.next(), parts.next()) else {
            return Err(Error::lab(format!("host key of {} is malformed", h.name)));
        };
        s.push_str(&format!("{},{addr} {kind} {blob}\n", h.name));
    }
    Ok(s)
}

fn write(path: &Path, text: &str, mode: u32) -> Result<()> {
    super::host::write_file(path, text, mode)
}

/// Write the inventory and its ssh files; returns the inventory's absolute path.
pub fn write_all(
    topo: &Topology,
    paths: &Paths,
    inventory_out: &Path,
    systemd: bool,
    login: Login,
) -> Result<PathBuf> {
    let dir = inventory_out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|source| Error::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let dir = dir.canonicalize().map_err(|source| Error::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let file = inventory_out.file_name().ok_or_else(|| {
        Error::lab(format!(
            "--inventory-out {} is not a file",
            inventory_out.display()
        ))
    })?;
    let key = fs::read_to_string(paths.key()).map_err(|source| Error::Read {
        path: paths.key(),
        source,
    })?;
    write(&dir.join(IDENTITY), &key, 0o600)?;
    write(
        &dir.join(format!("{IDENTITY}.pub")),
        &format!("{}\n", super::host::public_key(&paths.key())?),
        0o644,
    )?;
    write(&dir.join(KNOWN_HOSTS), &known_hosts(topo, paths)?, 0o644)?;
    write(&dir.join(SSH_CONFIG), &ssh_config(topo, &dir, login), 0o644)?;
    let inv = dir.join(file);
    write(&inv, &inventory(topo, systemd, login), 0o644)?;
    Ok(inv)
}

/// How to reach each host, printed after `up` and by `status`.
pub fn reach_table(topo: &Topology, inventory: &Path) -> String {
    let cfg = inventory.with_file_name(SSH_CONFIG);
    let mut s = String::new();
    for h in topo.hosts() {
        let how = match h.role {
            Role::Wan => format!(
                "{} on the WAN (stands in for the internet)",
                topo.wan_host_addr().addr()
            ),
            Role::Head => format!(
                "{} on the WAN; eth1 on the LAN has no address until clusterctl sets {}",
                topo.head_wan_addr().addr(),
                topo.head_lan_ip()
            ),
            Role::Worker => format!(
                "via head; MAC {}, gets {} from the head's DHCP",
                h.ifaces.first().map(|i| i.mac.as_str()).unwrap_or_default(),
                h.lan_ip.map(|i| i.to_string()).unwrap_or_default()
            ),
        };
        s.push_str(&format!("  {:<5} {how}\n", h.name));
    }
    s.push_str(&format!(
        "  ssh:     ssh -F {} HOST   (or: sudo clusterctl lab ssh HOST)\n  console: sudo clusterctl lab exec HOST -- CMD\n",
        cfg.display()
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_has_the_core_schema() {
        let t = Topology::new("cl", "198.51.100.0/24", "10.77.0.0/24", 2).unwrap();
        let inv = inventory(&t, false, Login::Root);
        for needle in [
            "name: lab\n",
            "cidr: 10.77.0.0/24",
            "dhcp_range: 10.77.0.100-10.77.0.200",
            "upstream_dns: [198.51.100.1]",
            "ssh: root@198.51.100.2:22",
            "lan_ip: 10.77.0.1\n",
            "  - name: w2\n",
            "ip: 10.77.0.12\n",
            "config: ssh_config",
            "enabled: false",
        ] {
            assert!(inv.contains(needle), "missing {needle:?} in\n{inv}");
        }
        assert!(!inv.contains("w3"));
        assert!(!inv.contains("comes later"));
    }

    /// Light hosts share this machine's clock: time sync is off in their
    /// inventory; systemd hosts run chrony. Both parse, and neither turns
    /// on the cluster key (verify says the MPI job is not configured).
    #[test]
    fn time_sync_is_on_for_systemd_hosts_only() {
        let t = Topology::new("cl", "198.51.100.0/24", "10.77.0.0/24", 2).unwrap();
        for systemd in [false, true] {
            let c = crate::cluster::Cluster::from_str(
                &inventory(&t, systemd, Login::Root),
                Path::new("/x/lab/cluster.yaml"),
            )
            .unwrap();
            assert_eq!(c.time.enabled, systemd);
            assert!(!c.mpi.cluster_key);
        }
    }

    #[test]
    fn ssh_config_jumps_to_workers() {
        let t = Topology::new("cl", "198.51.100.0/24", "10.77.0.0/24", 1).unwrap();
        let c = ssh_config(&t, Path::new("/x/lab"), Login::Root);
        assert!(c.contains(
            "Host w1\n  HostName 10.77.0.11\n  User root\n  Port 22\n  ProxyJump head\n"
        ));
        assert!(c.contains("Host head\n  HostName 198.51.100.2\n"));
        assert!(c.contains("UserKnownHostsFile /x/lab/known_hosts"));
        assert!(c.contains("IdentityFile /x/lab/id_ed25519"));
        assert!(c.contains("StrictHostKeyChecking yes"));
        assert!(c.contains("BatchMode yes"));
    }
}
