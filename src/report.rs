//! What a run reports, one type for `diff` and `apply` alike: per node its
//! status, the file changes (planned, or written), the handlers (planned,
//! or run) with their exact commands, notes, and round trips. The same
//! structure is printed as text (plan with unified diffs, progress lines,
//! recap) or as JSON (`--output json`; schema in ARCHITECTURE.md).

use serde::Serialize;

use crate::plan::{Action, NodePlan};

/// How a node stands after planning (`diff`) or applying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// In sync: nothing to write, no handler to run.
    Ok,
    /// `diff` only: changes are pending.
    Changes,
    /// `apply` only: files written and their handlers run, all successfully.
    Changed,
    /// Reached, but something failed (the reason is in `message`).
    Failed,
    /// Could not be reached at all.
    Unreachable,
    /// Not started, or stopped between round trips, because of Ctrl-C.
    Interrupted,
    /// `apply` only: a change cut the path to the node, and the node put its
    /// old files back (commit-confirm); `message` says why.
    Reverted,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Ok => "ok",
            Status::Changes => "changes",
            Status::Changed => "changed",
            Status::Failed => "failed",
            Status::Unreachable => "unreachable",
            Status::Interrupted => "interrupted",
            Status::Reverted => "reverted",
        })
    }
}

/// One file change, planned or made.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeReport {
    pub step: &'static str,
    pub path: &'static str,
    /// `create`, `update` or `fix` (mode/owner only)
    pub action: &'static str,
    pub mode: String,
    pub owner: String,
    pub group: String,
    /// Unified diff; empty for `fix`.
    pub diff: String,
}

/// One handler, planned or run.
#[derive(Debug, Clone, Serialize)]
pub struct HandlerReport {
    pub step: &'static str,
    /// What it does (`restart dnsmasq`).
    pub action: String,
    /// The exact command on this node (or why there is none).
    pub command: String,
    /// Owed by an earlier apply that did not finish it.
    pub owed: bool,
}

/// What happened, or would happen, on one node.
#[derive(Debug, Clone, Serialize)]
pub struct NodeReport {
    pub node: String,
    pub status: Status,
    /// `diff`: every pending change; `apply`: the changes made.
    pub changes: Vec<ChangeReport>,
    /// Managed files already in sync.
    pub in_sync: usize,
    /// `diff`: the packages apply would install first; `apply`: those it did.
    pub packages: Vec<String>,
    /// `diff`: the accounts that would change (`user: create alice
    /// (2001:2001, …)`); `apply`: those that did.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<String>,
    /// `diff`: the handlers that would run; `apply`: those that ran.
    pub handlers: Vec<HandlerReport>,
    /// Things the user should know that are not failures.
    pub notes: Vec<String>,
    /// Why the node failed, was unreachable or interrupted.
    pub message: Option<String>,
    pub round_trips: usize,
    /// Where this run's backups are on the node (when anything was replaced).
    pub backup_dir: Option<String>,
}

impl NodeReport {
    pub fn new(node: &str) -> Self {
        NodeReport {
            node: node.to_string(),
            status: Status::Ok,
            changes: Vec::new(),
            in_sync: 0,
            packages: Vec::new(),
            accounts: Vec::new(),
            handlers: Vec::new(),
            notes: Vec::new(),
            message: None,
            round_trips: 0,
            backup_dir: None,
        }
    }

    pub fn fail(mut self, status: Status, message: impl Into<String>) -> Self {
        self.status = status;
        self.message = Some(message.into());
        self
    }

    /// The plan as `diff` reports it.
    pub fn planned(mut self, plan: &NodePlan) -> Self {
        self.changes = changes(plan, |_| true);
        self.in_sync = plan.changes.len() - plan.file_changes();
        self.handlers = handlers(plan, |_| true);
        self.packages = plan.install.iter().map(|p| p.to_string()).collect();
        self.accounts = plan.accounts.iter().map(|a| a.describe()).collect();
        self.notes.extend(plan.notes.iter().cloned());
        if !plan.is_noop() {
            self.status = Status::Changes;
        }
        self
    }

    /// What apply did of the plan: the files written, the handlers that ran.
    pub fn made(&mut self, plan: &NodePlan, written: &[String], ran: &[String]) {
        self.in_sync = plan.changes.len() - plan.file_changes();
        self.changes = changes(plan, |p| written.iter().any(|w| w == p));
        self.handlers = handlers(plan, |step| ran.iter().any(|r| r == step));
    }
}

fn handlers(plan: &NodePlan, keep: impl Fn(&str) -> bool) -> Vec<HandlerReport> {
    plan.handlers
        .iter()
        .filter(|h| keep(h.run.step))
        .map(|h| HandlerReport {
            step: h.run.step,
            action: h.run.label.clone(),
            command: match &h.run.command {
                Ok(c) => c.clone(),
                Err(e) => format!("(none: {e})"),
            },
            owed: h.owed,
        })
        .collect()
}

fn changes(plan: &NodePlan, keep: impl Fn(&str) -> bool) -> Vec<ChangeReport> {
    plan.changes
        .iter()
        .filter(|c| c.action != Action::Unchanged && keep(c.path))
        .map(|c| ChangeReport {
            step: c.step,
            path: c.path,
            action: c.action.as_str(),
            mode: format!("{:04o}", c.mode),
            owner: c.owner.clone(),
            group: c.group.clone(),
            diff: c.diff.clone(),
        })
        .collect()
}

