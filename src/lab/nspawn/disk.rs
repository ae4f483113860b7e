//! The disk of a systemd-kind host: its upper directory (identity, the
//! controller's key, the sshd drop-in, the files its network stack reads at
//! boot, as an installer would write them) over the shared image, and the
//! image and interface list its supervisor reads.

use std::fs;
use std::path::Path;

use crate::error::{Error, Result};
use crate::lab::host::{self, mkdir, write_file};
use crate::lab::image::Stack;
use crate::lab::kinds::{Login, SUDO_USER};
use crate::lab::state::Paths;
use crate::lab::topology::{HostSpec, Role};

/// The lab's stand-in for a DHCP client that keeps asking, on an ifupdown
/// worker whose interface no ifupdown file names yet (a fresh Debian would
/// give up after a minute; the lab's head has no DHCP server until apply).
const LAB_DHCP_UNIT: &str = "\
# clusterctl lab: DHCP on eth0 until an ifupdown file configures eth0.
[Unit]
Description=Lab DHCP client on eth0 (until ifupdown configures it)
After=networking.service
Before=ssh.service

[Service]
Type=forking
ExecCondition=/bin/sh -c '! grep -qsE \"^[[:space:]]*iface[[:space:]]+eth0[[:space:]]\" /etc/network/interfaces /etc/network/interfaces.d/*'
ExecStart=/sbin/dhclient -4 -nw -cf /etc/clusterctl-lab/dhclient.conf -pf /run/dhclient.eth0.pid -lf /var/lib/dhcp/dhclient.eth0.leases eth0
PIDFile=/run/dhclient.eth0.pid

[Install]
WantedBy=multi-user.target
";

/// The lab's chrony drop-in, on every systemd host (lab-only: clusterctl
/// never renders it for a real node). The lab's containers share this
/// machine's clock and lack CAP_SYS_TIME: the unit's
/// `ConditionCapability=CAP_SYS_TIME` would skip chrony, and chronyd would
/// fail setting the clock. `-x` runs it without ever touching the clock: it
/// still selects sources, tracks their offset and serves time, which is
/// what the lab can show.
pub const CHRONY_DROPIN_PATH: &str = "etc/systemd/system/chrony.service.d/clusterctl-lab.conf";
pub const CHRONY_DROPIN: &str = "\
# clusterctl lab: the containers share the machine's clock and may not set it.
[Unit]
ConditionCapability=

[Service]
ExecStart=
ExecStart=!/usr/sbin/chronyd $DAEMON_OPTS -x
";

/// The sshd drop-in of every systemd host: only the lab's host key (the
/// image has none), many concurrent starts (workers are reached through the
/// head, 50 at once).
fn sshd_dropin(host: &str) -> String {
    format!(
        "# sshd of lab host {host} (written by clusterctl lab)\n\
         HostKey /etc/ssh/ssh_host_ed25519_key\n\
         UseDNS no\n\
         MaxStartups 200:30:400\n\
         MaxSessions 100\n"
    )
}

/// `--login sudo`: the image's accounts plus [`SUDO_USER`] (uid 1000, no
/// password, the controller's key, passwordless sudo), as an installer's
/// first user (Raspberry Pi OS, cloud images); written whole into the upper
/// layer (the merged view shows the upper file).
fn sudo_user(image: &Path, upper: &Path, controller_pub: &str) -> Result<()> {
    let read = |rel: &str| {
        let path = image.join(rel);
        fs::read_to_string(&path).map_err(|source| Error::Read { path, source })
    };
    let u = SUDO_USER;
    let add = |text: String, line: String| {
        let mut t = text;
        if !t.is_empty() && !t.ends_with('\n') {
            t.push('\n');
        }
        t.push_str(&line);
        t
    };
    write_file(
        &upper.join("etc/passwd"),
        &add(
            read("etc/passwd")?,
            format!("{u}:x:1000:1000:{u}:/home/{u}:/bin/bash\n"),
        ),
        0o644,
    )?;
    write_file(
        &upper.join("etc/group"),
        &add(read("etc/group")?, format!("{u}:x:1000:\n")),
        0o644,
    )?;
    write_file(
        &upper.join("etc/shadow"),
        &add(read("etc/shadow")?, format!("{u}:*:20000:0:99999:7:::\n")),
        0o640,
    )?;
    write_file(
        &upper.join("etc/sudoers.d/clusterctl-lab"),
        &format!("# clusterctl lab: the first user, as cloud images make it\n{u} ALL=(ALL) NOPASSWD: ALL\n"),
        0o440,
    )?;
    let home = upper.join("home").join(u);
    mkdir(&home.join(".ssh"), 0o700)?;
    write_file(
        &home.join(".ssh/authorized_keys"),
        &format!("{controller_pub}\n"),
        0o600,
    )?;
    for p in [
        home.clone(),
        home.join(".ssh"),
        home.join(".ssh/authorized_keys"),
    ] {
        std::os::unix::fs::chown(&p, Some(1000), Some(1000)).map_err(|source| Error::Write {
            path: p.clone(),
            source,
        })?;
    }
    let shadow = upper.join("etc/shadow");
    // shadow is root:shadow on Debian; keep its group from the image.
    if let Ok(meta) = fs::metadata(image.join("etc/shadow")) {
        use std::os::unix::fs::MetadataExt;
        let _ = std::os::unix::fs::chown(&shadow, Some(0), Some(meta.gid()));
    }
    Ok(())
}

