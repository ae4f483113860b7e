#!/usr/bin/env bash
# Builds the Debian package: the release binary, one man page per command,
# bash/zsh/fish completions, the example inventory and the README.
#   scripts/build-deb.sh [OUT_DIR]     (default: target/debian)
# Prints the .deb's path. Needs cargo, dpkg-deb and dpkg-shlibdeps (dpkg-dev,
# installed by scripts/install-deps.sh). Runs as any user: files are owned by
# root in the package (dpkg-deb --root-owner-group).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/debian}

cargo build --release --locked --quiet
bin=target/release/clusterctl
version=$("$bin" --version | awk '{ print $2 }')
arch=$(dpkg --print-architecture)

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/root
install -D -m 0755 "$bin" "$root/usr/bin/clusterctl"
strip --strip-unneeded "$root/usr/bin/clusterctl" 2>/dev/null || true
mkdir -p "$root/usr/share/man/man1"
"$bin" man --dir "$root/usr/share/man/man1" >/dev/null
gzip -9n "$root"/usr/share/man/man1/*.1
install -d "$root/usr/share/bash-completion/completions" \
  "$root/usr/share/zsh/vendor-completions" "$root/usr/share/fish/vendor_completions.d"
"$bin" completions bash >"$root/usr/share/bash-completion/completions/clusterctl"
"$bin" completions zsh >"$root/usr/share/zsh/vendor-completions/_clusterctl"
"$bin" completions fish >"$root/usr/share/fish/vendor_completions.d/clusterctl.fish"
doc=$root/usr/share/doc/clusterctl
install -D -m 0644 examples/cluster.yaml "$doc/examples/cluster.yaml"
install -m 0644 README.md CHANGELOG.md ARCHITECTURE.md "$doc/"
cat >"$doc/copyright" <<'COPYRIGHT'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: clusterctl

Files: *
Copyright: the clusterctl authors
License: MIT or Apache-2.0
COPYRIGHT

# The libraries the binary links, as dpkg-shlibdeps names their packages
# (it reads debian/control, so it runs in a scratch tree of its own).
mkdir -p "$stage/src/debian"
printf 'Source: clusterctl\n\nPackage: clusterctl\nArchitecture: any\n' >"$stage/src/debian/control"
shlibs=$(cd "$stage/src" && dpkg-shlibdeps -O "$root/usr/bin/clusterctl" 2>/dev/null |
  sed -n 's/^shlibs:Depends=//p')

mkdir -p "$root/DEBIAN"
cat >"$root/DEBIAN/control" <<CONTROL
Package: clusterctl
Version: $version
Architecture: $arch
Maintainer: clusterctl developers <clusterctl@localhost>
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: ${shlibs:-libc6}, openssh-client
Suggests: clustershell, pdsh
Section: admin
Priority: optional
Description: turn installed Linux machines into a Beowulf cluster over SSH
 clusterctl reads a YAML inventory of a head node and its workers, renders
 every configuration file from templates and applies them over SSH in
 ordered, idempotent steps: routing and NAT, DHCP and DNS (dnsmasq), NFS,
 users, time, Slurm and MPI hostfiles, with unified diffs before any change
 and commit-confirm for anything that could cut the path to a node.
CONTROL

mkdir -p "$out"
deb=$out/clusterctl_${version}_${arch}.deb
dpkg-deb --root-owner-group --build "$root" "$deb" >/dev/null
echo "$deb"
