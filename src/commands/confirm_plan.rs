//! `apply` on a terminal, before touching anything: probe every selected
//! node (in parallel, like `diff`), print a summary per node (files,
//! packages, handlers) and ask for confirmation. Never asked without a
//! terminal on stdin and stderr, with `--yes`, or when nothing would change.

use std::io::IsTerminal;

use super::remote::Prepared;
use crate::engine;
use crate::error::{Error, Result};
use crate::pool;
use crate::report::{NodeReport, Status};

/// Whether apply should ask: a person is at a terminal and did not say `--yes`.
pub fn should_ask(yes: bool) -> bool {
    !yes && std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Probe and plan every node, show the summary, ask. `Ok(true)`: go on.
pub fn ask(p: &Prepared, forks: usize) -> Result<bool> {
    let work: Vec<_> = p
        .nodes
        .iter()
        .map(|name| (name, p.connector.transport_for(&p.cluster, name)))
        .collect();
    let head = p.cluster.head.name.as_str();
    let reports: Vec<NodeReport> = pool::head_first(
        &work,
        forks,
        |w| w.0.as_str() == head,
        |(name, t)| {
            let r = engine::diff_node(t.as_ref(), p.job(name));
            p.done_with(name, t.as_ref());
            r
        },
    );
    drop(work);
    eprint!("{}", summary(&reports));
    if reports.iter().all(|r| r.status == Status::Ok) {
        eprintln!("Nothing to change.");
        return Ok(true);
    }
    let n = reports.iter().filter(|r| r.status != Status::Ok).count();
    dialoguer::Confirm::new()
        .with_prompt(format!(
            "Apply these changes to {n} node{}?",
            if n == 1 { "" } else { "s" }
        ))
        .default(false)
        .wait_for_newline(true)
        .interact_opt()
        .map(|answer| answer.unwrap_or(false))
        .map_err(|e| Error::usage(format!("confirmation stopped: {e}"), None))
}

/// One line per node: what apply would do there.
pub fn summary(reports: &[NodeReport]) -> String {
    let width = reports.iter().map(|r| r.node.len()).max().unwrap_or(4);
    let mut s = String::from("Plan (clusterctl diff shows every change as a unified diff):\n");
    for r in reports {
        let detail = match r.status {
            Status::Ok => "in sync".to_string(),
            Status::Changes => changes(r),
            Status::Unreachable => format!(
                "unreachable now; apply will wait for it ({})",
                r.message.as_deref().unwrap_or("no answer")
            ),
            _ => format!("{}: {}", r.status, r.message.as_deref().unwrap_or("")),
        };
        s.push_str(&format!("  {:width$}  {detail}\n", r.node));
    }
    s
}

fn changes(r: &NodeReport) -> String {
    let count = |a: &str| r.changes.iter().filter(|c| c.action == a).count();
    let mut parts = vec![format!(
        "{} file{} ({} create, {} update, {} mode/owner)",
        r.changes.len(),
        if r.changes.len() == 1 { "" } else { "s" },
        count("create"),
        count("update"),
        count("fix")
    )];
    if !r.packages.is_empty() {
        parts.push(format!("install {}", r.packages.join(" ")));
    }
    if !r.accounts.is_empty() {
        let names: Vec<&str> = r
            .accounts
            .iter()
            .map(|a| a.strip_prefix("user: ").unwrap_or(a))
            .map(|a| a.split(" (").next().unwrap_or(a))
            .collect();
        parts.push(format!("users: {}", names.join(", ")));
    }
    if !r.handlers.is_empty() {
        let labels: Vec<&str> = r.handlers.iter().map(|h| h.action.as_str()).collect();
        parts.push(format!("then {}", labels.join(", ")));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_names_files_packages_and_handlers() {
        let mut head = NodeReport::new("head");
        head.status = Status::Changes;
        head.packages = vec!["dnsmasq".into()];
        head.changes.push(crate::report::ChangeReport {
            step: "dns",
            path: "/etc/dnsmasq.d/clusterctl.conf",
            action: "create",
            mode: "0644".into(),
            owner: "root".into(),
            group: "root".into(),
            diff: String::new(),
        });
        head.handlers.push(crate::report::HandlerReport {
            step: "dns",
            action: "restart dnsmasq".into(),
            command: String::new(),
            owed: false,
        });
        let w = NodeReport::new("node01");
        let s = summary(&[head, w]);
        assert!(s.contains(
            "  head    1 file (1 create, 0 update, 0 mode/owner); install dnsmasq; then restart dnsmasq\n"
        ), "{s}");
        assert!(s.contains("  node01  in sync\n"), "{s}");
    }

    #[test]
    fn summary_names_the_accounts() {
        let mut w = NodeReport::new("w1");
        w.status = Status::Changes;
        w.accounts = vec![
            "user: create alice (2001:2001, shell /bin/bash, home /home/alice local)".into(),
            "user: lock bob (not in the inventory; its files are kept)".into(),
        ];
        let s = summary(&[w]);
        assert!(
            s.contains(
                "  w1  0 files (0 create, 0 update, 0 mode/owner); users: create alice, lock bob\n"
            ),
            "{s}"
        );
    }
}
