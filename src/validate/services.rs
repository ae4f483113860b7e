//! What the cluster runs beyond addressing: SSH client settings, NFS
//! exports, the firewall's open ports and MPI hostfiles.

use std::collections::BTreeSet;
use std::path::Path;

use super::Diags;
use crate::cluster::{
    Export, Firewall, FirewallBackend, HostfileFlavor, LanPolicy, Mpi, Nfs, NfsServer, SshSettings,
    SshTarget, Time,
};
use crate::inventory::{loc, RawExport, RawFirewall, RawInventory, RawMpi, RawNfs, RawTime, S};
use crate::values::{
    check_ssh_path, check_user, normalize_path, parse_export_options, shown, NtpServer, SharedDir,
};

pub const MAX_SLOTS: u32 = 4096;

/// SSH client settings, and the default user for workers reached through
/// the head (the inventory's `ssh.user`, else the head's).
pub(super) fn ssh(
    d: &mut Diags,
    raw: &RawInventory,
    head_ssh: Option<&SshTarget>,
    base: &Path,
) -> (SshSettings, Option<String>) {
    let ssh_raw = raw.ssh.as_ref();
    let default_user = match ssh_raw.and_then(|s| s.user.as_ref()) {
        Some(u) => {
            if let Err(e) = check_user(&u.value) {
                d.err(
                    loc(u),
                    None,
                    e,
                    Some("a login name like `pi` or `admin`: lowercase letters, digits, '_', '-', '.'"),
                );
            }
            Some(u.value.clone())
        }
        None => head_ssh.and_then(|t| t.user.clone()),
    };
    let mut resolve = |p: &Option<S<String>>, what: &str| {
        let s = p.as_ref()?;
        match check_ssh_path(&s.value) {
            Ok(()) => Some(absolutize(base, &s.value)),
            Err(e) => {
                d.err(
                    loc(s),
                    None,
                    format!("ssh {what} `{}` {e}", shown(&s.value)),
                    Some(
                        "a path on this machine, relative to the inventory's directory or absolute",
                    ),
                );
                None
            }
        }
    };
    let settings = SshSettings {
        transport: ssh_raw
            .and_then(|s| s.transport.as_ref())
            .map(|t| t.value)
            .unwrap_or_default(),
        config: ssh_raw.and_then(|s| resolve(&s.config, "config")),
        known_hosts: ssh_raw.and_then(|s| resolve(&s.known_hosts, "known_hosts")),
        identity: ssh_raw.and_then(|s| resolve(&s.identity, "identity")),
    };
    (settings, default_user)
}

fn absolutize(base: &Path, p: &str) -> std::path::PathBuf {
    let p = Path::new(p);
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    };
    if joined.is_absolute() {
        joined
    } else {
        std::env::current_dir()
            .map(|c| c.join(&joined))
            .unwrap_or(joined)
    }
}

pub(super) fn check_slots(d: &mut Diags, s: &S<u32>, node: Option<&str>) {
    if s.value == 0 || s.value > MAX_SLOTS {
        d.err(
            loc(s),
            node,
            format!("slots {} is out of range", s.value),
            Some(&format!("slots run from 1 to {MAX_SLOTS}")),
        );
    }
}

/// MPI: the default slots per worker and the hostfile flavours.
pub(super) fn mpi(d: &mut Diags, raw: Option<&RawMpi>) -> Mpi {
    let slots = match raw.and_then(|m| m.slots.as_ref()) {
        Some(s) => {
            check_slots(d, s, None);
            s.value
        }
        None => 1,
    };
    let mut hostfiles: Vec<HostfileFlavor> = raw
        .and_then(|m| m.hostfiles.as_ref())
        .map(|v| v.iter().map(|f| f.value).collect())
        .unwrap_or_else(|| vec![HostfileFlavor::Openmpi]);
    hostfiles.sort();
    hostfiles.dedup();
    let install = raw.and_then(|m| m.install.as_ref()).map(|i| i.value);
    let head_slots = match raw.and_then(|m| m.head_slots.as_ref()) {
        Some(s) if s.value == 0 => 0,
        Some(s) => {
            check_slots(d, s, None);
            s.value
        }
        None => 0,
    };
    let cluster_key = raw
        .and_then(|m| m.cluster_key.as_ref())
        .map(|k| k.value)
        .unwrap_or(install.is_some());
    Mpi {
        slots,
        hostfiles,
        install,
        head_slots,
        cluster_key,
    }
}

/// At most this many upstream NTP servers (chrony uses a handful).
pub const MAX_NTP_SERVERS: usize = 8;

/// Time sync: the head's upstream servers (checked: an IPv4 address or a
/// DNS name, each once) and its local stratum.
pub(super) fn time(d: &mut Diags, raw: Option<&RawTime>) -> Time {
    let enabled = raw
        .and_then(|t| t.enabled.as_ref())
        .map(|e| e.value)
        .unwrap_or(true);
    let local_stratum = match raw.and_then(|t| t.local_stratum.as_ref()) {
        Some(s) if (1..=15).contains(&s.value) => s.value as u8,
        Some(s) => {
            d.err(
                loc(s),
                None,
                format!("time local_stratum {} is out of range", s.value),
                Some("a stratum runs from 1 to 15 (10, the default, ranks below any real server)"),
            );
            10
        }
        None => 10,
    };
    let upstream = raw.and_then(|t| t.upstream.as_ref()).map(|list| {
        if list.len() > MAX_NTP_SERVERS {
            d.err(
                loc(&list[MAX_NTP_SERVERS]),
                None,
                format!("time upstream lists {} servers", list.len()),
                Some(&format!("name at most {MAX_NTP_SERVERS} NTP servers")),
            );
        }
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for s in list {
            match NtpServer::parse(&s.value) {
                Ok(n) => {
                    if !seen.insert(s.value.to_ascii_lowercase()) {
                        d.err(
                            loc(s),
                            None,
                            format!("time upstream `{}` is listed twice", shown(&s.value)),
                            None,
                        );
                    }
                    out.push(n);
                }
                Err(e) => d.err(
                    loc(s),
                    None,
                    format!("time upstream `{}` {e}", shown(&s.value)),
                    Some("an NTP server is an IPv4 address like 192.0.2.1 or a name like 0.pool.ntp.org"),
                ),
            }
        }
        out
    });
    Time {
        enabled,
        upstream,
        local_stratum,
    }
}

