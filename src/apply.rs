//! The apply engine for one node, over any [`Transport`]: probe (facts, one
//! round trip), plan, preflight (does the node have what the plan needs?),
//! then at most two more round trips: one that stages every changed file as a
//! temp file beside its target with its final mode and owner, validates the
//! candidates, backs up the old files and renames the new ones into place (all
//! or nothing: a failed validation renames nothing), and one that runs each
//! changed step's handler once with the node's init system. Builds scripts
//! and parses their output; `commands/apply.rs` decides order and concurrency.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine;

use crate::cluster::Cluster;
use crate::facts::{self, Facts, InitSystem};
use crate::plan::{self, Action, NodePlan};
use crate::render::RenderedFile;
use crate::steps::{self, Handler, Validator};
use crate::transport::{shell_quote, Transport};

/// Where old versions of changed files go, one directory per run; outside
/// every include directory (a backup in /etc/dnsmasq.d would be loaded).
pub const BACKUP_ROOT: &str = "/var/lib/clusterctl/backups";

/// The steps whose handler a node still owes: written (before any file is
/// renamed) by the write round trip, emptied by the handler round trip as
/// each handler succeeds, read by the probe. An apply that is interrupted or
/// loses the connection between the two, or whose handler fails, is finished
/// by the next apply even though the files are already in sync.
pub const PENDING: &str = "/var/lib/clusterctl/pending";

/// How one node's apply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// In sync already: nothing written, no handler run.
    Ok,
    /// Files written and their handlers run, all successfully.
    Changed,
    /// Reached, but something failed (the reason is in `message`).
    Failed,
    /// Could not be reached at all.
    Unreachable,
    /// Not started, or stopped between round trips, because of Ctrl-C.
    Interrupted,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Ok => "ok",
            Status::Changed => "changed",
            Status::Failed => "failed",
            Status::Unreachable => "unreachable",
            Status::Interrupted => "interrupted",
        })
    }
}

/// What happened on one node.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeReport {
    pub node: String,
    pub status: Status,
    /// Paths written (created, updated, or mode/owner fixed).
    pub changed: Vec<String>,
    /// Steps whose handler ran successfully.
    pub handlers: Vec<String>,
    /// Things the user should know that are not failures.
    pub notes: Vec<String>,
    /// Why the node failed or was unreachable.
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
            changed: Vec::new(),
            handlers: Vec::new(),
            notes: Vec::new(),
            message: None,
            round_trips: 0,
            backup_dir: None,
        }
    }
    fn fail(mut self, status: Status, message: impl Into<String>) -> Self {
        self.status = status;
        self.message = Some(message.into());
        self
    }
}

/// Apply the rendered files to one node. `cancel` is checked between round
/// trips: once set, nothing new starts (a started round trip always finishes,
/// so no file is ever half-written).
pub fn apply_node(
    t: &dyn Transport,
    cluster: &Cluster,
    node: &str,
    files: &[RenderedFile],
    run_id: &str,
    cancel: &AtomicBool,
) -> NodeReport {
    let report = NodeReport::new(node);
    let start = t.round_trips();
    let mut r = apply_inner(t, cluster, node, files, run_id, cancel, report);
    r.round_trips = t.round_trips() - start;
    r
}

/// Round trip 1, shared with `diff`: what the node has, and what to do about
/// it (changed files, their handlers, and handlers owed by an earlier run).
/// On failure: `Unreachable` or `Failed` and why.
pub fn probe_and_plan(
    t: &dyn Transport,
    files: &[RenderedFile],
) -> Result<(Facts, NodePlan), (Status, String)> {
    let paths: Vec<&str> = files.iter().map(|f| f.path).collect();
    let facts = facts::gather(t, &paths).map_err(|e| {
        let status = if e.unreachable {
            Status::Unreachable
        } else {
            Status::Failed
        };
        (status, e.message)
    })?;
    let mut plan = plan::plan_node(files, &facts.files)
        .map_err(|e| (Status::Failed, format!("{}: {}", e.path, e.message)))?;
    plan.owe(&facts.pending);
    Ok((facts, plan))
}

