//! `clusterctl apply`: check every node's templates offline, then the head first (its LAN
//! address, forwarding, firewall, DNS and DHCP are what workers need), then
//! the workers in parallel (at most `--forks` at once), waiting with backoff
//! up to `--wait` for workers that cannot be reached yet (they may still be
//! waiting for their lease from the head's dnsmasq). Progress lines go to
//! stderr; the recap (or `--output json`) to stdout. Ctrl-C stops new work;
//! a round trip already started always finishes.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::confirm_plan;
use super::progress::Log;
use super::remote::{self, Prepared};
use crate::cli::{ApplyArgs, OutputFormat};
use crate::cluster::{Addressing, PackagePolicy, Worker};
use crate::engine;
use crate::error::{Error, Result, EXIT_ERROR, EXIT_OK};
use crate::hostlist;
use crate::pool;
use crate::report::{self, NodeReport, Status};
use crate::run_id::run_id;
use crate::transport::Transport;

/// Exit code after Ctrl-C (128 + SIGINT), as shells report it.
pub const EXIT_INTERRUPTED: i32 = 130;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    // A second Ctrl-C: stop now (a round trip may hang, e.g. on a dead
    // mount). Files on the nodes are still whole: every write is a rename.
    if INTERRUPTED.swap(true, Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(EXIT_INTERRUPTED) };
    }
}

/// Ctrl-C sets a flag the run checks between round trips (only an atomic
/// store happens in the handler). The ssh children run in their own process
/// group, so the terminal's SIGINT does not cut a round trip in half.
pub(super) fn catch_sigint() {
    // SAFETY: installing a handler that only stores to an atomic.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
}

/// Ctrl-C ends the process again (after a wait that caught it).
pub(super) fn default_sigint() {
    // SAFETY: restoring the default disposition.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
    }
}

/// Ctrl-C was pressed (after `catch_sigint`).
pub(super) fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

struct Node {
    name: String,
    transport: Box<dyn Transport>,
    via_head: bool,
}

impl Node {
    fn apply(&self, p: &Prepared, opts: engine::RunOptions) -> NodeReport {
        engine::apply_node(self.transport.as_ref(), p.job(&self.name), opts)
    }
}

pub fn run(args: &ApplyArgs, verbose: u8) -> Result<i32> {
    let r = &args.remote;
    let mut prepared = remote::prepare(r)?;
    // What the nodes have (keys, hardware), and with users or Slurm every
    // selected node's accounts: a clash on any node stops the run here,
    // before anything on any node changes. Nothing is generated yet.
    let gathered = prepared.gather(false, true, r.forks as usize);
    if !gathered.clashes.is_empty() {
        return Err(Error::Usage {
            message: format!(
                "accounts on {} node(s) clash with the inventory's; nothing was changed on any node:\n  {}",
                gathered.clashes.len(),
                gathered.clashes.join("\n  ")
            ),
            help: Some("give the user (or slurm.munge_uid / slurm_uid) another name or ID in the inventory, or fix the account on the node".into()),
        });
    }
    if confirm_plan::should_ask(args.yes) && !confirm_plan::ask(&prepared, r.forks as usize)? {
        eprintln!("apply cancelled: nothing was changed");
        return Ok(EXIT_ERROR);
    }
    catch_sigint();
    let log = Log::new(args.quiet, verbose, prepared.nodes.len());
    let run_id = run_id();
    let opts = engine::RunOptions {
        run_id: &run_id,
        cancel: &INTERRUPTED,
        confirm: (!args.confirm.no_confirm).then_some(args.confirm.confirm_timeout),
        // The handler round trip, the confirmation, and some slack.
        lease: u64::from(r.timeout) + u64::from(args.confirm.confirm_timeout) + 30,
        skip_packages: args.skip_packages || prepared.cluster.packages == PackagePolicy::Skip,
    };
    // The head makes the keys it lacks (the first apply), read again.
    let notes = match prepared.lacks_keys() {
        true => prepared.gather_keys(true, r.forks as usize),
        false => gathered.notes,
    };
    for note in &notes {
        log.line(note);
    }
    let head = prepared.cluster.head.name.to_string();
    if prepared.cluster.slurm.enabled && !prepared.nodes.contains(&head) {
        log.line(&format!(
            "slurm: {head} is not among the selected nodes: a change to slurm.conf or munge.key reaches only the nodes selected (apply {head} too)"
        ));
    }
    carry_known_keys(&prepared, &log);
    let mut reports = apply_pass(&prepared, args, opts, &log);
    // Workers first reached in this run (their lease came from the head
    // just now) were not there to give their host keys: learn them now and
    // apply once more, so every node's known_hosts lists every node.
    let missing = prepared.keys_missing();
    if missing > 0 && exit_code(&reports) == EXIT_OK {
        for note in prepared.gather_keys(true, r.forks as usize) {
            log.line(&note);
        }
        if prepared.keys_missing() < missing {
            log.line("host keys or hardware learned after their nodes' first apply; applying again so that every node's known_hosts and slurm.conf list them");
            let second = apply_pass(&prepared, args, opts, &log);
            reports = merge(reports, second);
        }
    }
    let selected = prepared.nodes.clone();
    drop(prepared);
    log.finish();

    // Inventory order in the recap.
    reports.sort_by_key(|rep| selected.iter().position(|n| *n == rep.node));
    match r.output {
        OutputFormat::Text => print!("{}", report::recap_text(&reports, &run_id, verbose)),
        OutputFormat::Json => println!("{}", report::json(Some(&run_id), &reports)),
    }
    Ok(exit_code(&reports))
}

