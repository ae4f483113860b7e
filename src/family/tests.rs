//! The families' tables and the install functions (`install.sh`).

use super::*;

#[test]
fn each_manager_gets_its_own_names_and_command() {
    let apt = DEBIAN.install_script(&["dnsmasq", "iptables-persistent"]);
    assert!(
        apt.contains("apt-get install -y -q --no-install-recommends"),
        "{apt}"
    );
    assert!(apt.contains("--force-confold \"$@\";"), "{apt}");
    assert!(apt
        .ends_with("pkg_install() {\n  install_with apt_install dnsmasq iptables-persistent\n}\n"));
    assert!(apt.contains("DEBIAN_FRONTEND=noninteractive"));
    assert!(apt.contains("exit 101"), "service starts are held back");
    let dnf = RHEL.install_script(&["dnsmasq", "iptables-services"]);
    assert!(dnf.contains("dnf install -y -q --setopt=install_weak_deps=False \"$@\""));
    assert!(dnf.contains("install_with dnf_install dnsmasq iptables-services\n"));
    let apk = ALPINE.install_script(&["dnsmasq"]);
    assert!(apk.contains("apk add --no-progress \"$@\""));
    assert!(apk.contains("install_with apk_install dnsmasq\n"));
    assert_eq!(
        RHEL.package(Pkg::IptablesPersistent),
        Some("iptables-services")
    );
    assert_eq!(ALPINE.package(Pkg::IptablesPersistent), None);
    assert_eq!(ALPINE.package(Pkg::NfsClient), Some("nfs-utils"));
    assert_eq!(DEBIAN.package(Pkg::NfsClient), Some("nfs-common"));
}

fn sh(script: &str, path: Option<&std::path::Path>) -> String {
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c").arg(script);
    if let Some(dir) = path {
        let old = std::env::var("PATH").unwrap_or_default();
        cmd.env("PATH", format!("{}:{old}", dir.display()));
    }
    let out = cmd.output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A failing install reports the packages and the manager's last lines;
/// a good one the packages (dnf and apk run against stand-ins that print
/// their arguments: the names arrive as separate words).
#[test]
fn an_install_reports_the_packages_and_a_failure_the_last_lines() {
    let dir = tempfile::tempdir().unwrap();
    for (name, rc) in [("dnf", 0), ("apk", 1)] {
        let p = dir.path().join(name);
        std::fs::write(&p, format!("#!/bin/sh\necho \"{name} $*\"\nexit {rc}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let run = |f: &Family, names: &[&str]| {
        sh(
            &format!(
                "fail=0\n{}pkg_install\necho \"fail=$fail\"\n",
                f.install_script(names)
            ),
            Some(dir.path()),
        )
    };
    let ok = run(&RHEL, &["dnsmasq", "nfs-utils"]);
    assert_eq!(ok, "@@installed dnsmasq nfs-utils\nfail=0\n");
    let bad = run(&ALPINE, &["dnsmasq", "nfs-utils"]);
    assert_eq!(
        bad,
        "@@install-failed dnsmasq nfs-utils\n@@| apk add --no-progress dnsmasq nfs-utils\nfail=1\n"
    );
}

/// The install functions are POSIX sh that shellcheck passes (when it is
/// installed: Debian's `shellcheck` package; CI has it).
#[test]
fn the_install_functions_are_posix_sh() {
    for f in FAMILIES {
        let s = f.install_script(&["dnsmasq"]);
        let check = std::process::Command::new("sh")
            .arg("-n")
            .arg("-c")
            .arg(&s)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{}: {}",
            f.name,
            String::from_utf8_lossy(&check.stderr)
        );
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/family/install.sh");
    if let Ok(out) = std::process::Command::new("shellcheck")
        .args(["-s", "sh", path])
        .output()
    {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
fn a_family_is_told_by_its_package_manager_else_its_os_id() {
    assert_eq!(detect(PackageManager::Apt, "", "").unwrap().name, "debian");
    assert_eq!(
        detect(PackageManager::Dnf, "rocky", "9").unwrap().name,
        "rhel"
    );
    assert_eq!(detect(PackageManager::Apk, "", "").unwrap().name, "alpine");
    assert_eq!(
        detect(PackageManager::Unknown, "ubuntu", "24.04")
            .unwrap()
            .name,
        "debian"
    );
    for word in ["apt", "dnf", "apk", "unknown"] {
        assert_eq!(package_manager(word).word(), word);
    }
    assert_eq!(package_manager("pacman"), PackageManager::Unknown);
}

/// Never treated as Debian: refused, naming what was seen.
#[test]
fn an_unknown_family_is_refused_with_what_was_seen() {
    let e = detect(PackageManager::Unknown, "arch", "20240101").unwrap_err();
    assert_eq!(
        e,
        "no supported distro family recognised (found: os arch 20240101, package manager unknown); \
         nothing was changed (help: clusterctl manages Debian-like (apt), RHEL-like (dnf), Alpine (apk) nodes)"
    );
    let e = detect(PackageManager::Unknown, "", "").unwrap_err();
    assert!(
        e.contains("(found: os unknown ?, package manager unknown)"),
        "{e}"
    );
}

/// Families are told apart by their manager: one family per manager, and
/// each names its install function in install.sh.
#[test]
fn every_family_is_whole() {
    for (i, f) in FAMILIES.iter().enumerate() {
        assert!(
            FAMILIES[..i]
                .iter()
                .all(|g| g.manager != f.manager && g.name != f.name),
            "{}",
            f.name
        );
        assert!(
            INSTALL_SH.contains(&format!("\n{}() {{\n", f.install)),
            "{}",
            f.name
        );
        for p in Pkg::ALL {
            if let Some(name) = f.package(*p) {
                assert!(!name.is_empty() && !name.contains(' '), "{}: {p:?}", f.name);
            }
        }
        assert!(
            ["systemd", "openrc", "sysvinit"].contains(&f.init),
            "{}",
            f.name
        );
    }
}

/// Each recorded probe output tells its family (the two package manager
/// assertions moved here from `facts/fixtures.rs`).
#[test]
fn the_fixtures_tell_their_family() {
    let parse = |text| crate::facts::parse(text).unwrap();
    let f = parse(include_str!("../facts/fixtures/rhel9.probe"));
    assert_eq!(f.package_manager, PackageManager::Dnf);
    assert_eq!(f.family().unwrap().name, "rhel");
    let f = parse(include_str!("../facts/fixtures/alpine319.probe"));
    assert_eq!(f.package_manager, PackageManager::Apk);
    assert_eq!(f.family().unwrap().name, "alpine");
    for text in [
        include_str!("../facts/fixtures/debian12.probe"),
        include_str!("../facts/fixtures/ubuntu2404.probe"),
        include_str!("../facts/fixtures/raspios-bookworm.probe"),
    ] {
        assert_eq!(parse(text).family().unwrap().name, "debian");
    }
    assert_eq!(
        crate::facts::Facts::assumed().family().unwrap().name,
        "debian"
    );
    assert_eq!(
        crate::facts::Facts::assumed().init,
        crate::facts::InitSystem::Systemd
    );
}

/// Debian names every package (offline render, the lab's mirror and
/// messages rely on it).
#[test]
fn debian_names_every_package() {
    for p in Pkg::ALL {
        assert!(DEBIAN.package(*p).is_some(), "{p:?}");
    }
}
