//! desired (render, with the facts) vs observed (facts) -> what to change on
//! one node: every file with its action and unified diff, and the handlers
//! that will run (those of steps with a changed file, and those an earlier
//! run left owed), each with its exact command. Pure: no I/O.
//! `diff`/`apply --dry-run` print a plan and stop; the engine executes it.

mod accounts;

pub use accounts::{plan_accounts, AccountChange, Home, HomeShare, SystemAccount, LOCKED_EXPIRY};

use crate::block::merge_block;
use crate::catalog::{Manage, Validator};
use crate::desired::{Desired, HandlerRun, RenderedFile};
use crate::facts::{Facts, Observed};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    /// Only mode or owner differ.
    Fix,
    Unchanged,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Fix => "fix",
            Action::Unchanged => "unchanged",
        }
    }

    /// The file's content changes (a handler is due).
    pub fn writes_content(self) -> bool {
        matches!(self, Action::Create | Action::Update)
    }
}

#[derive(Debug, Clone)]
pub struct FileChange {
    pub step: &'static str,
    pub path: &'static str,
    pub action: Action,
    /// The complete file to write (for a block file: the user's lines plus the block).
    pub content: String,
    pub mode: u32,
    /// Owner and group to write (a block file keeps the user's).
    pub owner: String,
    pub group: String,
    /// What checks the candidate before it replaces the old file.
    pub validator: Option<Validator>,
    /// What the probe read there (None: nothing): the write refuses to
    /// replace a file that changed since.
    pub expected: Option<String>,
    /// Unified diff (empty when the content is unchanged).
    pub diff: String,
}

/// A handler the plan runs.
#[derive(Debug, Clone)]
pub struct PlannedHandler {
    pub run: HandlerRun,
    /// An earlier apply wrote this step's files but did not finish its
    /// handler (interrupted, connection lost, handler failed): it runs
    /// again even though the files are in sync.
    pub owed: bool,
}

#[derive(Debug, Clone, Default)]
pub struct NodePlan {
    /// Every desired file, changed or not, in step order.
    pub changes: Vec<FileChange>,
    /// In step order, each step once.
    pub handlers: Vec<PlannedHandler>,
    /// Packages to install first (those the steps need that the node lacks).
    pub install: Vec<&'static str>,
    /// How the desired state was decided, for the user (see `Desired::notes`).
    pub notes: Vec<String>,
    /// Accounts to create, update or lock (the cluster's users).
    pub accounts: Vec<AccountChange>,
}

impl NodePlan {
    /// Nothing to write and no handler to run.
    pub fn is_noop(&self) -> bool {
        self.file_changes() == 0
            && self.handlers.is_empty()
            && self.install.is_empty()
            && self.accounts.is_empty()
    }

    /// Files to create, update or fix.
    pub fn file_changes(&self) -> usize {
        self.changes
            .iter()
            .filter(|c| c.action != Action::Unchanged)
            .count()
    }

    /// Handlers owed by an earlier run.
    pub fn owed(&self) -> usize {
        self.handlers.iter().filter(|h| h.owed).count()
    }
}

/// A managed file that cannot be planned safely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    pub path: String,
    pub message: String,
}

/// Compare what the node should have with what it has.
pub fn compare(desired: &Desired, facts: &Facts) -> Result<NodePlan, PlanError> {
    let mut plan = NodePlan::default();
    let none = Observed::default();
    for f in &desired.files {
        let obs = facts.files.get(f.path).unwrap_or(&none);
        plan.changes.push(plan_file(f, obs)?);
    }
    plan.notes = desired.notes.clone();
    plan.accounts = plan_accounts(
        &desired.users,
        &desired.system_accounts,
        desired.homes,
        &facts.accounts,
    )
    .map_err(|message| PlanError {
        path: "users".to_string(),
        message,
    })?;
    plan.install = desired
        .packages
        .iter()
        .filter(|p| !facts.packages.contains(**p))
        .copied()
        .collect();
    for h in &desired.handlers {
        let changed = plan
            .changes
            .iter()
            .any(|c| c.step == h.step && c.action.writes_content());
        let owed = !changed && facts.owed.iter().any(|p| p == h.step);
        if changed || owed {
            plan.handlers.push(PlannedHandler {
                run: h.clone(),
                owed,
            });
        }
    }
    Ok(plan)
}