/// One apply of every selected node: the head, then the workers.
fn apply_pass(
    p: &Prepared,
    args: &ApplyArgs,
    opts: engine::RunOptions,
    log: &Log,
) -> Vec<NodeReport> {
    let (head, workers) = nodes(p);
    let mut reports: Vec<NodeReport> = Vec::new();
    let mut head_status = None;
    if let Some(h) = &head {
        log.start_loud(&h.name, "applying");
        // A few quick retries: the head may be busy (sshd MaxStartups).
        let report = with_retries(p, h, opts, Duration::from_secs(6), log);
        head_status = Some(report.status);
        reports.push(report);
    }

    // Workers behind a head that is unreachable, failed or reverted are not
    // tried (and not waited for): they depend on its DHCP, DNS and NAT.
    let head_down = matches!(
        head_status,
        Some(Status::Unreachable | Status::Failed | Status::Reverted)
    );
    let (direct, blocked): (Vec<Node>, Vec<Node>) = workers
        .into_iter()
        .partition(|w| !(head_down && w.via_head));
    for w in &blocked {
        let rep = not_tried(&w.name, &p.cluster.head.name, head_status);
        log.report(&rep);
        reports.push(rep);
    }
    let wait = Duration::from_secs(args.wait);
    let forks = args.remote.forks as usize;
    reports.extend(apply_workers(p, &direct, opts, forks, wait, log));
    reports // dropping the nodes closes every ssh master connection
}

/// Two passes as one report per node: what either pass changed, the
/// second pass's standing.
fn merge(first: Vec<NodeReport>, second: Vec<NodeReport>) -> Vec<NodeReport> {
    second
        .into_iter()
        .map(|mut b| {
            if let Some(a) = first.iter().find(|a| a.node == b.node) {
                if a.status == Status::Changed && b.status == Status::Ok {
                    b.status = Status::Changed;
                }
                let mut changes = a.changes.clone();
                changes.append(&mut b.changes);
                b.changes = changes;
                let mut handlers = a.handlers.clone();
                handlers.append(&mut b.handlers);
                b.handlers = handlers;
                let mut packages = a.packages.clone();
                packages.append(&mut b.packages);
                b.packages = packages;
                b.round_trips += a.round_trips;
                b.backup_dir = b.backup_dir.or_else(|| a.backup_dir.clone());
            }
            b
        })
        .collect()
}

/// The head (if selected) and the workers, each with its transport.
fn nodes(p: &Prepared) -> (Option<Node>, Vec<Node>) {
    let mut head: Option<Node> = None;
    let mut workers: Vec<Node> = Vec::new();
    for name in &p.nodes {
        let worker = p.cluster.worker(name);
        let node = Node {
            transport: p.connector.transport_for(&p.cluster, name),
            via_head: worker.is_some_and(|w| w.via_head),
            name: name.clone(),
        };
        match worker {
            Some(_) => workers.push(node),
            None => head = Some(node),
        }
    }
    (head, workers)
}

