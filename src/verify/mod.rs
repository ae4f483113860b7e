//! `verify`'s checks: whether the cluster does its job, seen from each node.
//! One round trip per node runs `node.sh` there (its values as quoted
//! assignments), which checks the node's address, default route and
//! resolver against the inventory, asks the head's DNS for every node's
//! name, reaches the WAN target, the NFS server, every other node over SSH
//! (batch mode, strict host keys) and, on the head, runs an MPI job over
//! the generated hostfile and, with Slurm, checks every node of the default
//! partition is up, runs a job on all of them and an MPI job through Slurm.
//! `table.rs` prints the results.

mod table;

pub use table::{json, text};

use serde::Serialize;

use crate::cluster::{Cluster, HostfileFlavor, NodeRef, Role};
use crate::transport::{protocol, shell_quote, Transport};

/// The checks, in the table's column order.
pub const CHECKS: &[&str] = &[
    "address", "route", "resolver", "names", "wan", "nfs", "ssh", "users", "time", "mpi", "slurm",
];

/// The `time` check's bound on a worker's offset to the head, in seconds.
pub const MAX_TIME_OFFSET: &str = "1.0";

const SCRIPT: &str = include_str!("node.sh");
const HOSTFILE: &str = "/etc/clusterctl/hostfile.openmpi";

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Fail,
    /// Does not apply to this node (the reason says why).
    Skip,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    pub check: &'static str,
    pub outcome: Outcome,
    pub detail: String,
}

/// Every check of one node, in [`CHECKS`] order.
#[derive(Debug, Clone, Serialize)]
pub struct NodeChecks {
    pub node: String,
    pub checks: Vec<CheckResult>,
}

impl NodeChecks {
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.outcome == Outcome::Fail)
    }
}

/// The WAN target: ping an address, or a TCP connection to `HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WanTarget {
    pub host: String,
    pub port: Option<u16>,
}

impl WanTarget {
    /// `HOST` or `HOST:PORT`; HOST an IPv4 address or a DNS name.
    pub fn parse(s: &str) -> Result<WanTarget, String> {
        let (host, port) = match s.rsplit_once(':') {
            Some((h, p)) => {
                let port = p
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("`{}` is not a port", crate::values::shown(p)))?;
                (h, Some(port))
            }
            None => (s, None),
        };
        let name_ok = !host.is_empty()
            && host.len() <= 253
            && !host.starts_with(['-', '.'])
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !name_ok {
            return Err(format!(
                "`{}` is not an IPv4 address or a host name",
                crate::values::shown(host)
            ));
        }
        Ok(WanTarget {
            host: host.to_string(),
            port,
        })
    }
}

