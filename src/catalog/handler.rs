//! What activates a changed step on a node: its label in plans and recaps,
//! the exact shell command for one node and its facts, and the commands that
//! command needs installed. Apply runs each changed step's handler once.

use super::{Subject, Tool};
use crate::facts::InitSystem;
use crate::family::{Family, Pkg, Service};
use crate::transport::shell_quote;

/// What activates a changed file, run once per step and node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    /// Activate the LAN interface's new configuration with its stack's
    /// tool (ifup, nmcli, networkctl, netplan; never the interface carrying
    /// the SSH session: see `ifup_safe` in the handler script).
    ActivateIface,
    /// `sysctl -p FILE`
    SysctlLoad,
    /// `iptables-restore FILE` (and clusterctl's nftables table, from an
    /// earlier backend, removed).
    IptablesRestore,
    /// `nft -f FILE`, and nftables.service enabled (it loads the file at boot).
    NftLoad,
    /// Restart (and enable) the service, under the node's family's name for
    /// it, with the node's init system.
    Restart(Service),
    /// `exportfs -ra`
    ExportfsReload,
    /// Create the mount points and `mount -a -t nfs,nfs4`.
    MountNfs,
    /// Stop and disable the other time daemons the probe found running or
    /// enabled ([`crate::family::OTHER_TIME_DAEMONS`]), then restart and
    /// enable chrony (`catalog/time.rs`).
    TimeSync,
    /// Set the running host name, and the name on a `127.0.1.1` line in
    /// /etc/hosts (Debian's installer writes one with the old name).
    Hostname,
    /// Restart (and enable) the node's Slurm daemons: slurmctld on the
    /// head (and slurmd when it runs jobs), slurmd on a worker. A restart,
    /// not `scontrol reconfigure`: Slurm 22.05 takes a changed node list
    /// only that way; running jobs survive it (`catalog/slurm.rs`).
    Slurm,
}

impl std::fmt::Display for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Handler::ActivateIface => f.write_str("bring the interface up"),
            Handler::SysctlLoad => f.write_str("load sysctl settings"),
            Handler::IptablesRestore => f.write_str("load firewall rules"),
            Handler::NftLoad => f.write_str("load the nftables ruleset"),
            Handler::Restart(s) => write!(f, "restart {}", s.label()),
            Handler::ExportfsReload => f.write_str("re-export NFS shares"),
            Handler::MountNfs => f.write_str("mount NFS shares"),
            Handler::Hostname => f.write_str("set the host name"),
            Handler::TimeSync => f.write_str("restart chrony"),
            Handler::Slurm => f.write_str("restart the Slurm daemons"),
        }
    }
}

impl Handler {
    /// Activating it can cut the controller's path to the node (a firewall
    /// or an interface): apply arms a revert first (commit-confirm).
    pub fn can_cut_path(self) -> bool {
        matches!(
            self,
            Handler::ActivateIface
                | Handler::IptablesRestore
                | Handler::NftLoad
                | Handler::Restart(crate::family::Service::Ssh)
        )
    }

