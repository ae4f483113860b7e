//! desired (render) vs observed (facts) -> what to change on one node, with a
//! unified diff per file and the handlers the changed steps need. Pure: no I/O.
//! `diff`/`apply --dry-run` print a plan and stop; apply executes it.

use std::collections::BTreeMap;

use crate::render::{merge_block, RenderedFile};
use crate::steps::{self, Handler, Manage};

/// What a node has at one managed path (from the facts probe).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// None: the file does not exist.
    pub content: Option<String>,
    pub mode: Option<u32>,
    pub owner: Option<String>,
    pub group: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    /// Only mode or owner differ.
    Fix,
    Unchanged,
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
    /// Unified diff (empty when the content is unchanged).
    pub diff: String,
}

#[derive(Debug, Clone, Default)]
pub struct NodePlan {
    pub changes: Vec<FileChange>,
    /// Handlers of the steps with a change, in step order, each once.
    pub handlers: Vec<(&'static str, Handler)>,
    /// Steps whose handler an earlier apply wrote files for but did not
    /// finish (interrupted, connection lost, handler failed): run again even
    /// though the files are in sync.
    pub owed: Vec<&'static str>,
}

impl NodePlan {
    /// Add the handlers an earlier run left owing (the node's pending list),
    /// for the steps this node has, in step order.
    pub fn owe(&mut self, pending: &[String]) {
        let mine: Vec<&'static str> = self.changes.iter().map(|c| c.step).collect();
        let mut handlers = Vec::new();
        for step in steps::STEPS {
            let Some(h) = step.handler else { continue };
            let changed = self.handlers.iter().any(|(s, _)| *s == step.id);
            let owed = !changed && mine.contains(&step.id) && pending.iter().any(|p| p == step.id);
            if owed {
                self.owed.push(step.id);
            }
            if changed || owed {
                handlers.push((step.id, h));
            }
        }
        self.handlers = handlers;
    }

    /// Nothing to write and no handler to run.
    pub fn is_noop(&self) -> bool {
        self.pending() == 0 && self.handlers.is_empty()
    }

    pub fn pending(&self) -> usize {
        self.changes
            .iter()
            .filter(|c| c.action != Action::Unchanged)
            .count()
    }
}

/// A managed file that cannot be planned safely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    pub path: String,
    pub message: String,
}

/// Compare what the node should have with what it has.
pub fn plan_node(
    desired: &[RenderedFile],
    observed: &BTreeMap<String, Observed>,
) -> Result<NodePlan, PlanError> {
    let mut plan = NodePlan::default();
    let none = Observed::default();
    for f in desired {
        let obs = observed.get(f.path).unwrap_or(&none);
        let old = obs.content.as_deref();
        let new = match f.manage {
            Manage::Whole => f.content.clone(),
            Manage::Block => merge_block(old.unwrap_or(""), &f.content).map_err(|e| PlanError {
                path: f.path.to_string(),
                message: format!(
                    "{}; fix the markers by hand (clusterctl will not guess)",
                    e.0
                ),
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
        let diff = if action == Action::Unchanged || action == Action::Fix {
            String::new()
        } else {
            unified_diff(f.path, old.unwrap_or(""), &new, old.is_none())
        };
        let mode = match (f.manage, obs.mode) {
            (Manage::Block, Some(m)) => m,
            _ => f.mode,
        };
        let (owner, group) = match (f.manage, &obs.owner, &obs.group) {
            (Manage::Block, Some(o), Some(g)) => (o.clone(), g.clone()),
            _ => (f.owner.to_string(), f.group.to_string()),
        };
        plan.changes.push(FileChange {
            step: f.step,
            path: f.path,
            action,
            content: new,
            mode,
            owner,
            group,
            diff,
        });
    }
    for step in steps::STEPS {
        let changed = plan
            .changes
            .iter()
            .any(|c| c.step == step.id && matches!(c.action, Action::Create | Action::Update));
        if let (true, Some(h)) = (changed, step.handler) {
            plan.handlers.push((step.id, h));
        }
    }
    Ok(plan)
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
    use crate::render::wrap_block;

    fn file(step: &'static str, path: &'static str, manage: Manage, content: &str) -> RenderedFile {
        RenderedFile {
            step,
            path,
            mode: 0o644,
            owner: "root",
            group: "root",
            manage,
            content: content.into(),
        }
    }

    fn have(path: &str, content: &str) -> (String, Observed) {
        (
            path.into(),
            Observed {
                content: Some(content.into()),
                mode: Some(0o644),
                owner: Some("root".into()),
                group: Some("root".into()),
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
        let plan = plan_node(&desired, &BTreeMap::new()).unwrap();
        assert_eq!(plan.changes[0].action, Action::Create);
        assert!(plan.changes[0]
            .diff
            .starts_with("--- /dev/null\n+++ b/etc/dnsmasq.d/clusterctl.conf\n"));
        assert_eq!(
            plan.handlers,
            [("head-dnsmasq", Handler::Restart("dnsmasq"))]
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
        let plan = plan_node(&desired, &observed).unwrap();
        assert_eq!(plan.pending(), 0);
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
        let plan = plan_node(&desired, &observed).unwrap();
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
        assert_eq!(plan_node(&desired, &again).unwrap().pending(), 0);
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
        let err = plan_node(&desired, &observed).unwrap_err();
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
        let plan = plan_node(&desired, &observed).unwrap();
        assert_eq!(plan.changes[0].action, Action::Fix);
        assert!(plan.handlers.is_empty());
    }
}
