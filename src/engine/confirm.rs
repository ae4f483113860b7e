//! Never cut the controller's path to a node, part two: commit-confirm.
//! Before a firewall or interface change is activated, the handler round
//! trip arms a revert on the node itself: a script, started outside the SSH
//! session (systemd-run, else setsid), that sleeps `--confirm-timeout`
//! seconds and then, unless the controller has confirmed, restores every
//! file this run replaced (or removes those it created) and re-runs their
//! handlers. The controller confirms over a *fresh* SSH connection, which is
//! the proof that new connections still get through. The `armed` flag is
//! removed by the confirmation or renamed by the revert: whichever comes
//! first wins, atomically, and the other side sees it. The revert holds no
//! descriptor of the session (a held stdout would keep the round trip open
//! until the revert ends).

use base64::Engine;

use super::shlib::{LockRef, LIB as HANDLERS_LIB, LOCK};
use crate::plan::NodePlan;
use crate::transport::{protocol, shell_quote};

/// What the revert needs to know.
pub struct Arm<'a> {
    pub seconds: u32,
    /// This run's confirm directory on the node.
    pub dir: String,
    /// This run's backup directory on the node.
    pub backup_dir: String,
    /// The run id (names the systemd unit).
    pub run_id: &'a str,
    /// The node's apply lock, held until the change is confirmed or reverted.
    pub lock: LockRef,
}

/// The revert script (`revert.sh`): wait, then (if still armed) restore
/// and re-run.
fn revert_script(arm: &Arm, plan: &NodePlan, session_if: &str) -> String {
    let mut s = format!(
        "d={}\nbk={}\nsession_if={}\npf=/dev/null\n{}seconds={}\nset --",
        shell_quote(&arm.dir),
        shell_quote(&arm.backup_dir),
        shell_quote(session_if),
        arm.lock.assignments(),
        arm.seconds,
    );
    for c in plan.changes.iter().filter(|c| c.action.writes_content()) {
        s.push(' ');
        s.push_str(&shell_quote(c.path));
    }
    s.push('\n');
    s.push_str(HANDLERS_LIB);
    let mut calls = String::new();
    for (n, h) in plan.handlers.iter().enumerate() {
        if let Ok(cmd) = &h.run.command {
            s.push_str(&format!("r{n}() {{\n  {cmd}\n}}\n"));
            calls.push_str(&format!(
                "  run {} r{n} 3>/dev/null\n",
                shell_quote(h.run.step)
            ));
        }
    }
    s.push_str(&format!("revert_handlers() {{\n  :\n{calls}}}\n"));
    s.push_str(include_str!("revert.sh"));
    s
}

/// Lines for the handler script's `main`, before any handler runs: write
/// the revert script and start it outside this session (`arm.sh`). Prints
/// `@@armed`, or `@@error` and stops the script (no handler runs unarmed).
pub fn arm_lines(arm: &Arm, plan: &NodePlan, session_if: &str) -> String {
    let script =
        base64::engine::general_purpose::STANDARD.encode(revert_script(arm, plan, session_if));
    let mut s = String::from(include_str!("arm.sh"));
    s.push_str(&format!(
        "  arm {} {} <<'@@CLUSTERCTL-EOF@@' || exit 1\n",
        shell_quote(&arm.dir),
        shell_quote(&format!("clusterctl-revert-{}", arm.run_id))
    ));
    for chunk in script.as_bytes().chunks(76) {
        s.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        s.push('\n');
    }
    s.push_str("@@CLUSTERCTL-EOF@@\n");
    s
}

/// Sent over a fresh connection (`disarm.sh`): confirm (disarm, and
/// release the lock), or learn that the revert already fired.
pub fn disarm_script(dir: &str, lock: &LockRef) -> String {
    format!(
        "d={}\n{}{LOCK}{}",
        shell_quote(dir),
        lock.assignments(),
        include_str!("disarm.sh")
    )
}

/// What the node said to the confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmed {
    /// Confirmed in time: the change stays.
    Disarmed,
    /// The revert fired first (at the given time, UTC).
    Reverted(String),
    /// The revert is running right now.
    Firing,
    /// No such arm (never armed, or its directory is gone).
    Unknown,
}