/// NFS exports: safe paths, no `/`, no path or mount point twice.
pub(super) fn nfs(d: &mut Diags, raw: Option<&RawNfs>) -> Nfs {
    let Some(nfs) = raw else {
        return Nfs {
            enabled: false,
            exports: Vec::new(),
            server: NfsServer::default(),
        };
    };
    let mut exports = Vec::new();
    let mut seen_paths = BTreeSet::new();
    let mut seen_mounts = BTreeSet::new();
    for e in &nfs.exports {
        let e = &e.value;
        let export = export(d, e);
        let mut ok = export.is_some();
        if !seen_paths.insert(normalize_path(&e.path.value)) {
            let msg = format!(
                "NFS export `{}` is listed twice",
                shown(&normalize_path(&e.path.value))
            );
            d.err(loc(&e.path), None, msg, None);
            ok = false;
        }
        let mount = normalize_path(e.mount.as_ref().unwrap_or(&e.path).value.as_str());
        if !seen_mounts.insert(mount.clone()) {
            d.err(
                e.mount.as_ref().map_or(loc(&e.path), loc),
                None,
                format!("NFS mount point `{}` is used twice", shown(&mount)),
                None,
            );
            ok = false;
        }
        if let (true, Some(x)) = (ok, export) {
            exports.push(x);
        }
    }
    Nfs {
        enabled: nfs.enabled && !exports.is_empty(),
        exports,
        server: nfs.server.as_ref().map(|s| s.value).unwrap_or_default(),
    }
}

/// The options of an export that names none.
const DEFAULT_EXPORT_OPTIONS: &str = "rw,sync,no_subtree_check";

/// One export, or None when a value is wrong (reported).
fn export(d: &mut Diags, e: &RawExport) -> Option<Export> {
    let path = match SharedDir::parse(&e.path.value) {
        Err(msg) => {
            let m = format!("NFS export path `{}` {msg}", shown(&e.path.value));
            d.err(
                loc(&e.path),
                None,
                m,
                Some("export a directory such as /home, /srv/nfs or /opt/shared"),
            );
            None
        }
        Ok(p) => Some(p),
    };
    let mount = match &e.mount {
        None => path.clone(),
        Some(m) => match SharedDir::parse(&m.value) {
            Err(msg) => {
                let text = format!("NFS mount point `{}` {msg}", shown(&m.value));
                d.err(
                    loc(m),
                    None,
                    text,
                    Some("mount it on a directory such as /home, /srv/nfs or /opt/shared"),
                );
                None
            }
            Ok(p) => Some(p),
        },
    };
    let options = match &e.options {
        None => Some(DEFAULT_EXPORT_OPTIONS.to_string()),
        Some(o) => Some(o.value.clone()),
    };
    let meaning = match &e.options {
        None => parse_export_options(DEFAULT_EXPORT_OPTIONS).ok(),
        Some(o) => match parse_export_options(&o.value) {
            Ok(m) => Some(m),
            Err(msg) => {
                d.err(
                    loc(o),
                    None,
                    format!("NFS export options `{}` {msg}", shown(&o.value)),
                    Some("options are comma-separated exports(5) words like rw,sync,no_subtree_check"),
                );
                None
            }
        },
    };
    let (path, mount, options, meaning) = (path?, mount?, options?, meaning?);
    let access = meaning.access;
    Some(Export {
        path,
        mount,
        // A missing head never hangs a boot: _netdev, nofail, and systemd
        // gives up on the mount after 30 s (other inits ignore x- options).
        mount_options: format!("{access},_netdev,nofail,x-systemd.mount-timeout=30"),
        access,
        options,
        squash: meaning.squash,
        anonuid: meaning.anonuid,
        anongid: meaning.anongid,
        sec: meaning.sec,
    })
}

/// The ports open on the head's WAN side. 22 and the port the controller
/// reaches the head on are always open: a firewall that drops our own SSH
/// session would lock the user out.
pub(super) fn firewall(
    d: &mut Diags,
    raw: Option<&RawFirewall>,
    head_ssh: Option<&SshTarget>,
) -> Firewall {
    let mut ports: BTreeSet<u16> = BTreeSet::from([22]);
    if let Some(t) = head_ssh {
        ports.insert(t.port);
    }
    let mut lan = LanPolicy::default();
    let mut backend = FirewallBackend::default();
    if let Some(fw) = raw {
        if let Some(b) = &fw.backend {
            backend = b.value;
        }
        for p in &fw.wan_tcp_ports {
            if p.value == 0 {
                d.err(
                    loc(p),
                    None,
                    "WAN port 0 is not a port".into(),
                    Some("ports run from 1 to 65535"),
                );
            } else {
                ports.insert(p.value);
            }
        }
        if let Some(l) = &fw.lan {
            lan = l.value;
        }
    }
    Firewall {
        wan_tcp_ports: ports.into_iter().collect(),
        lan,
        backend,
    }
}
