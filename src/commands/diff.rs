//! `clusterctl diff` and `clusterctl apply --dry-run`: probe every selected
//! node (one round trip each, in parallel), decide and plan with its facts,
//! print unified diffs and the handlers that would run (or the same report
//! as JSON). Touches nothing. Exit 0 in sync, 2 changes pending, 1 when a
//! node failed or was unreachable.

use super::remote;
use crate::cli::{OutputFormat, RemoteArgs};
use crate::engine;
use crate::error::{Result, EXIT_CHANGES, EXIT_ERROR, EXIT_OK};
use crate::pool;
use crate::report::{self, NodeReport, Status};

pub fn run(args: &RemoteArgs, verbose: u8) -> Result<i32> {
    let mut prepared = remote::prepare(args)?;
    for note in prepared.gather_keys(false, args.forks as usize) {
        eprintln!("{note}");
    }
    let work: Vec<_> = prepared
        .nodes
        .iter()
        .map(|name| {
            let t = prepared.connector.transport_for(&prepared.cluster, name);
            (name, t)
        })
        .collect();
    let head = prepared.cluster.head.name.as_str();
    let reports: Vec<NodeReport> = pool::head_first(
        &work,
        args.forks as usize,
        |w| w.0.as_str() == head,
        |(name, t)| {
            let r = engine::diff_node(t.as_ref(), prepared.job(name));
            prepared.done_with(name, t.as_ref());
            r
        },
    );
    drop(work); // closes every ssh master connection
    drop(prepared);

    match args.output {
        OutputFormat::Text => print!("{}", report::plan_text(&reports, verbose)),
        OutputFormat::Json => println!("{}", report::json(None, &reports)),
    }
    let any = |st: Status| reports.iter().any(|r| r.status == st);
    Ok(if any(Status::Failed) || any(Status::Unreachable) {
        EXIT_ERROR
    } else if any(Status::Changes) {
        EXIT_CHANGES
    } else {
        EXIT_OK
    })
}
