//! Observe a node before anything is decided for it: one probe round trip
//! -> [`Facts`] (OS, init system, iptables backend, nft, interfaces, CPUs,
//! memory, the tools apply may need, the interface carrying the SSH session,
//! owed handlers) and every candidate managed file's content, mode and owner
//! ([`Observed`]). The probe is `probe.sh`, sent with its values as quoted
//! assignments; its output is a line protocol (`@@key value`; one `@@file`
//! line per regular file, then all their contents concatenated and
//! base64-encoded between `@@content` and `@@end`) parsed here. The probe
//! starts as few commands as it can (each costs the node milliseconds of
//! CPU), so some raw lines are parsed here instead (`@@cpus-online`,
//! `@@dpkg`). Pure apart from the one `Transport::run`.

mod firewall;
mod netstack;

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;

pub use firewall::{choose as choose_firewall, FirewallFacts, FirewallInput};
pub use netstack::{stack_name, NetConf, NetFacts};

use crate::node_state::{OWED_FILE, USERS_FILE};
use crate::transport::{protocol, shell_quote, Transport, TransportError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InitSystem {
    Systemd,
    Sysvinit,
    Openrc,
    Unknown,
}

/// A node's package manager, from the facts (its family's: `src/family/`).
pub use crate::family::PackageManager;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Facts {
    pub os_id: String,
    pub os_version: String,
    pub init: InitSystem,
    /// `nf_tables`, `legacy`, `none` or `unknown`
    pub iptables: String,
    pub nft: bool,
    pub hostname: String,
    /// The running machine: boot id, machine-id and ed25519 host key
    /// (`engine/machines.rs`); None when the node lacks any of them.
    pub machine: Option<String>,
    /// (name, MAC)
    pub ifaces: Vec<(String, String)>,
    pub cpus: u32,
    pub mem_kib: u64,
    /// Commands apply may need that the node has (`ifup`, `dnsmasq`, ...).
    pub tools: std::collections::BTreeSet<String>,
    /// The interface carrying this SSH session (apply never takes it down):
    /// None when not over SSH, `?` when it could not be told.
    pub session_iface: Option<String>,
    /// The address this SSH session comes from, as the node sees it.
    pub session_client: Option<std::net::IpAddr>,
    /// The IPv4 resolvers the node itself uses (behind a local stub: the
    /// stub's upstreams).
    pub resolvers: Vec<std::net::Ipv4Addr>,
    /// IPv4 addresses by interface, with their networks.
    #[serde(skip)]
    pub addrs: Vec<(String, ipnet::Ipv4Net)>,
    /// The package manager, and which of the packages asked about are installed.
    pub package_manager: PackageManager,
    pub packages: std::collections::BTreeSet<String>,
    /// Steps whose handler an earlier apply still owes (see `node_state::OWED_FILE`).
    pub owed: Vec<String>,
    /// Services running (`NetworkManager`, `systemd-networkd`,
    /// `systemd-resolved`, `firewalld`, `nftables`) and enabled at boot.
    pub active: BTreeSet<String>,
    pub enabled: BTreeSet<String>,
    /// The network stack's configuration (see `netstack.rs`).
    #[serde(skip)]
    pub net: NetFacts,
    /// The firewall's loaded rules (see `firewall.rs`).
    #[serde(skip)]
    pub fw: FirewallFacts,
    #[serde(skip)]
    pub files: BTreeMap<String, Observed>,
    /// The node's accounts (cluster users).
    #[serde(skip)]
    pub accounts: Accounts,
}

/// What the probe saw of a node's accounts: the passwd and group files,
/// the login shells, clusterctl's record of the accounts it created and
/// their expiry (a locked account expires on day 1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accounts {
    /// The probe could read `/etc/passwd`.
    pub read: bool,
    pub users: Vec<PasswdEntry>,
    pub groups: Vec<GroupEntry>,
    /// `/etc/shells`.
    pub shells: BTreeSet<String>,
    /// The accounts clusterctl created (`node_state::USERS_FILE`).
    pub managed: BTreeSet<String>,
    /// Expiry day of each managed account (None: never).
    pub expires: BTreeMap<String, Option<u64>>,
    /// The file system type mounted on `/home` (None: not a mount point).
    pub home_fs: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub shell: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

impl Accounts {
    /// `/home` is an NFS mount on this node.
    pub fn home_on_nfs(&self) -> bool {
        matches!(self.home_fs.as_deref(), Some("nfs" | "nfs4"))
    }

    pub fn user(&self, name: &str) -> Option<&PasswdEntry> {
        self.users.iter().find(|u| u.name == name)
    }
    pub fn user_by_uid(&self, uid: u32) -> Option<&PasswdEntry> {
        self.users.iter().find(|u| u.uid == uid)
    }
    pub fn group(&self, name: &str) -> Option<&GroupEntry> {
        self.groups.iter().find(|g| g.name == name)
    }
    pub fn group_by_gid(&self, gid: u32) -> Option<&GroupEntry> {
        self.groups.iter().find(|g| g.gid == gid)
    }
    /// The supplementary groups `name` is listed in, sorted.
    pub fn member_of(&self, name: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .groups
            .iter()
            .filter(|g| g.members.iter().any(|m| m == name))
            .map(|g| g.name.clone())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// One probe line about accounts; false when `key` is not one.
    pub(crate) fn parse_line(&mut self, key: &str, rest: &str) -> bool {
        let w: Vec<&str> = rest.split(' ').collect();
        match key {
            "@@accounts" => self.read = true,
            "@@pw" => {
                if let [name, uid, gid, shell @ ..] = &w[..] {
                    if let (Ok(uid), Ok(gid)) = (uid.parse(), gid.parse()) {
                        self.users.push(PasswdEntry {
                            name: name.to_string(),
                            uid,
                            gid,
                            shell: shell.join(" "),
                        });
                    }
                }
            }
            "@@gr" => {
                if let [name, gid, members @ ..] = &w[..] {
                    if let Ok(gid) = gid.parse() {
                        self.groups.push(GroupEntry {
                            name: name.to_string(),
                            gid,
                            members: members
                                .join(" ")
                                .split(',')
                                .filter(|m| !m.is_empty())
                                .map(String::from)
                                .collect(),
                        });
                    }
                }
            }
            "@@shell" => {
                self.shells.insert(rest.trim().to_string());
            }
            "@@managed" => {
                self.managed.insert(rest.trim().to_string());
            }
            "@@homefs" => self.home_fs = Some(rest.trim().to_string()),
            "@@expires" => {
                if let [name, e] = &w[..] {
                    self.expires.insert(name.to_string(), e.parse().ok());
                }
            }
            _ => return false,
        }
        true
    }
}

/// What a node has at one managed path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// None: the file does not exist.
    pub content: Option<String>,
    pub mode: Option<u32>,
    pub owner: Option<String>,
    pub group: Option<String>,
    /// Why clusterctl will not edit what is there (not a regular file, not
    /// UTF-8 text); an error only if the node should get this path.
    pub problem: Option<String>,
}

impl Facts {
    /// What `render` assumes offline, where no node is asked: a Debian 12
    /// host with systemd.
    pub fn assumed() -> Facts {
        let mut f = Facts::empty();
        f.os_id = "debian".into();
        f.os_version = "12".into();
        f.init = InitSystem::Systemd;
        f.iptables = "nf_tables".into();
        f.package_manager = crate::family::DEBIAN.manager;
        f.net.ifupdown = Some("classic".into());
        f
    }

    /// The node's distro family (by its package manager, else its
    /// os-release ID), or why none is recognised: what was seen.
    pub fn family(&self) -> Result<&'static crate::family::Family, String> {
        crate::family::detect(self.package_manager, &self.os_id, &self.os_version)
    }

    /// The network stack this node runs (None: none recognised).
    pub fn net_stack(&self) -> Option<crate::inventory::NetStack> {
        self.net.detect(&self.active)
    }

    /// The firewall backend for this node under the inventory's pin.
    pub fn firewall_backend(
        &self,
        pin: crate::inventory::FirewallBackend,
    ) -> Result<crate::inventory::FirewallBackend, String> {
        choose_firewall(
            pin,
            &FirewallInput {
                iptables: &self.iptables,
                nft: self.nft,
                active: &self.active,
                enabled: &self.enabled,
                nftables_by_default: self.family().is_ok_and(|f| f.nftables_by_default),
                fw: &self.fw,
            },
        )
    }

    fn empty() -> Facts {
        Facts {
            os_id: "unknown".into(),
            os_version: String::new(),
            init: InitSystem::Unknown,
            iptables: "unknown".into(),
            nft: false,
            hostname: String::new(),
            machine: None,
            ifaces: Vec::new(),
            cpus: 0,
            mem_kib: 0,
            tools: Default::default(),
            session_iface: None,
            session_client: None,
            addrs: Vec::new(),
            resolvers: Vec::new(),
            package_manager: Default::default(),
            packages: Default::default(),
            owed: Vec::new(),
            active: BTreeSet::new(),
            enabled: BTreeSet::new(),
            net: NetFacts::default(),
            fw: FirewallFacts::default(),
            files: BTreeMap::new(),
            accounts: Accounts::default(),
        }
    }
}

