//! One clock (`time:`): chrony on every node. The head syncs from the
//! inventory's servers (else its family's pool), serves the cluster LAN only
//! and keeps serving its own clock at a local stratum when it has no
//! upstream; a worker's only source is the head, and it steps its clock
//! whenever it is more than a second off (a board without a real-time clock
//! boots in 1970). clusterctl owns the whole chrony.conf at the path the
//! node's family reads (`src/family/`): a drop-in would leave the distro's
//! `pool` lines in place, and a worker must have no source but the head.
//! Any other time daemon the probe found running or enabled is stopped and
//! disabled by the handler before chrony restarts: never two fighting.

use super::{whole, FileSpec, Handler, Step, Subject};
use crate::cluster::Role;
use crate::family::Pkg;

/// Debian's and Alpine's chrony.conf.
const CHRONY_DIR_CONF: &str = "/etc/chrony/chrony.conf";
/// RHEL's.
const ETC_CHRONY_CONF: &str = "/etc/chrony.conf";
/// Every path a family's chronyd may read: a family names one.
pub const CHRONY_FILES: &[&str] = &[CHRONY_DIR_CONF, ETC_CHRONY_CONF];

fn at(s: &Subject, path: &str) -> bool {
    s.cluster.time.enabled && s.family().is_some_and(|f| f.chrony_conf == path)
}
fn chrony_dir_conf(s: &Subject) -> bool {
    at(s, CHRONY_DIR_CONF)
}
fn etc_chrony_conf(s: &Subject) -> bool {
    at(s, ETC_CHRONY_CONF)
}

const HEAD_FILES: &[FileSpec] = &[
    whole(
        "head/etc/chrony/chrony.conf.j2",
        CHRONY_DIR_CONF,
        chrony_dir_conf,
    ),
    whole("head/etc/chrony.conf.j2", ETC_CHRONY_CONF, etc_chrony_conf),
];
const WORKER_FILES: &[FileSpec] = &[
    whole(
        "worker/etc/chrony/chrony.conf.j2",
        CHRONY_DIR_CONF,
        chrony_dir_conf,
    ),
    whole(
        "worker/etc/chrony.conf.j2",
        ETC_CHRONY_CONF,
        etc_chrony_conf,
    ),
];

pub(super) const HEAD_TIME: Step = Step {
    id: "head-time",
    title: "time server (chrony)",
    role: Role::Head,
    files: HEAD_FILES,
    validator: None,
    handler: Some(Handler::TimeSync),
    packages: &[Pkg::Chrony],
};

