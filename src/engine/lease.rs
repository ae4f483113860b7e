//! remove-node's last step: the head's dnsmasq forgets the removed
//! worker's lease (`lease.sh`), one round trip over the head's transport.

use crate::transport::{protocol, shell_quote, Transport};

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

/// The script for `ip` (and `mac`, when the worker had one).
pub fn lease_script(ip: &str, mac: Option<&str>) -> String {
    format!(
        "ip={}\nmac={}\n{}",
        shell_quote(ip),
        shell_quote(mac.unwrap_or("")),
        include_str!("lease.sh")
    )
}

/// Drop the lease lines of `ip` (or `mac`) from the head's dnsmasq.
pub fn forget_lease(head: &dyn Transport, ip: &str, mac: Option<&str>) -> Lease {
    match head.run(&lease_script(ip, mac)) {
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
            let s = lease_script(ip, mac)
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

    #[test]
    fn the_script_is_valid_sh() {
        let out = std::process::Command::new("sh")
            .args(["-n", "-c", &lease_script("10.0.0.1", Some("aa:bb"))])
            .output()
            .unwrap();
        assert!(out.status.success());
    }
}
