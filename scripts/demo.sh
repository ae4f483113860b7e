#!/usr/bin/env bash
# The main job, end to end on the local lab (root, Linux): install the lab's
# packages, build, bring up wan + head + workers as fresh systemd hosts
# (nothing installed; KIND=light for the namespace hosts; NETWORK picks the
# workers' stack: ifupdown, networkd or networkmanager, or a comma list), apply the
# inventory the lab wrote over SSH (it installs what each node lacks from the
# lab's mirror), and show the result: leases, routes, names, NAT, hostfile, a
# second apply that changes nothing, and the cluster after a reboot.
# Run as root, or as a user with sudo (it asks). Leaves the lab up to look
# around; `target/debug/clusterctl lab down` (as root) removes it.
set -euo pipefail
cd "$(dirname "$0")/.."

# The lab needs root: a user with sudo is asked for it (keeping their cargo).
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    exec sudo env "PATH=$PATH" "RUSTUP_HOME=${RUSTUP_HOME:-$HOME/.rustup}" \
      "CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}" "$0" "$@"
  fi
  echo "demo.sh: the lab needs root, and there is no sudo here: run it as root" >&2
  exit 1
fi

scripts/install-deps.sh
cargo build --locked
bin=target/debug/clusterctl
inv=lab/cluster.yaml

kind=${KIND:-systemd}
if [ "$kind" = systemd ]; then
  "$bin" lab up --workers "${WORKERS:-3}" --kind systemd --network "${NETWORK:-ifupdown}"
else
  "$bin" lab up --workers "${WORKERS:-3}" --kind light
fi
"$bin" check -i "$inv"
echo "--- clusterctl diff (what apply will change; exit 2 = changes pending):"
"$bin" diff -i "$inv" --nodes head | tail -n 1 || true
echo "--- clusterctl apply:"
"$bin" apply --yes -i "$inv"
echo "--- the result, seen from w1:"
# shellcheck disable=SC2016 # expanded by w1's shell, not here
"$bin" lab exec w1 -- sh -c '
  echo "address: $(ip -4 -o addr show dev eth0 | awk "{print \$4}")  $(ip route show default)"
  grep nameserver /etc/resolv.conf
  echo "names from the head DNS (/etc/hosts hidden):"
  unshare -m sh -c "mount --bind /dev/null /etc/hosts && getent hosts head w2"
  echo "MPI hostfile:"; grep -v "^#" /etc/clusterctl/hostfile.openmpi'
echo "--- NAT: w1 reaches the wan host through the head:"
"$bin" lab exec w1 -- ping -c 1 -W 2 198.51.100.1 | grep "bytes from"
echo "--- a second apply changes nothing:"
"$bin" apply --yes -i "$inv" 2>/dev/null | tail -n 1
if [ "$kind" = systemd ]; then
  echo "--- after a reboot of every host, with no apply: NAT and names still work from w1:"
  "$bin" lab reboot all >/dev/null
  for _ in $(seq 1 60); do
    "$bin" lab exec w1 -- ping -c 1 -W 1 198.51.100.1 >/dev/null 2>&1 && break
    sleep 1
  done
  "$bin" lab exec w1 -- ping -c 1 -W 2 198.51.100.1 | grep "bytes from"
  "$bin" lab exec w1 -- getent hosts w2.lab.cluster
  echo "--- and diff finds nothing to do (exit 0):"
  "$bin" diff -i "$inv" | tail -n 1
fi
"$bin" lab status
echo "demo.sh: the lab cluster is configured. Look around: sudo $bin lab ssh w1; remove it: sudo $bin lab down"
