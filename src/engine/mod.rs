//! One node's run over any [`Transport`]: observe (the facts probe, round
//! trip 1), then decide (desired state from the facts, plan). `diff` stops
//! there (`diff_node`); `run.rs` goes on: preflight and the lockout checks
//! (`safety.rs`), `write` (stage, validate, back up, rename: all or
//! nothing; round trip 2), `handlers` (each changed step's handler once,
//! with the exact command the plan carries; round trip 3) and, when a
//! change can cut the controller's path, commit-confirm over a fresh
//! connection (`confirm.rs`; round trip 4). For the commands: the cluster
//! key gather (`keys.rs`, one round trip) and remove-node's lease
//! (`lease.rs`, two: the facts probe, then the script); apply asking a
//! worker that holds a pool address to renew onto its reservation
//! (`renew.rs`). The scripts sent to nodes live beside the code that builds
//! them (`write.sh`, `handlers.sh`, `revert.sh`, …); their answers are read
//! by `transport::protocol`; `commands/apply.rs` decides order and
//! concurrency.

mod confirm;
mod handlers;
mod keys;
mod lease;
mod machines;
mod output;
mod preflight;
mod renew;
mod run;
mod safety;
mod shlib;
mod users;
mod write;

pub use handlers::{handler_script, parse_handlers, HandlerResult};
pub use keys::{ask_keys, parse_keys, Ask, MUNGE_KEY_PATH};
pub use lease::{forget_lease, parse_leases, read_leases, Held, Lease, LEASES};
pub use machines::Machines;
pub use preflight::preflight;
pub use renew::{ask_to_renew, Renewal};
pub use run::{apply_node, RunOptions};
pub use safety::refuse_lockout;
pub use users::accounts_script;
pub use write::{parse_write, write_script, WriteResult};

use crate::catalog;
use crate::cluster::Cluster;
use crate::desired;
use crate::facts::{self, Facts};
use crate::plan::{self, NodePlan};
use crate::report::{NodeReport, Status};
use crate::templates::Templates;
use crate::transport::Transport;

/// What one node's run needs besides the transport.
#[derive(Clone, Copy)]
pub struct Job<'a> {
    pub cluster: &'a Cluster,
    pub templates: &'a Templates,
    /// The template values every node shares, built once per run.
    pub shared: &'a desired::Shared,
    /// The machines the run has reached, shared by its nodes.
    pub machines: &'a Machines,
    pub node: &'a str,
}

/// Round trip 1, shared with `diff`: observe the node, decide what it
/// should have given what it is, and plan (changed files, their handlers,
/// handlers owed by an earlier run). On failure: `Unreachable` or `Failed`
/// and why.
pub fn probe_and_plan(t: &dyn Transport, job: Job) -> Result<(Facts, NodePlan), (Status, String)> {
    let node = desired::node(job.cluster, job.node).map_err(|e| (Status::Failed, e.to_string()))?;
    let paths = catalog::candidate_paths(node.role());
    let mut pkgs = catalog::candidate_packages();
    if !job.cluster.users.is_empty() {
        // The account tools' package (`useradd`), asked about only when
        // the inventory has users.
        let shadow = crate::family::FAMILIES.iter().flat_map(|f| {
            [crate::family::Pkg::Shadow, crate::family::Pkg::SshKeysign]
                .into_iter()
                .filter_map(|p| f.package(p))
        });
        for name in shadow {
            if !pkgs.contains(&name) {
                pkgs.push(name);
            }
        }
    }
    let facts = facts::gather(t, &paths, catalog::PROBED_TOOLS, &pkgs).map_err(|e| {
        let status = if e.unreachable {
            Status::Unreachable
        } else {
            Status::Failed
        };
        (status, e.message)
    })?;
    if let Some(id) = &facts.machine {
        job.machines.claim(id, job.node).map_err(|other| {
            (
                Status::Failed,
                machines::same_machine(&other, "the same boot id, machine-id and host key"),
            )
        })?;
    }
    let want = desired::desired_for(job.cluster, job.templates, job.shared, node, &facts)
        .map_err(|e| (Status::Failed, e.to_string()))?;
    let plan = plan::compare(&want, &facts)
        .map_err(|e| (Status::Failed, format!("{}: {}", e.path, e.message)))?;
    Ok((facts, plan))
}

