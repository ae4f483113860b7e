//! Apply to one node: probe and plan, preflight and the lockout checks,
//! the write round trip, the handler round trip (armed with a revert when a
//! change can cut the controller's path) and its confirmation over a fresh
//! connection. Every failure says what was done before it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::confirm::{disarm_script, parse_disarm, Arm, Confirmed};
use super::handlers::{handler_script, parse_handlers, LockRef};
use super::output::stderr_tail;
use super::{preflight, probe_and_plan, safety, write, Job};
use crate::desired;
use crate::facts::Facts;
use crate::node_state::{BACKUP_ROOT, CONFIRM_ROOT, LOCK_DIR, OWED_FILE};
use crate::plan::NodePlan;
use crate::report::{NodeReport, Status};
use crate::transport::Transport;

/// How this run applies.
#[derive(Clone, Copy)]
pub struct RunOptions<'a> {
    pub run_id: &'a str,
    /// Checked between round trips: once set, nothing new starts (a started
    /// round trip always finishes, so no file is ever half-written).
    pub cancel: &'a AtomicBool,
    /// Commit-confirm timeout in seconds; None: `--no-confirm`.
    pub confirm: Option<u32>,
    /// Seconds the node's apply lock outlives this run if it dies.
    pub lease: u64,
    /// Install nothing: a missing package is an error (air-gapped clusters).
    pub skip_packages: bool,
}

/// Apply to one node.
pub fn apply_node(t: &dyn Transport, job: Job, opts: RunOptions) -> NodeReport {
    let start = t.round_trips();
    let mut r = apply_inner(t, job, opts);
    r.round_trips = t.round_trips() - start;
    r
}

fn apply_inner(t: &dyn Transport, job: Job, opts: RunOptions) -> NodeReport {
    let mut report = NodeReport::new(job.node);
    let cancelled = || opts.cancel.load(Ordering::SeqCst);
    if cancelled() {
        return report.fail(Status::Interrupted, "not started: interrupted");
    }
    let (facts, plan) = match probe_and_plan(t, job) {
        Ok(fp) => fp,
        Err((status, message)) => return report.fail(status, message),
    };
    report.in_sync = plan.changes.len();
    report.notes.extend(plan.notes.iter().cloned());
    if plan.is_noop() {
        return report;
    }
    let checks = desired::node(job.cluster, job.node)
        .map_err(|e| e.to_string())
        .and_then(|node| safety::refuse_lockout(job.cluster, node, &facts, &plan))
        .and_then(|()| preflight(&plan, &facts, job.node, opts.skip_packages));
    if let Err(m) = checks {
        return report.fail(Status::Failed, m);
    }
    if cancelled() {
        return report.fail(Status::Interrupted, "interrupted before writing anything");
    }
    let lock = LockRef {
        dir: LOCK_DIR.to_string(),
        run_id: opts.run_id.to_string(),
        lease: opts.lease,
        node: job.node.to_string(),
    };
    let written = match write_phase(t, &plan, &facts, &lock, opts, &mut report) {
        Ok(w) => w,
        Err(msg) => return report.fail(Status::Failed, msg),
    };
    handler_phase(t, &plan, &facts, &lock, opts, &written, report)
}

/// Round trip 2: lock, check, install, stage, validate, back up, rename.
/// The paths written, or why it failed (the report says what was done).
fn write_phase(
    t: &dyn Transport,
    plan: &NodePlan,
    facts: &Facts,
    lock: &LockRef,
    opts: RunOptions,
    report: &mut NodeReport,
) -> Result<Vec<String>, String> {
    if plan.file_changes() == 0 && plan.install.is_empty() && plan.accounts.is_empty() {
        return Ok(Vec::new());
    }
    let backup_dir = format!("{BACKUP_ROOT}/{}", opts.run_id);
    let ctx = write::WriteCtx {
        backup_dir: backup_dir.clone(),
        owed_file: OWED_FILE.to_string(),
        lock: lock.clone(),
        release: plan.handlers.is_empty(),
        install: match plan.install.is_empty() {
            true => None,
            false => Some(facts.family()?.install_script(&plan.install)),
        },
        accounts: super::users::accounts_script(&plan.accounts, None),
    };
    let (w, result) = write::write_files(t, plan, &ctx);
    if w.backed_up {
        report.backup_dir = Some(backup_dir);
    }
    report.notes.extend(w.notes);
    report.packages = w.installed;
    report.accounts = plan
        .accounts
        .iter()
        .filter(|c| {
            w.accounts
                .iter()
                .any(|a| a.split(' ').nth(1) == Some(c.name()))
        })
        .map(|c| c.describe())
        .collect();
    if let Err(msg) = result {
        report.made(plan, &w.written, &[]);
        return Err(msg);
    }
    Ok(w.written)
}