/// A worker not tried because its head is down.
fn not_tried(name: &str, head_name: &str, head_status: Option<Status>) -> NodeReport {
    let mut rep = NodeReport::new(name);
    if head_status == Some(Status::Unreachable) {
        rep.status = Status::Unreachable;
        rep.message = Some(format!(
            "not tried: its jump host {head_name} is unreachable"
        ));
    } else {
        rep.status = Status::Failed;
        rep.message = Some(format!(
            "not tried: head {head_name} failed (workers depend on its DHCP, DNS and NAT)"
        ));
    }
    rep
}

/// 130 after Ctrl-C, 1 when any node failed, was unreachable or reverted.
fn exit_code(reports: &[NodeReport]) -> i32 {
    let any = |f: fn(Status) -> bool| reports.iter().any(|r| f(r.status));
    if any(|s| s == Status::Interrupted) {
        EXIT_INTERRUPTED
    } else if any(|s| matches!(s, Status::Failed | Status::Unreachable | Status::Reverted)) {
        EXIT_ERROR
    } else {
        EXIT_OK
    }
}

/// Apply one node, retrying while it is unreachable until `wait` is over.
fn with_retries(
    p: &Prepared,
    n: &Node,
    opts: engine::RunOptions,
    wait: Duration,
    log: &Log,
) -> NodeReport {
    let deadline = Instant::now() + wait;
    let mut backoff = Duration::from_secs(1);
    loop {
        let rep = n.apply(p, opts);
        if rep.status != Status::Unreachable || Instant::now() + backoff > deadline {
            log.report(&rep);
            return rep;
        }
        log.start(&n.name, "unreachable, retrying");
        log.line(&format!(
            "{}: unreachable, retrying in {}s: {}",
            n.name,
            backoff.as_secs(),
            rep.message.as_deref().unwrap_or("")
        ));
        if !sleep(backoff) {
            let mut done = Vec::new();
            finish_waiting(vec![rep], &mut done, log);
            return done.remove(0);
        }
        backoff = (backoff * 2).min(Duration::from_secs(8));
    }
}

/// Workers in parallel; the unreachable ones again after a backoff, saying
/// who apply waits for, until `wait` is over.
fn apply_workers(
    p: &Prepared,
    nodes: &[Node],
    opts: engine::RunOptions,
    forks: usize,
    wait: Duration,
    log: &Log,
) -> Vec<NodeReport> {
    let start = Instant::now();
    let deadline = start + wait;
    let mut backoff = Duration::from_secs(1);
    let mut todo: Vec<&Node> = nodes.iter().collect();
    let mut done: Vec<NodeReport> = Vec::new();
    let mut moves = Moves::default();
    while !todo.is_empty() {
        let round = pool::parallel(&todo, forks, |n| {
            log.start(&n.name, "applying");
            let rep = n.apply(p, opts);
            p.done_with(&n.name, n.transport.as_ref());
            if rep.status != Status::Unreachable {
                log.report(&rep);
            }
            rep
        });
        let mut again = Vec::new();
        let mut waiting: Vec<NodeReport> = Vec::new();
        for (n, rep) in todo.iter().zip(round) {
            if rep.status == Status::Unreachable {
                again.push(*n);
                waiting.push(rep);
            } else {
                done.push(rep);
            }
        }
        let out_of_time = Instant::now() + backoff > deadline;
        if again.is_empty() || out_of_time || INTERRUPTED.load(Ordering::SeqCst) {
            moves.explain(&mut waiting);
            finish_waiting(waiting, &mut done, log);
            break;
        }
        moves.ask(p, &again, opts.run_id, log);
        for n in &again {
            log.start(&n.name, "unreachable, waiting (for its DHCP lease?)");
        }
        let names: Vec<&str> = again.iter().map(|n| n.name.as_str()).collect();
        log.line(&format!(
            "waiting for {} ({} unreachable, e.g. {}); next try in {}s, giving up in {}s",
            hostlist::fold(&names),
            names.len(),
            waiting[0].message.as_deref().unwrap_or("no answer"),
            backoff.as_secs(),
            deadline.saturating_duration_since(Instant::now()).as_secs()
        ));
        if !sleep(backoff) {
            moves.explain(&mut waiting);
            finish_waiting(waiting, &mut done, log);
            break;
        }
        backoff = (backoff * 2).min(Duration::from_secs(8));
        todo = again;
    }
    done
}

