//! Values that reach a config line or a shell: the checks that make them
//! safe, and newtypes that can only hold a checked value ([`Hostname`],
//! [`Iface`], [`AbsPath`], [`Mac`]), so the type proves the check was made.
//! `validate`, `init` and `add-node` all check values here.

/// A newtype over a checked string: constructed only by `parse`, read as `&str`.
macro_rules! checked_string {
    ($(#[$doc:meta])* $name:ident, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Check `s`; the error says what is wrong with it.
            pub fn parse(s: &str) -> Result<Self, String> {
                let check: fn(&str) -> Result<String, String> = $check;
                check(s).map($name)
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }
    };
}

mod accounts;
mod export_options;
mod names;
mod ntp;
mod ssh_key;
pub use accounts::{check_account_id, check_account_name, MAX_ACCOUNT_ID, MIN_ACCOUNT_ID};
pub use export_options::{parse_export_options, ExportOptions};
pub use ntp::check_ntp_server;
pub use ssh_key::SshPublicKey;

checked_string!(
    /// An RFC 1123 host name label (see [`check_hostname`]).
    Hostname,
    |s| check_hostname(s).map(|()| s.to_string())
);
checked_string!(
    /// A Linux interface name (see [`check_iface`]).
    Iface,
    |s| check_iface(s).map(|()| s.to_string())
);
checked_string!(
    /// A normalised absolute path safe in /etc/exports, fstab and a shell
    /// (see [`check_abs_path`]).
    AbsPath,
    |s| check_abs_path(s).map(|()| normalize_path(s))
);
checked_string!(
    /// A directory to share over NFS or mount a share on: an [`AbsPath`]
    /// that, once normalised, is not `/` or a system directory (see
    /// [`check_shared_dir`]).
    SharedDir,
    |s| {
        check_abs_path(s)?;
        let p = normalize_path(s);
        check_shared_dir(&p)?;
        Ok(p)
    }
);
checked_string!(
    /// A unicast MAC, lowercase with colons (see [`normalize_mac`]).
    Mac,
    normalize_mac
);

checked_string!(
    /// An NTP server: an IPv4 address or a DNS name (see [`check_ntp_server`]).
    NtpServer,
    |s| check_ntp_server(s).map(|()| s.to_string())
);

checked_string!(
    /// A cluster user's or group's name (see [`check_account_name`]).
    AccountName,
    |s| check_account_name(s).map(|()| s.to_string())
);

/// One DNS label, lowercase: `[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?`, not all
/// digits, not a word dnsmasq reads otherwise. This is also what makes a
/// name safe in templates and shells.
fn check_label(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    if name.len() > 63 {
        return Err(format!("is {} characters long (at most 63)", name.len()));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        let what = if c.is_ascii_uppercase() {
            "an uppercase letter".to_string()
        } else {
            format!("{c:?}")
        };
        return Err(format!(
            "contains {what}; use lowercase letters, digits and '-'"
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err("starts or ends with '-'".into());
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return Err("is all digits".into());
    }
    // dnsmasq reads these bare words in dhcp-host= as keywords or lease times.
    let lease_time = name.len() > 1
        && name[..name.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && name.ends_with(['s', 'm', 'h', 'd', 'w']);
    if lease_time || matches!(name, "ignore" | "infinite" | "deprecated") {
        return Err("is a word dnsmasq reads as a keyword or lease time".into());
    }
    Ok(())
}

/// A node's (or the cluster's) name: an RFC 1123 label, and not one
/// /etc/hosts already gives to loopback or multicast addresses.
pub fn check_hostname(name: &str) -> Result<(), String> {
    check_label(name)?;
    if names::RESERVED.contains(&name) {
        return Err("is a name /etc/hosts already gives to loopback or multicast addresses".into());
    }
    Ok(())
}

/// `/home/` and `/home/./` are `/home`: compare paths by what they name.
pub fn normalize_path(p: &str) -> String {
    let segs: Vec<&str> = p
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    format!("/{}", segs.join("/"))
}

/// The longest domain accepted, so that every `NAME.DOMAIN` (NAME up to
/// 63 characters) stays within DNS's 253.
pub const MAX_DOMAIN_LEN: usize = 253 - 64;

/// A private cluster DNS domain: at least two dot-separated host-name
/// labels (a single label is a top-level domain: dnsmasq would answer for
/// every name under it), at most [`MAX_DOMAIN_LEN`] characters, not under
/// `local` (mDNS, RFC 6762) or `localhost`/`invalid` (RFC 6761), and not
/// the reverse-lookup tree `arpa` except `home.arpa` (RFC 8375).
pub fn check_domain(domain: &str) -> Result<(), String> {
    if domain.len() > MAX_DOMAIN_LEN {
        return Err(format!(
            "is longer than {MAX_DOMAIN_LEN} characters (node names must fit in front of it)"
        ));
    }
    for label in domain.split('.') {
        check_label(label).map_err(|e| format!("label `{}` {e}", shown(label)))?;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let tld = labels[labels.len() - 1];
    if labels.len() < 2 {
        return Err(
            "is a single label, a top-level domain: the head's dnsmasq would claim every name under it"
                .into(),
        );
    }
    if names::PUBLIC_SUFFIXES.contains(&domain) {
        return Err(
            "is a public suffix: the head's dnsmasq would claim every name registered under it; use a name under it you own, or home.arpa"
                .into(),
        );
    }
    match tld {
        "local" => Err("ends in `.local`, which belongs to multicast DNS (RFC 6762)".into()),
        "localhost" | "invalid" | "test" | "example" => Err(format!(
            "ends in `.{tld}`, a special-use name that resolvers treat differently (RFC 6761)"
        )),
        "arpa" if domain != "home.arpa" && !domain.ends_with(".home.arpa") => Err(
            "is under `.arpa`, the reverse-lookup tree (only `home.arpa` is for home networks)"
                .into(),
        ),
        _ => Ok(()),
    }
}

/// How a value is shown in a message: control characters (and quotes and
/// backslashes) escaped, so nothing raw reaches the terminal, and cut to
/// [`SHOWN_MAX`] characters with `…`, so a huge value is never echoed whole.
pub fn shown(value: &str) -> String {
    let mut out = String::new();
    for (i, c) in value.chars().enumerate() {
        if i == SHOWN_MAX {
            out.push('…');
            break;
        }
        out.push_str(&shown_char_bare(c));
    }
    out
}

/// At most this many characters of a value are shown in a message.
pub const SHOWN_MAX: usize = 60;

/// One character as it may appear in a message.
fn shown_char_bare(c: char) -> String {
    if c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
    {
        c.escape_default().to_string()
    } else {
        c.to_string()
    }
}

/// A character named in a message: `'a'`, `' '`, `'\n'`.
pub fn shown_char(c: char) -> String {
    format!("{c:?}")
}

/// A value escaped for a message but not cut (paths): every control
/// character, line breaks included, written as an escape.
pub fn escaped(text: &str) -> String {
    text.chars().map(shown_char_bare).collect()
}

/// A whole message made safe for a terminal: every control character
/// except the line breaks between its own lines escaped.
pub fn terminal_safe(text: &str) -> String {
    text.split('\n')
        .map(|line| line.chars().map(shown_char_bare).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A Linux interface name: 1-15 of `[A-Za-z0-9_.-]` starting with a letter
/// or digit (so it can never be read as an option: `ifdown --force -a`
/// would take every interface down), and not one that names something
/// else: `lo` (loopback), `all` and `default` (the kernel's per-protocol
/// settings directories).
pub fn check_iface(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 15 {
        return Err("must be 1 to 15 characters".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "contains {}; use letters, digits, '_', '.' and '-'",
            shown_char(c)
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(
            "must start with a letter or digit (a leading '-', '.' or '_' is read as an option or hidden name)"
                .into(),
        );
    }
    match name {
        "lo" => Err("is the loopback interface, not a network port".into()),
        "all" | "default" => {
            Err("is reserved: the kernel uses it for settings of every interface".into())
        }
        _ => Ok(()),
    }
}

/// A unicast MAC `aa:bb:cc:dd:ee:ff` (`-` also accepted); returns it lowercase
/// with colons.
pub fn normalize_mac(mac: &str) -> Result<String, String> {
    let parts: Vec<&str> = mac.split([':', '-']).collect();
    if parts.len() != 6
        || parts
            .iter()
            .any(|p| p.len() != 2 || !p.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err("is not a MAC address (six hex pairs like dc:a6:32:01:02:03)".into());
    }
    let bytes: Vec<u8> = parts
        .iter()
        .map(|p| u8::from_str_radix(p, 16).unwrap_or_default())
        .collect();
    if bytes.iter().all(|b| *b == 0) {
        return Err("is all zeros".into());
    }
    if bytes[0] & 1 == 1 {
        return Err("is a multicast/broadcast address, not a NIC's".into());
    }
    Ok(parts.join(":").to_ascii_lowercase())
}

pub fn check_user(user: &str) -> Result<(), String> {
    let ok_first = user
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    if !ok_first
        || user.len() > 32
        || !user
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.'))
    {
        return Err(format!("user `{}` is not a valid login name", shown(user)));
    }
    Ok(())
}

fn check_ssh_host(host: &str) -> Result<(), String> {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "host `{}` is not a host name or IP address",
            shown(host)
        ))
    }
}

/// `[USER@]HOST[:PORT]`, validated.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SshTarget {
    pub user: Option<String>,
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for SshTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Parse `[USER@]HOST[:PORT]` (IPv6 as `[addr]:port`); port defaults to 22.
pub fn parse_ssh_target(s: &str) -> Result<SshTarget, String> {
    let (user, rest) = match s.rsplit_once('@') {
        Some((u, r)) => {
            check_user(u)?;
            (Some(u.to_string()), r)
        }
        None => (None, s),
    };
    let (host, port) = if let Some(stripped) = rest.strip_prefix('[') {
        let (h, after) = stripped
            .split_once(']')
            .ok_or_else(|| format!("`{}`: unclosed '[' around an IPv6 address", shown(s)))?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("`{}` is not an IPv6 address", shown(h)));
        }
        match after {
            "" => (h, None),
            p if p.starts_with(':') => (h, Some(&p[1..])),
            _ => return Err(format!("`{}` is not [USER@]HOST[:PORT]", shown(s))),
        }
    } else {
        if rest.matches(':').count() > 1 {
            return Err(format!(
                "`{}` has an IPv6 address without brackets; write it as [USER@][ADDRESS]:PORT, like {}[{}]:22",
                shown(s),
                user.as_deref().map(|u| format!("{}@", shown(u))).unwrap_or_default(),
                shown(rest)
            ));
        }
        match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    check_ssh_host(host)?;
    let port = match port {
        None => 22,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(format!(
                    "port `{}` is not a number from 1 to 65535",
                    shown(p)
                ))
            }
        },
    };
    Ok(SshTarget {
        user,
        host: host.to_string(),
        port,
    })
}

/// An absolute path of `[A-Za-z0-9_./+-]` without `..` or `//`: safe in
/// /etc/exports, fstab and a shell.
pub fn check_abs_path(p: &str) -> Result<(), String> {
    if !p.starts_with('/') {
        return Err("must be an absolute path".into());
    }
    if let Some(c) = p
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '+' | '-')))
    {
        return Err(format!(
            "contains {}; use letters, digits and _ . / + -",
            shown_char(c)
        ));
    }
    if p.split('/').any(|seg| seg == "..") || p.contains("//") {
        return Err("must not contain '..' or '//'".into());
    }
    Ok(())
}