/// The check script for one node.
pub fn script(cluster: &Cluster, node: NodeRef, wan: Option<&WanTarget>) -> String {
    let head = &cluster.head;
    let names: Vec<String> = cluster
        .hosts()
        .iter()
        .map(|h| format!("{} {} {}", h.name, h.fqdn, h.ip))
        .collect();
    let peers: Vec<&str> = if cluster.mpi.cluster_key {
        cluster
            .node_names()
            .into_iter()
            .filter(|n| *n != node.name())
            .collect()
    } else {
        Vec::new()
    };
    let mounts: Vec<&str> = if cluster.nfs.enabled {
        cluster
            .nfs
            .exports
            .iter()
            .map(|e| e.mount.as_str())
            .collect()
    } else {
        Vec::new()
    };
    let is_head = node.role() == Role::Head;
    let mpi = is_head && cluster.mpi.hostfiles.contains(&HostfileFlavor::Openmpi);
    let mpi = match (mpi, cluster.mpi.cluster_key) {
        (true, true) => "1",
        (true, false) => "nokey",
        (false, _) => "0",
    };
    let users: Vec<String> = cluster
        .users
        .iter()
        .map(|u| format!("{} {} {}", u.name, u.uid, u.gid))
        .collect();
    // Host-based SSH for users needs the cluster key's known_hosts.
    let runas = match (cluster.users.first(), cluster.mpi.cluster_key) {
        (Some(u), true) => u.name.to_string(),
        _ => String::new(),
    };
    // Slurm, checked from the head: the default partition's nodes.
    let slurm = match (cluster.slurm.enabled, is_head) {
        (false, _) => "0",
        (true, false) => "worker",
        (true, true) => "1",
    };
    let slurm_nodes = cluster
        .slurm
        .partitions
        .iter()
        .find(|p| p.default)
        .map(|p| p.nodes.join(" "))
        .unwrap_or_default();
    let slurm_user = cluster
        .users
        .first()
        .map(|u| u.name.to_string())
        .unwrap_or_default();
    let vars: [(&str, String); 22] = [
        ("role", node.role().as_str().to_string()),
        ("iface", node.lan_iface().to_string()),
        ("addr", format!("{}/{}", node.ip(), cluster.lan.prefix)),
        (
            "gw",
            if is_head {
                String::new()
            } else {
                head.lan_ip.to_string()
            },
        ),
        ("wan_if", head.wan_iface.to_string()),
        ("dns", head.lan_ip.to_string()),
        ("wan", wan.map(|w| w.host.clone()).unwrap_or_default()),
        (
            "wanport",
            wan.and_then(|w| w.port)
                .map(|p| p.to_string())
                .unwrap_or_default(),
        ),
        ("lan", cluster.lan.cidr.clone()),
        ("names", names.join("\n")),
        ("peers", peers.join(" ")),
        ("mounts", mounts.join("\n")),
        ("users", users.join("\n")),
        ("runas", runas),
        ("mpi", mpi.to_string()),
        ("hostfile", HOSTFILE.to_string()),
        (
            "time",
            if cluster.time.enabled { "1" } else { "0" }.to_string(),
        ),
        (
            "ntp_src",
            if is_head {
                String::new()
            } else {
                head.lan_ip.to_string()
            },
        ),
        ("max_offset", MAX_TIME_OFFSET.to_string()),
        ("slurm", slurm.to_string()),
        ("slurm_nodes", slurm_nodes),
        ("slurm_user", slurm_user),
    ];
    let mut s = String::new();
    for (k, v) in vars {
        s.push_str(&format!("{k}={}\n", shell_quote(&v)));
    }
    s.push_str(SCRIPT);
    s
}

