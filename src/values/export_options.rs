//! NFS export options (`nfs.exports[].options`): every word one that
//! exports(5) knows, no contradiction, and what they mean for the rest of
//! the cluster: the access the workers mount with, and the squash and
//! security settings nfs-ganesha is given (it does not read
//! /etc/exports: its `EXPORT` block must say the same thing).

use super::{shown, shown_char};

/// exports(5) options without a value.
const FLAGS: &[&str] = &[
    "rw",
    "ro",
    "sync",
    "async",
    "secure",
    "insecure",
    "wdelay",
    "no_wdelay",
    "hide",
    "nohide",
    "crossmnt",
    "subtree_check",
    "no_subtree_check",
    "insecure_locks",
    "no_auth_nlm",
    "secure_locks",
    "auth_nlm",
    "no_acl",
    "mountpoint",
    "mp",
    "root_squash",
    "no_root_squash",
    "all_squash",
    "no_all_squash",
    "pnfs",
    "no_pnfs",
    "security_label",
    "nordirplus",
];

/// exports(5) options with a value (`NAME=VALUE`).
const VALUED: &[&str] = &[
    "anonuid",
    "anongid",
    "fsid",
    "sec",
    "mountpoint",
    "mp",
    "xprtsec",
    "refer",
    "replicas",
];

/// Security flavours `sec=` takes (colon-separated), as ganesha spells them.
const FLAVOURS: &[&str] = &["sys", "krb5", "krb5i", "krb5p", "none"];

/// The longest option word (a `fsid=` UUID is 41 characters).
const MAX_WORD: usize = 64;

/// What an export's options mean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    /// `rw` or `ro`.
    pub access: &'static str,
    /// ganesha's `Squash`: `Root_Squash` (the kernel's default too),
    /// `No_Root_Squash` or `All_Squash`.
    pub squash: &'static str,
    pub anonuid: Option<u32>,
    pub anongid: Option<u32>,
    /// ganesha's `SecType` (`sys` unless `sec=` says otherwise).
    pub sec: String,
}

/// Check `o` (comma-separated exports(5) words) and say what it means.
pub fn parse_export_options(o: &str) -> Result<ExportOptions, String> {
    if o.is_empty() {
        return Err("are empty".into());
    }
    if let Some(c) = o.chars().find(|c| {
        !(c.is_ascii_alphanumeric() || matches!(c, '_' | '=' | ',' | '.' | ':' | '-' | '/'))
    }) {
        return Err(format!("contain {}", shown_char(c)));
    }
    let words: Vec<&str> = o.split(',').collect();
    if words.iter().any(|w| w.is_empty()) {
        return Err("have an empty option (a leading, trailing or doubled comma)".into());
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut opts = ExportOptions {
        access: "",
        squash: "Root_Squash",
        anonuid: None,
        anongid: None,
        sec: "sys".into(),
    };
    for w in &words {
        if w.len() > MAX_WORD {
            return Err(format!(
                "have an option of {} characters (at most {MAX_WORD})",
                w.len()
            ));
        }
        let (name, value) = match w.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (*w, None),
        };
        let known = match value {
            None => FLAGS.contains(&name),
            Some(_) => VALUED.contains(&name),
        };
        if !known {
            return Err(format!(
                "have `{}`, which is not an export option exports(5) knows{}",
                shown(w),
                match (value, VALUED.contains(&name) || FLAGS.contains(&name)) {
                    (Some(_), true) => format!(" (`{name}` takes no value)"),
                    (None, true) => format!(" (`{name}` needs a value: `{name}=...`)"),
                    _ => String::new(),
                }
            ));
        }
        if !seen.insert(name) {
            return Err(format!("name `{name}` twice"));
        }
        match (name, value) {
            ("anonuid" | "anongid", Some(v)) => {
                let id: u32 = v.parse().ok().filter(|id| *id != u32::MAX).ok_or_else(|| {
                    format!(
                        "have `{name}={}`, which is not a user or group ID",
                        shown(v)
                    )
                })?;
                match name {
                    "anonuid" => opts.anonuid = Some(id),
                    _ => opts.anongid = Some(id),
                }
            }
            ("sec", Some(v)) => {
                let flavours: Vec<&str> = v.split(':').collect();
                if let Some(f) = flavours.iter().find(|f| !FLAVOURS.contains(f)) {
                    return Err(format!(
                        "have the security flavour `{}`; use {}",
                        shown(f),
                        FLAVOURS.join(", ")
                    ));
                }
                opts.sec = flavours.join(", ");
            }
            ("fsid" | "mountpoint" | "mp" | "xprtsec" | "refer" | "replicas", Some("")) => {
                return Err(format!("have `{name}=` without a value"));
            }
            _ => {}
        }
    }
    let has = |w: &str| seen.contains(w);
    for (a, b) in [
        ("rw", "ro"),
        ("root_squash", "no_root_squash"),
        ("all_squash", "no_all_squash"),
        ("sync", "async"),
        ("secure", "insecure"),
        ("hide", "nohide"),
        ("subtree_check", "no_subtree_check"),
        ("wdelay", "no_wdelay"),
    ] {
        if has(a) && has(b) {
            return Err(format!("say both `{a}` and `{b}`"));
        }
    }
    if has("all_squash") && has("no_root_squash") {
        return Err("say both `all_squash` and `no_root_squash`".into());
    }
    opts.access = match (has("rw"), has("ro")) {
        (true, _) => "rw",
        (_, true) => "ro",
        _ => {
            return Err(
                "say neither `rw` nor `ro`: the kernel's server would export it read-only while a worker expects to write"
                    .into(),
            )
        }
    };
    opts.squash = if has("all_squash") {
        "All_Squash"
    } else if has("no_root_squash") {
        "No_Root_Squash"
    } else {
        "Root_Squash"
    };
    Ok(opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_options_mean() {
        let o = parse_export_options("rw,sync,no_subtree_check").unwrap();
        assert_eq!((o.access, o.squash), ("rw", "Root_Squash"));
        let o =
            parse_export_options("ro,all_squash,anonuid=1000,anongid=100,sec=krb5:sys").unwrap();
        assert_eq!((o.access, o.squash), ("ro", "All_Squash"));
        assert_eq!((o.anonuid, o.anongid), (Some(1000), Some(100)));
        assert_eq!(o.sec, "krb5, sys");
        let o = parse_export_options("rw,no_root_squash,fsid=0").unwrap();
        assert_eq!(o.squash, "No_Root_Squash");
    }

    #[test]
    fn words_exports_does_not_know_or_that_contradict_are_refused() {
        for (bad, says) in [
            ("-a", "`-a`, which is not an export option"),
            ("rw,frobnicate", "`frobnicate`, which is not"),
            ("rw,sync=1", "`sync` takes no value"),
            ("rw,anonuid", "`anonuid` needs a value"),
            ("rw,anonuid=x", "not a user or group ID"),
            ("rw,anonuid=4294967295", "not a user or group ID"),
            ("rw,ro", "both `rw` and `ro`"),
            ("rw,root_squash,no_root_squash", "both `root_squash`"),
            (
                "rw,all_squash,no_root_squash",
                "both `all_squash` and `no_root_squash`",
            ),
            ("rw,rw", "`rw` twice"),
            ("sync,no_subtree_check", "neither `rw` nor `ro`"),
            ("rw,sec=kerberos", "security flavour `kerberos`"),
        ] {
            let e = parse_export_options(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let long = format!("rw,{}", "a".repeat(5000));
        assert!(parse_export_options(&long)
            .unwrap_err()
            .contains("5000 characters"));
    }
}