/// Workers unreachable at their reservation that hold another address
/// from the head's DHCP (a pool address taken before the inventory
/// reserved one for their MAC, or their old one after an `ip:` change):
/// each is asked to renew onto its reservation (`engine::ask_to_renew`),
/// then reached there over a fresh connection like any worker. Asked once
/// a run; asked again on a later round only when it could not be reached
/// at the address it holds (a machine that took its lease before its sshd
/// runs). What was found is kept for the report of a worker that still
/// does not answer.
#[derive(Default)]
struct Moves {
    /// Node name, what happened, and whether that settles it for this run.
    notes: Vec<(String, String, bool)>,
}

impl Moves {
    fn ask(&mut self, p: &Prepared, nodes: &[&Node], run_id: &str, log: &Log) {
        let cluster = &p.cluster;
        // Static addressing: the address is the node's own file's, not a
        // lease's; nothing to renew.
        if cluster.lan.addressing != Addressing::Dhcp {
            return;
        }
        let settled = |name: &str| self.notes.iter().any(|(n, _, done)| n == name && *done);
        let todo: Vec<_> = nodes
            .iter()
            .filter(|n| !settled(&n.name))
            .filter_map(|n| cluster.worker(&n.name))
            .filter(|w| w.via_head && w.mac.is_some())
            .collect();
        if todo.is_empty() {
            return;
        }
        let head = p
            .connector
            .transport_for(cluster, cluster.head.name.as_str());
        let leases = match engine::read_leases(head.as_ref()) {
            Ok(l) => l,
            Err(e) => {
                log.line(&format!("cannot read the head's DHCP leases: {e}"));
                return;
            }
        };
        for w in todo {
            if INTERRUPTED.load(Ordering::SeqCst) {
                return;
            }
            let held = leases
                .iter()
                .filter(|l| Some(&l.mac) == w.mac.as_ref())
                .max_by_key(|l| l.expiry);
            let (note, done) = match held {
                None => (
                    "holds no lease from the head (is it on and on the LAN?)".to_string(),
                    false,
                ),
                Some(l) if l.ip == w.ip => (
                    format!("holds its reservation {} from the head", w.ip),
                    false,
                ),
                Some(l) => {
                    let (note, done) = move_worker(p, w, l.ip, run_id);
                    log.line(&format!("{}: {note}", w.name));
                    (note, done)
                }
            };
            self.notes.retain(|(n, _, _)| *n != w.name.as_str());
            self.notes.push((w.name.to_string(), note, done));
        }
    }

    /// What was found for each worker that still does not answer.
    fn explain(&self, waiting: &mut [NodeReport]) {
        for rep in waiting {
            if let Some((_, note, _)) = self.notes.iter().find(|(n, _, _)| *n == rep.node) {
                let msg = rep.message.take().unwrap_or_default();
                rep.message = Some(format!("{msg} (it {note})"));
            }
        }
    }
}

/// Before the head's apply changes any reservation: a worker whose `ip:`
/// changed is known in known_hosts under the address it holds now (its old
/// reservation, outside the pool), not under its new one. Its key is
/// recorded for the new address too, so that wherever the worker is found
/// (moved by apply, or renewed by itself first), the connection there is
/// checked strictly against the key it had. Nothing is recorded for a pool
/// address or an unknown key; an unreadable known_hosts records nothing.
fn carry_known_keys(p: &Prepared, log: &Log) {
    let cluster = &p.cluster;
    if cluster.lan.addressing != Addressing::Dhcp {
        return;
    }
    let known = |w: &Worker| {
        p.connector
            .known_hosts(cluster, &w.ssh.host)
            .and_then(|k| Ok(!k.knows(&w.ssh.host, w.ssh.port)?).map(|unknown| (k, unknown)))
    };
    let todo: Vec<_> = p
        .nodes
        .iter()
        .filter_map(|n| cluster.worker(n))
        .filter(|w| w.via_head && w.mac.is_some())
        .filter_map(|w| match known(w) {
            Ok((k, true)) => Some((w, k)),
            _ => None,
        })
        .collect();
    if todo.is_empty() {
        return;
    }
    let head = p
        .connector
        .transport_for(cluster, cluster.head.name.as_str());
    let Ok(leases) = engine::read_leases(head.as_ref()) else {
        return;
    };
    let lan = &cluster.lan;
    for (w, kh) in todo {
        let held = leases
            .iter()
            .filter(|l| Some(&l.mac) == w.mac.as_ref())
            .max_by_key(|l| l.expiry)
            .map(|l| l.ip)
            .filter(|ip| *ip != w.ip && !(lan.dhcp_start..=lan.dhcp_end).contains(ip));
        let Some(held) = held else { continue };
        if let Ok(n) = kh.add_name(&w.ssh.host, &held.to_string(), w.ssh.port) {
            if n > 0 {
                log.line(&format!(
                    "{}: its host key, known for {held} (its address until now), recorded for {} in {}",
                    w.name,
                    w.ssh.host,
                    kh.recorded_in()
                ));
            }
        }
    }
}

