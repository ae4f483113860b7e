//! The write round trip: every changed file staged as a temp file beside its
//! target with its final mode and owner, every candidate validated, the old
//! files backed up, the owed handlers recorded, then renamed into place. All
//! or nothing: a failed stage, validation or backup renames nothing. The
//! functions are `write.sh`; this file builds the `main` that calls them and
//! parses what they print.

use base64::Engine;

use super::machines::same_machine;
use super::output::{locked, stderr_tail, summarize};
use super::shlib::LockRef;
use crate::plan::{Action, FileChange, NodePlan};
use crate::transport::protocol::{messages, Message};
use crate::transport::{shell_quote, Transport};

/// Ends every heredoc; base64 output can never contain `@`.
const EOF_MARK: &str = "@@CLUSTERCTL-EOF@@";

const LIB: &str = concat!(include_str!("write.sh"), include_str!("lock.sh"));

/// Where the write round trip keeps its state on the node, and its lock.
#[derive(Debug, Clone)]
pub struct WriteCtx {
    pub backup_dir: String,
    pub owed_file: String,
    /// The node's apply lock, as this run takes it.
    pub lock: LockRef,
    /// Release the lock when the write is done (nothing follows that needs it).
    pub release: bool,
    /// A `pkg_install` function to run before anything is staged (the
    /// validators may come with the packages).
    pub install: Option<String>,
    /// The `sysaccounts` and `accounts` functions (`users.rs`): services'
    /// accounts before the install (their packages must find them made),
    /// people's after it and before anything is staged.
    pub accounts: Option<String>,
}

/// The write script for this plan.
pub fn write_script(plan: &NodePlan, ctx: &WriteCtx) -> String {
    let mut s = format!(
        "bk={}\npf={}\n{}{LIB}{}{}main() {{\nexec </dev/null\nlock || abort\n",
        shell_quote(&ctx.backup_dir),
        shell_quote(&ctx.owed_file),
        ctx.lock.assignments(),
        ctx.install.as_deref().unwrap_or(""),
        ctx.accounts.as_deref().unwrap_or(""),
    );
    // Nothing is staged over a file that changed since the probe read it.
    let b64 = base64::engine::general_purpose::STANDARD;
    for c in plan.changes.iter().filter(|c| c.action.writes_content()) {
        match &c.expected {
            Some(old) => {
                s.push_str(&format!(
                    "expect {} present <<'{EOF_MARK}'\n",
                    shell_quote(c.path)
                ));
                push_base64(&mut s, &b64.encode(old.as_bytes()));
            }
            None => s.push_str(&format!(
                "expect {} <<'{EOF_MARK}'\n{EOF_MARK}\n",
                shell_quote(c.path)
            )),
        }
    }
    s.push_str("[ \"$fail\" -eq 0 ] || abort\n");
    // Services' accounts before the packages that would make their own.
    if ctx.accounts.is_some() {
        s.push_str("sysaccounts\n[ \"$fail\" -eq 0 ] || abort\n");
    }
    if ctx.install.is_some() {
        s.push_str("pkg_install\n[ \"$fail\" -eq 0 ] || abort\n");
    }
    if ctx.accounts.is_some() {
        s.push_str("accounts\n[ \"$fail\" -eq 0 ] || abort\n");
    }
    let writes: Vec<(usize, &FileChange)> = plan
        .changes
        .iter()
        .filter(|c| c.action.writes_content())
        .enumerate()
        .collect();
    for (i, c) in &writes {
        stage(&mut s, *i, c);
    }
    s.push_str("[ \"$fail\" -eq 0 ] || abort\n");
    for (i, c) in &writes {
        if let Some(v) = c.validator {
            let cmd = v.command(&format!("t{i}"));
            s.push_str(&format!("check {} {cmd}\n", shell_quote(c.path)));
        }
    }
    s.push_str("[ \"$fail\" -eq 0 ] || abort\n");
    for (_, c) in &writes {
        s.push_str(&format!("backup {}\n", shell_quote(c.path)));
    }
    s.push_str("[ \"$fail\" -eq 0 ] || abort\n");
    let owed: Vec<String> = plan
        .handlers
        .iter()
        .map(|h| shell_quote(h.run.step))
        .collect();
    if !owed.is_empty() {
        s.push_str(&format!(
            "owe {}\n[ \"$fail\" -eq 0 ] || abort\n",
            owed.join(" ")
        ));
    }
    for (i, c) in &writes {
        s.push_str(&format!("commit {} \"$t{i}\"\n", shell_quote(c.path)));
    }
    for c in plan.changes.iter().filter(|c| c.action == Action::Fix) {
        s.push_str(&format!(
            "fix {} {:04o} {} {}\n",
            shell_quote(c.path),
            c.mode,
            shell_quote(&c.owner),
            shell_quote(&c.group)
        ));
    }
    if ctx.release {
        s.push_str("unlock\n");
    } else {
        // Held for the handler round trip that follows: 30 s from now if
        // this run's controller stops here.
        s.push_str("hold 30\n");
    }
    s.push_str("[ \"$fail\" -eq 0 ] || exit 1\necho @@done\n}\nmain\n");
    s
}

