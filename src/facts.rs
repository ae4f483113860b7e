//! One probe round trip -> what a node is and has: OS, init system, iptables
//! backend, nft, interfaces, CPUs, memory, and every managed file's content,
//! mode and owner. The probe is one POSIX sh script; its output is a line
//! protocol (`@@key value`, file contents base64-encoded between `@@file` and
//! `@@end`) parsed here. Pure apart from the one `Transport::run`.

use std::collections::BTreeMap;

use base64::Engine;

use crate::plan::Observed;
use crate::transport::{shell_quote, Transport, TransportError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InitSystem {
    Systemd,
    Sysvinit,
    Openrc,
    Unknown,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Facts {
    pub os_id: String,
    pub os_version: String,
    pub init: InitSystem,
    /// `nf_tables`, `legacy`, `none` or `unknown`
    pub iptables: String,
    pub nft: bool,
    pub hostname: String,
    /// (name, MAC)
    pub ifaces: Vec<(String, String)>,
    pub cpus: u32,
    pub mem_kib: u64,
    /// Commands apply may need that the node has (`ifup`, `dnsmasq`, ...).
    pub tools: std::collections::BTreeSet<String>,
    /// The interface carrying this SSH session (apply never takes it down):
    /// None when not over SSH, `?` when it could not be told.
    pub session_iface: Option<String>,
    /// Steps whose handler an earlier apply still owes (see `apply::PENDING`).
    pub pending: Vec<String>,
    #[serde(skip)]
    pub files: BTreeMap<String, Observed>,
}

/// Commands the probe looks for (apply's validators and handlers use them).
pub const TOOLS: &str = "base64 mktemp ip ifup ifdown sysctl iptables-restore dnsmasq \
service systemctl rc-service exportfs mount.nfs";

/// The probe script for these managed paths.
pub fn probe_script(paths: &[&str]) -> String {
    let mut s = String::from(
        &r#"set -u
LC_ALL=C; export LC_ALL
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH
( . /etc/os-release 2>/dev/null; echo "@@os ${ID:-unknown} ${VERSION_ID:-}" )
if [ -d /run/systemd/system ]; then i=systemd
elif [ -d /run/openrc ] || command -v openrc-run >/dev/null 2>&1; then i=openrc
elif [ -d /etc/init.d ]; then i=sysvinit
else i=unknown; fi
echo "@@init $i"
if command -v iptables >/dev/null 2>&1; then
  case "$(iptables --version 2>/dev/null)" in
    *nf_tables*) b=nf_tables ;; *legacy*) b=legacy ;; *) b=unknown ;;
  esac
else b=none; fi
echo "@@iptables $b"
if command -v nft >/dev/null 2>&1; then echo "@@nft yes"; else echo "@@nft no"; fi
echo "@@hostname $(hostname 2>/dev/null || cat /proc/sys/kernel/hostname)"
echo "@@cpus $(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 0)"
echo "@@mem $(awk '/^MemTotal:/ {print $2}' /proc/meminfo 2>/dev/null)"
for t in TOOLS; do
  command -v "$t" >/dev/null 2>&1 && echo "@@tool $t"
done
c=${CLUSTERCTL_SSH_CLIENT:-${SSH_CLIENT:-}}; c=${c%% *}
if [ -n "$c" ]; then
  si=$(ip -o route get "$c" 2>/dev/null | sed -n 's/.* dev \([^ ]*\).*/\1/p')
  echo "@@session-if ${si:-?}"
fi
if [ -f PENDING ]; then
  while read -r s; do [ -n "$s" ] && echo "@@pending $s"; done < PENDING
fi
for d in /sys/class/net/*; do
  [ -e "$d/address" ] && echo "@@iface ${d##*/} $(cat "$d/address")"
done
probe() {
  if [ -f "$1" ]; then
    echo "@@file $1 $(stat -c '%a %U %G' "$1")"
    base64 < "$1"
    echo "@@end"
  elif [ -e "$1" ]; then
    echo "@@notfile $1"
  else
    echo "@@missing $1"
  fi
}
"#
        .replace("TOOLS", TOOLS)
        .replace("PENDING", crate::apply::PENDING),
    );
    for p in paths {
        s.push_str(&format!("probe {}\n", shell_quote(p)));
    }
    s.push_str("echo @@done\n");
    s
}

/// Run the probe on one node: one round trip.
pub fn gather(t: &dyn Transport, paths: &[&str]) -> Result<Facts, TransportError> {
    let out = t.run(&probe_script(paths))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse(&text).map_err(|e| TransportError {
        message: format!(
            "{}: the probe failed: {e}{}",
            t.describe(),
            match String::from_utf8_lossy(&out.stderr).trim() {
                "" => String::new(),
                err => format!(" ({err})"),
            }
        ),
        unreachable: false,
    })
}

