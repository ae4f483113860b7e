//! `clusterctl verify`: run the checks (`crate::verify`) on every selected node at
//! once, over the same transports as apply, and print the node x check
//! table (or JSON). Touches nothing. Exit 0 when every check passes or does
//! not apply, 1 on any failure.

use super::remote;
use crate::cli::{OutputFormat, VerifyArgs};
use crate::error::{Error, Result, EXIT_ERROR, EXIT_OK};
use crate::pool;
use crate::verify::{self, NodeChecks, WanTarget};

pub fn run(args: &VerifyArgs, verbose: u8) -> Result<i32> {
    let prepared = remote::prepare(&args.remote)?;
    let cluster = &prepared.cluster;
    let wan = match &args.wan_target {
        Some(t) => Some(WanTarget::parse(t).map_err(|e| {
            Error::usage(
                format!("--wan-target: {e}"),
                Some("an address or name outside the cluster, e.g. 1.1.1.1 or deb.debian.org:80"),
            )
        })?),
        None => cluster.lan.upstream_dns.first().map(|ip| WanTarget {
            host: ip.to_string(),
            port: None,
        }),
    };
    // Selected nodes are in the inventory (`select::select`).
    let work: Vec<_> = prepared
        .nodes
        .iter()
        .filter_map(|name| cluster.node(name))
        .map(|node| (node, prepared.connector.transport_for(cluster, node.name())))
        .collect();
    let head = cluster.head.name.as_str();
    let results: Vec<NodeChecks> = pool::head_first(
        &work,
        args.remote.forks as usize,
        |w| w.0.name() == head,
        |(node, t)| {
            let r = verify::run_node(t.as_ref(), cluster, *node, wan.as_ref());
            prepared.done_with(node.name(), t.as_ref());
            r
        },
    );
    drop(work);
    match args.remote.output {
        OutputFormat::Text => print!("{}", verify::text(&results, verbose)),
        OutputFormat::Json => println!("{}", verify::json(&results)),
    }
    Ok(if results.iter().any(NodeChecks::failed) {
        EXIT_ERROR
    } else {
        EXIT_OK
    })
}