/// `diff` for one node: its plan, touching nothing.
pub fn diff_node(t: &dyn Transport, job: Job) -> NodeReport {
    let r = NodeReport::new(job.node);
    let start = t.round_trips();
    let mut r = match probe_and_plan(t, job) {
        Ok((_, plan)) => r.planned(&plan),
        Err((status, message)) => r.fail(status, message),
    };
    r.round_trips = t.round_trips() - start;
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Manage, PROBED_TOOLS};
    use crate::desired::RenderedFile;
    use crate::transport::{FakeHost, Output, TransportError};
    use base64::Engine;
    use std::path::Path;
    use std::sync::atomic::AtomicBool;

    struct Lab {
        cluster: Cluster,
        templates: Templates,
        shared: desired::Shared,
        machines: Machines,
    }

    impl Lab {
        fn job(&self) -> Job<'_> {
            Job {
                cluster: &self.cluster,
                templates: &self.templates,
                shared: &self.shared,
                machines: &self.machines,
                node: "head",
            }
        }
    }

    /// The lab's head and its files as a sysvinit node would get them.
    fn lab() -> (Lab, Vec<RenderedFile>) {
        let cluster = Cluster::from_str(
            include_str!("../../inventories/lab.yaml"),
            Path::new("lab.yaml"),
        )
        .unwrap();
        let templates = Templates::load(None).unwrap();
        let facts = facts::parse(&probe_answer(&[], false)).unwrap();
        let files = desired::desired(&cluster, &templates, "head", &facts)
            .unwrap()
            .files;
        let shared = desired::Shared::new(&cluster);
        (
            Lab {
                cluster,
                templates,
                shared,
                machines: Machines::default(),
            },
            files,
        )
    }

    fn ok(stdout: String) -> Result<Output, TransportError> {
        Ok(Output {
            status: 0,
            stdout: stdout.into_bytes(),
            stderr: Vec::new(),
        })
    }

    /// Probe output for a node that has `files` exactly (or nothing) and every tool.
    fn probe_answer(files: &[RenderedFile], present: bool) -> String {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut s = String::from(
            "@@os debian 12\n@@init sysvinit\n@@iptables nf_tables\n@@ifupdown classic\n",
        );
        for t in PROBED_TOOLS {
            s.push_str(&format!("@@tool {t}\n"));
        }
        s.push_str("@@pkgmgr apt\n");
        for p in catalog::candidate_packages() {
            s.push_str(&format!("@@pkg {p}\n"));
        }
        s.push_str("@@session-if eth0\n");
        for f in files {
            if present {
                let content = match f.manage {
                    Manage::Whole => f.content.clone(),
                    Manage::Block => crate::block::merge_block("", &f.content).unwrap(),
                };
                s.push_str(&format!(
                    "@@file {} {:o} root root {}\n@@content\n{}\n@@end\n",
                    f.path,
                    f.mode,
                    content.len(),
                    b64.encode(content)
                ));
            } else {
                s.push_str(&format!("@@missing {}\n", f.path));
            }
        }
        s.push_str("@@done\n");
        s
    }

    static NEVER: AtomicBool = AtomicBool::new(false);

    /// Options without commit-confirm (`--no-confirm`).
    fn unconfirmed(cancel: &AtomicBool) -> RunOptions<'_> {
        RunOptions {
            run_id: "RUN",
            cancel,
            confirm: None,
            lease: 600,
            skip_packages: false,
        }
    }

    #[test]
    fn a_node_in_sync_costs_one_round_trip_and_runs_nothing() {
        let (lab, files) = lab();
        let answer = probe_answer(&files, true);
        let t = FakeHost::new(move |_| ok(answer.clone()));
        let r = apply_node(&t, lab.job(), unconfirmed(&NEVER));
        assert_eq!(r.status, Status::Ok, "{r:?}");
        assert_eq!(r.round_trips, 1);
        assert_eq!(t.round_trips(), 1);
        assert!(r.changes.is_empty() && r.handlers.is_empty());
    }

    #[test]
    fn changes_cost_three_round_trips_however_many_files() {
        let (lab, files) = lab();
        let probe = probe_answer(&files, false);
        let t = FakeHost::new(move |script| {
            if script.contains("\nmain\n") && script.contains("stage ") {
                let mut out = String::new();
                for l in script.lines().filter(|l| l.starts_with("commit ")) {
                    out.push_str(&format!("@@written {}\n", l.split(' ').nth(1).unwrap()));
                }
                ok(out + "@@done\n")
            } else if script.contains("main 3>&1") {
                let mut out = String::new();
                for l in script.lines().filter(|l| l.starts_with("  run ")) {
                    out.push_str(&format!("@@ok {}\n", l.split(' ').nth(3).unwrap()));
                }
                ok(out + "@@done\n")
            } else {
                ok(probe.clone())
            }
        });
        let r = apply_node(&t, lab.job(), unconfirmed(&NEVER));
        assert_eq!(r.status, Status::Changed, "{r:?}");
        assert_eq!(r.round_trips, 3);
        assert_eq!(r.changes.len(), files.len());
        let ran: Vec<&str> = r.handlers.iter().map(|h| h.step).collect();
        assert_eq!(
            ran,
            [
                "head-hostname",
                "head-lan-interface",
                "head-ip-forward",
                "head-firewall",
                "head-dnsmasq",
                "head-time"
            ]
        );
        let scripts = t.scripts.lock().unwrap();
        // The write script validates both candidates before any rename.
        let w = &scripts[1];
        let check_dns = w
            .find("check /etc/dnsmasq.d/clusterctl.conf dnsmasq --test")
            .unwrap();
        let check_fw = w
            .find("check /etc/iptables/rules.v4 iptables-restore --test")
            .unwrap();
        let first_commit = w.find("commit ").unwrap();
        let first_backup = w.find("\nbackup ").unwrap();
        assert!(check_dns < first_backup && check_fw < first_backup && first_backup < first_commit);
        // sysvinit: dnsmasq restarts with `service`.
        assert!(
            scripts[2].contains("service dnsmasq restart"),
            "{}",
            scripts[2]
        );
    }

    /// An earlier apply wrote the files but did not run dnsmasq's restart:
    /// this one runs it (one handler round trip, nothing written).
    #[test]
    fn an_owed_handler_runs_even_when_the_files_are_in_sync() {
        let (lab, files) = lab();
        let probe = probe_answer(&files, true).replace("@@done\n", "@@owed head-dnsmasq\n@@done\n");
        let t = FakeHost::new(move |script| {
            if script.contains("main 3>&1") {
                ok("@@ok head-dnsmasq\n@@done\n".into())
            } else {
                ok(probe.clone())
            }
        });
        let r = apply_node(&t, lab.job(), unconfirmed(&NEVER));
        assert_eq!(r.status, Status::Changed, "{r:?}");
        assert_eq!(r.round_trips, 2);
        let ran: Vec<&str> = r.handlers.iter().map(|h| h.step).collect();
        assert_eq!(ran, ["head-dnsmasq"]);
        assert!(r.changes.is_empty());
        let scripts = t.scripts.lock().unwrap();
        assert!(scripts[1].contains("run head-dnsmasq h0"), "{}", scripts[1]);
        assert!(!scripts[1].contains("run head-firewall"));
    }

    /// A fake head that takes every change: probe, write and handler
    /// answers; the confirmation is answered by `confirm`.
    fn accepting_head(
        files: &[RenderedFile],
        confirm: impl Fn() -> Result<Output, TransportError> + Send + Sync + 'static,
    ) -> FakeHost {
        let probe = probe_answer(files, false);
        FakeHost::new(move |script| {
            if script.contains("@@disarmed") {
                confirm()
            } else if script.contains("\nmain\n") && script.contains("stage ") {
                let mut out = String::new();
                for l in script.lines().filter(|l| l.starts_with("commit ")) {
                    out.push_str(&format!("@@written {}\n", l.split(' ').nth(1).unwrap()));
                }
                ok(out + "@@done\n")
            } else if script.contains("main 3>&1") {
                let mut out = String::from(if script.contains("revert.sh") {
                    "@@armed\n"
                } else {
                    ""
                });
                for l in script.lines().filter(|l| l.starts_with("  run ")) {
                    out.push_str(&format!("@@ok {}\n", l.split(' ').nth(3).unwrap()));
                }
                ok(out + "@@done\n")
            } else {
                ok(probe.clone())
            }
        })
    }

    fn confirmed(seconds: u32) -> RunOptions<'static> {
        RunOptions {
            run_id: "RUN",
            cancel: &NEVER,
            confirm: Some(seconds),
            lease: 600,
            skip_packages: false,
        }
    }

    /// A firewall change is armed with a revert before its handler runs,
    /// and confirmed over a fresh connection: one more round trip.
    #[test]
    fn a_firewall_change_is_armed_and_confirmed_over_a_fresh_connection() {
        let (lab, files) = lab();
        let t = accepting_head(&files, || ok("@@disarmed\n".into()));
        let r = apply_node(&t, lab.job(), confirmed(60));
        assert_eq!(r.status, Status::Changed, "{r:?}");
        assert_eq!(r.round_trips, 4);
        let scripts = t.scripts.lock().unwrap();
        let arm = scripts[2].find("revert.sh").unwrap();
        let first_handler = scripts[2].find("  run ").unwrap();
        assert!(
            arm < first_handler,
            "the revert is armed before any handler runs"
        );
        assert!(scripts[3].contains("/var/lib/clusterctl/confirm/RUN"));
    }

    /// The fresh connection fails: apply waits for the node's revert, then
    /// proves the node is reachable again, and says `reverted` and why.
    #[test]
    fn a_change_that_cuts_the_path_is_reported_reverted() {
        let (lab, files) = lab();
        let tries = std::sync::atomic::AtomicUsize::new(0);
        let t = accepting_head(&files, move || {
            if tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                Err(TransportError {
                    message: "ssh: connect to host head port 22: Connection timed out".into(),
                    unreachable: true,
                })
            } else {
                ok("@@reverted 2026-12-01T14:00:00Z\n".into())
            }
        });
        let r = apply_node(&t, lab.job(), confirmed(0));
        assert_eq!(r.status, Status::Reverted, "{r:?}");
        let msg = r.message.as_deref().unwrap();
        assert!(msg.contains("Connection timed out"), "{msg}");
        assert!(msg.contains("reachable again"), "{msg}");
        assert_eq!(r.round_trips, 5);
    }

    /// A fresh head lacks its packages: the write round trip installs the
    /// missing ones first (still three round trips); with --skip-packages
    /// apply names them and changes nothing.
    #[test]
    fn missing_packages_are_installed_first_or_named_with_skip_packages() {
        let (lab, files) = lab();
        let fresh = |s: String| {
            s.lines()
                .filter(|l| !matches!(*l, "@@pkg dnsmasq" | "@@pkg iptables-persistent"))
                .map(|l| format!("{l}\n"))
                .collect::<String>()
        };
        let probe = fresh(probe_answer(&files, false));
        let t = accepting_head(&files, || ok("@@disarmed\n".into()));
        let plan = probe_and_plan(&t, lab.job()).unwrap().1;
        assert!(plan.install.is_empty(), "the accepting head has everything");
        let t2 = FakeHost::new(move |_| ok(probe.clone()));
        let (_, plan) = probe_and_plan(&t2, lab.job()).unwrap();
        assert_eq!(plan.install, ["iptables-persistent", "dnsmasq"]);
        let mut opts = unconfirmed(&NEVER);
        opts.skip_packages = true;
        let r = apply_node(&t2, lab.job(), opts);
        assert_eq!(r.status, Status::Failed);
        assert_eq!(r.round_trips, 1);
        assert_eq!(
            r.message.as_deref(),
            Some("missing package(s) iptables-persistent, dnsmasq on head (--skip-packages: clusterctl installs nothing); install them and run apply again; nothing was changed")
        );
        let w = write_script(
            &plan,
            &write::WriteCtx {
                backup_dir: "/b".into(),
                owed_file: "/o".into(),
                lock: shlib::LockRef {
                    dir: "/l".into(),
                    run_id: "RUN".into(),
                    lease: 1,
                    node: "head".into(),
                },
                release: false,
                install: Some(crate::family::DEBIAN.install_script(&plan.install)),
                accounts: None,
            },
        );
        let install = w.find("\npkg_install\n").unwrap();
        assert!(
            install < w.find("\nstage ").unwrap(),
            "installed before staging"
        );
    }

    #[test]
    fn a_failed_validation_fails_the_node_and_runs_no_handler() {
        let (lab, files) = lab();
        let probe = probe_answer(&files, false);
        let t = FakeHost::new(move |script| {
            if script.contains("stage ") {
                ok("@@invalid /etc/dnsmasq.d/clusterctl.conf\n@@| dnsmasq: bad option at line 3\n@@aborted\n".into())
            } else {
                ok(probe.clone())
            }
        });
        let r = apply_node(&t, lab.job(), unconfirmed(&NEVER));
        assert_eq!(r.status, Status::Failed);
        assert_eq!(r.round_trips, 2);
        assert_eq!(
            r.message.as_deref(),
            Some("/etc/dnsmasq.d/clusterctl.conf: the new file failed validation, the old one is kept: dnsmasq: bad option at line 3; no file was changed")
        );
    }

    #[test]
    fn a_missing_tool_fails_before_anything_is_written() {
        let (lab, files) = lab();
        let probe = probe_answer(&files, false).replace("@@tool ifup\n", "");
        let t = FakeHost::new(move |_| ok(probe.clone()));
        let r = apply_node(&t, lab.job(), unconfirmed(&NEVER));
        assert_eq!(r.status, Status::Failed);
        assert_eq!(r.round_trips, 1);
        assert_eq!(
            r.message.as_deref(),
            Some("missing `ifup` (package ifupdown) on head (debian 12, sysvinit init); install it and run apply again; nothing was changed")
        );
    }

    /// A node of no known distro family (issue #20): refused after the
    /// probe, naming what was seen; never treated as Debian, nothing written.
    #[test]
    fn a_node_of_no_known_family_is_refused_after_the_probe() {
        let (lab, files) = lab();
        let probe = probe_answer(&files, false)
            .replace("@@os debian 12\n", "@@os arch 20240101\n")
            .replace("@@pkgmgr apt\n", "@@pkgmgr unknown\n");
        let t = FakeHost::new(move |_| ok(probe.clone()));
        let r = apply_node(&t, lab.job(), unconfirmed(&NEVER));
        assert_eq!(r.status, Status::Failed);
        assert_eq!(r.round_trips, 1);
        assert_eq!(
            r.message.as_deref(),
            Some("head: no supported distro family recognised (found: os arch 20240101, package manager unknown); \
                  nothing was changed (help: clusterctl manages Debian-like (apt), RHEL-like (dnf), Alpine (apk) nodes)")
        );
    }

    #[test]
    fn unreachable_and_interrupted() {
        let (lab, _) = lab();
        let t = FakeHost::new(|_| {
            Err(TransportError {
                message: "ssh to root@head failed: Connection refused".into(),
                unreachable: true,
            })
        });
        let r = apply_node(&t, lab.job(), unconfirmed(&NEVER));
        assert_eq!(r.status, Status::Unreachable);
        let stop = AtomicBool::new(true);
        let r = apply_node(&t, lab.job(), unconfirmed(&stop));
        assert_eq!(r.status, Status::Interrupted);
        assert_eq!(r.round_trips, 0);
    }
}
