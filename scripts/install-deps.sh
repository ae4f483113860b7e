#!/usr/bin/env bash
# Installs every Debian package clusterctl's lab and test suite need on a fresh machine.
# Safe to re-run. Must run as root (CI does). Daemons are NOT started on this machine:
# a policy-rc.d that denies service starts is held in place for the duration of the install.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: must run as root (try: sudo $0)" >&2
  exit 1
fi

PKGS=(
  openssh-server openssh-client
  dnsmasq
  iptables nftables
  isc-dhcp-client
  iproute2 iputils-ping
  util-linux procps psmisc
  netcat-openbsd
  bridge-utils
  ifupdown
  # What apply installs on a node that lacks it: the light lab's hosts share
  # this machine's root, so it must be here (never started here).
  iptables-persistent
  # The systemd kind of lab host: containers booted with systemd-nspawn from
  # Debian roots built by mmdebstrap, and the wan host's apt mirror (indexed
  # with dpkg-scanpackages; served by clusterctl itself).
  systemd-container
  mmdebstrap
  dpkg-dev
  debian-archive-keyring
  ca-certificates
  # scripts/bench.sh: a venv for pyinfra and ansible-core (from PyPI), GNU
  # time for each tool's peak RSS.
  python3-venv
  time
  # `netplan generate` validates the rendered netplan files in the tests
  # (its systemd generator reads /etc/netplan, which this machine leaves empty).
  netplan.io
  # .ci/run lints every shell script of the repository (git ls-files '*.sh').
  shellcheck
  # The lab proof of `clusterctl inventory --format ansible`: ansible-inventory
  # reads it and `ansible all -m raw` reaches every node (#23).
  ansible-core
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps.sh: all packages present"
  exit 0
fi

# Never let a package's postinst start sshd or dnsmasq on the real machine.
policy=/usr/sbin/policy-rc.d
restore=""
if [ -e "$policy" ]; then
  restore=$(mktemp)
  cp -p "$policy" "$restore"
fi
cleanup() {
  if [ -n "$restore" ]; then mv -f "$restore" "$policy"; else rm -f "$policy"; fi
}
trap cleanup EXIT
printf '#!/bin/sh\nexit 101\n' >"$policy"
chmod 755 "$policy"

export DEBIAN_FRONTEND=noninteractive
# iptables-persistent must not save this machine's rules.
printf '%s\n' 'iptables-persistent iptables-persistent/autosave_v4 boolean false' \
  'iptables-persistent iptables-persistent/autosave_v6 boolean false' | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps.sh: installed ${missing[*]}"