/// The probe's code; its values come in quoted assignments and `set --`.
pub(crate) const PROBE: &str = concat!(include_str!("accounts.sh"), include_str!("probe.sh"));

/// `probe_accounts`, the accounts part of the probe, alone: sent before
/// planning to check every node's accounts at once (engine/keys.rs).
pub(crate) const ACCOUNTS_SH: &str = include_str!("accounts.sh");

/// The probe script for these managed paths, the commands and the
/// packages to look for.
pub fn probe_script(paths: &[&str], tools: &[&str], pkgs: &[&str]) -> String {
    let quoted: Vec<String> = paths.iter().map(|p| shell_quote(p)).collect();
    format!(
        "tools={}\npkgs={}\nowed_file={}\nusers_file={}\nset -- {}\n{PROBE}",
        shell_quote(&tools.join(" ")),
        shell_quote(&pkgs.join(" ")),
        shell_quote(OWED_FILE),
        shell_quote(USERS_FILE),
        quoted.join(" ")
    )
}

/// Run the probe on one node: one round trip.
pub fn gather(
    t: &dyn Transport,
    paths: &[&str],
    tools: &[&str],
    pkgs: &[&str],
) -> Result<Facts, TransportError> {
    let out = t.run(&probe_script(paths, tools, pkgs))?;
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

impl InitSystem {
    const ALL: [InitSystem; 4] = [
        InitSystem::Systemd,
        InitSystem::Sysvinit,
        InitSystem::Openrc,
        InitSystem::Unknown,
    ];

    /// The probe's word for it (also what node scripts are given).
    pub fn word(self) -> &'static str {
        match self {
            InitSystem::Systemd => "systemd",
            InitSystem::Sysvinit => "sysvinit",
            InitSystem::Openrc => "openrc",
            InitSystem::Unknown => "unknown",
        }
    }

    fn from_word(w: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|i| i.word() == w)
            .unwrap_or(InitSystem::Unknown)
    }
}