/// The whole run as JSON: `{"run_id": …, "nodes": [NodeReport…]}` (no
/// `run_id` for `diff`).
pub fn json(run_id: Option<&str>, nodes: &[NodeReport]) -> String {
    let mut v = serde_json::json!({ "nodes": nodes });
    if let Some(id) = run_id {
        v["run_id"] = serde_json::Value::from(id);
    }
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

fn trips(r: &NodeReport, verbose: u8) -> String {
    if verbose > 0 {
        format!(" ({} round trip(s))", r.round_trips)
    } else {
        String::new()
    }
}

/// `diff`: per node its changes with unified diffs, the handlers that would
/// run (with their commands at `-v`), and a count.
pub fn plan_text(nodes: &[NodeReport], verbose: u8) -> String {
    let mut text = String::new();
    for r in nodes {
        let name = &r.node;
        if matches!(r.status, Status::Failed | Status::Unreachable) {
            let message = r.message.as_deref().unwrap_or("");
            text.push_str(&format!("{name}: {}: {message}\n", r.status));
            continue;
        }
        for n in &r.notes {
            text.push_str(&format!("==> {name}: note: {n}\n"));
        }
        if !r.packages.is_empty() {
            text.push_str(&format!("==> {name}: install: {}\n", r.packages.join(" ")));
        }
        for a in &r.accounts {
            text.push_str(&format!("==> {name}: {a}\n"));
        }
        for c in &r.changes {
            if c.action == "fix" {
                text.push_str(&format!(
                    "==> {name}: {} (mode/owner to {} {}:{})\n",
                    c.path, c.mode, c.owner, c.group
                ));
            } else {
                let head = format!("==> {name}: {} ({})", c.path, c.action);
                text.push_str(&crate::style::bold(crate::style::Stream::Stdout, &head));
                text.push('\n');
                text.push_str(&crate::style::diff(&c.diff));
            }
        }
        for h in &r.handlers {
            let owed = if h.owed {
                ", owed by an earlier apply that did not finish"
            } else {
                ""
            };
            text.push_str(&format!(
                "==> {name}: would {} (step {}{owed})\n",
                h.action, h.step
            ));
            if verbose > 0 {
                text.push_str(&format!("    $ {}\n", h.command));
            }
        }
        text.push_str(&format!(
            "{name}: {} to change, {} in sync{}\n",
            r.changes.len(),
            r.in_sync,
            trips(r, verbose)
        ));
    }
    text
}

/// `apply`'s progress for one finished node: what it wrote and ran, notes,
/// and how it ended.
pub fn progress_text(r: &NodeReport, verbose: u8) -> String {
    let mut s = String::new();
    if !r.packages.is_empty() {
        s.push_str(&format!("{}: installed {}\n", r.node, r.packages.join(" ")));
    }
    for a in &r.accounts {
        s.push_str(&format!("{}: {a}\n", r.node));
    }
    for c in &r.changes {
        s.push_str(&format!("{}: wrote {}\n", r.node, c.path));
    }
    for h in &r.handlers {
        s.push_str(&format!("{}: ran handler of {}\n", r.node, h.step));
    }
    for n in &r.notes {
        s.push_str(&format!("{}: note: {n}\n", r.node));
    }
    s.push_str(&format!("{}: {}", r.node, r.status));
    if let Some(m) = &r.message {
        s.push_str(&format!(": {m}"));
    }
    s.push_str(&trips(r, verbose));
    s
}

/// `apply`'s recap: one line per node (status, what changed or why it
/// failed), then totals.
/// ` (PATH, PATH)`: exactly which files a node got, for the recap.
fn written(r: &NodeReport) -> String {
    if r.changes.is_empty() {
        return String::new();
    }
    let mut paths: Vec<&str> = r.changes.iter().map(|c| c.path).collect();
    paths.dedup();
    format!(" ({})", paths.join(", "))
}

pub fn recap_text(nodes: &[NodeReport], run_id: &str, verbose: u8) -> String {
    let width = nodes.iter().map(|r| r.node.len()).max().unwrap_or(4);
    let mut s = format!("recap (run {run_id}):\n");
    for r in nodes {
        let detail = match r.status {
            Status::Ok => "in sync".to_string(),
            Status::Changed => format!(
                "{}{}{} file(s) written{}, {} handler(s) run",
                match r.packages.len() {
                    0 => String::new(),
                    n => format!("{n} package(s) installed, "),
                },
                match r.accounts.len() {
                    0 => String::new(),
                    n => format!("{n} account(s) changed, "),
                },
                r.changes.len(),
                written(r),
                r.handlers.len()
            ),
            _ => r.message.clone().unwrap_or_default(),
        };
        s.push_str(&format!(
            "  {:width$}  {:<11}  {detail}{}\n",
            r.node,
            r.status.to_string(),
            trips(r, verbose)
        ));
    }
    let count = |st: Status| nodes.iter().filter(|r| r.status == st).count();
    let optional = |st: Status| match count(st) {
        0 => String::new(),
        n => format!(" {st}={n}"),
    };
    s.push_str(&format!(
        "ok={} changed={} failed={} unreachable={}{}{}\n",
        count(Status::Ok),
        count(Status::Changed),
        count(Status::Failed),
        count(Status::Unreachable),
        optional(Status::Reverted),
        optional(Status::Interrupted),
    ));
    if let Some(dir) = nodes.iter().find_map(|r| r.backup_dir.as_ref()) {
        s.push_str(&format!(
            "replaced files were backed up to {dir} on each node\n"
        ));
    }
    s
}
