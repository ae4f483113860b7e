//! `add-node --from-leases HOSTLIST`: the machines to name, read from the
//! head's DHCP leases (`discover`'s list: MACs the inventory does not list,
//! in the order they first asked). With `--watch`, asks the head again
//! every two seconds, with a line each time the count changes, until there
//! are as many as names; Ctrl-C stops the wait and nothing is written.

use std::time::Duration;

use super::apply::{catch_sigint, interrupted};
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
    let mut seen = usize::MAX;
    loop {
        let found = discover::read(cluster, &connector)?;
        if found.len() >= n {
            let (named, rest) = found.split_at(n);
            if !rest.is_empty() {
                let macs: Vec<&str> = rest.iter().map(|d| d.mac.as_str()).collect();
                eprintln!(
                    "note: {} more machine(s) hold a lease and were not named: {}",
                    rest.len(),
                    macs.join(", ")
                );
            }
            return Ok(Some(named.to_vec()));
        }
        if !args.watch {
            return Err(Error::usage(
                format!(
                    "--from-leases names {n} machine(s) but {} outside the inventory hold a lease from the head's pool",
                    found.len()
                ),
                Some("power the others on (clusterctl discover lists who asked), or pass --watch to wait for them"),
            ));
        }
        if found.len() != seen {
            seen = found.len();
            let last = found
                .last()
                .map(|d| format!(" (latest: {} at {})", d.mac, d.ip))
                .unwrap_or_default();
            eprintln!(
                "waiting for {n} new machine(s) to ask the head for a lease: {seen} so far{last}; Ctrl-C stops, nothing is written"
            );
        }
        for _ in 0..20 {
            if interrupted() {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