pub fn parse_disarm(text: &str) -> Confirmed {
    for (key, rest) in protocol::Lines::new(text) {
        match key {
            "@@disarmed" => return Confirmed::Disarmed,
            "@@reverted" => return Confirmed::Reverted(rest.trim().to_string()),
            "@@firing" => return Confirmed::Firing,
            _ => {}
        }
    }
    Confirmed::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::HandlerRun;
    use crate::plan::{Action, FileChange, PlannedHandler};
    use crate::transport::{Local, Transport};

    fn plan(path: &str, marker: &str) -> NodePlan {
        NodePlan {
            changes: vec![FileChange {
                step: "s",
                path: Box::leak(path.to_string().into_boxed_str()),
                action: Action::Update,
                content: String::new(),
                mode: 0o644,
                owner: String::new(),
                group: String::new(),
                validator: None,
                expected: None,
                diff: String::new(),
            }],
            handlers: vec![PlannedHandler {
                run: HandlerRun {
                    step: "s",
                    label: "touch".into(),
                    command: Ok(format!("touch {}", shell_quote(marker))),
                    tools: vec![],
                    can_cut_path: true,
                },
                owed: false,
            }],
            install: vec![],
            notes: vec![],
            accounts: vec![],
        }
    }

    /// An arm with its state under `d`.
    fn test_arm(d: &str, seconds: u32) -> Arm<'static> {
        Arm {
            seconds,
            dir: format!("{d}/confirm"),
            backup_dir: format!("{d}/bk"),
            run_id: "TEST",
            lock: LockRef {
                dir: format!("{d}/state/lock"),
                run_id: "TEST".into(),
                lease: 600,
                node: "head".into(),
            },
        }
    }

    /// Arm for real with the local `sh`, let the revert fire: the old file
    /// comes back from the backup, the handler runs again, and a late
    /// confirmation learns that it was reverted.
    #[test]
    fn an_unconfirmed_change_is_reverted_and_a_late_confirmation_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let file = format!("{d}/rules");
        std::fs::write(&file, "new\n").unwrap();
        std::fs::create_dir_all(format!("{d}/bk{d}")).unwrap();
        std::fs::write(format!("{d}/bk{file}"), "old\n").unwrap();
        let marker = format!("{d}/handler ran");
        let p = plan(&file, &marker);
        let arm = test_arm(d, 1);
        let script = format!("main() {{\n{}}}\nmain\n", arm_lines(&arm, &p, ""));
        // Never systemd-run on the machine running the tests.
        let script = script.replace("[ -d /run/systemd/system ]", "false");
        let out = Local::default().run(&script).unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("@@armed"),
            "{out:?}"
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !std::path::Path::new(&format!("{d}/confirm/reverted")).exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "the revert never fired"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "old\n");
        assert!(std::path::Path::new(&marker).exists());
        let out = Local::default()
            .run(&disarm_script(&arm.dir, &arm.lock))
            .unwrap();
        assert!(matches!(
            parse_disarm(&String::from_utf8_lossy(&out.stdout)),
            Confirmed::Reverted(_)
        ));
    }

    /// Confirmed in time: nothing is restored, and the revert, when its
    /// time comes, does nothing.
    #[test]
    fn a_confirmed_change_stays() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let file = format!("{d}/rules");
        std::fs::write(&file, "new\n").unwrap();
        let marker = format!("{d}/handler ran");
        let p = plan(&file, &marker);
        let arm = test_arm(d, 3);
        // As in the handler script: fd 3 is the session's output.
        let script = format!("main() {{\n{}}}\nmain 3>&1\n", arm_lines(&arm, &p, ""))
            .replace("[ -d /run/systemd/system ]", "false");
        Local::default().run(&script).unwrap();
        // The round trip came back at once, not when the revert ended.
        assert!(std::path::Path::new(&format!("{d}/confirm/armed")).exists());
        let out = Local::default()
            .run(&disarm_script(&arm.dir, &arm.lock))
            .unwrap();
        assert_eq!(
            parse_disarm(&String::from_utf8_lossy(&out.stdout)),
            Confirmed::Disarmed
        );
        std::thread::sleep(std::time::Duration::from_millis(3500));
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "new\n");
        assert!(!std::path::Path::new(&marker).exists());
    }
}
