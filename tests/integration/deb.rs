//! The Debian package (issue #23): `scripts/build-deb.sh` builds it with the
//! binary, a man page per command, bash/zsh/fish completions and the example
//! inventory; on a fresh Debian root (the lab's ifupdown image, under an
//! overlay so the cache stays clean) it installs with apt from the lab's
//! mirror, and `clusterctl --version`, `man clusterctl` and bash completion
//! work there. Needs root (mounts, chroot).

use std::path::Path;
use std::process::Command;

use clusterctl::lab::image::{ensure_image, ensure_mirror, CacheLock, Stack, Suite};

use super::lab::{describe, serial, text};

/// What the package must hold, beyond the directories.
const CONTENTS: &[&str] = &[
    "./usr/bin/clusterctl",
    "./usr/share/man/man1/clusterctl.1.gz",
    "./usr/share/man/man1/clusterctl-apply.1.gz",
    "./usr/share/man/man1/clusterctl-exec.1.gz",
    "./usr/share/bash-completion/completions/clusterctl",
    "./usr/share/zsh/vendor-completions/_clusterctl",
    "./usr/share/fish/vendor_completions.d/clusterctl.fish",
    "./usr/share/doc/clusterctl/examples/cluster.yaml",
    "./usr/share/doc/clusterctl/copyright",
];

#[test]
#[ignore = "needs root: run with --include-ignored (CI does)"]
fn the_deb_installs_on_a_fresh_debian_root_with_man_page_and_completion() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(root.join("scripts/build-deb.sh"))
        .arg(dir.path().join("out"))
        .current_dir(root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe("build-deb.sh", &out));
    let deb = text(&out.stdout).trim().to_string();
    let list = Command::new("dpkg-deb")
        .args(["-c", &deb])
        .output()
        .unwrap();
    let list = text(&list.stdout);
    let paths: Vec<&str> = list
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .collect();
    for want in CONTENTS {
        assert!(paths.contains(want), "{want} missing from {deb}:\n{list}");
    }
    assert!(
        list.lines()
            .all(|l| l.split_whitespace().nth(1) == Some("root/root")),
        "every file root's:\n{list}"
    );

    let (image, mirror) = {
        let _lock = CacheLock::acquire().unwrap();
        (
            ensure_image(Stack::Ifupdown, Suite::Bookworm).unwrap(),
            ensure_mirror(Suite::Bookworm).unwrap(),
        )
    };
    // An overlay over the cached image, in a mount namespace of its own:
    // nothing is left mounted and the image is untouched.
    let script = r#"set -e
w=$WORK
mkdir -p "$w/upper" "$w/work" "$w/merged"
mount -t overlay overlay -o "lowerdir=$IMAGE,upperdir=$w/upper,workdir=$w/work" "$w/merged"
mkdir -p "$w/merged/mnt/mirror"
mount --bind "$MIRROR" "$w/merged/mnt/mirror"
mount -t proc proc "$w/merged/proc"
cp "$DEB" "$w/merged/tmp/clusterctl.deb"
rm -f "$w/merged"/etc/apt/sources.list.d/*
echo 'deb [trusted=yes] file:/mnt/mirror/debian ./' >"$w/merged/etc/apt/sources.list"
chroot "$w/merged" sh -ec '
  export DEBIAN_FRONTEND=noninteractive LC_ALL=C
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends man-db /tmp/clusterctl.deb >/dev/null
  echo "version: $(clusterctl --version)"
  echo "man: $(man -P cat clusterctl 2>/dev/null | grep -m1 -A1 "^NAME" | tail -n 1)"
  echo "man exec: $(man -P cat clusterctl-exec 2>/dev/null | grep -c "clusterctl exec")"
  bash -c ". /usr/share/bash-completion/completions/clusterctl && complete -p clusterctl"
'
"#;
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", script])
        .env("WORK", dir.path().join("root"))
        .env("IMAGE", &image)
        .env("MIRROR", &mirror)
        .env("DEB", &deb)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe("install", &out));
    let said = text(&out.stdout);
    let version = format!("version: clusterctl {}\n", env!("CARGO_PKG_VERSION"));
    assert!(said.contains(&version), "{said}");
    // man justifies its lines: compare words.
    let words = said.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains("man: clusterctl - clusterctl: turn installed Linux machines"),
        "{said}"
    );
    assert!(!said.contains("man exec: 0\n"), "{said}");
    assert!(
        said.contains("-F _clusterctl_with_nodes clusterctl\n"),
        "{said}"
    );
}
