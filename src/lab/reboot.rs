//! `clusterctl lab reboot HOST|all`: reboot systemd-kind hosts and wait for
//! each to have booted again.

use std::time::{Duration, Instant};

use super::state::HostRecord;
use super::{load_running, nspawn};
use crate::cli::LabRebootArgs;
use crate::error::{Error, Result};

/// `lab reboot HOST|all`: `systemctl reboot` in each container, then wait
/// for each to come back (a new boot id, the same upper directory).
pub(super) fn reboot(args: &LabRebootArgs) -> Result<i32> {
    let (paths, st) = load_running(&args.common)?;
    let t0 = Instant::now();
    let names: Vec<&HostRecord> = if args.host == "all" {
        st.hosts.iter().filter(|h| h.stack.is_some()).collect()
    } else {
        match st.host(&args.host) {
            Some(h) => vec![h],
            None => {
                let names: Vec<_> = st.hosts.iter().map(|h| h.name.as_str()).collect();
                return Err(Error::Lab {
                    message: format!("lab {} has no host {:?}", st.prefix, args.host),
                    help: Some(format!("its hosts: {}, or all", names.join(", "))),
                });
            }
        }
    };
    if names.is_empty() {
        return Err(Error::Lab {
            message: format!("lab {} has no host of the systemd kind", st.prefix),
            help: Some("bring one up with: sudo clusterctl lab up --kind systemd".into()),
        });
    }
    let mut before = Vec::new();
    for h in &names {
        if h.stack.is_none() {
            return Err(Error::Lab {
                message: format!(
                    "host {} is a light host: it has no systemd to reboot",
                    h.name
                ),
                help: Some(
                    "reboot needs the systemd kind: sudo clusterctl lab up --kind systemd".into(),
                ),
            });
        }
        let leader = nspawn::leader(h.unshare).ok_or_else(|| Error::Lab {
            message: format!("host {} is not running", h.name),
            help: Some("`sudo clusterctl lab up` restarts it".into()),
        })?;
        before.push((*h, leader));
    }
    for (h, leader) in &before {
        nspawn::request_reboot(&h.name, *leader)?;
    }
    let deadline = Instant::now() + Duration::from_secs(60 + 2 * before.len() as u64);
    for (h, leader) in &before {
        let log = paths.console_log(&h.name);
        let (state, _) = nspawn::wait_booted(&h.name, h.unshare, Some(*leader), deadline, &log)?;
        say!("  {:<5} rebooted: {state}", h.name);
    }
    say!(
        "lab {}: rebooted {} host{} in {:.1}s",
        st.prefix,
        before.len(),
        if before.len() == 1 { "" } else { "s" },
        t0.elapsed().as_secs_f64()
    );
    Ok(0)
}
