//! One node's run over any [`Transport`], in at most three round trips:
//! observe (the facts probe), then decide (desired state from the facts,
//! plan), then preflight, `write` (stage, validate, back up, rename: all or
//! nothing) and `handlers` (each changed step's handler once, with the exact
//! command the plan carries). `diff` stops after the plan. The scripts sent
//! to nodes live beside the code that builds and parses them
//! (`write.sh`, `handlers.sh`); `commands/apply.rs` decides order and
//! concurrency.

mod handlers;
mod output;
mod preflight;
mod write;

use std::sync::atomic::{AtomicBool, Ordering};

pub use handlers::{handler_script, parse_handlers, HandlerResult};
pub use preflight::preflight;
pub use write::{parse_write, write_script, WriteResult};

use output::stderr_tail;

use crate::catalog;
use crate::cluster::Cluster;
use crate::desired;
use crate::facts::{self, Facts};
use crate::node_state::{BACKUP_ROOT, OWED_FILE};
use crate::plan::{self, NodePlan};
use crate::report::{NodeReport, Status};
use crate::templates::Templates;
use crate::transport::Transport;

/// What one node's run needs besides the transport.
#[derive(Clone, Copy)]
pub struct Job<'a> {
    pub cluster: &'a Cluster,
    pub templates: &'a Templates,
    pub node: &'a str,
}

/// Round trip 1, shared with `diff`: observe the node, decide what it
/// should have given what it is, and plan (changed files, their handlers,
/// handlers owed by an earlier run). On failure: `Unreachable` or `Failed`
/// and why.
pub fn probe_and_plan(t: &dyn Transport, job: Job) -> Result<(Facts, NodePlan), (Status, String)> {
    let node = desired::node(job.cluster, job.node).map_err(|e| (Status::Failed, e.to_string()))?;
    let paths = catalog::candidate_paths(node.role());
    let facts = facts::gather(t, &paths, catalog::PROBED_TOOLS).map_err(|e| {
        let status = if e.unreachable {
            Status::Unreachable
        } else {
            Status::Failed
        };
        (status, e.message)
    })?;
    let want = desired::desired(job.cluster, job.templates, job.node, &facts)
        .map_err(|e| (Status::Failed, e.to_string()))?;
    let plan = plan::plan_node(&want, &facts)
        .map_err(|e| (Status::Failed, format!("{}: {}", e.path, e.message)))?;
    Ok((facts, plan))
}

/// `diff` for one node: its plan, touching nothing.
pub fn plan_node(t: &dyn Transport, job: Job) -> NodeReport {
    let r = NodeReport::new(job.node);
    let start = t.round_trips();
    let mut r = match probe_and_plan(t, job) {
        Ok((_, plan)) => r.planned(&plan),
        Err((status, message)) => r.fail(status, message),
    };
    r.round_trips = t.round_trips() - start;
    r
}

/// Apply to one node. `cancel` is checked between round trips: once set,
/// nothing new starts (a started round trip always finishes, so no file is
/// ever half-written).
pub fn apply_node(t: &dyn Transport, job: Job, run_id: &str, cancel: &AtomicBool) -> NodeReport {
    let start = t.round_trips();
    let mut r = apply_inner(t, job, run_id, cancel);
    r.round_trips = t.round_trips() - start;
    r
}

fn apply_inner(t: &dyn Transport, job: Job, run_id: &str, cancel: &AtomicBool) -> NodeReport {
    let report = NodeReport::new(job.node);
    if cancel.load(Ordering::SeqCst) {
        return report.fail(Status::Interrupted, "not started: interrupted");
    }
    let (facts, plan) = match probe_and_plan(t, job) {
        Ok(fp) => fp,
        Err((status, message)) => return report.fail(status, message),
    };
    let mut report = report;
    report.in_sync = plan.changes.len();
    if plan.is_noop() {
        return report;
    }
    if let Err(m) = preflight(&plan, &facts, job.node) {
        return report.fail(Status::Failed, m);
    }
    if cancel.load(Ordering::SeqCst) {
        return report.fail(Status::Interrupted, "interrupted before writing anything");
    }

    // Round trip 2: stage, validate, back up, rename.
    let mut written = Vec::new();
    if plan.file_changes() > 0 {
        let backup_dir = format!("{BACKUP_ROOT}/{run_id}");
        let (w, result) = write::write_files(t, &plan, &backup_dir, OWED_FILE);
        if w.backed_up {
            report.backup_dir = Some(backup_dir);
        }
        written = w.written;
        if let Err(msg) = result {
            report.made(&plan, &written, &[]);
            return report.fail(Status::Failed, msg);
        }
    }
    for h in plan.handlers.iter().filter(|h| h.owed) {
        report.notes.push(format!(
            "running the handler of {}, owed by an earlier apply",
            h.run.step
        ));
    }

    // Round trip 3: the handlers of the steps that changed content.
    let ran = match run_handlers(t, &plan, &facts, cancel, &mut report) {
        Ok(ran) => ran,
        Err((status, msg, ran)) => {
            report.made(&plan, &written, &ran);
            return report.fail(status, msg);
        }
    };
    report.made(&plan, &written, &ran);
    report.status = Status::Changed;
    report
}

