//! The handler round trip: each planned handler once, in step order, with
//! the exact command the plan carries. What fails stays owed on the node
//! (`node_state::OWED_FILE`); the rest is done. The functions are
//! `handlers.sh`; this file builds the `main` that calls them and parses
//! what they print.

use super::confirm::{arm_lines, Arm};
use super::machines::same_machine;
use super::output::{locked, summarize};
pub use super::shlib::LockRef;
use super::shlib::LIB;
use crate::facts::Facts;
use crate::plan::NodePlan;
use crate::transport::protocol::{messages, Message};
use crate::transport::shell_quote;

/// The handler script for this plan; an error when a planned handler has no
/// command on this node. With `arm`, a revert is armed before any handler
/// runs (commit-confirm, see `confirm.rs`).
pub fn handler_script(
    plan: &NodePlan,
    facts: &Facts,
    owed_file: &str,
    arm: Option<&Arm>,
    lock: &LockRef,
) -> Result<String, String> {
    let session_if = facts.session_iface.as_deref().unwrap_or("");
    let mut s = format!(
        "session_if={}\npf={}\n{}fail=0\n{LIB}main() {{\n  exec </dev/null\n  lock || exit 1\n",
        shell_quote(session_if),
        shell_quote(owed_file),
        lock.assignments(),
    );
    if let Some(arm) = arm {
        s.push_str(&arm_lines(arm, plan, session_if));
    }
    let mut funcs = String::new();
    for (n, h) in plan.handlers.iter().enumerate() {
        let body = h.run.command.as_ref().map_err(|e| e.clone())?;
        funcs.push_str(&format!("h{n}() {{\n  {body}\n}}\n"));
        s.push_str(&format!("  run {} h{n}\n", shell_quote(h.run.step)));
    }
    // What failed stays owed; the rest is done. An armed change keeps the
    // lock until it is confirmed or reverted.
    s.push_str(
        "  if [ -n \"$left\" ]; then printf '%s\\n' $left >\"$pf\"; else rm -f \"$pf\"; fi\n",
    );
    if arm.is_none() {
        s.push_str("  unlock\n");
    }
    s.push_str("  echo @@done\n}\n");
    s.push_str(&funcs);
    // fd 3: notes go straight to the output, not into a handler's captured text.
    s.push_str("main 3>&1\n");
    Ok(s)
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct HandlerResult {
    /// A revert was armed before the handlers ran.
    pub armed: bool,
    pub errors: Vec<String>,
    pub ok: Vec<String>,
    pub failed: Vec<String>,
    pub notes: Vec<String>,
    pub done: bool,
}

pub fn parse_handlers(text: &str) -> HandlerResult {
    let mut r = HandlerResult::default();
    for Message { key, rest, detail } in messages(text) {
        match key {
            "@@ok" => r.ok.push(rest.to_string()),
            "@@failed" => r.failed.push(format!(
                "handler of step {rest} failed: {}",
                summarize(&detail[detail.len().saturating_sub(3)..])
            )),
            "@@note" => r.notes.push(rest.to_string()),
            "@@armed" => r.armed = true,
            "@@locked" => r.errors.push(locked(rest)),
            "@@samemachine" => r.errors.push(same_machine(rest, "its apply lock says so")),
            "@@error" => r.errors.push(rest.to_string()),
            "@@done" => r.done = true,
            _ => {}
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::HandlerRun;
    use crate::plan::PlannedHandler;
    use crate::transport::{Local, Transport};

    fn lock(dir: &tempfile::TempDir) -> LockRef {
        LockRef {
            dir: dir.path().join("state/lock").to_str().unwrap().to_string(),
            run_id: "RUN".into(),
            lease: 600,
            node: "head".into(),
        }
    }

    fn handler(step: &'static str, command: &str) -> PlannedHandler {
        PlannedHandler {
            run: HandlerRun {
                step,
                label: step.to_string(),
                command: Ok(command.to_string()),
                tools: vec![],
                can_cut_path: false,
            },
            owed: false,
        }
    }

    /// The handler script for real, with the local `sh`: a failing handler
    /// stays owed, the others are done, the session's interface is never
    /// bounced, and a value with shell syntax in it is only ever data.
    #[test]
    fn the_handler_script_runs_each_handler_and_keeps_failures_owed() {
        let dir = tempfile::tempdir().unwrap();
        let owed = dir.path().join("owed file");
        let plan = NodePlan {
            handlers: vec![
                handler("one", "true"),
                handler("two", "echo broken >&2; false"),
                handler("three", "ifup_safe 'eth0'"),
            ],
            ..Default::default()
        };
        let mut facts = Facts::assumed();
        facts.session_iface = Some("eth0".into());
        let script =
            handler_script(&plan, &facts, owed.to_str().unwrap(), None, &lock(&dir)).unwrap();
        let out = Local::default().run(&script).unwrap();
        let r = parse_handlers(&String::from_utf8_lossy(&out.stdout));
        assert!(r.done, "{r:?}");
        assert_eq!(r.ok, ["one", "three"]);
        assert_eq!(r.failed, ["handler of step two failed: broken"]);
        assert!(
            r.notes[0].starts_with("eth0 carries this SSH session"),
            "{r:?}"
        );
        assert_eq!(std::fs::read_to_string(&owed).unwrap(), "two\n");

        // Only harmless handlers here: never bounce this machine's interfaces.
        let plan = NodePlan {
            handlers: vec![handler("one", "true")],
            ..Default::default()
        };
        facts.session_iface = Some("$(touch pwned)'".into());
        let script =
            handler_script(&plan, &facts, owed.to_str().unwrap(), None, &lock(&dir)).unwrap();
        let out = Local::default().run(&script).unwrap();
        assert!(parse_handlers(&String::from_utf8_lossy(&out.stdout)).done);
        assert!(!std::path::Path::new("pwned").exists());
    }

    /// A handler this node cannot run (no init system) is an error, not a
    /// script that fails later.
    #[test]
    fn a_handler_without_a_command_is_an_error() {
        let mut h = handler("x", "true");
        h.run.command = Err("no init system".into());
        let plan = NodePlan {
            handlers: vec![h],
            ..Default::default()
        };
        assert_eq!(
            handler_script(
                &plan,
                &Facts::assumed(),
                "/nonexistent",
                None,
                &lock(&tempfile::tempdir().unwrap())
            )
            .unwrap_err(),
            "no init system"
        );
    }
}