/// Round trip 3 (and 4 to confirm): the handlers, armed with a revert when
/// one of them can cut the controller's path.
fn handler_phase(
    t: &dyn Transport,
    plan: &NodePlan,
    facts: &Facts,
    lock: &LockRef,
    opts: RunOptions,
    written: &[String],
    mut report: NodeReport,
) -> NodeReport {
    for h in plan.handlers.iter().filter(|h| h.owed) {
        report.notes.push(format!(
            "running the handler of {}, owed by an earlier apply",
            h.run.step
        ));
    }
    let arm = match opts.confirm {
        Some(seconds) if plan.handlers.iter().any(|h| h.run.can_cut_path) => Some(Arm {
            seconds,
            dir: format!("{CONFIRM_ROOT}/{}", opts.run_id),
            backup_dir: format!("{BACKUP_ROOT}/{}", opts.run_id),
            run_id: opts.run_id,
            lock: lock.clone(),
        }),
        _ => None,
    };
    let h = run_handlers(t, plan, facts, arm.as_ref(), lock, opts.cancel, &mut report);
    report.made(plan, written, &h.ran);
    if let (Some(arm), true) = (&arm, h.maybe_armed) {
        if let Err((status, msg)) = confirm(t, arm, h.armed_at, opts.cancel, &mut report) {
            return report.fail(status, msg);
        }
    }
    match h.result {
        Ok(()) => {
            report.status = Status::Changed;
            report
        }
        Err((status, msg)) => report.fail(status, msg),
    }
}

/// How the handler round trip went.
struct Handlers {
    /// Steps whose handler ran successfully.
    ran: Vec<String>,
    /// A revert was (or may have been, if the output was lost) armed.
    maybe_armed: bool,
    armed_at: Instant,
    result: Result<(), (Status, String)>,
}

fn run_handlers(
    t: &dyn Transport,
    plan: &NodePlan,
    facts: &Facts,
    arm: Option<&Arm>,
    lock: &LockRef,
    cancel: &AtomicBool,
    report: &mut NodeReport,
) -> Handlers {
    let mut h = Handlers {
        ran: Vec::new(),
        maybe_armed: false,
        armed_at: Instant::now(),
        result: Ok(()),
    };
    if plan.handlers.is_empty() {
        return h;
    }
    if cancel.load(Ordering::SeqCst) {
        let steps: Vec<&str> = plan.handlers.iter().map(|h| h.run.step).collect();
        let msg = format!(
            "interrupted after writing files; handlers not run: {}",
            steps.join(", ")
        );
        h.result = Err((Status::Interrupted, msg));
        return h;
    }
    let script = match handler_script(plan, facts, OWED_FILE, arm, lock) {
        Ok(s) => s,
        Err(m) => {
            h.result = Err((Status::Failed, m));
            return h;
        }
    };
    h.armed_at = Instant::now();
    let out = match t.run(&script) {
        Ok(o) => o,
        Err(e) => {
            h.maybe_armed = arm.is_some();
            let msg = format!("connection lost while running handlers: {e}; run apply again");
            h.result = Err((Status::Failed, msg));
            return h;
        }
    };
    let parsed = parse_handlers(&String::from_utf8_lossy(&out.stdout));
    h.maybe_armed = parsed.armed;
    h.ran = parsed.ok;
    report.notes.extend(parsed.notes);
    if parsed.failed.is_empty() && parsed.errors.is_empty() && parsed.done {
        return h;
    }
    let mut msg: Vec<String> = parsed.errors;
    msg.extend(parsed.failed);
    if !parsed.done && msg.is_empty() {
        msg.push(format!(
            "handlers did not finish (exit {}){}",
            out.status,
            stderr_tail(&out.stderr)
        ));
    }
    h.result = Err((Status::Failed, msg.join("; ")));
    h
}

