//! `init` on a terminal looks at the head before asking about it: one SSH
//! round trip (`init_probe.sh` through the system `ssh` transport, your
//! config and agent, `BatchMode` so it never asks for a password or a host
//! key) lists its interfaces with their addresses, its default route and
//! its resolvers. The wizard then proposes the default route's interface as
//! WAN and a down or unaddressed one as LAN. Nothing is changed on the head.

use crate::transport::{protocol, SshTransport};
use crate::values::{self, SshTarget};

/// What the wizard learns about the head.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HeadFacts {
    /// Interfaces in the head's order (not `lo`).
    pub ifaces: Vec<Iface>,
    /// The interface of the default route.
    pub default_dev: Option<String>,
    /// `nameserver` lines of /etc/resolv.conf.
    pub resolvers: Vec<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Iface {
    pub name: String,
    pub up: bool,
    pub addrs: Vec<String>,
}

/// Read-only: links, IPv4 addresses, the default route, resolv.conf.
const SCRIPT: &str = include_str!("init_probe.sh");

/// Run the probe on `target` (the system ssh through the transport layer,
/// no master of ours, `BatchMode`, strict host keys, your ssh config);
/// `Err` says why not (unreachable, key refused…).
pub fn probe(target: &SshTarget, config: Option<&std::path::Path>) -> Result<HeadFacts, String> {
    let t = SshTransport::plain(target.clone(), config.map(Into::into), 8);
    let out = t.run_raw(SCRIPT).map_err(|e| e.message)?;
    if out.status != 0 {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .rfind(|l| !l.trim().is_empty())
            .unwrap_or("no answer");
        return Err(values::shown(last.trim()));
    }
    Ok(parse(&String::from_utf8_lossy(&out.stdout)))
}

/// Parse the probe's output (`ip -o` lines in sections).
pub fn parse(text: &str) -> HeadFacts {
    let mut facts = HeadFacts::default();
    let mut section = "link";
    for (key, line) in protocol::Lines::new(text) {
        if !key.is_empty() {
            section = match key {
                "@@addr" => "addr",
                "@@route" => "route",
                _ => "resolv",
            };
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        match section {
            "link" if words.len() > 2 => {
                let name = words[1].trim_end_matches(':');
                let name = name.split('@').next().unwrap_or(name);
                if name != "lo" && values::check_iface(name).is_ok() {
                    let flags = words[2];
                    facts.ifaces.push(Iface {
                        name: name.to_string(),
                        up: flags.split([',', '<', '>']).any(|f| f == "UP")
                            && !line.contains("state DOWN"),
                        addrs: Vec::new(),
                    });
                }
            }
            "addr" if words.len() > 3 && words[2] == "inet" => {
                if let Some(i) = facts.ifaces.iter_mut().find(|i| i.name == words[1]) {
                    i.addrs.push(words[3].to_string());
                }
            }
            "route" => {
                if let Some(p) = words.iter().position(|w| *w == "dev") {
                    if facts.default_dev.is_none() {
                        facts.default_dev = words.get(p + 1).map(|s| s.to_string());
                    }
                }
            }
            "resolv" if words.len() > 1 && words[0] == "nameserver" => {
                facts.resolvers.push(words[1].to_string());
            }
            _ => {}
        }
    }
    facts
}

impl HeadFacts {
    /// The proposed WAN: the default route's interface.
    pub fn wan(&self) -> Option<&str> {
        self.default_dev
            .as_deref()
            .filter(|d| self.ifaces.iter().any(|i| i.name == *d))
    }

    /// The proposed LAN: the first other interface that is down or has no
    /// IPv4 address (the cluster switch is not configured yet).
    pub fn lan(&self) -> Option<&str> {
        let wan = self.wan();
        self.ifaces
            .iter()
            .find(|i| Some(i.name.as_str()) != wan && (!i.up || i.addrs.is_empty()))
            .map(|i| i.name.as_str())
    }

    /// What the wizard shows.
    pub fn describe(&self) -> String {
        let mut s = String::from("The head's interfaces:\n");
        for i in &self.ifaces {
            let addrs = if i.addrs.is_empty() {
                "no IPv4 address".to_string()
            } else {
                i.addrs.join(", ")
            };
            let state = if i.up { "up" } else { "down" };
            let role = if Some(i.name.as_str()) == self.wan() {
                "  (default route: proposed WAN)"
            } else if Some(i.name.as_str()) == self.lan() {
                "  (proposed LAN)"
            } else {
                ""
            };
            s.push_str(&format!("  {:<12} {state:<5} {addrs}{role}\n", i.name));
        }
        if !self.resolvers.is_empty() {
            s.push_str(&format!(
                "Its resolvers: {} (upstream_dns left empty forwards to them)\n",
                self.resolvers.join(", ")
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT
2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc mq state UP mode DEFAULT qlen 1000\\    link/ether dc:a6:32:00:00:01 brd ff:ff:ff:ff:ff:ff
3: eth1: <BROADCAST,MULTICAST> mtu 1500 qdisc noop state DOWN mode DEFAULT qlen 1000\\    link/ether 00:0e:c6:00:00:02 brd ff:ff:ff:ff:ff:ff
4: wlan0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 state UP\\    link/ether b8:27:eb:00:00:03
@@addr
1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
2: eth0    inet 192.168.1.50/24 brd 192.168.1.255 scope global dynamic eth0\\       valid_lft 86000sec
4: wlan0    inet 192.168.2.7/24 scope global wlan0
@@route
default via 192.168.1.1 dev eth0 proto dhcp src 192.168.1.50 metric 100
@@resolv
# Generated by NetworkManager
search home
nameserver 192.168.1.1
nameserver 9.9.9.9
";

    #[test]
    fn proposes_the_default_route_as_wan_and_an_unaddressed_one_as_lan() {
        let f = parse(OUT);
        assert_eq!(f.ifaces.len(), 3, "{f:?}");
        assert_eq!(f.wan(), Some("eth0"));
        assert_eq!(f.lan(), Some("eth1"));
        assert_eq!(f.resolvers, ["192.168.1.1", "9.9.9.9"]);
        let d = f.describe();
        assert!(
            d.contains("  eth0         up    192.168.1.50/24  (default route: proposed WAN)\n"),
            "{d}"
        );
        assert!(
            d.contains("  eth1         down  no IPv4 address  (proposed LAN)\n"),
            "{d}"
        );
        assert!(d.contains("  wlan0        up    192.168.2.7/24\n"), "{d}");
    }

    /// The script is valid sh, and run here (read-only) it answers in
    /// sections the parser reads.
    #[test]
    fn the_script_is_valid_sh_and_its_sections_parse() {
        let out = std::process::Command::new("sh")
            .args(["-n", "-c", SCRIPT])
            .output()
            .unwrap();
        assert!(out.status.success());
        use crate::transport::Transport;
        let out = crate::transport::Local::default().run(SCRIPT).unwrap();
        assert_eq!(out.status, 0);
        let text = String::from_utf8_lossy(&out.stdout);
        for section in ["@@addr", "@@route", "@@resolv"] {
            assert!(protocol::find(&text, section).is_some(), "{text}");
        }
        parse(&text);
    }

    #[test]
    fn nothing_proposed_when_nothing_fits() {
        let f = parse("2: eth0: <UP,LOWER_UP> mtu 1500 state UP\n@@addr\n2: eth0    inet 10.0.0.2/24\n@@route\n@@resolv\n");
        assert_eq!(f.wan(), None);
        assert_eq!(f.lan(), None);
    }
}