fn apply_inner(
    t: &dyn Transport,
    cluster: &Cluster,
    node: &str,
    files: &[RenderedFile],
    run_id: &str,
    cancel: &AtomicBool,
    mut report: NodeReport,
) -> NodeReport {
    if cancel.load(Ordering::SeqCst) {
        return report.fail(Status::Interrupted, "not started: interrupted");
    }
    let (facts, plan) = match probe_and_plan(t, files) {
        Ok(fp) => fp,
        Err((status, message)) => return report.fail(status, message),
    };
    if plan.is_noop() {
        return report;
    }
    let ctx = NodeCtx::new(cluster, node);
    if let Err(m) = preflight(&plan, &facts, &ctx) {
        return report.fail(Status::Failed, m);
    }
    if cancel.load(Ordering::SeqCst) {
        return report.fail(Status::Interrupted, "interrupted before writing anything");
    }

    // Round trip 2: stage, validate, back up, rename.
    if plan.pending() > 0 {
        if let Err(msg) = write_files(t, &plan, run_id, &mut report) {
            return report.fail(Status::Failed, msg);
        }
    }
    for step in &plan.owed {
        report.notes.push(format!(
            "running the handler of {step}, owed by an earlier apply"
        ));
    }

    // Round trip 3: the handlers of the steps that changed content.
    let handlers: Vec<_> = plan.handlers.clone();
    if !handlers.is_empty() {
        if cancel.load(Ordering::SeqCst) {
            return report.fail(
                Status::Interrupted,
                format!(
                    "interrupted after writing files; handlers not run: {}",
                    handlers
                        .iter()
                        .map(|(s, _)| *s)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        let script = match handler_script(&plan, &facts, &ctx, PENDING) {
            Ok(s) => s,
            Err(m) => return report.fail(Status::Failed, m),
        };
        let out = match t.run(&script) {
            Ok(o) => o,
            Err(e) => {
                return report.fail(
                    Status::Failed,
                    format!("connection lost while running handlers: {e}; run apply again"),
                )
            }
        };
        let h = parse_handlers(&String::from_utf8_lossy(&out.stdout));
        report.handlers = h.ok;
        report.notes.extend(h.notes);
        if !h.failed.is_empty() || !h.done {
            let mut msg: Vec<String> = h.failed;
            if !h.done {
                msg.push(format!(
                    "handlers did not finish (exit {}){}",
                    out.status,
                    stderr_tail(&out.stderr)
                ));
            }
            return report.fail(Status::Failed, msg.join("; "));
        }
    }
    report.status = Status::Changed;
    report
}

/// The write round trip; on failure, why.
fn write_files(
    t: &dyn Transport,
    plan: &NodePlan,
    run_id: &str,
    report: &mut NodeReport,
) -> Result<(), String> {
    let backup_dir = format!("{BACKUP_ROOT}/{run_id}");
    let out = t
        .run(&write_script(plan, &backup_dir, PENDING))
        .map_err(|e| format!("connection lost while writing files: {e}; run apply again"))?;
    let w = parse_write(&String::from_utf8_lossy(&out.stdout));
    report.changed = w.written;
    if w.backed_up {
        report.backup_dir = Some(backup_dir);
    }
    if w.done {
        return Ok(());
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
    if report.changed.is_empty() {
        msg.push_str("; no file was changed");
    }
    Err(msg)
}

fn stderr_tail(stderr: &[u8]) -> String {
    let s = String::from_utf8_lossy(stderr);
    match s.lines().rev().find(|l| !l.trim().is_empty()) {
        Some(l) => format!(": {}", l.trim()),
        None => String::new(),
    }
}

/// What the handlers need to know about the node.
pub struct NodeCtx {
    pub name: String,
    /// The interface the LAN configuration is for.
    pub iface: String,
    /// NFS mount points (workers).
    pub mounts: Vec<String>,
}

impl NodeCtx {
    pub fn new(cluster: &Cluster, node: &str) -> Self {
        match cluster.worker(node) {
            Some(w) => NodeCtx {
                name: node.to_string(),
                iface: w.iface.clone(),
                mounts: cluster
                    .nfs
                    .exports
                    .iter()
                    .map(|e| e.mount.clone())
                    .collect(),
            },
            None => NodeCtx {
                name: node.to_string(),
                iface: cluster.head.lan_iface.clone(),
                mounts: Vec::new(),
            },
        }
    }
}

/// Does the node have every command the pending validators and handlers
/// need? Checked before anything is written.
pub fn preflight(plan: &NodePlan, facts: &Facts, ctx: &NodeCtx) -> Result<(), String> {
    let mut need: Vec<(&str, &str)> = vec![("base64", "coreutils"), ("mktemp", "coreutils")];
    let changed_steps: BTreeSet<&str> = plan
        .changes
        .iter()
        .filter(|c| matches!(c.action, Action::Create | Action::Update))
        .map(|c| c.step)
        .collect();
    for step in steps::STEPS.iter().filter(|s| changed_steps.contains(s.id)) {
        match step.validator {
            Some(Validator::Dnsmasq) => need.push(("dnsmasq", "dnsmasq")),
            Some(Validator::IptablesRestore) => need.push(("iptables-restore", "iptables")),
            None => {}
        }
    }
    for (_, h) in &plan.handlers {
        match h {
            Handler::IfUp => {
                if facts.session_iface.as_deref() != Some(ctx.iface.as_str()) {
                    need.push(("ifup", "ifupdown"));
                    need.push(("ifdown", "ifupdown"));
                }
            }
            Handler::SysctlLoad => need.push(("sysctl", "procps")),
            Handler::IptablesRestore => need.push(("iptables-restore", "iptables")),
            Handler::ExportfsReload => need.push(("exportfs", "nfs-kernel-server")),
            Handler::MountNfs => need.push(("mount.nfs", "nfs-common")),
            Handler::Restart(_) => match facts.init {
                InitSystem::Systemd => need.push(("systemctl", "systemd")),
                InitSystem::Openrc => need.push(("rc-service", "openrc")),
                InitSystem::Sysvinit => {}
                InitSystem::Unknown => {
                    return Err(format!(
                        "cannot restart services: no init system recognised on {} \
                         (found: {} {}; no systemd, OpenRC or /etc/init.d)",
                        ctx.name, facts.os_id, facts.os_version
                    ))
                }
            },
        }
    }
    let mut missing: Vec<String> = Vec::new();
    let mut seen = BTreeSet::new();
    for (tool, pkg) in need {
        if seen.insert(tool) && !facts.tools.contains(tool) {
            missing.push(format!("`{tool}` (package {pkg})"));
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "missing {} on {} ({} {}, {} init); install it and run apply again; nothing was changed",
            missing.join(", "),
            ctx.name,
            facts.os_id,
            facts.os_version,
            match facts.init {
                InitSystem::Systemd => "systemd",
                InitSystem::Sysvinit => "sysvinit",
                InitSystem::Openrc => "OpenRC",
                InitSystem::Unknown => "unknown",
            }
        ))
    }
}

/// Ends every heredoc; base64 output can never contain `@`.
const EOF_MARK: &str = "@@CLUSTERCTL-EOF@@";

/// Common preamble: strict, C locale, a sane PATH, and immune to the client
/// going away (a started script always runs to its end).
const PREAMBLE: &str = "set -u
trap '' HUP PIPE INT TERM
LC_ALL=C; export LC_ALL
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH
";

/// The write round trip. Everything sits in a function called on the last
/// line: if the script arrives truncated, sh finds a syntax error and runs
/// nothing.
pub fn write_script(plan: &NodePlan, backup_dir: &str, pending: &str) -> String {
    let mut s = String::from(PREAMBLE);
    s.push_str("umask 022\n");
    s.push_str(&format!("bk={}\n", shell_quote(backup_dir)));
    s.push_str(&format!("pf={}\n", shell_quote(pending)));
    s.push_str(
        r#"fail=0
temps=""
stage() { # PATH MODE OWNER GROUP, base64 content on stdin; sets t
  t=""
  d=${1%/*}; [ -n "$d" ] || d=/
  if ! mkdir -p "$d"; then echo "@@error $1: cannot create $d"; fail=1; cat >/dev/null; return 1; fi
  if ! t=$(mktemp "$d/.${1##*/}.clusterctl.XXXXXX"); then echo "@@error $1: cannot create a temporary file in $d"; t=""; fail=1; cat >/dev/null; return 1; fi
  temps="$temps $t"
  if ! base64 -d >"$t"; then echo "@@error $1: cannot write $t"; fail=1; return 1; fi
  if ! chown "$3:$4" "$t" || ! chmod "$2" "$t"; then echo "@@error $1: cannot set owner $3:$4 mode $2"; fail=1; return 1; fi
}
check() { # PATH COMMAND...: validate a candidate
  p=$1; shift
  if ! out=$("$@" 2>&1); then
    echo "@@invalid $p"
    printf '%s\n' "$out" | sed 's/^/@@| /'
    fail=1
  fi
}
backup() { # PATH
  [ -e "$1" ] || return 0
  if mkdir -p "$bk${1%/*}" && chmod 0700 "${bk%/*}" && cp -p "$1" "$bk$1"; then
    echo "@@backup $1"
  else
    echo "@@error $1: cannot back it up to $bk$1"; fail=1
  fi
}
commit() { # PATH TEMP
  if mv -f "$2" "$1"; then echo "@@written $1"; else echo "@@error $1: cannot rename $2 over it"; fail=1; fi
}
fix() { # PATH MODE OWNER GROUP
  if chown "$3:$4" "$1" && chmod "$2" "$1"; then echo "@@written $1"; else echo "@@error $1: cannot set owner $3:$4 mode $2"; fail=1; fi
}
abort() {
  # Our temp paths come from mktemp in fixed directories: no spaces.
  for x in $temps; do rm -f "$x"; done
  echo "@@aborted"
  exit 1
}
main() {
exec </dev/null
"#,
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    let writes: Vec<(usize, &plan::FileChange)> = plan
        .changes
        .iter()
        .filter(|c| matches!(c.action, Action::Create | Action::Update))
        .enumerate()
        .collect();
    for (i, c) in &writes {
        s.push_str(&format!(
            "stage {} {:04o} {} {} <<'{EOF_MARK}' || true\n",
            shell_quote(c.path),
            c.mode,
            shell_quote(&c.owner),
            shell_quote(&c.group)
        ));
        let enc = b64.encode(c.content.as_bytes());
        for chunk in enc.as_bytes().chunks(76) {
            s.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            s.push('\n');
        }
        s.push_str(EOF_MARK);
        s.push('\n');
        s.push_str(&format!("t{i}=$t\n"));
    }
    s.push_str("[ \"$fail\" -eq 0 ] || abort\n");
    for (i, c) in &writes {
        let step = steps::STEPS.iter().find(|st| st.id == c.step);
        match step.and_then(|st| st.validator) {
            Some(Validator::Dnsmasq) => s.push_str(&format!(
                "check {} dnsmasq --test \"--conf-file=$t{i}\"\n",
                shell_quote(c.path)
            )),
            Some(Validator::IptablesRestore) => s.push_str(&format!(
                "check {} iptables-restore --test \"$t{i}\"\n",
                shell_quote(c.path)
            )),
            None => {}
        }
    }
    s.push_str("[ \"$fail\" -eq 0 ] || abort\n");
    for (_, c) in &writes {
        s.push_str(&format!("backup {}\n", shell_quote(c.path)));
    }
    s.push_str("[ \"$fail\" -eq 0 ] || abort\n");
    // Record the handlers this write makes owed before any rename.
    let owed: Vec<String> = plan
        .handlers
        .iter()
        .map(|(st, _)| shell_quote(st))
        .collect();
    if !owed.is_empty() {
        s.push_str(&format!(
            "if ! {{ mkdir -p \"${{pf%/*}}\" && printf '%s\\n' {} >\"$pf.new\" && mv -f \"$pf.new\" \"$pf\"; }}; then\n  echo \"@@error $pf: cannot record the handlers to run\"; fail=1\nfi\n[ \"$fail\" -eq 0 ] || abort\n",
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
    s.push_str("[ \"$fail\" -eq 0 ] || exit 1\necho @@done\n}\nmain\n");
    s
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct WriteResult {
    pub written: Vec<String>,
    pub backed_up: bool,
    pub errors: Vec<String>,
    pub done: bool,
}

pub fn parse_write(text: &str) -> WriteResult {
    let mut r = WriteResult::default();
    for (line, detail) in with_detail(text) {
        let (key, rest) = line.split_once(' ').unwrap_or((line, ""));
        match key {
            "@@written" => r.written.push(rest.to_string()),
            "@@backup" => r.backed_up = true,
            "@@error" => r.errors.push(rest.to_string()),
            "@@invalid" => r.errors.push(format!(
                "{rest}: the new file failed validation, the old one is kept: {}",
                summarize(&detail[..detail.len().min(5)])
            )),
            "@@done" => r.done = true,
            _ => {}
        }
    }
    r
}

/// Output lines, each with the `@@| ` detail lines that follow it.
fn with_detail(text: &str) -> Vec<(&str, Vec<&str>)> {
    let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
    for line in text.lines() {
        match line.strip_prefix("@@|") {
            Some(rest) => {
                let rest = rest.strip_prefix(' ').unwrap_or(rest);
                if let Some((_, d)) = out.last_mut() {
                    if !rest.trim().is_empty() {
                        d.push(rest);
                    }
                }
            }
            None => out.push((line, Vec::new())),
        }
    }
    out
}

/// Detail lines on one line.
fn summarize(detail: &[&str]) -> String {
    if detail.is_empty() {
        "(no output)".to_string()
    } else {
        detail.join(" / ")
    }
}

/// The handler round trip: each changed step's handler once, in step order.
pub fn handler_script(
    plan: &NodePlan,
    facts: &Facts,
    ctx: &NodeCtx,
    pending: &str,
) -> Result<String, String> {
    let mut s = String::from(PREAMBLE);
    s.push_str(
        r#"session_if=SESSION_IF
pf=PENDING_FILE
left=""
run() { # STEP FUNCTION; daemons it starts get default signal handling
  if out=$(trap - HUP PIPE INT TERM; "$2" 2>&1); then echo "@@ok $1"; else
    echo "@@failed $1"
    printf '%s\n' "$out" | sed 's/^/@@| /'
    left="$left $1"
  fi
}
ifup_safe() { # IFACE: never take down the interface carrying this session
  if [ "$1" = "$session_if" ]; then
    echo "@@note $1 carries this SSH session: not restarted; its new settings take effect at its next ifup or boot" >&3
    return 0
  fi
  if [ "$session_if" = "?" ]; then
    echo "@@note cannot tell which interface carries this SSH session: $1 not restarted; its new settings take effect at its next ifup or boot" >&3
    return 0
  fi
  ifdown --force "$1" >/dev/null 2>&1 || true
  ifup "$1"
}
main() {
  exec </dev/null
"#
        .replace(
            "SESSION_IF",
            &shell_quote(facts.session_iface.as_deref().unwrap_or("")),
        )
        .replace("PENDING_FILE", &shell_quote(pending))
        .as_str(),
    );
    let mut funcs = String::new();
    for (n, (step_id, h)) in plan.handlers.iter().enumerate() {
        let files: Vec<&str> = plan
            .changes
            .iter()
            .filter(|c| c.step == *step_id)
            .map(|c| c.path)
            .collect();
        let body = match h {
            Handler::IfUp => format!("ifup_safe {}", shell_quote(&ctx.iface)),
            Handler::SysctlLoad => files
                .iter()
                .map(|f| format!("sysctl -p {}", shell_quote(f)))
                .collect::<Vec<_>>()
                .join(" && "),
            Handler::IptablesRestore => files
                .iter()
                .map(|f| format!("iptables-restore {}", shell_quote(f)))
                .collect::<Vec<_>>()
                .join(" && "),
            Handler::Restart(svc) => restart(facts.init, svc)?,
            Handler::ExportfsReload => "exportfs -ra".to_string(),
            Handler::MountNfs => {
                let mut m: Vec<String> = ctx
                    .mounts
                    .iter()
                    .map(|p| format!("mkdir -p {}", shell_quote(p)))
                    .collect();
                m.push("mount -a -t nfs,nfs4".to_string());
                m.join(" && ")
            }
        };
        funcs.push_str(&format!("h{n}() {{\n  {body}\n}}\n"));
        s.push_str(&format!("  run {} h{n}\n", shell_quote(step_id)));
    }
    // What failed stays owed; the rest is done.
    s.push_str(
        "  if [ -n \"$left\" ]; then printf '%s\\n' $left >\"$pf\"; else rm -f \"$pf\"; fi\n  echo @@done\n}\n",
    );
    s.push_str(&funcs);
    // fd 3: notes go straight to the output, not into a handler's captured text.
    s.push_str("main 3>&1\n");
    Ok(s)
}

/// The command restarting a service with the node's init system.
fn restart(init: InitSystem, svc: &str) -> Result<String, String> {
    let q = shell_quote(svc);
    Ok(match init {
        InitSystem::Systemd => format!("systemctl enable --quiet {q} 2>/dev/null; systemctl restart {q}"),
        InitSystem::Sysvinit => format!(
            "if command -v service >/dev/null 2>&1; then service {q} restart; else /etc/init.d/{q} restart; fi"
        ),
        InitSystem::Openrc => format!("rc-update add {q} default >/dev/null 2>&1; rc-service {q} restart"),
        InitSystem::Unknown => return Err(format!("cannot restart {svc}: no init system recognised")),
    })
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct HandlerResult {
    pub ok: Vec<String>,
    pub failed: Vec<String>,
    pub notes: Vec<String>,
    pub done: bool,
}

pub fn parse_handlers(text: &str) -> HandlerResult {
    let mut r = HandlerResult::default();
    for (line, detail) in with_detail(text) {
        let (key, rest) = line.split_once(' ').unwrap_or((line, ""));
        match key {
            "@@ok" => r.ok.push(rest.to_string()),
            "@@failed" => r.failed.push(format!(
                "handler of step {rest} failed: {}",
                summarize(&detail[detail.len().saturating_sub(3)..])
            )),
            "@@note" => r.notes.push(rest.to_string()),
            "@@done" => r.done = true,
            _ => {}
        }
    }
    r
}

/// A run id for backup directories: UTC time and process id, e.g.
/// `20261121T101500Z-4242`. Never part of a rendered file.
pub fn run_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z-{}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        std::process::id()
    )
}

/// Days since 1970-01-01 -> (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{FakeHost, Local, Output, TransportError};
    use std::path::Path;

    fn lab() -> (Cluster, Vec<RenderedFile>) {
        let c = Cluster::from_str(
            include_str!("../inventories/lab.yaml"),
            Path::new("lab.yaml"),
        )
        .unwrap();
        let t = crate::templates::Templates::load(None).unwrap();
        let files = crate::render::render_node(&c, &t, "head").unwrap();
        (c, files)
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
        for t in facts::TOOLS.split_whitespace() {
            s.push_str(&format!("@@tool {t}\n"));
        }
        s.push_str("@@session-if eth0\n");
        for f in files {
            if present {
                let content = match f.manage {
                    steps::Manage::Whole => f.content.clone(),
                    steps::Manage::Block => crate::render::merge_block("", &f.content).unwrap(),
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
        let (c, files) = lab();
        let answer = probe_answer(&files, true);
        let t = FakeHost::new(move |_| ok(answer.clone()));
        let r = apply_node(&t, &c, "head", &files, "RUN", &never());
        assert_eq!(r.status, Status::Ok, "{r:?}");
        assert_eq!(r.round_trips, 1);
        assert_eq!(t.round_trips(), 1);
        assert!(r.changed.is_empty() && r.handlers.is_empty());
    }

    #[test]
    fn changes_cost_three_round_trips_however_many_files() {
        let (c, files) = lab();
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
        let r = apply_node(&t, &c, "head", &files, "RUN", &never());
        assert_eq!(r.status, Status::Changed, "{r:?}");
        assert_eq!(r.round_trips, 3);
        assert_eq!(r.changed.len(), files.len());
        assert_eq!(
            r.handlers,
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
        let (c, files) = lab();
        let probe =
            probe_answer(&files, true).replace("@@done\n", "@@pending head-dnsmasq\n@@done\n");
        let t = FakeHost::new(move |script| {
            if script.contains("main 3>&1") {
                ok("@@ok head-dnsmasq\n@@done\n".into())
            } else {
                ok(probe.clone())
            }
        });
        let r = apply_node(&t, &c, "head", &files, "RUN", &never());
        assert_eq!(r.status, Status::Changed, "{r:?}");
        assert_eq!(r.round_trips, 2);
        assert_eq!(r.handlers, ["head-dnsmasq"]);
        assert!(r.changed.is_empty());
        let scripts = t.scripts.lock().unwrap();
        assert!(scripts[1].contains("run head-dnsmasq h0"), "{}", scripts[1]);
        assert!(!scripts[1].contains("run head-firewall"));
    }

    #[test]
    fn a_failed_validation_fails_the_node_and_runs_no_handler() {
        let (c, files) = lab();
        let probe = probe_answer(&files, false);
        let t = FakeHost::new(move |script| {
            if script.contains("stage ") {
                ok("@@invalid /etc/dnsmasq.d/clusterctl.conf\n@@| dnsmasq: bad option at line 3\n@@aborted\n".into())
            } else {
                ok(probe.clone())
            }
        });
        let r = apply_node(&t, &c, "head", &files, "RUN", &never());
        assert_eq!(r.status, Status::Failed);
        assert_eq!(r.round_trips, 2);
        assert_eq!(
            r.message.as_deref(),
            Some("/etc/dnsmasq.d/clusterctl.conf: the new file failed validation, the old one is kept: dnsmasq: bad option at line 3; no file was changed")
        );
    }

    #[test]
    fn a_missing_tool_fails_before_anything_is_written() {
        let (c, files) = lab();
        let probe = probe_answer(&files, false).replace("@@tool ifup\n", "");
        let t = FakeHost::new(move |_| ok(probe.clone()));
        let r = apply_node(&t, &c, "head", &files, "RUN", &never());
        assert_eq!(r.status, Status::Failed);
        assert_eq!(r.round_trips, 1);
        assert_eq!(
            r.message.as_deref(),
            Some("missing `ifup` (package ifupdown) on head (debian 12, sysvinit init); install it and run apply again; nothing was changed")
        );
    }

    #[test]
    fn unreachable_and_interrupted() {
        let (c, files) = lab();
        let t = FakeHost::new(|_| {
            Err(TransportError {
                message: "ssh to root@head failed: Connection refused".into(),
                unreachable: true,
            })
        });
        let r = apply_node(&t, &c, "head", &files, "RUN", &never());
        assert_eq!(r.status, Status::Unreachable);
        let stop = AtomicBool::new(true);
        let r = apply_node(&t, &c, "head", &files, "RUN", &stop);
        assert_eq!(r.status, Status::Interrupted);
        assert_eq!(r.round_trips, 0);
    }

    fn leak(s: String) -> &'static str {
        Box::leak(s.into_boxed_str())
    }

    fn change(step: &'static str, path: &str, action: Action, content: &str) -> plan::FileChange {
        let (owner, group) = current_user();
        plan::FileChange {
            step,
            path: leak(path.to_string()),
            action,
            content: content.to_string(),
            mode: 0o640,
            owner,
            group,
            diff: String::new(),
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
        let t = Local::default();
        let out = t
            .run(&write_script(
                &plan,
                &format!("{d}/backups/RUN"),
                &format!("{d}/pending"),
            ))
            .unwrap();
        let w = parse_write(&String::from_utf8_lossy(&out.stdout));
        assert!(w.done, "{w:?} {}", String::from_utf8_lossy(&out.stderr));
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
        let out = Local::default()
            .run(&write_script(
                &plan,
                &format!("{d}/backups/RUN"),
                &format!("{d}/pending"),
            ))
            .unwrap();
        let w = parse_write(&String::from_utf8_lossy(&out.stdout));
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
        assert_eq!(
            std::fs::read_dir(d).unwrap().count(),
            2,
            "temp files left behind"
        );
    }

    /// A script cut short in transit (a dropped connection) runs nothing.
    #[test]
    fn a_truncated_write_script_runs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        std::fs::write(format!("{d}/a"), "a\n").unwrap();
        let plan = NodePlan {
            changes: vec![change(
                "head-hosts",
                &format!("{d}/a"),
                Action::Update,
                "A\n",
            )],
            ..Default::default()
        };
        let script = write_script(&plan, &format!("{d}/backups/RUN"), &format!("{d}/pending"));
        let cut = &script[..script.len() - "main\n".len() - 3];
        let out = Local::default().run(cut).unwrap();
        assert!(!parse_write(&String::from_utf8_lossy(&out.stdout)).done);
        assert_eq!(std::fs::read_to_string(format!("{d}/a")).unwrap(), "a\n");
        assert_eq!(std::fs::read_dir(d).unwrap().count(), 1);
    }

    #[test]
    fn run_ids_are_utc_timestamps() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_413), (2025, 11, 21));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        let id = run_id();
        assert_eq!(
            id.len(),
            "20261121T101500Z".len() + 1 + std::process::id().to_string().len()
        );
    }
}