/// Top-level directories that hold the system itself: sharing one (or
/// anything beneath it) over NFS, or mounting a share on one, would expose
/// or hide the system. `/library` is an ordinary name; `/lib32`, `/lib64`
/// and `/libx32` are not.
const SYSTEM_TREES: &[&str] = &[
    "bin",
    "boot",
    "dev",
    "efi",
    "etc",
    "lib",
    "lib32",
    "lib64",
    "libx32",
    "lost+found",
    "nix",
    "proc",
    "root",
    "run",
    "sbin",
    "snap",
    "sys",
    "usr",
];

/// Subtrees refused whole: system state, logs, spool and world-writable
/// temporary space (a local user could plant a symlink where the mount
/// point is created). `/var` itself is refused too; `/var/nfs` is not.
const SYSTEM_SUBTREES: &[&str] = &[
    "/tmp",
    "/var/tmp",
    "/var/lib",
    "/var/log",
    "/var/cache",
    "/var/spool",
    "/var/run",
    "/var/lock",
    "/var/backups",
    "/var/mail",
    "/var/empty",
    "/var/opt",
    "/var/snap",
];

/// The longest file name Linux file systems take.
const NAME_MAX: usize = 255;

/// A normalised absolute path that may be shared or mounted on: not `/`,
/// not a system directory or anything beneath one (`/etc`, `/usr`, `/bin`,
/// `/sbin`, `/lib*`, `/boot`, `/dev`, `/proc`, `/sys`, `/run`, `/root`,
/// `/tmp`, `/var/tmp`, `/var/lib`, `/var/log`, ...), and not `/var` itself.
/// `/home`, `/opt`, `/srv`, `/mnt` and `/media` are ordinary share roots.
pub fn check_shared_dir(normalised: &str) -> Result<(), String> {
    if normalised == "/" {
        return Err("is `/`, the whole filesystem".into());
    }
    if let Some(seg) = normalised.split('/').find(|s| s.len() > NAME_MAX) {
        return Err(format!(
            "has a name of {} bytes; a file name is at most {NAME_MAX}",
            seg.len()
        ));
    }
    let top = normalised[1..].split('/').next().unwrap_or("");
    if SYSTEM_TREES.contains(&top) {
        return Err(format!(
            "is{} the system directory /{top}",
            if normalised.len() > top.len() + 1 {
                " inside"
            } else {
                ""
            }
        ));
    }
    for t in SYSTEM_SUBTREES {
        if normalised == *t || normalised.starts_with(&format!("{t}/")) {
            return Err(format!(
                "is{} {t}, which holds system state or temporary files",
                if normalised == *t { "" } else { " inside" }
            ));
        }
    }
    if normalised == "/var" {
        return Err(
            "is /var, which holds system state; use a directory below it such as /var/nfs".into(),
        );
    }
    Ok(())
}