/// Parse the probe's output.
pub fn parse(text: &str) -> Result<Facts, String> {
    let mut f = Facts {
        os_id: "unknown".into(),
        os_version: String::new(),
        init: InitSystem::Unknown,
        iptables: "unknown".into(),
        nft: false,
        hostname: String::new(),
        ifaces: Vec::new(),
        cpus: 0,
        mem_kib: 0,
        tools: Default::default(),
        session_iface: None,
        pending: Vec::new(),
        files: BTreeMap::new(),
    };
    let mut lines = text.lines();
    let mut done = false;
    while let Some(line) = lines.next() {
        let (key, rest) = line.split_once(' ').unwrap_or((line, ""));
        match key {
            "@@os" => {
                let (id, ver) = rest.split_once(' ').unwrap_or((rest, ""));
                f.os_id = id.to_string();
                f.os_version = ver.to_string();
            }
            "@@init" => {
                f.init = match rest {
                    "systemd" => InitSystem::Systemd,
                    "sysvinit" => InitSystem::Sysvinit,
                    "openrc" => InitSystem::Openrc,
                    _ => InitSystem::Unknown,
                }
            }
            "@@iptables" => f.iptables = rest.to_string(),
            "@@nft" => f.nft = rest == "yes",
            "@@hostname" => f.hostname = rest.to_string(),
            "@@cpus" => f.cpus = rest.trim().parse().unwrap_or(0),
            "@@mem" => f.mem_kib = rest.trim().parse().unwrap_or(0),
            "@@tool" => {
                f.tools.insert(rest.trim().to_string());
            }
            "@@pending" => f.pending.push(rest.trim().to_string()),
            "@@session-if" => {
                let i = rest.trim();
                f.session_iface = (!i.is_empty()).then(|| i.to_string());
            }
            "@@iface" => {
                if let Some((n, m)) = rest.split_once(' ') {
                    f.ifaces.push((n.to_string(), m.to_string()));
                }
            }
            "@@missing" => {
                f.files.insert(rest.to_string(), Observed::default());
            }
            "@@notfile" => return Err(format!("{rest} exists but is not a regular file")),
            "@@file" => {
                let mut parts = rest.rsplitn(4, ' ');
                let (group, owner, mode, path) =
                    (parts.next(), parts.next(), parts.next(), parts.next());
                let (Some(group), Some(owner), Some(mode), Some(path)) = (group, owner, mode, path)
                else {
                    return Err(format!("malformed line {line:?}"));
                };
                let mut b64 = String::new();
                loop {
                    match lines.next() {
                        Some("@@end") => break,
                        Some(l) => b64.push_str(l.trim()),
                        None => return Err(format!("{path}: output ends inside the file")),
                    }
                }
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64.as_bytes())
                    .map_err(|e| format!("{path}: bad base64 ({e})"))?;
                let content = String::from_utf8(bytes).map_err(|_| {
                    format!("{path} is not UTF-8 text; clusterctl will not edit it")
                })?;
                f.files.insert(
                    path.to_string(),
                    Observed {
                        content: Some(content),
                        mode: u32::from_str_radix(mode, 8).ok(),
                        owner: Some(owner.to_string()),
                        group: Some(group.to_string()),
                    },
                );
            }
            "@@done" => done = true,
            _ => {}
        }
    }
    if !done {
        return Err("the probe output is incomplete".into());
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Local;

    /// The probe runs for real on this machine (the local transport) and
    /// reads back a file byte for byte.
    #[test]
    fn probe_runs_locally_and_reads_files_back() {
        let dir = std::env::temp_dir().join(format!("clusterctl-facts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("it's a file");
        let content = "line one\n\ttabbed 'quoted' $(not run)\nno newline at end";
        std::fs::write(&file, content).unwrap();
        let missing = dir.join("missing");
        let t = Local::default();
        let f = gather(&t, &[file.to_str().unwrap(), missing.to_str().unwrap()]).unwrap();
        assert_eq!(t.round_trips(), 1);
        let got = &f.files[file.to_str().unwrap()];
        assert_eq!(got.content.as_deref(), Some(content));
        assert!(got.mode.is_some() && got.owner.is_some());
        assert_eq!(f.files[missing.to_str().unwrap()], Observed::default());
        assert!(f.cpus >= 1 && f.mem_kib > 0);
        assert!(!f.ifaces.is_empty());
        assert!(f.tools.contains("base64") && f.tools.contains("mktemp"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn incomplete_output_is_an_error() {
        assert!(parse("@@os debian 12\n").is_err());
        assert!(parse("@@file /etc/hosts 644 root root\naGVsbG8K\n").is_err());
    }
}
