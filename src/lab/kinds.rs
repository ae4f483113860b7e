//! The kinds of host `lab up` was asked for (light, or systemd with a
//! network stack per role), and the memory they are expected to take.

use std::fs;

use super::image::{self, Stack};
use super::topology;
use crate::cli::{LabKind, LabUpArgs};
use crate::error::{Error, Result};

/// How the controller logs in to a systemd-kind head and workers (the wan
/// host, light, always takes root).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Login {
    /// Root with the controller's key (`PermitRootLogin prohibit-password`).
    #[default]
    Root,
    /// As today's installs: root takes no login (no key of the
    /// controller's), [`SUDO_USER`] has the controller's key and
    /// passwordless sudo.
    Sudo,
}

/// The user of `--login sudo` (uid 1000, like the first user an installer
/// makes).
pub const SUDO_USER: &str = "admin";

impl Login {
    /// The SSH user of a host of this lab (`wan`: the wan host).
    pub fn user(self, wan: bool) -> &'static str {
        match (self, wan) {
            (Login::Sudo, false) => SUDO_USER,
            _ => "root",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Login::Root => "root",
            Login::Sudo => "sudo",
        }
    }
}

/// The kinds the user asked for: each host's network stack (None: light).
pub(super) struct Kinds {
    pub(super) kind: LabKind,
    /// The Debian release of the systemd hosts' images and the mirror.
    pub(super) suite: image::Suite,
    /// How the controller logs in to the systemd head and workers.
    pub(super) login: Login,
    head: Stack,
    workers: Vec<Stack>,
}

impl Kinds {
    pub(super) fn of(args: &LabUpArgs) -> Result<Kinds> {
        if args.kind == LabKind::Light {
            if let Some(flag) = [
                ("--network", &args.network),
                ("--head-network", &args.head_network),
                ("--suite", &args.suite),
                ("--login", &args.login),
            ]
            .iter()
            .find_map(|(f, v)| v.as_ref().map(|_| *f))
            {
                return Err(Error::Lab {
                    message: format!("{flag} chooses what systemd-kind hosts are built from; light hosts have the machine's own"),
                    help: Some(format!("add --kind systemd, or drop {flag}")),
                });
            }
        }
        Ok(Kinds {
            kind: args.kind,
            suite: match &args.suite {
                Some(s) => image::Suite::parse(s.trim())?,
                None => image::Suite::default(),
            },
            login: match args.login.as_deref().map(str::trim) {
                None | Some("root") => Login::Root,
                Some("sudo") => Login::Sudo,
                Some(other) => {
                    return Err(Error::Lab {
                        message: format!("--login: unknown way to log in {other:?}"),
                        help: Some("use root or sudo".into()),
                    })
                }
            },
            head: Stack::parse(
                "--head-network",
                args.head_network.as_deref().unwrap_or("ifupdown").trim(),
            )?,
            workers: image::parse_stacks(
                "--network",
                args.network.as_deref().unwrap_or("ifupdown"),
            )?,
        })
    }

    pub(super) fn name(&self) -> &'static str {
        match self.kind {
            LabKind::Light => "light",
            LabKind::Systemd => "systemd",
        }
    }

    /// The stack of a host; None for light hosts (and always for the wan host).
    pub(super) fn stack(&self, spec: &topology::HostSpec) -> Option<Stack> {
        if self.kind == LabKind::Light {
            return None;
        }
        match spec.role {
            topology::Role::Wan => None,
            topology::Role::Head => Some(self.head),
            topology::Role::Worker => {
                let i = spec.index.unwrap_or(1).saturating_sub(1) as usize;
                self.workers.get(i % self.workers.len().max(1)).copied()
            }
        }
    }
}

/// Memory a light host takes when idle (PSS of its init, sshd, dhclient).
const LIGHT_MIB_PER_HOST: u64 = 8;

/// Refuse to start hosts whose expected memory exceeds what is available;
/// print the estimate when starting many.
pub(super) fn check_memory(
    prefix: &str,
    kinds: &Kinds,
    specs: &[topology::HostSpec],
) -> Result<()> {
    let need: u64 = specs
        .iter()
        .map(|s| {
            kinds
                .stack(s)
                .map(Stack::mib_per_host)
                .unwrap_or(LIGHT_MIB_PER_HOST)
        })
        .sum();
    let avail = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map(|kib| kib / 1024);
    if specs.len() >= 10 {
        say!(
            "lab {prefix}: starting {} hosts; expecting about {need} MiB of memory{}",
            specs.len(),
            avail
                .map(|a| format!(" ({a} MiB available)"))
                .unwrap_or_default()
        );
    }
    if let Some(a) = avail {
        if need > a {
            return Err(Error::Lab {
                message: format!(
                    "{} hosts need about {need} MiB of memory; only {a} MiB are available",
                    specs.len()
                ),
                help: Some("use fewer --workers, or --kind light (about 8 MiB a host)".into()),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::NetStack;

    /// The inventory's stack for each lab stack (a new lab stack must say).
    fn inventory_stack(s: Stack) -> NetStack {
        match s {
            Stack::Ifupdown => NetStack::Ifupdown,
            Stack::Networkd => NetStack::Networkd,
            Stack::Nm => NetStack::Networkmanager,
        }
    }

    #[test]
    fn the_lab_spells_every_stack_as_the_inventory_does() {
        for s in Stack::ALL {
            let inv: NetStack = serde_saphyr::from_str(s.name())
                .unwrap_or_else(|e| panic!("{s} is no inventory `network:`: {e}"));
            assert_eq!(inv, inventory_stack(s), "{s}");
            assert_eq!(s.to_string(), s.name());
            assert_eq!(Stack::parse("--network", s.name()).unwrap(), s);
        }
    }

    #[test]
    fn nm_is_still_accepted_for_networkmanager() {
        assert_eq!(Stack::parse("--head-network", "nm").unwrap(), Stack::Nm);
        assert_eq!(
            image::parse_stacks("--network", "networkmanager, nm").unwrap(),
            [Stack::Nm, Stack::Nm]
        );
        assert_eq!(Stack::Nm.to_string(), "networkmanager");
        let e = Stack::parse("--network", "NetworkManager").unwrap_err();
        assert_eq!(
            e.to_string(),
            "lab: --network: unknown network stack \"NetworkManager\""
        );
    }
}