/// The results the script printed; a check it did not report is a failure.
pub fn parse(stdout: &str) -> Vec<CheckResult> {
    let mut found: Vec<CheckResult> = Vec::new();
    for (key, rest) in protocol::Lines::new(stdout) {
        if key != "@@check" {
            continue;
        }
        let mut parts = rest.splitn(3, ' ');
        let (Some(name), Some(outcome)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Some(check) = CHECKS.iter().copied().find(|c| *c == name) else {
            continue;
        };
        let outcome = match outcome {
            "ok" => Outcome::Ok,
            "skip" => Outcome::Skip,
            _ => Outcome::Fail,
        };
        let detail = crate::values::terminal_safe(parts.next().unwrap_or("").trim());
        found.retain(|c| c.check != check);
        found.push(CheckResult {
            check,
            outcome,
            detail,
        });
    }
    CHECKS
        .iter()
        .map(|&check| {
            found
                .iter()
                .find(|c| c.check == check)
                .cloned()
                .unwrap_or(CheckResult {
                    check,
                    outcome: Outcome::Fail,
                    detail: "the check did not report (the node's script stopped early)".into(),
                })
        })
        .collect()
}

/// Every check on one node: its results, or every check failed with the
/// reason the node could not be reached.
pub fn run_node(
    t: &dyn Transport,
    cluster: &Cluster,
    node: NodeRef,
    wan: Option<&WanTarget>,
) -> NodeChecks {
    let checks = match t.run(&script(cluster, node, wan)) {
        Ok(out) => {
            let stdout = String::from_utf8_lossy(&out.stdout);
            if protocol::find(&stdout, "@@done").is_some() {
                parse(&stdout)
            } else {
                let err = String::from_utf8_lossy(&out.stderr);
                all_failed(&format!(
                    "the check script failed (exit {}): {}",
                    out.status,
                    err.lines().last().unwrap_or("")
                ))
            }
        }
        Err(e) => all_failed(&format!("unreachable: {e}")),
    };
    NodeChecks {
        node: node.name().to_string(),
        checks,
    }
}

fn all_failed(why: &str) -> Vec<CheckResult> {
    let why = crate::values::terminal_safe(why);
    CHECKS
        .iter()
        .map(|&check| CheckResult {
            check,
            outcome: Outcome::Fail,
            detail: why.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_checks_fail_and_unknown_lines_are_ignored() {
        let r = parse("@@check address ok eth0 10.0.0.1/24\n@@check bogus ok x\n@@check mpi skip run from the head\nnoise\n");
        assert_eq!(r.len(), CHECKS.len());
        assert_eq!(r[0].outcome, Outcome::Ok);
        assert_eq!(r[0].detail, "eth0 10.0.0.1/24");
        assert_eq!(r[1].check, "route");
        assert_eq!(r[1].outcome, Outcome::Fail);
        let mpi = r.iter().find(|c| c.check == "mpi").unwrap();
        assert_eq!(mpi.outcome, Outcome::Skip);
    }

    #[test]
    fn wan_targets() {
        assert_eq!(
            WanTarget::parse("198.18.1.1").unwrap(),
            WanTarget {
                host: "198.18.1.1".into(),
                port: None
            }
        );
        assert_eq!(
            WanTarget::parse("deb.example.org:80").unwrap().port,
            Some(80)
        );
        for bad in ["", "-x", "a b", "h:0", "h:x", "$(reboot)", "h;ls"] {
            assert!(WanTarget::parse(bad).is_err(), "{bad}");
        }
    }

    /// The script is valid sh and every value is a quoted assignment.
    #[test]
    fn the_script_parses_with_sh() {
        let c = Cluster::from_str(
            include_str!("../../inventories/lab.yaml"),
            std::path::Path::new("lab.yaml"),
        )
        .unwrap();
        for name in c.node_names() {
            let s = script(
                &c,
                c.node(name).unwrap(),
                WanTarget::parse("1.2.3.4:80").ok().as_ref(),
            );
            let out = std::process::Command::new("sh")
                .args(["-n", "-c", &s])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(s.starts_with("role="));
        }
    }

    /// Regression: node.sh began with `exec </dev/null`, so a script longer
    /// than the shell's first read of its stdin (about 50 nodes' names) lost
    /// its rest and every check failed with "Syntax error: Unterminated
    /// quoted string". The real script of an 80-worker cluster, fed to
    /// `sh -s` as the transports do, in an empty network namespace (no
    /// route: every network check fails at once), must report every check.
    #[test]
    #[ignore = "needs root (unshare -n): run with --include-ignored (CI does)"]
    fn a_long_check_script_read_from_stdin_runs_to_the_end() {
        let lab = include_str!("../../inventories/lab.yaml");
        let start = lab.find("workers:\n").unwrap() + "workers:\n".len();
        let end = lab[start..].find("\n\n").unwrap() + start;
        let workers: String = (1..=80)
            .map(|i| {
                format!(
                    "  - name: w{i}\n    mac: \"02:c6:b3:10:00:{i:02x}\"\n    ip: 10.77.0.{}\n",
                    i + 10
                )
            })
            .collect();
        let yaml = format!("{}{}{}", &lab[..start], workers, &lab[end + 1..]);
        let c = Cluster::from_str(&yaml, std::path::Path::new("big.yaml")).unwrap();
        let s = script(&c, c.node("w1").unwrap(), None);
        // dash reads a script from stdin 8 KiB at a time
        assert!(s.len() > 8192, "{}", s.len());
        let mut child = std::process::Command::new("unshare")
            .args(["-n", "sh", "-s"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stdout.ends_with("@@done\n"), "{stdout}\n{stderr}");
        let results = parse(&stdout);
        assert!(
            results.iter().all(|r| !r.detail.contains("did not report")),
            "{results:?}"
        );
        assert!(!stderr.contains("Syntax error"), "{stderr}");
    }
}