/// What a host's network stack reads at boot, as `(path, mode, text)`.
pub fn network_files(spec: &HostSpec, stack: Stack) -> Vec<(&'static str, u32, String)> {
    let head = spec.role == Role::Head;
    let (addr, gw) = match (head, spec.ifaces.first().and_then(|i| i.address)) {
        (true, Some(a)) => (Some(a), spec.gateway),
        _ => (None, None),
    };
    let mut files = Vec::new();
    match stack {
        Stack::Ifupdown => {
            let mut s = String::from(
                "# The network of this host (written by clusterctl lab, as an installer would)\n\
                 auto lo\niface lo inet loopback\n\nsource /etc/network/interfaces.d/*\n",
            );
            if let (Some(a), Some(g)) = (addr, gw) {
                s.push_str(&format!(
                    "\nauto eth0\niface eth0 inet static\n    address {a}\n    gateway {g}\n"
                ));
                files.push((
                    "etc/resolv.conf",
                    0o644,
                    format!("# written by clusterctl lab\nnameserver {g}\n"),
                ));
            } else {
                files.push((
                    "etc/clusterctl-lab/dhclient.conf",
                    0o644,
                    host::DHCLIENT_CONF.into(),
                ));
                files.push((
                    "etc/systemd/system/clusterctl-lab-dhcp.service",
                    0o644,
                    LAB_DHCP_UNIT.into(),
                ));
                files.push((
                    "etc/systemd/system/multi-user.target.wants/clusterctl-lab-dhcp.service",
                    0o777,
                    "/etc/systemd/system/clusterctl-lab-dhcp.service".into(),
                ));
            }
            files.push(("etc/network/interfaces", 0o644, s));
        }
        Stack::Networkd => {
            let body = match (addr, gw) {
                (Some(a), Some(g)) => format!("Address={a}\nGateway={g}\nDNS={g}\n"),
                _ => "DHCP=ipv4\n".to_string(),
            };
            files.push((
                "etc/systemd/network/10-eth0.network",
                0o644,
                format!(
                    "# written by clusterctl lab, as an installer would\n[Match]\nName=eth0\n\n[Network]\n{body}"
                ),
            ));
        }
        Stack::Nm => {
            let ipv4 = match (addr, gw) {
                (Some(a), Some(g)) => format!("method=manual\naddress1={a},{g}\ndns={g};\n"),
                _ => "method=auto\ndhcp-timeout=2147483647\n".to_string(),
            };
            files.push((
                "etc/NetworkManager/system-connections/eth0.nmconnection",
                0o600,
                format!(
                    "# written by clusterctl lab, as an installer would\n[connection]\nid=eth0\ntype=ethernet\ninterface-name=eth0\nautoconnect-retries=0\n\n[ipv4]\n{ipv4}\n[ipv6]\nmethod=ignore\n"
                ),
            ));
        }
    }
    files
}

/// Directories created in an upper layer, with the modes they have in the
/// image (the upper directory's mode wins in the merged view).
const DIR_MODES: &[(&str, u32)] = &[
    ("etc", 0o755),
    ("etc/ssh", 0o755),
    ("etc/ssh/sshd_config.d", 0o755),
    ("etc/network", 0o755),
    ("etc/systemd", 0o755),
    ("etc/systemd/system", 0o755),
    ("etc/systemd/system/multi-user.target.wants", 0o755),
    ("etc/systemd/system/chrony.service.d", 0o755),
    ("etc/systemd/network", 0o755),
    ("etc/NetworkManager", 0o755),
    ("etc/NetworkManager/system-connections", 0o700),
    ("etc/clusterctl-lab", 0o755),
    ("root", 0o700),
    ("root/.ssh", 0o700),
    ("var", 0o755),
    ("var/lib", 0o755),
    ("var/lib/dhcp", 0o755),
];

