//! The raw inventory: serde types mirroring cluster.yaml one to one, with the
//! source position of every value that validation may complain about. Nothing
//! here is checked beyond YAML syntax, types, unknown fields and duplicate
//! keys; `validate` turns a [`RawInventory`] into the resolved `Cluster`.

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::error::{Diagnostic, Location};

/// A value and where it was written.
pub type S<T> = Spanned<T>;

/// The location of a spanned value, if the parser knew it.
pub fn loc<T>(s: &Spanned<T>) -> Option<Location> {
    let l = s.referenced;
    (l.line() > 0).then(|| Location {
        line: l.line() as usize,
        column: l.column() as usize,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInventory {
    pub name: S<String>,
    pub domain: S<String>,
    pub lan: RawLan,
    pub head: RawHead,
    #[serde(default)]
    pub ssh: Option<RawSsh>,
    #[serde(default)]
    pub workers: Vec<S<RawWorker>>,
    #[serde(default)]
    pub nfs: Option<RawNfs>,
    #[serde(default)]
    pub firewall: Option<RawFirewall>,
    #[serde(default)]
    pub mpi: Option<RawMpi>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLan {
    pub cidr: S<String>,
    pub dhcp_range: S<String>,
    #[serde(default)]
    pub addressing: Option<S<Addressing>>,
    #[serde(default)]
    pub upstream_dns: Vec<S<String>>,
}

/// How workers get their LAN address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Addressing {
    /// The head's dnsmasq hands out a reserved lease per worker.
    Dhcp,
    /// Each worker's interface is configured with a fixed address.
    Static,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHead {
    pub name: S<String>,
    pub ssh: S<String>,
    #[serde(default, rename = "become")]
    pub become_: Option<S<Become>>,
    pub wan_iface: S<String>,
    pub lan_iface: S<String>,
    pub lan_ip: S<String>,
}

/// How to gain root when the SSH user is not root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Become {
    Sudo,
}

/// SSH client settings shared by every node. Paths are relative to the
/// inventory file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSsh {
    #[serde(default)]
    pub transport: Option<S<TransportKind>>,
    #[serde(default)]
    pub config: Option<S<String>>,
    #[serde(default)]
    pub known_hosts: Option<S<String>>,
    #[serde(default)]
    pub identity: Option<S<String>>,
    /// Default user for workers reached through the head.
    #[serde(default)]
    pub user: Option<S<String>>,
}

/// Which SSH implementation talks to the hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// The system `ssh` (honours ~/.ssh/config, the agent, ProxyJump).
    #[default]
    Openssh,
    /// The built-in pure-Rust client.
    Russh,
}

/// One worker (`name`) or a range of workers (`names`). A single struct, not an
/// untagged enum, so every field keeps its position and unknown fields are
/// still rejected; `validate` checks which combination was used.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWorker {
    #[serde(default)]
    pub name: Option<S<String>>,
    #[serde(default)]
    pub names: Option<S<String>>,
    #[serde(default)]
    pub mac: Option<S<String>>,
    #[serde(default)]
    pub macs: Option<S<Vec<S<String>>>>,
    #[serde(default)]
    pub ip: Option<S<String>>,
    #[serde(default)]
    pub ip_start: Option<S<String>>,
    #[serde(default)]
    pub slots: Option<S<u32>>,
    #[serde(default)]
    pub ssh: Option<S<String>>,
    /// The worker's LAN interface (default eth0).
    #[serde(default)]
    pub iface: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNfs {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub exports: Vec<S<RawExport>>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExport {
    pub path: S<String>,
    #[serde(default)]
    pub mount: Option<S<String>>,
    #[serde(default)]
    pub options: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFirewall {
    #[serde(default)]
    pub wan_tcp_ports: Vec<S<u16>>,
    #[serde(default)]
    pub lan: Option<S<LanPolicy>>,
}

/// What the firewall accepts from the LAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LanPolicy {
    /// Everything from the LAN is accepted (the usual cluster setup).
    #[default]
    Trust,
    /// Only SSH, DHCP, DNS, NFS and ICMP from the LAN.
    SshOnly,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMpi {
    #[serde(default)]
    pub slots: Option<S<u32>>,
    #[serde(default)]
    pub hostfiles: Option<Vec<S<HostfileFlavor>>>,
}

/// Which MPI hostfile format(s) to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HostfileFlavor {
    /// `host slots=N`
    Openmpi,
    /// `host:N`
    Mpich,
}

/// Parse inventory text. A syntax, type or unknown-field problem stops the parse,
/// so at most one diagnostic comes back (YAML cannot be checked further once its
/// shape is wrong).
pub fn parse(text: &str) -> Result<RawInventory, Diagnostic> {
    let options = serde_saphyr::options! { with_snippet: false };
    serde_saphyr::from_str_with_options::<RawInventory>(text, options).map_err(to_diagnostic)
}

fn to_diagnostic(e: serde_saphyr::Error) -> Diagnostic {
    let location = e.location().and_then(|l| {
        (l.line() > 0).then(|| Location {
            line: l.line() as usize,
            column: l.column() as usize,
        })
    });
    let raw = e.without_snippet().to_string();
    let (message, help) = reword(&strip_location_suffix(&raw));
    let d = Diagnostic::new(message).at(location);
    match help {
        Some(h) => d.help(h),
        None => d,
    }
}

/// saphyr appends ` at line L, column C` to messages; we print positions ourselves.
fn strip_location_suffix(raw: &str) -> String {
    let first = raw.lines().next().unwrap_or(raw).trim();
    match first.rfind(" at line ") {
        Some(i) => first[..i].trim_end_matches(',').to_string(),
        None => first.to_string(),
    }
}

/// Turn saphyr/serde wording into ours and name the closest expected word for
/// "unknown field `x`, expected one of a, b" (and the same for variants).
fn reword(message: &str) -> (String, Option<String>) {
    let example = "examples/cluster.yaml shows every field";
    if let Some(field) = message.strip_prefix("missing field ") {
        let field = field.trim_matches('`');
        return (
            format!("missing field `{field}`"),
            Some(format!("add `{field}:`; {example}")),
        );
    }
    if message == "unexpected end of input" {
        return (
            "the inventory is empty or ends too early".into(),
            Some(format!("start from `clusterctl init`; {example}")),
        );
    }
    if message.contains("found a tab") {
        return (
            message.to_string(),
            Some("YAML indents with spaces, never tabs".into()),
        );
    }
    for (ty, range) in [("u16", "0 to 65535"), ("u32", "0 to 4294967295")] {
        if message.starts_with(&format!("invalid {ty}")) {
            return (format!("not a whole number from {range}"), None);
        }
    }
    if let Some(rest) = message.strip_prefix("duplicate mapping key: ") {
        let key = rest
            .split(", set DuplicateKeyPolicy")
            .next()
            .unwrap_or(rest);
        return (
            format!("duplicate key `{key}`"),
            Some("a key may appear once per mapping; remove or merge the other one".into()),
        );
    }
    let kind = if message.starts_with("unknown field") {
        "field"
    } else if message.starts_with("unknown variant") {
        "value"
    } else {
        return (message.to_string(), None);
    };
    let Some(got) = message.split('`').nth(1) else {
        return (message.to_string(), None);
    };
    let expected: Vec<&str> = match message.split_once("expected one of ") {
        Some((_, list)) => list.split(", ").map(|w| w.trim_matches('`')).collect(),
        None => match message.split_once("expected ") {
            Some((_, one)) => vec![one.trim_matches('`')],
            None => Vec::new(),
        },
    };
    let best = expected
        .iter()
        .map(|w| (strsim::damerau_levenshtein(got, w), *w))
        .filter(|(d, w)| *d <= 2.max(w.len() / 3))
        .min();
    let help = match best {
        Some((_, w)) => format!("did you mean {kind} `{w}`?"),
        None if expected.is_empty() => return (message.to_string(), None),
        None => format!("expected one of: {}", expected.join(", ")),
    };
    (format!("unknown {kind} `{got}`"), Some(help))
}
