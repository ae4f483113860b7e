//! apply moving a running worker onto its reserved address: a worker that
//! took an address from the head's pool before the inventory reserved one
//! for its MAC (or whose `ip` changed) keeps it for its lease's length, and
//! apply would wait for it at the reservation in vain. Reached at the
//! address it holds (through the head, its host key checked under the name
//! it is known by), it is made to ask again with its own DHCP client
//! (`renew.sh`, then `renew_wait.sh` outside the SSH session, so the answer
//! gets home before the address goes). The head's dnsmasq refuses the old
//! address and offers the reservation; apply then reaches the worker there
//! over a fresh connection, as any worker. If the interface is left with no
//! address at all, the worker asks again by itself, once. Only an
//! interface with the worker's MAC is moved.

use std::net::Ipv4Addr;

use base64::Engine as _;

use crate::node_state::RENEW_ROOT;
use crate::transport::{protocol, shell_quote, Transport};
use crate::values::Mac;

/// What the worker said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Renewal {
    /// The client on `iface` (`networkmanager`, `networkd`, `ifupdown`,
    /// `dhclient` or `dhcpcd`) was asked to renew.
    Asked { iface: String, client: String },
    /// Nothing was started: why (no interface holds the address, no DHCP
    /// client known, the state directory not writable).
    Refused(String),
    /// The worker could not be reached at the address it holds: why.
    Unreachable(String),
}

/// The script for a worker that holds `held` on the interface with `mac`
/// and should hold `want`.
pub fn renew_script(held: Ipv4Addr, want: Ipv4Addr, mac: &Mac, run_id: &str) -> String {
    let detached = base64::engine::general_purpose::STANDARD.encode(include_str!("renew_wait.sh"));
    format!(
        "held={}\nwant={}\nmac={}\ndir={}\ndetached={}\n{}",
        shell_quote(&held.to_string()),
        shell_quote(&want.to_string()),
        shell_quote(mac.as_str()),
        shell_quote(&format!("{RENEW_ROOT}/{run_id}")),
        shell_quote(&detached),
        include_str!("renew.sh")
    )
}

/// Ask the worker behind `t` (reached at `held`, its interface with `mac`)
/// to renew onto `want`.
pub fn ask_to_renew(
    t: &dyn Transport,
    held: Ipv4Addr,
    want: Ipv4Addr,
    mac: &Mac,
    run_id: &str,
) -> Renewal {
    match t.run(&renew_script(held, want, mac, run_id)) {
        Ok(o) => {
            let out = String::from_utf8_lossy(&o.stdout);
            if let Some(rest) = protocol::find(&out, "@@renewing") {
                let mut w = rest.split(' ');
                let iface = w.next().unwrap_or_default().to_string();
                let client = w.next().unwrap_or_default().to_string();
                Renewal::Asked { iface, client }
            } else if let Some(why) = protocol::find(&out, "@@error") {
                Renewal::Refused(why.to_string())
            } else {
                Renewal::Refused(format!(
                    "no answer (exit {}): {}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                ))
            }
        }
        Err(e) => Renewal::Unreachable(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{FakeHost, Output};

    #[test]
    fn the_scripts_are_valid_sh_and_carry_quoted_values() {
        let s = renew_script(
            "10.0.0.150".parse().unwrap(),
            "10.0.0.13".parse().unwrap(),
            &Mac::parse("02:00:00:00:00:0d").unwrap(),
            "20261202T160000Z-42",
        );
        assert!(s.starts_with("held=10.0.0.150\nwant=10.0.0.13\nmac=02:00:00:00:00:0d\ndir=/var/lib/clusterctl/renew/20261202T160000Z-42\n"), "{s}");
        for script in [s.as_str(), include_str!("renew_wait.sh")] {
            let out = std::process::Command::new("sh")
                .args(["-n", "-c", script])
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        }
    }

    #[test]
    fn the_answer_is_read() {
        let answer = |stdout: &'static str, status: i32| {
            FakeHost::new(move |_| {
                Ok(Output {
                    status,
                    stdout: stdout.as_bytes().to_vec(),
                    stderr: b"boom\n".to_vec(),
                })
            })
        };
        let (a, b) = ("10.0.0.150".parse().unwrap(), "10.0.0.13".parse().unwrap());
        let m = Mac::parse("02:00:00:00:00:0d").unwrap();
        assert_eq!(
            ask_to_renew(&answer("@@renewing eth0 dhclient\n", 0), a, b, &m, "r"),
            Renewal::Asked {
                iface: "eth0".into(),
                client: "dhclient".into()
            }
        );
        assert_eq!(
            ask_to_renew(
                &answer("@@error no interface holds 10.0.0.150\n", 0),
                a,
                b,
                &m,
                "r"
            ),
            Renewal::Refused("no interface holds 10.0.0.150".into())
        );
        assert_eq!(
            ask_to_renew(&answer("", 1), a, b, &m, "r"),
            Renewal::Refused("no answer (exit 1): boom".into())
        );
    }
}
