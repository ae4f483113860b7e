//! The packages the steps need, by package manager, and the one command
//! that installs the missing ones: non-interactive, never prompting, and
//! (on apt) with the packages' own service starts held back until
//! clusterctl's configuration is in place and its handlers start them.

pub use crate::facts::PackageManager;
use crate::transport::shell_quote;

/// One package under each manager's name (None: not needed there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Package {
    pub apt: Option<&'static str>,
    pub dnf: Option<&'static str>,
    pub apk: Option<&'static str>,
}

impl Package {
    pub fn name(self, pm: PackageManager) -> Option<&'static str> {
        match pm {
            PackageManager::Apt => self.apt,
            PackageManager::Dnf => self.dnf,
            PackageManager::Apk => self.apk,
            PackageManager::Unknown => self.apt,
        }
    }
}

const fn same(name: &'static str) -> Package {
    Package {
        apt: Some(name),
        dnf: Some(name),
        apk: Some(name),
    }
}

pub const DNSMASQ: Package = same("dnsmasq");
pub const IPTABLES: Package = same("iptables");
/// nft and nftables.service (which loads the ruleset at boot).
pub const NFTABLES: Package = same("nftables");
/// Loads /etc/iptables/rules.v4 at boot.
pub const IPTABLES_PERSISTENT: Package = Package {
    apt: Some("iptables-persistent"),
    dnf: Some("iptables-services"),
    apk: None, // Alpine's iptables package has the OpenRC service
};
pub const NFS_SERVER: Package = Package {
    apt: Some("nfs-kernel-server"),
    dnf: Some("nfs-utils"),
    apk: Some("nfs-utils"),
};
pub const NFS_CLIENT: Package = Package {
    apt: Some("nfs-common"),
    dnf: Some("nfs-utils"),
    apk: Some("nfs-utils"),
};

/// The userspace NFSv4 server and its filesystem backend.
pub const NFS_GANESHA: Package = same("nfs-ganesha");
pub const NFS_GANESHA_VFS: Package = Package {
    apt: Some("nfs-ganesha-vfs"),
    dnf: Some("nfs-ganesha-vfs"),
    apk: None,
};

pub const OPENMPI: Package = Package {
    apt: Some("openmpi-bin"),
    dnf: Some("openmpi"),
    apk: Some("openmpi"),
};

/// A shell function `pkg_install` that installs `names` with `pm`. On
/// failure it prints `@@install-failed NAMES` and the manager's last lines
/// as `@@|` details and sets `fail=1`. Names come from the catalog only.
pub fn install_script(pm: PackageManager, names: &[&str]) -> String {
    let list: Vec<String> = names.iter().map(|n| shell_quote(n)).collect();
    let list = list.join(" ");
    let body = match pm {
        PackageManager::Apt => format!(
            r#"  export DEBIAN_FRONTEND=noninteractive
  # Hold the packages' own service starts (Debian's dnsmasq starts a default
  # one); clusterctl's handlers start them once its config is in place.
  held=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d && held=1
  fi
  printf '%s\n' 'iptables-persistent iptables-persistent/autosave_v4 boolean false' \
    'iptables-persistent iptables-persistent/autosave_v6 boolean false' | debconf-set-selections 2>/dev/null
  out=$( {{ apt-get update -q && apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold {list}; }} 2>&1 </dev/null)
  rc=$?
  [ -z "$held" ] || rm -f /usr/sbin/policy-rc.d
"#
        ),
        PackageManager::Dnf => format!(
            "  out=$(dnf install -y -q --setopt=install_weak_deps=False {list} 2>&1 </dev/null)\n  rc=$?\n"
        ),
        PackageManager::Apk => format!("  out=$(apk add --no-progress {list} 2>&1 </dev/null)\n  rc=$?\n"),
        PackageManager::Unknown => "  out='no package manager recognised (apt, dnf or apk)'\n  rc=1\n".to_string(),
    };
    format!(
        "pkg_install() {{\n{body}  if [ \"$rc\" -ne 0 ]; then\n    echo \"@@install-failed {n}\"\n    printf '%s\\n' \"$out\" | tail -n 4 | sed 's/^/@@| /'\n    fail=1\n  else\n    echo \"@@installed {n}\"\n  fi\n}}\n",
        n = names.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_manager_gets_its_own_names_and_command() {
        let apt = install_script(PackageManager::Apt, &["dnsmasq", "iptables-persistent"]);
        assert!(
            apt.contains("apt-get install -y -q --no-install-recommends"),
            "{apt}"
        );
        assert!(
            apt.contains("--force-confold dnsmasq iptables-persistent;"),
            "{apt}"
        );
        assert!(apt.contains("DEBIAN_FRONTEND=noninteractive"));
        assert!(apt.contains("exit 101"), "service starts are held back");
        let dnf = install_script(PackageManager::Dnf, &["dnsmasq", "iptables-services"]);
        assert!(dnf.contains(
            "dnf install -y -q --setopt=install_weak_deps=False dnsmasq iptables-services"
        ));
        let apk = install_script(PackageManager::Apk, &["dnsmasq"]);
        assert!(apk.contains("apk add --no-progress dnsmasq"));
        assert_eq!(
            IPTABLES_PERSISTENT.name(PackageManager::Dnf),
            Some("iptables-services")
        );
        assert_eq!(IPTABLES_PERSISTENT.name(PackageManager::Apk), None);
        assert_eq!(NFS_CLIENT.name(PackageManager::Apk), Some("nfs-utils"));
    }

    /// The rendered function is valid sh, and a failing install reports the
    /// package and the manager's last lines (an unknown manager fails so).
    #[test]
    fn a_failed_install_names_the_packages_and_the_last_lines() {
        let script = format!(
            "fail=0\n{}pkg_install\necho \"fail=$fail\"\n",
            install_script(PackageManager::Unknown, &["dnsmasq"])
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("@@install-failed dnsmasq\n@@| no package manager recognised"),
            "{text}"
        );
        assert!(text.contains("fail=1"), "{text}");
        for pm in [
            PackageManager::Apt,
            PackageManager::Dnf,
            PackageManager::Apk,
        ] {
            let s = install_script(pm, &["dnsmasq"]);
            let check = std::process::Command::new("sh")
                .arg("-n")
                .arg("-c")
                .arg(&s)
                .output()
                .unwrap();
            assert!(
                check.status.success(),
                "{pm:?}: {}",
                String::from_utf8_lossy(&check.stderr)
            );
        }
    }
}