type HandlerFailure = (Status, String, Vec<String>);

/// The handler round trip: the steps whose handler ran, or how it failed.
fn run_handlers(
    t: &dyn Transport,
    plan: &NodePlan,
    facts: &Facts,
    cancel: &AtomicBool,
    report: &mut NodeReport,
) -> Result<Vec<String>, HandlerFailure> {
    if plan.handlers.is_empty() {
        return Ok(Vec::new());
    }
    if cancel.load(Ordering::SeqCst) {
        let steps: Vec<&str> = plan.handlers.iter().map(|h| h.run.step).collect();
        let msg = format!(
            "interrupted after writing files; handlers not run: {}",
            steps.join(", ")
        );
        return Err((Status::Interrupted, msg, Vec::new()));
    }
    let script =
        handler_script(plan, facts, OWED_FILE).map_err(|m| (Status::Failed, m, Vec::new()))?;
    let out = t.run(&script).map_err(|e| {
        let msg = format!("connection lost while running handlers: {e}; run apply again");
        (Status::Failed, msg, Vec::new())
    })?;
    let h = parse_handlers(&String::from_utf8_lossy(&out.stdout));
    report.notes.extend(h.notes);
    if h.failed.is_empty() && h.done {
        return Ok(h.ok);
    }
    let mut msg: Vec<String> = h.failed;
    if !h.done {
        msg.push(format!(
            "handlers did not finish (exit {}){}",
            out.status,
            stderr_tail(&out.stderr)
        ));
    }
    Err((Status::Failed, msg.join("; "), h.ok))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Manage, PROBED_TOOLS};
    use crate::desired::RenderedFile;
    use crate::transport::{FakeHost, Output, TransportError};
    use base64::Engine;
    use std::path::Path;

    struct Lab {
        cluster: Cluster,
        templates: Templates,
    }

    impl Lab {
        fn job(&self) -> Job<'_> {
            Job {
                cluster: &self.cluster,
                templates: &self.templates,
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
        (Lab { cluster, templates }, files)
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
        let mut s = String::from("@@os debian 12\n@@init sysvinit\n@@iptables nf_tables\n");
        for t in PROBED_TOOLS {
            s.push_str(&format!("@@tool {t}\n"));
        }
        s.push_str("@@session-if eth0\n");
        for f in files {
            if present {
                let content = match f.manage {
                    Manage::Whole => f.content.clone(),
                    Manage::Block => crate::block::merge_block("", &f.content).unwrap(),
                };
                s.push_str(&format!(
                    "@@file {} {:o} root root\n{}\n@@end\n",
                    f.path,
                    f.mode,
                    b64.encode(content)
                ));
            } else {
                s.push_str(&format!("@@missing {}\n", f.path));
            }
        }
        s.push_str("@@done\n");
        s
    }

    fn never() -> AtomicBool {
        AtomicBool::new(false)
    }

    #[test]
    fn a_node_in_sync_costs_one_round_trip_and_runs_nothing() {
        let (lab, files) = lab();
        let answer = probe_answer(&files, true);
        let t = FakeHost::new(move |_| ok(answer.clone()));
        let r = apply_node(&t, lab.job(), "RUN", &never());
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
        let r = apply_node(&t, lab.job(), "RUN", &never());
        assert_eq!(r.status, Status::Changed, "{r:?}");
        assert_eq!(r.round_trips, 3);
        assert_eq!(r.changes.len(), files.len());
        let ran: Vec<&str> = r.handlers.iter().map(|h| h.step).collect();
        assert_eq!(
            ran,
            [
                "head-lan-interface",
                "head-ip-forward",
                "head-firewall",
                "head-dnsmasq"
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
        let r = apply_node(&t, lab.job(), "RUN", &never());
        assert_eq!(r.status, Status::Changed, "{r:?}");
        assert_eq!(r.round_trips, 2);
        let ran: Vec<&str> = r.handlers.iter().map(|h| h.step).collect();
        assert_eq!(ran, ["head-dnsmasq"]);
        assert!(r.changes.is_empty());
        let scripts = t.scripts.lock().unwrap();
        assert!(scripts[1].contains("run head-dnsmasq h0"), "{}", scripts[1]);
        assert!(!scripts[1].contains("run head-firewall"));
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
        let r = apply_node(&t, lab.job(), "RUN", &never());
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
        let r = apply_node(&t, lab.job(), "RUN", &never());
        assert_eq!(r.status, Status::Failed);
        assert_eq!(r.round_trips, 1);
        assert_eq!(
            r.message.as_deref(),
            Some("missing `ifup` (package ifupdown) on head (debian 12, sysvinit init); install it and run apply again; nothing was changed")
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
        let r = apply_node(&t, lab.job(), "RUN", &never());
        assert_eq!(r.status, Status::Unreachable);
        let stop = AtomicBool::new(true);
        let r = apply_node(&t, lab.job(), "RUN", &stop);
        assert_eq!(r.status, Status::Interrupted);
        assert_eq!(r.round_trips, 0);
    }
}