    /// The command this handler runs on the node, given the step's files
    /// there. An error says why this node cannot run it (e.g. no init
    /// system recognised).
    pub fn command(self, s: &Subject, files: &[&str]) -> Result<String, String> {
        let each = |cmd: &str| {
            files
                .iter()
                .map(|f| format!("{cmd} {}", shell_quote(f)))
                .collect::<Vec<_>>()
                .join(" && ")
        };
        Ok(match self {
            Handler::ActivateIface => super::network::activate(s)?,
            Handler::SysctlLoad => each("sysctl -p"),
            Handler::IptablesRestore => {
                // Debian's netfilter-persistent is enabled by its package;
                // RHEL's iptables-services and Alpine's iptables service are not.
                let family = family(s)?;
                let boot = if family.iptables_boot_enabled_by_package
                    || s.facts.init == InitSystem::Unknown
                {
                    String::new()
                } else {
                    format!(" && {}", enable(s, family.unit(Service::Iptables))?)
                };
                format!("{} && nft_drop_own{boot}", each("iptables-restore"))
            }
            Handler::NftLoad => format!(
                "{} && {}",
                each("nft_load"),
                enable(s, family(s)?.unit(Service::Nftables))?
            ),
            Handler::Restart(svc) => restart(s, family(s)?.unit(svc))?,
            Handler::TimeSync => {
                let mut parts: Vec<String> = others_running(s)
                    .into_iter()
                    .map(|u| stop_for_good(s, u))
                    .collect::<Result<_, _>>()?;
                let chrony = restart(s, family(s)?.unit(Service::Chrony))?;
                if parts.is_empty() {
                    chrony
                } else {
                    // chrony starts only once the others are stopped: a
                    // failure there fails the handler (never two daemons).
                    parts.push(format!("{{ {chrony}; }}"));
                    parts.join(" && ")
                }
            }
            Handler::Slurm => {
                let f = family(s)?;
                let known = s.cluster.slurm_hardware();
                let mut parts = Vec::new();
                // (unit, whether it can start: slurmctld with no node line
                // exits, slurmd on a node not in its own slurm.conf too;
                // then it is only enabled, and the pass that lists them
                // restarts it.)
                if s.node.role() == crate::cluster::Role::Head {
                    parts.push((f.unit(Service::Slurmctld), !known.is_empty()));
                }
                if s.node.role() == crate::cluster::Role::Worker || s.cluster.slurm.head_runs_jobs {
                    let me = known.iter().any(|h| h.name == s.node.name());
                    parts.push((f.unit(Service::Slurmd), me));
                }
                parts
                    .into_iter()
                    .map(|(u, start)| match start {
                        true => restart(s, u).map(|c| format!("{{ {c}; }}")),
                        false => enable(s, u),
                    })
                    .collect::<Result<Vec<_>, _>>()?
                    .join(" && ")
            }
            Handler::ExportfsReload => "exportfs -ra".to_string(),
            Handler::Hostname => {
                let (name, fqdn) = (s.node.name(), s.node.fqdn());
                let sed = format!("s/^127\\.0\\.1\\.1[[:space:]].*/127.0.1.1\\t{fqdn} {name}/");
                format!(
                    "hostname {} && if grep -q '^127\\.0\\.1\\.1[[:space:]]' /etc/hosts; then sed -i {} /etc/hosts; fi",
                    shell_quote(name),
                    shell_quote(&sed)
                )
            }
            Handler::MountNfs => {
                let mut m: Vec<String> = s
                    .cluster
                    .nfs
                    .exports
                    .iter()
                    .map(|e| format!("mkdir -p -- {}", shell_quote(&e.mount)))
                    .collect();
                // A kernel without an NFS client (the lab's) cannot mount:
                // said, not failed; the entries are `nofail` at boot too.
                m.push(
                    "if grep -qE '[[:space:]]nfs4?$' /proc/filesystems || modprobe -q nfs 2>/dev/null; \
                     then mount -a -t nfs,nfs4; \
                     else echo 'clusterctl: this kernel has no NFS client: the shares are not mounted' >&2; fi"
                        .to_string(),
                );
                m.join(" && ")
            }
        })
    }

    /// The commands [`Handler::command`] needs on this node.
    pub fn tools(self, s: &Subject) -> Vec<Tool> {
        match self {
            // The session's interface is skipped, so it needs nothing.
            Handler::ActivateIface => super::network::tools(s),
            Handler::SysctlLoad => vec![Tool::new("sysctl", Pkg::Procps)],
            Handler::IptablesRestore => vec![Tool::new("iptables-restore", Pkg::Iptables)],
            Handler::NftLoad => {
                let mut t = vec![Tool::new("nft", Pkg::Nftables)];
                t.extend(init_tool(s));
                t
            }
            Handler::ExportfsReload => vec![Tool::new("exportfs", Pkg::NfsServer)],
            Handler::MountNfs => vec![Tool::new("mount.nfs", Pkg::NfsClient)],
            Handler::Hostname => vec![Tool::new("hostname", Pkg::Hostname)],
            Handler::Restart(_) | Handler::TimeSync | Handler::Slurm => init_tool(s),
        }
    }
}

/// The node's family, or why its handlers cannot be told.
fn family(s: &Subject) -> Result<&'static Family, String> {
    s.facts.family()
}

/// The init system's service command.
fn init_tool(s: &Subject) -> Vec<Tool> {
    match s.facts.init {
        InitSystem::Systemd => vec![Tool::new("systemctl", Pkg::Systemd)],
        InitSystem::Openrc => vec![Tool::new("rc-service", Pkg::Openrc)],
        InitSystem::Sysvinit | InitSystem::Unknown => vec![],
    }
}

