//! Two inventory nodes that are one machine: a worker whose own `ssh:`
//! target names the head (its SSH target, name, FQDN or LAN address),
//! another worker, or the target another worker already has. Apply would
//! put one node's files on the other (a worker's firewall on the head: no
//! NAT, FORWARD dropped).

use std::collections::BTreeMap;

use super::head::HeadDraft;
use super::Diags;
use crate::cluster::Worker;
use crate::error::Location;
use crate::hostlist;
use crate::inventory::{loc, RawInventory};
use crate::values::shown;

const HELP: &str = "give each worker an address or name that reaches that worker itself, or drop its `ssh:` to reach it through the head";

pub(super) fn same_machine(
    d: &mut Diags,
    raw: &RawInventory,
    head: &HeadDraft,
    workers: &[Worker],
) {
    // Where each worker's own `ssh:` was written (a range shares one).
    let mut at: BTreeMap<String, Option<Location>> = BTreeMap::new();
    for e in &raw.workers {
        let w = &e.value;
        let Some(s) = &w.ssh else {
            continue;
        };
        let names = match (&w.name, &w.names) {
            (Some(n), _) => vec![n.value.clone()],
            (None, Some(list)) => hostlist::expand(&list.value).unwrap_or_default(),
            (None, None) => Vec::new(),
        };
        for n in names {
            at.insert(n, loc(s));
        }
    }
    let domain = raw.domain.value.to_ascii_lowercase();
    let mut head_names: Vec<String> = Vec::new();
    if let Some(n) = &head.name {
        head_names.push(n.to_string());
        head_names.push(format!("{n}.{domain}"));
    }
    if let Some(ip) = head.lan_ip {
        head_names.push(ip.to_string());
    }
    let head_name = head
        .name
        .as_ref()
        .map_or("the head".to_string(), |n| n.to_string());
    let mut seen: BTreeMap<(String, u16), String> = BTreeMap::new();
    if let Some(t) = &head.ssh {
        seen.insert((t.host.to_ascii_lowercase(), t.port), head_name.clone());
    }
    for w in workers.iter().filter(|w| !w.via_head) {
        let host = w.ssh.host.trim_end_matches('.').to_ascii_lowercase();
        let key = (host.clone(), w.ssh.port);
        let other_worker = workers.iter().find(|o| {
            o.name != w.name
                && (o.name.as_str() == host || o.fqdn == host || o.ip.to_string() == host)
        });
        let why = if head_names.contains(&host) {
            Some(format!("names the head ({head_name})"))
        } else if let Some(o) = other_worker {
            Some(format!("names worker {}", o.name))
        } else {
            seen.get(&key).map(|o| match *o == head_name {
                true => format!("is the head's own target ({head_name})"),
                false => format!("is also worker {o}'s"),
            })
        };
        seen.entry(key).or_insert_with(|| w.name.to_string());
        if let Some(why) = why {
            d.err(
                at.get(w.name.as_str()).copied().flatten(),
                Some(w.name.as_str()),
                format!(
                    "ssh target `{}` {why}: apply would configure one machine as two nodes",
                    shown(&w.ssh.to_string())
                ),
                Some(HELP),
            );
        }
    }
}