/// Confirm an armed change over a fresh connection. When that fails, wait
/// for the node's revert and prove it is reachable again.
fn confirm(
    t: &dyn Transport,
    arm: &Arm,
    armed_at: Instant,
    cancel: &AtomicBool,
    report: &mut NodeReport,
) -> Result<(), (Status, String)> {
    let script = disarm_script(&arm.dir, &arm.lock);
    // A busy controller or node can fail one fresh connection (a key
    // exchange timing out) without anything being cut: try again while the
    // revert is still well ahead. A change that really cut the path fails
    // every try, and the node reverts by itself when its timer fires.
    let last_try =
        armed_at + Duration::from_secs(u64::from(arm.seconds)).saturating_sub(CONFIRM_MARGIN);
    let mut tries = 0u32;
    let first_error = loop {
        tries += 1;
        match t.run_fresh(&script) {
            Ok(out) => return disarmed(&out.stdout, arm, tries, report),
            Err(e) => {
                let next = Instant::now() + CONFIRM_RETRY;
                if next >= last_try || !sleep_until(next, cancel) {
                    break e.message;
                }
                if tries == 1 {
                    report.notes.push(format!(
                        "a fresh SSH connection failed after the change ({}); trying again \
                         until {}s before the revert fires",
                        e.message,
                        CONFIRM_MARGIN.as_secs()
                    ));
                }
            }
        }
    };
    wait_for_revert(t, arm, armed_at, first_error, cancel, report)
}

/// Pause between fresh-connection tries while confirming.
const CONFIRM_RETRY: Duration = Duration::from_secs(2);
/// No fresh-connection try starts this close to the revert firing.
const CONFIRM_MARGIN: Duration = Duration::from_secs(10);

/// What the disarm script said over a fresh connection.
fn disarmed(
    stdout: &[u8],
    arm: &Arm,
    tries: u32,
    report: &mut NodeReport,
) -> Result<(), (Status, String)> {
    match parse_disarm(&String::from_utf8_lossy(stdout)) {
        Confirmed::Disarmed => {
            let how = if tries == 1 {
                String::new()
            } else {
                format!(" (at try {tries})")
            };
            report.notes.push(format!(
                "reachable over a fresh SSH connection after the change{how}: confirmed"
            ));
            Ok(())
        }
        Confirmed::Reverted(_) | Confirmed::Firing => Err((
            Status::Reverted,
            format!(
                "the node reverted the change before it could be confirmed \
                 (--confirm-timeout {}s too short for its handlers?); the old files are back",
                arm.seconds
            ),
        )),
        Confirmed::Unknown => Err((
            Status::Failed,
            "the change could not be confirmed: the node has no revert armed for this run"
                .to_string(),
        )),
    }
}

/// The fresh connection failed: wait until the node's revert has fired,
/// then prove the node is reachable again (and reverted).
fn wait_for_revert(
    t: &dyn Transport,
    arm: &Arm,
    armed_at: Instant,
    first_error: String,
    cancel: &AtomicBool,
    report: &mut NodeReport,
) -> Result<(), (Status, String)> {
    let script = disarm_script(&arm.dir, &arm.lock);
    let reason = format!("a fresh SSH connection failed after the change ({first_error})");
    report.notes.push(format!(
        "{reason}; waiting for the node to revert it (armed for {}s)",
        arm.seconds
    ));
    let fires = armed_at + Duration::from_secs(u64::from(arm.seconds) + 3);
    if !sleep_until(fires, cancel) {
        return Err((
            Status::Interrupted,
            format!("{reason}; interrupted while waiting: the node reverts by itself"),
        ));
    }
    let mut last = first_error;
    for _ in 0..8 {
        match t.run_fresh(&script) {
            Ok(out) => match parse_disarm(&String::from_utf8_lossy(&out.stdout)) {
                Confirmed::Reverted(at) => {
                    return Err((
                        Status::Reverted,
                        format!(
                            "{reason}; the node restored its old files and re-ran their handlers \
                             at {at}, and is reachable again"
                        ),
                    ))
                }
                Confirmed::Disarmed => {
                    report.notes.push(format!(
                        "confirmed late over a fresh connection after: {reason}"
                    ));
                    return Ok(());
                }
                Confirmed::Firing => last = "the revert is still running".into(),
                Confirmed::Unknown => {
                    return Err((
                        Status::Failed,
                        format!("{reason}; the node is reachable but has no record of the revert"),
                    ))
                }
            },
            Err(e) => last = e.message,
        }
        if !sleep_until(Instant::now() + Duration::from_secs(2), cancel) {
            break;
        }
    }
    Err((
        Status::Failed,
        format!("{reason}; still unreachable after its revert should have fired: {last}"),
    ))
}

/// Sleep until `end` in small steps; false when interrupted.
fn sleep_until(end: Instant, cancel: &AtomicBool) -> bool {
    while Instant::now() < end {
        if cancel.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100).min(end - Instant::now()));
    }
    true
}
