# shellcheck shell=sh
# Installing packages, one function per package manager: each installs its
# arguments non-interactively, never prompting, and sets `out` (the
# manager's output) and `rc`. A family's table (src/family/*.rs) names its
# function; the engine appends `pkg_install() { install_with FUNCTION NAMES; }`
# and the write script calls `pkg_install` before staging anything. The
# names come from the families' tables only.

# Debian-like: the packages' own service starts are held back (Debian's
# dnsmasq starts a default one); clusterctl's handlers start them once its
# configuration is in place.
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  held=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d && held=1
  fi
  printf '%s\n' 'iptables-persistent iptables-persistent/autosave_v4 boolean false' \
    'iptables-persistent iptables-persistent/autosave_v6 boolean false' | debconf-set-selections 2>/dev/null
  out=$( { apt-get update -q && apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"; } 2>&1 </dev/null)
  rc=$?
  [ -z "$held" ] || rm -f /usr/sbin/policy-rc.d
}

# RHEL-like.
dnf_install() {
  out=$(dnf install -y -q --setopt=install_weak_deps=False "$@" 2>&1 </dev/null)
  rc=$?
}

# Alpine.
apk_install() {
  out=$(apk add --no-progress "$@" 2>&1 </dev/null)
  rc=$?
}

# install_with FUNCTION NAMES...: run FUNCTION on NAMES; on failure print
# `@@install-failed NAMES` and the manager's last lines as `@@|` details and
# set `fail=1`, else `@@installed NAMES`.
install_with() {
  f=$1
  shift
  "$f" "$@"
  if [ "$rc" -ne 0 ]; then
    echo "@@install-failed $*"
    printf '%s\n' "$out" | tail -n 4 | sed 's/^/@@| /'
    # shellcheck disable=SC2034 # the write script reads it
    fail=1
  else
    echo "@@installed $*"
  fi
}