pub(super) const WORKER_TIME: Step = Step {
    id: "worker-time",
    title: "time from the head (chrony)",
    role: Role::Worker,
    files: WORKER_FILES,
    validator: None,
    handler: Some(Handler::TimeSync),
    packages: &[Pkg::Chrony],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Cluster;
    use crate::family::{Service, FAMILIES, OTHER_TIME_DAEMONS as OTHER_DAEMONS};
    use crate::templates::Templates;

    fn lab(extra: &str) -> Cluster {
        let text = format!("{}{extra}", include_str!("../../inventories/lab.yaml"));
        Cluster::from_str(&text, std::path::Path::new("lab.yaml")).unwrap()
    }

    /// Each family's chrony.conf has a template per role, and no family's
    /// chrony unit is among the daemons stopped.
    #[test]
    fn every_familys_chrony_conf_has_a_template() {
        for f in FAMILIES {
            assert!(CHRONY_FILES.contains(&f.chrony_conf), "{}", f.name);
            assert!(
                !OTHER_DAEMONS.contains(&f.unit(Service::Chrony)),
                "{}",
                f.name
            );
        }
        for files in [HEAD_FILES, WORKER_FILES] {
            let paths: Vec<&str> = files.iter().map(|f| f.path).collect();
            assert_eq!(paths, CHRONY_FILES);
        }
    }

    fn conf(c: &Cluster, node: &str) -> Option<String> {
        let t = Templates::load(None).unwrap();
        crate::desired::render_node(c, &t, node)
            .unwrap()
            .into_iter()
            .find(|f| f.path == CHRONY_DIR_CONF)
            .map(|f| f.content)
    }

    /// The probe asks about every other time daemon.
    #[test]
    fn the_probe_asks_about_every_other_time_daemon() {
        let probe = include_str!("../facts/probe.sh");
        let units = probe
            .lines()
            .find_map(|l| l.strip_prefix("units=\""))
            .unwrap()
            .trim_end_matches('"');
        for d in OTHER_DAEMONS {
            assert!(units.split(' ').any(|u| u == *d), "{d}");
        }
    }

    /// The head: the family's pool by default, the inventory's servers
    /// instead, the LAN allowed, a local stratum; a worker: the head alone.
    #[test]
    fn the_head_serves_the_lan_and_workers_take_only_the_head() {
        let c = lab("");
        let head = conf(&c, "head").unwrap();
        let lines: Vec<&str> = head.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            lines,
            [
                "pool 2.debian.pool.ntp.org iburst",
                "local stratum 10",
                &format!("allow {}", c.lan.cidr),
                "driftfile /var/lib/chrony/chrony.drift",
                "makestep 1 3",
                "rtcsync",
            ]
        );
        let w = conf(&c, "w1").unwrap();
        let sources: Vec<&str> = w
            .lines()
            .filter(|l| l.starts_with("server") || l.starts_with("pool"))
            .collect();
        assert_eq!(sources, [format!("server {} iburst", c.head.lan_ip)]);
        assert!(w.lines().any(|l| l == "makestep 1 -1"), "{w}");
        assert!(!w.lines().any(|l| l.starts_with("allow")), "{w}");

        let c = lab("time:\n  upstream: [192.0.2.7, ntp.example.org]\n  local_stratum: 8\n");
        let head = conf(&c, "head").unwrap();
        let sources: Vec<&str> = head
            .lines()
            .filter(|l| l.starts_with("server") || l.starts_with("pool") || l.starts_with("local"))
            .collect();
        assert_eq!(
            sources,
            [
                "server 192.0.2.7 iburst",
                "server ntp.example.org iburst",
                "local stratum 8"
            ]
        );
        // No upstream at all: the head serves its own clock.
        let c = lab("time:\n  upstream: []\n");
        let head = conf(&c, "head").unwrap();
        assert!(!head
            .lines()
            .any(|l| l.starts_with("server") || l.starts_with("pool")));
        // Off: no chrony.conf anywhere, no chrony package.
        let c = lab("time:\n  enabled: false\n");
        assert_eq!(conf(&c, "head"), None);
        assert_eq!(conf(&c, "w1"), None);
    }

    /// Each family's file, package and unit: RHEL's `/etc/chrony.conf` and
    /// `chronyd`, Alpine's `chronyd` under OpenRC; the family's own pool on
    /// the head.
    #[test]
    fn each_family_gets_its_own_path_unit_and_pool() {
        let c = lab("");
        let t = Templates::load(None).unwrap();
        for (probe, path, restart, pool) in [
            (
                include_str!("../facts/fixtures/rhel9.probe"),
                ETC_CHRONY_CONF,
                "systemctl restart chronyd",
                "pool 2.rhel.pool.ntp.org iburst",
            ),
            (
                include_str!("../facts/fixtures/alpine319.probe"),
                CHRONY_DIR_CONF,
                "rc-service chronyd restart",
                "pool pool.ntp.org iburst",
            ),
            (
                include_str!("../facts/fixtures/debian12.probe"),
                CHRONY_DIR_CONF,
                "systemctl restart chrony",
                "pool 2.debian.pool.ntp.org iburst",
            ),
        ] {
            let mut facts = crate::facts::parse(probe).unwrap();
            facts.active.remove("firewalld");
            let mut seen = 0;
            for node in ["head", "w1"] {
                let Ok(d) = crate::desired::desired(&c, &t, node, &facts) else {
                    continue; // a stack this fixture cannot give the lab's LAN port
                };
                seen += 1;
                let files: Vec<&str> = d
                    .files
                    .iter()
                    .filter(|f| f.step.ends_with("-time"))
                    .map(|f| f.path)
                    .collect();
                assert_eq!(files, [path], "{node}");
                assert!(d.packages.contains(&"chrony"), "{node} {:?}", d.packages);
                let s = Subject {
                    cluster: &c,
                    node: c.node(node).unwrap(),
                    facts: &facts,
                };
                let cmd = Handler::TimeSync.command(&s, &[path]).unwrap();
                assert!(cmd.ends_with(restart), "{cmd}");
                let conf = &d.files.iter().find(|f| f.path == path).unwrap().content;
                assert_eq!(
                    conf.lines().any(|l| l == pool),
                    node == "head",
                    "{node}: {conf}"
                );
            }
            assert!(seen > 0, "{path}: no node rendered");
        }
    }

    /// The handler stops and disables the other time daemons the probe
    /// found, then restarts chrony under the family's unit name.
    #[test]
    fn the_handler_stops_what_else_keeps_time() {
        let c = lab("");
        let mut facts = crate::facts::Facts::assumed();
        facts.active.insert("systemd-timesyncd".into());
        facts.enabled.insert("systemd-timesyncd".into());
        facts.active.insert("NetworkManager".into());
        let s = Subject {
            cluster: &c,
            node: c.node("w1").unwrap(),
            facts: &facts,
        };
        let cmd = Handler::TimeSync.command(&s, &[CHRONY_DIR_CONF]).unwrap();
        assert_eq!(
            cmd,
            "{ systemctl disable --now --quiet systemd-timesyncd 2>/dev/null || ! systemctl is-active --quiet systemd-timesyncd; } && \
             { systemctl enable --quiet chrony 2>/dev/null; systemctl restart chrony; }"
        );
        let quiet = crate::facts::Facts::assumed();
        let s = Subject { facts: &quiet, ..s };
        assert_eq!(
            Handler::TimeSync.command(&s, &[CHRONY_DIR_CONF]).unwrap(),
            "systemctl enable --quiet chrony 2>/dev/null; systemctl restart chrony"
        );
    }
}
