//! A user's SSH public key (`users[].ssh_authorized_keys`): one
//! authorized_keys line, `TYPE BASE64 [COMMENT]`, checked down to the
//! key's own bytes, with no options and nothing that could start a second
//! line.

use super::shown;

/// The key types OpenSSH accepts in authorized_keys today (DSA is gone
/// from OpenSSH 10).
const TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// Longer than any real key (an RSA key of 16384 bits is about 2,800 characters).
const MAX_LEN: usize = 8192;

/// A checked public key, normalised to `TYPE BASE64[ COMMENT]` (single spaces).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct SshPublicKey(String);

impl SshPublicKey {
    pub fn parse(s: &str) -> Result<SshPublicKey, String> {
        use base64::Engine;
        if s.len() > MAX_LEN {
            return Err(format!(
                "is {} characters long (at most {MAX_LEN})",
                s.len()
            ));
        }
        if let Some(c) = s.chars().find(|c| c.is_control() && *c != ' ') {
            return Err(format!(
                "contains {}; a key is one line: TYPE BASE64 [COMMENT]",
                super::shown_char(c)
            ));
        }
        let mut parts = s.split(' ').filter(|p| !p.is_empty());
        let (Some(kind), Some(body)) = (parts.next(), parts.next()) else {
            return Err("is not `TYPE BASE64 [COMMENT]`".into());
        };
        if !TYPES.contains(&kind) {
            let hint = match kind.contains('=') || kind.contains(',') {
                true => " (options such as `from=` or `command=` are not taken here)",
                false => "",
            };
            return Err(format!(
                "has key type `{}`{hint}; one of {}",
                shown(kind),
                TYPES.join(", ")
            ));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| "has a key body that is not base64".to_string())?;
        // The blob starts with its own type: a 4-byte length, then the name.
        let inner = bytes
            .get(..4)
            .map(|l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize)
            .and_then(|n| bytes.get(4..4 + n));
        if inner != Some(kind.as_bytes()) {
            return Err(format!(
                "has a key body that is not a `{kind}` key (pasted from another key?)"
            ));
        }
        let comment: Vec<&str> = parts.collect();
        let mut out = format!("{kind} {body}");
        if !comment.is_empty() {
            out.push(' ');
            out.push_str(&comment.join(" "));
        }
        Ok(SshPublicKey(out))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SshPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real ed25519 key from ssh-keygen (its private half was deleted).
    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAxVqgS4cOf8Ycnaqo5+mUywN8qULJiQZGeHDUe/2Ly3";

    #[test]
    fn a_real_key_is_taken_and_normalised() {
        let k = SshPublicKey::parse(&format!("{ED}   alice@laptop  (work)")).unwrap();
        assert_eq!(k.as_str(), format!("{ED} alice@laptop (work)"));
        assert_eq!(SshPublicKey::parse(ED).unwrap().as_str(), ED);
    }

    #[test]
    fn what_could_break_the_line_or_add_options_is_refused() {
        let cases = [
            (format!("{ED}\nssh-ed25519 AAAA evil"), "contains '\\n'"),
            (format!("{ED} a\rb"), "contains '\\r'"),
            (
                format!("command=\"/bin/sh\" {ED}"),
                "options such as `from=`",
            ),
            (
                "ssh-dss AAAAB3NzaC1kc3M= x".to_string(),
                "key type `ssh-dss`",
            ),
            ("ssh-ed25519 not*base64".to_string(), "not base64"),
            (ED.replace("ssh-ed25519", "ssh-rsa"), "not a `ssh-rsa` key"),
            ("ssh-ed25519".to_string(), "is not `TYPE BASE64 [COMMENT]`"),
            ("".to_string(), "is not `TYPE BASE64 [COMMENT]`"),
            ("x".repeat(9000), "at most 8192"),
        ];
        for (k, want) in cases {
            let e = SshPublicKey::parse(&k).unwrap_err();
            assert!(e.contains(want), "{k:?}: {e}");
        }
    }
}
