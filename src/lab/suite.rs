//! The Debian release a systemd-kind lab is built from (`Suite`), and the
//! archive this machine's apt uses (`Archive`, read with `apt-get
//! indextargets`): any suite's apt sources come from its URIs, whatever
//! release this machine runs.

use std::fmt;
use std::path::Path;

use crate::error::{Error, Result};

/// The Debian release a systemd-kind lab's images and mirror are built
/// from, whatever this machine itself runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Suite {
    /// Debian 12, oldstable.
    #[default]
    Bookworm,
    /// Debian 13, the current stable.
    Trixie,
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Suite {
    pub const ALL: [Suite; 2] = [Suite::Bookworm, Suite::Trixie];

    pub fn name(self) -> &'static str {
        match self {
            Suite::Bookworm => "bookworm",
            Suite::Trixie => "trixie",
        }
    }

    pub fn parse(text: &str) -> Result<Suite> {
        Suite::ALL
            .into_iter()
            .find(|s| s.name() == text)
            .ok_or_else(|| Error::Lab {
                message: format!("--suite: unknown Debian suite {text:?}"),
                help: Some("use bookworm or trixie".into()),
            })
    }

    /// How the suite's cached images and mirror are named: bookworm's as
    /// they always were (nothing is rebuilt), another suite's with its name
    /// first (so removing one suite's stale image never matches another's).
    pub(super) fn cache_prefix(self) -> &'static str {
        match self {
            Suite::Bookworm => "",
            Suite::Trixie => "trixie-",
        }
    }
}

/// The Debian archive this machine's apt uses: its main URI and its
/// security URI, read from `apt-get indextargets` (deb822 and one-line
/// sources alike), and the suite this machine runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    pub main: String,
    pub security: String,
    pub machine_suite: String,
}

impl Archive {
    pub fn of_this_machine() -> Result<Archive> {
        let text = super::net::run(
            "apt-get",
            &[
                "indextargets",
                "--no-release-info",
                "--format",
                "$(REPO_URI) $(RELEASE)",
                "Identifier: Packages",
            ],
        )
        .unwrap_or_default();
        Archive::parse(&text).ok_or_else(|| Error::Lab {
            message: "this machine's apt sources name no Debian archive".into(),
            help: Some(
                "the systemd lab builds its hosts from the Debian archive apt uses here (its sources in /etc/apt); use --kind light otherwise".into(),
            ),
        })
    }

    /// From `URI RELEASE` lines: the main archive is the one whose release
    /// is a plain suite name, the security archive the `-security` one
    /// (else Debian's).
    pub fn parse(text: &str) -> Option<Archive> {
        let pairs: Vec<(&str, &str)> = text
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(u, r)| (u.trim(), r.trim()))
            .collect();
        let (main, suite) = pairs
            .iter()
            .find(|(u, r)| u.starts_with("http") && !r.is_empty() && !r.contains(['-', '/']))?;
        let security = pairs
            .iter()
            .find(|(_, r)| r.ends_with("-security"))
            .map_or("http://security.debian.org/debian-security/", |(u, _)| u);
        Some(Archive {
            main: main.to_string(),
            security: security.to_string(),
            machine_suite: suite.to_string(),
        })
    }

    /// One-line apt sources of `suite` (main, updates, security), signed by
    /// the Debian archive keyring this machine has.
    pub fn sources(&self, suite: Suite) -> Vec<String> {
        let key = keyring();
        let signed = |uri: &str, s: String| format!("deb [signed-by={key}] {uri} {s} main");
        vec![
            signed(&self.main, suite.name().to_string()),
            signed(&self.main, format!("{suite}-updates")),
            signed(&self.security, format!("{suite}-security")),
        ]
    }
}

/// Debian's archive keyring (`.gpg` on bookworm, `.pgp` on trixie).
fn keyring() -> &'static str {
    const K: [&str; 2] = [
        "/usr/share/keyrings/debian-archive-keyring.pgp",
        "/usr/share/keyrings/debian-archive-keyring.gpg",
    ];
    K.into_iter()
        .find(|k| Path::new(k).exists())
        .unwrap_or(K[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The archive from `apt-get indextargets` lines, deb822 or one-line
    /// sources alike; another suite's sources come from the same URIs.
    #[test]
    fn the_archive_of_this_machine_gives_any_suites_sources() {
        let a = Archive::parse(
            "http://deb.debian.org/debian/ bookworm\nhttp://deb.debian.org/debian/ bookworm-updates\nhttp://deb.debian.org/debian-security/ bookworm-security\n",
        )
        .unwrap();
        assert_eq!(a.machine_suite, "bookworm");
        let src = a.sources(Suite::Trixie);
        assert_eq!(src.len(), 3);
        assert!(
            src[0].ends_with("] http://deb.debian.org/debian/ trixie main"),
            "{src:?}"
        );
        assert!(src[1].ends_with(" trixie-updates main"), "{src:?}");
        assert!(
            src[2].ends_with("] http://deb.debian.org/debian-security/ trixie-security main"),
            "{src:?}"
        );
        assert!(src[0].starts_with("deb [signed-by=/usr/share/keyrings/debian-archive-keyring."));
        // Only a mirror without a security line: Debian's security archive.
        let b = Archive::parse("http://mirror.example/debian/ trixie\n").unwrap();
        assert_eq!(b.security, "http://security.debian.org/debian-security/");
        assert_eq!(b.machine_suite, "trixie");
        assert_eq!(Archive::parse(""), None);
        assert_eq!(Suite::parse("trixie").unwrap(), Suite::Trixie);
        assert!(Suite::parse("sid").is_err());
    }
}
