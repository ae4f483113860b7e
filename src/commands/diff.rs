//! `clusterctl diff` and `clusterctl apply --dry-run`: render, probe every node
//! (one round trip each, in parallel), plan, print unified diffs and the
//! handlers that would run (or the same plan as JSON). Touches nothing. Exit 0
//! in sync, 2 changes pending, 1 when a node failed or was unreachable.

use serde::Serialize;

use super::remote;
use crate::apply;
use crate::cli::{OutputFormat, RemoteArgs};
use crate::error::{Result, EXIT_CHANGES, EXIT_ERROR, EXIT_OK};
use crate::plan::{Action, NodePlan};

/// One node's plan, as `--output json` prints it.
#[derive(Debug, Serialize)]
struct NodeJson {
    node: String,
    /// `in-sync`, `changes`, `failed` or `unreachable`
    status: &'static str,
    changes: Vec<ChangeJson>,
    handlers: Vec<HandlerJson>,
    message: Option<String>,
    round_trips: usize,
}

#[derive(Debug, Serialize)]
struct ChangeJson {
    step: &'static str,
    path: &'static str,
    /// `create`, `update` or `fix` (mode/owner only)
    action: &'static str,
    mode: String,
    diff: String,
}

#[derive(Debug, Serialize)]
struct HandlerJson {
    step: &'static str,
    action: String,
}

/// The outcome of planning one node.
enum NodeResult {
    Planned(NodePlan),
    Failed { unreachable: bool, message: String },
}

pub fn run(args: &RemoteArgs, verbose: u8) -> Result<i32> {
    let remote::Prepared {
        cluster,
        nodes,
        connector,
    } = remote::prepare(args)?;
    let work: Vec<_> = nodes
        .into_iter()
        .map(|(name, files)| {
            let t = connector.transport_for(&cluster, &name);
            (name, files, t)
        })
        .collect();

    let results: Vec<(String, NodeResult, usize)> =
        remote::parallel(&work, args.forks as usize, |(name, files, t)| {
            let r = match apply::probe_and_plan(t.as_ref(), files) {
                Ok((_, p)) => NodeResult::Planned(p),
                Err((status, message)) => NodeResult::Failed {
                    unreachable: status == apply::Status::Unreachable,
                    message,
                },
            };
            (name.clone(), r, t.round_trips())
        });
    drop(work); // closes every ssh master connection
    drop(connector);

    let (mut pending, mut failed) = (0usize, 0usize);
    for (_, r, _) in &results {
        match r {
            NodeResult::Planned(p) => pending += p.pending() + p.owed.len(),
            NodeResult::Failed { .. } => failed += 1,
        }
    }
    match args.output {
        OutputFormat::Text => print!("{}", text(&results, verbose)),
        OutputFormat::Json => {
            let nodes: Vec<NodeJson> = results.iter().map(json).collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({ "nodes": nodes }))
                    .unwrap_or_default()
            );
        }
    }
    Ok(if failed > 0 {
        EXIT_ERROR
    } else if pending > 0 {
        EXIT_CHANGES
    } else {
        EXIT_OK
    })
}

fn action_name(a: Action) -> &'static str {
    match a {
        Action::Create => "create",
        Action::Update => "update",
        Action::Fix => "fix",
        Action::Unchanged => "unchanged",
    }
}

fn text(results: &[(String, NodeResult, usize)], verbose: u8) -> String {
    let mut text = String::new();
    for (name, r, trips) in results {
        match r {
            NodeResult::Planned(p) => {
                for c in p.changes.iter().filter(|c| c.action != Action::Unchanged) {
                    if c.action == Action::Fix {
                        text.push_str(&format!(
                            "==> {name}: {} (mode/owner to {:04o} {}:{})\n",
                            c.path, c.mode, c.owner, c.group
                        ));
                    } else {
                        text.push_str(&format!(
                            "==> {name}: {} ({})\n",
                            c.path,
                            action_name(c.action)
                        ));
                        text.push_str(&c.diff);
                    }
                }
                for (step, h) in &p.handlers {
                    let owed = if p.owed.contains(step) {
                        ", owed by an earlier apply that did not finish"
                    } else {
                        ""
                    };
                    text.push_str(&format!("==> {name}: would {h} (step {step}{owed})\n"));
                }
                text.push_str(&format!(
                    "{name}: {} to change, {} in sync{}\n",
                    p.pending(),
                    p.changes.len() - p.pending(),
                    if verbose > 0 {
                        format!(" ({trips} round trip(s))")
                    } else {
                        String::new()
                    }
                ));
            }
            NodeResult::Failed {
                unreachable,
                message,
            } => {
                let what = if *unreachable {
                    "unreachable"
                } else {
                    "failed"
                };
                text.push_str(&format!("{name}: {what}: {message}\n"));
            }
        }
    }
    text
}

fn json((name, r, trips): &(String, NodeResult, usize)) -> NodeJson {
    let mut n = NodeJson {
        node: name.clone(),
        status: "in-sync",
        changes: Vec::new(),
        handlers: Vec::new(),
        message: None,
        round_trips: *trips,
    };
    match r {
        NodeResult::Planned(p) => {
            if !p.is_noop() {
                n.status = "changes";
            }
            n.changes = p
                .changes
                .iter()
                .filter(|c| c.action != Action::Unchanged)
                .map(|c| ChangeJson {
                    step: c.step,
                    path: c.path,
                    action: action_name(c.action),
                    mode: format!("{:04o}", c.mode),
                    diff: c.diff.clone(),
                })
                .collect();
            n.handlers = p
                .handlers
                .iter()
                .map(|(step, h)| HandlerJson {
                    step,
                    action: h.to_string(),
                })
                .collect();
        }
        NodeResult::Failed {
            unreachable,
            message,
        } => {
            n.status = if *unreachable {
                "unreachable"
            } else {
                "failed"
            };
            n.message = Some(message.clone());
        }
    }
    n
}