fn plan_file(f: &RenderedFile, obs: &Observed) -> Result<FileChange, PlanError> {
    let fail = |message: String| PlanError {
        path: f.path.to_string(),
        message,
    };
    if let Some(problem) = &obs.problem {
        return Err(fail(problem.clone()));
    }
    let old = obs.content.as_deref();
    let new = match f.manage {
        Manage::Whole => f.content.clone(),
        Manage::Block => merge_block(old.unwrap_or(""), &f.content).map_err(|e| {
            fail(format!(
                "{}; fix the markers by hand (clusterctl will not guess)",
                e.0
            ))
        })?,
    };
    let owner_ok = obs.owner.as_deref().is_none_or(|o| o == f.owner)
        && obs.group.as_deref().is_none_or(|g| g == f.group);
    let action = match old {
        None => Action::Create,
        Some(o) if o != new => Action::Update,
        // Block files keep the user's mode; whole files get ours.
        Some(_) if f.manage == Manage::Whole && (obs.mode != Some(f.mode) || !owner_ok) => {
            Action::Fix
        }
        Some(_) => Action::Unchanged,
    };
    let diff = if action.writes_content() && f.secret {
        format!("{} (secret: contents not shown)\n", f.path)
    } else if action.writes_content() {
        unified_diff(f.path, old.unwrap_or(""), &new, old.is_none())
    } else {
        String::new()
    };
    let mode = match (f.manage, obs.mode) {
        (Manage::Block, Some(m)) => m,
        _ => f.mode,
    };
    let (owner, group) = match (f.manage, &obs.owner, &obs.group) {
        (Manage::Block, Some(o), Some(g)) => (o.clone(), g.clone()),
        _ => (f.owner.to_string(), f.group.to_string()),
    };
    Ok(FileChange {
        step: f.step,
        path: f.path,
        action,
        content: new,
        mode,
        owner,
        group,
        validator: f.validator,
        expected: obs.content.clone(),
        diff,
    })
}