impl Observed {
    fn problem(why: String) -> Observed {
        Observed {
            problem: Some(why),
            ..Observed::default()
        }
    }
}

/// Parse the probe's output.
pub fn parse(text: &str) -> Result<Facts, String> {
    let mut f = Facts::empty();
    let mut lines = protocol::Lines::new(text);
    let mut done = false;
    // `@@file` lines wait for the `@@content` block that follows them.
    let mut stated: Vec<FileStat> = Vec::new();
    while let Some((key, rest)) = lines.next() {
        match key {
            "@@os" => {
                let (id, ver) = rest.split_once(' ').unwrap_or((rest, ""));
                f.os_id = id.to_string();
                f.os_version = ver.to_string();
            }
            "@@init" => f.init = InitSystem::from_word(rest.trim()),
            "@@iptables" => f.iptables = rest.to_string(),
            "@@nft" => f.nft = rest == "yes",
            "@@hostname" => f.hostname = rest.to_string(),
            "@@machine" => {
                f.machine = (rest.split_whitespace().count() == 3).then(|| rest.to_string())
            }
            "@@cpus" => f.cpus = rest.trim().parse().unwrap_or(0),
            "@@cpus-online" => f.cpus = count_cpu_list(rest.trim()),
            "@@mem" => f.mem_kib = rest.trim().parse().unwrap_or(0),
            "@@tool" => {
                f.tools.insert(rest.trim().to_string());
            }
            "@@owed" => f.owed.push(rest.trim().to_string()),
            "@@session-if" => {
                let i = rest.trim();
                f.session_iface = (!i.is_empty()).then(|| i.to_string());
            }
            "@@pkgmgr" => f.package_manager = crate::family::package_manager(rest.trim()),
            "@@pkg" => {
                f.packages.insert(rest.trim().to_string());
            }
            // dpkg-query's `PACKAGE WANT FLAG STATUS`
            "@@dpkg" => f.packages.extend(dpkg_installed(rest)),
            "@@resolver" => {
                if let Ok(ip) = rest.trim().parse() {
                    f.resolvers.push(ip);
                }
            }
            "@@session-client" => f.session_client = rest.trim().parse().ok(),
            "@@addr" => f.addrs.extend(addr(rest)),
            "@@iface" => {
                if let Some((n, m)) = rest.split_once(' ') {
                    f.ifaces.push((n.to_string(), m.to_string()));
                }
            }
            "@@missing" => {
                f.files.insert(rest.to_string(), Observed::default());
            }
            "@@notfile" => {
                let problem = format!("{rest} exists but is not a regular file");
                f.files.insert(rest.to_string(), Observed::problem(problem));
            }
            "@@file" => stated.push(FileStat::parse(rest)?),
            "@@content" => {
                for (path, observed) in parse_content(std::mem::take(&mut stated), &mut lines)? {
                    f.files.insert(path, observed);
                }
            }
            "@@active" => {
                f.active.insert(rest.trim().to_string());
            }
            "@@enabled" => {
                f.enabled.insert(rest.trim().to_string());
            }
            "@@done" => done = true,
            _ => {
                let _ = f.net.parse_line(key, rest)
                    || f.fw.parse_line(key, rest)
                    || f.accounts.parse_line(key, rest);
            }
        }
    }
    if !done || !stated.is_empty() {
        return Err("the probe output is incomplete".into());
    }
    Ok(f)
}