/// Make a host's disk: a fresh upper directory holding its identity (name,
/// machine-id, SSH host key), the controller's key and its network config.
pub fn make_disk(
    paths: &Paths,
    spec: &HostSpec,
    stack: Stack,
    image: &Path,
    controller_pub: &str,
    login: Login,
) -> Result<()> {
    let h = spec.name.as_str();
    let disk = paths.host_disk(h);
    host::remove_tree(&disk)?;
    let upper = disk.join("upper");
    for d in ["upper", "work", "root"] {
        mkdir(&disk.join(d), 0o755)?;
    }
    for (d, mode) in DIR_MODES {
        mkdir(&upper.join(d), *mode)?;
    }
    host::write_identity(paths, h, &upper, controller_pub)?;
    let u = |p: &str| upper.join(p);
    write_file(&u("etc/ssh/sshd_config.d/lab.conf"), &sshd_dropin(h), 0o644)?;
    if login == Login::Sudo {
        sudo_user(image, &upper, controller_pub)?;
        // Root takes no login from the controller: its key is the admin's
        // (sshd keeps Debian's default, prohibit-password, so the cluster
        // key clusterctl gives root still works between the nodes).
        write_file(&u("root/.ssh/authorized_keys"), "", 0o600)?;
    }
    write_file(
        &paths.host_dir(h).join("login"),
        &format!("{}\n", login.name()),
        0o644,
    )?;
    write_file(&u(CHRONY_DROPIN_PATH), CHRONY_DROPIN, 0o644)?;
    for (path, mode, text) in network_files(spec, stack) {
        if mode == 0o777 {
            let link = u(path);
            let _ = fs::remove_file(&link);
            std::os::unix::fs::symlink(&text, &link).map_err(|source| Error::Write {
                path: link.clone(),
                source,
            })?;
        } else {
            write_file(&u(path), &text, mode)?;
        }
    }
    write_file(
        &paths.host_dir(h).join("image"),
        &format!("{}\n", image.display()),
        0o644,
    )?;
    let ifaces: String = spec
        .ifaces
        .iter()
        .map(|i| format!("{}\n", i.name))
        .collect();
    write_file(&paths.host_dir(h).join("ifaces"), &ifaces, 0o644)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::topology::Topology;
    use std::process::Command;

    /// The lab's chrony drop-in never lets chronyd set the clock, and is
    /// the lab's alone: no template clusterctl renders for a node has it.
    #[test]
    fn the_lab_runs_chronyd_without_touching_the_clock() {
        assert!(
            CHRONY_DROPIN.contains("\nExecStart=\nExecStart=!/usr/sbin/chronyd $DAEMON_OPTS -x\n")
        );
        assert!(CHRONY_DROPIN.contains("\nConditionCapability=\n"));
        assert!(!crate::templates::BUILTIN
            .iter()
            .any(|(p, _)| p.contains("chrony.service.d")));
    }

    #[test]
    fn heads_are_static_and_workers_ask_dhcp_in_every_stack() {
        let t = Topology::new("cl", "198.51.100.0/24", "10.77.0.0/24", 1).unwrap();
        let head = t.host("head").unwrap();
        let w1 = t.host("w1").unwrap();
        let all = |spec: &HostSpec, s: Stack| -> String {
            network_files(spec, s)
                .into_iter()
                .map(|(p, _, t)| format!("{p}\n{t}"))
                .collect()
        };
        let h = all(&head, Stack::Ifupdown);
        assert!(
            h.contains(
                "iface eth0 inet static\n    address 198.51.100.2/24\n    gateway 198.51.100.1\n"
            ),
            "{h}"
        );
        assert!(h.contains("nameserver 198.51.100.1"));
        assert!(
            !h.contains("eth1"),
            "the LAN side is clusterctl's to configure"
        );
        let w = all(&w1, Stack::Ifupdown);
        assert!(!w.contains("iface eth0"), "{w}");
        assert!(w.contains("clusterctl-lab-dhcp.service"));
        assert!(all(&head, Stack::Networkd)
            .contains("Address=198.51.100.2/24\nGateway=198.51.100.1\nDNS=198.51.100.1\n"));
        assert!(all(&w1, Stack::Networkd).contains("DHCP=ipv4"));
        assert!(all(&head, Stack::Nm).contains("address1=198.51.100.2/24,198.51.100.1"));
        assert!(all(&w1, Stack::Nm).contains("method=auto"));
    }

    #[test]
    fn the_lab_dhcp_unit_steps_aside_once_ifupdown_names_eth0() {
        let cond = LAB_DHCP_UNIT
            .lines()
            .find_map(|l| l.strip_prefix("ExecCondition=/bin/sh -c '"))
            .and_then(|l| l.strip_suffix('\''))
            .unwrap()
            .replace("\\\"", "\"");
        let dir = tempfile::tempdir().unwrap();
        let script = cond.replace("/etc/network", &dir.path().to_string_lossy());
        fs::create_dir(dir.path().join("interfaces.d")).unwrap();
        fs::write(
            dir.path().join("interfaces"),
            "auto lo\niface lo inet loopback\n",
        )
        .unwrap();
        let run = || {
            Command::new("sh")
                .args(["-c", &script])
                .status()
                .unwrap()
                .success()
        };
        assert!(run(), "no eth0 stanza: the lab's client runs");
        fs::write(
            dir.path().join("interfaces.d/clusterctl"),
            "auto eth0\niface eth0 inet dhcp\n",
        )
        .unwrap();
        assert!(!run(), "an eth0 stanza: ifupdown owns eth0");
    }
}
