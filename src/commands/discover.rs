//! `clusterctl discover`: the machines that hold an address from the head's
//! DHCP pool and that the inventory does not list, read from dnsmasq's
//! lease file in one round trip to the head. Each with its address, the
//! host name it sent, the vendor its MAC prefix names and when it took its
//! lease. Every pool lease lasts the same (`dhcp-range=...,12h` in the
//! head's dnsmasq config) and is renewed every half of it, so the order of
//! the leases' expiry is the order in which the machines took their current
//! leases: power nodes on one at a time and the list follows their boot
//! order. Touches
//! nothing. Everything in the lease file came from the network (a client
//! names itself): each value is checked, and a host name is only shown.
//! The order is that of each machine's current lease: a machine that
//! rebooted (or renewed) later sorts after one powered on after it.

use std::net::Ipv4Addr;

use serde::Serialize;

use super::remote;
use crate::cli::{DiscoverArgs, OutputFormat};
use crate::cluster::Cluster;
use crate::engine::{self, Held};
use crate::error::{Error, Result, EXIT_OK};
use crate::transport::Connector;
use crate::values::shown;

/// How long a pool lease lasts: the `12h` of the head's `dhcp-range` line
/// (`templates/head/etc/dnsmasq.d/clusterctl.conf.j2`).
pub const POOL_LEASE_SECONDS: u64 = 12 * 3600;

/// One machine the inventory does not list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Discovered {
    pub mac: String,
    pub ip: Ipv4Addr,
    /// The name the machine sent, when it sent one (shown escaped).
    pub hostname: Option<String>,
    pub vendor: &'static str,
    /// When it took (or last renewed) its lease: seconds since the epoch.
    pub since: u64,
}

pub fn run(args: &DiscoverArgs) -> Result<i32> {
    let prepared = remote::prepare(&args.remote)?;
    let cluster = &prepared.cluster;
    let found = read(cluster, &prepared.connector)?;
    match args.remote.output {
        OutputFormat::Text => print!("{}", table(&found)),
        OutputFormat::Json => println!("{}", serde_json::json!({ "discovered": found })),
    }
    Ok(EXIT_OK)
}

/// The head's leases of MACs the inventory does not list, oldest first
/// (one round trip to the head).
pub fn read(cluster: &Cluster, connector: &Connector) -> Result<Vec<Discovered>> {
    let head = connector.transport_for(cluster, cluster.head.name.as_str());
    let leases = engine::read_leases(head.as_ref()).map_err(|e| {
        Error::usage(
            format!("cannot read the head's DHCP leases: {e}"),
            Some("the head must be reachable (clusterctl verify --nodes head)"),
        )
    })?;
    Ok(unknown(cluster, &leases))
}

/// The leases of MACs the inventory does not list, oldest first.
pub fn unknown(cluster: &Cluster, leases: &[Held]) -> Vec<Discovered> {
    let known: Vec<&str> = cluster
        .workers
        .iter()
        .filter_map(|w| w.mac.as_ref().map(|m| m.as_str()))
        .collect();
    let mut out: Vec<Discovered> = leases
        .iter()
        .filter(|l| !known.contains(&l.mac.as_str()))
        .map(|l| Discovered {
            vendor: vendor(l.mac.as_str()),
            hostname: l.hostname.as_deref().map(shown),
            since: l.expiry.saturating_sub(POOL_LEASE_SECONDS),
            ip: l.ip,
            mac: l.mac.to_string(),
        })
        .collect();
    // One entry per MAC (a client that asked with two client ids holds
    // two leases): its latest.
    out.sort_by(|a, b| (&a.mac, b.since).cmp(&(&b.mac, a.since)));
    out.dedup_by(|later, kept| later.mac == kept.mac);
    out.sort_by(|a, b| (a.since, &a.mac).cmp(&(b.since, &b.mac)));
    out
}

/// The vendor a MAC's prefix names: the Raspberry Pi Foundation's and
/// Raspberry Pi Ltd's prefixes, and locally administered addresses (VMs,
/// containers, randomised). Others are `unknown` (no OUI database).
pub fn vendor(mac: &str) -> &'static str {
    const RASPBERRY_PI: &[&str] = &[
        "b8:27:eb", "dc:a6:32", "e4:5f:01", "28:cd:c1", "d8:3a:dd", "2c:cf:67",
    ];
    let prefix = mac.get(..8).unwrap_or("");
    if RASPBERRY_PI.contains(&prefix) {
        return "Raspberry Pi";
    }
    match u8::from_str_radix(mac.get(..2).unwrap_or("00"), 16) {
        Ok(b) if b & 0x02 != 0 => "locally administered",
        _ => "unknown",
    }
}

/// The text table, oldest lease first.
fn table(found: &[Discovered]) -> String {
    if found.is_empty() {
        return "no machine outside the inventory holds a lease from the head's pool\n".into();
    }
    let mut s = format!(
        "{:<17}  {:<15}  {:<20}  {:<20}  {}\n",
        "MAC", "ADDRESS", "HOSTNAME", "VENDOR", "LEASE SINCE"
    );
    for d in found {
        s.push_str(&format!(
            "{:<17}  {:<15}  {:<20}  {:<20}  {}\n",
            d.mac,
            d.ip.to_string(),
            d.hostname.as_deref().unwrap_or("-"),
            d.vendor,
            crate::run_id::utc(d.since)
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pool's lease time here and in the head's dnsmasq config agree.
    #[test]
    fn the_lease_time_is_the_templates() {
        let t = include_str!("../../templates/head/etc/dnsmasq.d/clusterctl.conf.j2");
        assert!(
            t.contains("}},12h\n"),
            "the dhcp-range line's lease time changed"
        );
        assert_eq!(POOL_LEASE_SECONDS, 12 * 3600);
    }

    #[test]
    fn unknown_macs_in_the_order_they_asked_with_hostile_names_shown_safely() {
        let c =
            Cluster::from_str(crate::commands::EXAMPLE, std::path::Path::new("x.yaml")).unwrap();
        let text = "@@lease 1000050000 dc:a6:32:00:00:01 10.0.0.11 node01 *\n\
                    @@lease 1000043300 02:42:ac:11:00:02 10.0.0.150 * 01:02\n\
                    @@lease 1000043200 DC:A6:32:AA:BB:CC 10.0.0.151 raspberrypi *\n\
                    @@lease 1000043250 e8:de:27:00:00:01 10.0.0.152 \u{1b}[2J;rm *\n\
                    @@lease 1000043100 e8:de:27:00:00:01 10.0.0.154 old *\n\
                    @@lease notanumber dc:a6:32:00:00:09 10.0.0.153 x *\n\
                    @@done\n";
        let found = unknown(&c, &engine::parse_leases(text));
        let macs: Vec<&str> = found.iter().map(|d| d.mac.as_str()).collect();
        assert_eq!(
            macs,
            [
                "dc:a6:32:aa:bb:cc",
                "e8:de:27:00:00:01",
                "02:42:ac:11:00:02"
            ]
        );
        assert_eq!(found[0].vendor, "Raspberry Pi");
        assert_eq!(found[0].since, 1_000_000_000);
        assert_eq!(found[0].hostname.as_deref(), Some("raspberrypi"));
        assert_eq!(found[1].vendor, "unknown");
        assert!(!found[1].hostname.as_deref().unwrap().contains('\u{1b}'));
        assert_eq!(found[2].vendor, "locally administered");
        assert_eq!(found[2].hostname, None);
        let t = table(&found);
        assert!(t.starts_with("MAC "), "{t}");
        assert!(t.contains("2001-09-09 01:46:40 UTC"), "{t}");
    }
}