/// Ask worker `w`, which holds `held` from the head's DHCP, to renew onto
/// its reservation: what happened, in words, and whether that settles it
/// for this run (false: it could not be reached there; try again later).
/// Its host key is checked strictly under the name it is known by: its
/// target's when known_hosts has it (or when a new key may be recorded
/// under it); else, when `held` is an old reservation (outside the pool)
/// with a known key (its `ip` changed), that address's, and then, once it
/// was asked, that same key is recorded for the new address, where apply's
/// fresh connection checks it again. The worker's interface must have its
/// MAC (checked on the worker).
fn move_worker(p: &Prepared, w: &Worker, held: Ipv4Addr, run_id: &str) -> (String, bool) {
    let what = format!(
        "holds {held} from the head's DHCP, not its reservation {}",
        w.ip
    );
    let Some(mac) = w.mac.as_ref() else {
        return (what, true);
    };
    let target = w.ssh.host.as_str();
    let port = w.ssh.port;
    let lan = &p.cluster.lan;
    let in_pool = (lan.dhcp_start..=lan.dhcp_end).contains(&held);
    let known = p.connector.known_hosts(&p.cluster, target).and_then(|k| {
        let t = k.knows(target, port)?;
        let h = !in_pool && k.knows(&held.to_string(), port)?;
        Ok((k, t, h))
    });
    let (kh, target_known, held_known) = match known {
        Ok(k) => k,
        Err(e) => return (format!("{what}; not moved: {e}"), true),
    };
    let as_target = target_known || !held_known;
    if as_target && !target_known && !p.connector.accepts_new_keys() {
        return (
            format!("{what}; its host key is not known yet (a new machine): pass --accept-new-host-keys to trust it on first contact through the head"),
            true,
        );
    }
    let Some(t) = p
        .connector
        .transport_at(&p.cluster, &w.name, held, as_target)
    else {
        return (what, true);
    };
    let renewal = engine::ask_to_renew(t.as_ref(), held, w.ip, mac, run_id);
    t.close();
    match renewal {
        engine::Renewal::Asked { iface, client } => {
            let mut note = format!("{what}: asked {client} on {iface} to renew");
            if !as_target {
                match kh.add_name(target, &held.to_string(), port) {
                    Ok(n) if n > 0 => note.push_str(&format!(
                        "; its host key, known for {held}, recorded for {target} in {}",
                        kh.recorded_in()
                    )),
                    Ok(_) => {}
                    Err(e) => note.push_str(&format!("; {e}")),
                }
            }
            (note, true)
        }
        engine::Renewal::Refused(why) => (format!("{what}; it was not moved: {why}"), true),
        engine::Renewal::Unreachable(why) => {
            (format!("{what}; not reachable there either: {why}"), false)
        }
    }
}

/// Workers still unreachable when apply stops waiting: unreachable, or
/// interrupted when Ctrl-C ended the wait.
fn finish_waiting(waiting: Vec<NodeReport>, done: &mut Vec<NodeReport>, log: &Log) {
    for mut rep in waiting {
        if INTERRUPTED.load(Ordering::SeqCst) {
            rep.status = Status::Interrupted;
            rep.message = Some(format!(
                "interrupted while waiting for it (last try: {})",
                rep.message.as_deref().unwrap_or("no answer")
            ));
        }
        log.report(&rep);
        done.push(rep);
    }
}

/// Sleep in small steps; false when interrupted.
fn sleep(d: Duration) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if INTERRUPTED.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100).min(end - Instant::now()));
    }
    !INTERRUPTED.load(Ordering::SeqCst)
}