/// dpkg-query's `PACKAGE WANT FLAG STATUS`: the package, if installed.
fn dpkg_installed(rest: &str) -> Option<String> {
    match rest.split_whitespace().collect::<Vec<_>>()[..] {
        [p, _, _, "installed"] => Some(p.to_string()),
        _ => None,
    }
}

/// `IFACE ADDR/PREFIX`
fn addr(rest: &str) -> Option<(String, ipnet::Ipv4Net)> {
    let (n, a) = rest.split_once(' ')?;
    Some((n.to_string(), a.trim().parse().ok()?))
}

/// The number of CPUs in a kernel CPU list such as `0-3,8,10-11`.
fn count_cpu_list(list: &str) -> u32 {
    list.split(',')
        .filter_map(|r| match r.split_once('-') {
            Some((a, b)) => Some(b.parse::<u32>().ok()?.checked_sub(a.parse().ok()?)? + 1),
            None => r.parse::<u32>().ok().map(|_| 1),
        })
        .sum()
}

/// One `@@file PATH MODE OWNER GROUP SIZE` line.
struct FileStat {
    path: String,
    mode: String,
    owner: String,
    group: String,
    size: usize,
}

impl FileStat {
    fn parse(rest: &str) -> Result<FileStat, String> {
        let mut parts = rest.rsplitn(5, ' ');
        // The line as it came (`@@file`, a space, the rest).
        let line = match rest {
            "" => "@@file".to_string(),
            _ => format!("@@file {rest}"),
        };
        let malformed = || format!("malformed line {line:?}");
        let mut next = || parts.next().ok_or_else(malformed);
        let (size, group, owner, mode, path) = (next()?, next()?, next()?, next()?, next()?);
        Ok(FileStat {
            size: size.parse().map_err(|_| malformed())?,
            path: path.to_string(),
            mode: mode.to_string(),
            owner: owner.to_string(),
            group: group.to_string(),
        })
    }
}