/// A controller-side path for ssh (`-F`, `-i`, `UserKnownHostsFile=`):
/// not empty, no control characters or whitespace (ssh splits an option
/// value at whitespace: `UserKnownHostsFile=a b` names two files).
pub fn check_ssh_path(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("is empty".into());
    }
    if let Some(c) = p.chars().find(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "contains {}; ssh would read it as several words",
            shown_char(c)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntp_servers() {
        for ok in [
            "192.0.2.1",
            "0.pool.ntp.org",
            "ntp.example.org.",
            "time-a.NIST.gov",
            "ntp1",
        ] {
            assert!(check_ntp_server(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-x",
            "a b",
            "a\nallow all",
            "a..b",
            "1.2.3.4.5",
            "x;y",
            "a-.b",
            &"a".repeat(64),
        ] {
            assert!(check_ntp_server(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hostnames() {
        assert!(check_hostname("node01").is_ok());
        assert!(check_hostname("gpu01-a").is_ok());
        for bad in [
            "",
            "-a",
            "a-",
            "Node",
            "a b",
            "a;b",
            "a$b",
            "123",
            "a\nb",
            "a'b",
            &"x".repeat(64),
        ] {
            assert!(check_hostname(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn macs() {
        assert_eq!(
            normalize_mac("DC-A6-32-00-00-01").unwrap(),
            "dc:a6:32:00:00:01"
        );
        for bad in [
            "dc:a6:32:00:00",
            "zz:a6:32:00:00:01",
            "01:00:5e:00:00:01",
            "00:00:00:00:00:00",
            "dc:a6:32:00:00:001",
        ] {
            assert!(normalize_mac(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ssh_targets() {
        let t = parse_ssh_target("pi@192.168.1.50:2222").unwrap();
        assert_eq!(
            (t.user.as_deref(), t.host.as_str(), t.port),
            (Some("pi"), "192.168.1.50", 2222)
        );
        let t = parse_ssh_target("[fe80::1]:22").unwrap();
        assert_eq!(t.host, "fe80::1");
        assert_eq!(parse_ssh_target("head").unwrap().port, 22);
        for bad in ["a b@h", "root@h;rm", "h:0", "h:x", "@h", "root@", "[::1"] {
            assert!(parse_ssh_target(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn newtypes_hold_only_checked_values() {
        assert_eq!(
            Mac::parse("DC-A6-32-00-00-01").unwrap(),
            "dc:a6:32:00:00:01"
        );
        assert_eq!(AbsPath::parse("/home/./x/").unwrap(), "/home/x");
        assert_eq!(Iface::parse("eth0").unwrap(), "eth0");
        assert!(Iface::parse("a b").is_err());
        assert!(Hostname::parse("Node").is_err());
    }

    #[test]
    fn paths() {
        assert!(check_abs_path("/opt/shared").is_ok());
        for bad in ["home", "/a b", "/a/../b", "/a;b", "/a//b", "/a\nb"] {
            assert!(check_abs_path(bad).is_err(), "{bad:?}");
        }
    }
}
