//! The head's dnsmasq leases: read them (`read_leases`, one round trip:
//! `discover`, `add-node --from-leases`, and apply finding a worker that
//! holds a pool address), and remove-node's last step, forgetting the
//! removed worker's lease (`lease.sh`) over the head's transport: the facts
//! probe (its init system, told apart in one place), then the script.

use std::net::Ipv4Addr;

use crate::facts::{self, InitSystem};
use crate::transport::protocol::{messages, Message};
use crate::transport::{protocol, shell_quote, Transport};
use crate::values::Mac;

/// dnsmasq's lease file on the head.
pub const LEASES: &str = "/var/lib/misc/dnsmasq.leases";

/// One line of the head's lease file. Everything in it came from the
/// network (a client names itself): the MAC and address are checked, the
/// host name is only ever shown (`values::shown`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// When the lease ends: seconds since the epoch.
    pub expiry: u64,
    pub mac: Mac,
    pub ip: Ipv4Addr,
    /// The name the client sent, raw (`*` and empty: none).
    pub hostname: Option<String>,
}

/// The head's leases, in the file's order; an unreadable or missing file
/// is no lease. `Err`: the head did not answer (why).
pub fn read_leases(head: &dyn Transport) -> Result<Vec<Held>, String> {
    let script = format!(
        "f={LEASES}\nif [ -r \"$f\" ]; then while read -r exp mac ip host _; do echo \"@@lease $exp $mac $ip $host\"; done <\"$f\"; fi\necho @@done\n"
    );
    let out = head.run(&script).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !text.lines().any(|l| l == "@@done") {
        return Err(format!(
            "the head did not answer ({})",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(parse_leases(&text))
}

/// The `@@lease EXPIRY MAC IP HOSTNAME` lines of `text`; a line that does
/// not parse is skipped (dnsmasq writes this file; nothing here is run).
pub fn parse_leases(text: &str) -> Vec<Held> {
    messages(text)
        .into_iter()
        .filter(|Message { key, .. }| *key == "@@lease")
        .filter_map(|Message { rest, .. }| {
            let mut w = rest.split(' ');
            let expiry: u64 = w.next()?.parse().ok()?;
            let mac = Mac::parse(w.next()?).ok()?;
            let ip: Ipv4Addr = w.next()?.parse().ok()?;
            let hostname = w
                .next()
                .filter(|h| !h.is_empty() && *h != "*")
                .map(String::from);
            Some(Held {
                expiry,
                mac,
                ip,
                hostname,
            })
        })
        .collect()
}

/// The probe asks about one package only (with none, `dpkg-query -W`
/// would list every package the head has).
const LEASE_PROBE_PACKAGE: &str = "dnsmasq";

/// What the head did with the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lease {
    /// dnsmasq held a lease for the address or MAC; it is gone.
    Forgot,
    /// No lease (or no lease file): nothing to do.
    NoneHeld,
    /// The script failed (dnsmasq not stopped or started, the file not
    /// rewritten): its stderr, trimmed.
    Failed(String),
    /// The head could not be reached: why.
    Unreachable(String),
}

/// The script for `ip` (and `mac`, when the worker had one) on a head
/// with `init`.
pub fn lease_script(ip: &str, mac: Option<&str>, init: InitSystem) -> String {
    format!(
        "ip={}\nmac={}\ninit={}\n{}",
        shell_quote(ip),
        shell_quote(mac.unwrap_or("")),
        init.word(),
        include_str!("lease.sh")
    )
}

/// Drop the lease lines of `ip` (or `mac`) from the head's dnsmasq.
pub fn forget_lease(head: &dyn Transport, ip: &str, mac: Option<&str>) -> Lease {
    let init = match facts::gather(head, &[], &[], &[LEASE_PROBE_PACKAGE]) {
        Ok(f) => f.init,
        Err(e) => return Lease::Unreachable(e.to_string()),
    };
    match head.run(&lease_script(ip, mac, init)) {
        Ok(o) if o.status == 0 => {
            let out = String::from_utf8_lossy(&o.stdout);
            if protocol::find(&out, "@@forgot").is_some() {
                Lease::Forgot
            } else {
                Lease::NoneHeld
            }
        }
        Ok(o) => Lease::Failed(String::from_utf8_lossy(&o.stderr).trim().to_string()),
        Err(e) => Lease::Unreachable(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Local;

    /// The script for real on a copy of a lease file, with dnsmasq's stop
    /// and start left out: the worker's line goes (by address or by MAC),
    /// the others stay, and a second run finds nothing.
    #[test]
    fn the_lease_of_the_removed_worker_goes_and_only_it() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("dnsmasq.leases");
        let leases = "1 aa:aa:aa:aa:aa:01 10.0.0.11 w1 *\n1 aa:aa:aa:aa:aa:02 10.0.0.12 w2 *\n1 aa:aa:aa:aa:aa:03 10.0.0.13 w3 *\n";
        std::fs::write(&f, leases).unwrap();
        let local = |ip: &str, mac: Option<&str>| {
            let s = lease_script(ip, mac, InitSystem::Systemd)
                .replace("/var/lib/misc/dnsmasq.leases", f.to_str().unwrap())
                .replace("svc() {", "svc() { return 0\n");
            let out = Local::default().run(&s).unwrap();
            assert_eq!(out.status, 0, "{out:?}");
            protocol::find(&String::from_utf8_lossy(&out.stdout), "@@forgot").is_some()
        };
        assert!(local("10.0.0.12", None));
        assert!(local("10.9.9.9", Some("aa:aa:aa:aa:aa:03")));
        assert!(!local("10.0.0.12", None));
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            "1 aa:aa:aa:aa:aa:01 10.0.0.11 w1 *\n"
        );
    }

    /// The head's init system comes from the facts probe: an OpenRC head
    /// gets rc-service; the outcome is read from the script's answer.
    #[test]
    fn the_probe_decides_the_init_system_then_the_script_runs() {
        use crate::transport::{FakeHost, Output};
        let ok = |stdout: &str| Output {
            status: 0,
            stdout: stdout.as_bytes().to_vec(),
            stderr: vec![],
        };
        let head = FakeHost::new(move |script| {
            Ok(if script.contains("dnsmasq.leases") {
                ok("@@forgot\n")
            } else {
                ok("@@os alpine 3.20\n@@init openrc\n@@done\n")
            })
        });
        assert_eq!(forget_lease(&head, "10.0.0.12", None), Lease::Forgot);
        let scripts = head.scripts.lock().unwrap();
        assert_eq!(scripts.len(), 2);
        assert!(scripts[1].contains("\ninit=openrc\n"), "{}", scripts[1]);
        let failed = FakeHost::new(move |script| {
            Ok(if script.contains("dnsmasq.leases") {
                Output {
                    status: 1,
                    stdout: vec![],
                    stderr: b"dnsmasq: cannot stop\n".to_vec(),
                }
            } else {
                ok("@@init systemd\n@@done\n")
            })
        });
        assert_eq!(
            forget_lease(&failed, "10.0.0.12", None),
            Lease::Failed("dnsmasq: cannot stop".into())
        );
    }

    #[test]
    fn the_script_is_valid_sh() {
        let out = std::process::Command::new("sh")
            .args([
                "-n",
                "-c",
                &lease_script("10.0.0.1", Some("aa:bb"), InitSystem::Openrc),
            ])
            .output()
            .unwrap();
        assert!(out.status.success());
    }
}