/// Enable a service at boot (without starting it) with the node's init system.
fn enable(s: &Subject, svc: &str) -> Result<String, String> {
    let q = shell_quote(svc);
    Ok(match s.facts.init {
        InitSystem::Systemd => format!("systemctl enable --quiet {q}"),
        // An already added service is not a failure.
        InitSystem::Openrc => format!("{{ rc-update add {q} default >/dev/null 2>&1 || true; }}"),
        InitSystem::Sysvinit => format!(
            "if command -v update-rc.d >/dev/null 2>&1; then update-rc.d {q} defaults >/dev/null 2>&1; update-rc.d {q} enable >/dev/null 2>&1; fi"
        ),
        InitSystem::Unknown => return Err(restart(s, svc).unwrap_err()),
    })
}

/// The other time daemons ([`crate::family::OTHER_TIME_DAEMONS`]) the
/// probe found running or enabled on this node.
pub(super) fn others_running(s: &Subject) -> Vec<&'static str> {
    crate::family::OTHER_TIME_DAEMONS
        .iter()
        .copied()
        .filter(|u| s.facts.active.contains(*u) || s.facts.enabled.contains(*u))
        .collect()
}

/// Stop a service and keep it from starting at boot; a service already
/// gone (its package removed by the install) is not a failure.
fn stop_for_good(s: &Subject, svc: &str) -> Result<String, String> {
    let q = shell_quote(svc);
    Ok(match s.facts.init {
        InitSystem::Systemd => format!(
            "{{ systemctl disable --now --quiet {q} 2>/dev/null || ! systemctl is-active --quiet {q}; }}"
        ),
        InitSystem::Openrc => format!(
            "{{ rc-service {q} stop >/dev/null 2>&1; rc-update del {q} default >/dev/null 2>&1; true; }}"
        ),
        InitSystem::Sysvinit => format!(
            "{{ service {q} stop >/dev/null 2>&1; update-rc.d {q} disable >/dev/null 2>&1; true; }}"
        ),
        InitSystem::Unknown => return Err(restart(s, svc).unwrap_err()),
    })
}

/// Restart and enable a service with the node's init system.
fn restart(s: &Subject, svc: &str) -> Result<String, String> {
    let q = shell_quote(svc);
    Ok(match s.facts.init {
        InitSystem::Systemd => {
            format!("systemctl enable --quiet {q} 2>/dev/null; systemctl restart {q}")
        }
        InitSystem::Sysvinit => format!(
            "if command -v update-rc.d >/dev/null 2>&1; then update-rc.d {q} defaults >/dev/null 2>&1; update-rc.d {q} enable >/dev/null 2>&1; fi; \
             if command -v service >/dev/null 2>&1; then service {q} restart; else /etc/init.d/{q} restart; fi"
        ),
        InitSystem::Openrc => {
            format!("rc-update add {q} default >/dev/null 2>&1; rc-service {q} restart")
        }
        InitSystem::Unknown => {
            return Err(format!(
                "cannot restart services: no init system recognised on {} \
                 (found: {} {}; no systemd, OpenRC or /etc/init.d)",
                s.node.name(),
                s.facts.os_id,
                s.facts.os_version
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Cluster;
    use crate::facts::Facts;

    /// The host name handler renames Debian's `127.0.1.1` line (checked with
    /// the real sed on a copy; the command itself is never run here).
    #[test]
    fn the_hostname_handler_renames_the_127_0_1_1_line() {
        let c = Cluster::from_str(
            include_str!("../../inventories/lab.yaml"),
            std::path::Path::new("lab.yaml"),
        )
        .unwrap();
        let facts = Facts::assumed();
        let s = Subject {
            cluster: &c,
            node: c.node("w1").unwrap(),
            facts: &facts,
        };
        let cmd = Handler::Hostname.command(&s, &["/etc/hostname"]).unwrap();
        assert!(cmd.starts_with("hostname w1 && "), "{cmd}");
        let expr = cmd
            .split("sed -i ")
            .nth(1)
            .unwrap()
            .trim_end_matches(" /etc/hosts; fi");
        let dir = tempfile::tempdir().unwrap();
        let hosts = dir.path().join("hosts");
        std::fs::write(
            &hosts,
            "127.0.0.1\tlocalhost\n127.0.1.1\traspberrypi\n::1 localhost\n",
        )
        .unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("sed -i {expr} \"$1\"",))
            .arg("sh")
            .arg(&hosts)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            std::fs::read_to_string(&hosts).unwrap(),
            "127.0.0.1\tlocalhost\n127.0.1.1\tw1.lab.cluster w1\n::1 localhost\n"
        );
    }
}