/// The base64 lines up to `@@end`: the files' contents one after the
/// other, cut apart by their sizes.
fn parse_content(
    stated: Vec<FileStat>,
    lines: &mut protocol::Lines,
) -> Result<Vec<(String, Observed)>, String> {
    let b64 = lines
        .block()
        .ok_or("output ends inside the files' contents")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .map_err(|e| format!("the files' contents: bad base64 ({e})"))?;
    let total: usize = stated.iter().map(|s| s.size).sum();
    if total != bytes.len() {
        let paths: Vec<&str> = stated.iter().map(|s| s.path.as_str()).collect();
        return Err(format!(
            "a managed file changed while it was read ({} bytes stated, {} read, in {}); run again",
            total,
            bytes.len(),
            paths.join(" ")
        ));
    }
    let mut at = 0;
    let mut out = Vec::new();
    for s in stated {
        let content = &bytes[at..at + s.size];
        at += s.size;
        let observed = match String::from_utf8(content.to_vec()) {
            Ok(content) => Observed {
                content: Some(content),
                mode: u32::from_str_radix(&s.mode, 8).ok(),
                owner: Some(s.owner),
                group: Some(s.group),
                problem: None,
            },
            Err(_) => Observed::problem(format!(
                "{} is not UTF-8 text; clusterctl will not edit it",
                s.path
            )),
        };
        out.push((s.path, observed));
    }
    Ok(out)
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
        let paths = [file.to_str().unwrap(), missing.to_str().unwrap()];
        let f = gather(&t, &paths, &["base64", "mktemp"], &["coreutils"]).unwrap();
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

    /// Regression: /etc/resolv.conf is a symlink on systemd-resolved hosts;
    /// the probe stated the link (its size is the target's name) and read
    /// the target, so the contents did not add up and the node failed.
    #[test]
    fn a_symlinked_file_is_stated_and_read_through_its_link() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("stub-resolv.conf");
        std::fs::write(&target, "nameserver 127.0.0.53\noptions edns0\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.path().join("resolv.conf");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let after = dir.path().join("after");
        std::fs::write(&after, "next file\n").unwrap();
        let paths = [link.to_str().unwrap(), after.to_str().unwrap()];
        let f = gather(&Local::default(), &paths, &[], &[]).unwrap();
        let got = &f.files[link.to_str().unwrap()];
        assert_eq!(
            got.content.as_deref(),
            Some("nameserver 127.0.0.53\noptions edns0\n")
        );
        assert_eq!(
            got.mode,
            Some(0o640),
            "the target's mode, not the link's 777"
        );
        assert_eq!(
            f.files[after.to_str().unwrap()].content.as_deref(),
            Some("next file\n")
        );
    }

    #[test]
    fn incomplete_output_is_an_error() {
        assert!(parse("@@os debian 12\n").is_err());
        assert!(parse("@@file /etc/hosts 644 root root 6\n@@content\naGVsbG8K\n").is_err());
        assert!(parse("@@file /etc/hosts 644 root root 6\n@@done\n").is_err());
    }

    /// Two files in one `@@content` block, cut apart by their sizes; a size
    /// that does not add up (the file changed between `stat` and `cat`) is an
    /// error, never a file cut in the wrong place.
    #[test]
    fn contents_are_cut_apart_by_their_sizes() {
        let out = "@@file /a b 600 root adm 6\n@@file /c 644 root root 3\n@@content\naGVsbG8KeHl6\n@@end\n@@done\n";
        let f = parse(out).unwrap();
        assert_eq!(f.files["/a b"].content.as_deref(), Some("hello\n"));
        assert_eq!(f.files["/a b"].mode, Some(0o600));
        assert_eq!(f.files["/a b"].group.as_deref(), Some("adm"));
        assert_eq!(f.files["/c"].content.as_deref(), Some("xyz"));
        let changed = out.replace(" 3\n", " 4\n");
        let e = parse(&changed).unwrap_err();
        assert!(e.contains("changed while it was read"), "{e}");
    }

    #[test]
    fn cpu_lists_and_dpkg_lines() {
        assert_eq!(count_cpu_list("0-3,8,10-11"), 7);
        assert_eq!(count_cpu_list("0"), 1);
        let f = parse("@@cpus-online 0-1\n@@dpkg dnsmasq install ok installed\n@@dpkg nfs-common deinstall ok config-files\n@@done\n").unwrap();
        assert_eq!(f.cpus, 2);
        assert_eq!(f.packages.iter().collect::<Vec<_>>(), ["dnsmasq"]);
    }
}

#[cfg(test)]
mod fixtures;
