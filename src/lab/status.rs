//! `clusterctl lab status`: each host up or down, the bridges, how to reach
//! the hosts; exit code 1 when the lab is degraded.

use super::{load_running, net, nspawn, output, topology_of};
use crate::cli::LabCommonArgs;
use crate::error::Result;

pub(super) fn status(args: &LabCommonArgs) -> Result<i32> {
    let (_paths, st) = load_running(args)?;
    let topo = topology_of(&st)?;
    let mut all_up = true;
    say!(
        "lab {}: WAN {} (this machine: {} on {}), LAN {}, {} workers",
        st.prefix,
        st.wan,
        topo.ctl_addr(),
        topo.ctl_iface(),
        st.lan,
        st.workers
    );
    for h in &st.hosts {
        let alive = h.alive();
        all_up &= alive;
        let what = match &h.stack {
            None => format!(
                "light, init pid {}",
                h.init
                    .map(|i| i.pid.to_string())
                    .unwrap_or_else(|| "?".into())
            ),
            Some(stack) => format!(
                "systemd ({stack}), supervisor pid {}, PID 1 pid {}",
                h.unshare.pid,
                nspawn::leader(h.unshare)
                    .map(|l| l.pid.to_string())
                    .unwrap_or_else(|| "?".into())
            ),
        };
        say!(
            "  {:<5} {:<6} {what}",
            h.name,
            if alive { "up" } else { "DOWN" },
        );
    }
    for name in topo.hosts().into_iter().map(|h| h.name) {
        if st.host(&name).is_none() {
            all_up = false;
            say!("  {name:<5} MISSING");
        }
    }
    let nets_ok = st.bridges.is_some_and(|b| b.alive()) && net::link_exists(&topo.ctl_iface());
    if !nets_ok {
        say!(
            "  bridges: MISSING (bridge namespace holder or {})",
            topo.ctl_iface()
        );
    }
    say_raw!("{}", output::reach_table(&topo, &st.inventory));
    say!("  inventory: {}", st.inventory.display());
    if all_up && nets_ok {
        Ok(0)
    } else {
        say!(
            "lab {}: degraded; `sudo clusterctl lab up` repairs it",
            st.prefix
        );
        Ok(1)
    }
}