/// Base64 lines and the heredoc's end mark.
fn push_base64(s: &mut String, enc: &str) {
    for chunk in enc.as_bytes().chunks(76) {
        s.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        s.push('\n');
    }
    s.push_str(EOF_MARK);
    s.push('\n');
}

/// `stage` with the content base64-encoded in a heredoc; the temp path
/// goes to `$tI`.
fn stage(s: &mut String, i: usize, c: &FileChange) {
    s.push_str(&format!(
        "stage {} {:04o} {} {} <<'{EOF_MARK}' || true\n",
        shell_quote(c.path),
        c.mode,
        shell_quote(&c.owner),
        shell_quote(&c.group)
    ));
    push_base64(
        s,
        &base64::engine::general_purpose::STANDARD.encode(c.content.as_bytes()),
    );
    s.push_str(&format!("t{i}=$t\n"));
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct WriteResult {
    pub written: Vec<String>,
    pub installed: Vec<String>,
    /// `ACTION NAME` of each account changed (`users.sh`).
    pub accounts: Vec<String>,
    pub notes: Vec<String>,
    pub backed_up: bool,
    pub errors: Vec<String>,
    pub done: bool,
}

pub fn parse_write(text: &str) -> WriteResult {
    let mut r = WriteResult::default();
    for Message { key, rest, detail } in messages(text) {
        match key {
            "@@written" => r.written.push(rest.to_string()),
            "@@backup" => r.backed_up = true,
            "@@error" if detail.is_empty() => r.errors.push(rest.to_string()),
            "@@error" => r.errors.push(format!(
                "{rest}: {}",
                summarize(&detail[detail.len().saturating_sub(4)..])
            )),
            "@@account" => r.accounts.push(rest.to_string()),
            "@@invalid" => r.errors.push(format!(
                "{rest}: the new file failed validation, the old one is kept: {}",
                summarize(&detail[..detail.len().min(5)])
            )),
            "@@changed" => r.errors.push(format!(
                "{rest} changed on the node since clusterctl read it (an edit during this apply?); \
                 it was not overwritten; run apply again to see the new diff"
            )),
            "@@locked" => r.errors.push(locked(rest)),
            "@@samemachine" => r.errors.push(same_machine(rest, "its apply lock says so")),
            "@@installed" => r.installed = rest.split_whitespace().map(String::from).collect(),
            "@@install-failed" => r.errors.push(format!(
                "installing {rest} failed: {}",
                summarize(&detail[detail.len().saturating_sub(4)..])
            )),
            "@@note" => r.notes.push(rest.to_string()),
            "@@done" => r.done = true,
            _ => {}
        }
    }
    r
}

/// Run the write round trip. The paths written (also on failure: a failed
/// rename after others) and whether anything was backed up; on failure, why.
pub fn write_files(
    t: &dyn Transport,
    plan: &NodePlan,
    ctx: &WriteCtx,
) -> (WriteResult, Result<(), String>) {
    let out = match t.run(&write_script(plan, ctx)) {
        Ok(o) => o,
        Err(e) => {
            let msg = format!("connection lost while writing files: {e}; run apply again");
            return (WriteResult::default(), Err(msg));
        }
    };
    let w = parse_write(&String::from_utf8_lossy(&out.stdout));
    if w.done {
        return (w, Ok(()));
    }
    let mut msg = if w.errors.is_empty() {
        format!(
            "writing files failed (exit {}){}",
            out.status,
            stderr_tail(&out.stderr)
        )
    } else {
        w.errors.join("; ")
    };
    if w.written.is_empty() {
        msg.push_str("; no file was changed");
    }
    (w, Err(msg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Local;
    use std::path::Path;

    fn leak(s: String) -> &'static str {
        Box::leak(s.into_boxed_str())
    }

    fn change(step: &'static str, path: &str, action: Action, content: &str) -> FileChange {
        let (owner, group) = current_user();
        FileChange {
            step,
            path: leak(path.to_string()),
            action,
            content: content.to_string(),
            mode: 0o640,
            owner,
            group,
            validator: crate::catalog::STEPS
                .iter()
                .find(|s| s.id == step)
                .and_then(|s| s.validator),
            expected: std::fs::read_to_string(path).ok(),
            diff: String::new(),
        }
    }

    /// The write script for real, with the local `sh`, backups and the
    /// owed-handlers file under `d`.
    fn ctx(d: &str) -> WriteCtx {
        WriteCtx {
            backup_dir: format!("{d}/backups/RUN"),
            owed_file: format!("{d}/owed-handlers"),
            lock: LockRef {
                dir: format!("{d}/state/lock"),
                run_id: "RUN".into(),
                lease: 600,
                node: "head".into(),
            },
            release: true,
            install: None,
            accounts: None,
        }
    }

    fn run_locally(plan: &NodePlan, d: &str) -> WriteResult {
        let script = write_script(plan, &ctx(d));
        let out = Local::default().run(&script).unwrap();
        parse_write(&String::from_utf8_lossy(&out.stdout))
    }

    /// `{d}/a` holds "a"; the plan makes it "A".
    fn a_to_capital_a(d: &str) -> NodePlan {
        std::fs::write(format!("{d}/a"), "a\n").unwrap();
        NodePlan {
            changes: vec![change(
                "head-hosts",
                &format!("{d}/a"),
                Action::Update,
                "A\n",
            )],
            ..Default::default()
        }
    }

    fn current_user() -> (String, String) {
        let id = |f: &str| {
            let o = std::process::Command::new("id").arg(f).output().unwrap();
            String::from_utf8(o.stdout).unwrap().trim().to_string()
        };
        (id("-un"), id("-gn"))
    }

    /// The write script for real, with the local `sh`: files replaced
    /// atomically with their mode, old ones backed up, no temp file left.
    #[test]
    fn the_write_script_replaces_backs_up_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        std::fs::write(format!("{d}/old"), "old content\n").unwrap();
        let plan = NodePlan {
            changes: vec![
                change(
                    "head-hosts",
                    &format!("{d}/old"),
                    Action::Update,
                    "new content\n",
                ),
                change(
                    "head-hosts",
                    &format!("{d}/sub dir/new"),
                    Action::Create,
                    "it's $(new)\n",
                ),
            ],
            ..Default::default()
        };
        let w = run_locally(&plan, d);
        assert!(w.done, "{w:?}");
        assert_eq!(w.written.len(), 2);
        assert_eq!(
            std::fs::read_to_string(format!("{d}/old")).unwrap(),
            "new content\n"
        );
        assert_eq!(
            std::fs::read_to_string(format!("{d}/sub dir/new")).unwrap(),
            "it's $(new)\n"
        );
        assert_eq!(
            std::fs::read_to_string(format!("{d}/backups/RUN{d}/old")).unwrap(),
            "old content\n"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(format!("{d}/old"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o640);
        let leftovers: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".clusterctl."))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    /// A candidate that fails its validator replaces nothing, not even the
    /// files that were fine, and leaves no temp file behind.
    #[test]
    fn a_bad_candidate_replaces_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        std::fs::write(format!("{d}/a"), "a\n").unwrap();
        std::fs::write(format!("{d}/dnsmasq.conf"), "port=0\n").unwrap();
        let plan = NodePlan {
            changes: vec![
                change("head-hosts", &format!("{d}/a"), Action::Update, "A\n"),
                change(
                    "head-dnsmasq",
                    &format!("{d}/dnsmasq.conf"),
                    Action::Update,
                    "no-such-option=1\n",
                ),
            ],
            ..Default::default()
        };
        let w = run_locally(&plan, d);
        assert!(!w.done && w.written.is_empty(), "{w:?}");
        assert!(
            w.errors[0].contains("dnsmasq.conf: the new file failed validation"),
            "{w:?}"
        );
        assert_eq!(std::fs::read_to_string(format!("{d}/a")).unwrap(), "a\n");
        assert_eq!(
            std::fs::read_to_string(format!("{d}/dnsmasq.conf")).unwrap(),
            "port=0\n"
        );
        // The two files and clusterctl's state directory, no temp file.
        assert_eq!(
            std::fs::read_dir(d).unwrap().count(),
            3,
            "temp files left behind"
        );
    }

    /// A user's edit made between the probe and the write is never
    /// overwritten: the write refuses, and replaces nothing.
    #[test]
    fn a_file_edited_since_the_probe_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        std::fs::write(format!("{d}/hosts"), "as probed\n").unwrap();
        let plan = NodePlan {
            changes: vec![
                change(
                    "head-hosts",
                    &format!("{d}/hosts"),
                    Action::Update,
                    "ours\n",
                ),
                change("head-hosts", &format!("{d}/new"), Action::Create, "new\n"),
            ],
            ..Default::default()
        };
        std::fs::write(format!("{d}/hosts"), "the user's edit\n").unwrap();
        std::fs::write(format!("{d}/new"), "appeared meanwhile\n").unwrap();
        let w = run_locally(&plan, d);
        assert!(!w.done && w.written.is_empty(), "{w:?}");
        assert_eq!(w.errors.len(), 2, "{w:?}");
        assert!(w.errors[0].contains("changed on the node since clusterctl read it"));
        let hosts = std::fs::read_to_string(format!("{d}/hosts")).unwrap();
        assert_eq!(hosts, "the user's edit\n");
        assert!(
            !Path::new(&format!("{d}/state/lock")).exists(),
            "the lock is released"
        );
    }

    /// Another run's live lock: refused, nothing replaced, its lock kept.
    /// An expired one (a run that died) is taken over.
    #[test]
    fn a_second_apply_waits_for_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let plan = a_to_capital_a(d);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        std::fs::create_dir_all(format!("{d}/state/lock")).unwrap();
        let other = format!("OTHER {}\n", now + 100);
        std::fs::write(format!("{d}/state/lock/owner"), &other).unwrap();
        let w = run_locally(&plan, d);
        assert!(!w.done && w.written.is_empty(), "{w:?}");
        assert!(
            w.errors[0].starts_with("another apply (run OTHER)"),
            "{w:?}"
        );
        assert_eq!(std::fs::read_to_string(format!("{d}/a")).unwrap(), "a\n");
        assert_eq!(
            std::fs::read_to_string(format!("{d}/state/lock/owner")).unwrap(),
            other
        );

        std::fs::write(format!("{d}/state/lock/owner"), "OTHER 1\n").unwrap();
        let w = run_locally(&plan, d);
        assert!(w.done, "{w:?}");
        assert!(
            w.notes[0].contains("took over the apply lock of run OTHER"),
            "{w:?}"
        );
        assert_eq!(std::fs::read_to_string(format!("{d}/a")).unwrap(), "A\n");
        assert!(
            !Path::new(&format!("{d}/state/lock")).exists(),
            "released at the end"
        );
    }

    /// Issue 26: a run whose controller died held the node's lock for its
    /// whole lease (minutes). The lock now names its holder processes: one
    /// that still runs holds it whatever the lease says; a gone holder's
    /// grace holds it; once both are over the lock is taken, however long
    /// the old lease. A lock that keeps going to the handler round trip
    /// names no process of this run but grants 30 s.
    #[test]
    fn a_dead_runs_lock_is_taken_once_its_holders_are_gone() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let lk = format!("{d}/state/lock");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let take = |owner_until: u64, alive: &str| {
            let plan = a_to_capital_a(d);
            std::fs::create_dir_all(&lk).unwrap();
            std::fs::write(format!("{lk}/owner"), format!("OTHER {owner_until}\n")).unwrap();
            std::fs::write(format!("{lk}/alive"), alive).unwrap();
            run_locally(&plan, d)
        };
        // A holder that runs (start time from /proc), its grace long over.
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap();
        let start = stat
            .rsplit_once(") ")
            .unwrap()
            .1
            .split(' ')
            .nth(19)
            .unwrap()
            .to_string();
        let w = take(1, &format!("{} {start} 1\n", child.id()));
        assert!(!w.done, "{w:?}");
        assert!(
            w.errors[0].contains("is changing this node right now"),
            "{w:?}"
        );
        // The same PID with another start time is not that holder.
        let w = take(now + 600, &format!("{} 1 1\n", child.id()));
        assert!(w.done, "{w:?}");
        assert!(
            w.notes[0].contains("none of its processes runs here any more"),
            "{w:?}"
        );
        child.kill().unwrap();
        child.wait().unwrap();
        // A gone holder's grace still holds it, whatever the lease.
        let w = take(1, &format!("999999 1 {}\n", now + 100));
        assert!(!w.done, "{w:?}");
        assert!(w.errors[0].contains("its lock expires in"), "{w:?}");
        // Kept for the handlers: this run's line with a 30 s grace.
        let plan = a_to_capital_a(d);
        std::fs::remove_dir_all(&lk).unwrap();
        let mut keep = ctx(d);
        keep.release = false;
        let out = Local::default().run(&write_script(&plan, &keep)).unwrap();
        assert!(parse_write(&String::from_utf8_lossy(&out.stdout)).done);
        let alive = std::fs::read_to_string(format!("{lk}/alive")).unwrap();
        let fields: Vec<&str> = alive.split_whitespace().collect();
        assert_eq!(fields.len(), 3, "{alive}");
        let grace: u64 = fields[2].parse().unwrap();
        // 30 s from when the script ran (at or after `now`).
        assert!((now + 30..now + 90).contains(&grace), "{alive}");
    }

    /// Issue 22: a worker whose ssh: target reaches the head (an alias
    /// check cannot see) got the worker's files on the head. The same run
    /// reaching one machine as a second node is refused before any change,
    /// whether the first node's lock is released (its claim stays) or held.
    #[test]
    fn two_inventory_nodes_reaching_one_machine_are_refused_before_any_change() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let plan = a_to_capital_a(d);
        assert!(run_locally(&plan, d).done);
        std::fs::write(format!("{d}/a"), "a\n").unwrap();
        let mut as_w1 = ctx(d);
        as_w1.lock.node = "w1".into();
        let run_as_w1 = || {
            let out = Local::default().run(&write_script(&plan, &as_w1)).unwrap();
            parse_write(&String::from_utf8_lossy(&out.stdout))
        };
        let w = run_as_w1();
        assert!(!w.done && w.written.is_empty(), "{w:?}");
        assert!(
            w.errors[0].starts_with("this is the machine this run already reached as head"),
            "{w:?}"
        );
        assert_eq!(std::fs::read_to_string(format!("{d}/a")).unwrap(), "a\n");

        // Held right now by the same run as head (two at once): refused too.
        std::fs::remove_file(format!("{d}/state/claim")).unwrap();
        std::fs::create_dir_all(format!("{d}/state/lock")).unwrap();
        std::fs::write(format!("{d}/state/lock/owner"), "RUN 99999999999\n").unwrap();
        std::fs::write(format!("{d}/state/lock/node"), "head\n").unwrap();
        let w = run_as_w1();
        assert!(w.errors[0].contains("already reached as head"), "{w:?}");
        assert_eq!(std::fs::read_to_string(format!("{d}/a")).unwrap(), "a\n");

        // Another run's claim is history (a renamed node): not refused.
        std::fs::remove_dir_all(format!("{d}/state/lock")).unwrap();
        std::fs::write(format!("{d}/state/claim"), "EARLIER head\n").unwrap();
        assert!(run_as_w1().done);
        assert_eq!(std::fs::read_to_string(format!("{d}/a")).unwrap(), "A\n");
    }

    /// A script cut short in transit (a dropped connection) runs nothing.
    #[test]
    fn a_truncated_write_script_runs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let plan = a_to_capital_a(d);
        let script = write_script(&plan, &ctx(d));
        let cut = &script[..script.len() - "main\n".len() - 3];
        let out = Local::default().run(cut).unwrap();
        assert!(!parse_write(&String::from_utf8_lossy(&out.stdout)).done);
        assert_eq!(std::fs::read_to_string(format!("{d}/a")).unwrap(), "a\n");
        assert_eq!(std::fs::read_dir(d).unwrap().count(), 1);
    }
}
