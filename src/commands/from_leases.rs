//! `add-node --from-leases HOSTLIST`: the machines to name, read from the
//! head's DHCP leases (`discover`'s list: MACs the inventory does not list,
//! in the order they took their leases). With `--watch`, asks the head
//! again every two seconds, with a line each time another machine appears,
//! until there are as many as names; the machines seen while watching are
//! named in the order they appeared (a reboot that renews an earlier
//! machine's lease does not move it behind a later one). Ctrl-C stops the
//! wait and nothing is written.

use std::time::Duration;

use super::apply::{catch_sigint, default_sigint, interrupted};
use super::discover::{self, Discovered};
use crate::cli::{AddNodeArgs, DEFAULT_TIMEOUT};
use crate::cluster::Cluster;
use crate::error::{Error, Result};
use crate::transport::Connector;

/// The first `n` machines outside the inventory that hold a lease from the
/// head's pool, oldest first; `None` after Ctrl-C.
pub fn wait_for(
    args: &AddNodeArgs,
    cluster: &Cluster,
    n: usize,
) -> Result<Option<Vec<Discovered>>> {
    if !args.no_apply && !args.apply.accept_new_host_keys {
        return Err(Error::usage(
            "--from-leases names machines clusterctl has never reached: their host keys are not known",
            Some("pass --accept-new-host-keys to trust each one's key on first contact through the head (or --no-apply to only edit the inventory)"),
        ));
    }
    let kind = super::remote::transport_kind(cluster, args.apply.transport);
    let connector = Connector::new(cluster, kind, false, DEFAULT_TIMEOUT)?;
    if args.watch {
        catch_sigint();
    }
    // MACs in the order this run first saw them: those already there in
    // lease order, then each newcomer as it appears.
    let mut order: Vec<Discovered> = Vec::new();
    let mut shown = usize::MAX;
    let result = loop {
        let found = discover::read(cluster, &connector)?;
        order.retain(|o| found.iter().any(|d| d.mac == o.mac));
        for d in &found {
            match order.iter_mut().find(|o| o.mac == d.mac) {
                Some(o) => *o = d.clone(),
                None => order.push(d.clone()),
            }
        }
        if interrupted() {
            break None;
        }
        if order.len() >= n {
            let (named, rest) = order.split_at(n);
            if !rest.is_empty() {
                let macs: Vec<&str> = rest.iter().map(|d| d.mac.as_str()).collect();
                eprintln!(
                    "note: {} more machine(s) hold a lease and were not named: {}",
                    rest.len(),
                    macs.join(", ")
                );
            }
            break Some(named.to_vec());
        }
        if !args.watch {
            return Err(Error::usage(
                format!(
                    "--from-leases names {n} machine(s) but {} outside the inventory hold a lease from the head's pool",
                    order.len()
                ),
                Some("power the others on (clusterctl discover lists who asked), or pass --watch to wait for them"),
            ));
        }
        if order.len() != shown {
            shown = order.len();
            let last = order
                .last()
                .map(|d| format!(" (latest: {} at {})", d.mac, d.ip))
                .unwrap_or_default();
            eprintln!(
                "waiting for {n} new machine(s) to ask the head for a lease: {shown} so far{last}; Ctrl-C stops, nothing is written"
            );
        }
        if (0..20).any(|_| {
            std::thread::sleep(Duration::from_millis(100));
            interrupted()
        }) {
            break None;
        }
    };
    if args.watch {
        default_sigint();
    }
    Ok(result)
}