/// A unified diff with `a/PATH` / `b/PATH` headers (`/dev/null` for a new file).
pub fn unified_diff(path: &str, old: &str, new: &str, created: bool) -> String {
    let a = if created {
        "/dev/null".to_string()
    } else {
        format!("a{path}")
    };
    let b = format!("b{path}");
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&a, &b)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::wrap_block;
    use std::collections::BTreeMap;

    fn file(step: &'static str, path: &'static str, manage: Manage, content: &str) -> RenderedFile {
        RenderedFile {
            step,
            path,
            mode: 0o644,
            owner: "root",
            group: "root",
            manage,
            validator: None,
            content: content.into(),
            secret: false,
        }
    }

    /// Plan these files (dnsmasq's step has its restart handler) against
    /// these observed files.
    fn plan_of<const N: usize>(
        files: [RenderedFile; N],
        observed: BTreeMap<String, Observed>,
    ) -> Result<NodePlan, PlanError> {
        let handlers = files
            .iter()
            .filter(|f| f.step == "head-dnsmasq")
            .map(|f| HandlerRun {
                step: f.step,
                label: "restart dnsmasq".into(),
                command: Ok("systemctl restart dnsmasq".into()),
                tools: vec![],
                can_cut_path: false,
            })
            .take(1)
            .collect();
        let desired = Desired {
            files: files.to_vec(),
            handlers,
            packages: vec![],
            notes: vec![],
            users: vec![],
            homes: Default::default(),
            system_accounts: vec![],
        };
        let mut facts = Facts::assumed();
        facts.files = observed;
        compare(&desired, &facts)
    }

    fn have(path: &str, content: &str) -> (String, Observed) {
        (
            path.into(),
            Observed {
                content: Some(content.into()),
                mode: Some(0o644),
                owner: Some("root".into()),
                group: Some("root".into()),
                problem: None,
            },
        )
    }

    #[test]
    fn new_file_is_created_and_its_handler_runs_once() {
        let desired = [file(
            "head-dnsmasq",
            "/etc/dnsmasq.d/clusterctl.conf",
            Manage::Whole,
            "a\n",
        )];
        let plan = plan_of(desired, BTreeMap::new()).unwrap();
        assert_eq!(plan.changes[0].action, Action::Create);
        assert!(plan.changes[0]
            .diff
            .starts_with("--- /dev/null\n+++ b/etc/dnsmasq.d/clusterctl.conf\n"));
        let steps: Vec<_> = plan.handlers.iter().map(|h| (h.run.step, h.owed)).collect();
        assert_eq!(steps, [("head-dnsmasq", false)]);
    }

    /// A private key's old and new contents never reach a diff.
    #[test]
    fn a_secret_file_diff_is_masked() {
        let f = RenderedFile {
            secret: true,
            ..file(
                "worker-cluster-key",
                "/root/.ssh/id_clusterctl",
                Manage::Whole,
                "NEW-KEY\n",
            )
        };
        let observed = BTreeMap::from([have("/root/.ssh/id_clusterctl", "OLD-KEY\n")]);
        let plan = plan_of([f], observed).unwrap();
        assert_eq!(plan.changes[0].action, Action::Update);
        assert_eq!(
            plan.changes[0].diff,
            "/root/.ssh/id_clusterctl (secret: contents not shown)\n"
        );
    }

    #[test]
    fn same_content_is_a_no_op_without_handlers() {
        let desired = [file(
            "head-dnsmasq",
            "/etc/dnsmasq.d/clusterctl.conf",
            Manage::Whole,
            "a\n",
        )];
        let observed = BTreeMap::from([have("/etc/dnsmasq.d/clusterctl.conf", "a\n")]);
        let plan = plan_of(desired, observed).unwrap();
        assert_eq!(plan.file_changes(), 0);
        assert!(plan.handlers.is_empty());
    }

    #[test]
    fn block_file_keeps_user_lines_and_diffs_only_the_block() {
        let user = "127.0.0.1 localhost\n192.168.1.9 printer\n";
        let desired = [file(
            "head-hosts",
            "/etc/hosts",
            Manage::Block,
            &wrap_block("10.0.0.1\thead\n"),
        )];
        let observed = BTreeMap::from([have("/etc/hosts", user)]);
        let plan = plan_of(desired.clone(), observed).unwrap();
        let c = &plan.changes[0];
        assert_eq!(c.action, Action::Update);
        assert!(c.content.starts_with(user));
        assert!(
            c.diff
                .lines()
                .filter(|l| l.starts_with('-') && !l.starts_with("---"))
                .count()
                == 0,
            "{}",
            c.diff
        );
        // Applying the plan's content makes the next plan a no-op.
        let again = BTreeMap::from([have("/etc/hosts", &c.content)]);
        assert_eq!(plan_of(desired, again).unwrap().file_changes(), 0);
    }

    #[test]
    fn broken_markers_are_an_error_not_a_guess() {
        let desired = [file(
            "head-hosts",
            "/etc/hosts",
            Manage::Block,
            &wrap_block("x\n"),
        )];
        let observed = BTreeMap::from([have("/etc/hosts", "# BEGIN clusterctl\nstuff\n")]);
        let err = plan_of(desired, observed).unwrap_err();
        assert_eq!(err.path, "/etc/hosts");
    }

    #[test]
    fn wrong_mode_is_fixed_without_a_handler() {
        let desired = [file(
            "head-dnsmasq",
            "/etc/dnsmasq.d/clusterctl.conf",
            Manage::Whole,
            "a\n",
        )];
        let mut observed = BTreeMap::from([have("/etc/dnsmasq.d/clusterctl.conf", "a\n")]);
        observed
            .get_mut("/etc/dnsmasq.d/clusterctl.conf")
            .unwrap()
            .mode = Some(0o666);
        let plan = plan_of(desired, observed).unwrap();
        assert_eq!(plan.changes[0].action, Action::Fix);
        assert!(plan.handlers.is_empty());
    }
}
